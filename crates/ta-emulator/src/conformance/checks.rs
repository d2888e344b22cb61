//! The checks, one function each: what a [`Transport`] must do.

use std::net::SocketAddr;

use bytes::Bytes;
use ta_protocol::{Transport, TransportError, TransportErrorKind};

use super::Expectations;
use super::peer::{SEEN_VERSION, Servers};

/// The headers of the probe requests: what the protocol's own requests
/// carry (a transport must send them as they are, and add none but `Host`
/// and `Content-Length`).
const PROBE_HEADERS: [(&str, &str); 4] = [
    ("accept", "application/json"),
    ("authorization", "Bearer conformance-token"),
    ("client-request-id", "7d3b1c52-0000-4000-8000-00000000c0de"),
    ("x-ms-conformance", "probe"),
];

/// What HTTP itself needs and a transport may add.
const HTTP_ADDS: [&str; 2] = ["host", "content-length"];

type Outcome = Result<(), String>;

fn url(addr: SocketAddr, host: &str, path: &str) -> String {
    format!("https://{host}:{}{path}", addr.port())
}

fn get(url: &str) -> http::Request<Bytes> {
    let mut request = http::Request::new(Bytes::new());
    *request.uri_mut() = url.parse().unwrap_or_default();
    let headers = request.headers_mut();
    for (name, value) in PROBE_HEADERS {
        headers.insert(name, http::HeaderValue::from_static(value));
    }
    request
}

async fn send(
    transport: &dyn Transport,
    request: http::Request<Bytes>,
) -> Result<http::Response<Bytes>, String> {
    transport
        .send(request)
        .await
        .map_err(|e| format!("the request failed: {e} ({:?})", e.kind()))
}

fn expect_failure(
    outcome: Result<http::Response<Bytes>, TransportError>,
    kind: TransportErrorKind,
    sent: Option<bool>,
) -> Outcome {
    match outcome {
        Ok(response) => Err(format!(
            "expected a {kind:?} failure, got an answer ({})",
            response.status()
        )),
        Err(error) if error.kind() != kind => Err(format!(
            "expected a {kind:?} failure, got {:?}: {error}",
            error.kind()
        )),
        Err(error) => match sent {
            Some(sent) if error.may_have_been_sent() != sent => Err(format!(
                "a {kind:?} failure must say may_have_been_sent() == {sent}"
            )),
            _ => Ok(()),
        },
    }
}

fn version_is(response: &http::Response<Bytes>, expected: &str) -> Outcome {
    let seen = response
        .headers()
        .get(SEEN_VERSION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("none");
    if seen == expected {
        Ok(())
    } else {
        Err(format!("the server saw {seen}, not {expected}"))
    }
}

/// HTTP/1.1 with a server that speaks nothing else.
pub(super) async fn http1(servers: &Servers, transport: &dyn Transport) -> Outcome {
    let request = get(&url(servers.http1, "localhost", "/headers"));
    let response = send(transport, request).await?;
    status_is(&response, 200)?;
    version_is(&response, "HTTP/1.1")
}

/// HTTP/2 (by ALPN) with a server that speaks nothing else.
pub(super) async fn http2(servers: &Servers, transport: &dyn Transport) -> Outcome {
    let request = get(&url(servers.http2, "localhost", "/headers"));
    let response = send(transport, request).await?;
    status_is(&response, 200)?;
    version_is(&response, "HTTP/2.0")
}

fn status_is(response: &http::Response<Bytes>, status: u16) -> Outcome {
    if response.status().as_u16() == status {
        Ok(())
    } else {
        Err(format!("expected {status}, got {}", response.status()))
    }
}

/// A POST's body and content type arrive as sent, and the answer's body
/// comes back whole.
pub(super) async fn post_body(servers: &Servers, transport: &dyn Transport) -> Outcome {
    let body = Bytes::from_static(
        br#"{"applicationSessionId":"probe","allowedOrigins":"https://contoso.com"}"#,
    );
    let mut request = get(&url(servers.both, "127.0.0.1", "/echo"));
    *request.method_mut() = http::Method::POST;
    *request.body_mut() = body.clone();
    request.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    let response = send(transport, request).await?;
    status_is(&response, 200)?;
    if response.body() != &body {
        return Err(format!(
            "the body came back as {} bytes, not the {} sent",
            response.body().len(),
            body.len()
        ));
    }
    Ok(())
}

/// No header is added but what HTTP needs, none is dropped or changed, over
/// either version.
pub(super) async fn no_added_headers(servers: &Servers, transport: &dyn Transport) -> Outcome {
    for addr in [servers.http1, servers.http2] {
        let response = send(transport, get(&url(addr, "localhost", "/headers"))).await?;
        status_is(&response, 200)?;
        let text = String::from_utf8_lossy(response.body()).into_owned();
        let seen: Vec<(&str, &str)> = text
            .lines()
            .filter_map(|line| line.split_once(": "))
            .collect();
        for (name, value) in &seen {
            let sent = PROBE_HEADERS.iter().any(|(n, _)| n == name);
            if !sent && !HTTP_ADDS.contains(name) {
                return Err(format!(
                    "the transport added the header `{name}: {value}` (only Host and Content-Length may be added)"
                ));
            }
        }
        for (name, value) in PROBE_HEADERS {
            if !seen.contains(&(name, value)) {
                return Err(format!(
                    "the header `{name}` did not reach the server as sent"
                ));
            }
        }
    }
    Ok(())
}

/// A redirect is returned to the caller, not followed (the protocol decides
/// where the token may go).
pub(super) async fn redirect_returned(servers: &Servers, transport: &dyn Transport) -> Outcome {
    let response = send(transport, get(&url(servers.both, "localhost", "/redirect"))).await?;
    status_is(&response, 307).map_err(|e| format!("{e}: the redirect was followed"))?;
    if response.headers().get(http::header::LOCATION).is_none() {
        return Err("the 307 came back without its Location".to_owned());
    }
    Ok(())
}

/// A body at the limit is read whole; one byte more, announced or streamed,
/// is `BodyTooLarge`.
pub(super) async fn body_limit(
    servers: &Servers,
    transport: &dyn Transport,
    expect: &Expectations,
) -> Outcome {
    let limit = expect.max_body_bytes;
    let at = send(
        transport,
        get(&url(servers.both, "localhost", &format!("/big?n={limit}"))),
    )
    .await?;
    if at.body().len() != limit {
        return Err(format!(
            "a body of exactly the limit ({limit} bytes) came back as {} bytes",
            at.body().len()
        ));
    }
    for path in ["/big", "/big-chunked"] {
        let over = get(&url(
            servers.both,
            "localhost",
            &format!("{path}?n={}", limit + 1),
        ));
        expect_failure(
            transport.send(over).await,
            TransportErrorKind::BodyTooLarge,
            None,
        )
        .map_err(|e| format!("{path}, one byte over the limit: {e}"))?;
    }
    Ok(())
}

/// A certificate from a CA the transport was not told to trust is a TLS
/// failure, and nothing was sent.
pub(super) async fn untrusted_ca(servers: &Servers, transport: &dyn Transport) -> Outcome {
    let request = get(&url(servers.untrusted, "localhost", "/headers"));
    expect_failure(
        transport.send(request).await,
        TransportErrorKind::Tls,
        Some(false),
    )
}

/// A trusted certificate for another name is a TLS failure, and nothing was
/// sent.
pub(super) async fn name_mismatch(servers: &Servers, transport: &dyn Transport) -> Outcome {
    let request = get(&url(servers.mismatch, "localhost", "/headers"));
    expect_failure(
        transport.send(request).await,
        TransportErrorKind::Tls,
        Some(false),
    )
}

/// A refused connection is `Connect`, and nothing was sent.
pub(super) async fn refused(servers: &Servers, transport: &dyn Transport) -> Outcome {
    let request = get(&url(servers.refused, "127.0.0.1", "/headers"));
    expect_failure(
        transport.send(request).await,
        TransportErrorKind::Connect,
        Some(false),
    )
}

/// A server that never answers is a `Timeout` within the transport's own
/// limit.
pub(super) async fn timeout(servers: &Servers, transport: &dyn Transport) -> Outcome {
    let request = get(&url(servers.both, "localhost", "/hang"));
    expect_failure(
        transport.send(request).await,
        TransportErrorKind::Timeout,
        None,
    )
}

/// A connection reset in the middle of the body is a retryable failure
/// (`Io`), and the request may have been sent.
pub(super) async fn reset_mid_body(servers: &Servers, transport: &dyn Transport) -> Outcome {
    let request = get(&url(servers.reset, "localhost", "/headers"));
    match transport.send(request).await {
        Ok(response) => Err(format!(
            "a truncated body came back as an answer ({}, {} bytes)",
            response.status(),
            response.body().len()
        )),
        Err(error) if !error.kind().is_retryable() => Err(format!(
            "a reset must be retryable (Io), got {:?}: {error}",
            error.kind()
        )),
        Err(error) if !error.may_have_been_sent() => {
            Err("after the answer began, the request may have been sent".to_owned())
        }
        Err(_) => Ok(()),
    }
}

/// A request whose URI is not absolute is refused as `InvalidRequest`,
/// unsent.
pub(super) async fn relative_uri(transport: &dyn Transport) -> Outcome {
    let mut request = http::Request::new(Bytes::new());
    *request.uri_mut() = http::Uri::from_static("/headers");
    expect_failure(
        transport.send(request).await,
        TransportErrorKind::InvalidRequest,
        Some(false),
    )
}
