//! How the protocol's requests are written on the wire.

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, ORIGIN};
use http::{HeaderName, HeaderValue, Method};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use url::Url;

use crate::config::{EndpointId, Origin};
use crate::entropy::ClientRequestId;
use crate::secret::AccessToken;

/// The header carrying a fresh id per request.
pub const CLIENT_REQUEST_ID: HeaderName = HeaderName::from_static("client-request-id");
/// The answer header with the server's correlation id.
pub const X_MS_CORRELATION_ID: HeaderName = HeaderName::from_static("x-ms-correlation-id");
/// The answer header naming the server that answered.
pub const X_MS_SERVER_FQDN: HeaderName = HeaderName::from_static("x-ms-server-fqdn");
/// The answer header with a diagnostic code and reason.
pub const X_MS_DIAGNOSTICS: HeaderName = HeaderName::from_static("x-ms-diagnostics");

/// The content type of the mint's JSON body.
pub const JSON_UTF8: &str = "application/json; charset=utf-8";

/// What is percent-encoded in the `endpointId` value: what a query component
/// cannot carry raw, and what would change its meaning (`&`, `+`, `#`, `%`).
/// `:` and `@` stay raw, as the API's own examples write them.
const ENDPOINT_ID_SET: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'&')
    .add(b'+')
    .add(b'<')
    .add(b'>')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// `url` with `endpointId=<sip uri>` appended to its query (unless it
/// already has an `endpointId`), the URI written raw as the API's examples
/// do: `…/applications?endpointId=sip:helpdesk@contoso.com`.
pub fn with_endpoint_id(url: &Url, endpoint_id: &EndpointId) -> Url {
    let has_it = url
        .query()
        .is_some_and(|q| q.split('&').any(|p| p.starts_with("endpointId=")));
    if has_it {
        return url.clone();
    }
    let encoded = utf8_percent_encode(endpoint_id.as_str(), ENDPOINT_ID_SET);
    let query = match url.query() {
        Some(q) if !q.is_empty() => format!("{q}&endpointId={encoded}"),
        _ => format!("endpointId={encoded}"),
    };
    let mut url = url.clone();
    url.set_query(Some(&query));
    url
}

/// The pieces of one request.
pub(crate) struct Outgoing<'a> {
    pub(crate) method: &'a Method,
    pub(crate) url: &'a Url,
    pub(crate) body: Option<&'a Bytes>,
    pub(crate) content_type: &'static str,
    pub(crate) request_id: &'a ClientRequestId,
    pub(crate) bearer: Option<&'a AccessToken>,
    pub(crate) origin: Option<&'a Origin>,
}

/// Why a request could not be written.
#[derive(Debug)]
pub(crate) enum BuildError {
    /// The URL is not a valid HTTP request target.
    Uri,
    /// The token cannot go in a header.
    Token,
}

impl Outgoing<'_> {
    pub(crate) fn build(&self) -> Result<http::Request<Bytes>, BuildError> {
        let uri: http::Uri = self.url.as_str().parse().map_err(|_| BuildError::Uri)?;
        let mut request = http::Request::new(self.body.cloned().unwrap_or_default());
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = uri;
        let headers = request.headers_mut();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        headers.insert(CLIENT_REQUEST_ID, self.request_id.header_value().clone());
        if self.body.is_some() {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(self.content_type));
        }
        if let Some(origin) = self.origin {
            // An origin is ASCII by construction.
            let value = HeaderValue::from_str(origin.as_str()).map_err(|_| BuildError::Uri)?;
            headers.insert(ORIGIN, value);
        }
        if let Some(token) = self.bearer {
            let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
                .map_err(|_| BuildError::Token)?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        Ok(request)
    }
}
