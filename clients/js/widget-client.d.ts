// Types of widget-client.js: the widget's token client for the
// widget-token service of ta-bootstrap.

/** A widget token, as the service answered it. Never log `token` or `discoverUri`. */
export interface WidgetToken {
  /** The `psat=…` token: a secret. */
  readonly token: string;
  /** The anonymous discover link (it carries the token: a secret too). */
  readonly discoverUri: string;
  /** The session id the service generated for this token. */
  readonly applicationSessionId: string;
  /** Seconds the token had left when it arrived. */
  readonly expiresIn: number;
  /** The service's renewal hint, seconds after arrival (absent if the service sent none or a bad one). */
  readonly renewAfter?: number;
  /** When it expires, on the service's clock (RFC 3339); for display only. */
  readonly expiresAt: string;
}

/** Error codes: the service's, and the client's own. */
export type WidgetTokenErrorCode =
  | 'origin_not_allowed'
  | 'origin_required'
  | 'bad_origin'
  | 'ticket_required'
  | 'bad_ticket'
  | 'ticket_expired'
  | 'ticket_unavailable'
  | 'rate_limited'
  | 'upstream_busy'
  | 'upstream_timeout'
  | 'upstream_error'
  | 'upstream_authentication'
  | 'upstream_not_configured'
  | 'service_misconfigured'
  | 'busy'
  | 'timeout'
  | 'internal_error'
  | 'network_error'
  | 'bad_answer'
  | 'stopped'
  | 'internal'
  | (string & {});

/** Why a token could not be had. */
export class WidgetTokenError extends Error {
  /** Made by the client; pages only read them. */
  constructor(code: string, message: string, details?: Partial<Pick<WidgetTokenError, 'status' | 'requestId' | 'transient' | 'retryable' | 'final' | 'inferred' | 'retryAfterMs'>>);
  readonly name: 'WidgetTokenError';
  /** The service's error code, or the client's (`network_error`, `timeout`, `bad_answer`, `stopped`). */
  readonly code: WidgetTokenErrorCode;
  /** The HTTP status; 0 when there was no readable answer. */
  readonly status: number;
  /** The service's request id, '' when there is none to read. */
  readonly requestId: string;
  /** Whether the failure may pass by itself (a busy service, the network, a bad answer). */
  readonly transient: boolean;
  /**
   * Whether the client will try again by itself: a transient failure, under
   * the retry cap, with renewal running (not `on-demand`, not hidden under
   * `auto`, not idle). Otherwise the next call or page event tries again.
   */
  readonly retryable: boolean;
  /** Whether the client has stopped asking for good. */
  readonly final: boolean;
  /** Whether the code is inferred (the browser hid the answer). */
  readonly inferred: boolean;
  /** The wait the service asked for (`Retry-After`), in milliseconds. */
  readonly retryAfterMs: number | undefined;
}

/** Where the client reads time, sets timers and listens for page events (tests replace it). */
export interface WidgetTokenEnvironment {
  now(): number;
  monotonic(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(id: unknown): void;
  random(): number;
  document: EventTarget & { visibilityState?: string } | null;
  window: EventTarget | null;
}

/** The options of a WidgetTokenClient. */
export interface WidgetTokenClientOptions {
  /** The service's `/v1/widget-token` URL. */
  url: string;
  /**
   * The site's widget ticket, when the service checks them (`SignedTicketCheck`):
   * the ticket, or a function that gets one (called before each request, so
   * it can fetch a fresh one from the site's backend). Sent as `{"ticket": "…"}`.
   */
  ticket?: string | (() => string | Promise<string>);
  /** The URL probed (no-cors) to tell a refused origin from an unreachable service; default `/healthz` beside `url`. */
  healthUrl?: string;
  /**
   * A fetch of your own (default: the page's). It gets the token POST, and,
   * when a request fails without a readable answer, a CORS and a no-cors
   * GET of `healthUrl`; each with an AbortSignal (the client times out even
   * if it is ignored).
   */
  fetch?: (input: string, init: RequestInit) => Promise<Response>;
  /** Longest time for one request, ms (default 35000; 1 to 2^31 - 1). */
  timeoutMs?: number;
  /**
   * `auto` (default): renew ahead while the page is shown, pause while it is
   * hidden (see `pauseWhenHidden`); `always`: renew even while hidden;
   * `on-demand`: never by itself, only when `getToken()` needs it.
   */
  renewal?: 'auto' | 'always' | 'on-demand';
  /** With `auto`: pause renewal while the page is hidden (default true). */
  pauseWhenHidden?: boolean;
  /** Pause automatic renewal after this long without input (ms; 0, the default, never). */
  idleTimeoutMs?: number;
  /** First backoff ceiling, ms (default 1000); doubles per failure. */
  retryInitialDelayMs?: number;
  /** Largest backoff ceiling, ms (default 60000). */
  retryMaxDelayMs?: number;
  /**
   * Transient failures in a row retried before the client gives up (default
   * 8); the count and the backoff hold until a success, so a call or page
   * event after that makes one attempt, after the longest backoff.
   */
  maxRetries?: number;
  /** How often a missed renewal is looked for, ms (default 5000). */
  checkIntervalMs?: number;
  /** No renewal sooner than this after a token, ms, unless its life is shorter (default 5000). */
  minRenewIntervalMs?: number;
  /** Called with each new token. */
  onToken?: (token: WidgetToken) => void;
  /** Called with each failure. */
  onError?: (error: WidgetTokenError) => void;
  /** Clocks, timers and page (tests). */
  environment?: Partial<WidgetTokenEnvironment>;
}

/** Gets widget tokens from the widget-token service and keeps one valid. */
export class WidgetTokenClient {
  constructor(options: WidgetTokenClientOptions);
  /** A valid token: the current one, or one got now (one request for all callers). */
  getToken(): Promise<WidgetToken>;
  /** A new token now, whatever the current one's age (one request, shared; a backoff is waited out). */
  renew(): Promise<WidgetToken>;
  /** The current token while it is valid (never a request), else null. */
  readonly token: WidgetToken | null;
  /** Whether the client has stopped for good (a final refusal, or `stop()`). */
  readonly stopped: boolean;
  /** Listens for new tokens; returns a function that stops listening. */
  on(type: 'token', listener: (token: WidgetToken) => void): () => void;
  /** Listens for failures; returns a function that stops listening. */
  on(type: 'error', listener: (error: WidgetTokenError) => void): () => void;
  /** Cancels the timers and the request in flight; waiting calls reject with `stopped`. */
  stop(): void;
}

/** Milliseconds from a `Retry-After` value (seconds or an HTTP date); undefined if unreadable. */
export function parseRetryAfter(value: string | null | undefined, nowMs: number): number | undefined;
