//! `demo`: the whole flow against an embedded emulator, narrated.

use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use ta_bootstrap::{ClientCredentialsProvider, Credential, RandomEntropy, TokenProvider};
use ta_emulator::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_ENDPOINT, Emulator, EmulatorConfig,
};
use ta_hyper::HyperTransport;
use ta_protocol::aad::{ClientId, TokenEndpoint};
use ta_protocol::{
    AllowedOrigins, ApplicationSessionId, ClientSecret, Config, Driveable, Flow, MintRequest,
    Origin, OriginPolicy, Output, Step, Transport, redact,
};

use super::config_error;

/// Arguments of `demo` (none are needed).
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// The web origin the demo widget runs on.
    #[arg(long, default_value = "https://contoso.com")]
    origin: String,
}

fn step_title(step: Step) -> &'static str {
    match step {
        Step::Discovery => "discovery (no token)",
        Step::Applications => "applications, with the endpoint id",
        Step::Application => "the application: its capabilities",
        Step::Mint => "anonApplicationTokens: mint the widget token",
        Step::AnonymousDiscovery => "the chat client's anonymous discovery",
        _ => "request",
    }
}

/// Drives a flow, telling each request and answer on stderr.
async fn narrate<T>(
    mut flow: Flow<T>,
    transport: &dyn Transport,
    tokens: &ClientCredentialsProvider,
    n: &mut u32,
) -> Result<T, ta_protocol::Error>
where
    Flow<T>: Driveable<T>,
{
    loop {
        match flow.poll_output(Instant::now()) {
            Some(Output::Transmit(t)) => {
                *n += 1;
                let request = t.request();
                let bearer = request.headers().contains_key(http::header::AUTHORIZATION);
                let origin = request
                    .headers()
                    .get(http::header::ORIGIN)
                    .and_then(|v| v.to_str().ok())
                    .map(|o| format!(", Origin: {o}"))
                    .unwrap_or_default();
                eprintln!("\n{n}. {}", step_title(t.step()));
                eprintln!(
                    "   → {} {}{}{origin}",
                    request.method(),
                    redact(&request.uri().to_string()),
                    if bearer {
                        " (Authorization: Bearer …)"
                    } else {
                        ""
                    }
                );
                let (id, request) = t.into_parts();
                match transport.send(request).await {
                    Ok(response) => {
                        let status = response.status();
                        eprintln!("   ← {status}");
                        if let Some(challenge) =
                            response.headers().get(http::header::WWW_AUTHENTICATE)
                        {
                            eprintln!(
                                "     WWW-Authenticate: {}",
                                challenge.to_str().unwrap_or("(not text)")
                            );
                        }
                        if let Some(acao) = response
                            .headers()
                            .get(http::header::ACCESS_CONTROL_ALLOW_ORIGIN)
                        {
                            eprintln!(
                                "     Access-Control-Allow-Origin: {} (the browser may read the answer)",
                                acao.to_str().unwrap_or("(not text)")
                            );
                        }
                        flow.handle_response(id, response, Instant::now())?;
                    }
                    Err(error) => {
                        eprintln!("   ✗ {error}");
                        flow.handle_transport_error(id, error, Instant::now())?;
                    }
                }
            }
            Some(Output::NeedToken(need)) => {
                *n += 1;
                eprintln!(
                    "\n{n}. Azure AD: client credentials for audience {}",
                    need.audience
                );
                let token = tokens.token(&need.audience).await;
                match &token {
                    Ok(_) => eprintln!(
                        "   ← access token issued (not shown); sending the request again with it"
                    ),
                    Err(e) => eprintln!("   ✗ {e}"),
                }
                flow.handle_token(token, Instant::now())?;
            }
            Some(Output::Timeout(at)) => {
                tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
            }
            Some(Output::Done(result)) => return result,
            _ => return Err(ta_protocol::UsageError::Waiting("an answer").into()),
        }
    }
}

pub(crate) async fn run(args: DemoArgs) -> u8 {
    let origin = match Origin::parse(&args.origin, OriginPolicy::default()) {
        Ok(origin) => origin,
        Err(e) => return config_error(e),
    };
    let emulator = match Emulator::start(EmulatorConfig::default()).await {
        Ok(emulator) => emulator,
        Err(e) => return config_error(e),
    };
    eprintln!("Started the embedded emulator of the Trusted Application API and Azure AD:");
    eprintln!("  discover URL {}", emulator.discover_url());
    eprintln!("  token URL    {}", emulator.token_url());
    let ca = emulator.ca_pem().unwrap_or_default().as_bytes().to_vec();
    let transport: Arc<dyn Transport> = match HyperTransport::builder()
        .add_root_certificates_pem(&ca)
        .and_then(|b| b.build())
    {
        Ok(transport) => Arc::new(transport),
        Err(e) => return config_error(e),
    };
    let built = (|| -> Result<_, String> {
        let config = Config::builder(&emulator.discover_url(), DEFAULT_ENDPOINT)
            .build()
            .map_err(|e| e.to_string())?
            .into_shared();
        let endpoint =
            TokenEndpoint::parse(&emulator.token_url(), false).map_err(|e| e.to_string())?;
        let client_id = ClientId::new(DEFAULT_CLIENT_ID).map_err(|e| e.to_string())?;
        let origins = AllowedOrigins::new([origin.clone()]).map_err(|e| e.to_string())?;
        Ok((config, endpoint, client_id, origins))
    })();
    let (config, endpoint, client_id, origins) = match built {
        Ok(built) => built,
        Err(e) => return config_error(e),
    };
    let tokens = ClientCredentialsProvider::builder(
        Arc::clone(&transport),
        endpoint,
        client_id,
        Credential::Secret(ClientSecret::new(DEFAULT_CLIENT_SECRET)),
    )
    .build();
    let session_id: ApplicationSessionId =
        ta_protocol::Entropy::session_id(&mut RandomEntropy::new());
    eprintln!("The SA mints a widget token for origin {origin}, session {session_id}:");
    let request = MintRequest::new(session_id, origins);
    let mut n = 0;
    let entropy = || Box::new(RandomEntropy::new());
    let done = match narrate(
        Flow::bootstrap(Arc::clone(&config), request, None, entropy()),
        transport.as_ref(),
        &tokens,
        &mut n,
    )
    .await
    {
        Ok(done) => done,
        Err(e) => return super::fail(&e.into()),
    };
    eprintln!(
        "\n   The tenant consented to: {}",
        done.capabilities.application.capabilities().join(", ")
    );
    eprintln!("   The widget token expires {}.", done.token.expiry);
    eprintln!(
        "\nThe SA hands the token and the discover link to the widget, which then, from the browser:"
    );
    let found = match narrate(
        Flow::anonymous_discovery(config, done.token.discover_url.clone(), origin, entropy()),
        transport.as_ref(),
        &tokens,
        &mut n,
    )
    .await
    {
        Ok(found) => found,
        Err(e) => return super::fail(&e.into()),
    };
    eprintln!(
        "   anonApplications: {} — CORS {}",
        found.anon_applications,
        if found.cors_allows_origin() {
            "allows the widget's origin"
        } else {
            "does NOT allow the widget's origin"
        }
    );
    let stats = emulator.stats();
    eprintln!(
        "\nDone: {} requests to the API and AAD, {} AAD token, {} TLS connections.",
        stats.total_requests(),
        stats.aad_tokens_issued,
        stats.tls_handshakes
    );
    eprintln!(
        "stdout: the widget token, then the discover link (an emulator token: it opens nothing else)."
    );
    out!("{}", done.token.token.expose());
    out!("{}", done.token.discover_url);
    0
}
