// The widget's token client: gets widget tokens from the widget-token
// service (`POST /v1/widget-token`) and keeps one valid, for a chat widget
// on a web page. Dependency-free ES module; its types are in
// widget-client.d.ts and its guide in docs/widget-guide.md.
//
// Rules it keeps:
// - one request in flight at a time: concurrent callers share it;
// - renewal is scheduled from the relative lifetime the service reports
//   (`renewAfter`, `expiresIn`), counted from when the answer arrived, never
//   by comparing `expiresAt` with a local clock that may be wrong by hours;
// - elapsed time is the larger of the monotonic clock (`performance.now()`,
//   which stops while a machine sleeps) and the wall clock (`Date.now()`,
//   which jumps when the clock is set): a sleep or a forward jump renews
//   early, never late;
// - a missed renewal (sleep, frozen tab, network down) is noticed on
//   visibility, online, focus, pageshow and resume events, on a check every
//   few seconds, and on the next call, and renewed at once;
// - failures that may pass are retried with exponential backoff and full
//   jitter, at least as late as `Retry-After`, up to a cap that holds until
//   a success; other failures wait the longest backoff; a readable refusal
//   that will not pass (403 `origin_not_allowed` or `origin_required`, 400
//   `bad_origin`)
//   stops it for good; a refusal the browser hides is inferred and retried
//   slowly;
// - renewal pauses while the page is hidden (unless told otherwise);
// - every request has a timeout (even when a fetch ignores its signal), and
//   `stop()` cancels timers and the request in flight.
//
// The token is a secret: this module never logs it.

/** Codes of refusals that will not pass: the client stops asking. */
const FINAL_CODES = new Set(['origin_not_allowed', 'origin_required', 'bad_origin']);

/** The defaults of the options. */
const DEFAULTS = Object.freeze({
  timeoutMs: 35000,
  renewal: 'auto',
  pauseWhenHidden: true,
  idleTimeoutMs: 0,
  retryInitialDelayMs: 1000,
  retryMaxDelayMs: 60000,
  maxRetries: 8,
  checkIntervalMs: 5000,
  minRenewIntervalMs: 5000,
});

/** A token is no longer handed out this close to its expiry. */
const EXPIRY_MARGIN_MS = 3000;
/** No retry sooner than this after a failure. */
const MIN_RETRY_DELAY_MS = 500;
/** The longest Retry-After believed. */
const MAX_RETRY_AFTER_MS = 10 * 60 * 1000;
/** The longest wait for a reachability probe of /healthz. */
const PROBE_TIMEOUT_MS = 10000;
/** Failures after which the `online` event retries at once. */
const NETWORK_CODES = new Set(['network_error', 'timeout']);

/** Page events after which a missed renewal is looked for. */
const WAKE_EVENTS = ['visibilitychange', 'online', 'focus', 'pageshow', 'resume'];

/** User input that counts as activity (for `idleTimeoutMs`). */
const ACTIVITY_EVENTS = ['pointerdown', 'keydown', 'wheel', 'touchstart'];

/** Why a token could not be had. */
export class WidgetTokenError extends Error {
  constructor(code, message, details) {
    super(message);
    const d = details || {};
    this.name = 'WidgetTokenError';
    /** The service's error code (`origin_not_allowed`, `rate_limited`, …) or the client's. */
    this.code = code;
    /** The HTTP status, 0 when there was no readable answer. */
    this.status = d.status || 0;
    /** The service's request id ('' when there is none to read). */
    this.requestId = d.requestId || '';
    /** Whether the failure may pass by itself (a busy service, the network). */
    this.transient = Boolean(d.transient);
    /** Whether the client will try again by itself. */
    this.retryable = Boolean(d.retryable);
    /** Whether the client has stopped asking for good. */
    this.final = Boolean(d.final);
    /** Whether the code is inferred (the browser hid the answer). */
    this.inferred = Boolean(d.inferred);
    /** The wait the service asked for (`Retry-After`), in ms, if any. */
    this.retryAfterMs = d.retryAfterMs;
  }
}

/** The browser's clocks, timers, randomness and page. */
function browserEnvironment() {
  const g = globalThis;
  const perf = g.performance && typeof g.performance.now === 'function' ? g.performance : null;
  return {
    now: () => Date.now(),
    monotonic: perf ? () => perf.now() : () => Date.now(),
    setTimeout: (fn, ms) => g.setTimeout(fn, ms),
    clearTimeout: (id) => g.clearTimeout(id),
    random: () => Math.random(),
    document: g.document || null,
    window: typeof g.addEventListener === 'function' ? g : null,
  };
}

/** Milliseconds from a Retry-After value (seconds, or an HTTP date). */
export function parseRetryAfter(value, nowMs) {
  if (typeof value !== 'string' || value.trim() === '') return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  // A date is read against the local clock, which may be wrong: the caller
  // caps the wait.
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

/** The answer's fields, checked; null when it is not a widget token. */
function readToken(body) {
  if (!body || typeof body !== 'object') return null;
  const { token, discoverUri, applicationSessionId, expiresIn, expiresAt, renewAfter } = body;
  if (typeof token !== 'string' || token.length === 0) return null;
  if (typeof discoverUri !== 'string' || discoverUri.length === 0) return null;
  if (typeof applicationSessionId !== 'string') return null;
  if (typeof expiresIn !== 'number' || !Number.isFinite(expiresIn) || expiresIn <= 0) return null;
  const hint =
    typeof renewAfter === 'number' && Number.isFinite(renewAfter) && renewAfter >= 0 && renewAfter < expiresIn
      ? renewAfter
      : undefined;
  return {
    token,
    discoverUri,
    applicationSessionId,
    expiresIn,
    renewAfter: hint,
    expiresAt: typeof expiresAt === 'string' ? expiresAt : '',
  };
}

/** When to renew without a hint: 3/4 of the life or 10 s before its end, whichever is sooner. */
function defaultRenewAfterMs(expiresInMs) {
  return Math.max(Math.min(expiresInMs * 0.75, expiresInMs - 10000), expiresInMs / 2);
}

/**
 * Gets widget tokens from the widget-token service and keeps one valid.
 *
 * ```js
 * const client = new WidgetTokenClient({ url: 'https://sa.example/v1/widget-token' });
 * client.on('token', (t) => widget.useToken(t));
 * client.on('error', (e) => widget.showProblem(e));
 * const first = await client.getToken();
 * ```
 */
export class WidgetTokenClient {
  constructor(options) {
    const o = options || {};
    if (typeof o.url !== 'string' || o.url.length === 0) {
      throw new TypeError('WidgetTokenClient: the `url` option (the service\'s /v1/widget-token URL) is required');
    }
    if (o.renewal !== undefined && !['auto', 'always', 'on-demand'].includes(o.renewal)) {
      throw new TypeError(`WidgetTokenClient: renewal must be 'auto', 'always' or 'on-demand', not ${JSON.stringify(o.renewal)}`);
    }
    if (o.ticket !== undefined && typeof o.ticket !== 'string' && typeof o.ticket !== 'function') {
      throw new TypeError('WidgetTokenClient: `ticket` must be a string or a function that returns one');
    }
    /** The site's widget ticket (or how to get one), sent with each request. */
    this._ticket = o.ticket;
    this._url = o.url;
    this._healthUrl = o.healthUrl || safeUrl('/healthz', o.url);
    const env = Object.assign(browserEnvironment(), o.environment || {});
    this._env = env;
    this._fetch = o.fetch || ((input, init) => globalThis.fetch(input, init));
    const num = (name, min, max) => {
      const value = o[name] === undefined ? DEFAULTS[name] : o[name];
      if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
        throw new TypeError(`WidgetTokenClient: ${name} must be a finite number from ${min} to ${max}`);
      }
      return value;
    };
    // Timers take at most 2^31 - 1 ms; a larger delay fires at once.
    const MAX_TIMER = 2 ** 31 - 1;
    this._timeoutMs = num('timeoutMs', 1, MAX_TIMER);
    this._idleTimeoutMs = num('idleTimeoutMs', 0, MAX_TIMER);
    this._retryInitialDelayMs = num('retryInitialDelayMs', 1, MAX_TIMER);
    this._retryMaxDelayMs = Math.max(this._retryInitialDelayMs, num('retryMaxDelayMs', 1, MAX_TIMER));
    this._maxRetries = num('maxRetries', 0, 1000);
    this._checkIntervalMs = num('checkIntervalMs', 100, MAX_TIMER);
    this._minRenewIntervalMs = num('minRenewIntervalMs', 0, MAX_TIMER);
    this._renewal = o.renewal || DEFAULTS.renewal;
    this._pauseWhenHidden = o.pauseWhenHidden === undefined ? DEFAULTS.pauseWhenHidden : Boolean(o.pauseWhenHidden);

    this._listeners = { token: new Set(), error: new Set() };
    if (typeof o.onToken === 'function') this._listeners.token.add(o.onToken);
    if (typeof o.onError === 'function') this._listeners.error.add(o.onError);

    /** The current token and when it arrived, on both clocks. */
    this._current = null;
    /** The attempt loop under way (a promise): the one sender of requests. */
    this._loop = null;
    /** Callers waiting for the next attempt's outcome. */
    this._waiters = [];
    /** The AbortControllers of the request in flight and of the reachability probe. */
    this._abort = null;
    this._probeAbort = null;
    /** The final refusal, once there is one. */
    this._refused = null;
    this._stopped = false;
    /** Failures in a row, and the backoff: no attempt before `ms` after the mark. */
    this._failures = 0;
    this._notBefore = null;
    this._lastError = null;
    this._onlineRetryUsed = false;
    /** A caller asked for a renewal (a due token handed out): one attempt. */
    this._wanted = false;
    /** Whether automatic renewal gave up (until a call or a page event). */
    this._gaveUp = false;
    this._timer = null;
    /** Ends a backoff wait early (an `online` event after a network failure). */
    this._wakeWait = null;
    this._lastActivity = { mono: env.monotonic(), wall: env.now() };

    this._onWake = (event) => this._wake(event && event.type);
    this._onActivity = () => {
      const wasIdle = this._idle();
      this._lastActivity = this._mark();
      if (wasIdle) this._check();
    };
    for (const type of WAKE_EVENTS) {
      const target = type === 'visibilitychange' || type === 'resume' ? env.document : env.window;
      if (target) target.addEventListener(type, this._onWake);
    }
    if (this._idleTimeoutMs > 0 && env.document) {
      for (const type of ACTIVITY_EVENTS) {
        env.document.addEventListener(type, this._onActivity, { passive: true });
      }
    }
    if (this._renewal !== 'on-demand') this._check();
  }

  /**
   * A valid token. The current one while it is fresh; past its renewal
   * time it is still returned while valid, and a renewal starts. Without a
   * valid token, the caller waits for the next attempt (one request for all
   * callers; during a backoff, no request before it ends) and gets its
   * token, or its error (a WidgetTokenError). After a failure that may pass
   * the client keeps trying by itself (unless renewal is 'on-demand' or
   * paused) and emits `token` when it succeeds.
   */
  getToken() {
    if (this._refused) return Promise.reject(this._refused);
    if (this._stopped) return Promise.reject(stoppedError());
    this._gaveUp = false;
    const current = this._valid();
    if (current) {
      if (this._elapsedMs(current) >= current.renewAfterMs) {
        // Due: renewed in the background, even on demand only.
        this._wanted = true;
        this._kick();
      }
      return Promise.resolve(current.value);
    }
    return this.renew();
  }

  /**
   * A new token now, whatever the current one's age (the page learnt that
   * it no longer works, say): one request, shared with any under way. A
   * backoff in force is still waited out. Rejects with a WidgetTokenError.
   */
  renew() {
    if (this._refused) return Promise.reject(this._refused);
    if (this._stopped) return Promise.reject(stoppedError());
    this._gaveUp = false;
    return new Promise((resolve, reject) => {
      this._waiters.push({ resolve, reject });
      this._kick();
    });
  }

  /** The current token if it is still valid (never a request), else null. */
  get token() {
    const valid = this._valid();
    return valid ? valid.value : null;
  }

  /** Whether the client has stopped for good (a final refusal, or `stop()`). */
  get stopped() {
    return this._stopped || this._refused !== null;
  }

  /** Listens for `token` (a new token) or `error` events; returns a function that stops listening. */
  on(type, listener) {
    const set = this._listeners[type];
    if (!set) throw new TypeError(`WidgetTokenClient: unknown event ${JSON.stringify(type)} (token or error)`);
    set.add(listener);
    return () => set.delete(listener);
  }

  /** Stops: cancels the timers and the request in flight; calls waiting for a token reject with `stopped`. */
  stop() {
    if (this._stopped) return;
    this._stopped = true;
    this._current = null;
    if (this._abort) this._abort.abort();
    if (this._probeAbort) this._probeAbort.abort();
    this._detach();
    this._settle(null, stoppedError());
  }

  /** A final refusal: no token, no timer, no listener; every call rejects with it. */
  _refuse(error) {
    this._refused = error;
    this._current = null;
    this._detach();
    this._settle(null, error);
    this._emit('error', error);
  }

  /** Clears the timers and removes the page listeners. */
  _detach() {
    this._clearTimer();
    if (this._wakeWait) this._wakeWait();
    const env = this._env;
    for (const type of WAKE_EVENTS) {
      const target = type === 'visibilitychange' || type === 'resume' ? env.document : env.window;
      if (target) target.removeEventListener(type, this._onWake);
    }
    if (env.document) {
      for (const type of ACTIVITY_EVENTS) env.document.removeEventListener(type, this._onActivity);
    }
  }

  // ------------------------------------------------------------ time

  /** Time since `mark` ({mono, wall}): the larger of the monotonic and the wall-clock deltas. */
  _elapsedMs(mark) {
    const mono = this._env.monotonic() - mark.mono;
    const wall = this._env.now() - mark.wall;
    return Math.max(mono, wall, 0);
  }

  _mark() {
    return { mono: this._env.monotonic(), wall: this._env.now() };
  }

  /** The current token while it has more than the margin left, else null. */
  _valid() {
    const current = this._current;
    if (!current) return null;
    return this._elapsedMs(current) < current.expiresInMs - EXPIRY_MARGIN_MS ? current : null;
  }

  _hidden() {
    const doc = this._env.document;
    return Boolean(doc && doc.visibilityState === 'hidden');
  }

  _idle() {
    return this._idleTimeoutMs > 0 && this._elapsedMs(this._lastActivity) >= this._idleTimeoutMs;
  }

  /** Whether automatic renewal (and retrying with nobody waiting) may run now. */
  _renewing() {
    if (this._renewal === 'on-demand' || this._stopped || this._refused || this._gaveUp) return false;
    if (this._renewal === 'auto' && this._pauseWhenHidden && this._hidden()) return false;
    return !this._idle();
  }

  /** Milliseconds until the backoff allows the next attempt. */
  _backoffLeftMs() {
    const hold = this._notBefore;
    return hold ? Math.max(0, hold.ms - this._elapsedMs(hold)) : 0;
  }

  // ------------------------------------------------------------ scheduling

  _clearTimer() {
    if (this._timer !== null) {
      this._env.clearTimeout(this._timer);
      this._timer = null;
    }
  }

  /** The next check: when the renewal is due, but never later than the check interval (timers stop while a machine sleeps). */
  _schedule() {
    this._clearTimer();
    if (this._stopped || this._refused || this._renewal === 'on-demand' || this._loop) return;
    // Until the renewal is due, or the check interval; once it is due (and
    // waits for the page to be shown, say), the interval: never a busy loop.
    let wait = this._checkIntervalMs;
    const current = this._current;
    const due = current ? current.renewAfterMs - this._elapsedMs(current) : 0;
    if (due > 0) wait = Math.min(wait, due);
    this._timer = this._env.setTimeout(() => {
      this._timer = null;
      this._check();
    }, wait);
  }

  /** Renews if a renewal is due (or there is no valid token) and allowed now. */
  _check() {
    if (this._stopped || this._refused) return;
    if (!this._loop && this._renewing()) {
      const current = this._valid();
      if (!current || this._elapsedMs(current) >= current.renewAfterMs) this._kick();
    }
    this._schedule();
  }

  _wake(type) {
    if (this._stopped || this._refused) return;
    if (type === 'visibilitychange' && this._hidden()) return;
    // The page or the network is back: a renewal that gave up tries again;
    // after a network failure, without waiting out the backoff.
    this._gaveUp = false;
    if (type === 'online' && !this._onlineRetryUsed && this._lastError && NETWORK_CODES.has(this._lastError.code)) {
      // Once until the next success: a flapping network does not skip
      // every backoff.
      this._onlineRetryUsed = true;
      this._notBefore = null;
      if (this._wakeWait) this._wakeWait();
    }
    this._check();
  }

  // ------------------------------------------------------------ getting a token

  /** Starts the attempt loop unless it runs. */
  _kick() {
    if (this._loop || this._stopped || this._refused) return;
    this._clearTimer();
    this._loop = this._run().finally(() => {
      this._loop = null;
      // Callers that came after the loop settled its last waiters, before
      // it ended: another round for them (a backoff still applies).
      if (this._waiters.length > 0) this._kick();
      else this._schedule();
    });
  }

  /** Resolves or rejects every caller waiting for a token. */
  _settle(token, error) {
    const waiters = this._waiters;
    this._waiters = [];
    for (const waiter of waiters) {
      if (error) waiter.reject(error);
      else waiter.resolve(token);
    }
  }

  /** Attempts, with backoff between them, while someone waits or renewal runs. */
  async _run() {
    for (;;) {
      if (this._stopped || this._refused) return;
      // Nobody asked, nobody waits and renewal may not run now (hidden,
      // idle, on demand): no request.
      if (!this._wanted && this._waiters.length === 0 && !this._renewing()) return;
      const left = this._backoffLeftMs();
      if (left > 0) {
        // Short steps: a sleeping machine stops timers, not the wall clock.
        await this._wait(Math.min(left, this._checkIntervalMs));
        continue;
      }
      let token = null;
      let error = null;
      try {
        token = await this._attempt();
      } catch (caught) {
        error = caught instanceof WidgetTokenError ? caught : internalError(caught);
      }
      if (this._stopped) return;
      this._wanted = false;
      if (token) {
        this._current = token;
        this._failures = 0;
        this._notBefore = null;
        this._lastError = null;
        this._onlineRetryUsed = false;
        this._gaveUp = false;
        this._settle(token.value, null);
        this._emit('token', token.value);
        return;
      }
      if (error.final) {
        this._lastError = error;
        this._refuse(error);
        return;
      }
      // Failures count until a success: the cap and the backoff ceiling
      // hold across calls and page events.
      this._failures += 1;
      let wait = this._backoffMs(this._failures, error.retryAfterMs);
      const capped = this._failures > this._maxRetries;
      if (!error.transient || capped) {
        // Given up (until a call or a page event), or a failure that will
        // not pass by itself: the next attempt waits the longest backoff.
        wait = Math.max(wait, this._retryMaxDelayMs);
      }
      this._notBefore = Object.assign(this._mark(), { ms: wait });
      // `retryable`: whether the client itself tries again.
      const retrying = error.transient && !capped && this._renewing();
      const reported = new WidgetTokenError(
        error.code,
        capped && error.transient
          ? `${error.message} (gave up after ${this._failures} attempts in a row; the next call or page event tries again)`
          : error.message,
        Object.assign({}, error, { retryable: retrying }),
      );
      this._lastError = reported;
      if (!retrying) this._gaveUp = error.transient ? capped || this._gaveUp : true;
      this._settle(null, reported);
      this._emit('error', reported);
      if (!retrying) return;
    }
  }

  /** Full jitter: a random wait up to the exponential ceiling, never before Retry-After. */
  _backoffMs(failures, retryAfterMs) {
    const ceiling = Math.min(this._retryMaxDelayMs, this._retryInitialDelayMs * 2 ** (failures - 1));
    const random = this._env.random();
    const jittered = ceiling * (Number.isFinite(random) ? Math.min(Math.max(random, 0), 1) : 0.5);
    // A Retry-After date read on a wrong clock could say days: capped.
    const floor = retryAfterMs === undefined ? 0 : Math.min(retryAfterMs, MAX_RETRY_AFTER_MS);
    return Math.max(jittered, floor, MIN_RETRY_DELAY_MS);
  }

  _wait(ms) {
    return new Promise((resolve) => {
      const id = this._env.setTimeout(() => {
        this._wakeWait = null;
        resolve();
      }, ms);
      this._wakeWait = () => {
        this._env.clearTimeout(id);
        this._wakeWait = null;
        resolve();
      };
    });
  }

  _emit(type, payload) {
    for (const listener of Array.from(this._listeners[type])) {
      try {
        listener(payload);
      } catch (error) {
        // A listener's failure is the page's: reported, and the client
        // goes on.
        if (typeof globalThis.reportError === 'function') globalThis.reportError(error);
      }
    }
  }

  /**
   * `fetch` then `read` under one deadline of `ms`: on time, the read's
   * value; past it, `onTimeout()` is thrown and the request aborted (even
   * a fetch that ignores its signal cannot hold the client).
   */
  async _timed(url, init, ms, read, onTimeout, slot) {
    const env = this._env;
    const controller = typeof AbortController === 'function' ? new AbortController() : null;
    this[slot] = controller;
    let timer = null;
    let timedOut = false;
    const deadline = new Promise((_, reject) => {
      timer = env.setTimeout(() => {
        timedOut = true;
        reject(onTimeout());
        if (controller) controller.abort();
      }, ms);
    });
    try {
      const answer = this._fetch(url, Object.assign({}, init, { signal: controller ? controller.signal : undefined }));
      const response = await Promise.race([answer, deadline]);
      return await Promise.race([read(response), deadline]);
    } catch (caught) {
      // Past the deadline, whatever the abort made the fetch throw.
      throw timedOut ? onTimeout() : caught;
    } finally {
      env.clearTimeout(timer);
      if (this[slot] === controller) this[slot] = null;
    }
  }

  /** The request's body within the request's timeout (a `ticket` function
   * that never settles fails as a timeout); nothing is sent once stopped. */
  async _bodyWithin(onTimeout) {
    if (this._ticket === undefined) return '{}';
    let timer = null;
    const deadline = new Promise((_, reject) => {
      timer = this._env.setTimeout(() => reject(onTimeout()), this._timeoutMs);
    });
    try {
      const body = await Promise.race([this._body(), deadline]);
      if (this._stopped) throw stoppedError();
      return body;
    } finally {
      this._env.clearTimeout(timer);
    }
  }

  /** The request's body: `{}`, or the site's ticket (`{"ticket": "…"}`). */
  async _body() {
    if (this._ticket === undefined) return '{}';
    let ticket;
    try {
      ticket = typeof this._ticket === 'function' ? await this._ticket() : this._ticket;
    } catch (_) {
      throw new WidgetTokenError('ticket_unavailable', 'The page could not get a widget ticket from its site.', {
        transient: true,
      });
    }
    if (typeof ticket !== 'string' || ticket === '') {
      throw new WidgetTokenError('ticket_unavailable', 'The page got no widget ticket from its site.', { transient: true });
    }
    return JSON.stringify({ ticket });
  }

  /** One request to the service. */
  async _attempt() {
    const env = this._env;
    const timeout = () =>
      new WidgetTokenError('timeout', `The widget-token service did not answer within ${this._timeoutMs / 1000} s.`, {
        transient: true,
      });
    const requestBody = await this._bodyWithin(timeout);
    let mono = 0;
    let wall = 0;
    let answer;
    try {
      answer = await this._timed(
        this._url,
        {
          method: 'POST',
          mode: 'cors',
          cache: 'no-store',
          credentials: 'omit',
          headers: { 'Content-Type': 'application/json' },
          body: requestBody,
        },
        this._timeoutMs,
        async (response) => {
          // Arrival times are taken when the answer arrives, before its body.
          mono = env.monotonic();
          wall = env.now();
          return { response, body: await readJson(response) };
        },
        timeout,
        '_abort',
      );
    } catch (caught) {
      if (this._stopped) throw stoppedError();
      if (caught instanceof WidgetTokenError) throw caught;
      throw await this._unreadable();
    }
    const { response, body } = answer;
    const headerId = header(response, 'x-request-id');
    if (response.ok) {
      const value = readToken(body);
      if (!value) {
        throw new WidgetTokenError('bad_answer', 'The service answered 200, but not with a widget token.', {
          status: response.status,
          requestId: headerId,
          transient: true,
        });
      }
      const expiresInMs = value.expiresIn * 1000;
      if (expiresInMs < 2 * EXPIRY_MARGIN_MS) {
        throw new WidgetTokenError('bad_answer', `The service answered a token that expires in ${value.expiresIn} s.`, {
          status: response.status,
          requestId: headerId,
          transient: true,
        });
      }
      const hinted = value.renewAfter === undefined ? defaultRenewAfterMs(expiresInMs) : value.renewAfter * 1000;
      const renewAfterMs = Math.min(
        Math.max(hinted, Math.min(this._minRenewIntervalMs, expiresInMs / 2)),
        expiresInMs - EXPIRY_MARGIN_MS,
      );
      return { value: Object.freeze(value), mono, wall, expiresInMs, renewAfterMs };
    }
    const code = body && typeof body.error === 'string' && body.error ? body.error : `http_${response.status}`;
    const message = body && typeof body.message === 'string' ? body.message : response.statusText || 'no message';
    const requestId = body && typeof body.requestId === 'string' && body.requestId ? body.requestId : headerId;
    const final = FINAL_CODES.has(code);
    const retryAfterMs = parseRetryAfter(header(response, 'retry-after'), wall);
    // An expired site ticket passes with the next one, when a `ticket`
    // function fetches it (a fixed ticket stays expired).
    const nextTicket = code === 'ticket_expired' && typeof this._ticket === 'function';
    const transient =
      !final && (response.status === 429 || response.status === 408 || response.status >= 500 || nextTicket);
    throw new WidgetTokenError(code, `The widget-token service answered ${response.status} ${code}: ${message}`, {
      status: response.status,
      requestId,
      transient,
      final,
      retryAfterMs,
    });
  }

  /**
   * The browser hid why the request failed (no readable answer). A CORS
   * GET of the service's /healthz tells whether the service answers this
   * origin at all: if it does, the failure was in between (a proxy, the
   * network). If only a no-cors GET answers, this origin is most likely
   * not on the allowlist (the service sends CORS headers to allowlisted
   * origins only); a proxy's error page looks the same, so it is retried,
   * slowly, up to the cap. If neither answers, the service is unreachable.
   */
  async _unreadable() {
    const probe = async (mode) => {
      if (!this._healthUrl) return false;
      try {
        await this._timed(
          this._healthUrl,
          { method: 'GET', mode, cache: 'no-store', credentials: 'omit' },
          Math.min(this._timeoutMs, PROBE_TIMEOUT_MS),
          async () => true,
          () => new Error('probe timeout'),
          '_probeAbort',
        );
        return true;
      } catch (_) {
        return false;
      }
    };
    if (await probe('cors')) {
      if (this._stopped) return stoppedError();
      return new WidgetTokenError(
        'network_error',
        'The token request failed without an answer the page can read, although the service answers this origin ' +
          '(a proxy or the network in between).',
        { transient: true },
      );
    }
    if (this._stopped) return stoppedError();
    if (await probe('no-cors')) {
      if (this._stopped) return stoppedError();
      return new WidgetTokenError(
        'origin_not_allowed',
        'The service answered, but the browser hid its answer: this origin is most likely not on its allowlist ' +
          '(the service sends CORS headers to allowlisted origins only).',
        { inferred: true, transient: true, retryAfterMs: this._retryMaxDelayMs },
      );
    }
    if (this._stopped) return stoppedError();
    return new WidgetTokenError('network_error', `The widget-token service at ${this._url} could not be reached.`, {
      transient: true,
    });
  }
}

function stoppedError() {
  return new WidgetTokenError('stopped', 'The token client was stopped.', { final: true });
}

function internalError(caught) {
  return new WidgetTokenError('internal', `The token client failed: ${caught && caught.message}`, {});
}

function safeUrl(path, base) {
  try {
    return new URL(path, base).href;
  } catch (_) {
    return '';
  }
}

function header(response, name) {
  const headers = response && response.headers;
  if (!headers || typeof headers.get !== 'function') return '';
  return headers.get(name) || '';
}

async function readJson(response) {
  try {
    return await response.json();
  } catch (_) {
    return null;
  }
}
