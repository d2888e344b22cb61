//! The protocol driven against a function that plays the server.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

mod support;

use std::time::Duration;

use support::*;
use ta_protocol::aad::{AadError, TokenError};
use ta_protocol::*;

fn bootstrap(h: &mut Harness<impl FnMut(&Seen, usize) -> Reply>) -> Result<Bootstrapped, Error> {
    h.run(Flow::bootstrap(config(), mint_request(), None, entropy()))
}

fn happy_path(ns: &'static str) {
    let mut h = Harness::new(good_server(ns));
    let done = bootstrap(&mut h).unwrap();
    assert_eq!(
        h.urls(),
        [
            DISCOVER,
            "https://apps.example.com/platformService/v1/applications?endpointId=sip:helpdesk@contoso.com",
            "https://apps.example.com/platformService/v1/applications?endpointId=sip:helpdesk@contoso.com",
            "https://apps.example.com/platformservice/v1/applications/1627259584?endpointId=sip%3ahelpdesk%40contoso.com",
            "https://apps.example.com/platformservice/v1/applications/1627259584/anonApplicationTokens?endpointId=sip:helpdesk@contoso.com",
        ]
    );
    // Discovery and the first applications request carry no token.
    assert_eq!(h.seen[0].authorization, None);
    assert_eq!(h.seen[1].authorization, None);
    for seen in &h.seen[2..] {
        assert_eq!(seen.authorization.as_deref(), Some("Bearer tok-0"));
    }
    // One token, asked for the discover URL's origin, after the challenge.
    assert_eq!(h.token_needs.len(), 1);
    let need = &h.token_needs[0];
    assert_eq!(need.audience.as_str(), "https://api.example.com");
    assert_eq!(need.step, Step::Applications);
    assert!(need.rejected.is_none());
    let challenge = need.challenge.as_ref().unwrap();
    assert_eq!(challenge.param("realm"), Some("api.example.com"));
    // A fresh client-request-id per request.
    let mut ids: Vec<_> = h.seen.iter().map(|s| s.request_id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), h.seen.len());
    // The mint.
    let mint = &h.seen[4];
    assert_eq!(mint.method, "POST");
    assert_eq!(
        mint.content_type.as_deref(),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(
        std::str::from_utf8(&mint.body).unwrap(),
        "{\n    \"applicationSessionId\": \"session-1\",\n    \"allowedOrigins\": \"https://contoso.com;https://litware.com\"\n}"
    );
    // The outcome.
    assert_eq!(done.token.token.expose(), PSAT);
    assert_eq!(done.token.discover_url.as_str(), ANON_DISCOVER);
    assert_eq!(done.token.expiry.as_str(), "2016-06-27T01:42:13.094Z");
    assert_eq!(done.token.session_id.as_str(), "session-1");
    assert_eq!(
        done.token.self_url.as_ref().unwrap().host_str(),
        Some("ext.example.com")
    );
    assert_eq!(
        done.capabilities.application.capabilities(),
        ["anonApplicationTokens", "communication"]
    );
    let trusted = &done.capabilities.discovery.trusted_hosts;
    assert!(trusted.allows(&"https://apps.example.com/".parse().unwrap()));
}

#[test]
fn happy_path_service_namespace() {
    happy_path("service:");
}

#[test]
fn happy_path_rtc_saas_namespace() {
    happy_path("ms:rtc:saas:");
}

#[test]
fn an_expiry_in_the_microsoft_json_date_form() {
    let mut inner = good_server("ms:rtc:saas:");
    let mut h = Harness::new(move |req: &Seen, i| {
        if req.method == "POST" && req.authorization.is_some() {
            let body = mint_body("ms:rtc:saas:", "/Date(1466991733094+0000)/", ANON_DISCOVER);
            return json(200, &body);
        }
        inner(req, i)
    });
    let done = bootstrap(&mut h).unwrap();
    assert_eq!(done.token.expiry.as_str(), "/Date(1466991733094+0000)/");
    assert_eq!(
        done.token.expiry.instant(),
        hal_model::ExpiryTime::parse("2016-06-27T01:42:13.094Z")
            .unwrap()
            .instant()
    );
}

#[test]
fn a_cached_token_is_sent_at_once() {
    let mut h = Harness::new(good_server("service:"));
    h.run(Flow::bootstrap(
        config(),
        mint_request(),
        Some(AccessToken::new("cached")),
        entropy(),
    ))
    .unwrap();
    assert_eq!(h.seen.len(), 4, "no challenge round trip: {:?}", h.urls());
    assert!(h.token_needs.is_empty());
    assert!(
        h.seen[1..]
            .iter()
            .all(|s| s.authorization.as_deref() == Some("Bearer cached"))
    );
}

#[test]
fn a_rejected_cached_token_is_dropped_and_replaced_once() {
    let mut inner = good_server("service:");
    let mut h = Harness::new(move |req: &Seen, i| {
        if req.authorization.as_deref() == Some("Bearer stale") {
            return challenge();
        }
        inner(req, i)
    });
    let done = h.run(Flow::bootstrap(
        config(),
        mint_request(),
        Some(AccessToken::new("stale")),
        entropy(),
    ));
    done.unwrap();
    assert_eq!(h.token_needs.len(), 1);
    assert_eq!(
        h.token_needs[0].rejected.as_ref().map(AccessToken::expose),
        Some("stale")
    );
    assert_eq!(h.seen.len(), 5);
}

#[test]
fn a_second_401_is_an_authentication_error() {
    let mut h = Harness::new(|req: &Seen, _| {
        if req.url == DISCOVER {
            return json(
                200,
                &discovery_body("service:", "https://api.example.com/apps"),
            );
        }
        let mut r = challenge().unwrap();
        *r.body_mut() = bytes::Bytes::from_static(
            br#"{"code":"Unauthorized","subcode":"InvalidToken","message":"audience mismatch"}"#,
        );
        r.headers_mut()
            .insert("x-ms-correlation-id", "corr-401".parse().unwrap());
        Ok(r)
    });
    let err = bootstrap(&mut h).unwrap_err();
    let Error::Auth(auth) = &err else {
        panic!("{err:?}")
    };
    let AuthErrorKind::Rejected { answer, challenges } = &auth.kind else {
        panic!("{auth:?}")
    };
    assert_eq!(answer.status, 401);
    assert_eq!(
        answer.correlation.correlation_id.as_deref(),
        Some("corr-401")
    );
    assert!(challenges[0].is_scheme("bearer"));
    assert_eq!(
        h.seen.len(),
        3,
        "discovery, challenge, one retry: {:?}",
        h.urls()
    );
    let text = err.to_string();
    assert!(
        text.contains("applications") && text.contains("corr-401"),
        "{text}"
    );
    assert!(!text.contains("tok-0"), "{text}");
}

#[test]
fn discovery_behind_a_401_is_answered_once_with_a_token() {
    let mut inner = good_server("service:");
    let mut h = Harness::new(move |req: &Seen, i| {
        if req.url == DISCOVER && req.authorization.is_none() {
            return challenge();
        }
        inner(req, i)
    });
    bootstrap(&mut h).unwrap();
    assert_eq!(h.token_needs.len(), 1);
    assert_eq!(h.token_needs[0].step, Step::Discovery);
    // Discovery twice, then every other request with the token at once.
    assert_eq!(h.seen.len(), 5);
    assert!(h.seen[1..].iter().all(|s| s.authorization.is_some()));
}

#[test]
fn application_not_found_is_typed_with_correlation() {
    let mut inner = good_server("service:");
    let mut h = Harness::new(move |req: &Seen, i| {
        if req.url.contains("/applications?") && req.authorization.is_some() {
            let mut r = json(
                403,
                r#"{"code":"Forbidden","subcode":"ApplicationNotFound","message":"No application endpoint sip:helpdesk@contoso.com","errorReportId":"rep-9"}"#,
            )
            .unwrap();
            r.headers_mut().insert(
                "x-ms-diagnostics",
                r#"28032;reason="Application not found""#.parse().unwrap(),
            );
            return Ok(r);
        }
        inner(req, i)
    });
    let err = bootstrap(&mut h).unwrap_err();
    let api = err.api_error().unwrap();
    assert_eq!(
        api.correlation.diagnostics.as_deref(),
        Some(r#"28032;reason="Application not found""#)
    );
    assert_eq!(api.body.as_ref().unwrap().error_report_id(), Some("rep-9"));
    assert_eq!(api.kind(), ApiErrorKind::ApplicationNotFound);
    assert_eq!(api.step, Step::Applications);
    assert_eq!(api.correlation.correlation_id.as_deref(), Some("corr-1"));
    assert_eq!(
        api.correlation.server_fqdn.as_deref(),
        Some("server.example.com")
    );
    assert!(api.hint().unwrap().contains("register"));
    assert!(err.to_string().contains("ApplicationNotFound"), "{err}");
}

#[test]
fn consent_missing_is_recognised() {
    let mut inner = good_server("service:");
    let mut h = Harness::new(move |req: &Seen, i| {
        if req.url.contains("/1627259584?") && req.authorization.is_some() {
            return json(
                403,
                r#"{"code":"Forbidden","subcode":"ApplicationNotConsented","message":"The tenant has not consented"}"#,
            );
        }
        inner(req, i)
    });
    let err = bootstrap(&mut h).unwrap_err();
    assert_eq!(
        err.api_error().unwrap().kind(),
        ApiErrorKind::ConsentMissing
    );
}

#[test]
fn missing_anon_application_tokens_names_the_rel_and_sends_no_mint() {
    let mut inner = good_server("service:");
    let mut h = Harness::new(move |req: &Seen, i| {
        if req.url.contains("/1627259584?") && req.authorization.is_some() {
            return json(200, &application_body("service:", false));
        }
        inner(req, i)
    });
    let err = bootstrap(&mut h).unwrap_err();
    let Error::Server(server) = &err else {
        panic!("{err:?}")
    };
    assert!(matches!(
        server.kind,
        ServerErrorKind::MissingLink {
            rel: "anonApplicationTokens"
        }
    ));
    assert!(h.seen.iter().all(|s| s.method == "GET"));
    assert!(err.to_string().contains("anonApplicationTokens"));
}

#[test]
fn a_malformed_discover_link_is_a_server_error_without_the_token() {
    let mut inner = good_server("service:");
    let mut h = Harness::new(move |req: &Seen, i| {
        if req.method == "POST" && req.authorization.is_some() {
            return json(
                200,
                &mint_body(
                    "service:",
                    "2016-06-27T01:42:13.094Z",
                    "/platformService/discover?anonymousContext=psat%253dsecret-part",
                ),
            );
        }
        inner(req, i)
    });
    let err = bootstrap(&mut h).unwrap_err();
    let Error::Server(server) = &err else {
        panic!("{err:?}")
    };
    assert!(matches!(
        server.kind,
        ServerErrorKind::BadLink {
            rel: "discover",
            ..
        }
    ));
    let text = err.to_string();
    assert!(text.contains("not an absolute URL"), "{text}");
    assert!(!text.contains("secret-part"), "{text}");
}

#[test]
fn an_http_discover_link_is_refused() {
    let mut inner = good_server("service:");
    let mut h = Harness::new(move |req: &Seen, i| {
        if req.method == "POST" && req.authorization.is_some() {
            return json(
                200,
                &mint_body(
                    "service:",
                    "2016-06-27T01:42:13.094Z",
                    "http://api.example.com/d?x=1",
                ),
            );
        }
        inner(req, i)
    });
    let err = bootstrap(&mut h).unwrap_err();
    assert!(err.to_string().contains("not https"), "{err}");
}

/// The configuration `serve --emulator` uses: http on loopback for the
/// widget's links only.
fn widget_http_config() -> std::sync::Arc<Config> {
    Config::builder(DISCOVER, ENDPOINT)
        .loopback_http_widget_links(true)
        .build()
        .unwrap()
        .into_shared()
}

/// The whole flow with [`widget_http_config`].
fn widget_bootstrap(
    h: &mut Harness<impl FnMut(&Seen, usize) -> Reply>,
) -> Result<Bootstrapped, Error> {
    h.run(Flow::bootstrap(
        widget_http_config(),
        mint_request(),
        None,
        entropy(),
    ))
}

fn mint_answering(discover: &'static str) -> impl FnMut(&Seen, usize) -> Reply {
    let mut inner = good_server("service:");
    move |req: &Seen, i| {
        if req.method == "POST" && req.authorization.is_some() {
            return json(
                200,
                &mint_body("service:", "2016-06-27T01:42:13.094Z", discover),
            );
        }
        inner(req, i)
    }
}

#[test]
fn widget_links_may_be_loopback_http_when_configured_and_no_other_link_may() {
    let loopback = "http://127.0.0.1:8081/platformService/discover?anonymousContext=psat%253dx";
    // Refused by default.
    let mut h = Harness::new(mint_answering(loopback));
    assert!(
        bootstrap(&mut h)
            .unwrap_err()
            .to_string()
            .contains("not https")
    );
    // Accepted with the widget's policy.
    let mut h = Harness::new(mint_answering(loopback));
    let done = widget_bootstrap(&mut h).unwrap();
    assert_eq!(done.token.discover_url.as_str(), loopback);
    // http elsewhere than loopback: still refused.
    let mut h = Harness::new(mint_answering("http://api.example.com/d?x=1"));
    let err = widget_bootstrap(&mut h).unwrap_err();
    assert!(err.to_string().contains("not https"), "{err}");
    // An http applications link, even on loopback, is a link this client
    // would follow with its AAD token: refused, and nothing is sent there.
    let mut inner = good_server("service:");
    let mut h = Harness::new(move |req: &Seen, i| {
        if url::Url::parse(&req.url).unwrap().path() == "/platformservice/discover" {
            return json(
                200,
                &discovery_body(
                    "service:",
                    "http://localhost:8081/platformService/v1/applications",
                ),
            );
        }
        inner(req, i)
    });
    let err = widget_bootstrap(&mut h).unwrap_err();
    let Error::Server(server) = &err else {
        panic!("{err:?}")
    };
    assert!(
        matches!(
            &server.kind,
            ServerErrorKind::BadLink {
                rel: "applications",
                ..
            }
        ),
        "{err}"
    );
    assert!(h.seen.iter().all(|s| !s.url.starts_with("http://")));
    assert!(h.seen.iter().all(|s| s.authorization.is_none()));
    // The same for the application link and the mint's link: each is a link
    // this client follows with its token.
    for (rel, path, body) in [
        (
            "application",
            "/platformservice/v1/applications",
            applications_body("service:").replace(
                "\"/platformservice/v1/applications/1627259584?",
                "\"http://localhost:8081/platformservice/v1/applications/1627259584?",
            ),
        ),
        (
            "anonApplicationTokens",
            "/platformservice/v1/applications/1627259584",
            application_body("service:", true).replace(
                "\"/platformservice/v1/applications/1627259584/anonApplicationTokens",
                "\"http://localhost:8081/platformservice/v1/applications/1627259584/anonApplicationTokens",
            ),
        ),
    ] {
        let mut inner = good_server("service:");
        let mut h = Harness::new(move |req: &Seen, i| {
            let url = url::Url::parse(&req.url).unwrap();
            if req.authorization.is_some() && url.path().eq_ignore_ascii_case(path) {
                return json(200, &body);
            }
            inner(req, i)
        });
        let err = widget_bootstrap(&mut h).unwrap_err();
        assert!(err.to_string().contains("not https"), "{rel}: {err}");
        assert!(
            h.seen.iter().all(|s| !s.url.starts_with("http://")),
            "{rel}: {:?}",
            h.urls()
        );
    }
}

#[test]
fn malformed_json_keeps_the_path() {
    let mut h =
        Harness::new(|_: &Seen, _| json(200, r#"{"_links":{"service:applications":{"href":42}}}"#));
    let err = bootstrap(&mut h).unwrap_err();
    let Error::Server(server) = &err else {
        panic!("{err:?}")
    };
    let ServerErrorKind::Body(parse) = &server.kind else {
        panic!("{server:?}")
    };
    assert_eq!(parse.path(), "_links.service:applications.href");
    assert_eq!(server.step, Step::Discovery);

    let mut h = Harness::new(|_: &Seen, _| json(200, "<html>oops</html>"));
    let err = bootstrap(&mut h).unwrap_err();
    assert!(err.to_string().contains("not valid JSON"), "{err}");
}

#[test]
fn a_503_with_retry_after_is_retried_after_that_delay() {
    let mut inner = good_server("service:");
    let mut h = Harness::new(move |req: &Seen, i| {
        if req.method == "POST" && i == 4 {
            return status_with(503, &[("retry-after", "2")]);
        }
        inner(req, i)
    });
    let done = bootstrap(&mut h).unwrap();
    assert_eq!(h.timeouts, [Duration::from_secs(2)]);
    assert_eq!(h.seen.len(), 6);
    // The retried mint carries the same session id.
    assert_eq!(h.seen[4].body, h.seen[5].body);
    assert_eq!(h.seen[5].at - h.seen[4].at, Duration::from_secs(2));
    assert_ne!(h.seen[4].request_id, h.seen[5].request_id);
    assert_eq!(done.token.session_id.as_str(), "session-1");
}

#[test]
fn a_retry_after_http_date_is_measured_against_the_date_header() {
    let mut inner = good_server("service:");
    let mut h = Harness::new(move |req: &Seen, i| {
        if i == 0 {
            return status_with(
                429,
                &[
                    ("retry-after", "Wed, 21 Oct 2015 07:28:03 GMT"),
                    ("date", "Wed, 21 Oct 2015 07:28:00 GMT"),
                ],
            );
        }
        inner(req, i)
    });
    bootstrap(&mut h).unwrap();
    assert_eq!(h.timeouts, [Duration::from_secs(3)]);
}

#[test]
fn the_retry_budget_runs_out() {
    let mut h = Harness::new(|_: &Seen, _| status_with(503, &[]));
    let err = bootstrap(&mut h).unwrap_err();
    let Error::RetriesExhausted { attempts, last, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(*attempts, 4);
    assert_eq!(last.status(), Some(http::StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(h.seen.len(), 4);
    // Exponential backoff with jitter in [0.5, 1) of 250 ms × 2^n.
    assert_eq!(h.timeouts.len(), 3);
    for (n, wait) in h.timeouts.iter().enumerate() {
        let base = Duration::from_millis(250) * (1 << n);
        assert!(*wait >= base / 2 && *wait < base, "{n}: {wait:?}");
    }
}

#[test]
fn a_retry_after_beyond_the_budget_gives_up_at_once() {
    let mut h = Harness::new(|_: &Seen, _| status_with(503, &[("retry-after", "3600")]));
    let err = bootstrap(&mut h).unwrap_err();
    assert_eq!(err.status(), Some(http::StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(h.seen.len(), 1);
    assert!(h.timeouts.is_empty());
}

#[test]
fn other_4xx_are_not_retried() {
    let mut h = Harness::new(|_: &Seen, _| json(404, r#"{"code":"NotFound"}"#));
    let err = bootstrap(&mut h).unwrap_err();
    assert!(matches!(err, Error::Rejected(_)));
    assert_eq!(h.seen.len(), 1);
}

#[test]
fn a_307_to_an_untrusted_host_gets_no_token() {
    let mut inner = good_server("service:");
    let mut h = Harness::new(move |req: &Seen, i| {
        if req.url.contains("/1627259584?") {
            return status_with(307, &[("location", "https://evil.example.net/steal")]);
        }
        inner(req, i)
    });
    let err = bootstrap(&mut h).unwrap_err();
    let Error::Untrusted(untrusted) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(untrusted.reason, UntrustedReason::UntrustedRedirect);
    assert!(h.seen.iter().all(|s| !s.url.contains("evil")));
}

#[test]
fn a_307_to_a_trusted_host_is_followed_with_the_same_request() {
    let mut inner = good_server("service:");
    let mut h = Harness::new(move |req: &Seen, i| {
        if req.method == "POST" && req.url.starts_with("https://apps.example.com/") {
            return status_with(
                307,
                &[(
                    "location",
                    "https://x.resources.lync.com/platformservice/v1/applications/1627259584/anonApplicationTokens?endpointId=sip:helpdesk@contoso.com",
                )],
            );
        }
        inner(req, i)
    });
    bootstrap(&mut h).unwrap();
    let last = h.seen.last().unwrap();
    assert!(last.url.starts_with("https://x.resources.lync.com/"));
    assert_eq!(last.method, "POST");
    assert_eq!(last.body, h.seen[h.seen.len() - 2].body);
    assert!(last.authorization.is_some());
}

#[test]
fn discovery_follows_a_redirect_without_a_token_but_does_not_trust_its_links() {
    let mut inner = good_server("service:");
    let mut h = Harness::new(move |req: &Seen, i| {
        if req.url == DISCOVER {
            return status_with(
                307,
                &[("location", "https://elsewhere.example.org/discover")],
            );
        }
        if req
            .url
            .starts_with("https://elsewhere.example.org/discover")
        {
            return json(
                200,
                &discovery_body("service:", "https://elsewhere.example.org/apps"),
            );
        }
        inner(req, i)
    });
    let err = bootstrap(&mut h).unwrap_err();
    // The applications request goes out without a token and draws a
    // challenge, but the token is never sent to the untrusted host.
    assert!(
        matches!(&err, Error::Untrusted(u) if u.reason == UntrustedReason::UntrustedHost),
        "{err:?}"
    );
    assert!(h.seen.iter().all(|s| s.authorization.is_none()));
}

#[test]
fn too_many_redirects() {
    let mut h = Harness::new(|_: &Seen, _| status_with(307, &[("location", DISCOVER)]));
    let err = bootstrap(&mut h).unwrap_err();
    assert!(err.to_string().contains("more than 3 redirects"), "{err}");
    assert_eq!(h.seen.len(), 4);
}

#[test]
fn transport_errors_are_retried_only_when_that_can_help() {
    let mut inner = good_server("service:");
    let mut h = Harness::new(move |req: &Seen, i| {
        if i == 0 {
            return Err(TransportError::new(TransportErrorKind::Connect, false));
        }
        inner(req, i)
    });
    bootstrap(&mut h).unwrap();
    assert_eq!(h.timeouts.len(), 1);

    let mut h =
        Harness::new(|_: &Seen, _| Err(TransportError::new(TransportErrorKind::Tls, false)));
    let err = bootstrap(&mut h).unwrap_err();
    assert!(matches!(
        err,
        Error::Transport {
            step: Step::Discovery,
            ..
        }
    ));
    assert_eq!(h.seen.len(), 1);
}

#[test]
fn a_token_source_failure_ends_the_flow_with_the_aad_code() {
    let mut h = Harness::new(good_server("service:")).with_tokens(vec![Err(TokenError::from(
        AadError::Rejected {
            status: http::StatusCode::UNAUTHORIZED,
            error: "invalid_client".into(),
            description: Some("AADSTS7000215: Invalid client secret provided.".into()),
            codes: vec![7_000_215],
            correlation_id: Some("aad-corr".into()),
            trace_id: None,
        },
    ))]);
    let err = bootstrap(&mut h).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("AADSTS7000215") && text.contains("aad-corr"),
        "{text}"
    );
}

#[test]
fn mint_alone_from_cached_capabilities_is_one_request() {
    let mut h = Harness::new(good_server("service:"));
    let first = bootstrap(&mut h).unwrap();
    let mut h = Harness::new(good_server("service:"));
    let token = h
        .run(Flow::mint(
            config(),
            &first.capabilities,
            mint_request(),
            Some(AccessToken::new("cached")),
            entropy(),
        ))
        .unwrap();
    assert_eq!(h.seen.len(), 1);
    assert_eq!(h.seen[0].method, "POST");
    assert_eq!(token.token.expose(), PSAT);

    // Without a token the mint asks for one before sending anything.
    let mut h = Harness::new(good_server("service:"));
    h.run(Flow::mint(
        config(),
        &first.capabilities,
        mint_request(),
        None,
        entropy(),
    ))
    .unwrap();
    assert_eq!(h.token_needs.len(), 1);
    assert_eq!(h.seen.len(), 1);
    assert!(h.seen[0].authorization.is_some());
}

#[test]
fn discovery_and_capabilities_flows_separately() {
    let mut h = Harness::new(good_server("ms:rtc:saas:"));
    let discovery = h.run(Flow::discovery(config(), entropy())).unwrap();
    assert_eq!(discovery.namespace, Some(hal_model::Namespace::RtcSaas));
    assert_eq!(h.seen.len(), 1);
    let caps = h
        .run(Flow::capabilities(config(), discovery, None, entropy()))
        .unwrap();
    assert!(caps.anon_application_tokens.is_some());
    assert!(caps.application.communication().is_some());
}

#[test]
fn anonymous_discovery_sends_origin_and_no_token() {
    let mut h = Harness::new(|req: &Seen, _| {
        let mut r = json(
            200,
            r#"{"_links":{"self":{"href":"/platformservice/discover"},"anonApplications":{"href":"/ucwa/psanon/v1/applications"}},"rel":"service:discover"}"#,
        )
        .unwrap();
        r.headers_mut().insert(
            "access-control-allow-origin",
            req.origin.clone().unwrap().parse().unwrap(),
        );
        Ok(r)
    });
    let origin = Origin::parse("https://contoso.com", OriginPolicy::default()).unwrap();
    let found = h
        .run(Flow::anonymous_discovery(
            config(),
            ANON_DISCOVER.parse().unwrap(),
            origin,
            entropy(),
        ))
        .unwrap();
    assert_eq!(h.seen[0].origin.as_deref(), Some("https://contoso.com"));
    assert_eq!(h.seen[0].authorization, None);
    assert_eq!(h.seen[0].url, ANON_DISCOVER, "the double encoding is kept");
    assert_eq!(
        found.anon_applications.as_str(),
        "https://api.example.com/ucwa/psanon/v1/applications"
    );
    assert!(found.cors_allows_origin());
}

#[test]
fn an_expired_psat_is_a_rejection_whose_message_hides_the_token() {
    let mut h = Harness::new(|_: &Seen, _| {
        json(
            401,
            r#"{"code":"Unauthorized","message":"token psat=eyJabc.def expired"}"#,
        )
    });
    let origin = Origin::parse("https://contoso.com", OriginPolicy::default()).unwrap();
    let err = h
        .run(Flow::anonymous_discovery(
            config(),
            ANON_DISCOVER.parse().unwrap(),
            origin,
            entropy(),
        ))
        .unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(matches!(err, Error::Rejected(_)));
    assert!(!text.contains("eyJ"), "{text}");
    assert!(h.token_needs.is_empty());
}

#[test]
fn misuse_is_a_typed_error() {
    let mut flow = Flow::discovery(config(), entropy());
    let now = std::time::Instant::now();
    let Some(Output::Transmit(t)) = flow.poll_output(now) else {
        panic!()
    };
    assert!(flow.poll_output(now).is_none(), "waiting for the answer");
    assert_eq!(
        flow.handle_token(Ok(AccessToken::new("x")), now),
        Err(UsageError::UnexpectedToken)
    );
    let other = {
        let mut f2 = Flow::discovery(config(), entropy());
        let Some(Output::Transmit(t2)) = f2.poll_output(now) else {
            panic!()
        };
        t2.id()
    };
    let resp = json(200, "{}").unwrap();
    // Same number from another flow is accepted only if it is outstanding
    // here; a made-up one is refused.
    let _ = other;
    let (id, _) = t.into_parts();
    flow.handle_response(id, resp.clone(), now).unwrap();
    assert!(matches!(flow.poll_output(now), Some(Output::Done(Err(_)))));
    assert_eq!(
        flow.handle_response(id, resp, now),
        Err(UsageError::Finished)
    );
}

#[test]
fn a_mint_without_the_capability_sends_nothing() {
    let mut inner = good_server("service:");
    let mut h = Harness::new(move |req: &Seen, i| {
        if req.url.contains("/1627259584?") && req.authorization.is_some() {
            return json(200, &application_body("service:", false));
        }
        inner(req, i)
    });
    let caps = h
        .run(Flow::capabilities(
            config(),
            h_discovery(),
            Some(AccessToken::new("t")),
            entropy(),
        ))
        .unwrap();
    assert!(caps.anon_application_tokens.is_none());
    let mut h = Harness::new(good_server("service:"));
    let err = h
        .run(Flow::mint(
            config(),
            &caps,
            mint_request(),
            Some(AccessToken::new("t")),
            entropy(),
        ))
        .unwrap_err();
    assert!(h.seen.is_empty());
    assert_eq!(err.step(), Some(Step::Application));
    assert!(err.to_string().contains("/1627259584"), "{err}");
}

fn h_discovery() -> Discovery {
    let mut h = Harness::new(good_server("service:"));
    h.run(Flow::discovery(config(), entropy())).unwrap()
}

#[test]
fn a_utf8_bom_is_accepted_on_every_answer() {
    let mut inner = good_server("service:");
    let mut h = Harness::new(move |req: &Seen, i| {
        let mut r = inner(req, i)?;
        let mut body = b"\xEF\xBB\xBF".to_vec();
        body.extend_from_slice(r.body());
        *r.body_mut() = bytes::Bytes::from(body);
        Ok(r)
    });
    bootstrap(&mut h).unwrap();
}

#[test]
fn debug_output_never_shows_the_psat_token() {
    let mut h = Harness::new(good_server("service:"));
    let done = bootstrap(&mut h).unwrap();
    let text = format!("{done:?} {:?} {:?}", done.token, done.token.resource);
    assert!(!text.contains("eyJ"), "{text}");
    assert!(text.contains("anonymousContext=<redacted>"), "{text}");
}
