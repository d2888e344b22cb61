//! The widgets: each asks `serve` for a token in a loop, as a page would,
//! and every token it gets is verified: signed with the emulator's key,
//! for exactly the widget's origin, a session id never seen before, not
//! expired.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use ta_protocol::Transport;

/// What the widgets saw, shared by all of them.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    /// Answers by `status` or `status error` (`503 upstream_unavailable`).
    pub(crate) answers: BTreeMap<String, u64>,
    /// Tokens received and verified.
    pub(crate) tokens: u64,
    /// Tokens that failed a check, and the first reasons.
    pub(crate) wrong: u64,
    pub(crate) wrong_reasons: Vec<String>,
    /// Requests that got no HTTP answer at all.
    pub(crate) no_answer: u64,
    sessions: HashSet<String>,
}

impl Tally {
    fn wrong(&mut self, reason: String) {
        self.wrong += 1;
        if self.wrong_reasons.len() < 10 {
            self.wrong_reasons.push(reason);
        }
    }
}

/// One widget on `origin`, asking `url` every `pause` until `until`.
pub(crate) async fn widget(
    client: Arc<dyn Transport>,
    url: String,
    origin: String,
    pause: Duration,
    until: tokio::time::Instant,
    tally: Arc<Mutex<Tally>>,
) {
    while tokio::time::Instant::now() < until {
        ask(&*client, &url, &origin, &tally).await;
        tokio::time::sleep(pause).await;
    }
}

async fn ask(client: &dyn Transport, url: &str, origin: &str, tally: &Mutex<Tally>) {
    let Ok(request) = http::Request::post(url)
        .header("origin", origin)
        .header("content-type", "application/json")
        .body(Bytes::from_static(b"{}"))
    else {
        return;
    };
    let answer = tokio::time::timeout(Duration::from_secs(30), client.send(request)).await;
    let Ok(Ok(response)) = answer else {
        if let Ok(mut t) = tally.lock() {
            t.no_answer += 1;
        }
        return;
    };
    let status = response.status().as_u16();
    let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap_or_default();
    let code = body
        .get("error")
        .and_then(|c| c.as_str())
        .unwrap_or_default();
    let key = if code.is_empty() {
        status.to_string()
    } else {
        format!("{status} {code}")
    };
    let Ok(mut t) = tally.lock() else { return };
    *t.answers.entry(key).or_default() += 1;
    if status == 200 {
        match check(&body, origin) {
            Ok(session) => {
                if t.sessions.insert(session.clone()) {
                    t.tokens += 1;
                } else {
                    t.wrong(format!("session id {session} handed out twice"));
                }
            }
            Err(reason) => t.wrong(reason),
        }
    }
}

/// The checks of one answer; its session id.
fn check(body: &serde_json::Value, origin: &str) -> Result<String, String> {
    let token = body
        .get("token")
        .and_then(|t| t.as_str())
        .ok_or("a 200 without a token")?;
    let psat = ta_emulator::verify_psat(token)?;
    if psat.allowed_origins != [origin] {
        return Err(format!(
            "a token for {origin} allows {:?}",
            psat.allowed_origins
        ));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if psat.expires <= now {
        return Err(format!(
            "a token expired at {} handed out at {now}",
            psat.expires
        ));
    }
    let expires_in = body.get("expiresIn").and_then(serde_json::Value::as_u64);
    if expires_in.is_none_or(|e| e == 0 || now + e > psat.expires + 2) {
        return Err(format!(
            "expiresIn {expires_in:?} does not match the token's expiry ({} s left)",
            psat.expires.saturating_sub(now)
        ));
    }
    let answered = body.get("applicationSessionId").and_then(|s| s.as_str());
    if answered != Some(psat.session_id.as_str()) {
        return Err(format!(
            "applicationSessionId {answered:?} is not the token's {}",
            psat.session_id
        ));
    }
    Ok(psat.session_id)
}
