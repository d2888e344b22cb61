//! The requests of the two seed documents, built byte for byte, with the
//! seed's own answers played back.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

mod support;

use support::{Harness, Reply, Seen, challenge, json};
use ta_protocol::*;

const DISCOVER: &str = "https://noammeetings.resources.lync.com/platformservice/discover";

/// The capabilities answer of "Bootstrap chat widget" (service namespace).
const SEED_APPLICATION: &str = r#"{
"_links": {
"self": {
"href": "/platformservice/v1/applications/1627259584?endpointId=sip%3ahelpdesk%40contoso.com"
},
"service:anonApplicationTokens": {
"href": "/platformservice/v1/applications/1627259584/anonApplicationTokens?endpointId=sip:helpdesk@contoso.com"
}
},
"_embedded": {
"service:communication": {
"_links": {
"self": {
"href": "/platformservice/v1/applications/1627259584/communication?endpointId=sip:helpdesk@contoso.com"
},
"service:joinOnlineMeeting": {
"href": "/platformservice/v1/applications/1627259584/communication/onlineMeetingInvitations?endpointId=sip:helpdesk@contoso.com"
},
"service:inviteUserToMeeting": {
"href": "/platformservice/v1/applications/1627259584/communication/userMeetingInvitations?endpointId=sip:helpdesk@contoso.com"
},
"service:startMessaging": {
"href": "/platformservice/v1/applications/1627259584/communication/messagingInvitations?endpointId=sip:helpdesk@contoso.com"
}
},
"rel": "service:communication",
"etag": "4294967295"
},
"service:adhocMeetings": {
"_links": {
"self": {
"href": "/platformservice/v1/applications/1627259584/adhocMeetings?endpointId=sip:helpdesk@contoso.com"
}
},
"rel": "service:adhocMeetings"
}
},
"rel": "service:application"
}"#;

/// The seed's psat (the published example token).
const SEED_PSAT: &str = "psat=eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiIsIng1dCI6Ik5TSV9rVzg1cnFMTEN0VTE1dWlnQ2gxTlZfYyJ9.eyJuYmYiOjE0NjY5NjI5MzMsImV4cCI6MTQ2Njk5MTczMywicnV1Ijoic2lwOlVjYXBVc2VyMTNAdWNhcHRlbmFudC5jb20iLCJhc2kiOiJra2trIiwiYWV1Ijoic2lwOmhlbHBkZXNrQHVjYXB0ZW5hbnR0aGlyZHBhcnR5LmNvbSIsImFvIjoiaHR0cHM6Ly9jb250b3NvLmNvbTtodHRwczovL2xpdHdhcmUuY29tO2h0dHA6Ly93d3cubWljcm9zb2Z0c3RvcmUuY29tIn0.NDlu02-C1snxPHrdoHrext_rDhvRHL49KV2OB1kjin1aJbGsg9nqH6KhCAJ4cwqY1tk6LIydmHx5INV6Lp-8ftQuz6BiM23D0zEj9_j_HuiBpgKzP_BMwm2zrhIdZ6hDiWBI843wwJFmdEB6FbavuewHs_sGNHk3rwPnF_PtJpQ_5hptwN9usf9U7gR0EunXJyPKRtCIFodnztF6MWw9CqhCxPlb6g6EX_kFPr4Btx6X4ncacQAGRu3A-ja3cke_Dy0bDAHA3LK56XaEJwKpfPoDHr9Wc7-leBfkknH4XpkzdNjtWuMuqyTAQH3cLPsy-eW3DIP5RuFNW1-p-gwj5w";

fn seed_mint_answer() -> String {
    let encoded = SEED_PSAT.replacen("psat=", "psat%253d", 1);
    format!(
        r#"{{
    "token": "{SEED_PSAT}",
    "expiryTime": "2016-06-27T01:42:13.094Z",
    "_links": {{
        "self": {{
            "href": "https://ext.vdomain.com:4443/platformservice/v1/applications/1627259584/anonApplicationTokens?endpointId=sip:helpdesk@contoso.com"
        }},
        "service:discover": {{
            "href": "https://api.skypeforbusiness.com/platformService/discover?anonymousContext={encoded}"
        }}
    }},
    "rel": "service:anonApplicationToken"
}}"#
    )
}

fn seed_server() -> impl FnMut(&Seen, usize) -> Reply {
    move |req, _| {
        if req.url == DISCOVER {
            return json(
                200,
                r#"{"_links":{"self":{"href":"https://noammeetings.resources.lync.com/platformservice/discover"},"ms:rtc:saas:applications":{"href":"https://ring2noammeetings.resources.lync.com/platformService/v1/applications"}}}"#,
            );
        }
        if req.authorization.is_none() {
            return challenge();
        }
        match req.method.as_str() {
            "POST" => json(200, &seed_mint_answer()),
            _ if req.url.contains("/1627259584?") => json(200, SEED_APPLICATION),
            // The seed's `ms:rtc:saas:application` link object.
            _ => json(
                200,
                r#"{"_links":{"ms:rtc:saas:application":{"href": "/platformservice/v1/applications/1627259584?endpointId=sip%3ahelpdesk%40contoso.com"}}}"#,
            ),
        }
    }
}

#[test]
fn the_seed_flow_byte_for_byte() {
    let config = Config::builder(DISCOVER, "sip:helpdesk@contoso.com")
        .build()
        .unwrap()
        .into_shared();
    // The seed's session id and origins.
    let request = MintRequest::new(
        ApplicationSessionId::new("DFEDde...").unwrap(),
        AllowedOrigins::parse_list(
            "https://contoso.com;https://litware.com",
            OriginPolicy::default(),
        )
        .unwrap(),
    );
    let mut h = Harness::new(seed_server());
    let done = h
        .run(Flow::bootstrap(
            config,
            request,
            None,
            Box::new(SeededEntropy::new(1)),
        ))
        .unwrap();

    // "GET https://ring2noammeetings.resources.lync.com/platformService/v1/applications?endpointId=sip:helpdesk@contoso.com"
    assert_eq!(
        h.seen[1].url,
        "https://ring2noammeetings.resources.lync.com/platformService/v1/applications?endpointId=sip:helpdesk@contoso.com"
    );
    assert_eq!(h.seen[1].authorization, None, "the first GET draws the 401");
    // "Authorization: Bearer <token from AAD>" on the same URL.
    assert_eq!(h.seen[2].url, h.seen[1].url);
    assert_eq!(h.seen[2].authorization.as_deref(), Some("Bearer tok-0"));
    // "The audience for the oauth token should be the base fqdn of the
    // discover url: https://noammeetings.resources.lync.com"
    assert_eq!(
        h.token_needs[0].audience.as_str(),
        "https://noammeetings.resources.lync.com"
    );
    // The application href, resolved against the applications URL, with its
    // percent-encoding as the server wrote it.
    assert_eq!(
        h.seen[3].url,
        "https://ring2noammeetings.resources.lync.com/platformservice/v1/applications/1627259584?endpointId=sip%3ahelpdesk%40contoso.com"
    );
    // "Post /platformservice/v1/applications/1627259584/anonApplicationTokens?endpointId=sip:helpdesk@contoso.com"
    let mint = &h.seen[4];
    assert_eq!(mint.method, "POST");
    assert_eq!(
        mint.url,
        "https://ring2noammeetings.resources.lync.com/platformservice/v1/applications/1627259584/anonApplicationTokens?endpointId=sip:helpdesk@contoso.com"
    );
    // "Content-Type : application/json; charset=utf-8" and a client-request-id.
    assert_eq!(
        mint.content_type.as_deref(),
        Some("application/json; charset=utf-8")
    );
    assert!(!mint.request_id.is_empty());
    // The body, as the seed writes it.
    assert_eq!(
        std::str::from_utf8(&mint.body).unwrap(),
        "{\n    \"applicationSessionId\": \"DFEDde...\",\n    \"allowedOrigins\": \"https://contoso.com;https://litware.com\"\n}"
    );

    // The seed's answer, read back.
    assert_eq!(done.token.token.expose(), SEED_PSAT);
    assert_eq!(done.token.expiry.as_str(), "2016-06-27T01:42:13.094Z");
    assert!(done
        .token
        .discover_url
        .as_str()
        .starts_with("https://api.skypeforbusiness.com/platformService/discover?anonymousContext=psat%253deyJ0eXAi"));
    assert_eq!(
        done.token.self_url.unwrap().as_str(),
        "https://ext.vdomain.com:4443/platformservice/v1/applications/1627259584/anonApplicationTokens?endpointId=sip:helpdesk@contoso.com"
    );
    assert_eq!(
        done.capabilities.application.capabilities(),
        ["anonApplicationTokens", "communication", "adhocMeetings"]
    );
    // The applications host was trusted because discovery linked to it; the
    // self link's host was not added by the later answer.
    let trusted = &done.capabilities.discovery.trusted_hosts;
    assert!(
        trusted.allows(
            &"https://ring2noammeetings.resources.lync.com/"
                .parse()
                .unwrap()
        )
    );
    assert!(!trusted.allows(&"https://ext.vdomain.com:4443/".parse().unwrap()));
}

#[test]
fn the_endpoint_id_is_appended_raw_and_special_characters_are_encoded() {
    let endpoint = EndpointId::new("sip:help+desk@contoso.com").unwrap();
    let url = with_endpoint_id(
        &"https://h/platformService/v1/applications?x=1"
            .parse()
            .unwrap(),
        &endpoint,
    );
    assert_eq!(
        url.as_str(),
        "https://h/platformService/v1/applications?x=1&endpointId=sip:help%2Bdesk@contoso.com"
    );
    // An href that already names the endpoint is left as the server wrote it.
    let href: url::Url = "https://h/a?endpointId=sip%3ahelpdesk%40contoso.com"
        .parse()
        .unwrap();
    assert_eq!(
        with_endpoint_id(&href, &EndpointId::new("sip:helpdesk@contoso.com").unwrap()),
        href
    );
}
