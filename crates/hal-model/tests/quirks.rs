//! One test (or a few) per item of protocol-notes.md, "Quirks seen in real
//! responses".

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod common;

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeSet, HashSet};
use std::hash::{Hash, Hasher};

use common::{CAPABILITIES_SERVICE, ENDPOINT_ENCODED, ENDPOINT_RAW, MINT_ANSWER};
use hal_model::{
    AnonApplicationToken, AnonDiscover, Application, Discover, ExpiryFormat, ExpiryTime, HrefError,
    Link, Links, Namespace, ParseErrorKind, Rel, Resource, UTF8_BOM, from_slice, names,
};
use time::macros::datetime;
use url::Url;

fn hash_of<T: Hash>(value: &T) -> u64 {
    let mut hasher = DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

fn base() -> Url {
    Url::parse("https://ring2noammeetings.resources.lync.com/platformService/v1/applications?endpointId=sip:helpdesk@contoso.com").unwrap()
}

// ---------------------------------------------------------------------------
// Quirk: two namespaces for the same rels.

#[test]
fn quirk_namespaces_rels_are_equal() {
    for local in [
        names::APPLICATIONS,
        names::APPLICATION,
        names::ANON_APPLICATION_TOKENS,
        names::DISCOVER,
        names::COMMUNICATION,
        names::START_MESSAGING,
    ] {
        let service = Rel::from(format!("service:{local}"));
        let saas = Rel::from(format!("ms:rtc:saas:{local}"));
        assert_eq!(service, saas);
        assert_eq!(saas, service);
        assert_eq!(service, Rel::new(Namespace::RtcSaas, local));
        assert_eq!(saas, Rel::new(Namespace::Service, local));
        assert_eq!(service.cmp(&saas), std::cmp::Ordering::Equal);
        assert_eq!(service.namespace(), Some(Namespace::Service));
        assert_eq!(saas.namespace(), Some(Namespace::RtcSaas));
        assert_eq!(service.local_name(), local);
        assert_eq!(saas.local_name(), local);
        // Each keeps its own text.
        assert_eq!(service.as_str(), format!("service:{local}"));
        assert_eq!(saas.to_string(), format!("ms:rtc:saas:{local}"));
        assert_eq!(
            serde_json::to_value(&saas).unwrap(),
            format!("ms:rtc:saas:{local}")
        );
        assert_eq!(
            service.in_namespace(Namespace::RtcSaas).as_str(),
            saas.as_str()
        );
        assert_eq!(
            saas.in_namespace(Namespace::Service).as_str(),
            service.as_str()
        );
    }
    assert_ne!(
        Rel::from("service:applications"),
        Rel::from("ms:rtc:saas:application")
    );
}

#[test]
fn quirk_namespaces_rels_hash_equal() {
    let service = Rel::from("service:anonApplicationTokens");
    let saas = Rel::from("ms:rtc:saas:anonApplicationTokens");
    assert_eq!(hash_of(&service), hash_of(&saas));

    let mut set = HashSet::new();
    assert!(set.insert(service.clone()));
    assert!(!set.insert(saas.clone()), "same rel, already there");
    assert_eq!(set.len(), 1);
    assert!(set.contains(&saas));
    assert!(set.contains(&Rel::new(Namespace::RtcSaas, "anonApplicationTokens")));
    assert!(!set.contains(&Rel::from("anonApplicationTokens")));

    let ordered: BTreeSet<Rel> = [service, saas, Rel::from("self")].into_iter().collect();
    assert_eq!(ordered.len(), 2);
}

#[test]
fn quirk_namespaces_lookup_by_local_name_finds_both() {
    let service = br#"{"_links":{"self":{"href":"/d"},"service:applications":{"href":"https://a.example/platformservice/v1/applications"}}}"#;
    let saas = br#"{"_links":{"self":{"href":"/d"},"ms:rtc:saas:applications":{"href":"https://b.example/platformService/v1/applications"}}}"#;
    let a: Discover = from_slice(service).unwrap();
    let b: Discover = from_slice(saas).unwrap();
    assert_eq!(
        a.applications().unwrap().href,
        "https://a.example/platformservice/v1/applications"
    );
    assert_eq!(
        b.applications().unwrap().href,
        "https://b.example/platformService/v1/applications"
    );
    // The rel it was found under tells the namespace, exactly as sent.
    assert_eq!(
        a.applications_rel().unwrap().as_str(),
        "service:applications"
    );
    assert_eq!(
        b.applications_rel().unwrap().as_str(),
        "ms:rtc:saas:applications"
    );
    assert_eq!(a.resource().namespace(), Some(Namespace::Service));
    assert_eq!(b.resource().namespace(), Some(Namespace::RtcSaas));

    // Lookup by a rel of either namespace finds either.
    for doc in [&a, &b] {
        for ns in Namespace::ALL {
            let rel = Rel::new(ns, names::APPLICATIONS);
            assert_eq!(doc.resource().links().get(&rel), doc.applications());
            assert_eq!(doc.resource().links().get_all(&rel).len(), 1);
        }
    }
}

#[test]
fn quirk_namespaces_mixed_in_one_map() {
    let mut links = Links::new();
    links.insert(Rel::from("service:discover"), Link::new("/one"));
    links.insert(Rel::from("ms:rtc:saas:discover"), Link::new("/two"));
    links.insert(Rel::from("discover"), Link::new("/three"));
    // `get` gives the first entry of the same meaning, `find` the first of
    // the local name in any namespace or none.
    assert_eq!(
        links.get(&Rel::from("ms:rtc:saas:discover")).unwrap().href,
        "/one"
    );
    assert_eq!(links.get(&Rel::from("discover")).unwrap().href, "/three");
    let (rel, link) = links.find(names::DISCOVER).unwrap();
    assert_eq!(
        (rel.as_str(), link.href.as_str()),
        ("service:discover", "/one")
    );
    // Removing by meaning removes both namespaced entries, not the bare one.
    assert_eq!(
        links.remove(&Rel::new(Namespace::Service, names::DISCOVER)),
        2
    );
    assert_eq!(links.len(), 1);
    assert_eq!(links.find(names::DISCOVER).unwrap().1.href, "/three");
}

#[test]
fn quirk_namespaces_typed_accessors_work_in_both() {
    let service: Application = from_slice(CAPABILITIES_SERVICE.as_bytes()).unwrap();
    let saas_text = CAPABILITIES_SERVICE.replace("service:", "ms:rtc:saas:");
    let saas: Application = from_slice(saas_text.as_bytes()).unwrap();
    assert_eq!(saas.resource().namespace(), Some(Namespace::RtcSaas));
    assert_eq!(service.capabilities(), saas.capabilities());
    assert_eq!(
        service.anon_application_tokens(),
        saas.anon_application_tokens()
    );
    assert_eq!(service.communication(), saas.communication());
    assert_eq!(service.adhoc_meetings(), saas.adhoc_meetings());
    // Equal by meaning, different by text.
    assert_eq!(service, saas);
    assert_ne!(
        serde_json::to_string(&service).unwrap(),
        serde_json::to_string(&saas).unwrap()
    );

    let token_saas = MINT_ANSWER.replace("service:", "ms:rtc:saas:");
    let token: AnonApplicationToken = from_slice(token_saas.as_bytes()).unwrap();
    assert!(token.discover().unwrap().href.contains("anonymousContext="));
    assert_eq!(
        token
            .resource
            .links()
            .find(names::DISCOVER)
            .unwrap()
            .0
            .as_str(),
        "ms:rtc:saas:discover"
    );
}

// ---------------------------------------------------------------------------
// Unprefixed rels (`self`, `anonApplications`, `myApplications`).

#[test]
fn quirk_unprefixed_rels_compare_exactly() {
    for name in [
        names::SELF,
        names::ANON_APPLICATIONS,
        names::MY_APPLICATIONS,
    ] {
        let bare = Rel::from(name);
        assert_eq!(bare.namespace(), None);
        assert_eq!(bare.local_name(), name);
        assert_eq!(bare.as_str(), name);
        assert_eq!(bare, Rel::parse(name));
        assert_eq!(bare, Rel::from(name.to_owned()));
        assert_eq!(hash_of(&bare), hash_of(&Rel::parse(name)));
        assert_eq!(bare.in_namespace(Namespace::Service).as_str(), name);
        for ns in Namespace::ALL {
            let prefixed = Rel::new(ns, name);
            assert_ne!(bare, prefixed, "{bare} vs {prefixed}");
            assert_ne!(prefixed, bare, "{prefixed} vs {bare}");
            assert!(prefixed.has_local_name(name));
        }
        // Exact text: case matters.
        assert_ne!(bare, Rel::from(name.to_uppercase().as_str()));
    }
    assert_ne!(Rel::from("self"), Rel::from("anonApplications"));

    let set: HashSet<Rel> = ["self", "service:self", "ms:rtc:saas:self", "self"]
        .into_iter()
        .map(Rel::from)
        .collect();
    assert_eq!(set.len(), 2, "{set:?}");
}

#[test]
fn quirk_unprefixed_self_is_not_a_namespaced_self() {
    let res: Resource =
        from_slice(br#"{"_links":{"service:self":{"href":"/wrong"},"self":{"href":"/right"}}}"#)
            .unwrap();
    assert_eq!(res.self_link().unwrap().href, "/right");
    let only_prefixed: Resource =
        from_slice(br#"{"_links":{"service:self":{"href":"/wrong"}}}"#).unwrap();
    assert_eq!(only_prefixed.self_link(), None);
}

#[test]
fn quirk_unprefixed_anon_applications_and_extra_links() {
    let body = br#"{
        "_links": {
            "self": {"href": "https://api.skypeforbusiness.com/platformService/discover?anonymousContext=x"},
            "anonApplications": {"href": "/ucwa/psanon/v1/applications"},
            "myApplications": {"href": "/ucwa/v1/applications"}
        },
        "rel": "service:discover"
    }"#;
    let discover: AnonDiscover = from_slice(body).unwrap();
    assert_eq!(
        discover.anon_applications().unwrap().href,
        "/ucwa/psanon/v1/applications"
    );
    assert_eq!(
        discover
            .resource()
            .links()
            .get(&Rel::from("anonApplications"))
            .unwrap()
            .href,
        "/ucwa/psanon/v1/applications"
    );
    assert_eq!(
        discover
            .resource()
            .links()
            .get(&Rel::from("service:anonApplications")),
        None
    );
    assert_eq!(
        discover
            .resource()
            .links()
            .get(&Rel::from("service:myApplications")),
        None
    );
    let resolved = discover
        .anon_applications()
        .unwrap()
        .resolve(
            &Url::parse(
                "https://api.skypeforbusiness.com/platformService/discover?anonymousContext=x",
            )
            .unwrap(),
        )
        .unwrap();
    assert_eq!(
        resolved.as_str(),
        "https://api.skypeforbusiness.com/ucwa/psanon/v1/applications"
    );

    // A discovery answer's extra links do not hide the applications link.
    let discover: Discover = from_slice(
        br#"{"_links":{"self":{"href":"/d"},"myApplications":{"href":"/m"},"service:applications":{"href":"https://h/a"}}}"#,
    )
    .unwrap();
    assert_eq!(discover.applications().unwrap().href, "https://h/a");
}

// ---------------------------------------------------------------------------
// Quirk: `expiryTime` as RFC 3339 or `/Date(ms)/` (with an optional offset).

const SAME_INSTANT: [&str; 7] = [
    "2017-03-07T07:43:45.837Z",
    "2017-03-07T07:43:45.837+00:00",
    "2017-03-07T02:43:45.837-05:00",
    "/Date(1488872625837)/",
    "/Date(1488872625837+0000)/",
    "/Date(1488872625837-0500)/",
    "/Date(1488872625837+0130)/",
];

#[test]
fn quirk_expiry_formats_give_the_same_instant() {
    let expected = datetime!(2017-03-07 07:43:45.837 UTC);
    for text in SAME_INSTANT {
        let expiry = ExpiryTime::parse(text).unwrap();
        assert_eq!(expiry.instant(), expected, "{text}");
        assert_eq!(
            expiry.instant().unix_timestamp_nanos(),
            1_488_872_625_837_000_000
        );
        assert_eq!(
            expiry.system_time(),
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_488_872_625_837)
        );
        let format = if text.starts_with("/Date(") {
            ExpiryFormat::MicrosoftJson
        } else {
            ExpiryFormat::Rfc3339
        };
        assert_eq!(expiry.format(), format, "{text}");
    }
}

#[test]
fn quirk_expiry_offset_is_informational() {
    // The offset does not change the instant; it is kept as the local view.
    let utc = ExpiryTime::parse("/Date(1488872625837)/").unwrap();
    let minus = ExpiryTime::parse("/Date(1488872625837-0500)/").unwrap();
    let plus = ExpiryTime::parse("/Date(1488872625837+0130)/").unwrap();
    assert_eq!(utc.instant(), minus.instant());
    assert_eq!(utc.instant(), plus.instant());
    assert_eq!(minus.instant().offset().whole_hours(), -5);
    assert_eq!(minus.instant().hour(), 2);
    assert_eq!(plus.instant().offset().whole_minutes(), 90);
    // Texts differ, so the values differ, although the instants agree.
    assert_ne!(utc, minus);
}

#[test]
fn quirk_expiry_serializes_back_exactly_as_received() {
    for text in SAME_INSTANT {
        let expiry = ExpiryTime::parse(text).unwrap();
        assert_eq!(expiry.as_str(), text);
        assert_eq!(expiry.to_string(), text);
        assert_eq!(format!("{expiry:?}"), format!("{text:?}"));
        assert_eq!(serde_json::to_value(&expiry).unwrap(), text);

        // And inside a whole token answer.
        let body = format!(
            r#"{{"token":"psat=a.b.c","expiryTime":"{text}","rel":"service:anonApplicationToken"}}"#
        );
        let answer: AnonApplicationToken = from_slice(body.as_bytes()).unwrap();
        assert_eq!(answer.expiry_time.as_str(), text);
        assert_eq!(
            serde_json::to_value(&answer).unwrap(),
            serde_json::from_str::<serde_json::Value>(&body).unwrap()
        );
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&hal_model::to_vec(&answer)).unwrap()["expiryTime"],
            text
        );
    }
}

#[test]
fn quirk_expiry_seed_instant_in_both_forms() {
    let rfc = ExpiryTime::parse("2016-06-27T01:42:13.094Z").unwrap();
    let ms = ExpiryTime::parse("/Date(1466991733094)/").unwrap();
    assert_eq!(rfc.instant(), ms.instant());
    assert_eq!(rfc.instant(), datetime!(2016-06-27 01:42:13.094 UTC));

    // Writing an instant in each format.
    let at = datetime!(2016-06-27 01:42:13.094 UTC);
    assert_eq!(ExpiryTime::rfc3339(at).as_str(), "2016-06-27T01:42:13.094Z");
    assert_eq!(
        ExpiryTime::microsoft_json(at).as_str(),
        "/Date(1466991733094)/"
    );
    assert_eq!(
        ExpiryTime::with_format(at, ExpiryFormat::Rfc3339),
        ExpiryTime::rfc3339(at)
    );
    assert_eq!(
        ExpiryTime::with_format(at, ExpiryFormat::MicrosoftJson),
        ExpiryTime::microsoft_json(at)
    );
    assert_eq!(ExpiryTime::rfc3339(at), rfc);
    assert_eq!(ExpiryTime::microsoft_json(at), ms);
    // `rfc3339` writes UTC whatever offset it is given.
    let shifted = at.to_offset(time::macros::offset!(-5));
    assert_eq!(
        ExpiryTime::rfc3339(shifted).as_str(),
        "2016-06-27T01:42:13.094Z"
    );
}

#[test]
fn quirk_expiry_negative_and_pre_epoch_ms() {
    let before = ExpiryTime::parse("/Date(-1000)/").unwrap();
    assert_eq!(before.instant(), datetime!(1969-12-31 23:59:59 UTC));
    let zero = ExpiryTime::parse("/Date(0)/").unwrap();
    assert_eq!(zero.instant(), datetime!(1970-01-01 00:00 UTC));
    let negative_offset = ExpiryTime::parse("/Date(-1000-0100)/").unwrap();
    assert_eq!(negative_offset.instant(), before.instant());
}

#[test]
fn quirk_expiry_malformed_is_an_error_not_a_panic() {
    for text in [
        "",
        "2016-06-27",
        "2016-06-27T01:42:13",
        "2016-06-27T01:42:13.094",
        "2016-13-27T01:42:13Z",
        "/Date()/",
        "/Date(-)/",
        "/Date(+1)/",
        "/Date(abc)/",
        "/Date(12a)/",
        "/Date(1.5)/",
        "/Date( 1)/",
        "/Date(1)",
        "Date(1)/",
        "/Date(1+05)/",
        "/Date(1+0560)/",
        "/Date(1+2600)/",
        "/Date(1*0100)/",
        "/Date(1+01000)/",
        "/Date(1+-100)/",
        "/Date(99999999999999999999)/",
        "/Date(9223372036854775807)/",
        "/Date(-9223372036854775808)/",
        // Out of the supported range (year 10000), or pushed out of it by
        // the offset: an error, never a panic.
        "/Date(253402300800000)/",
        "/Date(253402300799999+2359)/",
        "/Date(-377705116800000-0001)/",
        "/Date(-377705116800001)/",
        "9999-12-31T23:59:59.999-23:59",
        // Before year 0 in UTC, which RFC 3339 cannot write (found by the
        // expiry_time fuzz target): the widget is handed the expiry in UTC.
        "/Date(-377705116800000)/",
        "/Date(-62167219200001)/",
        "0000-01-01T00:30:00+01:00",
        "/Date(1)/ ",
    ] {
        let result = std::panic::catch_unwind(|| ExpiryTime::parse(text));
        let parsed = result.unwrap_or_else(|_| panic!("{text:?} panicked"));
        let error = parsed.expect_err(text);
        assert!(error.to_string().contains("expiryTime"), "{error}");
    }
}

#[test]
fn quirk_expiry_range_edges_that_fit() {
    let last = ExpiryTime::parse("/Date(253402300799999)/").unwrap();
    assert_eq!(last.instant(), datetime!(9999-12-31 23:59:59.999 UTC));
    let last_minus = ExpiryTime::parse("/Date(253402300799999-2359)/").unwrap();
    assert_eq!(last_minus.instant(), last.instant());
    let first = ExpiryTime::parse("/Date(-62167219200000)/").unwrap();
    assert_eq!(first.instant(), datetime!(0000-01-01 00:00 UTC));
    assert_eq!(first.to_rfc3339_utc(), "0000-01-01T00:00:00Z");
    let first_minus = ExpiryTime::parse("/Date(-62167219200000-2559)/").unwrap();
    assert_eq!(first_minus.instant(), first.instant());
    // Before the epoch, the platform's clock holds it (no panic).
    assert!(first.system_time() <= std::time::SystemTime::UNIX_EPOCH);
    let rfc = ExpiryTime::parse("9999-12-31T23:59:59.999Z").unwrap();
    assert_eq!(rfc.instant(), last.instant());
    let rfc_zero = ExpiryTime::parse("0000-01-01T00:00:00.000Z").unwrap();
    assert_eq!(rfc_zero.instant(), datetime!(0000-01-01 00:00 UTC));
}

#[test]
fn quirk_expiry_malformed_in_a_body_names_the_member() {
    let error = from_slice::<AnonApplicationToken>(
        br#"{"token":"psat=x","expiryTime":"/Date(soon)/","_links":{}}"#,
    )
    .unwrap_err();
    assert_eq!(error.kind(), ParseErrorKind::Data);
    assert_eq!(error.path(), "expiryTime");
    assert!(error.message().contains("/Date(soon)/"), "{error}");

    let error =
        from_slice::<AnonApplicationToken>(br#"{"token":"psat=x","expiryTime":1488872625837}"#)
            .unwrap_err();
    assert_eq!(error.path(), "expiryTime");
    assert_eq!(error.kind(), ParseErrorKind::Data);
}

// ---------------------------------------------------------------------------
// Quirk: bodies may begin with a UTF-8 byte order mark.

fn with_bom(body: &str) -> Vec<u8> {
    let mut bytes = UTF8_BOM.to_vec();
    bytes.extend_from_slice(body.as_bytes());
    bytes
}

#[test]
fn quirk_utf8_bom_is_accepted() {
    assert_eq!(UTF8_BOM, "\u{feff}".as_bytes());
    let app: Application = from_slice(&with_bom(CAPABILITIES_SERVICE)).unwrap();
    assert_eq!(
        app,
        from_slice::<Application>(CAPABILITIES_SERVICE.as_bytes()).unwrap()
    );
    let token: AnonApplicationToken = from_slice(&with_bom(MINT_ANSWER)).unwrap();
    assert_eq!(
        token,
        from_slice::<AnonApplicationToken>(MINT_ANSWER.as_bytes()).unwrap()
    );
    let error: hal_model::ErrorBody = from_slice(&with_bom(
        r#"{"code":"Forbidden","subcode":"ApplicationNotFound"}"#,
    ))
    .unwrap();
    assert_eq!(error.subcode.as_deref(), Some("ApplicationNotFound"));
    let link: Link = from_slice(&with_bom(r#"{"href":"/x"}"#)).unwrap();
    assert_eq!(link.href, "/x");
    let value: serde_json::Value = from_slice(&with_bom("[1,2]")).unwrap();
    assert_eq!(value, serde_json::json!([1, 2]));

    // serde_json alone would refuse it: the BOM handling is this crate's.
    assert!(serde_json::from_slice::<serde_json::Value>(&with_bom("{}")).is_err());
}

#[test]
fn quirk_utf8_bom_only_once_and_only_at_the_start() {
    let mut twice = UTF8_BOM.to_vec();
    twice.extend_from_slice(&with_bom("{}"));
    let error = from_slice::<Resource>(&twice).unwrap_err();
    assert_eq!(error.kind(), ParseErrorKind::Syntax);

    let mut after_space = b" ".to_vec();
    after_space.extend_from_slice(&with_bom("{}"));
    assert!(from_slice::<Resource>(&after_space).is_err());

    // A BOM and nothing else is an empty body.
    let error = from_slice::<Resource>(UTF8_BOM).unwrap_err();
    assert_eq!(error.kind(), ParseErrorKind::Eof);
}

// ---------------------------------------------------------------------------
// Quirk: `endpointId` raw or percent-encoded (lower-case hex).

#[test]
fn quirk_endpoint_id_encoded_is_kept_through_resolve() {
    let href = format!("/platformservice/v1/applications/1627259584?endpointId={ENDPOINT_ENCODED}");
    let url = Link::new(href.clone()).resolve(&base()).unwrap();
    assert_eq!(
        url.as_str(),
        "https://ring2noammeetings.resources.lync.com/platformservice/v1/applications/1627259584?endpointId=sip%3ahelpdesk%40contoso.com"
    );
    assert_eq!(url.query(), Some("endpointId=sip%3ahelpdesk%40contoso.com"));
    // Not upper-cased, not encoded again.
    assert!(!url.as_str().contains("%3A"));
    assert!(!url.as_str().contains("%25"));
    // Both still denote the same endpoint.
    let (_, value) = url.query_pairs().next().unwrap();
    assert_eq!(value, ENDPOINT_RAW);
}

#[test]
fn quirk_endpoint_id_raw_is_kept_raw_through_resolve() {
    let href = format!("/platformservice/v1/applications/1627259584?endpointId={ENDPOINT_RAW}");
    let url = Link::new(href).resolve(&base()).unwrap();
    assert_eq!(
        url.as_str(),
        "https://ring2noammeetings.resources.lync.com/platformservice/v1/applications/1627259584?endpointId=sip:helpdesk@contoso.com"
    );
    assert_eq!(url.query(), Some("endpointId=sip:helpdesk@contoso.com"));
    let (_, value) = url.query_pairs().next().unwrap();
    assert_eq!(value, ENDPOINT_RAW);
}

#[test]
fn quirk_endpoint_id_mixed_and_upper_case_forms_are_kept() {
    // The seed's own GET line mixes the forms.
    for query in [
        "endpointId=sip:helpdesk%40contoso.com",
        "endpointId=sip%3Ahelpdesk%40contoso.com",
        "endpointId=sip%3ahelpdesk%40contoso.com&x=1",
    ] {
        let href = format!(
            "https://ring2noammeetings.resources.lync.com/platformService/v1/applications/1627259584?{query}"
        );
        let link = Link::new(href.clone());
        assert_eq!(link.resolve(&base()).unwrap().as_str(), href);
        assert_eq!(link.absolute().unwrap().as_str(), href);
        assert_eq!(link.absolute().unwrap().query(), Some(query));
    }
}

#[test]
fn quirk_an_href_whose_meaning_depends_on_the_base_is_not_absolute() {
    // `https:host/x` alone is `https://host/x`, but against an https base a
    // path on the base's host, which is where the client would go (found by
    // the hal_resource fuzz target): trust is not extended to `host`.
    let link = Link::new("https:other.example/x");
    assert!(matches!(
        link.absolute(),
        Err(HrefError::NotAbsolute { .. })
    ));
    assert_eq!(link.resolve(&base()).unwrap().host_str(), base().host_str());
    // `http:host/x` names the host against an https base but is a path on an
    // http base's host: without a base its meaning is not known either.
    let link = Link::new("http:other.example/x");
    assert!(matches!(
        link.absolute(),
        Err(HrefError::NotAbsolute { .. })
    ));
    assert_eq!(
        link.resolve(&base()).unwrap().as_str(),
        "http://other.example/x"
    );
    // Written with `//`, it is absolute whatever the base.
    let link = Link::new("http://other.example/x");
    assert_eq!(link.absolute().unwrap().as_str(), "http://other.example/x");
    assert_eq!(link.resolve(&base()).unwrap(), link.absolute().unwrap());
}

#[test]
fn quirk_endpoint_id_in_absolute_hrefs_is_kept() {
    let token: AnonApplicationToken = from_slice(MINT_ANSWER.as_bytes()).unwrap();
    let self_url = token.self_link().unwrap().absolute().unwrap();
    assert_eq!(
        self_url.query(),
        Some("endpointId=sip:helpdesk@contoso.com")
    );
    // The doubly encoded token is not decoded.
    let discover = token.discover().unwrap();
    assert_eq!(discover.absolute().unwrap().as_str(), discover.href);
    assert_eq!(discover.resolve(&base()).unwrap().as_str(), discover.href);
}

// ---------------------------------------------------------------------------
// Quirk: hrefs relative or absolute on other hosts.

#[test]
fn quirk_relative_hrefs_resolve_on_the_base_host() {
    let base = base();
    for (href, expected) in [
        (
            "/platformservice/v1/applications/1",
            "https://ring2noammeetings.resources.lync.com/platformservice/v1/applications/1",
        ),
        (
            "applications/1?x=y",
            "https://ring2noammeetings.resources.lync.com/platformService/v1/applications/1?x=y",
        ),
        (
            "?endpointId=other",
            "https://ring2noammeetings.resources.lync.com/platformService/v1/applications?endpointId=other",
        ),
        (
            "../v2/applications",
            "https://ring2noammeetings.resources.lync.com/platformService/v2/applications",
        ),
        (
            "#fragment",
            "https://ring2noammeetings.resources.lync.com/platformService/v1/applications?endpointId=sip:helpdesk@contoso.com#fragment",
        ),
    ] {
        let url = Link::new(href).resolve(&base).unwrap();
        assert_eq!(url.as_str(), expected, "{href}");
        assert_eq!(url.host_str(), base.host_str());
        assert_eq!(url.scheme(), "https");
        // Relative hrefs are not absolute URLs.
        assert!(
            matches!(
                Link::new(href).absolute(),
                Err(HrefError::NotAbsolute { .. })
            ),
            "{href}"
        );
    }
}

#[test]
fn quirk_absolute_hrefs_on_other_hosts() {
    let base = base();
    for (href, host, port) in [
        (
            "https://ext.vdomain.com:4443/platformservice/v1/applications/1627259584/anonApplicationTokens?endpointId=sip:helpdesk@contoso.com",
            "ext.vdomain.com",
            Some(4443),
        ),
        (
            "https://api.skypeforbusiness.com/platformService/discover",
            "api.skypeforbusiness.com",
            None,
        ),
        ("http://plain.example/x", "plain.example", None),
    ] {
        let resolved = Link::new(href).resolve(&base).unwrap();
        let absolute = Link::new(href).absolute().unwrap();
        assert_eq!(resolved, absolute);
        assert_eq!(resolved.as_str(), href);
        assert_eq!(resolved.host_str(), Some(host));
        assert_eq!(resolved.port(), port);
    }
    // A scheme-relative href takes the base's scheme and its own host.
    let url = Link::new("//infra.lync.com/platformservice/x")
        .resolve(&base)
        .unwrap();
    assert_eq!(url.as_str(), "https://infra.lync.com/platformservice/x");
}

// ---------------------------------------------------------------------------
// Quirk: path casing `platformService` / `platformservice`.

#[test]
fn quirk_path_casing_is_kept() {
    for path in [
        "/platformService/v1/applications",
        "/platformservice/v1/applications",
        "/PlatformService/V1/Applications",
    ] {
        let url = Link::new(path).resolve(&base()).unwrap();
        assert_eq!(url.path(), path);
        let absolute = format!("https://api.skypeforbusiness.com{path}/discover");
        let url = Link::new(absolute.clone()).absolute().unwrap();
        assert_eq!(url.as_str(), absolute);
    }
    // The two casings are different hrefs; nothing folds them.
    assert_ne!(
        Link::new("/platformService/discover"),
        Link::new("/platformservice/discover")
    );
    // Only the host is case-insensitive, and the URL parser lowers it.
    let url = Link::new("https://API.SkypeForBusiness.com/platformService/discover")
        .absolute()
        .unwrap();
    assert_eq!(
        url.as_str(),
        "https://api.skypeforbusiness.com/platformService/discover"
    );
}

// ---------------------------------------------------------------------------
// Quirk: a link may be missing.

#[test]
fn quirk_missing_link_gives_none() {
    let app: Application =
        from_slice(br#"{"_links":{"self":{"href":"/a"}},"rel":"service:application"}"#).unwrap();
    assert_eq!(app.anon_application_tokens(), None);
    assert_eq!(app.communication(), None);
    assert_eq!(app.adhoc_meetings(), None);
    assert!(app.capabilities().is_empty());

    let discover: Discover = from_slice(br#"{"_links":{"self":{"href":"/d"}}}"#).unwrap();
    assert_eq!(discover.applications(), None);
    assert_eq!(discover.applications_rel(), None);

    let applications: hal_model::Applications = from_slice(b"{}").unwrap();
    assert_eq!(applications.application(), None);

    let token: AnonApplicationToken =
        from_slice(br#"{"token":"psat=x","expiryTime":"/Date(0)/"}"#).unwrap();
    assert_eq!(token.discover(), None);
    assert_eq!(token.self_link(), None);

    let anon: AnonDiscover = from_slice(br#"{"_links":{}}"#).unwrap();
    assert_eq!(anon.anon_applications(), None);

    let res = Resource::new();
    assert_eq!(res.link("anything"), None);
    assert_eq!(res.self_link(), None);
    assert_eq!(res.embedded_resource("anything"), None);
    assert!(res.links().is_empty());
    assert!(res.embedded().is_empty());
    assert_eq!(res.links().get(&Rel::from("service:x")), None);
    assert!(res.links().get_all(&Rel::from("service:x")).is_empty());
    assert_eq!(res.namespace(), None);
}

#[test]
fn quirk_empty_array_of_links_is_missing() {
    let res: Resource = from_slice(br#"{"_links":{"service:anonApplicationTokens":[]}}"#).unwrap();
    assert_eq!(res.link(names::ANON_APPLICATION_TOKENS), None);
    assert!(
        res.links()
            .get_all(&Rel::from("ms:rtc:saas:anonApplicationTokens"))
            .is_empty()
    );
    assert_eq!(res.links().len(), 1);
    let app = Application::from(res);
    assert_eq!(app.anon_application_tokens(), None);
}

// ---------------------------------------------------------------------------
// Quirk: a malformed link is an error, not a panic.

#[test]
fn quirk_malformed_link_not_absolute() {
    // An empty href is reported as such, by `absolute` as by `resolve`.
    assert_eq!(Link::new("").absolute().unwrap_err(), HrefError::Empty);
    assert_eq!(Link::new(" ").absolute().unwrap_err(), HrefError::Empty);
    for href in [
        "/platformservice/discover",
        "platformservice/discover",
        "?endpointId=x",
        "sip:helpdesk@contoso.com",
        "mailto:x@example.com",
        "data:text/plain,hello",
        "file:///etc/passwd",
    ] {
        let error = Link::new(href).absolute().unwrap_err();
        assert_eq!(
            error,
            HrefError::NotAbsolute {
                href: href.to_owned()
            },
            "{href}"
        );
        assert!(error.to_string().contains("not an absolute URL"), "{error}");
    }
}

#[test]
fn quirk_malformed_link_invalid() {
    for (href, source) in [
        ("http://[::1", url::ParseError::InvalidIpv6Address),
        ("https://host:99999/x", url::ParseError::InvalidPort),
        ("https://", url::ParseError::EmptyHost),
        (
            "http://256.256.256.256/",
            url::ParseError::InvalidIpv4Address,
        ),
    ] {
        let error = Link::new(href).absolute().unwrap_err();
        assert_eq!(
            error,
            HrefError::Invalid {
                href: href.to_owned(),
                source
            },
            "{href}"
        );
        assert!(error.to_string().contains("not a valid URL"), "{error}");
        assert!(std::error::Error::source(&error).is_some());
        // Resolving against a base fails the same way (the href is absolute).
        assert!(
            matches!(
                Link::new(href).resolve(&base()),
                Err(HrefError::Invalid { .. })
            ),
            "{href}"
        );
    }
    // A space in the host: invalid whatever the parser's exact reason.
    for href in ["https://exa mple.com/", "https://a\u{0}b/"] {
        assert!(
            matches!(Link::new(href).absolute(), Err(HrefError::Invalid { .. })),
            "{href}"
        );
    }
}

#[test]
fn quirk_malformed_link_empty_or_templated() {
    assert_eq!(Link::new("").resolve(&base()), Err(HrefError::Empty));
    assert_eq!(Link::new("  \t").resolve(&base()), Err(HrefError::Empty));
    let mut templated = Link::new("/platformservice/{id}");
    templated.templated = Some(true);
    let expected = HrefError::Templated {
        href: "/platformservice/{id}".to_owned(),
    };
    assert_eq!(templated.resolve(&base()), Err(expected.clone()));
    assert_eq!(templated.absolute(), Err(expected));
    templated.templated = Some(false);
    assert!(templated.resolve(&base()).is_ok());
}

#[test]
fn quirk_malformed_link_member_in_a_body_is_a_parse_error() {
    for (body, path) in [
        (r#"{"_links":{"self":{"href":5}}}"#, "_links.self.href"),
        (r#"{"_links":{"self":{}}}"#, "_links.self"),
        (r#"{"_links":{"self":"/x"}}"#, "_links.self"),
        (r#"{"_links":{"self":[{"href":"/x"},7]}}"#, "_links.self[1]"),
        (r#"{"_links":["self"]}"#, "_links"),
        (
            r#"{"_links":{"service:anonApplicationTokens":{"href":null}}}"#,
            "_links.service:anonApplicationTokens.href",
        ),
        (
            r#"{"_links":{"self":{"href":"/x","templated":"yes"}}}"#,
            "_links.self.templated",
        ),
    ] {
        let result = std::panic::catch_unwind(|| from_slice::<Application>(body.as_bytes()));
        let error = result.unwrap().unwrap_err();
        assert_eq!(error.kind(), ParseErrorKind::Data, "{body}");
        assert_eq!(error.path(), path, "{body}: {error}");
    }
}
