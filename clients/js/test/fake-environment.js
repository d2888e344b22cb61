// A virtual page for the client's tests: two clocks (monotonic and wall)
// that tests move apart, timers on the monotonic clock, a document whose
// visibility tests set, and a scripted fetch that counts requests.

/** Lets every pending promise callback run. */
export async function flush() {
  for (let i = 0; i < 20; i += 1) {
    await new Promise((resolve) => setImmediate(resolve));
  }
}

class FakeTarget {
  constructor() {
    this.listeners = new Map();
  }
  addEventListener(type, fn) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type).add(fn);
  }
  removeEventListener(type, fn) {
    const set = this.listeners.get(type);
    if (set) set.delete(fn);
  }
  dispatch(type) {
    for (const fn of Array.from(this.listeners.get(type) || [])) fn({ type });
  }
  count() {
    let n = 0;
    for (const set of this.listeners.values()) n += set.size;
    return n;
  }
}

/** The page: clocks, timers, randomness, document and window. */
export class FakePage {
  constructor({ wallOffsetMs = 0 } = {}) {
    this.mono = 1000;
    this.wall = Date.UTC(2026, 11, 1, 12, 0, 0) + wallOffsetMs;
    this.timers = new Map();
    this.nextId = 1;
    this.randomValue = 0.5;
    this.document = new FakeTarget();
    this.document.visibilityState = 'visible';
    this.window = new FakeTarget();
  }

  /** The `environment` option of the client. */
  environment() {
    return {
      now: () => this.wall,
      monotonic: () => this.mono,
      setTimeout: (fn, ms) => {
        const id = this.nextId;
        this.nextId += 1;
        this.timers.set(id, { at: this.mono + Math.max(0, ms), fn });
        return id;
      },
      clearTimeout: (id) => {
        this.timers.delete(id);
      },
      random: () => this.randomValue,
      document: this.document,
      window: this.window,
    };
  }

  /** Time passes while the page runs: both clocks move, due timers fire in order. */
  async advance(ms) {
    const end = this.mono + ms;
    await flush();
    for (;;) {
      let next = null;
      for (const [id, timer] of this.timers) {
        if (timer.at <= end && (next === null || timer.at < next[1].at)) next = [id, timer];
      }
      if (next === null) break;
      const [id, timer] = next;
      this.wall += timer.at - this.mono;
      this.mono = timer.at;
      this.timers.delete(id);
      timer.fn();
      await flush();
    }
    this.wall += end - this.mono;
    this.mono = end;
    await flush();
  }

  /**
   * The machine sleeps: the wall clock moves, the monotonic clock (and with
   * it every timer) does not, as `performance.now()` on a suspended Linux
   * machine.
   */
  async sleep(ms) {
    this.wall += ms;
    await flush();
  }

  /** The wall clock is set (NTP, the user): it jumps, nothing else moves. */
  async jumpWall(ms) {
    this.wall += ms;
    await flush();
  }

  async setHidden(hidden) {
    this.document.visibilityState = hidden ? 'hidden' : 'visible';
    this.document.dispatch('visibilitychange');
    await flush();
  }

  pendingTimers() {
    return this.timers.size;
  }
}

/** A JSON answer. */
export function answer(status, body, headers = {}) {
  return new Response(body === undefined ? '' : JSON.stringify(body), {
    status,
    headers: Object.assign({ 'content-type': 'application/json' }, headers),
  });
}

/** A widget token answer. */
export function tokenAnswer(n, { expiresIn = 120, renewAfter = 90, expiresAt } = {}) {
  const body = {
    token: `psat=token-${n}`,
    discoverUri: `https://api.example/discover?psat=token-${n}`,
    applicationSessionId: `session-${n}`,
    expiresIn,
    expiresAt: expiresAt || '2026-12-01T12:02:00Z',
  };
  if (renewAfter !== null) body.renewAfter = renewAfter;
  return answer(200, body, { 'x-request-id': `request-${n}` });
}

/**
 * A scripted fetch. `script(call)` answers each request: a Response, a
 * thrown error, or `'hang'` (never answers until aborted). Calls are
 * recorded with their URL, init and whether their signal was aborted;
 * `call.reject(error)` fails one in flight (a connection dropped under it).
 */
export function scriptedFetch(script) {
  const calls = [];
  const fetch = (url, init) => {
    const call = { url, init, aborted: false, n: calls.length + 1 };
    calls.push(call);
    return new Promise((resolve, reject) => {
      call.reject = reject;
      const signal = init && init.signal;
      const onAbort = () => {
        call.aborted = true;
        const error = new Error('The operation was aborted.');
        error.name = 'AbortError';
        reject(error);
      };
      if (signal) {
        if (signal.aborted) return onAbort();
        signal.addEventListener('abort', onAbort);
      }
      let outcome;
      try {
        outcome = script(call);
      } catch (error) {
        reject(error);
        return undefined;
      }
      if (outcome === 'hang') return undefined;
      Promise.resolve(outcome).then(resolve, reject);
      return undefined;
    });
  };
  const tokenCalls = () => calls.filter((c) => c.init && c.init.method === 'POST');
  return { fetch, calls, tokenCalls };
}
