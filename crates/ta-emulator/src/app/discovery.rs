//! Discovery: `GET /platformservice/discover`, served on the discovery
//! host only (a client must follow the absolute link to the API host).

use super::*;

pub(super) async fn discover(
    AxState(state): AxState<Shared>,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Some(context) = raw_query_param(query.as_deref(), "anonymousContext") {
        return tagged(
            Route::AnonymousDiscovery,
            state.anonymous_discovery(&context, &headers),
        );
    }
    tagged(Route::Discovery, state.discovery(&uri, &headers))
}

/// The widget-facing listener's discover route: the anonymous discovery
/// only; the SA's discovery is not served there.
pub(super) async fn widget_discover(
    AxState(state): AxState<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    match raw_query_param(query.as_deref(), "anonymousContext") {
        Some(context) => tagged(
            Route::AnonymousDiscovery,
            state.anonymous_discovery(&context, &headers),
        ),
        None => not_found(AxState(state), method, uri).await,
    }
}

impl State {
    pub(super) fn discovery(&self, uri: &Uri, headers: &HeaderMap) -> Response {
        if host_of(uri, headers).as_deref() != Some(&self.discovery_host()) {
            return self.misdirected(uri, headers);
        }
        if self.config.discovery_requires_token {
            if let Err(response) = self.authenticate(headers) {
                return response;
            }
        }
        let scheme = self.scheme();
        let resource = Resource::new()
            .with_link(
                Rel::parse(names::SELF),
                Link::new(format!(
                    "{scheme}://{}/{}/discover",
                    self.discovery_host(),
                    self.ps()
                )),
            )
            .with_link(
                self.rel(names::APPLICATIONS),
                Link::new(format!(
                    "{scheme}://{}/{}/v1/applications",
                    self.api_host(),
                    self.ps()
                )),
            )
            .with_link(
                Rel::parse(names::MY_APPLICATIONS),
                Link::new(format!(
                    "{scheme}://{}/{}/v1/myApplications",
                    self.api_host(),
                    self.ps()
                )),
            );
        self.body(StatusCode::OK, &resource)
    }

    pub(super) fn misdirected(&self, uri: &Uri, headers: &HeaderMap) -> Response {
        self.error(
            StatusCode::NOT_FOUND,
            "NotFound",
            Some("WrongHost"),
            &format!(
                "{} is not served on host {}; follow the links of the previous answer",
                uri.path(),
                host_of(uri, headers).unwrap_or_default()
            ),
        )
    }
}
