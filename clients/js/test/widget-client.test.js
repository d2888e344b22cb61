// The token client's rules, on a virtual page (fake clocks, timers,
// document and fetch). Run with `node --test`.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { WidgetTokenClient, WidgetTokenError, parseRetryAfter } from '../widget-client.js';
import { FakePage, answer, flush, scriptedFetch, tokenAnswer } from './fake-environment.js';

const URL = 'https://sa.example/v1/widget-token';
const S = 1000;

/** A client on a fake page; `script` answers the requests. */
function setUp(script, options = {}, page = new FakePage()) {
  const fake = scriptedFetch(script);
  const events = { token: [], error: [] };
  const client = new WidgetTokenClient(
    Object.assign(
      {
        url: URL,
        fetch: fake.fetch,
        environment: page.environment(),
        onToken: (t) => events.token.push(t),
        onError: (e) => events.error.push(e),
      },
      options,
    ),
  );
  return { page, client, fake, events };
}

/** Answers token n to the n-th token request. */
const tokens = (options) => (call) =>
  call.init.method === 'POST' ? tokenAnswer(call.n, options) : answer(204);

test('concurrent callers share one request and its token', async () => {
  const { client, fake } = setUp(tokens(), { renewal: 'on-demand' });
  const all = await Promise.all(Array.from({ length: 20 }, () => client.getToken()));
  assert.equal(fake.tokenCalls().length, 1);
  assert.ok(all.every((t) => t === all[0]));
  assert.equal(all[0].token, 'psat=token-1');
  assert.equal(all[0].renewAfter, 90);
  // Fresh: no request.
  assert.equal(await client.getToken(), all[0]);
  assert.equal(fake.tokenCalls().length, 1);
  const init = fake.calls[0].init;
  assert.equal(init.method, 'POST');
  assert.equal(init.credentials, 'omit');
  assert.equal(init.mode, 'cors');
});

test('renewal follows renewAfter, counted from the answer, and emits the new token', async () => {
  const { page, client, fake, events } = setUp(tokens());
  await page.advance(0);
  assert.equal(fake.tokenCalls().length, 1, 'auto renewal gets the first token at once');
  await page.advance(89 * S);
  assert.equal(fake.tokenCalls().length, 1);
  await page.advance(1 * S);
  assert.equal(fake.tokenCalls().length, 2);
  assert.deepEqual(
    events.token.map((t) => t.token),
    ['psat=token-1', 'psat=token-2'],
  );
  assert.equal((await client.getToken()).token, 'psat=token-2');
  client.stop();
});

test('without a hint it renews at 3/4 of the life or 10 s before expiry, whichever is sooner', async () => {
  const { page, fake } = setUp(tokens({ expiresIn: 20, renewAfter: null }));
  await page.advance(0);
  await page.advance(9.9 * S);
  assert.equal(fake.tokenCalls().length, 1);
  await page.advance(0.1 * S);
  assert.equal(fake.tokenCalls().length, 2);
});

test('a hint that is not below expiresIn is ignored', async () => {
  const { page, fake } = setUp(tokens({ expiresIn: 120, renewAfter: 500 }));
  await page.advance(0);
  await page.advance(89 * S);
  assert.equal(fake.tokenCalls().length, 1);
  await page.advance(1 * S);
  assert.equal(fake.tokenCalls().length, 2, 'the default 3/4 of the life');
});

test('a clock six hours wrong changes nothing: expiresAt is never compared with it', async () => {
  for (const offset of [6 * 3600 * S, -6 * 3600 * S]) {
    const page = new FakePage({ wallOffsetMs: offset });
    const { client, fake, events } = setUp(tokens({ expiresAt: '2026-12-01T12:02:00Z' }), {}, page);
    const first = await client.getToken();
    assert.equal(first.expiresAt, '2026-12-01T12:02:00Z');
    assert.equal(client.token, first, 'valid although expiresAt is hours away on this clock');
    await page.advance(89 * S);
    assert.equal(fake.tokenCalls().length, 1);
    await page.advance(1 * S);
    assert.equal(fake.tokenCalls().length, 2);
    // An hour: exactly the renewals the life needs (one every 90 s).
    await page.advance(3600 * S);
    assert.equal(fake.tokenCalls().length, 2 + 40);
    assert.equal(events.error.length, 0);
    client.stop();
  }
});

test('after a sleep longer than the life, the next call gets a new token, never the expired one', async () => {
  const { page, client, fake } = setUp(tokens(), { renewal: 'on-demand' });
  const first = await client.getToken();
  await page.sleep(300 * S);
  assert.equal(client.token, null, 'expired on the wall clock');
  const second = await client.getToken();
  assert.notEqual(second, first);
  assert.equal(fake.tokenCalls().length, 2);
});

test('after a sleep, waking the page renews at once', async () => {
  for (const event of ['visibilitychange', 'focus', 'online', 'pageshow', 'resume']) {
    const { page, fake } = setUp(tokens());
    await page.advance(0);
    await page.sleep(300 * S);
    assert.equal(fake.tokenCalls().length, 1);
    const target = event === 'visibilitychange' || event === 'resume' ? page.document : page.window;
    target.dispatch(event);
    await flush();
    assert.equal(fake.tokenCalls().length, 2, event);
  }
});

test('after a sleep with no page event, the periodic check renews within seconds', async () => {
  const { page, fake } = setUp(tokens());
  await page.advance(0);
  await page.sleep(100 * S);
  await page.advance(5 * S);
  assert.equal(fake.tokenCalls().length, 2);
});

test('a wall-clock jump while the page runs: back, renewal stays on time; forward, it comes early, once', async () => {
  {
    const { page, fake } = setUp(tokens());
    await page.advance(0);
    await page.advance(30 * S);
    await page.jumpWall(-3 * 3600 * S);
    await page.advance(59 * S);
    assert.equal(fake.tokenCalls().length, 1);
    await page.advance(1 * S);
    assert.equal(fake.tokenCalls().length, 2, 'on time by the monotonic clock');
  }
  {
    const { page, fake } = setUp(tokens());
    await page.advance(0);
    await page.advance(30 * S);
    await page.jumpWall(3 * 3600 * S);
    await page.advance(5 * S);
    assert.equal(fake.tokenCalls().length, 2, 'taken for a sleep: renewed early');
    await page.advance(80 * S);
    assert.equal(fake.tokenCalls().length, 2, 'then the new token lives its life');
  }
});

test('429 with Retry-After: nothing is sent before it passes', async () => {
  let n = 0;
  const { page, client, fake, events } = setUp(
    (call) => {
      n += 1;
      return n === 1
        ? answer(429, { error: 'rate_limited', message: 'slow down', requestId: 'r-1' }, { 'retry-after': '10' })
        : tokenAnswer(n);
    },
    { renewal: 'on-demand' },
  );
  const refused = await client.getToken().catch((e) => e);
  assert.ok(refused instanceof WidgetTokenError);
  assert.equal(refused.code, 'rate_limited');
  assert.equal(refused.status, 429);
  assert.equal(refused.requestId, 'r-1');
  assert.equal(refused.retryAfterMs, 10 * S);
  assert.equal(refused.transient, true);
  assert.equal(refused.retryable, false, 'on demand: the client does not retry by itself');
  // A caller during the backoff waits for the next attempt: no request now.
  const waiting = client.getToken();
  await page.advance(9.9 * S);
  assert.equal(fake.tokenCalls().length, 1);
  await page.advance(0.1 * S);
  assert.equal(fake.tokenCalls().length, 2);
  assert.equal((await waiting).token, 'psat=token-2');
  assert.equal(events.error.length, 1);
});

test('503 without Retry-After: exponential backoff with full jitter, then the cap', async () => {
  const { page, fake, events } = setUp(
    () => answer(503, { error: 'upstream_busy', message: 'busy', requestId: 'r' }),
    { maxRetries: 3, retryInitialDelayMs: 1000 },
  );
  page.randomValue = 1; // the top of each jitter range
  await page.advance(0);
  const sentAt = () => fake.tokenCalls().length;
  assert.equal(sentAt(), 1);
  await page.advance(999);
  assert.equal(sentAt(), 1);
  await page.advance(1);
  assert.equal(sentAt(), 2, 'after 1 s');
  await page.advance(2 * S);
  assert.equal(sentAt(), 3, 'after 2 s more');
  await page.advance(4 * S);
  assert.equal(sentAt(), 4, 'after 4 s more');
  // The cap: three retries, then it gives up and stops asking.
  await page.advance(3600 * S);
  assert.equal(sentAt(), 4);
  const last = events.error[events.error.length - 1];
  assert.equal(last.code, 'upstream_busy');
  assert.equal(last.retryable, false);
  assert.match(last.message, /gave up after 4 attempts/);
  assert.equal(page.pendingTimers(), 1, 'only the periodic check');
});

test('full jitter draws the wait from the whole range', async () => {
  const { page, fake } = setUp(() => answer(503, { error: 'upstream_busy' }), { renewal: 'always' });
  page.randomValue = 0.25;
  await page.advance(0);
  await page.advance(499);
  assert.equal(fake.tokenCalls().length, 1, 'no retry sooner than 500 ms');
  await page.advance(1);
  assert.equal(fake.tokenCalls().length, 2);
  await page.advance(500);
  assert.equal(fake.tokenCalls().length, 3, '0.25 of 2 s');
});

test('a network error is retried, and at once when the browser is back online', async () => {
  let down = true;
  const { page, fake, events } = setUp((call) => {
    if (down) throw new TypeError('Failed to fetch');
    return call.init.method === 'POST' ? tokenAnswer(call.n) : answer(204);
  });
  await page.advance(0);
  assert.equal(events.error[0].code, 'network_error');
  assert.equal(events.error[0].retryable, true);
  assert.deepEqual(
    fake.calls.slice(1, 3).map((c) => c.init.mode),
    ['cors', 'no-cors'],
    'the reachability probes',
  );
  down = false;
  page.window.dispatch('online');
  await flush();
  assert.equal(events.token.length, 1);
});

test('a final refusal stops the client for good', async () => {
  for (const [status, code] of [[403, 'origin_not_allowed'], [403, 'origin_required'], [400, 'bad_origin']]) {
    const { page, client, fake, events } = setUp(() =>
      answer(status, { error: code, message: 'no', requestId: 'r-403' }),
    );
    const refused = await client.getToken().catch((e) => e);
    assert.equal(refused.code, code);
    assert.equal(refused.final, true);
    assert.equal(refused.requestId, 'r-403');
    assert.equal(client.stopped, true);
    const again = await client.getToken().catch((e) => e);
    assert.equal(again, refused);
    await page.advance(3600 * S);
    page.window.dispatch('online');
    await flush();
    assert.equal(fake.tokenCalls().length, 1, 'never asked again');
    assert.equal(events.error.length, 1);
    assert.equal(page.pendingTimers(), 0);
    assert.equal(page.document.count() + page.window.count(), 0, 'page listeners removed');
  }
});

/** The service as a browser on an origin off the allowlist sees it: no CORS answer. */
const refusedOrigin = (call) => {
  if (call.init.mode !== 'no-cors') throw new TypeError('Failed to fetch');
  return answer(200);
};

test('a refusal the browser hides is inferred from a reachable service, and retried slowly', async () => {
  const { page, client, fake, events } = setUp(refusedOrigin, { maxRetries: 2 });
  const refused = await client.getToken().catch((e) => e);
  assert.equal(refused.code, 'origin_not_allowed');
  assert.equal(refused.inferred, true);
  assert.equal(refused.final, false, 'a proxy error page looks the same');
  assert.equal(refused.retryable, true);
  assert.deepEqual(
    fake.calls.map((c) => [c.init.method, c.init.mode, c.url]),
    [
      ['POST', 'cors', URL],
      ['GET', 'cors', 'https://sa.example/healthz'],
      ['GET', 'no-cors', 'https://sa.example/healthz'],
    ],
  );
  // Slowly: the next attempt after the longest backoff, then the cap.
  await page.advance(59 * S);
  assert.equal(fake.tokenCalls().length, 1);
  await page.advance(3600 * S);
  assert.equal(fake.tokenCalls().length, 3);
  assert.equal(events.error[events.error.length - 1].retryable, false);
});

test('a failed request while the service answers this origin is a network error', async () => {
  const { client } = setUp((call) => {
    if (call.init.method === 'POST') throw new TypeError('Failed to fetch');
    return answer(200);
  });
  const error = await client.getToken().catch((e) => e);
  assert.equal(error.code, 'network_error');
  assert.equal(error.inferred, false);
});

test('once a token came, a hidden answer is retried (a proxy error page has no CORS either)', async () => {
  let n = 0;
  const { page, client } = setUp(
    (call) => {
      if (call.init.method !== 'POST') return answer(200);
      n += 1;
      if (n === 2) throw new TypeError('Failed to fetch');
      return tokenAnswer(n);
    },
    { renewal: 'always' },
  );
  await client.getToken();
  await page.advance(90 * S);
  assert.equal(client.stopped, false);
  await page.advance(2 * S);
  assert.equal((await client.getToken()).token, 'psat=token-3');
});

test('stop during a request aborts it, rejects its callers and leaves no timer', async () => {
  const { page, client, fake } = setUp(() => 'hang');
  const waiting = client.getToken();
  await flush();
  client.stop();
  const error = await waiting.catch((e) => e);
  assert.equal(error.code, 'stopped');
  assert.equal(fake.calls[0].aborted, true);
  assert.equal(page.pendingTimers(), 0);
  assert.equal(page.document.count() + page.window.count(), 0, 'listeners removed');
  assert.equal((await client.getToken().catch((e) => e)).code, 'stopped');
});

test('every request times out', async () => {
  const { page, client, fake } = setUp(() => 'hang', { timeoutMs: 10 * S, renewal: 'on-demand' });
  const waiting = client.getToken().catch((e) => e);
  await page.advance(10 * S);
  const error = await waiting;
  assert.equal(error.code, 'timeout');
  assert.equal(error.transient, true);
  assert.equal(fake.calls[0].aborted, true);
});

test('renewal pauses while the page is hidden and resumes at once when shown', async () => {
  const { page, fake } = setUp(tokens());
  await page.advance(0);
  await page.setHidden(true);
  await page.advance(600 * S);
  assert.equal(fake.tokenCalls().length, 1, 'a hidden tab mints nothing');
  await page.setHidden(false);
  assert.equal(fake.tokenCalls().length, 2);
});

test("renewal 'always' renews while hidden; 'on-demand' never by itself", async () => {
  {
    const { page, fake } = setUp(tokens(), { renewal: 'always' });
    await page.advance(0);
    await page.setHidden(true);
    await page.advance(3600 * S);
    assert.equal(fake.tokenCalls().length, 41, 'an always-on tab: 40 renewals an hour for 120 s tokens');
  }
  {
    const { page, client, fake } = setUp(tokens(), { renewal: 'on-demand' });
    await page.advance(3600 * S);
    assert.equal(fake.tokenCalls().length, 0);
    await client.getToken();
    await page.advance(3600 * S);
    assert.equal(fake.tokenCalls().length, 1);
  }
});

test('an idle page stops renewing until the visitor is back', async () => {
  const { page, fake } = setUp(tokens(), { idleTimeoutMs: 300 * S });
  await page.advance(0);
  await page.advance(600 * S);
  assert.equal(fake.tokenCalls().length, 4, 'renewals at 90, 180 and 270 s, then idle');
  page.document.dispatch('keydown');
  await flush();
  assert.equal(fake.tokenCalls().length, 5, 'renewed at once');
});

test('past its renewal time, a valid token is returned while the renewal runs', async () => {
  const { page, client, fake } = setUp((call) => (call.n === 1 ? tokenAnswer(1) : 'hang'), {
    renewal: 'on-demand',
  });
  const first = await client.getToken();
  await page.advance(100 * S);
  assert.equal(await client.getToken(), first, 'still valid: returned at once');
  assert.equal(fake.tokenCalls().length, 2, 'and a renewal started');
  assert.equal(await client.getToken(), first, 'one renewal for all callers');
  assert.equal(fake.tokenCalls().length, 2);
  client.stop();
});

test('renew gets a new token now, shared by concurrent callers', async () => {
  const { client, fake } = setUp(tokens(), { renewal: 'on-demand' });
  const first = await client.getToken();
  const [a, b] = await Promise.all([client.renew(), client.renew()]);
  assert.equal(fake.tokenCalls().length, 2);
  assert.equal(a, b);
  assert.notEqual(a, first);
  assert.equal(client.token, a);
});

test('bad answers are errors that name what is wrong', async () => {
  for (const body of [{}, { token: '', discoverUri: 'x', applicationSessionId: 's', expiresIn: 10 }, 'not json']) {
    const { client } = setUp(() => new Response(typeof body === 'string' ? body : JSON.stringify(body), { status: 200 }), {
      renewal: 'on-demand',
    });
    const error = await client.getToken().catch((e) => e);
    assert.equal(error.code, 'bad_answer');
    assert.equal(error.transient, true);
  }
  const { client } = setUp(() => tokenAnswer(1, { expiresIn: 2, renewAfter: 1 }), { renewal: 'on-demand' });
  assert.match((await client.getToken().catch((e) => e)).message, /expires in 2 s/);
});

test('429 without Retry-After backs off; 503 with Retry-After waits it out, capped at 10 minutes', async () => {
  {
    let n = 0;
    const { page, fake } = setUp(() => {
      n += 1;
      return n === 1 ? answer(429, { error: 'rate_limited' }) : tokenAnswer(n);
    });
    page.randomValue = 1;
    await page.advance(0);
    await page.advance(999);
    assert.equal(fake.tokenCalls().length, 1);
    await page.advance(1);
    assert.equal(fake.tokenCalls().length, 2, 'the first backoff step');
  }
  for (const [retryAfter, waitS] of [['30', 30], ['3600', 600]]) {
    let n = 0;
    const { page, fake } = setUp(() => {
      n += 1;
      return n === 1 ? answer(503, { error: 'upstream_busy' }, { 'retry-after': retryAfter }) : tokenAnswer(n);
    });
    await page.advance(0);
    await page.advance((waitS - 1) * S);
    assert.equal(fake.tokenCalls().length, 1, `Retry-After ${retryAfter}`);
    await page.advance(1 * S);
    assert.equal(fake.tokenCalls().length, 2, `Retry-After ${retryAfter}`);
  }
});

test('after giving up, a page event or a call tries once, after the longest backoff, and gives up again', async () => {
  const { page, client, fake, events } = setUp(() => answer(503, { error: 'upstream_busy' }), {
    maxRetries: 1,
    retryMaxDelayMs: 60 * S,
  });
  await page.advance(0);
  await page.advance(1 * S);
  assert.equal(fake.tokenCalls().length, 2, 'one retry, then it gave up');
  await page.advance(30 * S);
  assert.equal(fake.tokenCalls().length, 2, 'given up: no retry by itself');
  for (let i = 0; i < 5; i += 1) {
    page.window.dispatch('focus');
    client.getToken().catch(() => {});
  }
  await flush();
  assert.equal(fake.tokenCalls().length, 2, 'no request before the backoff ends');
  await page.advance(30 * S);
  assert.equal(fake.tokenCalls().length, 3, 'one attempt for all of them, 60 s after the last');
  await page.advance(600 * S);
  assert.equal(fake.tokenCalls().length, 3, 'and it gave up again');
  assert.equal(events.error[events.error.length - 1].retryable, false);
});

test('a failure that will not pass by itself is not retried, and calls cannot hammer it', async () => {
  const { page, client, fake } = setUp(() => answer(404, { error: 'not_found' }), { retryMaxDelayMs: 60 * S });
  const first = await client.getToken().catch((e) => e);
  assert.equal(first.code, 'not_found');
  assert.equal(first.transient, false);
  assert.equal(first.retryable, false);
  for (let i = 0; i < 50; i += 1) client.getToken().catch(() => {});
  await page.advance(59 * S);
  assert.equal(fake.tokenCalls().length, 1);
  await page.advance(1 * S);
  assert.equal(fake.tokenCalls().length, 2);
});

test('a flapping network skips the backoff once, not at every online event', async () => {
  const { page, fake } = setUp(() => {
    throw new TypeError('Failed to fetch');
  }, { retryInitialDelayMs: 30 * S });
  page.randomValue = 1;
  await page.advance(0);
  assert.equal(fake.tokenCalls().length, 1);
  for (let i = 0; i < 10; i += 1) {
    page.window.dispatch('online');
    await flush();
  }
  assert.equal(fake.tokenCalls().length, 2, 'one skip');
  await page.advance(60 * S);
  assert.equal(fake.tokenCalls().length, 3, 'then the backoff: 60 s for the second step');
});

test('hidden during a backoff: no request until shown', async () => {
  let n = 0;
  const { page, fake } = setUp(() => {
    n += 1;
    return n === 1 ? answer(503, { error: 'upstream_busy' }) : tokenAnswer(n);
  });
  await page.advance(0);
  await page.setHidden(true);
  await page.advance(600 * S);
  assert.equal(fake.tokenCalls().length, 1);
  await page.setHidden(false);
  assert.equal(fake.tokenCalls().length, 2);
});

test('stop during the probe or a backoff leaves nothing running', async () => {
  {
    const { page, client, fake } = setUp((call) => {
      if (call.init.method === 'POST') throw new TypeError('Failed to fetch');
      return 'hang';
    });
    await flush();
    assert.equal(fake.calls[1].init.mode, 'cors');
    client.stop();
    await flush();
    assert.equal(fake.calls[1].aborted, true);
    assert.equal(page.pendingTimers(), 0);
    await page.advance(3600 * S);
    assert.equal(fake.tokenCalls().length, 1);
  }
  {
    const { page, client, fake } = setUp(() => answer(503, { error: 'upstream_busy' }));
    await page.advance(0);
    client.stop();
    assert.equal(page.pendingTimers(), 0);
    await page.advance(3600 * S);
    assert.equal(fake.tokenCalls().length, 1);
    assert.equal(client.token, null);
  }
});

test('a fetch of your own that ignores the abort signal still times out', async () => {
  const fetch = () => new Promise(() => {});
  const page = new FakePage();
  const client = new WidgetTokenClient({ url: URL, fetch, environment: page.environment(), timeoutMs: 5 * S, renewal: 'on-demand' });
  const waiting = client.getToken().catch((e) => e);
  await page.advance(5 * S);
  // The probes time out too (10 s at most each).
  await page.advance(20 * S);
  const error = await waiting;
  assert.ok(['timeout', 'network_error'].includes(error.code), error.code);
  assert.equal(error.transient, true);
});

test("a listener's exception is reported, and the client goes on", async () => {
  const reported = [];
  const saved = globalThis.reportError;
  globalThis.reportError = (e) => reported.push(e);
  try {
    const { client } = setUp(tokens(), {
      renewal: 'on-demand',
      onToken: () => {
        throw new Error('the page broke');
      },
    });
    const token = await client.getToken();
    assert.equal(token.token, 'psat=token-1');
    assert.equal(reported.length, 1);
    assert.equal(reported[0].message, 'the page broke');
  } finally {
    globalThis.reportError = saved;
  }
});

test('options are checked', () => {
  assert.throws(() => new WidgetTokenClient({}), /url/);
  assert.throws(() => new WidgetTokenClient({ url: URL, renewal: 'sometimes' }), /renewal/);
  assert.throws(() => new WidgetTokenClient({ url: URL, timeoutMs: -1 }), /timeoutMs/);
  assert.throws(() => new WidgetTokenClient({ url: URL, timeoutMs: 0 }), /timeoutMs/);
  assert.throws(() => new WidgetTokenClient({ url: URL, checkIntervalMs: Infinity }), /checkIntervalMs/);
  assert.throws(() => new WidgetTokenClient({ url: URL, retryMaxDelayMs: NaN }), /retryMaxDelayMs/);
  const { client } = setUp(tokens(), { renewal: 'on-demand' });
  assert.throws(() => client.on('tokens', () => {}), /unknown event/);
});

test('a site ticket goes with each request, fetched anew each time when a function', async () => {
  let n = 0;
  const { client, fake } = setUp(tokens(), {
    renewal: 'on-demand',
    ticket: async () => {
      n += 1;
      return `t1.9.ticket-${n}.sig`;
    },
  });
  await client.getToken();
  await client.renew();
  const bodies = fake.tokenCalls().map((c) => JSON.parse(c.init.body));
  assert.deepEqual(bodies, [{ ticket: 't1.9.ticket-1.sig' }, { ticket: 't1.9.ticket-2.sig' }]);
  // A fixed one; none (the plain `{}`); a function that fails is a
  // transient `ticket_unavailable`, with no request sent.
  const fixed = setUp(tokens(), { renewal: 'on-demand', ticket: 'fixed-ticket' });
  await fixed.client.getToken();
  assert.equal(fixed.fake.tokenCalls()[0].init.body, '{"ticket":"fixed-ticket"}');
  const none = setUp(tokens(), { renewal: 'on-demand' });
  await none.client.getToken();
  assert.equal(none.fake.tokenCalls()[0].init.body, '{}');
  const failing = setUp(tokens(), { renewal: 'on-demand', ticket: () => { throw new Error('site down'); } });
  const error = await failing.client.getToken().catch((e) => e);
  assert.equal(error.code, 'ticket_unavailable');
  assert.equal(error.transient, true);
  assert.equal(failing.fake.tokenCalls().length, 0);
  assert.throws(() => new WidgetTokenClient({ url: URL, ticket: 7 }), /ticket/);
  // An expired ticket is retried by itself, with the next ticket.
  let served = 0;
  const expiring = setUp((call) => {
    if (call.init.method !== 'POST') return answer(204);
    served += 1;
    return JSON.parse(call.init.body).ticket === 'fresh'
      ? tokenAnswer(call.n)
      : answer(403, { error: 'ticket_expired', message: 'old', requestId: 'r' });
  }, { ticket: () => (served === 0 ? 'stale' : 'fresh') });
  const first = await expiring.client.getToken().catch((e) => e);
  assert.equal(first.code, 'ticket_expired');
  assert.equal(first.transient, true);
  await expiring.page.advance(60 * 1000);
  assert.equal(expiring.events.token.length, 1, 'renewed with the fresh ticket');
  expiring.client.stop();
  // A fixed ticket that expired stays expired: not retried by itself.
  const fixedExpired = setUp(() => answer(403, { error: 'ticket_expired', message: 'old', requestId: 'r' }), {
    ticket: 'stale',
  });
  const stale = await fixedExpired.client.getToken().catch((e) => e);
  assert.equal(stale.transient, false);
  fixedExpired.client.stop();
  // A ticket function that never settles fails as a timeout; once stopped,
  // nothing is sent.
  const hanging = setUp(tokens(), { renewal: 'on-demand', timeoutMs: 5000, ticket: () => new Promise(() => {}) });
  const waited = hanging.client.getToken().catch((e) => e);
  await hanging.page.advance(5000);
  assert.equal((await waited).code, 'timeout');
  assert.equal(hanging.fake.tokenCalls().length, 0);
  let release;
  const late = setUp(tokens(), { renewal: 'on-demand', ticket: () => new Promise((r) => { release = r; }) });
  const pending = late.client.getToken().catch((e) => e);
  await flush();
  late.client.stop();
  release('t1.9.ticket-late.sig');
  assert.equal((await pending).code, 'stopped');
  await flush();
  assert.equal(late.fake.tokenCalls().length, 0, 'a request after stop()');
});

test('Retry-After in seconds or as a date', () => {
  const now = Date.UTC(2026, 11, 1, 12, 0, 0);
  assert.equal(parseRetryAfter('5', now), 5000);
  assert.equal(parseRetryAfter('Tue, 01 Dec 2026 12:00:30 GMT', now), 30000);
  assert.equal(parseRetryAfter('Tue, 01 Dec 2026 11:00:00 GMT', now), 0);
  assert.equal(parseRetryAfter('soon', now), undefined);
  assert.equal(parseRetryAfter(null, now), undefined);
});
