//! The API's HAL+JSON answers, and the request bodies the emulator reads:
//! every typed resource reads the same bytes, and what it reads it writes
//! back and reads again to the same bytes. Links agree with themselves: an
//! href that [`Link::absolute`] takes as absolute resolves to the same URL
//! against any base.

use hal_model::{
    AcceptAndBridgeInput, AddMessagingInput, AddParticipantInput, AnonApplicationInput,
    BridgedParticipant, CallbackAnswer, Conversation, ConversationBridge, Message, Messaging,
    MessagingInvitation, OnlineMeeting, OnlineMeetingInvitation, Participant,
    ParticipantInvitation, StartAdhocMeetingInput, StartMessagingInput, UcwaApplication,
};
use hal_model::{
    AnonApplicationToken, AnonDiscover, Application, Applications, Discover, ErrorBody, Events,
    Link, Resource, from_slice, to_vec,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

use crate::json::json_text;

/// The bases links are resolved against, as the client's requests are.
const BASES: &[&str] = &[
    "https://api.example/platformservice/v1/applications?endpointId=sip%3ahelpdesk%40contoso.com",
    "https://webpoolbl20r04.infra.lync.com/ucwa/v1/applications/1/events?ack=1",
    "http://127.0.0.1:8443/",
];

/// Raw bytes as an API answer.
pub fn hal_resource(data: &[u8]) {
    check_body(data);
}

/// JSON built from the fuzzer's bytes ([`crate::json`]) as an API answer.
pub fn hal_structured(data: &[u8]) {
    if let Some(text) = json_text(data) {
        check_body(text.as_bytes());
    }
}

fn check_body(body: &[u8]) {
    if let Some(resource) = round_trip::<Resource>(body) {
        check_resource(&resource);
        // The chat's resources are read out of events with `From`.
        let _ = Conversation::from(resource.clone());
        let _ = OnlineMeeting::from(resource.clone());
        let _ = Messaging::from(resource.clone());
        let _ = ConversationBridge::from(resource.clone());
        let _ = BridgedParticipant::from(resource.clone());
        let _ = Participant::from(resource.clone());
        let _ = MessagingInvitation::from(resource.clone());
        let _ = OnlineMeetingInvitation::from(resource.clone());
        let _ = ParticipantInvitation::from(resource.clone());
        let message = Message::from(resource);
        if let Some(Ok(uri)) = message.body() {
            let _ = uri.text();
        }
    }
    if let Some(discover) = round_trip::<Discover>(body) {
        let _ = (discover.applications(), discover.applications_rel());
    }
    if let Some(applications) = round_trip::<Applications>(body) {
        let _ = applications.application();
    }
    if let Some(application) = round_trip::<Application>(body) {
        let _ = application.anon_application_tokens();
        let _ = application.communication();
        let _ = application.adhoc_meetings();
        let _ = application.capabilities();
    }
    if let Some(anon) = round_trip::<AnonDiscover>(body) {
        let _ = anon.anon_applications();
    }
    if let Some(token) = round_trip::<AnonApplicationToken>(body) {
        let _ = (token.token.jwt(), token.expiry_time.instant());
        let _ = token.expiry_time.to_rfc3339_utc();
        check_resource(&token.resource);
    }
    if let Some(error) = round_trip::<ErrorBody>(body) {
        let _ = error.error_report_id();
        check_redacted(&error.message.unwrap_or_default());
    }
    if let Some(events) = round_trip::<Events>(body) {
        let _ = (events.next(), events.resync(), events.resume());
        for (_, event) in events.iter() {
            if let Some(target) = event.target() {
                check_resource(target);
            }
        }
    }
    let _ = round_trip::<UcwaApplication>(body);
    let _ = round_trip::<StartAdhocMeetingInput>(body);
    let _ = round_trip::<AddMessagingInput>(body);
    let _ = round_trip::<AcceptAndBridgeInput>(body);
    let _ = round_trip::<AddParticipantInput>(body);
    let _ = round_trip::<CallbackAnswer>(body);
    let _ = round_trip::<StartMessagingInput>(body);
    let _ = round_trip::<AnonApplicationInput>(body);
}

/// Reads `body` as a `T`; what it reads, written and read again, writes the
/// same bytes.
fn round_trip<T: Serialize + DeserializeOwned>(body: &[u8]) -> Option<T> {
    let value: T = from_slice(body).ok()?;
    let written = to_vec(&value);
    let again: T = match from_slice(&written) {
        Ok(again) => again,
        Err(e) => panic!(
            "{} does not read what it wrote: {e}\n{}",
            std::any::type_name::<T>(),
            String::from_utf8_lossy(&written)
        ),
    };
    assert!(
        to_vec(&again) == written,
        "{} writes differently what it read back",
        std::any::type_name::<T>()
    );
    Some(value)
}

fn check_resource(resource: &Resource) {
    let _ = resource.namespace();
    for (_, links) in resource.links().iter() {
        for link in links.as_slice() {
            check_link(link);
        }
    }
    for (_, embedded) in resource.embedded().iter() {
        for inner in embedded.as_slice() {
            check_resource(inner);
        }
    }
}

/// An absolute href means the same against every base.
pub(crate) fn check_link(link: &Link) {
    let absolute = link.absolute();
    for base in BASES {
        let Ok(base) = Url::parse(base) else { continue };
        let resolved = link.resolve(&base);
        if let Ok(url) = &absolute {
            assert_eq!(
                resolved.as_ref().ok(),
                Some(url),
                "{:?} is absolute, but resolves elsewhere against {base}",
                link.href
            );
        }
    }
}

/// What [`ta_protocol::redact`] leaves of a text shows no `psat=` value.
pub(crate) fn check_redacted(text: &str) {
    let out = ta_protocol::redact(text);
    let lower = out.to_ascii_lowercase();
    for (at, _) in lower.match_indices("psat=") {
        let rest = lower.get(at + 5..).unwrap_or_default();
        assert!(
            rest.is_empty()
                || rest.starts_with("<redacted>")
                || rest.starts_with(|c: char| c.is_whitespace() || "\"'&,`)><".contains(c)),
            "a psat value is left in {out:?}"
        );
    }
}
