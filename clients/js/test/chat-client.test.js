// The chat client's rules, against a scripted UCWA on a virtual page. Run
// with `node --test`.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { ChatError, ChatSession, decodeDataUri } from '../chat-client.js';
import { FakePage, answer, flush, scriptedFetch } from './fake-environment.js';

const S = 1000;
const API = 'https://api.example';
const APP = '/ucwa/psanon/v1/applications/a1';
const CONV = `${APP}/communication/conversations/c1`;

/** An empty answer (a 204 has no body). */
const noContent = () => new Response(null, { status: 204 });

/** A scripted UCWA: polls wait for batches the test pushes. */
function ucwa() {
  const batches = [];
  let waiting = null;
  const server = {
    /** What the client sent wrong (asserted empty by each test). */
    violations: [],
    /** The token every request must carry. */
    token: 'psat=token-1',
    /** Whether to answer a request 401 (a refused token). */
    refuse: null,
    polls: [],
    /** Each next link handed out. */
    given: [],
    sends: [],
    typing: 0,
    stops: 0,
    fail: null,
    push(events) {
      batches.push(events);
      if (waiting) {
        const w = waiting;
        waiting = null;
        w();
      }
    },
  };
  server.script = (call) => {
    const url = new URL(call.url);
    const method = call.init.method;
    if (call.init.headers.Authorization !== `Bearer ${server.token}`) server.violations.push(`authorization on ${url.pathname}`);
    if (server.refuse && server.refuse(url, method)) return answer(401, { code: 'Unauthorized', subcode: 'InvalidAnonymousToken' });
    if (url.pathname === '/platformservice/discover') {
      return answer(200, { _links: { anonApplications: { href: '/ucwa/psanon/v1/applications' } } });
    }
    if (method === 'POST' && url.pathname === '/ucwa/psanon/v1/applications') {
      const body = JSON.parse(call.init.body);
      if (body.culture !== 'en-US') server.violations.push('culture');
      return answer(201, {
        _links: { self: { href: APP }, events: { href: `${APP}/events?ack=1&key=a1` } },
        _embedded: { communication: { _links: { startMessaging: { href: `${APP}/communication/messagingInvitations` } } } },
      });
    }
    if (url.pathname === `${APP}/events`) {
      const ack = Number(url.searchParams.get('ack'));
      server.polls.push(ack);
      if (server.fail) {
        const f = server.fail;
        server.fail = null;
        return f();
      }
      const serve = () => {
        const events = batches.shift();
        const next = server.nextLink ? server.nextLink(ack + 1) : `${APP}/events?ack=${ack + 1}&key=a1`;
        server.given.push(next);
        return answer(200, {
          _links: { next: { href: next } },
          sender: [{ rel: 'conversation', href: CONV, events }],
        });
      };
      if (batches.length > 0) return serve();
      return new Promise((resolve) => {
        waiting = () => resolve(serve());
      });
    }
    if (method === 'POST' && url.pathname === `${APP}/communication/messagingInvitations`) {
      if (JSON.parse(call.init.body).to !== 'sip:helpdesk@contoso.com') server.violations.push('to');
      return answer(201);
    }
    if (method === 'POST' && url.pathname === `${CONV}/messaging/messages`) {
      server.sends.push({ text: call.init.body, operationId: url.searchParams.get('operationId') });
      return answer(201, undefined, { location: `${CONV}/messaging/messages/${server.sends.length}` });
    }
    if (method === 'POST' && url.pathname === `${CONV}/messaging/typing`) {
      server.typing += 1;
      return noContent();
    }
    if (method === 'POST' && url.pathname === `${CONV}/messaging/terminate`) {
      server.stops += 1;
      return noContent();
    }
    if (method === 'DELETE' && url.pathname === APP) {
      server.signedOut = true;
      return noContent();
    }
    if (method === 'GET' && url.pathname === `${CONV}/messaging/messages/linked`) {
      return answer(200, incoming('linked', 'fetched by its link')._embedded.message);
    }
    return answer(404, { code: 'NotFound' });
  };
  return server;
}

const connected = {
  link: { rel: 'messaging', href: `${CONV}/messaging` },
  type: 'updated',
  _embedded: {
    messaging: {
      state: 'Connected',
      _links: {
        sendMessage: { href: `${CONV}/messaging/messages` },
        setIsTyping: { href: `${CONV}/messaging/typing` },
        stopMessaging: { href: `${CONV}/messaging/terminate` },
      },
    },
  },
};

function incoming(n, text, from = 'Anna (Support)', kind = 'started') {
  return {
    link: { rel: 'message', href: `${CONV}/messaging/messages/${n}` },
    type: kind,
    _embedded: {
      message: {
        direction: 'Incoming',
        _links: {
          participant: { href: `${CONV}/participants/p`, title: from },
          plainMessage: { href: `data:text/plain;charset=utf-8,${encodeURIComponent(text).replace(/%20/g, '+')}` },
        },
      },
    },
  };
}

const typing = (kind) => ({
  link: { rel: 'participant', href: `${CONV}/participants/p`, title: 'Anna (Support)' },
  in: { rel: 'typingParticipants', href: `${CONV}/messaging/typingParticipants` },
  type: kind,
});

async function setUp(options = {}) {
  const page = new FakePage();
  const server = ucwa();
  const fake = scriptedFetch(server.script);
  const chat = new ChatSession(Object.assign({
    discoverUri: `${API}/platformservice/discover?anonymousContext=psat%253dtoken-1`,
    token: 'psat=token-1',
    to: 'sip:helpdesk@contoso.com',
    fetch: fake.fetch,
    environment: page.environment(),
  }, options));
  const seen = { state: [], message: [], typing: [], sent: [], ended: [], error: [] };
  chat.on('state', (s) => seen.state.push(s));
  chat.on('message', (m) => seen.message.push(m));
  chat.on('typing', (t) => seen.typing.push(t));
  chat.on('message-state', (m) => seen.sent.push(m.state));
  chat.on('ended', (e) => seen.ended.push(e));
  chat.on('error', (e) => seen.error.push(e));
  await chat.start();
  await flush();
  return { page, server, fake, chat, seen };
}

/** Nothing left running: no timer, no listener, no poll to come. */
async function assertIdle({ page, server }) {
  const polls = server.polls.length;
  await page.advance(60 * S);
  assert.equal(server.polls.length, polls, 'no poll after the end');
  assert.equal(page.pendingTimers(), 0);
  assert.equal(page.document.count() + page.window.count(), 0, 'no listener left');
  assert.deepEqual(server.violations, []);
}

test('a whole chat: connected, messages in order and once, typing, a message sent, the end', async () => {
  const { page, server, chat, seen } = await setUp();
  assert.deepEqual(seen.state, ['connecting']);
  server.push([connected, incoming(1, 'Welcome! How can we help?', 'Help Desk')]);
  await flush();
  assert.equal(chat.state, 'connected');
  assert.deepEqual(seen.message.map((m) => [m.from, m.text]), [['Help Desk', 'Welcome! How can we help?']]);
  // Sent: sending, then delivered.
  const sent = await chat.send('Where is my order? 100% + tax');
  assert.equal(sent.state, 'delivered');
  assert.deepEqual(seen.sent, ['sending', 'delivered']);
  assert.equal(server.sends[0].text, 'Where is my order? 100% + tax');
  assert.match(server.sends[0].operationId, /^w-msg-/);
  // Typing: once per interval, however often the visitor types.
  assert.equal(await chat.typing(), true);
  assert.equal(await chat.typing(), false);
  await page.advance(3 * S);
  assert.equal(await chat.typing(), true);
  assert.equal(server.typing, 2);
  // The agent types, then answers; a started and a completed event of one
  // message make one message.
  server.push([typing('added')]);
  await flush();
  server.push([typing('deleted'), incoming(2, 'Let me check'), incoming(2, 'Let me check', 'Anna (Support)', 'completed')]);
  await flush();
  assert.deepEqual(seen.typing, [{ name: 'Anna (Support)', typing: true }, { name: 'Anna (Support)', typing: false }]);
  assert.deepEqual(seen.message.map((m) => m.text), ['Welcome! How can we help?', 'Let me check']);
  // Polls followed next, in order, never editing ack.
  assert.deepEqual(server.polls, [1, 2, 3, 4]);
  await chat.end();
  assert.equal(server.stops, 1);
  assert.equal(server.signedOut, true);
  assert.deepEqual(seen.ended, [{ by: 'visitor', code: 'ended' }]);
  assert.equal(chat.state, 'ended');
  await chat.end();
  assert.equal(seen.ended.length, 1, 'the end is told once');
  await assertIdle({ page, server });
});

test('the help desk ends the chat', async () => {
  const { server, chat, seen } = await setUp();
  server.push([connected]);
  await flush();
  server.push([{ link: { rel: 'conversation', href: CONV }, type: 'deleted' }]);
  await flush();
  assert.deepEqual(seen.ended, [{ by: 'remote', code: 'ended' }]);
  await assert.rejects(chat.send('hello?'), (e) => e instanceof ChatError && e.code === 'not_connected');
  assert.deepEqual(seen.sent, ['failed']);
});

test('a failed poll is tried again at the same ack after a backoff; a wake-up retries at once', async () => {
  const { page, server, seen } = await setUp({ retryInitialDelayMs: 2 * S });
  // The first poll (ack 1) is pending; it is answered, and the next fails.
  server.fail = () => {
    throw new TypeError('Failed to fetch');
  };
  server.push([connected]);
  await flush();
  assert.deepEqual(server.polls, [1, 2], 'the second poll failed');
  await page.advance(499);
  assert.deepEqual(server.polls, [1, 2], 'no retry before the backoff');
  await page.advance(2 * S);
  assert.deepEqual(server.polls, [1, 2, 2], 'the same ack again: nothing lost');
  assert.deepEqual(seen.state, ['connecting', 'connected']);
  // A 409 PGetReplaced on the poll after 'one': that ack again, after the
  // backoff.
  server.fail = () => answer(409, { code: 'Conflict', subcode: 'PGetReplaced' });
  server.push([incoming(7, 'one')]);
  await flush();
  const replaced = server.polls.at(-1);
  assert.equal(server.polls.at(-2) + 1, replaced);
  await page.advance(499);
  assert.equal(server.polls.at(-1), replaced);
  assert.equal(server.polls.filter((a) => a === replaced).length, 1, 'no retry before the backoff');
  await page.advance(2 * S);
  assert.equal(server.polls.filter((a) => a === replaced).length, 2, 'the replaced ack again');
  server.push([incoming(8, 'two')]);
  await flush();
  assert.deepEqual(seen.message.map((m) => m.text), ['one', 'two']);
  // A poll stalled by a sleeping machine: the page shown again re-polls
  // at once, at the same ack.
  const before = server.polls.length;
  await page.setHidden(true);
  await page.setHidden(false);
  assert.equal(server.polls.length, before + 1);
  assert.equal(server.polls.at(-1), server.polls.at(-2));
  server.push([incoming(9, 'three')]);
  await flush();
  assert.deepEqual(seen.message.map((m) => m.text), ['one', 'two', 'three'], 'nothing lost, nothing doubled');
});

test('a poll refused with 503 and Retry-After waits it out, up to the longest backoff', async () => {
  const { page, server } = await setUp({ retryInitialDelayMs: S, retryMaxDelayMs: 20 * S });
  server.fail = () => answer(503, { code: 'ServiceFailure' }, { 'retry-after': '7' });
  server.push([connected]);
  await flush();
  assert.deepEqual(server.polls, [1, 2]);
  await page.advance(6 * S);
  // A wake-up does not cut short a wait the server asked for.
  await page.setHidden(true);
  await page.setHidden(false);
  assert.deepEqual(server.polls, [1, 2], 'not before Retry-After');
  await page.advance(S);
  assert.deepEqual(server.polls, [1, 2, 2], 'then the same ack');
  // A Retry-After longer than the longest backoff waits the longest backoff.
  server.fail = () => answer(503, { code: 'ServiceFailure' }, { 'retry-after': '3600' });
  server.push([incoming(1, 'one')]);
  await flush();
  const polls = server.polls.length;
  await page.advance(19 * S);
  assert.equal(server.polls.length, polls, 'not before the longest backoff');
  await page.advance(S);
  assert.equal(server.polls.length, polls + 1);
});

test('a resync link is followed as given', async () => {
  const { server, fake, seen } = await setUp();
  // Poll 1 is pending: it is answered, and poll 2 is told to resync.
  server.fail = () => answer(200, { _links: { resync: { href: `${APP}/events?ack=9&key=a1` } } });
  server.push([connected]);
  await flush();
  server.push([incoming(1, 'after the resync')]);
  await flush();
  assert.deepEqual(server.polls.slice(0, 3), [1, 2, 9]);
  assert.ok(fake.calls.some((c) => c.url.endsWith('ack=9&key=a1')));
  assert.deepEqual(seen.message.map((m) => m.text), ['after the resync']);
});

test('an application that is gone ends the chat for good', async () => {
  const set = await setUp();
  const { server, seen } = set;
  server.fail = () => answer(404, { code: 'NotFound', subcode: 'ApplicationNotFound' });
  server.push([connected]);
  await flush();
  assert.equal(seen.ended[0].code, 'application_gone');
  assert.ok(seen.error[0].final);
  await assertIdle(set);
});

test('a resume link (conversations reset) ends the chat; stop() ends it at once', async () => {
  const set = await setUp();
  set.server.fail = () => answer(200, { _links: { resume: { href: `${APP}/events?ack=50&key=a1` } } });
  set.server.push([connected]);
  await flush();
  assert.deepEqual(set.seen.ended, [{ by: 'failure', code: 'conversation_reset' }]);
  await assertIdle(set);

  const other = await setUp();
  other.server.push([connected]);
  await flush();
  other.chat.stop();
  assert.deepEqual(other.seen.ended, [{ by: 'visitor', code: 'stopped' }]);
  assert.equal(other.server.stops, 0, 'stop() tells nobody');
  await assertIdle(other);
});

test('malformed answers end the chat with bad_answer, never silently', async () => {
  for (const bad of [
    { _links: { next: { href: `${APP}/events?ack=2` } }, sender: [null] },
    { _links: { next: { href: `${APP}/events?ack=2` } }, sender: [{ events: [null, 7, { link: 'x' }] }] },
    { _links: { next: { href: 'https://[oops' } }, sender: [] },
    { sender: [] },
  ]) {
    const set = await setUp();
    set.server.fail = () => answer(200, bad);
    set.server.push([connected]);
    await flush();
    const ended = set.seen.ended[0] || {};
    if (bad.sender.length > 0 && bad._links.next.href.startsWith('/')) {
      // Unreadable events are skipped; the chat goes on.
      assert.equal(set.chat.state, 'connected', JSON.stringify(bad));
      set.chat.stop();
    } else {
      assert.equal(ended.code, 'bad_answer', JSON.stringify(bad));
    }
    await assertIdle(set);
  }
  // An answer that is not an events resource, and a 4xx that will not pass
  // by asking again, end it too (and are not polled again and again).
  for (const bad of [
    () => new Response('<html>proxy error</html>', { status: 200 }),
    () => answer(200, [1, 2]),
    () => answer(200, null),
    () => answer(400, { code: 'BadRequest', subcode: 'ParameterValidationFailure' }),
    () => answer(405, {}),
  ]) {
    const set = await setUp();
    set.server.fail = bad;
    set.server.push([connected]);
    await flush();
    assert.deepEqual(set.seen.ended, [{ by: 'failure', code: 'bad_answer' }], String(bad));
    assert.ok(set.seen.error[0].final);
    await assertIdle(set);
  }
});

test('the help desk\'s messaging disconnected ends the chat; a message only linked is fetched', async () => {
  const { server, seen } = await setUp();
  server.push([connected, { link: { rel: 'message', href: `${CONV}/messaging/messages/linked` }, type: 'started' }]);
  await flush();
  assert.deepEqual(seen.message.map((m) => m.text), ['fetched by its link']);
  server.push([{ link: { rel: 'messaging', href: `${CONV}/messaging` }, type: 'updated', _embedded: { messaging: { state: 'Disconnected', reason: { subcode: 'Removed' } } } }]);
  await flush();
  assert.deepEqual(seen.ended, [{ by: 'remote', code: 'removed' }]);
});

test('end() during the start stops it; no error carries the token', async () => {
  const page = new FakePage();
  const fake = scriptedFetch(() => 'hang');
  const chat = new ChatSession({
    discoverUri: `${API}/platformservice/discover?anonymousContext=psat%253dSECRET`, token: 'psat=SECRET', to: 'sip:helpdesk@contoso.com',
    fetch: fake.fetch, environment: page.environment(),
  });
  const starting = chat.start();
  await flush();
  await chat.end();
  await assert.rejects(starting, (e) => e.code === 'ended');
  assert.equal(fake.calls.length, 1, 'nothing after the discovery');
  assert.equal(page.document.count() + page.window.count(), 0);

  const failing = scriptedFetch(() => {
    throw new TypeError(`Failed to parse URL from ${API}/platformservice/discover?anonymousContext=psat%253dSECRET`);
  });
  const other = new ChatSession({
    discoverUri: `${API}/platformservice/discover?anonymousContext=psat%253dSECRET`, token: 'psat=SECRET', to: 'sip:helpdesk@contoso.com',
    fetch: failing.fetch, environment: new FakePage().environment(),
  });
  const errors = [];
  other.on('error', (e) => errors.push(e));
  await assert.rejects(other.start(), (e) => e.code === 'unreachable' && !/SECRET|psat/.test(e.message));
  assert.ok(errors.every((e) => !/SECRET|psat/.test(e.message)));
});

test('typing is throttled on the monotonic clock; each sent message keeps its local id', async () => {
  const { page, server, chat, seen } = await setUp();
  server.push([connected]);
  await flush();
  assert.equal(await chat.typing(), true);
  await page.jumpWall(-3600 * S);
  await page.advance(3 * S);
  assert.equal(await chat.typing(), true, 'a clock set back does not silence typing');
  const states = [];
  chat.on('message-state', (m) => states.push([m.localId, m.state]));
  const [a, b] = await Promise.all([chat.send('a'), chat.send('b')]);
  assert.notEqual(a.localId, b.localId);
  assert.deepEqual(states.filter(([id]) => id === a.localId).map(([, st]) => st), ['sending', 'delivered']);
  assert.ok(a.id.startsWith('https://api.example/'), a.id);
  void seen;
});

test('a send that fails is failed; a refused start ends the chat', async () => {
  const { server, chat, seen } = await setUp();
  server.push([connected]);
  await flush();
  const script = server.script;
  server.script = () => answer(500, { code: 'ServiceFailure' });
  chat.fetch = scriptedFetch((call) => server.script(call)).fetch;
  await assert.rejects(chat.send('lost?'));
  assert.deepEqual(seen.sent, ['sending', 'failed']);
  server.script = script;

  const page = new FakePage();
  const refusing = scriptedFetch(() => answer(403, { code: 'Forbidden' }));
  const other = new ChatSession({
    discoverUri: `${API}/platformservice/discover`, token: 'psat=x', to: 'sip:helpdesk@contoso.com',
    fetch: refusing.fetch, environment: page.environment(),
  });
  const ended = [];
  other.on('ended', (e) => ended.push(e));
  await assert.rejects(other.start(), (e) => e.code === 'refused' && e.final && e.status === 403);
  assert.deepEqual(ended, [{ by: 'failure', code: 'refused' }]);
});

test('ack is never edited: each poll is the next link exactly as given, however it is written', async () => {
  const { server, fake, seen } = await setUp();
  // Odd but valid links: other parameters first, escapes, a relative path.
  server.nextLink = (ack) => `events?key=a%2F1&ack=${ack}&x=%7E+y`;
  server.push([connected]);
  await flush();
  server.push([incoming(1, 'one')]);
  await flush();
  const polled = fake.calls.filter((c) => new URL(c.url).pathname === `${APP}/events`).map((c) => c.url);
  assert.deepEqual(polled.slice(1), server.given.map((href) => new URL(href, `${API}${APP}/events`).href));
  assert.equal(polled[1], `${API}${APP}/events?key=a%2F1&ack=2&x=%7E+y`);
  assert.deepEqual(seen.message.map((m) => m.text), ['one']);
});

test('a connection dropped while the poll is held: the same ack again, nothing lost or doubled', async () => {
  const { page, server, fake, seen } = await setUp({ retryInitialDelayMs: S });
  server.push([connected, incoming(1, 'one')]);
  await flush();
  // Poll 2 is held by the server; the network drops under it.
  const held = fake.calls.at(-1);
  assert.equal(new URL(held.url).searchParams.get('ack'), '2');
  held.reject(new TypeError('network error'));
  await flush();
  await page.advance(S);
  assert.deepEqual(server.polls, [1, 2, 2], 'the dropped ack again');
  server.push([incoming(1, 'one'), incoming(2, 'two')]);
  await flush();
  assert.deepEqual(seen.message.map((m) => m.text), ['one', 'two'], 'a message served again is told once');
  assert.deepEqual(server.violations, []);
});

/**
 * Pushes an event that only links its message, and holds the GET of that
 * message; the function that lets the GET be answered.
 */
async function pushHeldLinkedMessage(server, chat) {
  let release = null;
  const script = server.script;
  chat.fetch = scriptedFetch((call) => {
    if (call.init.method === 'GET' && call.url.endsWith('/messages/linked')) {
      return new Promise((resolve) => {
        release = () => resolve(script(call));
      });
    }
    return script(call);
  }).fetch;
  server.push([{ link: { rel: 'message', href: `${CONV}/messaging/messages/linked` }, type: 'started' }]);
  await flush();
  assert.equal(typeof release, 'function', 'the linked message is being fetched');
  return release;
}

test('the next poll goes out before the events are handled; they are handled in order', async () => {
  const { server, seen, chat } = await setUp();
  server.push([connected]);
  await flush();
  // A message only linked, whose GET the server holds: the next poll is
  // out meanwhile, and a message it brings waits for the first.
  const release = await pushHeldLinkedMessage(server, chat);
  const polls = server.polls.length;
  server.push([incoming(9, 'after')]);
  await flush();
  assert.ok(server.polls.length > polls, 'the next poll went out while the event was handled');
  assert.deepEqual(seen.message.map((m) => m.text), [], 'the later message waits for the earlier');
  release();
  await flush();
  assert.deepEqual(seen.message.map((m) => m.text), ['fetched by its link', 'after']);
});

test('a wake-up cuts a backoff longer than Retry-After down to what is left of it', async () => {
  const { page, server } = await setUp({ retryInitialDelayMs: 10 * S, retryMaxDelayMs: 20 * S });
  page.randomValue = 1;
  server.fail = () => answer(503, { code: 'ServiceFailure' }, { 'retry-after': '2' });
  server.push([connected]);
  await flush();
  assert.deepEqual(server.polls, [1, 2]);
  await page.advance(500);
  await page.setHidden(true);
  await page.setHidden(false);
  await page.advance(1400);
  assert.deepEqual(server.polls, [1, 2], 'not before the 2 s asked for');
  await page.advance(100);
  assert.deepEqual(server.polls, [1, 2, 2], 'at the 2 s, not after the 10 s backoff');
});

test('a poll that ends the chat waits for the events before it', async () => {
  const { server, seen, chat } = await setUp();
  server.push([connected]);
  await flush();
  const release = await pushHeldLinkedMessage(server, chat);
  server.fail = () => answer(404, { code: 'NotFound', subcode: 'ApplicationNotFound' });
  server.push([]);
  await flush();
  assert.deepEqual(seen.ended, [], 'not ended while an event is being handled');
  release();
  await flush();
  assert.deepEqual(seen.message.map((m) => m.text), ['fetched by its link']);
  assert.deepEqual(seen.ended, [{ by: 'failure', code: 'application_gone' }]);
});

test('the poll is exempt from the short request timeout', async () => {
  const { page, server, fake, chat } = await setUp({ timeoutMs: 5 * S, pollTimeoutMs: 200 * S });
  server.push([connected]);
  await flush();
  // Held for three minutes (the server's long poll): not aborted.
  await page.advance(180 * S);
  assert.equal(server.polls.length, 2);
  assert.equal(fake.calls.at(-1).aborted, false);
  // A call other than the poll does time out at 5 s.
  chat.fetch = scriptedFetch(() => 'hang').fetch;
  await assert.rejects(
    Promise.all([chat.send('slow'), page.advance(5 * S)]),
    (e) => e.code === 'timeout',
  );
  chat.fetch = fake.fetch;
  assert.equal(fake.calls.at(-1).aborted, false, 'the poll is still held');
  // Past its own timeout the held poll is given up and tried again, at
  // the same ack.
  await page.advance(17 * S);
  assert.ok(fake.calls.find((c) => new URL(c.url).searchParams.get('ack') === '2').aborted);
  assert.deepEqual(server.polls, [1, 2, 2]);
});

/** A token source as the token client is one: getToken, renew. */
function tokenSource(first = 1) {
  let n = first;
  const token = () => ({
    token: `psat=token-${n}`,
    discoverUri: `${API}/platformservice/discover?anonymousContext=psat%253dtoken-${n}`,
    applicationSessionId: `session-${n}`,
  });
  return {
    asked: 0,
    renewed: 0,
    async getToken() {
      this.asked += 1;
      return token();
    },
    async renew() {
      this.renewed += 1;
      n += 1;
      return token();
    },
  };
}

test('with the token client: the chat opens with its token, renews once when refused, then keeps its own', async () => {
  // The first token is refused when the application is made (it expired):
  // renewed once, then both steps again with the new one.
  const page = new FakePage();
  const server = ucwa();
  const tokens = tokenSource();
  server.refuse = (url, method) => {
    if (method !== 'POST' || !url.pathname.endsWith('/applications') || server.token !== 'psat=token-1') return false;
    server.token = 'psat=token-2';
    return true;
  };
  const fake = scriptedFetch(server.script);
  const chat = new ChatSession({ tokens, to: 'sip:helpdesk@contoso.com', fetch: fake.fetch, environment: page.environment() });
  assert.equal(chat.sessionId, '');
  await chat.start();
  await flush();
  assert.equal(tokens.asked, 1);
  assert.equal(tokens.renewed, 1);
  assert.equal(chat.sessionId, 'session-2');
  assert.deepEqual(
    fake.calls.slice(0, 4).map((c) => [c.init.method, new URL(c.url).pathname, c.init.headers.Authorization]),
    [
      ['GET', '/platformservice/discover', 'Bearer psat=token-1'],
      ['POST', '/ucwa/psanon/v1/applications', 'Bearer psat=token-1'],
      ['GET', '/platformservice/discover', 'Bearer psat=token-2'],
      ['POST', '/ucwa/psanon/v1/applications', 'Bearer psat=token-2'],
    ],
  );
  // The token client renews meanwhile: the chat keeps the token of its
  // application's session.
  await tokens.renew();
  server.push([connected]);
  await flush();
  await chat.send('still here');
  assert.equal(fake.calls.at(-1).init.headers.Authorization, 'Bearer psat=token-2');
  assert.deepEqual(server.violations, []);
  chat.stop();

  // Refused again after the renewal: the chat says a new token is needed.
  const again = ucwa();
  again.refuse = () => true;
  const other = new ChatSession({ tokens: tokenSource(), to: 'sip:helpdesk@contoso.com', fetch: scriptedFetch(again.script).fetch, environment: new FakePage().environment() });
  const ended = [];
  other.on('ended', (e) => ended.push(e));
  await assert.rejects(other.start(), (e) => e.code === 'token_refused' && e.final && e.status === 401 && !/psat|token-/.test(e.message));
  assert.deepEqual(ended, [{ by: 'failure', code: 'token_refused' }]);

  // No token to be had (the service refused this origin): no_token.
  const none = new ChatSession({
    tokens: { getToken: async () => { throw Object.assign(new Error('refused'), { code: 'origin_not_allowed' }); }, renew: async () => null },
    to: 'sip:helpdesk@contoso.com', fetch: scriptedFetch(() => answer(500)).fetch, environment: new FakePage().environment(),
  });
  await assert.rejects(none.start(), (e) => e.code === 'no_token' && /origin_not_allowed/.test(e.message));
  assert.throws(() => new ChatSession({ tokens: {}, to: 'sip:x@y' }), TypeError);
});

test('data URIs: + is a space, percent-escapes and base64 decode, junk is null', () => {
  assert.equal(decodeDataUri('data:text/plain;charset=utf-8,How+can+I+help%3f'), 'How can I help?');
  assert.equal(decodeDataUri('data:;base64,SGVsbG8='), 'Hello');
  assert.equal(decodeDataUri('data:text/plain,%E0%A4%A'), null);
  assert.equal(decodeDataUri('https://x'), null);
  assert.throws(() => new ChatSession({ discoverUri: 'x', token: 't', to: 'helpdesk' }), TypeError);
});
