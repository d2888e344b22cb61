// The demo page's chat with the help desk, built on the widget's chat
// client (`chat-client.js`), which it loads from the widget-token service
// (`/v1/chat.js`), as the integration guide (docs/widget-guide.md) says.
//
// The chat takes its widget token from the page's token client: the
// client's current token when the visitor starts a chat (renewed once if
// the API refuses it). The chat keeps that token for its whole life (its
// anonymous application belongs to the token's session), so the renewals
// the page shows do not touch a chat in progress.
//
// It writes text only (never HTML: the help desk's messages are text in
// the page) and never shows a token: the chat client's errors quote no URL.

const byId = (id) => document.getElementById(id);

/** What the ending codes mean, for the visitor. */
const ENDINGS = {
  ended: 'The chat has ended.',
  stopped: 'The chat was stopped.',
  declined: 'The help desk could not take the chat.',
  timeout: 'Nobody answered in time.',
  failure_timeout: 'The API did not answer in time.',
  application_gone: 'The chat expired on the server. Start a new one.',
  conversation_reset: 'The chat was reset after a long pause. Start a new one.',
  token_refused: 'The chat could not start: its widget token was refused. Start a new one.',
  no_token: 'The chat could not start: no widget token from the service.',
  refused: 'The API refused the chat.',
  bad_answer: 'The API answered something the chat could not read.',
  unreachable: 'The API could not be reached.',
};

/** Says that the page can have no chat (`why`). */
export function chatUnavailable(why) {
  byId('chat').dataset.chat = 'unavailable';
  byId('chat-status').textContent = why;
}

/** One chat panel: the transcript, the composer, start and end. */
export class ChatPanel {
  /**
   * @param {object} options
   * @param {object} options.tokens the page's token client
   * @param {string} options.serviceUrl the widget-token service's URL
   * @param {string} options.helpdesk the help desk's SIP URI
   */
  constructor({ tokens, serviceUrl, helpdesk }) {
    this.tokens = tokens;
    this.serviceUrl = serviceUrl;
    this.helpdesk = helpdesk;
    this.module = null;
    this.chat = null;
    /** The visitor's messages by local id: their transcript lines. */
    this.pending = new Map();
    this.typers = new Set();
  }

  /** Loads the chat client; the panel is ready once it is in. */
  async load() {
    if (!this.helpdesk) {
      chatUnavailable('The page does not name the help desk.');
      return;
    }
    try {
      this.module = await import(new URL('/v1/chat.js', this.serviceUrl).href);
    } catch (_) {
      chatUnavailable('The chat client could not be loaded from the service.');
      return;
    }
    byId('start-chat').addEventListener('click', () => this.start());
    byId('end-chat').addEventListener('click', () => this.end());
    byId('send').addEventListener('click', () => this.send());
    const input = byId('message');
    input.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.isComposing) {
        event.preventDefault();
        this.send();
      }
    });
    // On every key stroke: the chat client tells the help desk at most
    // once per few seconds, so the notice repeats while the visitor types.
    input.addEventListener('input', () => {
      if (this.chat && input.value) this.chat.typing();
    });
    this.show('idle', 'Start a chat when you are ready.');
    byId('start-chat').disabled = false;
  }

  show(state, text) {
    byId('chat').dataset.chat = state;
    byId('chat-status').textContent = text;
  }

  /** Enables what the chat's state allows. */
  controls(state) {
    const connected = state === 'connected';
    byId('message').disabled = !connected;
    byId('send').disabled = !connected;
    byId('end-chat').hidden = state !== 'connecting' && !connected;
    const start = byId('start-chat');
    start.hidden = state === 'connecting' || connected;
    start.disabled = false;
  }

  line(from, who, text) {
    const item = document.createElement('li');
    item.dataset.from = from;
    const name = document.createElement('span');
    name.className = 'who';
    name.textContent = who;
    const body = document.createElement('span');
    body.className = 'text';
    body.textContent = text;
    item.append(name, body);
    const transcript = byId('transcript');
    transcript.append(item);
    transcript.scrollTop = transcript.scrollHeight;
    return item;
  }

  showTyping() {
    const typing = byId('typing');
    const names = Array.from(this.typers);
    typing.hidden = names.length === 0;
    typing.textContent = names.length ? `${names.join(', ')} ${names.length > 1 ? 'are' : 'is'} typing…` : '';
  }

  async start() {
    if (this.chat && this.chat.state !== 'ended') return;
    byId('transcript').replaceChildren();
    this.pending.clear();
    this.typers.clear();
    this.showTyping();
    byId('chat-ending').textContent = '–';
    const chat = new this.module.ChatSession({ tokens: this.tokens, to: this.helpdesk, displayName: 'Visitor' });
    this.chat = chat;
    chat.on('state', (state) => {
      this.controls(state);
      if (state === 'connecting') this.show('connecting', 'Calling the help desk…');
      if (state === 'connected') {
        this.show('connected', 'Connected with the help desk.');
        byId('message').focus();
      }
      byId('chat-session').textContent = chat.sessionId || '–';
      byId('chat-details').hidden = false;
    });
    chat.on('message', (message) => {
      this.typers.delete(message.from);
      this.showTyping();
      this.line('agent', message.from || 'Help desk', message.text);
    });
    chat.on('typing', ({ name, typing }) => {
      if (typing) this.typers.add(name);
      else this.typers.delete(name);
      this.showTyping();
    });
    chat.on('message-state', (message) => {
      let item = this.pending.get(message.localId);
      if (!item) {
        item = this.line('visitor', 'You', message.text);
        this.pending.set(message.localId, item);
      }
      item.dataset.state = message.state;
      if (message.state !== 'sending') this.pending.delete(message.localId);
    });
    let failure = null;
    chat.on('error', (error) => {
      failure = error;
    });
    chat.on('ended', ({ by, code }) => {
      this.typers.clear();
      this.showTyping();
      const known = (by === 'failure' && ENDINGS[`failure_${code}`]) || ENDINGS[code] || `The chat has ended (${code}).`;
      // The client's messages quote no URL (the discover link carries the token).
      const text = failure ? `${known} (${failure.message})` : known;
      const who = by === 'visitor' ? 'you' : by === 'remote' ? 'the help desk' : 'a failure';
      byId('chat-ending').textContent = `by ${who}: ${code}`;
      this.line('system', '', text);
      this.show('ended', text);
      byId('start-chat').textContent = 'Start a new chat';
    });
    try {
      await chat.start();
    } catch (_) {
      // Told by the `ended` event.
    }
  }

  async send() {
    const input = byId('message');
    const text = input.value.trim();
    if (!text || !this.chat || this.chat.state !== 'connected') return;
    input.value = '';
    try {
      await this.chat.send(text);
    } catch (_) {
      // Shown by its `failed` state.
    }
  }

  async end() {
    if (this.chat) await this.chat.end();
  }
}
