//! The JSON examples of the two seed documents, verbatim, shared by the tests.
//!
//! `seeds/000_032997a46252ae03.txt` (bootstrap a chat widget) and
//! `seeds/003_4f5c5c7296b9898f.txt` (authentication and authorization) are
//! public specification examples of the Trusted Application API.

#![allow(dead_code, unreachable_pub)]

/// Seed 000: the capabilities of the application, `service:` namespace.
pub const CAPABILITIES_SERVICE: &str = r#"{
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

/// Seed 000: the request body of the `anonApplicationTokens` POST.
pub const MINT_REQUEST: &str = r#"{
    "applicationSessionId": "DFEDde...",
    "allowedOrigins": "https://contoso.com;https://litware.com"
}"#;

/// Seed 000: the `psat=` JWT of the 200 OK answer (without the prefix).
pub const SEED_JWT: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiIsIng1dCI6Ik5TSV9rVzg1cnFMTEN0VTE1dWlnQ2gxTlZfYyJ9.eyJuYmYiOjE0NjY5NjI5MzMsImV4cCI6MTQ2Njk5MTczMywicnV1Ijoic2lwOlVjYXBVc2VyMTNAdWNhcHRlbmFudC5jb20iLCJhc2kiOiJra2trIiwiYWV1Ijoic2lwOmhlbHBkZXNrQHVjYXB0ZW5hbnR0aGlyZHBhcnR5LmNvbSIsImFvIjoiaHR0cHM6Ly9jb250b3NvLmNvbTtodHRwczovL2xpdHdhcmUuY29tO2h0dHA6Ly93d3cubWljcm9zb2Z0c3RvcmUuY29tIn0.NDlu02-C1snxPHrdoHrext_rDhvRHL49KV2OB1kjin1aJbGsg9nqH6KhCAJ4cwqY1tk6LIydmHx5INV6Lp-8ftQuz6BiM23D0zEj9_j_HuiBpgKzP_BMwm2zrhIdZ6hDiWBI843wwJFmdEB6FbavuewHs_sGNHk3rwPnF_PtJpQ_5hptwN9usf9U7gR0EunXJyPKRtCIFodnztF6MWw9CqhCxPlb6g6EX_kFPr4Btx6X4ncacQAGRu3A-ja3cke_Dy0bDAHA3LK56XaEJwKpfPoDHr9Wc7-leBfkknH4XpkzdNjtWuMuqyTAQH3cLPsy-eW3DIP5RuFNW1-p-gwj5w";

/// Seed 000: the 200 OK answer of the `anonApplicationTokens` POST.
pub const MINT_ANSWER: &str = r#"{
    "token": "psat=eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiIsIng1dCI6Ik5TSV9rVzg1cnFMTEN0VTE1dWlnQ2gxTlZfYyJ9.eyJuYmYiOjE0NjY5NjI5MzMsImV4cCI6MTQ2Njk5MTczMywicnV1Ijoic2lwOlVjYXBVc2VyMTNAdWNhcHRlbmFudC5jb20iLCJhc2kiOiJra2trIiwiYWV1Ijoic2lwOmhlbHBkZXNrQHVjYXB0ZW5hbnR0aGlyZHBhcnR5LmNvbSIsImFvIjoiaHR0cHM6Ly9jb250b3NvLmNvbTtodHRwczovL2xpdHdhcmUuY29tO2h0dHA6Ly93d3cubWljcm9zb2Z0c3RvcmUuY29tIn0.NDlu02-C1snxPHrdoHrext_rDhvRHL49KV2OB1kjin1aJbGsg9nqH6KhCAJ4cwqY1tk6LIydmHx5INV6Lp-8ftQuz6BiM23D0zEj9_j_HuiBpgKzP_BMwm2zrhIdZ6hDiWBI843wwJFmdEB6FbavuewHs_sGNHk3rwPnF_PtJpQ_5hptwN9usf9U7gR0EunXJyPKRtCIFodnztF6MWw9CqhCxPlb6g6EX_kFPr4Btx6X4ncacQAGRu3A-ja3cke_Dy0bDAHA3LK56XaEJwKpfPoDHr9Wc7-leBfkknH4XpkzdNjtWuMuqyTAQH3cLPsy-eW3DIP5RuFNW1-p-gwj5w",
    "expiryTime": "2016-06-27T01:42:13.094Z",
    "_links": {
        "self": {
            "href": "https://ext.vdomain.com:4443/platformservice/v1/applications/1627259584/anonApplicationTokens?endpointId=sip:helpdesk@contoso.com"
        },
        "service:discover": {
            "href": "https://api.skypeforbusiness.com/platformService/discover?anonymousContext=psat%253deyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiIsIng1dCI6Ik5TSV9rVzg1cnFMTEN0VTE1dWlnQ2gxTlZfYyJ9.eyJuYmYiOjE0NjY5NjI5MzMsImV4cCI6MTQ2Njk5MTczMywicnV1Ijoic2lwOlVjYXBVc2VyMTNAdWNhcHRlbmFudC5jb20iLCJhc2kiOiJra2trIiwiYWV1Ijoic2lwOmhlbHBkZXNrQHVjYXB0ZW5hbnR0aGlyZHBhcnR5LmNvbSIsImFvIjoiaHR0cHM6Ly9jb250b3NvLmNvbTtodHRwczovL2xpdHdhcmUuY29tO2h0dHA6Ly93d3cubWljcm9zb2Z0c3RvcmUuY29tIn0.NDlu02-C1snxPHrdoHrext_rDhvRHL49KV2OB1kjin1aJbGsg9nqH6KhCAJ4cwqY1tk6LIydmHx5INV6Lp-8ftQuz6BiM23D0zEj9_j_HuiBpgKzP_BMwm2zrhIdZ6hDiWBI843wwJFmdEB6FbavuewHs_sGNHk3rwPnF_PtJpQ_5hptwN9usf9U7gR0EunXJyPKRtCIFodnztF6MWw9CqhCxPlb6g6EX_kFPr4Btx6X4ncacQAGRu3A-ja3cke_Dy0bDAHA3LK56XaEJwKpfPoDHr9Wc7-leBfkknH4XpkzdNjtWuMuqyTAQH3cLPsy-eW3DIP5RuFNW1-p-gwj5w"
        }
    },
    "rel": "service:anonApplicationToken"
}"#;

/// Seed 003: the `ms:rtc:saas:application` link object of the applications
/// answer (the seed shows only the link object).
pub const APPLICATION_LINK: &str = r#"{"href": "/platformservice/v1/applications/1627259584?endpointId=sip%3ahelpdesk%40contoso.com"}"#;

/// Seed 003: the capabilities of the application, `ms:rtc:saas:` namespace.
pub const CAPABILITIES_SAAS: &str = r#"{
    "_links": {
        "self": {
            "href": "/platformservice/v1/applications/1627259584?endpointId=sip%3ahelpdesk%40contoso.com"
        }
    },
    "_embedded": {
        "ms:rtc:saas:communication": {
            "_links": {
                "self": {
                    "href": "/platformservice/v1/applications/1627259584/communication?endpointId=sip:helpdesk@contoso.com"
                },
                "ms:rtc:saas:startMessaging": {
                    "href": "/platformservice/v1/applications/1627259584/communication/messagingInvitations?endpointId=sip:helpdesk@contoso.com"
                }
            },
            "rel": "ms:rtc:saas:communication",
            "etag": "4294967295"
        }
    },
    "rel": "ms:rtc:saas:application"
}"#;

/// Seed 003: the applications URL the application link is resolved against.
pub const APPLICATIONS_URL: &str = "https://ring2noammeetings.resources.lync.com/platformService/v1/applications?endpointId=sip:helpdesk@contoso.com";

/// Seed 003: the applications answer, with the seed's link object wrapped
/// under its rel.
pub fn applications_answer() -> String {
    format!(r#"{{"_links": {{"ms:rtc:saas:application": {APPLICATION_LINK}}}}}"#)
}

/// protocol-notes.md: the error body of a 403.
pub const ERROR_BODY: &str =
    r#"{"code":"Forbidden","subcode":"ApplicationNotFound","message":".."}"#;

/// The percent-encoded endpoint id, as the seeds write it.
pub const ENDPOINT_ENCODED: &str = "sip%3ahelpdesk%40contoso.com";

/// The raw endpoint id, as the seeds write it.
pub const ENDPOINT_RAW: &str = "sip:helpdesk@contoso.com";

/// Parses a JSON text as a `serde_json::Value` (for comparisons).
pub fn value(json: &str) -> serde_json::Value {
    serde_json::from_str(json).unwrap()
}
