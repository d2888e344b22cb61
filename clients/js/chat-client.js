// The widget's chat client: an anonymous UCWA session with the help desk,
// from the page, with a widget token from the widget-token service.
// Dependency-free ES module; its types are in chat-client.d.ts.
//
// Rules it keeps:
// - it follows links, never builds a path: the discover link, then
//   `anonApplications`, then the application's `events` and
//   `startMessaging`, then the messaging links the events give;
// - the event channel is one pending long poll at a time; each answer's
//   `next` (or `resync`, or `resume`) is the next poll, used exactly as
//   given (`ack` is never edited), sent before the answer's events are
//   handled; events are handled in order, each once;
// - the poll is exempt from the short per-request timeout: it has its own,
//   longer than the server holds a poll;
// - a poll that fails (the network, a 5xx, a `409 PGetReplaced`, a 408 or
//   429) is tried again at the same URL after the token client's backoff
//   (full jitter) and any `Retry-After`, so nothing is lost or doubled; a
//   wake-up (the page shown again, back online) cuts a backoff short, not
//   a `Retry-After`; an event that only links its resource is fetched;
// - a `404`/`410` (the application is gone), a `401`/`403`, another 4xx,
//   an answer that is not an events resource or a `resume` link (the
//   conversations were reset) ends the chat;
// - no error message quotes a URL: the discover link carries the token;
// - with a token source (the token client), a chat opens with its current
//   token, renewed once if the API refuses it; once open, the chat keeps
//   that token (the application belongs to its session), so renewals do
//   not touch a chat in progress, and a new chat takes the newest token;
// - each message sent is `sending`, then `delivered` or `failed`;
// - `typing()` may be called on every key stroke: it tells the help desk
//   at most once per `typingIntervalMs`;
// - the end is told once, with its reason: the visitor's `end()`, the help
//   desk's, or a failure that will not pass (`final`).
//
// The token is a secret: this module never logs it.

const DEFAULTS = Object.freeze({
  timeoutMs: 35000,
  pollTimeoutMs: 200000,
  retryInitialDelayMs: 1000,
  retryMaxDelayMs: 60000,
  typingIntervalMs: 3000,
  culture: 'en-US',
  userAgent: 'ta-widget-client/0.1',
  displayName: 'Visitor',
});

/** No retry sooner than this (as the token client). */
const MIN_RETRY_DELAY_MS = 500;
/** Messages remembered to handle each once. */
const SEEN_MESSAGES = 500;
/** Page events after which a stalled poll is retried at once. */
const WAKE_EVENTS = ['visibilitychange', 'online', 'pageshow', 'resume'];

/** Where a page event fires: the document or the window (each once). */
function wakeTarget(env, type) {
  return type === 'visibilitychange' || type === 'resume' ? env.document : env.window;
}

/** Statuses of a poll that may pass: tried again (others end the chat). */
function mayPass(status) {
  return status === 0 || status === 408 || status === 409 || status === 429 || status >= 500;
}

/** Why the chat could not go on, or a call failed. */
export class ChatError extends Error {
  constructor(code, message, details) {
    super(message);
    const d = details || {};
    this.name = 'ChatError';
    /** A stable code: `unreachable`, `refused`, `timeout`, `application_gone`, … */
    this.code = code;
    /** The HTTP status, 0 without an answer. */
    this.status = d.status || 0;
    /** Whether the chat is over because of it. */
    this.final = Boolean(d.final);
  }
}

/**
 * Milliseconds from a `Retry-After` value (seconds or an HTTP date), or 0.
 * The twin of the token client's `parseRetryAfter`, kept here so that this
 * module loads alone.
 */
function retryAfterMs(value, nowMs) {
  const text = typeof value === 'string' ? value.trim() : '';
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = text ? Date.parse(text) : NaN;
  return Number.isNaN(at) ? 0 : Math.max(0, at - nowMs);
}

/** The text of a `data:` URI (`+` is a space, as the API wrote them). */
export function decodeDataUri(href) {
  if (typeof href !== 'string' || !/^data:/i.test(href)) return null;
  const comma = href.indexOf(',');
  if (comma < 0) return null;
  const header = href.slice(5, comma);
  const payload = href.slice(comma + 1);
  try {
    if (/;base64/i.test(header)) {
      const bytes = Uint8Array.from(atob(payload), (c) => c.charCodeAt(0));
      return new TextDecoder().decode(bytes);
    }
    return decodeURIComponent(payload.replace(/\+/g, ' '));
  } catch (_) {
    return null;
  }
}

function environmentOf(options) {
  const env = options.environment || {};
  const g = globalThis;
  return {
    setTimeout: env.setTimeout || ((fn, ms) => g.setTimeout(fn, ms)),
    clearTimeout: env.clearTimeout || ((id) => g.clearTimeout(id)),
    random: env.random || Math.random,
    now: env.now || (() => Date.now()),
    monotonic: env.monotonic || (() => (g.performance ? g.performance.now() : Date.now())),
    document: 'document' in env ? env.document : g.document,
    window: 'window' in env ? env.window : g.window,
  };
}

/** The first link of `rel` in a resource's `_links`. */
function link(resource, rel) {
  const links = resource && resource._links;
  const found = links && links[rel];
  const one = Array.isArray(found) ? found[0] : found;
  return one && typeof one.href === 'string' ? one.href : null;
}

/** The embedded copy of an event's target. */
function target(event) {
  const embedded = event && event._embedded;
  if (!embedded || typeof embedded !== 'object') return null;
  const rel = event.link && event.link.rel;
  const found = (rel && embedded[rel]) || Object.values(embedded)[0];
  return found && typeof found === 'object' ? found : null;
}

/** A chat with the help desk. */
export class ChatSession {
  /**
   * @param {object} options
   * @param {{getToken(): Promise<object>, renew(): Promise<object>}} [options.tokens]
   *   a token source (the token client): the chat opens with its token
   * @param {string} [options.discoverUri] the widget token's discover link (without `tokens`)
   * @param {string} [options.token] the widget token, `psat=…` (without `tokens`)
   * @param {string} options.to the help desk's SIP URI
   */
  constructor(options) {
    const source = options && options.tokens;
    if (source && (typeof source.getToken !== 'function' || typeof source.renew !== 'function')) {
      throw new TypeError('ChatSession `tokens` must have getToken() and renew() (a WidgetTokenClient)');
    }
    if (!options || (!source && (typeof options.discoverUri !== 'string' || typeof options.token !== 'string'))) {
      throw new TypeError('ChatSession needs `tokens` (the token client), or `discoverUri` and `token` (a widget token)');
    }
    if (typeof options.to !== 'string' || !/^sip:/i.test(options.to)) {
      throw new TypeError('ChatSession needs `to`, the help desk\'s SIP URI');
    }
    this.options = Object.assign({}, DEFAULTS, options);
    for (const key of ['timeoutMs', 'pollTimeoutMs', 'retryInitialDelayMs', 'retryMaxDelayMs', 'typingIntervalMs']) {
      const value = this.options[key];
      if (!Number.isFinite(value) || value < 0) throw new RangeError(`${key} must be a finite number of milliseconds`);
    }
    this.env = environmentOf(options);
    this.fetch = options.fetch || globalThis.fetch.bind(globalThis);
    /** The token the chat uses (its application belongs to that token's session). */
    this.credentials = source
      ? null
      : { token: options.token, discoverUri: options.discoverUri, sessionId: String(options.applicationSessionId || '') };
    /** `idle`, `connecting`, `connected` or `ended`. */
    this.state = 'idle';
    /** Why it ended, once it has: `{ by, code }`. */
    this.ending = null;
    this.listeners = new Map();
    this.links = {};
    this.seen = new Set();
    this.seenOrder = [];
    this.sent = 0;
    this.lastTyping = -Infinity;
    this.poll = null;
    /** The events answers handled so far, in order: the next waits for it. */
    this.handling = Promise.resolve();
    /** The controls of the requests in flight, aborted by the end. */
    this.inflight = new Set();
    this.wake = () => {
      const visible = !this.env.document || this.env.document.visibilityState !== 'hidden';
      if (visible && this.poll) this.poll.abort('wake');
    };
  }

  /** Listens to `state`, `message`, `typing`, `message-state`, `ended` or `error`; returns the unsubscribe. */
  on(type, fn) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type).add(fn);
    return () => this.listeners.get(type).delete(fn);
  }

  emit(type, value) {
    for (const fn of Array.from(this.listeners.get(type) || [])) {
      try {
        fn(value);
      } catch (error) {
        if (typeof globalThis.reportError === 'function') globalThis.reportError(error);
      }
    }
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.emit('state', state);
  }

  /** One request, its answer read, within `timeoutMs` (or aborted by `control`). */
  async request(method, url, { body, contentType, timeoutMs, control: given } = {}) {
    if (this.state === 'ended' && method !== 'POST' && method !== 'DELETE') {
      throw new ChatError('ended', 'the chat has ended');
    }
    const control = given || {};
    const abort = typeof AbortController === 'function' ? new AbortController() : null;
    let timer = null;
    const timedOut = new Promise((_, reject) => {
      timer = this.env.setTimeout(() => {
        if (abort) abort.abort();
        reject(new ChatError('timeout', `${method} timed out`));
      }, timeoutMs === undefined ? this.options.timeoutMs : timeoutMs);
    });
    const stopped = new Promise((_, reject) => {
      control.abort = (why) => {
        if (abort) abort.abort();
        reject(new ChatError(why || 'aborted', 'the request was abandoned'));
      };
    });
    this.inflight.add(control);
    const headers = { Accept: 'application/json', Authorization: `Bearer ${this.credentials.token}` };
    if (contentType) headers['Content-Type'] = contentType;
    const call = (async () => {
      const response = await this.fetch(url, {
        method,
        headers,
        body,
        mode: 'cors',
        credentials: 'omit',
        signal: abort ? abort.signal : undefined,
      });
      const text = await response.text();
      let json = null;
      try {
        json = text ? JSON.parse(text) : null;
      } catch (_) {
        json = null;
      }
      return {
        status: response.status,
        json,
        location: response.headers.get('location'),
        retryAfter: response.headers.get('retry-after'),
      };
    })();
    try {
      return await Promise.race([call, timedOut, stopped]);
    } catch (error) {
      if (error instanceof ChatError) throw error;
      // Not the error's own message: a fetch error may quote the URL, and
      // the discover link carries the token.
      throw new ChatError('unreachable', `${method} failed (${(error && error.name) || 'network'})`);
    } finally {
      this.env.clearTimeout(timer);
      this.inflight.delete(control);
    }
  }

  /** The session id of the chat's token ('' until known). */
  get sessionId() {
    return this.credentials ? this.credentials.sessionId : '';
  }

  /** The token to open with: the source's current one, or (`renew`) a new one. */
  async takeToken(renew) {
    let token;
    try {
      token = renew ? await this.options.tokens.renew() : await this.options.tokens.getToken();
    } catch (error) {
      const code = (error && typeof error.code === 'string' && error.code) || 'unknown';
      throw new ChatError('no_token', `no widget token to start the chat with (${code})`, { final: true });
    }
    this.stillOn();
    if (!token || typeof token.token !== 'string' || typeof token.discoverUri !== 'string') {
      throw new ChatError('no_token', 'the token source gave no widget token', { final: true });
    }
    this.credentials = {
      token: token.token,
      discoverUri: token.discoverUri,
      sessionId: String(token.applicationSessionId || ''),
    };
  }

  /** Discovery and the anonymous application; with a token source, a
   * token the API refuses (401) is renewed once and the two tried again. */
  async open() {
    const source = this.options.tokens;
    for (let attempt = 0; ; attempt += 1) {
      if (source) await this.takeToken(attempt > 0);
      const again = (answer) => source && attempt === 0 && answer.status === 401;
      const { discoverUri } = this.credentials;
      const discovered = await this.request('GET', discoverUri);
      this.stillOn();
      if (again(discovered)) continue;
      this.expect(discovered, 200, 'discovery');
      const anon = link(discovered.json, 'anonApplications');
      if (!anon) throw new ChatError('bad_answer', 'the discovery has no anonApplications link', { final: true });
      const appUrl = new URL(anon, discoverUri).href;
      const body = JSON.stringify({
        anonymousDisplayName: this.options.displayName,
        culture: this.options.culture,
        userAgent: this.options.userAgent,
      });
      const app = await this.request('POST', appUrl, { body, contentType: 'application/json' });
      const self = link(app.json, 'self');
      if (app.status === 201 && self) this.links.application = new URL(self, appUrl).href;
      this.stillOn();
      if (again(app)) continue;
      this.expect(app, 201, 'the application');
      return { app, appUrl };
    }
  }

  /** Discovery, the application, the event channel, then the invitation. */
  async start() {
    if (this.state !== 'idle') throw new ChatError('started', 'this chat was started already');
    this.setState('connecting');
    try {
      const { app, appUrl } = await this.open();
      const events = link(app.json, 'events');
      const communication = app.json && app.json._embedded && app.json._embedded.communication;
      const start = link(communication, 'startMessaging');
      if (!events || !start) throw new ChatError('bad_answer', 'the application has no events or startMessaging link', { final: true });
      this.base = appUrl;
      this.listen(new URL(events, appUrl).href);
      const invitation = JSON.stringify({ to: this.options.to, operationId: this.operationId('start') });
      const started = await this.request('POST', new URL(start, appUrl).href, { body: invitation, contentType: 'application/json' });
      this.stillOn();
      this.expect(started, 201, 'the invitation');
    } catch (error) {
      const final = error instanceof ChatError ? error : new ChatError('bad_answer', 'the chat could not start', { final: true });
      if (final.code === 'ended') throw final;
      this.finish('failure', final.code, final);
      throw final;
    }
  }

  /** Throws when the chat ended while a request was out (`end()` during `start()`). */
  stillOn() {
    if (this.state === 'ended') throw new ChatError('ended', 'the chat was ended', { final: true });
  }

  expect(answer, status, what) {
    if (answer.status === status) return;
    // A 401 before the chat is open: the token (expired, or not the API's).
    const code = answer.status === 401 ? 'token_refused' : answer.status === 403 ? 'refused' : 'bad_answer';
    const subcode = answer.json && (answer.json.subcode || answer.json.code);
    throw new ChatError(code, `${what} answered ${answer.status}${subcode ? ` ${subcode}` : ''}`, { status: answer.status, final: true });
  }

  operationId(what) {
    this.sent += 1;
    return `w-${what}-${this.sent}`;
  }

  /** The event channel: one poll at a time, each answer's next link next. */
  listen(first) {
    if (this.state === 'ended') return;
    for (const type of WAKE_EVENTS) {
      const target = wakeTarget(this.env, type);
      if (target) target.addEventListener(type, this.wake);
    }
    this.loop(first).catch(async () => {
      await this.handling;
      this.finish('failure', 'bad_answer', new ChatError('bad_answer', 'an events answer could not be read', { final: true }));
    });
  }

  async loop(first) {
    let url = first;
    let failures = 0;
    while (this.state !== 'ended') {
      const control = {};
      this.poll = control;
      let answer = null;
      let woken = false;
      try {
        answer = await this.request('GET', url, { timeoutMs: this.options.pollTimeoutMs, control });
      } catch (error) {
        woken = error instanceof ChatError && error.code === 'wake';
      } finally {
        this.poll = null;
      }
      if (this.state === 'ended') return;
      if (answer && answer.status === 200) {
        if (!answer.json || typeof answer.json !== 'object' || Array.isArray(answer.json)) {
          throw new ChatError('bad_answer', 'an events answer is not an events resource');
        }
        failures = 0;
        const resume = link(answer.json, 'resume');
        const next = link(answer.json, 'next') || link(answer.json, 'resync') || resume;
        if (!next) throw new ChatError('bad_answer', 'an events answer has no next link');
        const base = url;
        url = new URL(next, base).href;
        if (resume && !link(answer.json, 'next')) {
          // After a long idleness the server reset the conversations: this
          // chat is gone (a new one needs a new start).
          await this.process(answer.json, base);
          this.finish('failure', 'conversation_reset', new ChatError('conversation_reset', 'the chat was reset after a long idleness', { final: true }));
          return;
        }
        // The next poll goes out at once; the events are handled behind it,
        // in order (an event may need a GET of its resource first).
        this.process(answer.json, base);
        continue;
      }
      if (answer && !mayPass(answer.status)) {
        // 404/410: the application is gone; 401/403: refused; any other
        // 4xx will not pass by asking again.
        const { status } = answer;
        const code = status === 404 || status === 410 ? 'application_gone' : status === 401 || status === 403 ? 'refused' : 'bad_answer';
        // The events received before it are handled first (the help desk
        // may have ended the chat in them).
        await this.handling;
        this.finish('failure', code, new ChatError(code, `the event channel answered ${status}`, { status, final: true }));
        return;
      }
      if (woken) continue;
      // The network, a 5xx, a replaced poll: the same URL again, later,
      // with the token client's backoff (full jitter under a doubling
      // ceiling). A `Retry-After` is waited out, up to the longest backoff:
      // the application expires if it is not polled for long.
      failures += 1;
      const { retryInitialDelayMs, retryMaxDelayMs } = this.options;
      const cap = Math.min(retryMaxDelayMs, retryInitialDelayMs * 2 ** Math.min(failures - 1, 30));
      const random = this.env.random();
      const jittered = cap * (Number.isFinite(random) ? Math.min(Math.max(random, 0), 1) : 0.5);
      const asked = answer ? Math.min(retryAfterMs(answer.retryAfter, this.env.now()), retryMaxDelayMs) : 0;
      const wait = Math.max(MIN_RETRY_DELAY_MS, jittered, asked);
      // A wake-up cuts a backoff short, down to the wait the server asked
      // for (whatever of it is left).
      const started = this.env.monotonic();
      await new Promise((resolve) => {
        let timer = this.env.setTimeout(resolve, wait);
        this.poll = {
          abort: (why) => {
            this.env.clearTimeout(timer);
            const left = why === 'ended' ? 0 : asked - (this.env.monotonic() - started);
            if (left > 0) timer = this.env.setTimeout(resolve, left);
            else resolve();
          },
        };
      });
      this.poll = null;
    }
  }

  /** Queues one events answer to be handled after those before it. */
  process(envelope, base) {
    const handled = this.handling.then(() => this.handle(envelope, base));
    this.handling = handled.catch(() => {
      this.finish('failure', 'bad_answer', new ChatError('bad_answer', 'an events answer could not be read', { final: true }));
    });
    return this.handling;
  }

  /** Handles one events answer, in order. */
  async handle(envelope, base) {
    for (const sender of Array.isArray(envelope.sender) ? envelope.sender : []) {
      if (!sender || typeof sender !== 'object') continue;
      for (const event of Array.isArray(sender.events) ? sender.events : []) {
        if (this.state === 'ended') return;
        if (!event || typeof event !== 'object' || !event.link || typeof event.link !== 'object') continue;
        await this.event(event, base);
      }
    }
  }

  /** The event's target: embedded, or fetched when only linked. */
  async resourceOf(event, base) {
    const embedded = target(event);
    if (embedded || typeof event.link.href !== 'string' || event.type === 'deleted') return embedded;
    try {
      const answer = await this.request('GET', new URL(event.link.href, base).href);
      return answer.status === 200 && answer.json && typeof answer.json === 'object' ? answer.json : null;
    } catch (_) {
      return null;
    }
  }

  async event(event, base) {
    const rel = event.link.rel;
    const kind = event.type;
    const resolve = (href) => {
      try {
        return new URL(href, base).href;
      } catch (_) {
        return null;
      }
    };
    if (rel === 'messaging' && (kind === 'updated' || kind === 'added')) {
      const resource = await this.resourceOf(event, base);
      if (!resource) return;
      if (resource.state === 'Connected') {
        for (const name of ['sendMessage', 'setIsTyping', 'stopMessaging']) {
          const href = link(resource, name);
          const url = href && resolve(href);
          if (url) this.links[name] = url;
        }
        if (this.links.sendMessage) this.setState('connected');
      } else if (resource.state === 'Disconnected' && this.state === 'connected') {
        const subcode = resource.reason && resource.reason.subcode;
        this.finish('remote', subcode ? String(subcode).toLowerCase() : 'ended');
      }
    } else if (rel === 'message' && (kind === 'started' || kind === 'completed')) {
      const resource = await this.resourceOf(event, base);
      if (!resource || resource.direction !== 'Incoming') return;
      const href = (typeof event.link.href === 'string' && event.link.href) || link(resource, 'self');
      const id = href ? resolve(href) || href : '';
      if (!id || this.remember(id)) {
        const body = link(resource, 'plainMessage') || link(resource, 'htmlMessage');
        const participant = resource._links && resource._links.participant;
        const from = participant && typeof participant.title === 'string' ? participant.title : '';
        this.emit('message', { id, text: decodeDataUri(body) || '', from, html: !link(resource, 'plainMessage') });
      }
    } else if (rel === 'participant' && event.in && event.in.rel === 'typingParticipants') {
      if (kind === 'added' || kind === 'deleted') {
        const name = typeof event.link.title === 'string' ? event.link.title : '';
        this.emit('typing', { name, typing: kind === 'added' });
      }
    } else if (rel === 'conversation' && (kind === 'deleted' || (target(event) && target(event).state === 'Disconnected'))) {
      this.finish('remote', 'ended');
    } else if (rel === 'messagingInvitation' && kind === 'completed' && event.status === 'Failure') {
      const subcode = event.reason && event.reason.subcode;
      this.finish('remote', subcode ? String(subcode).toLowerCase() : 'declined');
    }
  }

  remember(id) {
    if (this.seen.has(id)) return false;
    this.seen.add(id);
    this.seenOrder.push(id);
    if (this.seenOrder.length > SEEN_MESSAGES) this.seen.delete(this.seenOrder.shift());
    return true;
  }

  /** Sends `text`; the message's state goes `sending`, then `delivered` or `failed`. */
  async send(text) {
    const localId = this.operationId('msg');
    const message = { id: '', localId, text: String(text), state: 'sending' };
    if (this.state !== 'connected' || !this.links.sendMessage) {
      message.state = 'failed';
      this.emit('message-state', message);
      throw new ChatError('not_connected', 'the chat is not connected');
    }
    this.emit('message-state', Object.assign({}, message));
    const url = new URL(this.links.sendMessage);
    url.searchParams.append('operationId', localId);
    try {
      const answer = await this.request('POST', url.href, { body: message.text, contentType: 'text/plain; charset=utf-8' });
      if (answer.status !== 201) throw new ChatError('bad_answer', `sendMessage answered ${answer.status}`, { status: answer.status });
      message.id = answer.location ? new URL(answer.location, url.href).href : '';
      message.state = 'delivered';
      this.emit('message-state', Object.assign({}, message));
      return message;
    } catch (error) {
      message.state = 'failed';
      this.emit('message-state', Object.assign({}, message));
      throw error;
    }
  }

  /** Says the visitor is typing (at most once per `typingIntervalMs`). */
  async typing() {
    const now = this.env.monotonic();
    if (this.state !== 'connected' || !this.links.setIsTyping || now - this.lastTyping < this.options.typingIntervalMs) return false;
    this.lastTyping = now;
    try {
      const answer = await this.request('POST', this.links.setIsTyping);
      return answer.status === 204;
    } catch (_) {
      return false;
    }
  }

  /** Ends the chat (the visitor leaves): stops messaging when connected, and
   * signs the application out, best effort (the platform ends an
   * application that stops polling anyway). */
  async end() {
    if (this.state === 'ended') return;
    const { stopMessaging, application } = this.links;
    this.finish('visitor', 'ended');
    const tell = async (method, url) => {
      try {
        await this.request(method, url);
      } catch (_) {
        // Best effort.
      }
    };
    if (stopMessaging) await tell('POST', stopMessaging);
    if (application) await tell('DELETE', application);
  }

  /** Stops everything at once, telling nobody (the page goes away). */
  stop() {
    this.finish('visitor', 'stopped');
  }

  finish(by, code, error) {
    if (this.state === 'ended') return;
    this.ending = { by, code };
    this.setState('ended');
    for (const type of WAKE_EVENTS) {
      const target = wakeTarget(this.env, type);
      if (target) target.removeEventListener(type, this.wake);
    }
    if (this.poll) this.poll.abort('ended');
    for (const control of Array.from(this.inflight)) control.abort('ended');
    if (error) this.emit('error', error);
    this.emit('ended', this.ending);
  }
}
