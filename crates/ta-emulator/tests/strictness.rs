//! The remaining error answers, the quirks as a raw client sees them, and
//! the CA file.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

mod support;

use support::*;
use ta_emulator::*;

#[tokio::test]
async fn a_token_for_another_audience_is_refused() {
    // Two emulators sign with the same development key, so a token of one
    // is validly signed for the other, but its audience is the other's.
    let (one, client_one) = start(EmulatorConfig::default()).await;
    let (two, client_two) = start(EmulatorConfig::default()).await;
    let token_for_one = aad_token(&one, &client_one).await;
    let url = api(
        &two,
        &format!("/platformservice/v1/applications?{ENDPOINT_Q}"),
    );
    let answer = get(
        &client_two,
        &url,
        &[("authorization", &bearer(&token_for_one))],
    )
    .await;
    assert_eq!(answer.status, 401);
    assert!(answer.text().contains("audience"), "{}", answer.text());
    assert!(
        answer
            .header("www-authenticate")
            .unwrap()
            .contains("invalid_token")
    );
}

#[tokio::test]
async fn missing_endpoint_id_and_foreign_application_ids() {
    let (emu, client) = start(EmulatorConfig::default()).await;
    let token = aad_token(&emu, &client).await;
    let auth = bearer(&token);
    let answer = get(
        &client,
        &api(&emu, "/platformservice/v1/applications"),
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json()["subcode"], "MissingEndpointId");
    let answer = get(
        &client,
        &api(
            &emu,
            &format!("/platformservice/v1/applications/999?{ENDPOINT_Q}"),
        ),
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(answer.status, 403);
    assert_eq!(answer.json()["subcode"], "ApplicationNotFound");
    let answer = send(
        &client,
        "POST",
        &api(
            &emu,
            &format!("/platformservice/v1/applications/999/anonApplicationTokens?{ENDPOINT_Q}"),
        ),
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        r#"{"applicationSessionId":"x","allowedOrigins":"https://contoso.com"}"#,
    )
    .await;
    assert_eq!(answer.status, 403);
    assert_eq!(answer.json()["subcode"], "ApplicationNotFound");
    // Not a Bearer header.
    let url = api(
        &emu,
        &format!("/platformservice/v1/applications?{ENDPOINT_Q}"),
    );
    let answer = get(&client, &url, &[("authorization", "Basic dXNlcjpwdw==")]).await;
    assert_eq!(answer.status, 401);
    assert!(
        answer
            .header("www-authenticate")
            .unwrap()
            .contains("invalid_request")
    );
}

async fn bodies(quirks: Quirks) -> (String, String, String, Vec<u8>) {
    let (emu, client) = start(EmulatorConfig::default().with_quirks(quirks)).await;
    let token = aad_token(&emu, &client).await;
    let auth = bearer(&token);
    let discovery = get(&client, &emu.discover_url(), &[]).await;
    let apps = get(
        &client,
        &api(
            &emu,
            &format!("/platformservice/v1/applications?{ENDPOINT_Q}"),
        ),
        &[("authorization", &auth)],
    )
    .await;
    let minted = mint(&emu, &client, &token, "quirks", "https://contoso.com").await;
    (
        discovery.text(),
        apps.text(),
        minted.text(),
        discovery.body.to_vec(),
    )
}

#[tokio::test]
async fn each_quirk_shows_in_the_raw_answers() {
    let (discovery, apps, minted, raw) = bodies(Quirks::default()).await;
    assert!(discovery.contains("\"service:applications\""));
    assert!(discovery.contains("/platformservice/v1/applications"));
    assert!(
        apps.contains("endpointId=sip%3ahelpdesk%40contoso.com"),
        "{apps}"
    );
    assert!(
        minted.contains("\"expiryTime\":\"20") && minted.contains(".000Z\""),
        "{minted}"
    );
    assert!(!raw.starts_with(b"\xEF\xBB\xBF"));

    let (discovery, ..) = bodies(Quirks {
        namespace: RelNamespace::RtcSaas,
        ..Quirks::default()
    })
    .await;
    assert!(
        discovery.contains("\"ms:rtc:saas:applications\""),
        "{discovery}"
    );

    let (.., minted, _) = bodies(Quirks {
        expiry: ExpiryStyle::MicrosoftJson,
        ..Quirks::default()
    })
    .await;
    assert!(minted.contains("\"expiryTime\":\"/Date("), "{minted}");

    let (.., raw) = bodies(Quirks {
        bom: true,
        ..Quirks::default()
    })
    .await;
    assert!(raw.starts_with(b"\xEF\xBB\xBF"));

    let (discovery, ..) = bodies(Quirks {
        path_casing: PathCasing::Camel,
        ..Quirks::default()
    })
    .await;
    assert!(
        discovery.contains("/platformService/v1/applications"),
        "{discovery}"
    );

    let (_, apps, ..) = bodies(Quirks {
        endpoint_id: EndpointIdStyle::Raw,
        ..Quirks::default()
    })
    .await;
    assert!(
        apps.contains("1627259584?endpointId=sip:helpdesk@contoso.com"),
        "{apps}"
    );
    let (_, apps, minted, _) = bodies(Quirks {
        endpoint_id: EndpointIdStyle::Encoded,
        ..Quirks::default()
    })
    .await;
    assert!(!apps.contains("sip:helpdesk@"), "{apps}");
    assert!(
        minted.contains("anonApplicationTokens?endpointId=sip%3ahelpdesk%40contoso.com"),
        "{minted}"
    );
}

#[tokio::test]
async fn the_ca_can_be_written_to_a_file() {
    let (emu, _) = start(EmulatorConfig::default()).await;
    let path = std::env::temp_dir().join(format!("ta-emulator-ca-{}.pem", emu.addr().port()));
    emu.write_ca_pem(&path).unwrap();
    let written = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(written, emu.ca_pem().unwrap());
    assert!(written.starts_with("-----BEGIN CERTIFICATE-----"));

    let (plain, _) = start(EmulatorConfig::default().with_plain_http()).await;
    assert!(plain.write_ca_pem(&path).is_err());
}

#[tokio::test]
async fn shutdown_stops_serving() {
    let (emu, client) = start(EmulatorConfig::default()).await;
    let url = emu.discover_url();
    assert_eq!(get(&client, &url, &[]).await.status, 200);
    emu.shutdown().await;
    let request = http::Request::get(&url)
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    assert!(client.request(request).await.is_err());
}
