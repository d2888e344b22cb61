// Types of chat-client.js: the widget's chat with the help desk, an
// anonymous UCWA session started with a widget token.

/** Why the chat could not go on, or a call failed. */
export declare class ChatError extends Error {
  constructor(code: string, message: string, details?: { status?: number; final?: boolean });
  readonly name: 'ChatError';
  /** `unreachable`, `refused`, `token_refused`, `no_token`, `timeout`, `application_gone`, `bad_answer`, `not_connected`, … */
  readonly code: string;
  /** The HTTP status, 0 without an answer. */
  readonly status: number;
  /** Whether the chat is over because of it. */
  readonly final: boolean;
}

/** A message from the help desk or an agent. */
export interface ChatMessage {
  /** The message's URL: the same message is told once. */
  id: string;
  text: string;
  /** The sender's name as the visitor sees it. */
  from: string;
  /** Whether the text came as HTML. */
  html: boolean;
}

/** A message the visitor sent, and where it is. */
export interface SentMessage {
  /** The message's URL, once delivered. */
  id: string;
  /** The client's own id, from `sending` on: follows one message through its states. */
  localId: string;
  text: string;
  state: 'sending' | 'delivered' | 'failed';
}

/** Who is typing. */
export interface Typing {
  name: string;
  typing: boolean;
}

/** How the chat ended. */
export interface ChatEnding {
  /** The visitor (`end()`, `stop()`), the help desk (`remote`), or a failure. */
  by: 'visitor' | 'remote' | 'failure';
  /** `ended`, `stopped`, `application_gone`, `conversation_reset`, `refused`, `token_refused`, `no_token`, `bad_answer`, or the platform's subcode lower-cased (`declined`, `timeout`, `removed`, …). */
  code: string;
}

export type ChatState = 'idle' | 'connecting' | 'connected' | 'ended';

/** Where a chat takes its widget token: the token client is one. */
export interface ChatTokenSource {
  /** A valid token (the current one, or one got now). */
  getToken(): Promise<{ token: string; discoverUri: string; applicationSessionId?: string }>;
  /** A new token now. */
  renew(): Promise<{ token: string; discoverUri: string; applicationSessionId?: string }>;
}

interface ChatSessionCommonOptions {
  /** The help desk's SIP URI. */
  to: string;
  /** The name the help desk sees. Default `Visitor`. */
  displayName?: string;
  /** Default `en-US`. */
  culture?: string;
  /** Default `ta-widget-client/0.1`. */
  userAgent?: string;
  /** Timeout of each request but the event poll (ms). Default 35 000. */
  timeoutMs?: number;
  /** Timeout of the event poll (ms), longer than the server holds one. Default 200 000. */
  pollTimeoutMs?: number;
  /** First backoff after a failed poll (ms). Default 1 000. */
  retryInitialDelayMs?: number;
  /** Longest backoff (ms), and the longest `Retry-After` waited out. Default 60 000. */
  retryMaxDelayMs?: number;
  /** Least time between two typing notices (ms). Default 3 000. */
  typingIntervalMs?: number;
  /** The fetch to use (default: the page's). */
  fetch?: typeof fetch;
}

/** A chat that takes its token from a source (the token client): its current
 * token, renewed once if the API refuses it; then the chat keeps it. */
export interface ChatSessionWithTokensOptions extends ChatSessionCommonOptions {
  tokens: ChatTokenSource;
}

/** A chat on a token given. */
export interface ChatSessionWithTokenOptions extends ChatSessionCommonOptions {
  /** The widget token's discover link (`discoverUri`). */
  discoverUri: string;
  /** The widget token (`psat=…`). */
  token: string;
  /** The token's session id, shown as `sessionId`. */
  applicationSessionId?: string;
}

export type ChatSessionOptions = ChatSessionWithTokensOptions | ChatSessionWithTokenOptions;

export declare class ChatSession {
  constructor(options: ChatSessionOptions);
  readonly state: ChatState;
  /** The session id of the token the chat uses ('' until known): token renewals leave it. */
  readonly sessionId: string;
  /** How it ended, once it has. */
  readonly ending: ChatEnding | null;
  /** Discovery, the anonymous application, the event channel, the invitation. */
  start(): Promise<void>;
  /** Sends a message: `sending`, then `delivered` or `failed`. */
  send(text: string): Promise<SentMessage>;
  /** Says the visitor is typing; call on every key stroke. Whether a notice went out. */
  typing(): Promise<boolean>;
  /** Ends the chat: stops messaging when connected and signs the application out, best effort. */
  end(): Promise<void>;
  /** Stops at once, telling nobody. */
  stop(): void;
  on(type: 'state', listener: (state: ChatState) => void): () => void;
  on(type: 'message', listener: (message: ChatMessage) => void): () => void;
  on(type: 'message-state', listener: (message: SentMessage) => void): () => void;
  on(type: 'typing', listener: (typing: Typing) => void): () => void;
  on(type: 'ended', listener: (ending: ChatEnding) => void): () => void;
  on(type: 'error', listener: (error: ChatError) => void): () => void;
}

/** The text of a `data:` URI, or null. */
export declare function decodeDataUri(href: string): string | null;
