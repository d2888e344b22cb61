// The chat widget of the demo site.
//
// On load it asks the widget-token service for a token (POST, CORS), then
// performs the chat client's anonymous discovery with the discover link it
// got (GET, CORS: the API answers only origins the token was minted for),
// shows the session counting down and renews it before it expires.
//
// The token is a secret: it is never shown in full, never logged, and the
// discover link (which carries it) is never shown either.
'use strict';

(function () {
  /** How long the service may take (it gives up upstream after 30 s). */
  const SERVICE_TIMEOUT_MS = 35000;
  /** How long anonymous discovery may take. */
  const DISCOVERY_TIMEOUT_MS = 15000;
  /** Renew once this fraction of the token's life has passed… */
  const RENEW_FRACTION = 0.75;
  /** …but at least this many seconds before it expires… */
  const RENEW_MARGIN_S = 10;
  /** …and never sooner than this after the last token. */
  const MIN_RENEW_DELAY_S = 5;
  /** Wait before retrying a failed automatic renewal (without Retry-After). */
  const RETRY_DELAY_S = 5;
  /** Never retry sooner than this, whatever Retry-After says. */
  const MIN_RETRY_DELAY_S = 2;

  const byId = (id) => document.getElementById(id);

  /** The current session: { sessionId, expiresAtMs, renewAtMs }, or null. */
  let session = null;
  let renewals = 0;
  let busy = false;
  let state = 'loading';

  /** A failure to show: `state` is 'refused' or 'error'. */
  class Failure extends Error {
    constructor(failureState, code, message, details) {
      super(message);
      const d = details || {};
      this.state = failureState;
      this.code = code;
      this.requestId = d.requestId || '';
      this.retryable = Boolean(d.retryable);
      this.retryAfterS = d.retryAfterS;
      this.certLink = d.certLink || '';
      this.inferred = Boolean(d.inferred);
    }
  }

  function setState(next, text) {
    state = next;
    const status = byId('status');
    status.dataset.state = next;
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

  /** Seconds from a Retry-After header (seconds or an HTTP date). */
  function retryAfterSeconds(value) {
    if (!value) return undefined;
    if (/^\d+$/.test(value.trim())) return Number(value.trim());
    const at = Date.parse(value);
    return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - Date.now()) / 1000));
  }

  async function fetchWithTimeout(url, init, timeoutMs) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    try {
      return await fetch(url, Object.assign({}, init, { signal: controller.signal }));
    } finally {
      clearTimeout(timer);
    }
  }

  const isAbort = (e) => e && e.name === 'AbortError';

  async function readJson(response) {
    try {
      return await response.json();
    } catch (_) {
      return null;
    }
  }

  /**
   * The browser hid why the service's answer failed. The service sends CORS
   * headers to allowlisted origins only, so when it is reachable the likely
   * reason is that this origin is not on its allowlist. A no-cors GET of
   * the service's /healthz (no side effect, and nothing counted against the
   * token route) tells whether it answers.
   */
  async function unreadableServiceAnswer(tokenUrl) {
    let reachable = false;
    try {
      await fetchWithTimeout(
        new URL('/healthz', tokenUrl).href,
        { method: 'GET', mode: 'no-cors', cache: 'no-store', credentials: 'omit' },
        SERVICE_TIMEOUT_MS,
      );
      reachable = true;
    } catch (_) {
      reachable = false;
    }
    if (reachable) {
      return new Failure(
        'refused',
        'origin_not_allowed',
        'The service refused this origin: it is not on the allowlist. The service sends ' +
          'CORS headers to allowlisted origins only, so the browser hid its answer (the ' +
          'error code is inferred and the request id cannot be read).',
        { inferred: true },
      );
    }
    return new Failure(
      'error',
      'network_error',
      `The widget-token service at ${tokenUrl} could not be reached (a network error). ` +
        'Is it running?',
      { retryable: true },
    );
  }

  /** POST {service}/v1/widget-token; the validated answer, or a Failure. */
  async function requestToken(tokenUrl) {
    let response;
    try {
      response = await fetchWithTimeout(
        tokenUrl,
        {
          method: 'POST',
          mode: 'cors',
          cache: 'no-store',
          credentials: 'omit',
          headers: { 'Content-Type': 'application/json' },
          body: '{}',
        },
        SERVICE_TIMEOUT_MS,
      );
    } catch (e) {
      if (isAbort(e)) {
        throw new Failure(
          'error',
          'timeout',
          `The widget-token service did not answer within ${SERVICE_TIMEOUT_MS / 1000} s.`,
          { retryable: true },
        );
      }
      throw await unreadableServiceAnswer(tokenUrl);
    }
    const body = await readJson(response);
    const headerId = response.headers.get('x-request-id') || '';
    if (response.ok) {
      const ok =
        body &&
        typeof body.token === 'string' &&
        body.token.length > 0 &&
        typeof body.discoverUri === 'string' &&
        typeof body.applicationSessionId === 'string' &&
        typeof body.expiresIn === 'number' &&
        Number.isFinite(body.expiresIn);
      if (!ok) {
        throw new Failure(
          'error',
          'bad_answer',
          'The service answered 200, but not with a widget token.',
          { requestId: headerId, retryable: true },
        );
      }
      return body;
    }
    const code = body && typeof body.error === 'string' ? body.error : `http_${response.status}`;
    const message =
      body && typeof body.message === 'string' ? body.message : response.statusText || 'no message';
    const requestId =
      body && typeof body.requestId === 'string' && body.requestId ? body.requestId : headerId;
    if (response.status === 403) {
      throw new Failure('refused', code, `The service refused this origin: ${message}.`, {
        requestId,
      });
    }
    const retryAfterS = retryAfterSeconds(response.headers.get('retry-after'));
    const what =
      response.status === 429
        ? 'The service is rate limiting this client'
        : `The service answered ${response.status}`;
    const wait = retryAfterS === undefined ? '' : ` (retry after ${retryAfterS} s)`;
    throw new Failure('error', code, `${what}${wait}: ${message}.`, {
      requestId,
      retryable: response.status === 429 || response.status >= 500,
      retryAfterS,
    });
  }

  /** The href of a link by local name, whatever its rel namespace. */
  function findLink(links, name) {
    if (!links || typeof links !== 'object') return null;
    for (const rel of Object.keys(links)) {
      const local = rel.replace(/^(service:|ms:rtc:saas:)/, '');
      if (local !== name) continue;
      const value = links[rel];
      const link = Array.isArray(value) ? value[0] : value;
      if (link && typeof link.href === 'string' && link.href) return link.href;
    }
    return null;
  }

  /** A URL without its query or fragment (where a token could hide). */
  function withoutQuery(url) {
    return url.origin + url.pathname + (url.search ? '?…' : '');
  }

  /** The chat client's anonymous discovery; the anonApplications URL. */
  async function anonymousDiscovery(discoverUri) {
    let url;
    try {
      url = new URL(discoverUri);
    } catch (_) {
      throw new Failure('error', 'bad_answer', "The service's discover link is not a URL.", {});
    }
    const certLink = url.origin + url.pathname;
    let response;
    try {
      response = await fetchWithTimeout(
        url.href,
        {
          method: 'GET',
          mode: 'cors',
          cache: 'no-store',
          credentials: 'omit',
          headers: { Accept: 'application/json' },
        },
        DISCOVERY_TIMEOUT_MS,
      );
    } catch (e) {
      if (isAbort(e)) {
        throw new Failure(
          'error',
          'timeout',
          `Anonymous discovery on ${url.origin} did not answer within ` +
            `${DISCOVERY_TIMEOUT_MS / 1000} s.`,
          { retryable: true, certLink },
        );
      }
      throw new Failure(
        'error',
        'network_error',
        `Anonymous discovery on ${url.origin} failed with a network error. The browser hides ` +
          'the reason: most often it does not trust the server certificate (the emulator ' +
          "serves HTTPS with its own development CA), or the API refused this origin's token " +
          '(CORS), or it is unreachable.',
        { retryable: true, certLink },
      );
    }
    const body = await readJson(response);
    if (!response.ok) {
      const code =
        body && typeof body.code === 'string'
          ? [body.code, body.subcode].filter((c) => typeof c === 'string' && c).join('/')
          : `http_${response.status}`;
      const message = body && typeof body.message === 'string' ? `: ${body.message}` : '';
      throw new Failure(
        'error',
        code,
        `Anonymous discovery on ${url.origin} answered ${response.status}${message}.`,
        { retryable: response.status === 429 || response.status >= 500 },
      );
    }
    const href = findLink(body && body._links, 'anonApplications');
    if (!href) {
      throw new Failure(
        'error',
        'missing_link',
        'Anonymous discovery answered without an anonApplications link.',
        {},
      );
    }
    let resolved;
    try {
      resolved = new URL(href, response.url || url.href);
    } catch (_) {
      throw new Failure('error', 'bad_answer', 'The anonApplications link is not a URL.', {});
    }
    return withoutQuery(resolved);
  }

  function showProblem(failure) {
    byId('problem').hidden = false;
    byId('problem-text').textContent = failure.message;
    byId('error-code').textContent = failure.inferred
      ? `${failure.code} (inferred)`
      : failure.code;
    byId('request-id').textContent =
      failure.requestId || (failure.inferred ? 'not readable (no CORS headers)' : 'none');
    const help = byId('cert-help');
    if (failure.certLink) {
      const link = byId('cert-link');
      link.href = failure.certLink;
      link.textContent = failure.certLink;
      help.hidden = false;
    } else {
      help.hidden = true;
    }
  }

  function clearProblem() {
    byId('problem').hidden = true;
    byId('cert-help').hidden = true;
  }

  function renewDelaySeconds(expiresIn) {
    const delay = Math.min(expiresIn * RENEW_FRACTION, expiresIn - RENEW_MARGIN_S);
    return Math.max(MIN_RENEW_DELAY_S, delay);
  }

  function tick() {
    if (!session) return;
    const now = Date.now();
    const left = (session.expiresAtMs - now) / 1000;
    byId('countdown').textContent = left > 0 ? formatDuration(Math.ceil(left)) : 'expired';
    if (busy) {
      byId('next-renewal').textContent = 'renewing now';
    } else if (Number.isFinite(session.renewAtMs)) {
      byId('next-renewal').textContent =
        `in ${formatDuration(Math.ceil(Math.max(0, session.renewAtMs - now) / 1000))}`;
    } else {
      byId('next-renewal').textContent = 'not scheduled';
    }
    if (left <= 0) {
      if (state === 'connected') {
        setState('expired', 'The widget token has expired. Press "Renew now" for a new one.');
      }
      session.renewAtMs = Infinity;
      return;
    }
    if (!busy && now >= session.renewAtMs) {
      connect('automatic');
    }
  }

  /** Gets a token and performs anonymous discovery: the first time, or to renew. */
  async function connect(reason) {
    if (busy) return;
    busy = true;
    const button = byId('renew');
    button.disabled = true;
    const renewing = reason !== 'initial';
    try {
      const tokenUrl = byId('token-url').dataset.url;
      if (!tokenUrl) {
        throw new Failure('error', 'no_service', 'The page does not name the widget-token service.', {});
      }
      setStep('step-token', 'active');
      setStep('step-discover', 'pending');
      setStep('step-connected', 'pending');
      setState(
        renewing ? 'renewing' : 'minting',
        renewing ? 'Renewing: asking the service for a new widget token…' : 'Asking the service for a widget token…',
      );
      const receivedAtMs = Date.now();
      const minted = await requestToken(tokenUrl);
      setStep('step-token', 'done');
      setStep('step-discover', 'active');
      setState(renewing ? 'renewing' : 'discovering', 'Anonymous discovery on the API…');
      const anonApplications = await anonymousDiscovery(minted.discoverUri);
      setStep('step-discover', 'done');
      setStep('step-connected', 'done');

      const expiresIn = Math.max(0, minted.expiresIn);
      session = {
        sessionId: minted.applicationSessionId,
        expiresAtMs: receivedAtMs + expiresIn * 1000,
        renewAtMs: receivedAtMs + renewDelaySeconds(expiresIn) * 1000,
      };
      if (renewing) renewals += 1;
      const token = minted.token;
      byId('token-summary').textContent =
        `${token.slice(0, 8)}… (${token.length} characters, never shown in full)`;
      byId('session-id').textContent = minted.applicationSessionId;
      const expiresAt = byId('expires-at');
      expiresAt.textContent = typeof minted.expiresAt === 'string' ? minted.expiresAt : '';
      expiresAt.setAttribute('datetime', expiresAt.textContent);
      byId('renewals').textContent = String(renewals);
      byId('anon-applications').textContent = anonApplications;
      byId('session').hidden = false;
      clearProblem();
      setState(
        'connected',
        renewing
          ? `Connected with a renewed session (renewals: ${renewals}).`
          : 'Connected: the widget can start a chat.',
      );
    } catch (caught) {
      const failure =
        caught instanceof Failure
          ? caught
          : new Failure('error', 'internal', `The widget failed: ${caught && caught.message}`, {});
      let summary = 'Getting a widget token failed';
      if (failure.state === 'refused') summary = 'Refused by the widget-token service';
      else if (byId('step-discover').dataset.step === 'active') summary = 'Anonymous discovery failed';
      if (renewing && failure.state !== 'refused') summary = `Renewal failed: ${summary.toLowerCase()}`;
      for (const id of ['step-token', 'step-discover']) {
        if (byId(id).dataset.step === 'active') setStep(id, 'failed');
      }
      showProblem(failure);
      if (session) {
        if (failure.retryable) {
          // The current token may still be valid: try again before it expires.
          const wait = Math.max(
            MIN_RETRY_DELAY_S,
            failure.retryAfterS === undefined ? RETRY_DELAY_S : failure.retryAfterS,
          );
          session.renewAtMs = Math.max(session.renewAtMs, Date.now() + wait * 1000);
        } else {
          session.renewAtMs = Infinity;
        }
      }
      setState(failure.state, `${summary} (${failure.code}).`);
    } finally {
      busy = false;
      button.disabled = false;
      button.textContent = session ? 'Renew now' : 'Try again';
      tick();
    }
  }

  function start() {
    byId('origin').textContent = window.location.origin;
    const meta = document.querySelector('meta[name="ta-widget-token-url"]');
    byId('token-url').dataset.url = meta ? meta.content : '';
    byId('renew').addEventListener('click', () => connect('manual'));
    // Timers are throttled in background tabs: catch up when shown again.
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden) tick();
    });
    setInterval(tick, 1000);
    connect('initial');
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
})();
