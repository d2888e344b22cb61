//! The widget-token service over real HTTP, in front of the emulator.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use ta_emulator::{EmulatorConfig, FaultKind, FaultRule, Route, Trigger};
use ta_protocol::OriginPolicy;

#[path = "service/harness.rs"]
mod harness;

use harness::*;

#[tokio::test]
async fn an_allowed_origin_gets_a_token_minted_for_it_alone() {
    let s = service(EmulatorConfig::default()).await;
    let response = call(&s, "POST", "/v1/widget-token", &[("origin", "https://litware.com:8443")], r#"{"applicationSessionId":"chosen-by-the-browser","allowedOrigins":"https://evil.example"}"#).await;
    assert_eq!(response.status(), 200, "{:?}", response.body());
    assert_eq!(header(&response, "cache-control"), Some("no-store"));
    assert_eq!(
        header(&response, "access-control-allow-origin"),
        Some("https://litware.com:8443")
    );
    assert!(varies_on_origin(&response), "{:?}", response.headers());
    assert!(header(&response, "x-request-id").is_some());
    let body = json(&response);
    let mut keys: Vec<_> = body.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "applicationSessionId",
            "discoverUri",
            "expiresAt",
            "expiresIn",
            "renewAfter",
            "token"
        ]
    );
    assert_ne!(body["applicationSessionId"], "chosen-by-the-browser");
    let expires_in = body["expiresIn"].as_u64().unwrap();
    assert!(expires_in > 7 * 3600);
    // Three quarters of the life by default, in seconds from now.
    assert_eq!(body["renewAfter"].as_u64().unwrap(), expires_in * 3 / 4);
    // The token's allowed origins are the requesting origin alone.
    let jwt = body["token"]
        .as_str()
        .unwrap()
        .strip_prefix("psat=")
        .unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(jwt.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["ao"], "https://litware.com:8443");
}

#[tokio::test]
async fn the_renewal_hint_is_the_configured_fraction_of_the_life() {
    let s = service_with(EmulatorConfig::default(), |c| {
        c.renewal = ta_widget_service::RenewalHint::fraction(0.5).unwrap();
    })
    .await;
    let body = json(&mint_for(&s, "https://contoso.com").await);
    let (expires_in, renew_after) = (
        body["expiresIn"].as_u64().unwrap(),
        body["renewAfter"].as_u64().unwrap(),
    );
    assert_eq!(renew_after, expires_in / 2);
}

#[tokio::test]
async fn an_origin_no_browser_sends_is_refused_before_any_work() {
    let s = service(EmulatorConfig::default()).await;
    let allowed = "https://contoso.com";
    let evil = "https://evil.example";
    let cases: [&[(&str, &str)]; 6] = [
        &[("origin", allowed), ("origin", evil)],
        &[("origin", evil), ("origin", allowed)],
        &[("origin", allowed), ("origin", allowed)],
        &[("origin", "https://contoso.com https://evil.example")],
        &[("origin", "https://contoso.com, https://evil.example")],
        &[("origin", "https://contoso.com\thttps://evil.example")],
    ];
    for headers in cases {
        let response = call(&s, "POST", "/v1/widget-token", headers, "").await;
        assert_eq!(response.status(), 400, "{headers:?}");
        let body = json(&response);
        assert_eq!(body["error"], "bad_origin", "{headers:?}: {body}");
        assert_eq!(
            body["requestId"].as_str(),
            header(&response, "x-request-id")
        );
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("not a browser's"),
            "{body}"
        );
    }
    // One origin, as browsers send it, still works.
    assert_eq!(mint_for(&s, allowed).await.status(), 200);
    assert_eq!(
        s.setup.emulator.stats().psat_tokens_minted,
        1,
        "only the browser's request was minted"
    );
}

#[tokio::test]
async fn other_callers_are_refused_without_any_upstream_request() {
    let s = service(EmulatorConfig::default()).await;
    for origin in [
        None,
        Some("null"),
        Some("https://evil.example"),
        Some("https://contoso.com:444"),
        Some("http://contoso.com"),
        Some("https://contoso.com/"),
        Some("https://CONTOSO.com"),
        Some("https://contoso.com/widget"),
        Some("https://sub.contoso.com"),
        Some("*"),
    ] {
        let headers: Vec<(&str, &str)> = origin.map(|o| ("origin", o)).into_iter().collect();
        let response = call(&s, "POST", "/v1/widget-token", &headers, "").await;
        assert_eq!(response.status(), 403, "{origin:?}");
        assert_eq!(
            header(&response, "access-control-allow-origin"),
            None,
            "{origin:?}"
        );
        let body = json(&response);
        assert!(
            body["error"].as_str().unwrap().starts_with("origin_"),
            "{body}"
        );
        assert_eq!(
            body["requestId"].as_str(),
            header(&response, "x-request-id")
        );
    }
    assert_eq!(
        s.setup.emulator.stats().total_requests(),
        0,
        "no upstream request at all"
    );
}

#[tokio::test]
async fn the_client_modules_are_served_cacheable_with_cors_for_allowed_origins() {
    let s = service(EmulatorConfig::default()).await;
    let mut tags = Vec::new();
    for (path, file) in [
        ("/v1/client.js", "widget-client.js"),
        ("/v1/chat.js", "chat-client.js"),
    ] {
        let module = std::fs::read_to_string(format!(
            "{}/../../clients/js/{file}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let served = call(&s, "GET", path, &[("origin", "https://contoso.com")], "").await;
        assert_eq!(served.status(), 200, "{path}");
        assert_eq!(
            header(&served, "content-type"),
            Some("text/javascript; charset=utf-8")
        );
        assert_eq!(
            header(&served, "cache-control"),
            Some("public, max-age=300")
        );
        assert_eq!(header(&served, "x-content-type-options"), Some("nosniff"));
        assert_eq!(
            header(&served, "access-control-allow-origin"),
            Some("https://contoso.com")
        );
        assert_eq!(served.body().as_ref(), module.as_bytes(), "{path}");
        // Cached publicly, so caches must key it on the origin.
        assert!(varies_on_origin(&served), "{:?}", served.headers());
        let tag = header(&served, "etag").unwrap().to_owned();
        assert!(tag.starts_with('"') && tag.ends_with('"'), "{tag}");
        // A conditional request: 304, no body.
        let again = call(&s, "GET", path, &[("if-none-match", &tag)], "").await;
        assert_eq!(again.status(), 304, "{path}");
        assert!(again.body().is_empty());
        assert_eq!(header(&again, "etag"), Some(tag.as_str()));
        // An origin off the allowlist may not read it from a page.
        let other = call(&s, "GET", path, &[("origin", "https://evil.example")], "").await;
        assert_eq!(other.status(), 200);
        assert_eq!(header(&other, "access-control-allow-origin"), None);
        tags.push(tag);
    }
    // Each module has its own tag: one's is not a 304 for the other.
    assert_ne!(tags[0], tags[1]);
    let crossed = call(&s, "GET", "/v1/chat.js", &[("if-none-match", &tags[0])], "").await;
    assert_eq!(crossed.status(), 200);
    assert_eq!(
        s.setup.emulator.stats().total_requests(),
        0,
        "nothing upstream"
    );
}

#[tokio::test]
async fn preflight_allowed_and_refused() {
    let s = service(EmulatorConfig::default()).await;
    let allowed = call(
        &s,
        "OPTIONS",
        "/v1/widget-token",
        &[
            ("origin", "https://contoso.com"),
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "content-type"),
        ],
        "",
    )
    .await;
    assert!(allowed.status().is_success());
    assert_eq!(
        header(&allowed, "access-control-allow-origin"),
        Some("https://contoso.com")
    );
    assert!(
        header(&allowed, "access-control-allow-methods")
            .unwrap()
            .contains("POST")
    );
    let refused = call(
        &s,
        "OPTIONS",
        "/v1/widget-token",
        &[
            ("origin", "https://evil.example"),
            ("access-control-request-method", "POST"),
        ],
        "",
    )
    .await;
    assert_eq!(header(&refused, "access-control-allow-origin"), None);
    assert_eq!(s.setup.emulator.stats().total_requests(), 0);
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let s = service(EmulatorConfig::default()).await;
    let response = call(
        &s,
        "POST",
        "/v1/widget-token",
        &[("origin", "https://contoso.com")],
        &"x".repeat(10_000),
    )
    .await;
    assert_eq!(response.status(), 413);
    assert_eq!(s.setup.emulator.stats().total_requests(), 0);
}

#[tokio::test]
async fn upstream_failures_map_to_stable_codes_without_details() {
    let s = service(EmulatorConfig::default().with_fault(FaultRule::on(
        Route::Mint,
        FaultKind::RevokeConsent,
        Trigger::Always,
    )))
    .await;
    let response = call(
        &s,
        "POST",
        "/v1/widget-token",
        &[("origin", "https://contoso.com")],
        "",
    )
    .await;
    assert_eq!(response.status(), 503);
    let body = json(&response);
    assert_eq!(body["error"], "upstream_not_configured");
    assert_eq!(
        body["requestId"].as_str(),
        header(&response, "x-request-id")
    );
    assert!(
        !String::from_utf8_lossy(response.body()).contains("Consented"),
        "details stay in the logs"
    );

    let s = service(EmulatorConfig::default().with_fault(FaultRule::on(
        Route::Mint,
        FaultKind::Status {
            status: 502,
            retry_after_secs: Some(0),
        },
        Trigger::Always,
    )))
    .await;
    let response = call(
        &s,
        "POST",
        "/v1/widget-token",
        &[("origin", "https://contoso.com")],
        "",
    )
    .await;
    assert_eq!(response.status(), 502);
    assert_eq!(json(&response)["error"], "upstream_error");
    assert_eq!(header(&response, "retry-after"), None);

    // Busy through every retry: 503 with a hint of when to come back.
    let s = service(EmulatorConfig::default().with_fault(FaultRule::on(
        Route::Mint,
        FaultKind::Status {
            status: 429,
            retry_after_secs: Some(0),
        },
        Trigger::Always,
    )))
    .await;
    let response = call(
        &s,
        "POST",
        "/v1/widget-token",
        &[("origin", "https://contoso.com")],
        "",
    )
    .await;
    assert_eq!(response.status(), 503);
    assert_eq!(json(&response)["error"], "upstream_busy");
    assert_eq!(header(&response, "retry-after"), Some("5"));

    // The API asks for two minutes: the page is told the same.
    let s = service(EmulatorConfig::default().with_fault(FaultRule::on(
        Route::Mint,
        FaultKind::Status {
            status: 503,
            retry_after_secs: Some(120),
        },
        Trigger::Always,
    )))
    .await;
    let response = call(
        &s,
        "POST",
        "/v1/widget-token",
        &[("origin", "https://contoso.com")],
        "",
    )
    .await;
    assert_eq!(json(&response)["error"], "upstream_busy");
    assert_eq!(header(&response, "retry-after"), Some("120"));
}

#[tokio::test]
async fn readiness_follows_the_warm_up() {
    let s = service(EmulatorConfig::default()).await;
    let response = call(&s, "GET", "/readyz", &[], "").await;
    assert_eq!(response.status(), 503);
    assert_eq!(json(&response)["reason"], "warming_up");
    assert_eq!(call(&s, "GET", "/healthz", &[], "").await.status(), 200);
    let warm = s.service.clone();
    let task = tokio::spawn(async move { warm.keep_warm().await });
    for _ in 0..100 {
        if call(&s, "GET", "/readyz", &[], "").await.status() == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(call(&s, "GET", "/readyz", &[], "").await.status(), 200);
    task.abort();
    // Warm: one widget token is one upstream request.
    let before = s.setup.emulator.stats().total_requests();
    let response = call(
        &s,
        "POST",
        "/v1/widget-token",
        &[("origin", "https://contoso.com")],
        "",
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(s.setup.emulator.stats().total_requests() - before, 1);
}

#[tokio::test]
async fn readiness_says_why_warm_up_fails() {
    let s = service(EmulatorConfig::default().with_app(|a| a.consented = false)).await;
    let warm = s.service.clone();
    let task = tokio::spawn(async move { warm.keep_warm().await });
    let mut reason = String::new();
    for _ in 0..100 {
        let response = call(&s, "GET", "/readyz", &[], "").await;
        reason = json(&response)["reason"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if reason != "warming_up" && !reason.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    task.abort();
    // The kind only: the details stay in the logs.
    assert_eq!(reason, "upstream_not_found");
}

#[tokio::test]
async fn a_client_over_its_rate_gets_429_with_retry_after() {
    let s = service_with(EmulatorConfig::default(), |c| c.per_client_per_minute = 3).await;
    for _ in 0..3 {
        assert_eq!(
            call(&s, "POST", "/v1/widget-token", &[], "").await.status(),
            403
        );
    }
    let response = call(
        &s,
        "POST",
        "/v1/widget-token",
        &[("origin", "https://contoso.com")],
        "",
    )
    .await;
    assert_eq!(response.status(), 429);
    let retry_after: u64 = header(&response, "retry-after").unwrap().parse().unwrap();
    assert!((1..=20).contains(&retry_after), "{retry_after}");
    assert_eq!(json(&response)["error"], "rate_limited");
    assert_eq!(s.setup.emulator.stats().total_requests(), 0);
}

#[tokio::test]
async fn forwarded_addresses_count_only_from_trusted_proxies() {
    // An untrusted peer cannot pick its own key by spoofing X-Forwarded-For.
    let s = service_with(EmulatorConfig::default(), |c| c.per_client_per_minute = 3).await;
    for i in 0..3 {
        let xff = format!("203.0.113.{i}");
        assert_eq!(
            call(
                &s,
                "POST",
                "/v1/widget-token",
                &[("x-forwarded-for", &xff)],
                ""
            )
            .await
            .status(),
            403
        );
    }
    let response = call(
        &s,
        "POST",
        "/v1/widget-token",
        &[("x-forwarded-for", "198.51.100.9")],
        "",
    )
    .await;
    assert_eq!(response.status(), 429);

    // Behind a trusted proxy (this test's loopback peer), each forwarded
    // client has its own budget; the rightmost untrusted address counts.
    let s = service_with(EmulatorConfig::default(), |c| {
        c.per_client_per_minute = 3;
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap(), "10.0.0.1".parse().unwrap()];
    })
    .await;
    for _ in 0..3 {
        let status = call(
            &s,
            "POST",
            "/v1/widget-token",
            &[("x-forwarded-for", "198.51.100.1, 203.0.113.7, 10.0.0.1")],
            "",
        )
        .await
        .status();
        assert_eq!(status, 403);
    }
    let limited = call(
        &s,
        "POST",
        "/v1/widget-token",
        &[("x-forwarded-for", "203.0.113.7")],
        "",
    )
    .await;
    assert_eq!(limited.status(), 429, "203.0.113.7 used its budget");
    let other = call(
        &s,
        "POST",
        "/v1/widget-token",
        &[("x-forwarded-for", "203.0.113.8")],
        "",
    )
    .await;
    assert_eq!(other.status(), 403, "another client is not limited");
    let forwarded = call(
        &s,
        "POST",
        "/v1/widget-token",
        &[("forwarded", "for=\"[2001:db8::1]:4711\";proto=https")],
        "",
    )
    .await;
    assert_eq!(forwarded.status(), 403);
    // `Forwarded: for=` is read too: that client has a budget of its own,
    // the proxy's address none used.
    for _ in 0..2 {
        let forwarded = call(
            &s,
            "POST",
            "/v1/widget-token",
            &[("forwarded", "for=\"[2001:db8::2]:4712\";proto=https")],
            "",
        )
        .await;
        assert_eq!(forwarded.status(), 403);
    }
    let limited = call(
        &s,
        "POST",
        "/v1/widget-token",
        &[("forwarded", "for=\"[2001:db8::1]\"")],
        "",
    )
    .await;
    assert_eq!(
        limited.status(),
        429,
        "2001:db8::/64 used its budget through Forwarded"
    );
    let proxy = call(&s, "POST", "/v1/widget-token", &[], "").await;
    assert_eq!(
        proxy.status(),
        403,
        "the proxy's own address is not limited"
    );
}

#[tokio::test]
async fn a_global_cap_applies_to_everyone() {
    let s = service_with(EmulatorConfig::default(), |c| {
        c.global_per_second = 2;
        c.per_client_per_minute = 1000;
    })
    .await;
    let mut statuses = Vec::new();
    let mut limited = None;
    for _ in 0..4 {
        let origin = [("origin", "https://contoso.com")];
        let response = call(&s, "POST", "/v1/widget-token", &origin, "").await;
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            limited = Some(response);
        }
    }
    let limited = limited.unwrap_or_else(|| panic!("no 429 in {statuses:?}"));
    assert_eq!(header(&limited, "retry-after"), Some("1"));
    assert_eq!(json(&limited)["error"], "rate_limited");
    assert_eq!(
        header(&limited, "access-control-allow-origin"),
        Some("https://contoso.com")
    );
    // Refused origins do not use up the global budget.
    let s = service_with(EmulatorConfig::default(), |c| {
        c.global_per_second = 1;
        c.per_client_per_minute = 1000;
    })
    .await;
    for _ in 0..5 {
        assert_eq!(
            call(&s, "POST", "/v1/widget-token", &[], "").await.status(),
            403
        );
    }
    let origin = [("origin", "https://contoso.com")];
    assert_eq!(
        call(&s, "POST", "/v1/widget-token", &origin, "")
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn metrics_count_requests_upstream_calls_caches_and_limits() {
    let s = service_with(EmulatorConfig::default(), |c| c.per_client_per_minute = 3).await;
    assert_eq!(
        call(
            &s,
            "POST",
            "/v1/widget-token",
            &[("origin", "https://contoso.com")],
            ""
        )
        .await
        .status(),
        200
    );
    assert_eq!(
        call(
            &s,
            "POST",
            "/v1/widget-token",
            &[("origin", "https://contoso.com")],
            ""
        )
        .await
        .status(),
        200
    );
    assert_eq!(
        call(&s, "POST", "/v1/widget-token", &[], "").await.status(),
        403
    );
    assert_eq!(
        call(&s, "POST", "/v1/widget-token", &[], "").await.status(),
        429
    );
    let response = call(&s, "GET", "/metrics", &[], "").await;
    assert_eq!(response.status(), 200);
    let text = String::from_utf8_lossy(response.body()).into_owned();
    for line in [
        "ta_widget_tokens_served_total 2",
        r#"ta_requests_total{route="widget_token",status="200"} 2"#,
        r#"ta_requests_total{route="widget_token",status="403"} 1"#,
        r#"ta_requests_total{route="widget_token",status="429"} 1"#,
        r#"ta_rate_limited_total{scope="client"} 1"#,
        r#"ta_upstream_requests_total{step="discovery",status="200"} 1"#,
        r#"ta_upstream_requests_total{step="mint",status="200"} 2"#,
        r#"ta_upstream_requests_total{step="aad_token",status="200"} 1"#,
        r#"ta_aad_fetches_total{outcome="ok"} 1"#,
        r#"ta_cache_lookups_total{cache="capabilities",result="miss"} 1"#,
        r#"ta_cache_lookups_total{cache="capabilities",result="hit"} 1"#,
        "ta_mint_duration_seconds_count 2",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    assert!(!text.contains("psat") && !text.contains("eyJ"));
}

#[tokio::test]
async fn request_ids_are_the_services_own() {
    let s = service(EmulatorConfig::default()).await;
    let response = call(
        &s,
        "POST",
        "/v1/widget-token",
        &[("x-request-id", "chosen-by-client")],
        "",
    )
    .await;
    let id = header(&response, "x-request-id").unwrap();
    assert_ne!(id, "chosen-by-client");
    assert_eq!(id.len(), 36);
    assert_eq!(json(&response)["requestId"], id);
}

#[tokio::test]
async fn limit_answers_carry_cors_and_are_counted() {
    let s = service(EmulatorConfig::default()).await;
    let response = call(
        &s,
        "POST",
        "/v1/widget-token",
        &[("origin", "https://contoso.com")],
        &"x".repeat(10_000),
    )
    .await;
    assert_eq!(response.status(), 413);
    assert_eq!(
        header(&response, "access-control-allow-origin"),
        Some("https://contoso.com")
    );
    let metrics =
        String::from_utf8_lossy(call(&s, "GET", "/metrics", &[], "").await.body()).into_owned();
    assert!(
        metrics.contains(r#"ta_requests_total{route="widget_token",status="413"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_non_address_in_x_forwarded_for_stops_the_walk() {
    // A client writing addresses to the left of `unknown` shares the
    // proxy's budget instead of picking its own keys.
    let s = service_with(EmulatorConfig::default(), |c| {
        c.per_client_per_minute = 3;
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let mut statuses = Vec::new();
    for i in 0..4 {
        let xff = format!("198.51.100.{i}, unknown");
        let headers = [("x-forwarded-for", xff.as_str())];
        statuses.push(
            call(&s, "POST", "/v1/widget-token", &headers, "")
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses, [403, 403, 403, 429]);
}

#[tokio::test]
async fn oversized_request_heads_are_refused() {
    let s = service(EmulatorConfig::default()).await;
    let big = "a".repeat(20 * 1024);
    let response = call(
        &s,
        "POST",
        "/v1/widget-token",
        &[("origin", "https://contoso.com"), ("x-padding", &big)],
        "",
    )
    .await;
    assert_eq!(response.status(), 431);
    assert_eq!(s.setup.emulator.stats().total_requests(), 0);
}

#[tokio::test]
async fn a_new_allowlist_applies_to_the_next_request_and_its_cors() {
    let s = service(EmulatorConfig::default()).await;
    let origin = |o: &str| ta_protocol::Origin::parse(o, OriginPolicy::default()).unwrap();
    let before = call(
        &s,
        "POST",
        "/v1/widget-token",
        &[("origin", "https://fabrikam.com")],
        "",
    )
    .await;
    assert_eq!(before.status(), 403);
    s.service
        .set_allowlist(vec![origin("https://fabrikam.com")])
        .unwrap();
    assert_eq!(
        s.service.allowed_origins(),
        vec![origin("https://fabrikam.com")]
    );
    let after = call(
        &s,
        "POST",
        "/v1/widget-token",
        &[("origin", "https://fabrikam.com")],
        "",
    )
    .await;
    assert_eq!(after.status(), 200, "{:?}", after.body());
    assert_eq!(
        header(&after, "access-control-allow-origin"),
        Some("https://fabrikam.com")
    );
    let dropped = call(
        &s,
        "POST",
        "/v1/widget-token",
        &[("origin", "https://contoso.com")],
        "",
    )
    .await;
    assert_eq!(dropped.status(), 403);
    assert_eq!(header(&dropped, "access-control-allow-origin"), None);
    // An empty allowlist is refused and the one in force stays.
    assert!(s.service.set_allowlist(Vec::new()).is_err());
    assert_eq!(s.service.allowed_origins().len(), 1);
}

#[tokio::test]
async fn a_failure_while_cold_is_answered_from_memory_for_a_moment() {
    // The service's secret is no longer the application's: AAD refuses it.
    let s = service(
        EmulatorConfig::default().with_app(|app| app.client_secret = Some("rotated-away".into())),
    )
    .await;
    for i in 0..10 {
        let response = call(
            &s,
            "POST",
            "/v1/widget-token",
            &[("origin", "https://contoso.com")],
            "",
        )
        .await;
        assert_eq!(response.status(), 503);
        assert_eq!(json(&response)["error"], "upstream_authentication");
        if i > 0 {
            assert!(header(&response, "retry-after").is_some());
        }
    }
    // One AAD request, not ten.
    assert_eq!(s.setup.emulator.stats().requests(Route::AadToken), 1);
    // A reload clears the memory: the next request asks again.
    s.service.retry_warm_up_now();
    let _ = call(
        &s,
        "POST",
        "/v1/widget-token",
        &[("origin", "https://contoso.com")],
        "",
    )
    .await;
    assert_eq!(s.setup.emulator.stats().requests(Route::AadToken), 2);
}

#[tokio::test]
async fn mints_in_flight_are_bounded() {
    let s = service_with(
        EmulatorConfig::default().with_fault(FaultRule::on(
            Route::Mint,
            FaultKind::Latency { millis: 2_000 },
            Trigger::Once,
        )),
        |c| c.max_mints_in_flight = 1,
    )
    .await;
    let s = std::sync::Arc::new(s);
    let origin = [("origin", "https://contoso.com")];
    let first = tokio::spawn({
        let s = std::sync::Arc::clone(&s);
        async move { call(&s, "POST", "/v1/widget-token", &origin, "").await }
    });
    // The first mint holds the only permit for 2 s upstream.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let refused = call(&s, "POST", "/v1/widget-token", &origin, "").await;
    assert_eq!(refused.status(), 503);
    assert_eq!(header(&refused, "retry-after"), Some("1"));
    let body = json(&refused);
    assert_eq!(body["error"], "busy");
    assert_eq!(body["requestId"].as_str(), header(&refused, "x-request-id"));
    assert_eq!(
        header(&refused, "access-control-allow-origin"),
        Some("https://contoso.com")
    );
    assert_eq!(first.await.unwrap().status(), 200);
    // The permit came back; the refused call never went upstream.
    let again = call(&s, "POST", "/v1/widget-token", &origin, "").await;
    assert_eq!(again.status(), 200);
    assert_eq!(s.setup.emulator.stats().requests(Route::Mint), 2);
}

/// A widget-token request to a service whose mints take 3 s upstream,
/// with these deadlines: the answer, and how long it took.
async fn slow_mint(
    upstream_deadline: Duration,
    request_timeout: Duration,
) -> (Service, http::Response<Bytes>, Duration) {
    let s = service_with(
        EmulatorConfig::default().with_fault(FaultRule::on(
            Route::Mint,
            FaultKind::Latency { millis: 3_000 },
            Trigger::Always,
        )),
        |c| {
            c.upstream_deadline = upstream_deadline;
            c.request_timeout = request_timeout;
        },
    )
    .await;
    let started = std::time::Instant::now();
    let origin = [("origin", "https://contoso.com")];
    let response = call(&s, "POST", "/v1/widget-token", &origin, "").await;
    let took = started.elapsed();
    assert_eq!(response.status(), 504);
    let body = json(&response);
    assert_eq!(
        body["requestId"].as_str(),
        header(&response, "x-request-id")
    );
    assert_eq!(header(&response, "cache-control"), Some("no-store"));
    assert_eq!(
        header(&response, "access-control-allow-origin"),
        Some("https://contoso.com")
    );
    (s, response, took)
}

#[tokio::test]
async fn a_mint_past_the_upstream_deadline_answers_504_upstream_timeout() {
    let (_s, response, took) = slow_mint(Duration::from_millis(500), Duration::from_secs(10)).await;
    assert_eq!(json(&response)["error"], "upstream_timeout");
    assert!(
        took < Duration::from_millis(2_500),
        "the mint was cut short, not waited for: {took:?}"
    );
}

#[tokio::test]
async fn the_request_timeout_answers_json_with_the_request_id() {
    let (s, response, _) = slow_mint(Duration::from_secs(10), Duration::from_millis(500)).await;
    assert_eq!(json(&response)["error"], "timeout");
    let metrics = call(&s, "GET", "/metrics", &[], "").await;
    let text = String::from_utf8_lossy(metrics.body()).into_owned();
    assert!(
        text.lines()
            .any(|l| l.contains("route=\"widget_token\"") && l.contains("status=\"504\"")),
        "the 504 is counted: {text}"
    );
}

#[tokio::test]
async fn the_aad_token_is_refreshed_in_the_background_before_it_expires() {
    // 15 s tokens are refreshed 12 to 12.6 s after they are issued: well
    // before the loop's 30 s look, which alone would let a widget request
    // pay for the AAD request (or find the token expired).
    let s =
        service(EmulatorConfig::default().with_aad_token_lifetime(Duration::from_secs(15))).await;
    let warm = s.service.clone();
    let task = tokio::spawn(async move { warm.keep_warm().await });
    let origin = [("origin", "https://contoso.com")];
    let mut ready = false;
    for _ in 0..250 {
        if call(&s, "GET", "/readyz", &[], "").await.status() == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ready, "the service warmed up");
    assert_eq!(s.setup.emulator.stats().aad_tokens_issued, 1);
    assert_eq!(
        call(&s, "POST", "/v1/widget-token", &origin, "")
            .await
            .status(),
        200
    );
    let started = std::time::Instant::now();
    while s.setup.emulator.stats().aad_tokens_issued < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(25),
            "no AAD token was fetched in the background within 25 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The widget request after it finds the new token: no AAD request on
    // the request path, one upstream request in all.
    let before = s.setup.emulator.stats().total_requests();
    let response = call(&s, "POST", "/v1/widget-token", &origin, "").await;
    assert_eq!(response.status(), 200);
    assert_eq!(s.setup.emulator.stats().total_requests() - before, 1);
    assert_eq!(s.setup.emulator.stats().aad_tokens_issued, 2);
    task.abort();
}
