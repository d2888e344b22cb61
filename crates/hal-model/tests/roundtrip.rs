//! Parse, serialize, compare: nothing the server sent is lost.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod common;

use common::{
    APPLICATION_LINK, CAPABILITIES_SAAS, CAPABILITIES_SERVICE, ERROR_BODY, MINT_ANSWER,
    MINT_REQUEST, applications_answer, value,
};
use hal_model::{
    AnonApplicationToken, AnonDiscover, Application, Applications, Discover, ErrorBody, Link,
    Namespace, OneOrMany, Rel, Resource, from_slice, names, to_vec,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// Parses `json` as `T`, serializes it back, and checks that nothing
/// changed: as a `Value`, through `to_vec`, and through a second parse.
fn roundtrip<T>(json: &str) -> T
where
    T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug,
{
    let original = value(json);
    let parsed: T = from_slice(json.as_bytes()).unwrap();
    assert_eq!(serde_json::to_value(&parsed).unwrap(), original, "{json}");
    let bytes = to_vec(&parsed);
    assert_eq!(serde_json::from_slice::<Value>(&bytes).unwrap(), original);
    let again: T = from_slice(&bytes).unwrap();
    assert_eq!(again, parsed);
    parsed
}

/// The member names of the object at `pointer`, in serialized order.
fn keys_at(value: &Value, pointer: &str) -> Vec<String> {
    value
        .pointer(pointer)
        .unwrap()
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

#[test]
fn value_equality_is_order_insensitive_but_order_is_kept() {
    // What the comparisons below rely on: with `preserve_order`, `Value`
    // keeps member order, and equality ignores it.
    let a = value(r#"{"a":1,"b":2}"#);
    let b = value(r#"{"b":2,"a":1}"#);
    assert_eq!(a, b);
    assert_eq!(keys_at(&a, ""), ["a", "b"]);
    assert_eq!(keys_at(&b, ""), ["b", "a"]);
}

// ---------------------------------------------------------------------------
// The seed examples.

#[test]
fn roundtrip_seed_capabilities_service() {
    roundtrip::<Application>(CAPABILITIES_SERVICE);
    roundtrip::<Resource>(CAPABILITIES_SERVICE);
}

#[test]
fn roundtrip_seed_capabilities_saas() {
    roundtrip::<Application>(CAPABILITIES_SAAS);
    roundtrip::<Resource>(CAPABILITIES_SAAS);
}

#[test]
fn roundtrip_seed_mint_answer() {
    roundtrip::<AnonApplicationToken>(MINT_ANSWER);
    roundtrip::<Resource>(MINT_ANSWER);
}

#[test]
fn roundtrip_seed_mint_request() {
    roundtrip::<Resource>(MINT_REQUEST);
}

#[test]
fn roundtrip_seed_application_link() {
    roundtrip::<Link>(APPLICATION_LINK);
    roundtrip::<Applications>(&applications_answer());
    roundtrip::<Resource>(&applications_answer());
}

#[test]
fn roundtrip_notes_error_body() {
    roundtrip::<ErrorBody>(ERROR_BODY);
}

#[test]
fn roundtrip_keeps_rel_text_and_link_order() {
    let parsed: Application = from_slice(CAPABILITIES_SERVICE.as_bytes()).unwrap();
    let out = serde_json::to_value(&parsed).unwrap();
    assert_eq!(
        keys_at(&out, "/_links"),
        ["self", "service:anonApplicationTokens"]
    );
    assert_eq!(
        keys_at(&out, "/_embedded"),
        ["service:communication", "service:adhocMeetings"]
    );
    assert_eq!(
        keys_at(&out, "/_embedded/service:communication/_links"),
        [
            "self",
            "service:joinOnlineMeeting",
            "service:inviteUserToMeeting",
            "service:startMessaging"
        ]
    );
    // The text of the `ms:rtc:saas:` document is not rewritten either.
    let saas: Application = from_slice(CAPABILITIES_SAAS.as_bytes()).unwrap();
    let out = serde_json::to_value(&saas).unwrap();
    assert_eq!(out["rel"], "ms:rtc:saas:application");
    assert_eq!(
        keys_at(&out, "/_embedded/ms:rtc:saas:communication/_links"),
        ["self", "ms:rtc:saas:startMessaging"]
    );
}

// ---------------------------------------------------------------------------
// Unknown members, arrays, link fields, empty maps.

#[test]
fn roundtrip_unknown_members_everywhere() {
    let json = r#"{
        "_links": {"self": {"href": "/a"}},
        "_embedded": {
            "service:communication": {
                "_links": {"self": {"href": "/a/c"}},
                "rel": "service:communication",
                "etag": "1",
                "conversationCount": 3,
                "flags": {"x": [true, false, null]}
            }
        },
        "rel": "service:application",
        "etag": "4294967295",
        "displayName": "Help desk",
        "count": 18446744073709551615,
        "negative": -9223372036854775808,
        "ratio": 0.25,
        "nothing": null,
        "list": [1, "two", {"three": 3}, [4]],
        "unicode": "é \u00e9 \ud83d\ude00 \"quoted\" \\ /",
        "": "empty key"
    }"#;
    let res = roundtrip::<Resource>(json);
    assert_eq!(res.properties["displayName"], "Help desk");
    assert_eq!(res.properties["count"], json!(u64::MAX));
    assert_eq!(res.properties["negative"], json!(i64::MIN));
    assert_eq!(res.properties["nothing"], Value::Null);
    assert_eq!(res.properties[""], "empty key");
    assert_eq!(res.properties["unicode"], "é é 😀 \"quoted\" \\ /");
    let comm = res.embedded_resource(names::COMMUNICATION).unwrap();
    assert_eq!(comm.properties["conversationCount"], 3);
    assert_eq!(comm.etag.as_deref(), Some("1"));
    // Member order of the unknown members is kept.
    let out = serde_json::to_value(&res).unwrap();
    let keys = keys_at(&out, "");
    let unknown: Vec<&str> = keys
        .iter()
        .map(String::as_str)
        .filter(|k| !["_links", "_embedded", "rel", "etag"].contains(k))
        .collect();
    assert_eq!(
        unknown,
        [
            "displayName",
            "count",
            "negative",
            "ratio",
            "nothing",
            "list",
            "unicode",
            ""
        ]
    );

    roundtrip::<Application>(json);
    roundtrip::<Discover>(json);
    roundtrip::<AnonDiscover>(json);
    roundtrip::<Applications>(json);
}

#[test]
fn roundtrip_unknown_members_in_token_answer() {
    let json = r#"{
        "token": "psat=a.b.c",
        "expiryTime": "/Date(1488872625837+0100)/",
        "_links": {
            "self": {"href": "https://ext.vdomain.com:4443/t"},
            "ms:rtc:saas:discover": {"href": "https://api.skypeforbusiness.com/platformService/discover?anonymousMeetingJoinContext=psat%253da.b.c"}
        },
        "_embedded": {"service:extra": {"a": 1}},
        "rel": "ms:rtc:saas:anonApplicationToken",
        "etag": "7",
        "applicationSessionId": "5b6e3c1e-0d5c-4b8f-9f3e-2b1a6c0e9d7f",
        "allowedOrigins": "https://contoso.com",
        "nested": {"deep": [{"x": null}]}
    }"#;
    let answer = roundtrip::<AnonApplicationToken>(json);
    assert_eq!(answer.token.expose(), "psat=a.b.c");
    assert_eq!(answer.expiry_time.as_str(), "/Date(1488872625837+0100)/");
    assert_eq!(answer.resource.etag.as_deref(), Some("7"));
    assert_eq!(
        answer.resource.properties["applicationSessionId"],
        "5b6e3c1e-0d5c-4b8f-9f3e-2b1a6c0e9d7f"
    );
    assert!(!answer.resource.properties.contains_key("token"));
    assert!(!answer.resource.properties.contains_key("expiryTime"));
    assert_eq!(answer.resource.embedded().len(), 1);
    assert!(
        answer
            .discover()
            .unwrap()
            .href
            .contains("anonymousMeetingJoinContext=psat%253d")
    );
}

#[test]
fn roundtrip_token_answer_member_order_does_not_matter() {
    let json = r#"{"rel":"service:anonApplicationToken","_links":{"self":{"href":"/t"}},"expiryTime":"2016-06-27T01:42:13.094Z","x":1,"token":"psat=t"}"#;
    let answer = roundtrip::<AnonApplicationToken>(json);
    assert_eq!(answer.token.expose(), "psat=t");
    assert_eq!(answer.resource.properties.len(), 1);
}

#[test]
fn roundtrip_array_of_links_under_one_rel() {
    let json = r#"{"_links":{
        "self": {"href": "/a"},
        "service:startMessaging": [
            {"href": "/a/m1", "name": "first"},
            {"href": "/a/m2", "name": "second"}
        ],
        "single": [{"href": "/only"}],
        "none": []
    }}"#;
    let res = roundtrip::<Resource>(json);
    let rel = Rel::new(Namespace::RtcSaas, names::START_MESSAGING);
    let all = res.links().get_all(&rel);
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].href, "/a/m1");
    assert_eq!(all[1].name.as_deref(), Some("second"));
    assert_eq!(res.links().get(&rel).unwrap().href, "/a/m1");
    assert_eq!(res.link(names::START_MESSAGING).unwrap().href, "/a/m1");
    assert_eq!(res.link("single").unwrap().href, "/only");

    // The shape is kept: a one-element array stays an array, one object
    // stays an object.
    let shapes: Vec<(&str, bool)> = res
        .links()
        .iter()
        .map(|(rel, v)| (rel.as_str(), matches!(v, OneOrMany::Many(_))))
        .collect();
    assert_eq!(
        shapes,
        [
            ("self", false),
            ("service:startMessaging", true),
            ("single", true),
            ("none", true)
        ]
    );
    let out = serde_json::to_value(&res).unwrap();
    assert!(out["_links"]["single"].is_array());
    assert_eq!(out["_links"]["none"], json!([]));
    assert!(out["_links"]["self"].is_object());
}

#[test]
fn roundtrip_embedded_arrays() {
    let json = r#"{
        "_links": {"self": {"href": "/list"}},
        "_embedded": {
            "service:item": [
                {"_links": {"self": {"href": "/list/1"}}, "rel": "service:item", "n": 1},
                {"_links": {"self": {"href": "/list/2"}}, "rel": "service:item", "n": 2,
                 "_embedded": {"service:sub": [{"k": "v"}], "service:empty": []}}
            ],
            "service:one": {"rel": "service:one"}
        }
    }"#;
    let res = roundtrip::<Resource>(json);
    let items = res.embedded().get_all(&Rel::from("ms:rtc:saas:item"));
    assert_eq!(items.len(), 2);
    assert_eq!(items[1].self_link().unwrap().href, "/list/2");
    assert_eq!(items[1].properties["n"], 2);
    assert_eq!(
        items[1].embedded().get_all(&Rel::from("service:sub"))[0].properties["k"],
        "v"
    );
    assert_eq!(res.embedded_resource("item").unwrap().properties["n"], 1);
    assert_eq!(
        res.embedded_resource("one").unwrap().rel,
        Some(Rel::from("service:one"))
    );
    roundtrip::<Application>(json);
}

#[test]
fn roundtrip_link_fields_and_unknown_link_members() {
    let json = r#"{"_links":{
        "self": {
            "href": "/platformservice/{id}",
            "templated": true,
            "title": "The application",
            "name": "app",
            "type": "application/hal+json",
            "deprecation": "https://example.invalid/why",
            "hreflang": "en",
            "profile": null,
            "revision": 3,
            "nested": {"a": [1, 2]}
        },
        "other": {"href": "/o", "templated": false}
    }}"#;
    let res = roundtrip::<Resource>(json);
    let link = res.self_link().unwrap();
    assert_eq!(link.href, "/platformservice/{id}");
    assert_eq!(link.templated, Some(true));
    assert_eq!(link.title.as_deref(), Some("The application"));
    assert_eq!(link.name.as_deref(), Some("app"));
    assert_eq!(link.media_type.as_deref(), Some("application/hal+json"));
    assert_eq!(link.extra["deprecation"], "https://example.invalid/why");
    assert_eq!(link.extra["profile"], Value::Null);
    assert_eq!(link.extra["revision"], 3);
    assert_eq!(link.extra.len(), 5);
    assert!(!link.extra.contains_key("type"));
    assert_eq!(res.link("other").unwrap().templated, Some(false));

    // A link alone, too.
    let one = r#"{"href":"/x","title":"t","type":"text/plain","x-custom":[true]}"#;
    let link = roundtrip::<Link>(one);
    assert_eq!(link.media_type.as_deref(), Some("text/plain"));
    assert_eq!(link.extra["x-custom"], json!([true]));
}

#[test]
fn roundtrip_empty_links_and_embedded() {
    for json in [
        r#"{"_links":{}}"#,
        r#"{"_embedded":{}}"#,
        r#"{"_links":{},"_embedded":{}}"#,
        r#"{"_links":{},"_embedded":{"service:x":{"_links":{}}}}"#,
        r#"{}"#,
        r#"{"rel":"self"}"#,
        r#"{"etag":""}"#,
    ] {
        let res = roundtrip::<Resource>(json);
        roundtrip::<Application>(json);
        roundtrip::<Discover>(json);
        let out = serde_json::to_value(&res).unwrap();
        // An empty `_links` that was sent is sent back; one that was not
        // sent is not invented.
        assert_eq!(
            out.get("_links").is_some(),
            json.starts_with(r#"{"_links""#),
            "{json}"
        );
    }
    let token = r#"{"token":"psat=x","expiryTime":"/Date(0)/","_links":{},"_embedded":{}}"#;
    roundtrip::<AnonApplicationToken>(token);
    let bare = r#"{"token":"psat=x","expiryTime":"/Date(0)/"}"#;
    let answer = roundtrip::<AnonApplicationToken>(bare);
    assert!(
        serde_json::to_value(&answer)
            .unwrap()
            .get("_links")
            .is_none()
    );
}

#[test]
fn roundtrip_duplicate_rel_text_and_both_namespaces() {
    // The same meaning under two texts: both entries are kept.
    let json = r#"{"_links":{
        "service:discover": {"href": "/new"},
        "ms:rtc:saas:discover": {"href": "/old"}
    }}"#;
    let res = roundtrip::<Resource>(json);
    assert_eq!(res.links().len(), 2);
    assert_eq!(res.link(names::DISCOVER).unwrap().href, "/new");
}

#[test]
fn roundtrip_error_body_keeps_extra_members() {
    let json = r#"{
        "code": "ServiceFailure",
        "subcode": "CallbackChannelError",
        "message": "Something went wrong.",
        "errorReportId": "a1b2c3d4-0000-1111-2222-333344445555",
        "debugInfo": {"diagnostics": "1000;reason=\"x\""},
        "retryAfter": 30
    }"#;
    let body = roundtrip::<ErrorBody>(json);
    assert_eq!(body.code, "ServiceFailure");
    assert_eq!(body.subcode.as_deref(), Some("CallbackChannelError"));
    assert_eq!(
        body.error_report_id(),
        Some("a1b2c3d4-0000-1111-2222-333344445555")
    );
    assert_eq!(body.extra["retryAfter"], 30);
    assert_eq!(body.extra.len(), 3);
    roundtrip::<ErrorBody>(r#"{"code":"Conflict"}"#);
    roundtrip::<ErrorBody>(r#"{"code":"Conflict","subcode":"AlreadyExists"}"#);
}

// ---------------------------------------------------------------------------
// Built in code, then parsed: the emulator's side.

#[test]
fn roundtrip_built_resources() {
    let discover = Discover::build(
        Namespace::RtcSaas,
        "/platformservice/discover",
        "https://ring2noammeetings.resources.lync.com/platformService/v1/applications",
    );
    let out = serde_json::to_value(&discover).unwrap();
    assert_eq!(
        out,
        json!({"_links": {
            "self": {"href": "/platformservice/discover"},
            "ms:rtc:saas:applications": {"href": "https://ring2noammeetings.resources.lync.com/platformService/v1/applications"}
        }})
    );
    assert_eq!(
        from_slice::<Discover>(&to_vec(&discover)).unwrap(),
        discover
    );

    let comm = Resource::new()
        .with_link(Rel::parse(names::SELF), Link::new("/a/communication"))
        .with_link(
            Rel::new(Namespace::Service, names::START_MESSAGING),
            Link::new("/a/communication/messagingInvitations"),
        )
        .with_rel(Rel::new(Namespace::Service, names::COMMUNICATION))
        .with_etag("4294967295");
    let app = Application(
        Resource::new()
            .with_link(Rel::parse(names::SELF), Link::new("/a"))
            .with_embedded(Rel::new(Namespace::Service, names::COMMUNICATION), comm)
            .with_rel(Rel::new(Namespace::Service, names::APPLICATION))
            .with_property("displayName", "x"),
    );
    let out = serde_json::to_value(&app).unwrap();
    assert_eq!(
        out,
        json!({
            "_links": {"self": {"href": "/a"}},
            "_embedded": {"service:communication": {
                "_links": {
                    "self": {"href": "/a/communication"},
                    "service:startMessaging": {"href": "/a/communication/messagingInvitations"}
                },
                "rel": "service:communication",
                "etag": "4294967295"
            }},
            "rel": "service:application",
            "displayName": "x"
        })
    );
    assert_eq!(
        keys_at(&out, ""),
        ["_links", "_embedded", "rel", "displayName"]
    );
    assert_eq!(from_slice::<Application>(&to_vec(&app)).unwrap(), app);

    let mut many = Resource::new();
    many.links_mut().insert_many(
        Rel::from("service:item"),
        vec![Link::new("/1"), Link::new("/2")],
    );
    assert_eq!(
        serde_json::to_value(&many).unwrap(),
        json!({"_links": {"service:item": [{"href": "/1"}, {"href": "/2"}]}})
    );
    // `links_mut` on a resource with no links creates an empty `_links`.
    let mut empty = Resource::new();
    let _ = empty.links_mut();
    assert_eq!(serde_json::to_value(&empty).unwrap(), json!({"_links": {}}));
}
