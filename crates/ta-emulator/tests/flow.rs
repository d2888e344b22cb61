//! `ta-protocol`'s flows driven over real HTTPS against the emulator, in
//! every quirk setting.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

mod support;

use std::sync::Arc;
use std::time::Instant;

use support::*;
use ta_emulator::*;
use ta_protocol::aad::{ClientCredential, ClientId, TokenEndpoint, TokenError};
use ta_protocol::*;

/// A sequential driver with an AAD client-credentials token source.
async fn drive<T>(
    mut flow: Flow<T>,
    transport: &TestTransport,
    emulator: &Emulator,
    aad_requests: &mut u32,
) -> Result<T, Error>
where
    Flow<T>: Driveable<T>,
{
    let mut ids = SeededEntropy::new(99);
    loop {
        match flow.poll_output(Instant::now()) {
            Some(Output::Transmit(t)) => {
                let (id, request) = t.into_parts();
                match transport.send(request).await {
                    Ok(response) => flow.handle_response(id, response, Instant::now()).unwrap(),
                    Err(e) => flow.handle_transport_error(id, e, Instant::now()).unwrap(),
                }
            }
            Some(Output::NeedToken(need)) => {
                *aad_requests += 1;
                let endpoint = TokenEndpoint::parse(&emulator.token_url(), false).unwrap();
                let request = aad::token_request(
                    &endpoint,
                    &ClientId::new(DEFAULT_CLIENT_ID).unwrap(),
                    &need.audience,
                    &ClientCredential::Secret(ClientSecret::new(DEFAULT_CLIENT_SECRET)),
                    &ids.client_request_id(),
                );
                let token = match transport.send(request).await {
                    Ok(response) => aad::parse_token_response(&response)
                        .map(|t| t.access_token)
                        .map_err(TokenError::from),
                    Err(e) => Err(TokenError::from(e)),
                };
                flow.handle_token(token, std::time::Instant::now()).unwrap();
            }
            Some(Output::Timeout(at)) => tokio::time::sleep_until(at.into()).await,
            Some(Output::Done(result)) => return result,
            Some(_) => panic!("unexpected output"),
            None => panic!("stuck"),
        }
    }
}

fn protocol_config(emulator: &Emulator) -> Arc<Config> {
    Config::builder(&emulator.discover_url(), DEFAULT_ENDPOINT)
        .build()
        .unwrap()
        .into_shared()
}

fn request(origins: &str) -> MintRequest {
    MintRequest::new(
        ApplicationSessionId::new(format!("s-{origins}")).unwrap(),
        AllowedOrigins::parse_list(origins, OriginPolicy::default()).unwrap(),
    )
}

async fn whole_flow(quirks: Quirks) {
    let (emu, client) = start(EmulatorConfig::default().with_quirks(quirks)).await;
    let transport = TestTransport(client);
    let config = protocol_config(&emu);
    let mut aad = 0;
    let done = drive(
        Flow::bootstrap(
            Arc::clone(&config),
            request("https://contoso.com"),
            None,
            Box::new(SeededEntropy::new(1)),
        ),
        &transport,
        &emu,
        &mut aad,
    )
    .await
    .unwrap_or_else(|e| panic!("{quirks:?}: {e}"));
    assert_eq!(aad, 1);
    assert!(done.token.token.expose().starts_with("psat="));
    let expected_ns = match quirks.namespace {
        RelNamespace::Service => hal_model::Namespace::Service,
        RelNamespace::RtcSaas => hal_model::Namespace::RtcSaas,
    };
    assert_eq!(done.capabilities.discovery.namespace, Some(expected_ns));
    // Discovery, the challenge, applications, application, mint.
    let stats = emu.stats();
    assert_eq!(stats.requests(Route::Discovery), 1);
    assert_eq!(stats.requests_with_status(Route::Applications, 401), 1);
    assert_eq!(stats.requests_with_status(Route::Applications, 200), 1);
    assert_eq!(stats.requests_with_status(Route::Application, 200), 1);
    assert_eq!(stats.requests_with_status(Route::Mint, 200), 1);
    assert_eq!(stats.aad_tokens_issued, 1);

    // The chat client's step, with the minted link.
    let origin = Origin::parse("https://contoso.com", OriginPolicy::default()).unwrap();
    let anon = drive(
        Flow::anonymous_discovery(
            config,
            done.token.discover_url.clone(),
            origin,
            Box::new(SeededEntropy::new(2)),
        ),
        &transport,
        &emu,
        &mut aad,
    )
    .await
    .unwrap();
    assert!(anon.cors_allows_origin());
    assert_eq!(
        anon.anon_applications.path(),
        "/ucwa/psanon/v1/applications"
    );
}

#[tokio::test]
async fn default_deployment() {
    whole_flow(Quirks::default()).await;
}

#[tokio::test]
async fn rtc_saas_namespace() {
    whole_flow(Quirks {
        namespace: RelNamespace::RtcSaas,
        ..Quirks::default()
    })
    .await;
}

#[tokio::test]
async fn microsoft_json_expiry() {
    whole_flow(Quirks {
        expiry: ExpiryStyle::MicrosoftJson,
        ..Quirks::default()
    })
    .await;
}

#[tokio::test]
async fn bom_on_every_body() {
    whole_flow(Quirks {
        bom: true,
        ..Quirks::default()
    })
    .await;
}

#[tokio::test]
async fn camel_cased_paths() {
    whole_flow(Quirks {
        path_casing: PathCasing::Camel,
        ..Quirks::default()
    })
    .await;
}

#[tokio::test]
async fn raw_and_encoded_endpoint_ids() {
    whole_flow(Quirks {
        endpoint_id: EndpointIdStyle::Raw,
        ..Quirks::default()
    })
    .await;
    whole_flow(Quirks {
        endpoint_id: EndpointIdStyle::Encoded,
        ..Quirks::default()
    })
    .await;
}

#[tokio::test]
async fn everything_old_at_once() {
    whole_flow(Quirks {
        namespace: RelNamespace::RtcSaas,
        expiry: ExpiryStyle::MicrosoftJson,
        bom: true,
        path_casing: PathCasing::Camel,
        endpoint_id: EndpointIdStyle::Encoded,
    })
    .await;
}

#[tokio::test]
async fn discovery_behind_a_token() {
    let (emu, client) = start(EmulatorConfig::default().with_discovery_requiring_token()).await;
    let transport = TestTransport(client);
    let mut aad = 0;
    drive(
        Flow::bootstrap(
            protocol_config(&emu),
            request("https://contoso.com"),
            None,
            Box::new(SeededEntropy::new(3)),
        ),
        &transport,
        &emu,
        &mut aad,
    )
    .await
    .unwrap();
    assert_eq!(aad, 1);
    // The token got at discovery is sent at once to the API: no challenge.
    assert_eq!(
        emu.stats().requests_with_status(Route::Applications, 401),
        0
    );
}

#[tokio::test]
async fn the_protocol_reports_application_not_found() {
    let (emu, client) = start(EmulatorConfig::default()).await;
    let transport = TestTransport(client);
    let config = Config::builder(&emu.discover_url(), "sip:nobody@contoso.com")
        .build()
        .unwrap()
        .into_shared();
    let mut aad = 0;
    let err = drive(
        Flow::bootstrap(
            config,
            request("https://contoso.com"),
            None,
            Box::new(SeededEntropy::new(4)),
        ),
        &transport,
        &emu,
        &mut aad,
    )
    .await
    .unwrap_err();
    let api = err.api_error().unwrap();
    assert_eq!(api.kind(), ApiErrorKind::ApplicationNotFound);
    assert!(api.correlation.correlation_id.is_some());
    assert_eq!(
        api.correlation.server_fqdn.as_deref(),
        Some("ta-emulator.loopback.invalid")
    );
}

#[tokio::test]
async fn an_expired_cached_token_is_replaced() {
    let (emu, client) = start(EmulatorConfig::default()).await;
    let transport = TestTransport(client);
    let config = protocol_config(&emu);
    let mut aad = 0;
    let first = drive(
        Flow::bootstrap(
            Arc::clone(&config),
            request("https://contoso.com"),
            None,
            Box::new(SeededEntropy::new(5)),
        ),
        &transport,
        &emu,
        &mut aad,
    )
    .await
    .unwrap();
    let stale = aad_token(&emu, &transport.0).await;
    emu.advance_clock(std::time::Duration::from_secs(3601));
    let token = drive(
        Flow::mint(
            config,
            &first.capabilities,
            request("https://litware.com"),
            Some(AccessToken::new(stale)),
            Box::new(SeededEntropy::new(6)),
        ),
        &transport,
        &emu,
        &mut aad,
    )
    .await
    .unwrap();
    assert!(token.token.expose().starts_with("psat="));
    assert_eq!(aad, 2);
    assert_eq!(emu.stats().requests_with_status(Route::Mint, 401), 1);
}
