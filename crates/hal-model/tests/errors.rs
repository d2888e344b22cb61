//! Parse errors: kind, JSON path, position, message; and error bodies.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod common;

use common::{CAPABILITIES_SAAS, CAPABILITIES_SERVICE, MINT_ANSWER, applications_answer};
use hal_model::{
    AnonApplicationToken, AnonDiscover, Application, Applications, Discover, ErrorBody, Link,
    ParseError, ParseErrorKind, Resource, from_slice,
};
use serde::de::DeserializeOwned;

fn error<T: DeserializeOwned + std::fmt::Debug>(body: &str) -> ParseError {
    from_slice::<T>(body.as_bytes()).unwrap_err()
}

// ---------------------------------------------------------------------------
// Wrong type at a nested member: kind Data, path names it.

#[test]
fn wrong_type_at_link_href_names_the_path() {
    let body = r#"{"_links":{"self":{"href":5}},"rel":"service:application"}"#;
    for e in [
        error::<Resource>(body),
        error::<Application>(body),
        error::<Discover>(body),
        error::<Applications>(body),
        error::<AnonDiscover>(body),
    ] {
        assert_eq!(e.kind(), ParseErrorKind::Data);
        assert_eq!(e.path(), "_links.self.href");
        assert!(e.message().contains("invalid type: integer `5`"), "{e}");
        assert!(e.message().contains("expected a string"), "{e}");
        assert!(!e.message().contains(" at line "), "{e}");
        assert_eq!(e.position(), (1, 27));
        let shown = e.to_string();
        assert!(shown.contains("`_links.self.href`"), "{shown}");
        assert!(shown.contains("line 1, column 27"), "{shown}");
        assert!(shown.starts_with("unexpected JSON"), "{shown}");
    }
}

#[test]
fn wrong_type_in_the_token_answer_names_the_path() {
    // The mint answer's links are as well located as any resource's.
    for (body, path) in [
        (
            r#"{"token":"psat=x","expiryTime":"/Date(1)/","_links":{"self":{"href":5}}}"#,
            "_links.self.href",
        ),
        (
            r#"{"_links":{"service:discover":[{"href":"https://h/d"},{"href":[]}]},"token":"psat=x","expiryTime":"/Date(1)/"}"#,
            "_links.service:discover[1].href",
        ),
        (
            r#"{"token":"psat=x","expiryTime":"/Date(1)/","_embedded":{"service:x":{"rel":1}}}"#,
            "_embedded.service:x.rel",
        ),
        (
            r#"{"token":"psat=x","expiryTime":"/Date(1)/","rel":{"a":1}}"#,
            "rel",
        ),
        (
            r#"{"token":"psat=x","expiryTime":"/Date(1)/","etag":4294967295}"#,
            "etag",
        ),
        (r#"{"token":5,"expiryTime":"/Date(1)/"}"#, "token"),
        (r#"{"token":"psat=x","expiryTime":null}"#, "expiryTime"),
        (
            r#"{"token":"psat=x","expiryTime":"tomorrow"}"#,
            "expiryTime",
        ),
    ] {
        let e = error::<AnonApplicationToken>(body);
        assert_eq!(e.kind(), ParseErrorKind::Data, "{body}");
        assert_eq!(e.path(), path, "{body}: {e}");
    }
}

#[test]
fn wrong_type_deep_in_the_seed_names_the_path() {
    let body = CAPABILITIES_SERVICE.replace(
        r#""href": "/platformservice/v1/applications/1627259584/communication/messagingInvitations?endpointId=sip:helpdesk@contoso.com""#,
        r#""href": false"#,
    );
    let e = error::<Application>(&body);
    assert_eq!(e.kind(), ParseErrorKind::Data);
    assert_eq!(
        e.path(),
        "_embedded.service:communication._links.service:startMessaging.href"
    );
    // The seed is written one member per line: the position points there.
    let line = body
        .lines()
        .position(|l| l.contains(r#""href": false"#))
        .unwrap()
        + 1;
    assert_eq!(e.position().0, line);

    let body = CAPABILITIES_SAAS.replace(r#""etag": "4294967295""#, r#""etag": 4294967295"#);
    let e = error::<Application>(&body);
    assert_eq!(e.path(), "_embedded.ms:rtc:saas:communication.etag");
    assert_eq!(e.kind(), ParseErrorKind::Data);
}

#[test]
fn wrong_shape_of_links_and_embedded() {
    for (body, path) in [
        (r#"{"_links":[]}"#, "_links"),
        (r#"{"_links":"x"}"#, "_links"),
        (r#"{"_links":{"self":null}}"#, "_links.self"),
        (r#"{"_links":{"self":true}}"#, "_links.self"),
        (r#"{"_links":{"self":{"title":"no href"}}}"#, "_links.self"),
        (
            r#"{"_links":{"self":{"href":"/x","title":1}}}"#,
            "_links.self.title",
        ),
        (
            r#"{"_links":{"self":{"href":"/x","name":[]}}}"#,
            "_links.self.name",
        ),
        (
            r#"{"_links":{"self":{"href":"/x","type":{}}}}"#,
            "_links.self.type",
        ),
        (r#"{"_embedded":[]}"#, "_embedded"),
        (r#"{"_embedded":{"service:x":5}}"#, "_embedded.service:x"),
        (
            r#"{"_embedded":{"service:x":[{},7]}}"#,
            "_embedded.service:x[1]",
        ),
        (r#"{"rel":5}"#, "rel"),
        (r#"{"etag":[]}"#, "etag"),
    ] {
        let e = error::<Resource>(body);
        assert_eq!(e.kind(), ParseErrorKind::Data, "{body}");
        assert_eq!(e.path(), path, "{body}: {e}");
    }
}

#[test]
fn wrong_top_level_type_is_data() {
    for body in ["[]", "\"x\"", "5", "null", "true", r#"[{"_links":{}}]"#] {
        for e in [
            error::<Resource>(body),
            error::<Application>(body),
            error::<AnonApplicationToken>(body),
            error::<ErrorBody>(body),
            error::<Link>(body),
        ] {
            assert_eq!(e.kind(), ParseErrorKind::Data, "{body}: {e}");
            assert_eq!(e.path(), ".", "{body}: {e}");
        }
    }
}

#[test]
fn missing_required_members() {
    let e = error::<AnonApplicationToken>(r#"{"expiryTime":"/Date(1)/"}"#);
    assert_eq!(e.kind(), ParseErrorKind::Data);
    assert_eq!(e.path(), ".");
    assert!(e.message().contains("missing field `token`"), "{e}");

    let e = error::<AnonApplicationToken>(r#"{"token":"psat=x","_links":{}}"#);
    assert!(e.message().contains("missing field `expiryTime`"), "{e}");

    let e = error::<ErrorBody>(r#"{"subcode":"ApplicationNotFound"}"#);
    assert_eq!(e.kind(), ParseErrorKind::Data);
    assert!(e.message().contains("missing field `code`"), "{e}");

    let e = error::<Link>(r#"{"title":"x"}"#);
    assert!(e.message().contains("missing field `href`"), "{e}");
}

#[test]
fn duplicate_token_members_are_an_error() {
    let e = error::<AnonApplicationToken>(
        r#"{"token":"psat=a","expiryTime":"/Date(1)/","token":"psat=b"}"#,
    );
    assert_eq!(e.kind(), ParseErrorKind::Data);
    assert!(e.message().contains("duplicate field `token`"), "{e}");
    let e = error::<AnonApplicationToken>(
        r#"{"token":"psat=a","expiryTime":"/Date(1)/","expiryTime":"/Date(2)/"}"#,
    );
    assert!(e.message().contains("duplicate field `expiryTime`"), "{e}");
}

// ---------------------------------------------------------------------------
// Truncated, not JSON, trailing garbage.

#[test]
fn truncated_body_is_eof() {
    for body in [
        "",
        "{",
        r#"{"_links""#,
        r#"{"_links":{"self":{"href":"/a"#,
        r#"{"a":["#,
        r#"{"a":nul"#,
        "  ",
    ] {
        let e = error::<Resource>(body);
        assert_eq!(e.kind(), ParseErrorKind::Eof, "{body:?}: {e}");
        assert!(e.to_string().starts_with("the body ends early"), "{e}");
    }
}

#[test]
fn every_truncation_of_the_seeds_is_eof() {
    let seeds = [
        CAPABILITIES_SERVICE.to_owned(),
        CAPABILITIES_SAAS.to_owned(),
        MINT_ANSWER.to_owned(),
        applications_answer(),
    ];
    for seed in &seeds {
        let bytes = seed.trim().as_bytes();
        for end in 0..bytes.len() {
            let cut = &bytes[..end];
            let r = from_slice::<Resource>(cut);
            assert_eq!(
                r.map_err(|e| e.kind()),
                Err(ParseErrorKind::Eof),
                "cut at {end}"
            );
            assert_eq!(
                from_slice::<Application>(cut).map_err(|e| e.kind()),
                Err(ParseErrorKind::Eof)
            );
            assert_eq!(
                from_slice::<AnonApplicationToken>(cut).map_err(|e| e.kind()),
                Err(ParseErrorKind::Eof)
            );
        }
    }
}

#[test]
fn not_json_is_syntax() {
    for body in [
        "<html><body>Service Unavailable</body></html>",
        "hello",
        "{'a':1}",
        r#"{"a":1,}"#,
        r#"{"_links":{"self":{"href":"/x",}}}"#,
        r#"{a:1}"#,
        "{\"a\":\"\u{1}\"}",
        "\u{feff}\u{feff}{}",
    ] {
        let e = error::<Resource>(body);
        assert_eq!(e.kind(), ParseErrorKind::Syntax, "{body:?}: {e}");
        assert!(
            e.to_string().starts_with("the body is not valid JSON"),
            "{e}"
        );
    }
    // Not UTF-8.
    let e = from_slice::<Resource>(b"{\"a\":\"\xff\xfe\"}").unwrap_err();
    assert_eq!(e.kind(), ParseErrorKind::Syntax, "{e}");
}

#[test]
fn trailing_garbage_is_an_error() {
    for body in [
        r#"{"_links":{}} x"#,
        r#"{"_links":{}}}"#,
        r#"{"_links":{}}{"_links":{}}"#,
        r#"{} []"#,
        "{}\n\0",
    ] {
        let e = error::<Resource>(body);
        assert_eq!(e.kind(), ParseErrorKind::Syntax, "{body:?}: {e}");
        assert!(e.message().contains("trailing characters"), "{e}");
        let e = error::<AnonApplicationToken>(&body.replace(
            r#"{"_links":{}}"#,
            r#"{"token":"psat=x","expiryTime":"/Date(1)/"}"#,
        ));
        assert!(
            matches!(e.kind(), ParseErrorKind::Syntax | ParseErrorKind::Data),
            "{e}"
        );
    }
    let mut seed = MINT_ANSWER.to_owned();
    seed.push_str("\r\n\r\nHTTP/1.1 200 OK");
    let e = from_slice::<AnonApplicationToken>(seed.as_bytes()).unwrap_err();
    assert_eq!(e.kind(), ParseErrorKind::Syntax);
    // Trailing whitespace is fine.
    let mut seed = MINT_ANSWER.to_owned();
    seed.push_str("\r\n \t\n");
    assert!(from_slice::<AnonApplicationToken>(seed.as_bytes()).is_ok());
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    for depth in [64, 100, 10_000] {
        let mut body = String::new();
        for _ in 0..depth {
            body.push_str(r#"{"_embedded":{"x":"#);
        }
        body.push_str("{}");
        for _ in 0..depth {
            body.push_str("}}");
        }
        let e = error::<Resource>(&body);
        assert!(e.message().contains("recursion limit"), "{e}");
        let e = error::<Application>(&body);
        assert!(e.message().contains("recursion limit"), "{e}");
        let token =
            format!(r#"{{"token":"a","expiryTime":"/Date(1)/","_embedded":{{"y":{body}}}}}"#);
        let e = error::<AnonApplicationToken>(&token);
        assert!(e.message().contains("recursion limit"), "{e}");
    }
    // Just under the limit parses, even on a small stack.
    let handle = std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(|| {
            let mut body = String::new();
            for _ in 0..60 {
                body.push_str(r#"{"_embedded":{"x":"#);
            }
            body.push_str("{}");
            for _ in 0..60 {
                body.push_str("}}");
            }
            let res: Resource = from_slice(body.as_bytes()).unwrap();
            let again: Resource = from_slice(&hal_model::to_vec(&res)).unwrap();
            again == res
        })
        .unwrap();
    assert!(handle.join().unwrap());
}

#[test]
fn parse_error_is_comparable_and_cloneable() {
    let a = error::<Resource>(r#"{"rel":5}"#);
    let b = error::<Resource>(r#"{"rel":5}"#);
    assert_eq!(a, b);
    assert_eq!(a.clone(), a);
    let c = error::<Resource>(r#"{"rel":6}"#);
    assert_ne!(a, c);
    // It is a std error.
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(a);
    assert!(boxed.to_string().contains("`rel`"));
}

// ---------------------------------------------------------------------------
// Error bodies.

#[test]
fn error_body_keeps_error_report_id_and_extras() {
    let body = br#"{"code":"ServiceFailure","subcode":"CallbackChannelError","message":"Try again.","errorReportId":"0a1b2c3d","details":{"fqdn":"ring2.example"},"retryable":true}"#;
    let e: ErrorBody = from_slice(body).unwrap();
    assert_eq!(e.code, "ServiceFailure");
    assert_eq!(e.subcode.as_deref(), Some("CallbackChannelError"));
    assert_eq!(e.message.as_deref(), Some("Try again."));
    assert_eq!(e.error_report_id(), Some("0a1b2c3d"));
    assert_eq!(e.extra["details"]["fqdn"], "ring2.example");
    assert_eq!(e.extra["retryable"], true);
    let keys: Vec<&str> = e.extra.keys().map(String::as_str).collect();
    assert_eq!(keys, ["errorReportId", "details", "retryable"]);
}

#[test]
fn error_body_minimal_and_odd_forms() {
    let e: ErrorBody = from_slice(br#"{"code":"Forbidden"}"#).unwrap();
    assert_eq!(e.subcode, None);
    assert_eq!(e.message, None);
    assert_eq!(e.error_report_id(), None);
    // A non-string errorReportId is kept, but is not a report id.
    let e: ErrorBody = from_slice(br#"{"code":"ServiceFailure","errorReportId":42}"#).unwrap();
    assert_eq!(e.error_report_id(), None);
    assert_eq!(e.extra["errorReportId"], 42);
    // With a BOM, as some answers came.
    let e: ErrorBody = from_slice(
        b"\xEF\xBB\xBF{\"code\":\"Forbidden\",\"subcode\":\"ApplicationNotFound\",\"message\":\"..\"}",
    )
    .unwrap();
    assert_eq!(e.subcode.as_deref(), Some("ApplicationNotFound"));
    // Wrong types are located.
    let err = from_slice::<ErrorBody>(br#"{"code":403}"#).unwrap_err();
    assert_eq!(err.path(), "code");
    let err = from_slice::<ErrorBody>(br#"{"code":"Forbidden","subcode":1}"#).unwrap_err();
    assert_eq!(err.path(), "subcode");
    // An HTML error page is not an error body.
    let err = from_slice::<ErrorBody>(b"<html>503</html>").unwrap_err();
    assert_eq!(err.kind(), ParseErrorKind::Syntax);
}

#[test]
fn error_body_new() {
    let e = ErrorBody::new("Conflict", Some("AlreadyExists"), "exists");
    assert_eq!(
        serde_json::to_value(&e).unwrap(),
        serde_json::json!({"code":"Conflict","subcode":"AlreadyExists","message":"exists"})
    );
    let e = ErrorBody::new("Unauthorized", None, "no token");
    assert_eq!(
        serde_json::to_value(&e).unwrap(),
        serde_json::json!({"code":"Unauthorized","message":"no token"})
    );
}
