//! Every injectable fault, seen by a raw client and by the protocol.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use support::*;
use ta_emulator::*;
use ta_protocol::aad::{ClientCredential, ClientId, TokenEndpoint};
use ta_protocol::{
    AccessToken, AllowedOrigins, ApiErrorKind, ApplicationSessionId, Config, Driveable, Error,
    Flow, MintRequest, OriginPolicy, Output, SeededEntropy, ServerErrorKind, Transport,
    UntrustedReason,
};

async fn drive<T>(mut flow: Flow<T>, emu: &Emulator, transport: &TestTransport) -> Result<T, Error>
where
    Flow<T>: Driveable<T>,
{
    let mut ids = SeededEntropy::new(5);
    loop {
        match flow.poll_output(Instant::now()) {
            Some(Output::Transmit(t)) => {
                let (id, request) = t.into_parts();
                match transport.send(request).await {
                    Ok(r) => flow.handle_response(id, r, Instant::now()).unwrap(),
                    Err(e) => flow.handle_transport_error(id, e, Instant::now()).unwrap(),
                }
            }
            Some(Output::NeedToken(need)) => {
                let request = ta_protocol::aad::token_request(
                    &TokenEndpoint::parse(&emu.token_url(), false).unwrap(),
                    &ClientId::new(DEFAULT_CLIENT_ID).unwrap(),
                    &need.audience,
                    &ClientCredential::Secret(ta_protocol::ClientSecret::new(
                        DEFAULT_CLIENT_SECRET,
                    )),
                    &ta_protocol::Entropy::client_request_id(&mut ids),
                );
                let response = transport.send(request).await.unwrap();
                let token = ta_protocol::aad::parse_token_response(&response)
                    .map(|t| t.access_token)
                    .map_err(Into::into);
                flow.handle_token(token, std::time::Instant::now()).unwrap();
            }
            Some(Output::Timeout(at)) => tokio::time::sleep_until(at.into()).await,
            Some(Output::Done(result)) => return result,
            Some(_) => panic!("unexpected output"),
            None => panic!("stuck"),
        }
    }
}

fn bootstrap(emu: &Emulator) -> Flow<ta_protocol::Bootstrapped> {
    let config: Arc<Config> = Config::builder(&emu.discover_url(), DEFAULT_ENDPOINT)
        .build()
        .unwrap()
        .into_shared();
    let request = MintRequest::new(
        ApplicationSessionId::new("fault-session").unwrap(),
        AllowedOrigins::parse_list("https://contoso.com", OriginPolicy::default()).unwrap(),
    );
    Flow::bootstrap(config, request, None, Box::new(SeededEntropy::new(9)))
}

async fn with_fault(rule: FaultRule) -> (Emulator, HttpClient) {
    start(EmulatorConfig::default().with_fault(rule)).await
}

#[tokio::test]
async fn status_faults_with_retry_after() {
    for (status, retry_after) in [(503, Some(2)), (429, Some(1)), (500, None), (502, None)] {
        let (emu, client) = with_fault(FaultRule::on(
            Route::Discovery,
            FaultKind::Status {
                status,
                retry_after_secs: retry_after,
            },
            Trigger::Once,
        ))
        .await;
        let answer = get(&client, &emu.discover_url(), &[]).await;
        assert_eq!(answer.status, status);
        assert_eq!(
            answer.header("retry-after").map(str::to_owned),
            retry_after.map(|s| s.to_string())
        );
        assert!(answer.header("x-ms-correlation-id").is_some());
        assert_eq!(
            get(&client, &emu.discover_url(), &[]).await.status,
            200,
            "fires once"
        );
        let stats = emu.stats();
        assert_eq!(stats.faults_fired[&format!("status_{status}")], 1);
        assert_eq!(stats.requests_with_status(Route::Discovery, status), 1);
    }
}

#[tokio::test]
async fn faults_apply_to_the_chat_routes_too() {
    // The keys document stands for the routes the token flow never takes:
    // a rule on its route fires, and is counted under it.
    let (emu, client) = with_fault(FaultRule::on(
        Route::Keys,
        FaultKind::Status {
            status: 503,
            retry_after_secs: None,
        },
        Trigger::Once,
    ))
    .await;
    assert_eq!(
        get(&client, &emu.callback_keys_url(), &[]).await.status,
        503
    );
    assert_eq!(
        get(&client, &emu.callback_keys_url(), &[]).await.status,
        200
    );
    let stats = emu.stats();
    assert_eq!(stats.requests_with_status(Route::Keys, 503), 1);
    assert_eq!(stats.faults_fired["status_503"], 1);
    // A rule on the SA's chat calls fires on them, before the handler (no
    // token needed to see it).
    let (emu, client) = with_fault(FaultRule::on(
        Route::ChatCall,
        FaultKind::Status {
            status: 502,
            retry_after_secs: None,
        },
        Trigger::Always,
    ))
    .await;
    let url = api(
        &emu,
        "/platformservice/v1/applications/1/communication/messaginginvitations",
    );
    let answer = send(
        &client,
        "POST",
        &url,
        &[("content-type", "application/json")],
        "{}",
    )
    .await;
    assert_eq!(answer.status, 502);
    assert_eq!(emu.stats().requests_with_status(Route::ChatCall, 502), 1);
}

#[tokio::test]
async fn the_protocol_waits_out_a_503_on_the_mint_and_keeps_the_session_id() {
    let (emu, client) = with_fault(FaultRule::on(
        Route::Mint,
        FaultKind::Status {
            status: 503,
            retry_after_secs: Some(1),
        },
        Trigger::Once,
    ))
    .await;
    let started = Instant::now();
    let done = drive(bootstrap(&emu), &emu, &TestTransport(client))
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(done.token.session_id.as_str(), "fault-session");
    let stats = emu.stats();
    assert_eq!(stats.requests_with_status(Route::Mint, 503), 1);
    assert_eq!(stats.requests_with_status(Route::Mint, 200), 1);
}

#[tokio::test]
async fn added_latency() {
    let (emu, client) = with_fault(FaultRule::on(
        Route::Discovery,
        FaultKind::Latency { millis: 150 },
        Trigger::Always,
    ))
    .await;
    let started = Instant::now();
    assert_eq!(get(&client, &emu.discover_url(), &[]).await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(emu.stats().faults_fired["latency"], 1);
}

async fn raw_request(client: &HttpClient, url: &str) -> Result<bytes::Bytes, String> {
    let request = http::Request::get(url)
        .body(Full::new(bytes::Bytes::new()))
        .unwrap();
    let response = client
        .request(request)
        .await
        .map_err(|e| format!("request: {e}"))?;
    response
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .map_err(|e| format!("body: {e}"))
}

#[tokio::test]
async fn a_connection_closed_before_the_answer() {
    let (emu, client) = with_fault(FaultRule::on(
        Route::Discovery,
        FaultKind::CloseBeforeResponse,
        Trigger::Once,
    ))
    .await;
    let err = raw_request(&client, &emu.discover_url()).await.unwrap_err();
    assert!(err.starts_with("request"), "{err}");
    // The next request, on a new connection, is answered.
    assert!(raw_request(&client, &emu.discover_url()).await.is_ok());
    let stats = emu.stats();
    assert_eq!(stats.faults_fired["close_before_response"], 1);
    assert_eq!(stats.connections_accepted, 2);
    assert_eq!(
        stats.requests_with_status(Route::Discovery, 0),
        1,
        "counted as unanswered"
    );
    assert_eq!(stats.requests_with_status(Route::Discovery, 200), 1);
}

#[tokio::test]
async fn a_connection_closed_in_the_middle_of_the_body() {
    let (emu, client) = with_fault(FaultRule::on(
        Route::Discovery,
        FaultKind::CloseMidBody,
        Trigger::Once,
    ))
    .await;
    let err = raw_request(&client, &emu.discover_url()).await.unwrap_err();
    assert!(err.starts_with("body"), "{err}");
    assert!(raw_request(&client, &emu.discover_url()).await.is_ok());
}

#[tokio::test]
async fn truncated_and_malformed_bodies_are_server_errors_with_paths() {
    let (emu, client) = with_fault(FaultRule::on(
        Route::Application,
        FaultKind::TruncatedBody,
        Trigger::Always,
    ))
    .await;
    let err = drive(bootstrap(&emu), &emu, &TestTransport(client))
        .await
        .unwrap_err();
    let Error::Server(server) = &err else {
        panic!("{err:?}")
    };
    let ServerErrorKind::Body(parse) = &server.kind else {
        panic!("{server:?}")
    };
    assert_eq!(parse.kind(), hal_model::ParseErrorKind::Eof);

    let (emu, client) = with_fault(FaultRule::on(
        Route::Discovery,
        FaultKind::MalformedBody,
        Trigger::Always,
    ))
    .await;
    let err = drive(bootstrap(&emu), &emu, &TestTransport(client))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Server(s) if matches!(s.kind, ServerErrorKind::Body(_))),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_missing_capability_link() {
    let (emu, client) = with_fault(FaultRule::on(
        Route::Application,
        FaultKind::MissingLink {
            rel: "anonApplicationTokens".into(),
        },
        Trigger::Always,
    ))
    .await;
    let err = drive(bootstrap(&emu), &emu, &TestTransport(client))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("anonApplicationTokens"), "{err}");
    assert_eq!(emu.stats().requests(Route::Mint), 0);
    assert_eq!(emu.stats().faults_fired["missing_link"], 1);
}

#[tokio::test]
async fn a_redirect_to_another_host_gets_no_token() {
    let (emu, client) = with_fault(FaultRule::on(
        Route::Application,
        FaultKind::Redirect {
            host: "[::1]".into(),
        },
        Trigger::Always,
    ))
    .await;
    let token = aad_token(&emu, &client).await;
    let url = api(
        &emu,
        &format!("/platformservice/v1/applications/1627259584?{ENDPOINT_Q}"),
    );
    let answer = get(&client, &url, &[("authorization", &bearer(&token))]).await;
    assert_eq!(answer.status, 307);
    assert_eq!(
        answer.header("location").unwrap(),
        format!(
            "https://[::1]:{}/platformservice/v1/applications/1627259584?{ENDPOINT_Q}",
            emu.addr().port()
        )
    );
    let err = drive(bootstrap(&emu), &emu, &TestTransport(client))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Untrusted(u) if u.reason == UntrustedReason::UntrustedRedirect),
        "{err:?}"
    );
}

#[tokio::test]
async fn revoked_aad_tokens_are_refused_and_replaced() {
    let (emu, client) = start(EmulatorConfig::default()).await;
    let stale = aad_token(&emu, &client).await;
    let url = api(
        &emu,
        &format!("/platformservice/v1/applications?{ENDPOINT_Q}"),
    );
    assert_eq!(
        get(&client, &url, &[("authorization", &bearer(&stale))])
            .await
            .status,
        200
    );
    emu.inject(FaultRule::on(
        Route::Applications,
        FaultKind::RevokeAadTokens,
        Trigger::Once,
    ));
    let answer = get(&client, &url, &[("authorization", &bearer(&stale))]).await;
    assert_eq!(answer.status, 401);
    assert!(answer.text().contains("revoked"));
    // A token issued after the revocation works.
    let fresh = aad_token(&emu, &client).await;
    assert_eq!(
        get(&client, &url, &[("authorization", &bearer(&fresh))])
            .await
            .status,
        200
    );

    // The protocol, holding the revoked token, drops it and fetches another.
    let config: Arc<Config> = Config::builder(&emu.discover_url(), DEFAULT_ENDPOINT)
        .build()
        .unwrap()
        .into_shared();
    let request = MintRequest::new(
        ApplicationSessionId::new("after-revocation").unwrap(),
        AllowedOrigins::parse_list("https://contoso.com", OriginPolicy::default()).unwrap(),
    );
    let flow = Flow::bootstrap(
        config,
        request,
        Some(AccessToken::new(stale)),
        Box::new(SeededEntropy::new(1)),
    );
    drive(flow, &emu, &TestTransport(client)).await.unwrap();
}

#[tokio::test]
async fn revoked_consent() {
    let (emu, client) = with_fault(FaultRule::on(
        Route::Mint,
        FaultKind::RevokeConsent,
        Trigger::Always,
    ))
    .await;
    let err = drive(bootstrap(&emu), &emu, &TestTransport(client))
        .await
        .unwrap_err();
    assert_eq!(
        err.api_error().unwrap().kind(),
        ApiErrorKind::ConsentMissing
    );
}

#[tokio::test]
async fn triggers_are_deterministic() {
    async fn pattern(trigger: Trigger, seed: u64) -> Vec<u16> {
        let mut config = EmulatorConfig::default().with_fault(FaultRule::on(
            Route::Discovery,
            FaultKind::Status {
                status: 503,
                retry_after_secs: None,
            },
            trigger,
        ));
        config.fault_seed = seed;
        let (emu, client) = start(config).await;
        let mut statuses = Vec::new();
        for _ in 0..12 {
            statuses.push(get(&client, &emu.discover_url(), &[]).await.status);
        }
        statuses
    }
    let every_third = pattern(Trigger::EveryNth(3), 0).await;
    assert_eq!(every_third.iter().filter(|s| **s == 503).count(), 4);
    assert_eq!(every_third[2], 503);
    assert_eq!(every_third[3], 200);
    let first_two = pattern(Trigger::FirstN(2), 0).await;
    assert_eq!(&first_two[..3], [503, 503, 200]);
    let a = pattern(Trigger::Probability(0.5), 7).await;
    let b = pattern(Trigger::Probability(0.5), 7).await;
    assert_eq!(a, b, "same seed, same faults");
    assert!(a.contains(&503) && a.contains(&200), "{a:?}");
    let always = pattern(Trigger::Always, 0).await;
    assert!(always.iter().all(|s| *s == 503));
}

#[tokio::test]
async fn faults_load_from_toml_and_can_be_cleared() {
    let config = EmulatorConfig::from_toml(
        r#"
        fault_seed = 3
        [[faults]]
        route = { only = "mint" }
        trigger = { first_n = 2 }
        fault = { kind = "status", status = 429, retry_after_secs = 1 }
        [[faults]]
        route = "any"
        trigger = "always"
        fault = { kind = "latency", millis = 1 }
        "#,
    )
    .unwrap();
    assert_eq!(config.faults.len(), 2);
    let (emu, client) = start(config).await;
    assert_eq!(get(&client, &emu.discover_url(), &[]).await.status, 200);
    assert_eq!(emu.stats().faults_fired["latency"], 1);
    emu.clear_faults();
    assert_eq!(get(&client, &emu.discover_url(), &[]).await.status, 200);
    assert_eq!(emu.stats().faults_fired["latency"], 1);
}
