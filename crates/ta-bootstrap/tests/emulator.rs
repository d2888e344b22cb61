//! The orchestrator against the emulator over real TLS, with the emulator's
//! counters as the witness.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::collections::HashSet;

use ta_bootstrap::*;
use ta_emulator::{EmulatorConfig, FaultKind, FaultRule, Route, Trigger};
use ta_protocol::{ApiErrorKind, ApplicationSessionId, Error, ServerErrorKind};
use ta_test_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_bootstrapper_hit_by_1000_widgets_asks_each_upstream_once() {
    let s = setup(EmulatorConfig::default()).await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..1000 {
        let b = s.bootstrapper.clone();
        tasks.spawn(async move { b.mint(origins("https://contoso.com")).await });
    }
    let mut sessions = HashSet::new();
    while let Some(result) = tasks.join_next().await {
        let minted = result.unwrap().unwrap();
        assert!(minted.token.expose().starts_with("psat="));
        assert!(
            sessions.insert(minted.session_id.as_str().to_owned()),
            "session ids are unique"
        );
    }
    let stats = s.emulator.stats();
    assert_eq!(stats.requests(Route::Discovery), 1);
    assert_eq!(stats.aad_tokens_issued, 1);
    assert_eq!(stats.requests(Route::AadToken), 1);
    assert_eq!(
        stats.requests(Route::Applications),
        1,
        "the token is sent at once: no challenge"
    );
    assert_eq!(stats.requests(Route::Application), 1);
    assert_eq!(stats.requests_with_status(Route::Mint, 200), 1000);
    assert_eq!(stats.total_requests(), 1004);
}

#[tokio::test]
async fn warm_each_widget_token_costs_one_request() {
    let s = setup(EmulatorConfig::default()).await;
    s.bootstrapper.warm_up().await.unwrap();
    let before = s.emulator.stats();
    for _ in 0..20 {
        s.bootstrapper
            .mint(origins("https://contoso.com"))
            .await
            .unwrap();
    }
    let after = s.emulator.stats();
    assert_eq!(after.total_requests() - before.total_requests(), 20);
    assert_eq!(after.requests(Route::Mint), 20);
    assert_eq!(after.aad_tokens_issued, 1);
    // Two pooled connections (discovery host and API host), reused.
    assert_eq!(after.connections_accepted, 2);
}

#[tokio::test]
async fn a_revoked_token_is_dropped_and_replaced_once() {
    let s = setup(EmulatorConfig::default()).await;
    s.bootstrapper.warm_up().await.unwrap();
    s.emulator.inject(FaultRule::on(
        Route::Mint,
        FaultKind::RevokeAadTokens,
        Trigger::Once,
    ));
    s.bootstrapper
        .mint(origins("https://contoso.com"))
        .await
        .unwrap();
    let stats = s.emulator.stats();
    assert_eq!(stats.aad_tokens_issued, 2);
    assert_eq!(stats.requests_with_status(Route::Mint, 401), 1);
    assert_eq!(stats.requests_with_status(Route::Mint, 200), 1);
}

#[tokio::test]
async fn a_refused_cached_link_invalidates_the_capabilities_once() {
    let s = setup(EmulatorConfig::default()).await;
    s.bootstrapper.warm_up().await.unwrap();
    s.emulator.inject(FaultRule::on(
        Route::Mint,
        FaultKind::RevokeConsent,
        Trigger::Once,
    ));
    s.bootstrapper
        .mint(origins("https://contoso.com"))
        .await
        .unwrap();
    let stats = s.emulator.stats();
    assert_eq!(stats.requests(Route::Discovery), 2);
    assert_eq!(stats.requests(Route::Application), 2);
    assert_eq!(stats.requests_with_status(Route::Mint, 403), 1);
    assert_eq!(stats.requests_with_status(Route::Mint, 200), 1);

    // Refused again after the redo: the error is returned, typed.
    s.emulator.inject(FaultRule::on(
        Route::Mint,
        FaultKind::RevokeConsent,
        Trigger::Always,
    ));
    let err = s
        .bootstrapper
        .mint(origins("https://contoso.com"))
        .await
        .unwrap_err();
    let api = err.protocol().unwrap().api_error().unwrap();
    assert_eq!(api.kind(), ApiErrorKind::ConsentMissing);
    assert_eq!(s.emulator.stats().requests_with_status(Route::Mint, 403), 3);
}

#[tokio::test]
async fn transient_faults_are_ridden_out() {
    let config = EmulatorConfig::default()
        .with_fault(FaultRule::on(
            Route::Discovery,
            FaultKind::CloseBeforeResponse,
            Trigger::Once,
        ))
        .with_fault(FaultRule::on(
            Route::Application,
            FaultKind::Status {
                status: 502,
                retry_after_secs: None,
            },
            Trigger::Once,
        ))
        .with_fault(FaultRule::on(
            Route::Mint,
            FaultKind::Status {
                status: 503,
                retry_after_secs: Some(1),
            },
            Trigger::Once,
        ));
    let s = setup(config).await;
    let minted = s
        .bootstrapper
        .mint(origins("https://contoso.com"))
        .await
        .unwrap();
    let stats = s.emulator.stats();
    assert_eq!(stats.faults_fired.values().sum::<u64>(), 3);
    assert_eq!(stats.requests_with_status(Route::Mint, 503), 1);
    assert_eq!(stats.requests_with_status(Route::Mint, 200), 1);
    assert!(minted.expires_at() > std::time::SystemTime::now());
}

#[tokio::test]
async fn persistent_faults_are_typed_errors() {
    let s = setup(EmulatorConfig::default().with_fault(FaultRule::on(
        Route::Application,
        FaultKind::MissingLink {
            rel: "anonApplicationTokens".into(),
        },
        Trigger::Always,
    )))
    .await;
    let err = s
        .bootstrapper
        .mint(origins("https://contoso.com"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err.protocol(),
            Some(Error::Server(e)) if matches!(e.kind, ServerErrorKind::MissingLink { rel: "anonApplicationTokens" })
        ),
        "{err:?}"
    );
    assert_eq!(s.emulator.stats().requests(Route::Mint), 0);

    let s = setup(EmulatorConfig::default().with_fault(FaultRule::on(
        Route::Mint,
        FaultKind::Status {
            status: 503,
            retry_after_secs: None,
        },
        Trigger::Always,
    )))
    .await;
    let err = s
        .bootstrapper
        .mint(origins("https://contoso.com"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err.protocol(),
            Some(Error::RetriesExhausted { attempts: 4, .. })
        ),
        "{err:?}"
    );
    assert_eq!(s.emulator.stats().requests_with_status(Route::Mint, 503), 4);
}

#[tokio::test]
async fn a_wrong_secret_is_an_aad_error_and_is_not_hammered() {
    let s = setup_with(
        EmulatorConfig::default(),
        Credential::Secret(ta_protocol::ClientSecret::new("wrong")),
    )
    .await;
    let err = s
        .bootstrapper
        .mint(origins("https://contoso.com"))
        .await
        .unwrap_err();
    let BootstrapError::Token(ta_protocol::aad::TokenError::Aad(aad)) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(aad.aadsts(), Some(7_000_215));
    assert_eq!(s.emulator.stats().requests(Route::AadToken), 1);
    // No API request was made with no token.
    assert_eq!(s.emulator.stats().requests(Route::Applications), 0);
}

#[tokio::test]
async fn an_application_not_found_is_typed() {
    let s = setup(
        EmulatorConfig::default()
            .with_app(|app| app.endpoints[0].sip = "sip:other@contoso.com".into()),
    )
    .await;
    let err = s
        .bootstrapper
        .mint(origins("https://contoso.com"))
        .await
        .unwrap_err();
    assert_eq!(
        err.protocol().unwrap().api_error().unwrap().kind(),
        ApiErrorKind::ApplicationNotFound
    );
}

#[tokio::test]
async fn certificate_credentials_work_end_to_end() {
    let mut pem = ta_emulator::dev_client_certificate_pem()
        .unwrap()
        .to_owned();
    pem.push_str(ta_emulator::DEV_CLIENT_CERTIFICATE_KEY);
    let signer = CertificateSigner::from_pem(pem.as_bytes(), "dev").unwrap();
    assert!(!format!("{signer:?}").contains("PRIVATE"));
    let s = setup_with(
        EmulatorConfig::default()
            .with_dev_client_certificate()
            .unwrap(),
        Credential::signer(signer),
    )
    .await;
    s.bootstrapper
        .mint(origins("https://contoso.com"))
        .await
        .unwrap();
    assert_eq!(s.emulator.stats().aad_tokens_issued, 1);
}

#[tokio::test]
async fn a_given_session_id_is_used() {
    let s = setup(EmulatorConfig::default()).await;
    let id = ApplicationSessionId::new("chosen-by-caller").unwrap();
    let minted = s
        .bootstrapper
        .mint_with_session(
            origins("https://contoso.com;https://litware.com"),
            id.clone(),
        )
        .await
        .unwrap();
    assert_eq!(minted.session_id, id);
    assert_eq!(
        minted.allowed_origins.joined(),
        "https://contoso.com;https://litware.com"
    );
    let debug = format!("{minted:?}");
    assert!(!debug.contains(minted.token.expose()), "{debug}");
}

#[tokio::test]
async fn a_rotated_credential_is_used_for_the_next_aad_request() {
    let s = setup_with(
        EmulatorConfig::default()
            .with_dev_client_certificate()
            .unwrap(),
        Credential::Secret(ta_protocol::ClientSecret::new("wrong")),
    )
    .await;
    assert!(
        s.bootstrapper
            .mint(origins("https://contoso.com"))
            .await
            .is_err()
    );
    // Rotated to the right secret: the next call asks AAD with it.
    s.tokens
        .set_credential(Credential::Secret(ta_protocol::ClientSecret::new(
            ta_emulator::DEFAULT_CLIENT_SECRET,
        )));
    s.bootstrapper
        .mint(origins("https://contoso.com"))
        .await
        .unwrap();
    assert_eq!(s.emulator.stats().aad_tokens_issued, 1);
    // Rotated to a certificate: the cached token stays in use until it
    // is refreshed; the next AAD request carries an assertion.
    let mut pem = ta_emulator::dev_client_certificate_pem()
        .unwrap()
        .to_owned();
    pem.push_str(ta_emulator::DEV_CLIENT_CERTIFICATE_KEY);
    s.tokens.set_credential(Credential::signer(
        CertificateSigner::from_pem(pem.as_bytes(), "dev").unwrap(),
    ));
    assert!(matches!(
        s.tokens.credential().as_ref(),
        Credential::Certificate(_)
    ));
    s.bootstrapper
        .mint(origins("https://contoso.com"))
        .await
        .unwrap();
    assert_eq!(s.emulator.stats().requests(Route::AadToken), 2);
    let audience = ta_protocol::Audience::for_discover_url(
        &url::Url::parse(&s.emulator.discover_url()).unwrap(),
    );
    let old = s.tokens.cached(&audience).unwrap();
    s.tokens.invalidate(&audience, &old);
    s.bootstrapper
        .mint(origins("https://contoso.com"))
        .await
        .unwrap();
    assert_eq!(s.emulator.stats().aad_tokens_issued, 2);
}

#[tokio::test]
async fn a_busy_answer_s_retry_after_reaches_the_caller() {
    // A wait longer than the retry budget: the mint gives up at once, and
    // the caller learns how long the API asked it to stay away.
    let s = setup(EmulatorConfig::default().with_fault(FaultRule::on(
        Route::Mint,
        FaultKind::Status {
            status: 503,
            retry_after_secs: Some(120),
        },
        Trigger::Always,
    )))
    .await;
    let err = s
        .bootstrapper
        .mint(origins("https://contoso.com"))
        .await
        .unwrap_err();
    assert_eq!(
        err.retry_after(),
        Some(std::time::Duration::from_secs(120)),
        "{err:?}"
    );
    assert_eq!(s.emulator.stats().requests_with_status(Route::Mint, 503), 1);

    // No Retry-After: nothing to report.
    let s = setup(EmulatorConfig::default().with_fault(FaultRule::on(
        Route::Mint,
        FaultKind::Status {
            status: 400,
            retry_after_secs: None,
        },
        Trigger::Always,
    )))
    .await;
    let err = s
        .bootstrapper
        .mint(origins("https://contoso.com"))
        .await
        .unwrap_err();
    assert_eq!(err.retry_after(), None, "{err:?}");
}
