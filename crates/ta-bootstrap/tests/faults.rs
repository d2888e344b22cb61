//! Every fault the emulator can inject, through the orchestrator over real
//! TLS, with the emulator's counters as the witness.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use ta_bootstrap::FailureKind;
use ta_emulator::{EmulatorConfig, FaultKind, FaultRule, Route, Trigger};
use ta_test_support::*;

/// What a fault leads to.
enum Expect {
    /// Minted, with this many requests on the route, this many AAD tokens.
    Minted { route_requests: u64, aad: u64 },
    /// Failed with this kind, this many requests on the route.
    Failed {
        kind: FailureKind,
        route_requests: u64,
    },
}

async fn case(route: Route, fault: FaultKind, trigger: Trigger, expect: Expect) {
    let name = fault.name();
    let s = setup(EmulatorConfig::default().with_fault(FaultRule::on(route, fault, trigger))).await;
    let result = s.bootstrapper.mint(origins("https://contoso.com")).await;
    let stats = s.emulator.stats();
    assert!(
        stats.faults_fired.get(&name).copied().unwrap_or(0) >= 1,
        "{name}: the fault fired"
    );
    match expect {
        Expect::Minted {
            route_requests,
            aad,
        } => {
            result.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(
                stats.requests(route),
                route_requests,
                "{name}: requests on {route:?}"
            );
            assert_eq!(stats.aad_tokens_issued, aad, "{name}: AAD tokens");
            assert_eq!(stats.requests_with_status(Route::Mint, 200), 1, "{name}");
        }
        Expect::Failed {
            kind,
            route_requests,
        } => {
            let err = result.expect_err(&name);
            assert_eq!(err.kind(), kind, "{name}: {err}");
            assert_eq!(
                stats.requests(route),
                route_requests,
                "{name}: requests on {route:?}"
            );
            assert_eq!(stats.requests_with_status(Route::Mint, 200), 0, "{name}");
        }
    }
}

#[tokio::test]
async fn transient_faults_are_retried() {
    for status in [500u16, 502, 503, 429] {
        // 500 is not retried: it is the service's answer.
        let expect = if status == 500 {
            Expect::Failed {
                kind: FailureKind::Upstream,
                route_requests: 1,
            }
        } else {
            Expect::Minted {
                route_requests: 2,
                aad: 1,
            }
        };
        case(
            Route::Mint,
            FaultKind::Status {
                status,
                retry_after_secs: Some(0),
            },
            Trigger::Once,
            expect,
        )
        .await;
    }
    case(
        Route::Discovery,
        FaultKind::Latency { millis: 50 },
        Trigger::Always,
        Expect::Minted {
            route_requests: 1,
            aad: 1,
        },
    )
    .await;
    case(
        Route::Application,
        FaultKind::CloseBeforeResponse,
        Trigger::Once,
        Expect::Minted {
            route_requests: 2,
            aad: 1,
        },
    )
    .await;
    case(
        Route::Application,
        FaultKind::CloseMidBody,
        Trigger::Once,
        Expect::Minted {
            route_requests: 2,
            aad: 1,
        },
    )
    .await;
    case(
        Route::AadToken,
        FaultKind::Status {
            status: 503,
            retry_after_secs: Some(0),
        },
        Trigger::Once,
        Expect::Minted {
            route_requests: 2,
            aad: 1,
        },
    )
    .await;
    case(
        Route::AadToken,
        FaultKind::CloseBeforeResponse,
        Trigger::Once,
        Expect::Minted {
            route_requests: 2,
            aad: 1,
        },
    )
    .await;
    case(
        Route::Mint,
        FaultKind::RevokeAadTokens,
        Trigger::Once,
        Expect::Minted {
            route_requests: 2,
            aad: 2,
        },
    )
    .await;
    case(
        Route::Mint,
        FaultKind::RevokeConsent,
        Trigger::Once,
        Expect::Minted {
            route_requests: 2,
            aad: 1,
        },
    )
    .await;
}

#[tokio::test]
async fn persistent_faults_are_typed_failures() {
    case(
        Route::Application,
        FaultKind::TruncatedBody,
        Trigger::Always,
        Expect::Failed {
            kind: FailureKind::Upstream,
            route_requests: 1,
        },
    )
    .await;
    case(
        Route::Discovery,
        FaultKind::MalformedBody,
        Trigger::Always,
        Expect::Failed {
            kind: FailureKind::Upstream,
            route_requests: 1,
        },
    )
    .await;
    case(
        Route::Application,
        FaultKind::MissingLink {
            rel: "anonApplicationTokens".into(),
        },
        Trigger::Always,
        Expect::Failed {
            kind: FailureKind::NotFound,
            route_requests: 1,
        },
    )
    .await;
    case(
        Route::Discovery,
        FaultKind::MissingLink {
            rel: "applications".into(),
        },
        Trigger::Always,
        Expect::Failed {
            kind: FailureKind::Upstream,
            route_requests: 1,
        },
    )
    .await;
    case(
        Route::Application,
        FaultKind::Redirect {
            host: "[::1]".into(),
        },
        Trigger::Always,
        Expect::Failed {
            kind: FailureKind::Config,
            route_requests: 1,
        },
    )
    .await;
    case(
        Route::Mint,
        FaultKind::Status {
            status: 503,
            retry_after_secs: Some(0),
        },
        Trigger::Always,
        Expect::Failed {
            kind: FailureKind::Upstream,
            route_requests: 4,
        },
    )
    .await;
    case(
        Route::Mint,
        FaultKind::RevokeConsent,
        Trigger::Always,
        Expect::Failed {
            kind: FailureKind::NotFound,
            route_requests: 2,
        },
    )
    .await;
    case(
        Route::Applications,
        FaultKind::RevokeAadTokens,
        Trigger::Always,
        Expect::Failed {
            kind: FailureKind::Authentication,
            route_requests: 2,
        },
    )
    .await;
    case(
        Route::Application,
        FaultKind::CloseBeforeResponse,
        Trigger::Always,
        Expect::Failed {
            kind: FailureKind::Upstream,
            route_requests: 4,
        },
    )
    .await;
    case(
        Route::AadToken,
        FaultKind::Status {
            status: 503,
            retry_after_secs: Some(0),
        },
        Trigger::Always,
        Expect::Failed {
            kind: FailureKind::Upstream,
            route_requests: 4,
        },
    )
    .await;
}

#[tokio::test]
async fn a_redirect_to_a_trusted_host_is_followed_with_the_token() {
    // The API host itself is trusted (discovery linked to it).
    let s = setup(EmulatorConfig::default().with_fault(FaultRule::on(
        Route::Mint,
        FaultKind::Redirect {
            host: "localhost".into(),
        },
        Trigger::Once,
    )))
    .await;
    s.bootstrapper
        .mint(origins("https://contoso.com"))
        .await
        .unwrap();
    let stats = s.emulator.stats();
    assert_eq!(stats.requests_with_status(Route::Mint, 307), 1);
    assert_eq!(stats.requests_with_status(Route::Mint, 200), 1);
}
