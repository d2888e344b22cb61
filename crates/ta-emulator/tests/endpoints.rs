//! Every endpoint of the emulator, over real HTTPS, with a raw client.
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
use ta_emulator::*;

#[tokio::test]
async fn discovery_links_to_the_api_on_another_host() {
    let (emu, client) = start(EmulatorConfig::default()).await;
    let answer = get(&client, &emu.discover_url(), &[]).await;
    assert_eq!(answer.status, 200);
    assert!(answer.header("x-ms-correlation-id").is_some());
    assert_eq!(
        answer.header("x-ms-server-fqdn"),
        Some("ta-emulator.loopback.invalid")
    );
    let body = answer.json();
    let apps = body["_links"]["service:applications"]["href"]
        .as_str()
        .unwrap();
    assert_eq!(apps, api(&emu, "/platformservice/v1/applications"));
    assert!(emu.discover_url().starts_with("https://127.0.0.1:"));
    // Path casing does not matter.
    let camel = get(&client, &disco(&emu, "/platformService/Discover"), &[]).await;
    assert_eq!(camel.status, 200);
    // The API is not served on the discovery host name.
    let misdirected = get(
        &client,
        &disco(
            &emu,
            &format!("/platformservice/v1/applications?{ENDPOINT_Q}"),
        ),
        &[],
    )
    .await;
    assert_eq!(misdirected.status, 404);
    assert_eq!(misdirected.json()["subcode"], "WrongHost");
}

#[tokio::test]
async fn discovery_can_demand_a_token() {
    let (emu, client) = start(EmulatorConfig::default().with_discovery_requiring_token()).await;
    let answer = get(&client, &emu.discover_url(), &[]).await;
    assert_eq!(answer.status, 401);
    let token = aad_token(&emu, &client).await;
    let answer = get(
        &client,
        &emu.discover_url(),
        &[("authorization", &bearer(&token))],
    )
    .await;
    assert_eq!(answer.status, 200);
}

#[tokio::test]
async fn aad_v2_and_v1_answer_in_their_own_shapes() {
    let (emu, client) = start(EmulatorConfig::default()).await;
    let form = |resource_key: &str, resource: &str| {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "client_credentials")
            .append_pair("client_id", DEFAULT_CLIENT_ID)
            .append_pair("client_secret", DEFAULT_CLIENT_SECRET)
            .append_pair(resource_key, resource)
            .finish()
    };
    let ct = [("content-type", "application/x-www-form-urlencoded")];
    let v2 = send(
        &client,
        "POST",
        &emu.token_url(),
        &ct,
        &form("scope", &format!("{}/.default", emu.audience())),
    )
    .await;
    assert_eq!(v2.status, 200, "{}", v2.text());
    assert!(v2.json()["expires_in"].is_u64());
    let v1 = send(
        &client,
        "POST",
        &emu.token_url_v1(),
        &ct,
        &form("resource", &emu.audience()),
    )
    .await;
    assert_eq!(v1.status, 200, "{}", v1.text());
    assert!(v1.json()["expires_in"].is_string());
    // Both parse with the protocol's parser.
    for answer in [&v2, &v1] {
        let response = http::Response::builder()
            .status(answer.status)
            .body(answer.body.clone())
            .unwrap();
        let parsed = ta_protocol::aad::parse_token_response(&response).unwrap();
        assert_eq!(parsed.expires_in, Duration::from_secs(3600));
    }
    // The tenant id works in the URL too.
    let by_id = emu.token_url().replace(DEFAULT_TENANT, DEFAULT_TENANT_ID);
    let answer = send(
        &client,
        "POST",
        &by_id,
        &ct,
        &form("scope", &format!("{}/.default", emu.audience())),
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(emu.stats().aad_tokens_issued, 3);
}

#[tokio::test]
async fn aad_errors_carry_real_aadsts_codes() {
    let (emu, client) = start(EmulatorConfig::default()).await;
    let scope = format!("{}/.default", emu.audience());
    let ct = [("content-type", "application/x-www-form-urlencoded")];
    type Case<'a> = (String, Vec<(&'a str, &'a str)>, u16, &'a str, u64);
    let cases: Vec<Case<'_>> = vec![
        (
            emu.token_url(),
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", DEFAULT_CLIENT_ID),
                ("client_secret", "wrong"),
                ("scope", &scope),
            ],
            401,
            "invalid_client",
            7_000_215,
        ),
        (
            emu.token_url(),
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "nobody"),
                ("client_secret", "x"),
                ("scope", &scope),
            ],
            400,
            "unauthorized_client",
            700_016,
        ),
        (
            emu.token_url(),
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", DEFAULT_CLIENT_ID),
                ("client_secret", DEFAULT_CLIENT_SECRET),
                ("scope", "https://other.example/.default"),
            ],
            400,
            "invalid_resource",
            500_011,
        ),
        (
            emu.token_url(),
            vec![("grant_type", "password"), ("client_id", DEFAULT_CLIENT_ID)],
            400,
            "unsupported_grant_type",
            70_003,
        ),
        (
            emu.token_url(),
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", DEFAULT_CLIENT_ID),
                ("scope", &scope),
            ],
            400,
            "invalid_client",
            7_000_218,
        ),
        (
            emu.token_url().replace(DEFAULT_TENANT, "fabrikam"),
            vec![("grant_type", "client_credentials")],
            400,
            "invalid_request",
            90_002,
        ),
    ];
    for (url, pairs, status, error, code) in cases {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        let answer = send(&client, "POST", &url, &ct, &body).await;
        assert_eq!(answer.status, status, "{}", answer.text());
        let response = http::Response::builder()
            .status(answer.status)
            .body(answer.body.clone())
            .unwrap();
        let err = ta_protocol::aad::parse_token_response(&response).unwrap_err();
        assert_eq!(err.error_code(), Some(error));
        assert_eq!(err.aadsts(), Some(code));
    }
    assert_eq!(emu.stats().aad_tokens_issued, 0);
}

#[tokio::test]
async fn applications_challenge_then_link() {
    let (emu, client) = start(EmulatorConfig::default()).await;
    let url = api(
        &emu,
        &format!("/platformservice/v1/applications?{ENDPOINT_Q}"),
    );
    let answer = get(&client, &url, &[]).await;
    assert_eq!(answer.status, 401);
    let challenges =
        ta_protocol::parse_challenges(answer.header("www-authenticate").unwrap().as_bytes())
            .unwrap();
    assert!(challenges[0].is_scheme("Bearer"));
    assert_eq!(
        challenges[0].param("resource_id"),
        Some(emu.audience().as_str())
    );

    let token = aad_token(&emu, &client).await;
    let answer = get(&client, &url, &[("authorization", &bearer(&token))]).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(
        answer.json()["_links"]["service:application"]["href"],
        "/platformservice/v1/applications/1627259584?endpointId=sip%3ahelpdesk%40contoso.com"
    );

    // An endpoint the tenant did not register.
    let other = api(
        &emu,
        "/platformservice/v1/applications?endpointId=sip:sales@contoso.com",
    );
    let answer = get(&client, &other, &[("authorization", &bearer(&token))]).await;
    assert_eq!(answer.status, 403);
    assert_eq!(answer.json()["subcode"], "ApplicationNotFound");

    // A garbage token, and an expired one.
    let answer = get(&client, &url, &[("authorization", "Bearer not.a.jwt")]).await;
    assert_eq!(answer.status, 401);
    assert!(
        answer
            .header("www-authenticate")
            .unwrap()
            .contains("invalid_token")
    );
    emu.advance_clock(Duration::from_secs(3601));
    let answer = get(&client, &url, &[("authorization", &bearer(&token))]).await;
    assert_eq!(answer.status, 401);
    assert!(answer.text().contains("expired"));
}

#[tokio::test]
async fn consent_is_enforced() {
    let config = EmulatorConfig::default().with_app(|app| app.consented = false);
    let (emu, client) = start(config).await;
    let token = aad_token(&emu, &client).await;
    let url = api(
        &emu,
        &format!("/platformservice/v1/applications?{ENDPOINT_Q}"),
    );
    let answer = get(&client, &url, &[("authorization", &bearer(&token))]).await;
    assert_eq!(answer.status, 403);
    assert_eq!(answer.json()["subcode"], "ApplicationNotConsented");
}

#[tokio::test]
async fn capabilities_list_only_what_was_consented() {
    let (emu, client) = start(EmulatorConfig::default()).await;
    let token = aad_token(&emu, &client).await;
    let url = api(
        &emu,
        &format!("/platformService/v1/applications/1627259584?{ENDPOINT_Q}"),
    );
    let answer = get(&client, &url, &[("authorization", &bearer(&token))]).await;
    assert_eq!(answer.status, 200);
    let app: hal_model::Application = hal_model::from_slice(&answer.body).unwrap();
    assert!(app.anon_application_tokens().is_some());
    assert!(
        app.communication()
            .unwrap()
            .link("startMessaging")
            .is_some()
    );
    assert!(app.adhoc_meetings().is_some());

    let config = EmulatorConfig::default().with_app(|app| app.endpoints[0].anon_tokens = false);
    let (emu, client) = start(config).await;
    let token = aad_token(&emu, &client).await;
    let url = api(
        &emu,
        &format!("/platformservice/v1/applications/1627259584?{ENDPOINT_Q}"),
    );
    let answer = get(&client, &url, &[("authorization", &bearer(&token))]).await;
    let app: hal_model::Application = hal_model::from_slice(&answer.body).unwrap();
    assert!(app.anon_application_tokens().is_none());
    let minted = mint(&emu, &client, &token, "s-1", "https://contoso.com").await;
    assert_eq!(minted.status, 403);
    assert_eq!(minted.json()["subcode"], "AnonymousTokensNotConsented");
}

#[tokio::test]
async fn mint_answers_as_the_seed_does() {
    let (emu, client) = start(EmulatorConfig::default()).await;
    let token = aad_token(&emu, &client).await;
    let answer = mint(
        &emu,
        &client,
        &token,
        "session-1",
        "https://contoso.com;https://litware.com",
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let minted: hal_model::AnonApplicationToken = hal_model::from_slice(&answer.body).unwrap();
    assert!(minted.token.expose().starts_with("psat=eyJ"));
    let discover = minted.discover().unwrap().absolute().unwrap();
    assert_eq!(discover.host_str(), Some("127.0.0.1"));
    assert!(
        discover
            .query()
            .unwrap()
            .starts_with("anonymousContext=psat%253deyJ")
    );
    let self_url = minted.self_link().unwrap().absolute().unwrap();
    assert_eq!(self_url.host_str(), Some("[::1]"));
    let lifetime = minted.expiry_time.instant() - time::OffsetDateTime::now_utc();
    assert!(lifetime > time::Duration::hours(7) && lifetime <= time::Duration::hours(8));
    assert_eq!(emu.stats().psat_tokens_minted, 1);
}

#[tokio::test]
async fn mint_refuses_bad_bodies_precisely() {
    let (emu, client) = start(EmulatorConfig::default()).await;
    let token = aad_token(&emu, &client).await;
    let long_origins = vec!["https://a-very-long-host-name.example.com"; 13].join(";");
    for (session, origins, needle) in [
        ("", "https://contoso.com", "1 to 100"),
        (&"x".repeat(101)[..], "https://contoso.com", "1 to 100"),
        ("s", "", "at least one origin"),
        ("s", "https://contoso.com/page", "no path"),
        ("s", "contoso.com", "scheme://host"),
        ("s", "ftp://contoso.com", "http or https"),
        ("s", &long_origins[..], "at most 500"),
    ] {
        let answer = mint(&emu, &client, &token, session, origins).await;
        assert_eq!(
            answer.status,
            400,
            "{session:?} {origins:?}: {}",
            answer.text()
        );
        assert!(
            answer.text().contains(needle),
            "{needle}: {}",
            answer.text()
        );
    }
    let url = api(
        &emu,
        &format!("/platformservice/v1/applications/1627259584/anonApplicationTokens?{ENDPOINT_Q}"),
    );
    let auth = bearer(&token);
    let answer = send(
        &client,
        "POST",
        &url,
        &[("authorization", &auth), ("content-type", "text/plain")],
        "{}",
    )
    .await;
    assert_eq!(answer.status, 415);
    let answer = send(
        &client,
        "POST",
        &url,
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        "{\"applicationSessionId\": 5",
    )
    .await;
    assert_eq!(answer.status, 400);
    let answer = send(
        &client,
        "POST",
        &url,
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        r#"{"allowedOrigins":"https://a.com"}"#,
    )
    .await;
    assert!(answer.text().contains("applicationSessionId is required"));
    // Without a token: the challenge.
    let answer = send(
        &client,
        "POST",
        &url,
        &[("content-type", "application/json")],
        "{}",
    )
    .await;
    assert_eq!(answer.status, 401);
}

#[tokio::test]
async fn a_session_id_reused_differently_is_a_conflict() {
    let (emu, client) =
        start(EmulatorConfig::default().with_psat_lifetime(std::time::Duration::from_secs(60)))
            .await;
    let token = aad_token(&emu, &client).await;
    assert_eq!(
        mint(&emu, &client, &token, "same", "https://contoso.com")
            .await
            .status,
        200
    );
    // The same mint again (a retry) is accepted.
    assert_eq!(
        mint(&emu, &client, &token, "same", "https://contoso.com")
            .await
            .status,
        200
    );
    let answer = mint(&emu, &client, &token, "same", "https://litware.com").await;
    assert_eq!(answer.status, 409);
    assert_eq!(answer.json()["subcode"], "AlreadyExists");
    // Once its token has expired, the session id is forgotten.
    emu.advance_clock(std::time::Duration::from_secs(61));
    let answer = mint(&emu, &client, &token, "same", "https://litware.com").await;
    assert_eq!(answer.status, 200, "{}", answer.text());
}

async fn minted_discover_link(emu: &Emulator, client: &HttpClient, origins: &str) -> String {
    let token = aad_token(emu, client).await;
    let answer = mint(emu, client, &token, "cors-session", origins).await;
    let minted: hal_model::AnonApplicationToken = hal_model::from_slice(&answer.body).unwrap();
    minted.discover().unwrap().href.clone()
}

#[tokio::test]
async fn anonymous_discovery_answers_cors_only_for_minted_origins() {
    let (emu, client) = start(EmulatorConfig::default()).await;
    let link = minted_discover_link(&emu, &client, "https://contoso.com;https://litware.com").await;

    let answer = get(&client, &link, &[("origin", "https://litware.com")]).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(
        answer.header("access-control-allow-origin"),
        Some("https://litware.com")
    );
    assert!(
        answer.headers.get_all("vary").iter().any(|v| v
            .to_str()
            .unwrap()
            .to_ascii_lowercase()
            .contains("origin"))
    );
    let body = answer.json();
    assert_eq!(
        body["_links"]["anonApplications"]["href"],
        "/ucwa/psanon/v1/applications"
    );

    for other in [
        "http://litware.com",
        "https://litware.com:8443",
        "https://www.litware.com",
        "https://evil.example",
    ] {
        let answer = get(&client, &link, &[("origin", other)]).await;
        assert_eq!(answer.status, 200);
        assert_eq!(
            answer.header("access-control-allow-origin"),
            None,
            "{other}"
        );
    }

    // The preflight.
    let preflight = send(
        &client,
        "OPTIONS",
        &link,
        &[
            ("origin", "https://contoso.com"),
            ("access-control-request-method", "GET"),
            ("access-control-request-headers", "client-request-id"),
        ],
        "",
    )
    .await;
    assert!(preflight.status < 300, "{}", preflight.status);
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some("https://contoso.com")
    );
    assert!(
        preflight
            .header("access-control-allow-methods")
            .unwrap()
            .contains("GET")
    );
    let refused = send(
        &client,
        "OPTIONS",
        &link,
        &[
            ("origin", "https://evil.example"),
            ("access-control-request-method", "GET"),
        ],
        "",
    )
    .await;
    assert_eq!(refused.header("access-control-allow-origin"), None);
    assert!(emu.stats().requests(Route::Preflight) >= 2);
}

#[tokio::test]
async fn the_widget_side_can_be_plain_http_on_loopback_and_serves_only_the_widget() {
    let (emu, client) = start(EmulatorConfig::default().with_widget_http()).await;
    let widget = emu.widget_addr().unwrap();
    assert!(widget.ip().is_loopback());
    assert_ne!(widget.port(), emu.addr().port());
    let link = minted_discover_link(&emu, &client, "http://127.0.0.1:3000").await;
    assert!(
        link.starts_with(&format!(
            "http://127.0.0.1:{}/platformservice/discover?anonymousContext=psat%253d",
            widget.port()
        )),
        "{link}"
    );
    let answer = get(&client, &link, &[("origin", "http://127.0.0.1:3000")]).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(
        answer.header("access-control-allow-origin"),
        Some("http://127.0.0.1:3000")
    );
    assert_eq!(
        answer.json()["_links"]["anonApplications"]["href"],
        "/ucwa/psanon/v1/applications"
    );
    assert_eq!(emu.stats().requests(Route::AnonymousDiscovery), 1);
    // Nothing the SA calls is served there: not discovery, AAD or the API.
    let base = format!("http://{widget}");
    for (method, path) in [
        ("GET", "/platformservice/discover".to_owned()),
        ("POST", format!("/{DEFAULT_TENANT}/oauth2/v2.0/token")),
        (
            "GET",
            format!("/platformservice/v1/applications?{ENDPOINT_Q}"),
        ),
    ] {
        let answer = send(&client, method, &format!("{base}{path}"), &[], "").await;
        assert_eq!(answer.status, 404, "{method} {path}");
    }
    // Its counters are there too, for tests that drive a browser.
    let stats = get(&client, &format!("{base}/_emulator/stats"), &[]).await;
    assert_eq!(stats.status, 200);
    assert_eq!(stats.json()["psat_tokens_minted"], 1);
    // The main listener still answers the anonymous discovery too.
    let https = link.replace(&base, &format!("https://127.0.0.1:{}", emu.addr().port()));
    assert_eq!(get(&client, &https, &[]).await.status, 200);
}

#[tokio::test]
async fn anonymous_discovery_checks_the_token() {
    let (emu, client) =
        start(EmulatorConfig::default().with_psat_lifetime(Duration::from_secs(60))).await;
    let link = minted_discover_link(&emu, &client, "https://contoso.com").await;
    // Encoded once only: refused (the link must be used as given).
    let once = link.replacen("psat%253d", "psat%3d", 1);
    assert_eq!(get(&client, &once, &[]).await.status, 401);
    // A forged signature.
    let forged = format!("{}x", &link[..link.len() - 4]);
    assert_eq!(get(&client, &forged, &[]).await.status, 401);
    // Expired.
    assert_eq!(get(&client, &link, &[]).await.status, 200);
    emu.advance_clock(Duration::from_secs(61));
    let answer = get(&client, &link, &[("origin", "https://contoso.com")]).await;
    assert_eq!(answer.status, 401);
    assert!(answer.text().contains("expired"));
    assert_eq!(answer.header("access-control-allow-origin"), None);
}

#[tokio::test]
async fn stats_count_routes_connections_and_handshakes() {
    let (emu, client) = start(EmulatorConfig::default()).await;
    for _ in 0..3 {
        assert_eq!(get(&client, &emu.discover_url(), &[]).await.status, 200);
    }
    let answer = get(&client, &disco(&emu, "/_emulator/stats"), &[]).await;
    let stats: StatsSnapshot = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(stats.requests_with_status(Route::Discovery, 200), 3);
    // One pooled connection served all four requests.
    assert_eq!(stats.connections_accepted, 1);
    assert_eq!(stats.tls_handshakes, 1);
    assert_eq!(
        get(&client, &disco(&emu, "/nothing/here"), &[])
            .await
            .status,
        404
    );
    assert_eq!(emu.stats().requests(Route::NotFound), 1);
}

#[tokio::test]
async fn plain_http_is_an_option() {
    let (emu, client) = start(EmulatorConfig::default().with_plain_http()).await;
    assert!(emu.ca_pem().is_none());
    assert!(emu.discover_url().starts_with("http://127.0.0.1:"));
    let answer = get(&client, &emu.discover_url(), &[]).await;
    assert_eq!(answer.status, 200);
    assert_eq!(emu.stats().tls_handshakes, 0);
}

#[tokio::test]
async fn only_loopback_addresses_are_bound() {
    let config = EmulatorConfig::default().with_listen("0.0.0.0:0".parse().unwrap());
    let err = Emulator::start(config).await.unwrap_err();
    assert!(err.to_string().contains("loopback"), "{err}");
}

#[tokio::test]
async fn config_loads_from_toml() {
    let config = EmulatorConfig::from_toml(
        r#"
        tenant = "fabrikam"
        psat_lifetime_secs = 600
        [quirks]
        namespace = "rtc-saas"
        expiry = "microsoft-json"
        bom = true
        path_casing = "camel"
        endpoint_id = "raw"
        [[applications]]
        client_id = "app-1"
        client_secret = "s"
        application_id = "42"
        endpoints = [{ sip = "sip:desk@fabrikam.com" }]
        "#,
    )
    .unwrap();
    assert_eq!(config.tenant, "fabrikam");
    assert_eq!(config.quirks.namespace, RelNamespace::RtcSaas);
    assert!(config.applications[0].endpoints[0].anon_tokens);
    assert!(format!("{config:?}").contains("<redacted>"));
    let err = EmulatorConfig::from_toml("tenant = 5").unwrap_err();
    assert!(err.to_string().contains("tenant"), "{err}");
    let err = EmulatorConfig::from_toml(
        "[[applications]]\nclient_id = \"a\"\napplication_id = \"1\"\nendpoints = []",
    )
    .unwrap_err();
    assert!(err.to_string().contains("neither a client secret"), "{err}");
    // A wrong value is named by its line, and no secret is quoted.
    for (text, secret) in [
        (
            "tenant = \"x\"\n[[applications]]\nclient_id = \"a\"\nclient_secret = 123456789\n",
            "123456789",
        ),
        (
            "[[applications]]\nclient_id = \"a\"\ncertificate_pem = [\"SENTINEL-pem\"]\n",
            "SENTINEL-pem",
        ),
    ] {
        let err = EmulatorConfig::from_toml(text).unwrap_err().to_string();
        assert!(!err.contains(secret), "{err}");
        assert!(err.contains("line "), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }
}
