//! The sans-IO promise: `ta-protocol`'s state machines driven by hand,
//! synchronously, with no async runtime on the client's side. A blocking
//! HTTP client (ureq, rustls on ring) sends what the flows ask for; the
//! same ten-line loop drives the API's `Flow` and the AAD `TokenFlow`.
//! (The emulator is a server and runs on its own thread; the client code
//! below never touches it but over HTTPS.)
//!
//! ```sh
//! cargo run -p ta-examples --example sans_io_sync
//! ```
#![allow(clippy::print_stdout)]

use std::error::Error;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use ta_protocol::aad::{ClientId, Proof, TokenEndpoint, TokenError, TokenFlow};
use ta_protocol::bytes::Bytes;
use ta_protocol::{
    AccessToken, AllowedOrigins, ApplicationSessionId, ClientSecret, Config, Driveable, Flow,
    MintRequest, OriginPolicy, Output, RetryPolicy, SeededEntropy, TokenNeed, TransportError,
    TransportErrorKind, UsageError, http,
};

/// Sends one request with ureq and buffers the answer (up to 1 MiB).
fn send(
    agent: &ureq::Agent,
    request: http::Request<Bytes>,
) -> Result<http::Response<Bytes>, TransportError> {
    let request = request.map(|body| body.to_vec());
    let response = agent.run(request).map_err(failure)?;
    let (parts, mut body) = response.into_parts();
    let body = body
        .with_config()
        .limit(1 << 20)
        .read_to_vec()
        .map_err(failure)?;
    Ok(http::Response::from_parts(parts, Bytes::from(body)))
}

/// A ureq failure as the retry policy reads it.
fn failure(error: ureq::Error) -> TransportError {
    let (kind, sent) = match &error {
        ureq::Error::Timeout(_) => (TransportErrorKind::Timeout, true),
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => {
            (TransportErrorKind::Connect, false)
        }
        ureq::Error::Rustls(_) => (TransportErrorKind::Tls, false),
        ureq::Error::BodyExceedsLimit(_) => (TransportErrorKind::BodyTooLarge, true),
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            (TransportErrorKind::Connect, false)
        }
        _ => (TransportErrorKind::Io, true),
    };
    TransportError::new(kind, sent).with_source(error)
}

/// The drive loop, synchronous: send what the flow asks, sleep through its
/// backoffs, answer its token needs with `token`.
fn drive<T, E, F>(
    mut flow: F,
    agent: &ureq::Agent,
    token: &mut dyn FnMut(&TokenNeed) -> Result<AccessToken, TokenError>,
) -> Result<T, E>
where
    F: Driveable<T, E>,
    E: From<UsageError>,
{
    loop {
        match flow.poll_output(Instant::now()) {
            Some(Output::Transmit(transmit)) => {
                let step = transmit.step();
                let (id, request) = transmit.into_parts();
                println!(
                    "  {step}: {} {}",
                    request.method(),
                    ta_protocol::redact(&request.uri().to_string())
                );
                match send(agent, request) {
                    Ok(response) => flow.handle_response(id, response, Instant::now())?,
                    Err(error) => flow.handle_transport_error(id, error, Instant::now())?,
                }
            }
            Some(Output::NeedToken(need)) => {
                let answer = token(&need);
                flow.handle_token(answer, Instant::now())?;
            }
            Some(Output::Timeout(at)) => {
                std::thread::sleep(at.saturating_duration_since(Instant::now()))
            }
            Some(Output::Done(result)) => return result,
            Some(_) | None => return Err(UsageError::Waiting("an answer").into()),
        }
    }
}

/// The emulator, on a thread of its own with its own runtime.
fn start_emulator() -> Result<(String, String, String), Box<dyn Error>> {
    let (sent, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        runtime.block_on(async move {
            match ta_emulator::Emulator::start(ta_emulator::EmulatorConfig::default()).await {
                Ok(emulator) => {
                    let urls = (
                        emulator.discover_url(),
                        emulator.token_url(),
                        emulator.ca_pem().unwrap_or_default().to_owned(),
                    );
                    let _ = sent.send(Ok(urls));
                    std::future::pending::<()>().await;
                }
                Err(e) => {
                    let _ = sent.send(Err(e.to_string()));
                }
            }
        });
    });
    Ok(received.recv()??)
}

fn main() -> Result<(), Box<dyn Error>> {
    let (discover_url, token_url, ca_pem) = start_emulator()?;
    let ca = ureq::tls::Certificate::from_pem(ca_pem.as_bytes())?.to_owned();
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::Specific(Arc::new(vec![ca])))
        .build();
    // The protocol decides redirects and reads every status itself.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(tls)
        .max_redirects(0)
        .http_status_as_error(false)
        .build()
        .into();

    let config = Config::builder(&discover_url, ta_emulator::DEFAULT_ENDPOINT)
        .build()?
        .into_shared();
    let endpoint = TokenEndpoint::parse(&token_url, false)?;
    let client_id = ClientId::new(ta_emulator::DEFAULT_CLIENT_ID)?;
    // An AAD token, when the API flow asks: the token flow, same loop.
    let mut token = |need: &TokenNeed| -> Result<AccessToken, TokenError> {
        println!("  (the API asked for a token for {})", need.audience);
        let flow = TokenFlow::new(
            endpoint.clone(),
            client_id.clone(),
            need.audience.clone(),
            Proof::Secret(ClientSecret::new(ta_emulator::DEFAULT_CLIENT_SECRET)),
            RetryPolicy::default(),
            Box::new(SeededEntropy::new(seed())),
        );
        drive(flow, &agent, &mut |_| {
            Err(TokenError::Other("not asked".to_owned()))
        })
        .map(|answer| answer.access_token)
    };

    let session = ApplicationSessionId::new(format!("sync-example-{}", seed()))?;
    let request = MintRequest::new(
        session,
        AllowedOrigins::parse_list("https://contoso.com", OriginPolicy::default())?,
    );
    println!("The whole flow, synchronously:");
    let flow = Flow::bootstrap(config, request, None, Box::new(SeededEntropy::new(seed())));
    let done = drive(flow, &agent, &mut token)?;
    println!(
        "minted with no async runtime: a widget token expiring {} for session {}",
        done.token.expiry, done.token.session_id
    );
    Ok(())
}

/// A seed for the flows' ids: the wall clock is enough for an example
/// (production drivers use a real random source).
fn seed() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(7, |d| d.as_nanos() as u64)
}
