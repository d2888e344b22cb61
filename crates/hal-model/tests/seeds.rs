//! Every JSON example of the two seed documents parses as the right typed
//! resource, with the values the documents show.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod common;

use common::{
    APPLICATION_LINK, APPLICATIONS_URL, CAPABILITIES_SAAS, CAPABILITIES_SERVICE, ERROR_BODY,
    MINT_ANSWER, MINT_REQUEST, SEED_JWT, applications_answer,
};
use hal_model::{
    AnonApplicationToken, Application, Applications, ErrorBody, ExpiryFormat, Link, Namespace, Rel,
    Resource, from_slice, names,
};
use time::macros::datetime;
use url::Url;

const APP: &str = "/platformservice/v1/applications/1627259584";

fn href(link: Option<&Link>) -> &str {
    link.map(|l| l.href.as_str()).unwrap_or("<missing>")
}

// ---------------------------------------------------------------------------
// Seed 000: capabilities, `service:` namespace.

#[test]
fn seed_000_capabilities_parse_as_application() {
    let app: Application = from_slice(CAPABILITIES_SERVICE.as_bytes()).unwrap();
    let res = app.resource();

    assert_eq!(res.rel.as_ref().unwrap().as_str(), "service:application");
    assert_eq!(
        res.rel,
        Some(Rel::new(Namespace::Service, names::APPLICATION))
    );
    assert_eq!(res.namespace(), Some(Namespace::Service));
    assert_eq!(res.etag, None);
    assert!(res.properties.is_empty());

    assert_eq!(
        href(res.self_link()),
        "/platformservice/v1/applications/1627259584?endpointId=sip%3ahelpdesk%40contoso.com"
    );
    assert_eq!(
        href(app.anon_application_tokens()),
        "/platformservice/v1/applications/1627259584/anonApplicationTokens?endpointId=sip:helpdesk@contoso.com"
    );

    let rels: Vec<&str> = res.links().rels().map(Rel::as_str).collect();
    assert_eq!(rels, ["self", "service:anonApplicationTokens"]);
    let embedded: Vec<&str> = res.embedded().rels().map(Rel::as_str).collect();
    assert_eq!(embedded, ["service:communication", "service:adhocMeetings"]);

    assert_eq!(
        app.capabilities(),
        ["anonApplicationTokens", "communication", "adhocMeetings"]
    );
}

#[test]
fn seed_000_communication_is_embedded_with_etag_and_links() {
    let app: Application = from_slice(CAPABILITIES_SERVICE.as_bytes()).unwrap();
    let comm = app.communication().unwrap();

    assert_eq!(comm.rel.as_ref().unwrap().as_str(), "service:communication");
    assert_eq!(comm.etag.as_deref(), Some("4294967295"));
    assert_eq!(
        href(comm.self_link()),
        format!("{APP}/communication?endpointId=sip:helpdesk@contoso.com")
    );
    assert_eq!(
        href(comm.link(names::JOIN_ONLINE_MEETING)),
        format!("{APP}/communication/onlineMeetingInvitations?endpointId=sip:helpdesk@contoso.com")
    );
    assert_eq!(
        href(comm.link(names::INVITE_USER_TO_MEETING)),
        format!("{APP}/communication/userMeetingInvitations?endpointId=sip:helpdesk@contoso.com")
    );
    assert_eq!(
        href(comm.link(names::START_MESSAGING)),
        format!("{APP}/communication/messagingInvitations?endpointId=sip:helpdesk@contoso.com")
    );
    let rels: Vec<&str> = comm.links().rels().map(Rel::as_str).collect();
    assert_eq!(
        rels,
        [
            "self",
            "service:joinOnlineMeeting",
            "service:inviteUserToMeeting",
            "service:startMessaging"
        ]
    );

    let adhoc = app.adhoc_meetings().unwrap();
    assert_eq!(
        adhoc.rel.as_ref().unwrap().as_str(),
        "service:adhocMeetings"
    );
    assert_eq!(adhoc.etag, None);
    assert_eq!(
        href(adhoc.self_link()),
        format!("{APP}/adhocMeetings?endpointId=sip:helpdesk@contoso.com")
    );
    assert_eq!(adhoc.links().len(), 1);
}

#[test]
fn seed_000_capabilities_found_with_either_namespace() {
    let app: Application = from_slice(CAPABILITIES_SERVICE.as_bytes()).unwrap();
    for ns in Namespace::ALL {
        let rel = Rel::new(ns, names::ANON_APPLICATION_TOKENS);
        assert_eq!(
            app.resource().links().get(&rel),
            app.anon_application_tokens(),
            "{rel}"
        );
        let comm = Rel::new(ns, names::COMMUNICATION);
        assert_eq!(
            app.resource().embedded().get(&comm),
            app.communication(),
            "{comm}"
        );
    }
}

#[test]
fn seed_000_capabilities_hrefs_resolve_against_the_application_url() {
    let app: Application = from_slice(CAPABILITIES_SERVICE.as_bytes()).unwrap();
    let base = Url::parse(
        "https://ring2noammeetings.resources.lync.com/platformservice/v1/applications/1627259584?endpointId=sip%3ahelpdesk%40contoso.com",
    )
    .unwrap();
    let mint = app
        .anon_application_tokens()
        .unwrap()
        .resolve(&base)
        .unwrap();
    assert_eq!(
        mint.as_str(),
        "https://ring2noammeetings.resources.lync.com/platformservice/v1/applications/1627259584/anonApplicationTokens?endpointId=sip:helpdesk@contoso.com"
    );
    let messaging = app
        .communication()
        .unwrap()
        .link(names::START_MESSAGING)
        .unwrap()
        .resolve(&base)
        .unwrap();
    assert_eq!(
        messaging.host_str(),
        Some("ring2noammeetings.resources.lync.com")
    );
    assert_eq!(
        messaging.path(),
        "/platformservice/v1/applications/1627259584/communication/messagingInvitations"
    );
    assert_eq!(
        messaging.query(),
        Some("endpointId=sip:helpdesk@contoso.com")
    );
}

#[test]
fn seed_000_capabilities_parse_as_generic_resource_too() {
    let res: Resource = from_slice(CAPABILITIES_SERVICE.as_bytes()).unwrap();
    let app: Application = from_slice(CAPABILITIES_SERVICE.as_bytes()).unwrap();
    assert_eq!(&res, app.resource());
    assert_eq!(Application::from(res.clone()), app);
    assert_eq!(app.into_resource(), res);
}

// ---------------------------------------------------------------------------
// Seed 000: the mint request body and the 200 OK answer.

#[test]
fn seed_000_mint_request_body_parses_as_resource_properties() {
    let res: Resource = from_slice(MINT_REQUEST.as_bytes()).unwrap();
    assert_eq!(res.properties["applicationSessionId"], "DFEDde...");
    assert_eq!(
        res.properties["allowedOrigins"],
        "https://contoso.com;https://litware.com"
    );
    assert!(res.links().is_empty());
    assert!(res.embedded().is_empty());
    assert_eq!(res.rel, None);
}

#[test]
fn seed_000_mint_answer_parses_as_anon_application_token() {
    let answer: AnonApplicationToken = from_slice(MINT_ANSWER.as_bytes()).unwrap();

    assert!(answer.token.expose().starts_with("psat="));
    assert_eq!(answer.token.jwt(), Some(SEED_JWT));
    assert_eq!(answer.token.jwt().unwrap().split('.').count(), 3);

    assert_eq!(
        answer.resource.rel.as_ref().unwrap().as_str(),
        "service:anonApplicationToken"
    );
    assert!(
        answer
            .resource
            .rel
            .as_ref()
            .unwrap()
            .has_local_name(names::ANON_APPLICATION_TOKEN)
    );
    assert!(answer.resource.properties.is_empty());
    assert!(answer.resource.embedded().is_empty());
}

#[test]
fn seed_000_mint_answer_expiry_instant() {
    let answer: AnonApplicationToken = from_slice(MINT_ANSWER.as_bytes()).unwrap();
    let expiry = &answer.expiry_time;
    assert_eq!(expiry.as_str(), "2016-06-27T01:42:13.094Z");
    assert_eq!(expiry.format(), ExpiryFormat::Rfc3339);
    assert_eq!(expiry.instant(), datetime!(2016-06-27 01:42:13.094 UTC));
    // The `exp` claim of the seed's JWT is 1466991733.
    assert_eq!(expiry.instant().unix_timestamp(), 1_466_991_733);
    assert_eq!(expiry.instant().millisecond(), 94);
    assert_eq!(
        expiry.system_time(),
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_466_991_733_094)
    );
}

#[test]
fn seed_000_mint_answer_links() {
    let answer: AnonApplicationToken = from_slice(MINT_ANSWER.as_bytes()).unwrap();

    let self_link = answer.self_link().unwrap();
    assert_eq!(
        self_link.href,
        "https://ext.vdomain.com:4443/platformservice/v1/applications/1627259584/anonApplicationTokens?endpointId=sip:helpdesk@contoso.com"
    );
    let self_url = self_link.absolute().unwrap();
    assert_eq!(self_url.host_str(), Some("ext.vdomain.com"));
    assert_eq!(self_url.port(), Some(4443));
    assert_eq!(self_url.as_str(), self_link.href);

    let discover = answer.discover().unwrap();
    assert!(discover.href.contains("anonymousContext=psat%253d"));
    assert!(
        discover
            .href
            .starts_with("https://api.skypeforbusiness.com/platformService/discover?")
    );
    let (rel, _) = answer.resource.links().find(names::DISCOVER).unwrap();
    assert_eq!(rel.as_str(), "service:discover");
    assert_eq!(rel, &Rel::new(Namespace::RtcSaas, names::DISCOVER));

    let url = discover.absolute().unwrap();
    assert_eq!(url.as_str(), discover.href, "kept exactly as received");
    assert_eq!(url.host_str(), Some("api.skypeforbusiness.com"));
    assert_eq!(url.path(), "/platformService/discover");
}

#[test]
fn seed_000_discover_link_carries_the_token_encoded_twice() {
    let answer: AnonApplicationToken = from_slice(MINT_ANSWER.as_bytes()).unwrap();
    let url = answer.discover().unwrap().absolute().unwrap();
    let (name, once) = url.query_pairs().next().unwrap();
    assert_eq!(name, "anonymousContext");
    // Decoded once: still percent-encoded.
    assert_eq!(once, format!("psat%3d{SEED_JWT}"));
    // Decoded twice: the token itself.
    let twice = url::form_urlencoded::parse(format!("v={once}").as_bytes())
        .next()
        .unwrap()
        .1
        .into_owned();
    assert_eq!(twice, answer.token.expose());
}

#[test]
fn seed_000_token_is_redacted_in_debug_and_display() {
    let answer: AnonApplicationToken = from_slice(MINT_ANSWER.as_bytes()).unwrap();
    let debug = format!("{:?}", answer.token);
    let display = answer.token.to_string();
    for shown in [&debug, &display] {
        assert!(!shown.contains("psat="), "{shown}");
        assert!(!shown.contains(&SEED_JWT[..40]), "{shown}");
    }
    assert!(debug.contains("redacted"));
    // Note: only the `token` member is redacted. The whole answer's `Debug`
    // still shows the discover link, whose query carries the same token
    // (percent-encoded twice), so an answer must not be logged with `{:?}`.
    // Serialization writes the token back as received.
    let json = serde_json::to_value(&answer).unwrap();
    assert_eq!(json["token"], format!("psat={SEED_JWT}"));
}

// ---------------------------------------------------------------------------
// Seed 003: the application link and the capabilities, `ms:rtc:saas:`.

#[test]
fn seed_003_application_link_parses_as_link() {
    let link: Link = from_slice(APPLICATION_LINK.as_bytes()).unwrap();
    assert_eq!(
        link.href,
        "/platformservice/v1/applications/1627259584?endpointId=sip%3ahelpdesk%40contoso.com"
    );
    assert_eq!(link.templated, None);
    assert_eq!(link.title, None);
    assert_eq!(link.name, None);
    assert_eq!(link.media_type, None);
    assert!(link.extra.is_empty());
    assert_eq!(link, Link::new(link.href.clone()));
}

#[test]
fn seed_003_application_link_parses_as_applications() {
    let apps: Applications = from_slice(applications_answer().as_bytes()).unwrap();
    let link: Link = from_slice(APPLICATION_LINK.as_bytes()).unwrap();
    assert_eq!(apps.application(), Some(&link));

    let (rel, _) = apps.resource().links().find(names::APPLICATION).unwrap();
    assert_eq!(rel.as_str(), "ms:rtc:saas:application");
    assert_eq!(rel.namespace(), Some(Namespace::RtcSaas));
    assert_eq!(rel, &Rel::new(Namespace::Service, names::APPLICATION));
    assert_eq!(
        apps.resource()
            .links()
            .get(&Rel::from("service:application")),
        Some(&link)
    );
}

#[test]
fn seed_003_application_link_resolves_against_the_applications_url() {
    let apps: Applications = from_slice(applications_answer().as_bytes()).unwrap();
    let base = Url::parse(APPLICATIONS_URL).unwrap();
    let url = apps.application().unwrap().resolve(&base).unwrap();
    assert_eq!(
        url.as_str(),
        "https://ring2noammeetings.resources.lync.com/platformservice/v1/applications/1627259584?endpointId=sip%3ahelpdesk%40contoso.com"
    );
    // A relative href is not an absolute URL.
    assert!(apps.application().unwrap().absolute().is_err());
}

#[test]
fn seed_003_capabilities_parse_as_application() {
    let app: Application = from_slice(CAPABILITIES_SAAS.as_bytes()).unwrap();
    let res = app.resource();
    assert_eq!(
        res.rel.as_ref().unwrap().as_str(),
        "ms:rtc:saas:application"
    );
    assert_eq!(
        res.rel,
        Some(Rel::new(Namespace::Service, names::APPLICATION))
    );
    assert_eq!(res.namespace(), Some(Namespace::RtcSaas));
    assert_eq!(
        href(res.self_link()),
        "/platformservice/v1/applications/1627259584?endpointId=sip%3ahelpdesk%40contoso.com"
    );

    // The tenant did not consent to anonymous tokens nor ad hoc meetings here.
    assert_eq!(app.anon_application_tokens(), None);
    assert_eq!(app.adhoc_meetings(), None);
    assert_eq!(app.capabilities(), ["communication"]);

    let comm = app.communication().unwrap();
    assert_eq!(
        comm.rel.as_ref().unwrap().as_str(),
        "ms:rtc:saas:communication"
    );
    assert_eq!(comm.etag.as_deref(), Some("4294967295"));
    assert_eq!(
        href(comm.self_link()),
        format!("{APP}/communication?endpointId=sip:helpdesk@contoso.com")
    );
    assert_eq!(
        href(comm.link(names::START_MESSAGING)),
        format!("{APP}/communication/messagingInvitations?endpointId=sip:helpdesk@contoso.com")
    );
    assert_eq!(comm.link(names::JOIN_ONLINE_MEETING), None);
    let (rel, _) = comm.links().find(names::START_MESSAGING).unwrap();
    assert_eq!(rel.as_str(), "ms:rtc:saas:startMessaging");
}

#[test]
fn seed_003_and_000_capabilities_agree_across_namespaces() {
    let service: Application = from_slice(CAPABILITIES_SERVICE.as_bytes()).unwrap();
    let saas: Application = from_slice(CAPABILITIES_SAAS.as_bytes()).unwrap();
    assert_eq!(service.resource().rel, saas.resource().rel);
    assert_eq!(service.resource().self_link(), saas.resource().self_link());
    let a = service.communication().unwrap();
    let b = saas.communication().unwrap();
    assert_eq!(a.rel, b.rel);
    assert_eq!(a.etag, b.etag);
    assert_eq!(
        a.link(names::START_MESSAGING),
        b.link(names::START_MESSAGING)
    );
    // The same rel object finds the link in both documents.
    let rel = Rel::new(Namespace::Service, names::START_MESSAGING);
    assert!(a.links().get(&rel).is_some());
    assert!(b.links().get(&rel).is_some());
}

// ---------------------------------------------------------------------------
// protocol-notes.md: the error body.

#[test]
fn notes_error_body_parses() {
    let body: ErrorBody = from_slice(ERROR_BODY.as_bytes()).unwrap();
    assert_eq!(body.code, "Forbidden");
    assert_eq!(body.subcode.as_deref(), Some("ApplicationNotFound"));
    assert_eq!(body.message.as_deref(), Some(".."));
    assert!(body.extra.is_empty());
    assert_eq!(body.error_report_id(), None);
    assert_eq!(
        body,
        ErrorBody::new("Forbidden", Some("ApplicationNotFound"), "..")
    );
}
