//! Property tests: rels across namespaces, href resolution, `expiryTime`
//! formats, and parsing arbitrary input without panics.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use hal_model::{
    AnonApplicationToken, AnonDiscover, Application, Applications, Discover, ErrorBody,
    ExpiryFormat, ExpiryTime, Link, Namespace, Rel, Resource, UTF8_BOM, from_slice, to_vec,
};
use proptest::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};
use url::Url;

fn hash_of<T: Hash>(value: &T) -> u64 {
    let mut hasher = DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

fn namespace() -> impl Strategy<Value = Namespace> {
    prop_oneof![Just(Namespace::Service), Just(Namespace::RtcSaas)]
}

/// Strings that often start with (parts of) the API's prefixes.
fn rel_text() -> impl Strategy<Value = String> {
    (
        prop_oneof![
            Just(""),
            Just("service:"),
            Just("ms:rtc:saas:"),
            Just("ms:rtc:"),
            Just("service"),
            Just("Service:"),
            Just("ms:rtc:saas:service:"),
        ],
        prop_oneof!["[ab:]{0,3}", ".{0,8}"],
    )
        .prop_map(|(prefix, rest)| format!("{prefix}{rest}"))
}

// ---------------------------------------------------------------------------
// Rels.

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn rel_same_local_name_in_both_namespaces(n in ".*") {
        let service = Rel::new(Namespace::Service, &n);
        let saas = Rel::new(Namespace::RtcSaas, &n);
        prop_assert_eq!(&service, &saas);
        prop_assert_eq!(hash_of(&service), hash_of(&saas));
        prop_assert_eq!(service.cmp(&saas), std::cmp::Ordering::Equal);
        prop_assert_eq!(service.local_name(), n.as_str());
        prop_assert_eq!(saas.local_name(), n.as_str());
        prop_assert!(service.has_local_name(&n));
        prop_assert_eq!(service.namespace(), Some(Namespace::Service));
        prop_assert_eq!(saas.namespace(), Some(Namespace::RtcSaas));
        prop_assert_eq!(service.as_str(), format!("service:{n}"));
        prop_assert_eq!(saas.as_str(), format!("ms:rtc:saas:{n}"));
        prop_assert_eq!(service.in_namespace(Namespace::RtcSaas).as_str().to_owned(), saas.as_str());
        prop_assert_eq!(saas.in_namespace(Namespace::Service).as_str().to_owned(), service.as_str());
        // A namespaced rel never equals an unprefixed one, nor the bare name.
        prop_assert_ne!(&service, &Rel::parse(&n));
    }

    #[test]
    fn rel_text_of_a_namespaced_rel_parses_back(ns in namespace(), n in ".+") {
        let built = Rel::new(ns, &n);
        let parsed = Rel::from(built.as_str());
        prop_assert_eq!(&parsed, &built);
        prop_assert_eq!(parsed.local_name(), n.as_str());
        prop_assert_eq!(parsed.namespace(), Some(ns));
        let other = Rel::from(format!("{}{n}", match ns {
            Namespace::Service => "ms:rtc:saas:",
            _ => "service:",
        }));
        prop_assert_eq!(&other, &built);
        prop_assert_eq!(hash_of(&other), hash_of(&built));
        let json = serde_json::to_value(&built).unwrap();
        prop_assert_eq!(json.as_str(), Some(built.as_str()));
        let back: Rel = serde_json::from_value(json).unwrap();
        prop_assert_eq!(back.as_str(), built.as_str());
        prop_assert_eq!(back, built);
    }

    #[test]
    fn rel_any_string_is_kept_exactly(s in prop_oneof![any::<String>(), rel_text()]) {
        let rel = Rel::from(s.as_str());
        prop_assert_eq!(rel.as_str(), s.as_str());
        prop_assert_eq!(rel.to_string(), s.clone());
        prop_assert_eq!(format!("{rel:?}"), format!("{s:?}"));
        let owned = Rel::from(s.clone());
        prop_assert_eq!(owned.as_str(), s.as_str());
        prop_assert_eq!(&owned, &rel);
        prop_assert_eq!(owned.namespace(), rel.namespace());
        prop_assert_eq!(Rel::parse(&s).as_str().to_owned(), s.as_str());
        prop_assert_eq!(&rel, &rel.clone());
        prop_assert_eq!(hash_of(&rel), hash_of(&rel.clone()));
        prop_assert!(s.ends_with(rel.local_name()));
        match rel.namespace() {
            Some(ns) => {
                prop_assert_eq!(format!("{}{}", ns.prefix(), rel.local_name()), s.clone());
                // `service:` alone is a namespaced rel with an empty local
                // name, so that `Rel::new(ns, "")` parses back to itself.
                prop_assert_eq!(Rel::parse(rel.as_str()), Rel::new(ns, rel.local_name()));
            }
            None => prop_assert_eq!(rel.local_name(), s.as_str()),
        }
        let json = serde_json::to_string(&rel).unwrap();
        let back: Rel = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(back.as_str(), s.as_str());
        prop_assert_eq!(back, rel);
    }

    #[test]
    fn rel_eq_hash_ord_agree(a in rel_text(), b in rel_text()) {
        let (ra, rb) = (Rel::from(a.as_str()), Rel::from(b.as_str()));
        let equal = ra == rb;
        prop_assert_eq!(equal, rb == ra);
        prop_assert_eq!(equal, ra.cmp(&rb) == std::cmp::Ordering::Equal);
        prop_assert_eq!(ra.cmp(&rb), rb.cmp(&ra).reverse());
        if equal {
            prop_assert_eq!(hash_of(&ra), hash_of(&rb));
        }
        let expected = match (ra.namespace(), rb.namespace()) {
            (Some(_), Some(_)) => ra.local_name() == rb.local_name(),
            (None, None) => a == b,
            _ => false,
        };
        prop_assert_eq!(equal, expected);
        // Same text: always the same rel.
        if a == b {
            prop_assert!(equal);
        }
    }
}

// ---------------------------------------------------------------------------
// Hrefs.

fn bases() -> impl Strategy<Value = Url> {
    prop_oneof![
        Just("https://ring2noammeetings.resources.lync.com/platformService/v1/applications?endpointId=sip:helpdesk@contoso.com"),
        Just("https://api.skypeforbusiness.com/platformservice/discover"),
        Just("https://ext.vdomain.com:4443/platformservice/v1/applications/1627259584/anonApplicationTokens"),
        Just("http://127.0.0.1:8080/"),
    ]
    .prop_map(|s| Url::parse(s).unwrap())
}

/// Strings made of the characters that matter to URL parsing.
fn urlish() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-zA-Z0-9:/?#\\[\\]@%!$&'()*+,;=._~ \\\\{}|^`<>\"-]{0,40}",
        "(https?|sip|file|mailto)?:?(//)?[a-z0-9.:\\[\\]@%-]{0,20}(/[a-zA-Z0-9%.:@-]{0,10}){0,3}(\\?[a-zA-Z0-9%=&:@]{0,20})?(#.{0,5})?",
    ]
}

fn segment() -> impl Strategy<Value = String> {
    // Unreserved characters, never `.` or `..` alone.
    "[A-Za-z0-9_~-][A-Za-z0-9._~-]{0,10}"
}

fn query() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof!["[A-Za-z0-9._~=&:@/?-]", "%[0-9a-f]{2}", "%[0-9A-F]{2}",],
        0..20,
    )
    .prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn href_resolution_never_panics(href in urlish(), base in bases(), templated in any::<Option<bool>>()) {
        let mut link = Link::new(href);
        link.templated = templated;
        if let Ok(url) = link.resolve(&base) {
            prop_assert!(!url.scheme().is_empty());
        }
        if let Ok(url) = link.absolute() {
            prop_assert!(url.has_host());
        }
        if templated == Some(true) {
            prop_assert!(link.resolve(&base).is_err());
            prop_assert!(link.absolute().is_err());
        }
    }

    #[test]
    fn relative_safe_path_resolves_on_the_base_host(
        base in bases(),
        segments in proptest::collection::vec(segment(), 1..6),
        q in proptest::option::of(query()),
    ) {
        let mut href = format!("/{}", segments.join("/"));
        if let Some(q) = &q {
            href.push('?');
            href.push_str(q);
        }
        let url = Link::new(href.clone()).resolve(&base).unwrap();
        prop_assert_eq!(url.scheme(), base.scheme());
        prop_assert_eq!(url.host_str(), base.host_str());
        prop_assert_eq!(url.port(), base.port());
        // Kept byte for byte: no decoding, no re-encoding, no case change.
        prop_assert_eq!(url.as_str(), format!("{}{href}", base.origin().ascii_serialization()));
        prop_assert_eq!(url.query(), q.as_deref());
        // Relative: not an absolute URL.
        prop_assert!(Link::new(href).absolute().is_err());
    }

    #[test]
    fn relative_path_without_slash_stays_on_the_base_host(
        base in bases(),
        segments in proptest::collection::vec(segment(), 1..4),
    ) {
        let href = segments.join("/");
        let url = Link::new(href.clone()).resolve(&base).unwrap();
        prop_assert_eq!(url.host_str(), base.host_str());
        prop_assert_eq!(url.port(), base.port());
        prop_assert!(url.path().ends_with(&href));
    }

    #[test]
    fn endpoint_id_forms_are_kept(
        base in bases(),
        user in "[a-z][a-z0-9.]{0,10}",
        domain in "[a-z]{1,10}\\.(com|net)",
        encoded in any::<bool>(),
    ) {
        let endpoint = if encoded {
            format!("sip%3a{user}%40{domain}")
        } else {
            format!("sip:{user}@{domain}")
        };
        let href = format!("/platformservice/v1/applications/1627259584?endpointId={endpoint}");
        let url = Link::new(href).resolve(&base).unwrap();
        let expected = format!("endpointId={endpoint}");
        prop_assert_eq!(url.query(), Some(expected.as_str()));
        let decoded = url.query_pairs().next().unwrap().1.into_owned();
        prop_assert_eq!(decoded, format!("sip:{user}@{domain}"));
    }

    #[test]
    fn absolute_hrefs_keep_their_own_host(
        base in bases(),
        // A label that starts with `xn--` is punycode, checked by IDNA (and
        // refused when it does not decode): not an ASCII host kept as is.
        host in "[a-z][a-z0-9-]{0,10}(\\.[a-z][a-z0-9-]{0,10}){1,3}"
            .prop_filter("no punycode label", |h| !h.split('.').any(|l| l.starts_with("xn--"))),
        port in proptest::option::of(1u16..),
        segments in proptest::collection::vec(segment(), 0..4),
    ) {
        let authority = match port {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        };
        let href = format!("https://{authority}/{}", segments.join("/"));
        let absolute = Link::new(href.clone()).absolute().unwrap();
        let resolved = Link::new(href).resolve(&base).unwrap();
        prop_assert_eq!(&absolute, &resolved);
        prop_assert_eq!(absolute.host_str(), Some(host.as_str()));
        prop_assert_eq!(absolute.port(), port.filter(|p| *p != 443));
    }
}

// ---------------------------------------------------------------------------
// expiryTime.

/// `0000-01-01T00:00:00Z` and `9999-12-31T23:59:59.999Z`, in milliseconds:
/// the years RFC 3339 can write, which an expiry must be in (in UTC).
const MIN_MS: i64 = -62_167_219_200_000;
const MAX_MS: i64 = 253_402_300_799_999;
const YEAR_0_MS: i64 = MIN_MS;
/// A little over the largest offset (±25:59).
const DAY_AND_MORE_MS: i64 = 26 * 3_600_000;

fn at_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap()
}

fn offset_text(negative: bool, hours: u8, minutes: u8) -> String {
    format!("{}{hours:02}{minutes:02}", if negative { '-' } else { '+' })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn expiry_ms_json_parses_in_the_whole_range(ms in MIN_MS..=MAX_MS) {
        let text = format!("/Date({ms})/");
        let expiry = ExpiryTime::parse(&text).unwrap();
        prop_assert_eq!(expiry.instant(), at_ms(ms));
        prop_assert_eq!(expiry.as_str(), text.as_str());
        prop_assert_eq!(expiry.format(), ExpiryFormat::MicrosoftJson);
        prop_assert_eq!(ExpiryTime::microsoft_json(at_ms(ms)).as_str().to_owned(), text.as_str());
        prop_assert_eq!(ExpiryTime::rfc3339(at_ms(ms)).instant(), at_ms(ms));
    }

    #[test]
    fn expiry_ms_json_and_rfc3339_agree(ms in YEAR_0_MS..=MAX_MS) {
        let ms_form = ExpiryTime::parse(&format!("/Date({ms})/")).unwrap();
        let written = ExpiryTime::rfc3339(ms_form.instant());
        prop_assert_eq!(written.format(), ExpiryFormat::Rfc3339);
        let rfc_form = ExpiryTime::parse(written.as_str()).unwrap();
        prop_assert_eq!(rfc_form.instant(), ms_form.instant());
        prop_assert_eq!(rfc_form.as_str(), written.as_str());
        prop_assert_eq!(&rfc_form, &written);
        // And `time`'s own RFC 3339 writer agrees.
        let theirs = ms_form.instant().format(&Rfc3339).unwrap();
        prop_assert_eq!(ExpiryTime::parse(&theirs).unwrap().instant(), ms_form.instant());
    }

    #[test]
    fn expiry_writers_agree_at_ms_precision(ms in MIN_MS..=MAX_MS, sub_ms in 0i128..1_000_000) {
        // An instant with sub-millisecond digits: both writers keep the
        // millisecond it falls in.
        let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000 + sub_ms).unwrap();
        let json = ExpiryTime::microsoft_json(at);
        prop_assert_eq!(json.as_str(), format!("/Date({ms})/"));
        prop_assert_eq!(ExpiryTime::parse(json.as_str()).unwrap().instant(), at_ms(ms));
        let rfc = ExpiryTime::rfc3339(at);
        prop_assert_eq!(rfc.instant(), at);
        if ms >= YEAR_0_MS {
            prop_assert_eq!(ExpiryTime::parse(rfc.as_str()).unwrap().instant(), at_ms(ms));
        }
    }

    #[test]
    fn expiry_offsets_do_not_change_the_instant(
        ms in (MIN_MS + DAY_AND_MORE_MS)..=(MAX_MS - DAY_AND_MORE_MS),
        negative in any::<bool>(),
        hours in 0u8..=25,
        minutes in 0u8..60,
    ) {
        let text = format!("/Date({ms}{})/", offset_text(negative, hours, minutes));
        let expiry = ExpiryTime::parse(&text).unwrap();
        prop_assert_eq!(expiry.instant(), at_ms(ms));
        prop_assert_eq!(expiry.as_str(), text.as_str());
        let sign: i8 = if negative { -1 } else { 1 };
        let offset = UtcOffset::from_hms(sign * hours as i8, sign * minutes as i8, 0).unwrap();
        prop_assert_eq!(expiry.instant().offset(), offset);
        prop_assert_eq!(serde_json::to_value(&expiry).unwrap(), Value::String(text));
    }

    #[test]
    fn expiry_rfc3339_offsets_do_not_change_the_instant(
        ms in (YEAR_0_MS + DAY_AND_MORE_MS)..=(MAX_MS - DAY_AND_MORE_MS),
        negative in any::<bool>(),
        hours in 0u8..=23,
        minutes in 0u8..60,
    ) {
        let sign: i8 = if negative { -1 } else { 1 };
        let offset = UtcOffset::from_hms(sign * hours as i8, sign * minutes as i8, 0).unwrap();
        let text = at_ms(ms).to_offset(offset).format(&Rfc3339).unwrap();
        let expiry = ExpiryTime::parse(&text).unwrap();
        prop_assert_eq!(expiry.instant(), at_ms(ms));
        prop_assert_eq!(expiry.as_str(), text.as_str());
        prop_assert_eq!(ExpiryTime::rfc3339(expiry.instant()).instant(), at_ms(ms));
    }

    #[test]
    fn expiry_offsets_anywhere_never_panic(
        ms in prop_oneof![MIN_MS..=MAX_MS, (MIN_MS - 10)..(MIN_MS + DAY_AND_MORE_MS), (MAX_MS - DAY_AND_MORE_MS)..(MAX_MS + 10), any::<i64>()],
        negative in any::<bool>(),
        hours in 0u8..=99,
        minutes in 0u8..=99,
    ) {
        let text = format!("/Date({ms}{})/", offset_text(negative, hours, minutes));
        match ExpiryTime::parse(&text) {
            Ok(expiry) => {
                prop_assert!(hours <= 25 && minutes < 60);
                prop_assert_eq!(expiry.instant(), at_ms(ms));
                // A parsed instant can always be written again.
                let _ = ExpiryTime::rfc3339(expiry.instant());
                let _ = ExpiryTime::microsoft_json(expiry.instant());
            }
            Err(_) => prop_assert!(
                hours > 25 || minutes >= 60 || !(MIN_MS..=MAX_MS).contains(&ms)
                    || !(MIN_MS + DAY_AND_MORE_MS..=MAX_MS - DAY_AND_MORE_MS).contains(&ms)
            ),
        }
    }

    #[test]
    fn expiry_arbitrary_strings_never_panic(
        s in prop_oneof![
            any::<String>(),
            "[-+0-9]{0,25}".prop_map(|s| format!("/Date({s})/")),
            ".{0,12}".prop_map(|s| format!("/Date({s})/")),
            "[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,12})?([Zz]|[-+][0-9]{2}:[0-9]{2})",
        ]
    ) {
        if let Ok(expiry) = ExpiryTime::parse(&s) {
            prop_assert_eq!(expiry.as_str(), s.as_str());
            let _ = ExpiryTime::rfc3339(expiry.instant());
            let _ = expiry.system_time();
        }
        let body = serde_json::json!({"token": "psat=x", "expiryTime": s}).to_string();
        let _ = from_slice::<AnonApplicationToken>(body.as_bytes());
    }
}

// ---------------------------------------------------------------------------
// Parsing arbitrary input.

/// Every typed parse of `bytes`: none may panic; what parses must survive
/// a second round.
fn parse_all(bytes: &[u8]) -> Result<(), TestCaseError> {
    fn one<T>(bytes: &[u8]) -> Result<Option<T>, TestCaseError>
    where
        T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug,
    {
        match from_slice::<T>(bytes) {
            Ok(parsed) => {
                let again: T = from_slice(&to_vec(&parsed))
                    .map_err(|e| TestCaseError::fail(format!("reparse failed: {e}")))?;
                prop_assert_eq!(&again, &parsed);
                Ok(Some(parsed))
            }
            Err(e) => {
                prop_assert!(!e.to_string().is_empty());
                Ok(None)
            }
        }
    }
    one::<Resource>(bytes)?;
    one::<Application>(bytes)?;
    one::<AnonApplicationToken>(bytes)?;
    one::<Discover>(bytes)?;
    one::<Applications>(bytes)?;
    one::<AnonDiscover>(bytes)?;
    one::<ErrorBody>(bytes)?;
    one::<Link>(bytes)?;
    Ok(())
}

/// JSON documents shaped like the API's, to reach deep into the parsers.
fn halish() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("_links".to_owned()),
        Just("_embedded".to_owned()),
        Just("rel".to_owned()),
        Just("etag".to_owned()),
        Just("href".to_owned()),
        Just("templated".to_owned()),
        Just("title".to_owned()),
        Just("type".to_owned()),
        Just("token".to_owned()),
        Just("expiryTime".to_owned()),
        Just("code".to_owned()),
        Just("subcode".to_owned()),
        Just("errorReportId".to_owned()),
        Just("self".to_owned()),
        Just("service:x".to_owned()),
        Just("ms:rtc:saas:x".to_owned()),
        "[a-z]{1,4}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e9f64..1e9).prop_map(Value::from),
        Just(Value::from("/Date(1488872625837)/")),
        Just(Value::from("/Date(1488872625837-0500)/")),
        Just(Value::from("2016-06-27T01:42:13.094Z")),
        Just(Value::from("psat=a.b.c")),
        ".{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 48, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec((key.clone(), inner), 0..6)
                .prop_map(|members| Value::Object(members.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn has_null(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(items) => items.iter().any(has_null),
        Value::Object(members) => members.values().any(has_null),
        _ => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn from_slice_never_panics_on_arbitrary_bytes(bytes in any::<Vec<u8>>()) {
        parse_all(&bytes)?;
        let mut with_bom = UTF8_BOM.to_vec();
        with_bom.extend_from_slice(&bytes);
        parse_all(&with_bom)?;
    }

    #[test]
    fn from_slice_never_panics_on_jsonish_bytes(
        text in "[\\[\\]{}\",:0-9a-z_ .\\\\/-]{0,64}",
    ) {
        parse_all(text.as_bytes())?;
    }

    #[test]
    fn from_slice_never_panics_on_hal_shaped_json(value in halish(), cut in any::<prop::sample::Index>()) {
        let bytes = serde_json::to_vec(&value).unwrap();
        parse_all(&bytes)?;
        // And on any truncation of it.
        let end = cut.index(bytes.len() + 1);
        parse_all(&bytes[..end])?;
    }

    #[test]
    fn what_parses_without_nulls_round_trips_exactly(value in halish()) {
        // Members that are null may be dropped (an absent optional member is
        // not written back); everything else must come back unchanged.
        prop_assume!(!has_null(&value));
        let bytes = serde_json::to_vec(&value).unwrap();
        // Compare with what serde_json itself reads from these bytes (its
        // float parsing may differ from the generated float by one ulp).
        let value: Value = serde_json::from_slice(&bytes).unwrap();
        if let Ok(res) = from_slice::<Resource>(&bytes) {
            prop_assert_eq!(serde_json::to_value(&res).unwrap(), value.clone());
        }
        if let Ok(token) = from_slice::<AnonApplicationToken>(&bytes) {
            prop_assert_eq!(serde_json::to_value(&token).unwrap(), value.clone());
        }
        if let Ok(link) = from_slice::<Link>(&bytes) {
            prop_assert_eq!(serde_json::to_value(&link).unwrap(), value.clone());
        }
        if let Ok(error) = from_slice::<ErrorBody>(&bytes) {
            prop_assert_eq!(serde_json::to_value(&error).unwrap(), value);
        }
    }
}
