//! `GET /platformservice/v1/applications?endpointId=…`.

use super::*;

pub(super) async fn applications(
    AxState(state): AxState<Shared>,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let response = match state.api_prelude(&uri, &headers, query.as_deref()) {
        Err(response) => response,
        Ok((_, app, endpoint)) => {
            let ps = state.ps();
            let resource = Resource::new()
                .with_link(
                    Rel::parse(names::SELF),
                    Link::new(format!(
                        "/{ps}/v1/applications?endpointId={}",
                        state.endpoint_in_href(&endpoint.sip, false)
                    )),
                )
                .with_link(
                    state.rel(names::APPLICATION),
                    Link::new(format!(
                        "/{ps}/v1/applications/{}?endpointId={}",
                        app.application_id,
                        state.endpoint_in_href(&endpoint.sip, true)
                    )),
                )
                .with_rel(state.rel("applications"));
            state.body(StatusCode::OK, &resource)
        }
    };
    tagged(Route::Applications, response)
}
