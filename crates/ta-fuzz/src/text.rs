//! Short texts from a server, a browser or an operator: `expiryTime` in
//! both formats, data-URI message bodies, the chat's state words,
//! `callbackContext`, and `--agent` specs.

use hal_model::{
    ConversationState, Direction, EventType, InvitationState, MessageFilterState, ModalityState,
    OperationStatus,
};
use hal_model::{DataUri, ExpiryFormat, ExpiryTime};
use ta_bootstrap_cli::agent_spec::parse_agent;
use ta_protocol::chat::ChatId;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// `expiryTime`: kept as written; its instant is written in UTC (RFC 3339)
/// and as `/Date(ms)/`, and both read back to the same instant.
pub fn expiry_time(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let Ok(expiry) = ExpiryTime::parse(text) else {
        return;
    };
    assert_eq!(expiry.as_str(), text);
    let at = expiry.instant();
    let _ = expiry.system_time();
    let utc = expiry.to_rfc3339_utc();
    let written = OffsetDateTime::parse(&utc, &Rfc3339)
        .unwrap_or_else(|e| panic!("{text:?}: {utc:?} is not RFC 3339: {e}"));
    assert_eq!(written, at, "{text:?}: {utc:?} is another instant");
    assert!(utc.ends_with('Z'), "{text:?}: {utc:?} is not in UTC");
    let again = ExpiryTime::parse(&utc).unwrap_or_else(|e| panic!("{utc:?}: {e}"));
    assert_eq!(again.instant(), at);
    let json = ExpiryTime::with_format(at, ExpiryFormat::MicrosoftJson);
    let back = ExpiryTime::parse(json.as_str()).unwrap_or_else(|e| panic!("{json:?}: {e}"));
    let floor = |t: OffsetDateTime| t.unix_timestamp_nanos().div_euclid(1_000_000);
    assert_eq!(floor(back.instant()), floor(at));
}

/// A message body: a data URI. What `plain_text` and `html_text` write
/// reads back to the same text.
pub fn data_uri(data: &[u8]) {
    let Some(text) = text(data) else { return };
    if let Ok(uri) = DataUri::parse(text) {
        let _ = (uri.media_type(), uri.charset(), uri.is_html(), uri.data());
        let _ = uri.text();
    }
    for (written, html) in [
        (DataUri::plain_text(text), false),
        (DataUri::html_text(text), true),
    ] {
        let uri = DataUri::parse(&written).unwrap_or_else(|e| panic!("{written:?}: {e}"));
        assert_eq!(uri.is_html(), html);
        assert_eq!(uri.text().ok(), Some(text), "{written:?}");
    }
}

/// The chat's state words: open enums, read case-insensitively; what is
/// read is written and read back the same.
pub fn chat_states(data: &[u8]) {
    let Some(text) = text(data) else { return };
    macro_rules! stable {
        ($($ty:ty),*) => {$(
            let state = <$ty>::parse(text);
            assert_eq!(<$ty>::parse(state.as_str()), state, "{}", stringify!($ty));
        )*};
    }
    stable!(
        EventType,
        OperationStatus,
        Direction,
        InvitationState,
        ConversationState,
        ModalityState,
        MessageFilterState
    );
}

/// `callbackContext`: a chat id, 1 to 32 of `[A-Za-z0-9_-]`, kept as is.
pub fn callback_context(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let valid = (1..=32).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    match ChatId::new(text) {
        Ok(id) => {
            assert!(valid, "{text:?} was taken");
            assert_eq!(id.as_str(), text);
        }
        Err(_) => assert!(!valid, "{text:?} was refused"),
    }
}

/// An `--agent` spec: a `sip:` URI in lower case and a name, or a message.
pub fn agent_spec(data: &[u8]) {
    let Some(text) = text(data) else { return };
    if let Ok(agent) = parse_agent(text) {
        assert!(
            agent.uri.starts_with("sip:") && agent.uri.len() > 4,
            "{text:?}"
        );
        assert_eq!(agent.uri, agent.uri.to_ascii_lowercase());
        assert!(!agent.display_name.is_empty(), "{text:?}");
    }
}
