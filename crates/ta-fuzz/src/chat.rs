//! The platform's callbacks: the events envelope a callback carries, read
//! into the facts the SA acts on.

use ta_protocol::chat::read_callback;

use crate::json::json_text;

/// Raw bytes as a callback's body.
pub fn callback(data: &[u8]) {
    check(data);
}

/// JSON built from the fuzzer's bytes ([`crate::json`]) as a callback's
/// body.
pub fn callback_structured(data: &[u8]) {
    if let Some(text) = json_text(data) {
        check(text.as_bytes());
    }
}

fn check(body: &[u8]) {
    let Ok(callback) = read_callback(body) else {
        return;
    };
    let events: hal_model::Events = hal_model::from_slice(body)
        .unwrap_or_else(|e| panic!("a callback read, but not its envelope: {e}"));
    assert_eq!(callback.is_heartbeat(), events.is_empty());
    if !callback.is_heartbeat() {
        let base = callback.base.as_ref();
        assert!(
            base.is_some_and(|b| matches!(b.scheme(), "http" | "https") && b.has_host()),
            "events resolved against {base:?}"
        );
    }
    let _ = callback.invitation();
}
