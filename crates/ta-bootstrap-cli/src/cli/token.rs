//! `token`: one mint; exactly one JSON object on stdout.

use clap::Args;
use serde::Serialize;

use super::upstream::{UpstreamArgs, session_id};
use super::{config_error, fail};

/// Arguments of `token`.
#[derive(Debug, Args)]
pub(crate) struct TokenArgs {
    #[command(flatten)]
    upstream: UpstreamArgs,
    /// The application session id [default: a new UUID v4].
    #[arg(long, env = "TA_SESSION_ID")]
    session_id: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Output<'a> {
    token: &'a str,
    expires_at: String,
    discover_uri: &'a str,
    application_session_id: &'a str,
    allowed_origins: Vec<&'a str>,
}

pub(crate) async fn run(args: TokenArgs) -> u8 {
    let upstream_args = match args.upstream.with_config_file() {
        Ok((upstream, _)) => upstream,
        Err(e) => return config_error(e),
    };
    let origins = match upstream_args.origins() {
        Ok(origins) => origins,
        Err(e) => return config_error(e),
    };
    let session = match session_id(args.session_id.as_deref()) {
        Ok(session) => session,
        Err(e) => return config_error(e),
    };
    let upstream = match upstream_args.build() {
        Ok(upstream) => upstream,
        Err(e) => return config_error(e),
    };
    let minted = match session {
        Some(id) => upstream.bootstrapper.mint_with_session(origins, id).await,
        None => upstream.bootstrapper.mint(origins).await,
    };
    let minted = match minted {
        Ok(minted) => minted,
        Err(error) => return fail(&error),
    };
    let expires_at = minted.expiry.to_rfc3339_utc();
    let output = Output {
        token: minted.token.expose(),
        expires_at,
        discover_uri: minted.discover_url.as_str(),
        application_session_id: minted.session_id.as_str(),
        allowed_origins: minted
            .allowed_origins
            .as_slice()
            .iter()
            .map(ta_protocol::Origin::as_str)
            .collect(),
    };
    match serde_json::to_string(&output) {
        // The one place a token is printed: this command's stdout.
        Ok(json) => {
            out!("{json}");
            0
        }
        Err(e) => {
            eprintln!("error: upstream: could not write the answer: {e}");
            5
        }
    }
}
