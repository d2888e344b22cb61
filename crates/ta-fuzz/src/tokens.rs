//! Tokens from a server or a page: the callback token (its header and, once
//! signed, its claims), the identity provider's keys document, the site's
//! mint ticket, and the claims `inspect` reads.

use std::sync::LazyLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arbitrary::{Arbitrary, Unstructured};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ta_bootstrap_cli::token_claims::read_token;
use ta_emulator::signing::{SigningKey, dev_callback_keys, jwks};
use ta_widget_service::callback::{CallbackAuth, KeySet, Refusal, key_id};
use ta_widget_service::mint_check::{SignedTicketCheck, sign_ticket};

use crate::json::json_text;

/// The instant the tokens are checked at.
const NOW: u64 = 1_800_000_000;
const AUDIENCE: &str = "https://sa.contoso.com";
const ISSUER: &str = "https://sts.windows.net/00000000-0000-0000-0000-000000000001/";

struct Callbacks {
    signer: &'static SigningKey,
    keys: KeySet,
    auth: CallbackAuth,
}

#[allow(clippy::expect_used)] // the harness's own fixed keys
static CALLBACKS: LazyLock<Callbacks> = LazyLock::new(|| {
    let pair = dev_callback_keys().expect("the development keys");
    let [signer, _] = pair;
    let keys = KeySet::parse(jwks(pair.iter()).to_string().as_bytes()).expect("their JWKS");
    Callbacks {
        signer,
        keys,
        auth: CallbackAuth::new(AUDIENCE, ISSUER),
    }
});

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW)
}

/// Any text as a callback token: none is taken (the fuzzer cannot sign).
pub fn callback_token(data: &[u8]) {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let _ = key_id(token);
    let callbacks = &*CALLBACKS;
    let verdict = callbacks.auth.verify(token, &callbacks.keys, now());
    assert!(verdict.is_err(), "an unsigned token was taken: {token:?}");
}

/// Claims the fuzzer chose, really signed: taken only when the audience,
/// the issuer, the application and the time window say so; never refused
/// for the signature.
pub fn callback_claims(data: &[u8]) {
    let Some((&raw, rest)) = data.split_first() else {
        return;
    };
    let claims = if raw & 1 == 0 {
        let Some(text) = json_text(rest) else { return };
        text.into_bytes()
    } else {
        rest.to_vec()
    };
    let callbacks = &*CALLBACKS;
    let header = format!(
        r#"{{"typ":"JWT","alg":"RS256","kid":"{}"}}"#,
        callbacks.signer.kid()
    );
    let mut token = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(&claims)
    );
    let Ok(signature) = callbacks.signer.sign(token.as_bytes()) else {
        return;
    };
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(signature));
    match callbacks.auth.verify(&token, &callbacks.keys, now()) {
        Ok(verified) => {
            let value: serde_json::Value = serde_json::from_slice(&claims)
                .unwrap_or_else(|e| panic!("taken claims that are not JSON: {e}"));
            assert_eq!(value.get("iss").and_then(|v| v.as_str()), Some(ISSUER));
            let aud = value.get("aud");
            assert!(
                aud.and_then(|a| a.as_str()) == Some(AUDIENCE)
                    || aud
                        .and_then(|a| a.as_array())
                        .is_some_and(|all| all.iter().any(|a| a.as_str() == Some(AUDIENCE))),
                "taken for another audience: {aud:?}"
            );
            assert!(
                verified
                    .expires
                    .saturating_add(callbacks.auth.leeway.as_secs())
                    > NOW
            );
        }
        Err(refusal) => assert!(
            !matches!(
                refusal,
                Refusal::BadSignature | Refusal::UnknownKey | Refusal::Unsigned
            ),
            "a signed token was refused for its signature: {refusal:?}"
        ),
    }
}

/// The identity provider's keys document: raw bytes or built JSON.
pub fn jwks_document(data: &[u8]) {
    let Some((&raw, rest)) = data.split_first() else {
        return;
    };
    let body = if raw & 1 == 0 {
        match json_text(rest) {
            Some(text) => text.into_bytes(),
            None => return,
        }
    } else {
        rest.to_vec()
    };
    if let Ok(keys) = KeySet::parse(&body) {
        assert!(!keys.is_empty());
        assert!(keys.len() <= body.len());
    }
}

const TICKET_KEY: &[u8] = b"the fuzz harness's own ticket key, 32+ bytes";
const ORIGINS: [&str; 3] = [
    "https://www.contoso.com",
    "https://contoso.com",
    "http://127.0.0.1:3000",
];

#[allow(clippy::expect_used)] // a fixed key of the right length
static TICKETS: LazyLock<SignedTicketCheck> = LazyLock::new(|| {
    SignedTicketCheck::new(TICKET_KEY)
        .expect("a long key")
        .with_clock(now)
});

#[derive(Debug, Arbitrary)]
enum TicketInput {
    /// A ticket the fuzzer wrote, for one of the origins.
    Written(String, u8),
    /// A ticket signed for these, checked for that origin.
    Signed {
        origin: u8,
        expires: u64,
        nonce: String,
        checked_for: u8,
    },
}

/// The site's mint ticket: one the fuzzer writes is never taken; one
/// signed is taken exactly for its origin, within its time window.
pub fn mint_ticket(data: &[u8]) {
    let Ok(input) = TicketInput::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let origin = |i: u8| {
        ORIGINS
            .get(usize::from(i) % ORIGINS.len())
            .copied()
            .unwrap_or_default()
    };
    match input {
        TicketInput::Written(ticket, i) => {
            assert!(
                TICKETS.verify(&ticket, origin(i)).is_err(),
                "{ticket:?} was taken"
            );
        }
        TicketInput::Signed {
            origin: signed_for,
            expires,
            nonce,
            checked_for,
        } => {
            let expires = expires % (NOW * 2);
            let Ok(ticket) = sign_ticket(TICKET_KEY, origin(signed_for), expires, &nonce) else {
                return;
            };
            let taken = TICKETS.verify(&ticket, origin(checked_for)).is_ok();
            let in_window = expires + 30 > NOW && expires <= NOW + 15 * 60 + 30;
            let same_origin = origin(signed_for) == origin(checked_for);
            assert_eq!(taken, in_window && same_origin, "{ticket:?}");
        }
    }
}

/// `inspect`'s reader: nothing it shows acts on a terminal.
pub fn inspect_claims(data: &[u8]) {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(claims) = read_token(input) {
        for text in [
            &claims.session_id,
            &claims.endpoint,
            &claims.allowed_origins,
            &claims.not_before,
            &claims.expires,
        ]
        .into_iter()
        .flatten()
        {
            assert!(!text.chars().any(char::is_control), "{text:?}");
        }
    }
}
