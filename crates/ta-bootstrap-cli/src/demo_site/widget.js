// The chat widget of the demo site, built on the widget's token client as
// the integration guide (docs/widget-guide.md) says a page should be.
//
// It loads the token client from the widget-token service it talks to
// (`/v1/client.js`), and on each token performs the chat client's anonymous
// discovery with the discover link (GET, CORS: the API answers only origins
// the token was minted for), then shows the session counting down. The
// client renews the token (it follows the service's `renewAfter`); this page
// has no renewal logic of its own.
//
// The token is a secret: it is never shown in full, never logged, and the
// discover link (which carries it) is never shown either.
//
// The chat with the help desk is the panel of `chat-panel.js`, on the same
// token client.

import { ChatPanel, chatUnavailable } from '/chat-panel.js';

/** How long anonymous discovery may take. */
const DISCOVERY_TIMEOUT_MS = 15000;

const byId = (id) => document.getElementById(id);

/** The session shown: { token, receivedAtMs } (Date.now() deltas only), or null. */
let session = null;
let renewals = 0;
let client = null;

function setState(next, text) {
  byId('status').dataset.state = next;
  byId('status-text').textContent = text;
}

function setStep(id, step) {
  byId(id).dataset.step = step;
}

function formatDuration(totalSeconds) {
  const s = Math.max(0, Math.floor(totalSeconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

/** A failure to show: the client's errors have the same fields. */
function failure(code, message, extra) {
  return Object.assign({ code, message, requestId: '', final: false, inferred: false }, extra || {});
}

function showProblem(problem) {
  byId('problem').hidden = false;
  byId('problem-text').textContent = problem.message;
  byId('error-code').textContent = problem.inferred ? `${problem.code} (inferred)` : problem.code;
  byId('request-id').textContent =
    problem.requestId || (problem.inferred ? 'not readable (no CORS headers)' : 'none');
}

function clearProblem() {
  byId('problem').hidden = true;
}

/** The href of a link by local name, whatever its rel namespace. */
function findLink(links, name) {
  if (!links || typeof links !== 'object') return null;
  for (const rel of Object.keys(links)) {
    if (rel.replace(/^(service:|ms:rtc:saas:)/, '') !== name) continue;
    const value = links[rel];
    const link = Array.isArray(value) ? value[0] : value;
    if (link && typeof link.href === 'string' && link.href) return link.href;
  }
  return null;
}

/** The chat client's anonymous discovery; the anonApplications URL (without its query). */
async function anonymousDiscovery(discoverUri) {
  let url;
  try {
    url = new URL(discoverUri);
  } catch (_) {
    throw failure('bad_answer', "The service's discover link is not a URL.");
  }
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), DISCOVERY_TIMEOUT_MS);
  let response;
  try {
    response = await fetch(url.href, {
      method: 'GET',
      mode: 'cors',
      cache: 'no-store',
      credentials: 'omit',
      headers: { Accept: 'application/json' },
      signal: controller.signal,
    });
  } catch (e) {
    throw failure(
      e && e.name === 'AbortError' ? 'timeout' : 'network_error',
      `Anonymous discovery on ${url.origin} failed (the API refused this origin's token, or it is unreachable).`,
    );
  } finally {
    clearTimeout(timer);
  }
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    body = null;
  }
  if (!response.ok) {
    const code =
      body && typeof body.code === 'string'
        ? [body.code, body.subcode].filter((c) => typeof c === 'string' && c).join('/')
        : `http_${response.status}`;
    throw failure(code, `Anonymous discovery on ${url.origin} answered ${response.status}.`);
  }
  const href = findLink(body && body._links, 'anonApplications');
  if (!href) throw failure('missing_link', 'Anonymous discovery answered without an anonApplications link.');
  const resolved = new URL(href, response.url || url.href);
  return resolved.origin + resolved.pathname + (resolved.search ? '?…' : '');
}

/** A new token from the client: discovery with it, then the session shown. */
async function connect(token) {
  const renewing = session !== null;
  setStep('step-token', 'done');
  setStep('step-discover', 'active');
  setState(renewing ? 'renewing' : 'discovering', 'Anonymous discovery on the API…');
  const receivedAtMs = Date.now();
  let anonApplications;
  try {
    anonApplications = await anonymousDiscovery(token.discoverUri);
  } catch (problem) {
    setStep('step-discover', 'failed');
    showProblem(problem);
    setState('error', `Anonymous discovery failed (${problem.code}).`);
    return;
  }
  setStep('step-discover', 'done');
  setStep('step-connected', 'done');
  if (renewing) renewals += 1;
  session = { token, receivedAtMs };
  byId('token-summary').textContent =
    `${token.token.slice(0, 8)}… (${token.token.length} characters, never shown in full)`;
  byId('session-id').textContent = token.applicationSessionId;
  const expiresAt = byId('expires-at');
  expiresAt.textContent = token.expiresAt;
  expiresAt.setAttribute('datetime', token.expiresAt);
  byId('renewals').textContent = String(renewals);
  byId('anon-applications').textContent = anonApplications;
  byId('session').hidden = false;
  clearProblem();
  setState(
    'connected',
    renewing ? `Connected with a renewed session (renewals: ${renewals}).` : 'Connected: the widget can start a chat.',
  );
  tick();
}

/** A failure the client reported. */
function failed(error) {
  for (const id of ['step-token', 'step-discover']) {
    if (byId(id).dataset.step === 'active') setStep(id, 'failed');
  }
  showProblem(error);
  if (error.final) {
    setState('refused', `Refused by the widget-token service (${error.code}).`);
  } else if (session && client && client.token) {
    // The current token still works; the client tries again by itself.
    setState('connected', `Renewal failed (${error.code}); the current session still works.`);
  } else {
    setState('error', `Getting a widget token failed (${error.code}).`);
  }
  byId('renew').textContent = session ? 'Renew now' : 'Try again';
}

/** The countdown, once a second (display only: the client keeps the time). */
function tick() {
  if (!session) return;
  const elapsedS = (Date.now() - session.receivedAtMs) / 1000;
  const left = session.token.expiresIn - elapsedS;
  byId('countdown').textContent = left > 0 ? formatDuration(Math.ceil(left)) : 'expired';
  const renewAfter = session.token.renewAfter;
  byId('next-renewal').textContent =
    typeof renewAfter === 'number'
      ? `in ${formatDuration(Math.ceil(Math.max(0, renewAfter - elapsedS)))}`
      : 'when the client decides';
  if (left <= 0 && byId('status').dataset.state === 'connected') {
    setState('expired', 'The widget token has expired. Press "Renew now" for a new one.');
  }
}

/**
 * The client module could not be loaded from the service. The service sends
 * CORS headers to allowlisted origins only (a module script is fetched in
 * CORS mode), so when it answers a no-cors GET of /healthz, this origin is
 * most likely not on its allowlist.
 */
async function unavailable(tokenUrl) {
  try {
    await fetch(new URL('/healthz', tokenUrl).href, { mode: 'no-cors', cache: 'no-store', credentials: 'omit' });
  } catch (_) {
    return failure('network_error', `The widget-token service at ${tokenUrl} could not be reached. Is it running?`);
  }
  return failure(
    'origin_not_allowed',
    'The service refused this origin: it is not on the allowlist. The service sends CORS headers to ' +
      'allowlisted origins only, so the browser hid its answer (the error code is inferred and the ' +
      'request id cannot be read).',
    { inferred: true, final: true },
  );
}

async function start() {
  byId('origin').textContent = window.location.origin;
  const meta = document.querySelector('meta[name="ta-widget-token-url"]');
  const tokenUrl = meta ? meta.content : '';
  const button = byId('renew');
  if (!tokenUrl) {
    failed(failure('no_service', 'The page does not name the widget-token service.'));
    chatUnavailable('No chat: the page does not name the widget-token service.');
    return;
  }
  setStep('step-token', 'active');
  setState('minting', 'Asking the service for a widget token…');
  let module;
  try {
    module = await import(new URL('/v1/client.js', tokenUrl).href);
  } catch (_) {
    const problem = await unavailable(tokenUrl);
    failed(problem);
    chatUnavailable(`No chat: ${problem.message}`);
    return;
  }
  client = new module.WidgetTokenClient({
    url: tokenUrl,
    onToken: (token) => {
      connect(token);
    },
    onError: failed,
  });
  button.disabled = false;
  button.addEventListener('click', () => {
    setStep('step-token', 'active');
    setState(session ? 'renewing' : 'minting', 'Asking the service for a new widget token…');
    client.renew().catch(() => {});
  });
  setInterval(tick, 1000);
  client.getToken().catch(() => {});
  // The chat takes its token from the same client.
  const helpdesk = document.querySelector('meta[name="ta-helpdesk"]');
  new ChatPanel({ tokens: client, serviceUrl: tokenUrl, helpdesk: helpdesk ? helpdesk.content : '' }).load();
}

start();
