//! `inspect`: decodes a psat token's claims, without verifying it (the
//! reader is the library's [`ta_bootstrap_cli::token_claims`]).

use clap::Args;
use ta_bootstrap_cli::token_claims::read_token;
use time::OffsetDateTime;

use super::config_error;

/// Arguments of `inspect`.
#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// The token: `psat=<JWT>`, the JWT alone, or a discover link carrying it.
    token: String,
}

pub(crate) fn run(args: &InspectArgs) -> u8 {
    let claims = match read_token(&args.token) {
        Ok(claims) => claims,
        Err(e) => return config_error(e),
    };
    let absent = "(absent)";
    let expired = claims
        .expires_unix
        .is_some_and(|exp| exp <= OffsetDateTime::now_utc().unix_timestamp());
    out!("NOT VERIFIED: the signature was not checked; these are the claims as written.");
    out!(
        "application session id (asi): {}",
        claims.session_id.as_deref().unwrap_or(absent)
    );
    out!(
        "application endpoint  (aeu): {}",
        claims.endpoint.as_deref().unwrap_or(absent)
    );
    out!(
        "allowed origins        (ao): {}",
        claims
            .allowed_origins
            .map_or_else(|| absent.to_owned(), |ao| ao.replace(';', ", "))
    );
    out!(
        "not before            (nbf): {}",
        claims.not_before.as_deref().unwrap_or(absent)
    );
    out!(
        "expires               (exp): {}{}",
        claims.expires.as_deref().unwrap_or(absent),
        if expired { " (expired)" } else { "" }
    );
    0
}
