//! `doctor`: checks a deployment step by step.

use std::sync::Arc;

use clap::Args;
use ta_bootstrap::{BootstrapError, FailureKind, TokenProvider};
use ta_protocol::Flow;

use super::upstream::UpstreamArgs;

/// Arguments of `doctor`.
#[derive(Debug, Args)]
pub(crate) struct DoctorArgs {
    #[command(flatten)]
    upstream: UpstreamArgs,
    /// Also mint a real test token (it is not printed).
    #[arg(long)]
    mint: bool,
    /// Also check the SA's callback endpoint (`serve`'s `/v1/callback`, as
    /// the platform reaches it): `GET` must answer 200 and an unsigned
    /// `POST` 401.
    #[arg(long, env = "TA_CALLBACK_URL")]
    callback_url: Option<String>,
}

struct Checklist {
    first_failure: Option<FailureKind>,
}

impl Checklist {
    fn pass(&self, what: &str, answer: &str) {
        out!("[PASS] {what} — {answer}");
    }

    fn fail(&mut self, what: &str, error: &BootstrapError) {
        out!(
            "[FAIL] {what} — {}",
            error.to_string().replace(['\r', '\n'], " ")
        );
        match error.hint() {
            Some(hint) => out!("       likely cause and fix: {hint}"),
            None => out!("       likely cause and fix: see the server's answer above"),
        }
        self.first_failure.get_or_insert(error.kind());
    }

    fn fail_config(&mut self, what: &str, message: &str) {
        out!("[FAIL] {what} — {message}");
        out!("       fix: correct the flag or environment variable named above");
        self.first_failure.get_or_insert(FailureKind::Config);
    }

    fn skip(what: &str) {
        out!("[SKIP] {what} — an earlier check failed");
    }

    fn exit_code(&self) -> u8 {
        self.first_failure.map_or(0, super::exit_code)
    }
}

const CHECKS: [&str; 6] = [
    "discover URL reachable, TLS verified",
    "applications link found",
    "AAD token obtained for the API's audience",
    "application endpoint registered for the tenant",
    "anonApplicationTokens consented",
    "test mint",
];

pub(crate) async fn run(args: DoctorArgs) -> u8 {
    let mut list = Checklist {
        first_failure: None,
    };
    let (upstream_args, callback_url) = match args.upstream.with_config_file() {
        Ok((upstream, file)) => (upstream, args.callback_url.clone().or(file.callback_url)),
        Err(e) => {
            list.fail_config("configuration valid", &e);
            for what in CHECKS {
                Checklist::skip(what);
            }
            return list.exit_code();
        }
    };
    let origins = if args.mint {
        match upstream_args.origins() {
            Ok(origins) => Some(origins),
            Err(e) => {
                list.fail_config("configuration valid", &e);
                return list.exit_code();
            }
        }
    } else {
        None
    };
    let upstream = match upstream_args.build() {
        Ok(upstream) => upstream,
        Err(e) => {
            list.fail_config("configuration valid", &e);
            for what in CHECKS {
                Checklist::skip(what);
            }
            return list.exit_code();
        }
    };
    list.pass(
        "configuration valid",
        &format!(
            "discover URL {}, endpoint {}, token endpoint {}, audience {}",
            upstream.config.discover_url(),
            upstream.config.endpoint_id(),
            upstream.token_endpoint.url(),
            upstream.config.audience()
        ),
    );
    if let Some(url) = &callback_url {
        check_callback(&mut list, upstream.transport.as_ref(), url).await;
    }
    let b = &upstream.bootstrapper;
    let entropy = || b.entropy();

    let discovery = match b
        .drive(Flow::discovery(Arc::clone(&upstream.config), entropy()))
        .await
    {
        Ok(discovery) => discovery,
        Err(e) => {
            list.fail(CHECKS[0], &e.into());
            for what in &CHECKS[1..] {
                Checklist::skip(what);
            }
            return list.exit_code();
        }
    };
    list.pass(CHECKS[0], &format!("answered from {}", discovery.url));
    list.pass(
        CHECKS[1],
        &format!(
            "{} (rel namespace {})",
            discovery.applications_url,
            discovery
                .namespace
                .map_or("none".to_owned(), |ns| ns.prefix().to_owned())
        ),
    );

    let token = match upstream.tokens.token(upstream.config.audience()).await {
        Ok(token) => token,
        Err(e) => {
            list.fail(CHECKS[2], &e.into());
            for what in &CHECKS[3..] {
                Checklist::skip(what);
            }
            return list.exit_code();
        }
    };
    list.pass(
        CHECKS[2],
        &format!(
            "audience {} (the token is not shown)",
            upstream.config.audience()
        ),
    );

    let caps = match b
        .drive(Flow::capabilities(
            Arc::clone(&upstream.config),
            discovery,
            Some(token),
            entropy(),
        ))
        .await
    {
        Ok(caps) => caps,
        Err(e) => {
            list.fail(CHECKS[3], &e.into());
            for what in &CHECKS[4..] {
                Checklist::skip(what);
            }
            return list.exit_code();
        }
    };
    list.pass(
        CHECKS[3],
        &format!(
            "{} answered; capabilities: {}",
            caps.application_url,
            caps.application.capabilities().join(", ")
        ),
    );
    match &caps.anon_application_tokens {
        Some(url) => list.pass(CHECKS[4], url.as_str()),
        None => {
            out!(
                "[FAIL] {} — the application resource lists no anonApplicationTokens link",
                CHECKS[4]
            );
            out!(
                "       likely cause and fix: a tenant admin must consent to anonymous application tokens for this application endpoint"
            );
            list.first_failure.get_or_insert(FailureKind::NotFound);
            if args.mint {
                Checklist::skip(CHECKS[5]);
            }
            return list.exit_code();
        }
    }
    if let Some(origins) = origins {
        match b.mint(origins).await {
            Ok(minted) => list.pass(
                CHECKS[5],
                &format!(
                    "minted for session {}; expires {} (the token is not shown)",
                    minted.session_id, minted.expiry
                ),
            ),
            Err(e) => list.fail(CHECKS[5], &e),
        }
    }
    list.exit_code()
}

/// The callback endpoint: reachable (`GET` 200) and refusing what is not
/// signed (`POST` without a token: 401). Checked apart from the API's
/// steps, so that it is reported whatever they say.
async fn check_callback(list: &mut Checklist, transport: &dyn ta_protocol::Transport, url: &str) {
    const WHAT: &str = "callback endpoint answers, and refuses unsigned callbacks";
    let request = |method: &str| {
        let body = if method == "POST" { "{}" } else { "" };
        http::Request::builder()
            .method(method)
            .uri(url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(ta_protocol::bytes::Bytes::from_static(body.as_bytes()))
    };
    let (Ok(get), Ok(post)) = (request("GET"), request("POST")) else {
        list.fail_config(WHAT, &format!("{url:?} is not a valid URL"));
        return;
    };
    let fail = |list: &mut Checklist, problem: String, hint: &str| {
        out!("[FAIL] {WHAT} — {problem}");
        out!("       likely cause and fix: {hint}");
        list.first_failure.get_or_insert(FailureKind::Upstream);
    };
    match transport.send(get).await {
        Ok(answer) if answer.status() == http::StatusCode::OK => {}
        Ok(answer) => {
            return fail(
                list,
                format!("GET {url} answered {}", answer.status()),
                "the URL must be serve's /v1/callback, with the chat on (--callback-audience, --callback-issuer, --callback-keys-url, --agent)",
            );
        }
        Err(e) => {
            return fail(
                list,
                format!("GET {url}: {e}"),
                "the platform must reach this URL: check the address, the proxy and the certificate",
            );
        }
    }
    match transport.send(post).await {
        Ok(answer) if answer.status() == http::StatusCode::UNAUTHORIZED => {
            list.pass(WHAT, &format!("GET {url} 200; an unsigned POST 401"));
        }
        Ok(answer) => fail(
            list,
            format!(
                "an unsigned POST to {url} answered {}, not 401",
                answer.status()
            ),
            "whatever answers there does not authenticate callbacks: it must be serve's /v1/callback",
        ),
        Err(e) => fail(
            list,
            format!("POST {url}: {e}"),
            "the platform must reach this URL: check the address, the proxy and the certificate",
        ),
    }
}
