//! `GET /platformservice/v1/applications/{id}`: the application resource
//! and what the tenant consented to.

use super::*;

pub(super) async fn application(
    AxState(state): AxState<Shared>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let response = match state.api_prelude(&uri, &headers, query.as_deref()) {
        Err(response) => response,
        Ok((_, app, _)) if !app.application_id.eq_ignore_ascii_case(&id) => state.error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            Some("ApplicationNotFound"),
            &format!("application {id} does not belong to the token's application"),
        ),
        Ok((_, app, endpoint)) => state.body(StatusCode::OK, &state.capabilities(app, endpoint)),
    };
    tagged(Route::Application, response)
}

impl State {
    pub(super) fn capabilities(&self, app: &AppConfig, endpoint: &EndpointConfig) -> Resource {
        let ps = self.ps();
        let id = &app.application_id;
        let raw = self.endpoint_in_href(&endpoint.sip, false);
        let base = format!("/{ps}/v1/applications/{id}");
        let mut resource = Resource::new().with_link(
            Rel::parse(names::SELF),
            Link::new(format!(
                "{base}?endpointId={}",
                self.endpoint_in_href(&endpoint.sip, true)
            )),
        );
        if endpoint.anon_tokens {
            resource = resource.with_link(
                self.rel(names::ANON_APPLICATION_TOKENS),
                Link::new(format!("{base}/anonApplicationTokens?endpointId={raw}")),
            );
        }
        let communication = Resource::new()
            .with_link(
                Rel::parse(names::SELF),
                Link::new(format!("{base}/communication?endpointId={raw}")),
            )
            .with_link(
                self.rel(names::JOIN_ONLINE_MEETING),
                Link::new(format!(
                    "{base}/communication/onlineMeetingInvitations?endpointId={raw}"
                )),
            )
            .with_link(
                self.rel(names::INVITE_USER_TO_MEETING),
                Link::new(format!(
                    "{base}/communication/userMeetingInvitations?endpointId={raw}"
                )),
            )
            .with_link(
                self.rel(names::START_MESSAGING),
                Link::new(format!(
                    "{base}/communication/messagingInvitations?endpointId={raw}"
                )),
            )
            .with_rel(self.rel(names::COMMUNICATION))
            .with_etag("4294967295");
        let adhoc = Resource::new()
            .with_link(
                Rel::parse(names::SELF),
                Link::new(format!("{base}/adhocMeetings?endpointId={raw}")),
            )
            .with_rel(self.rel(names::ADHOC_MEETINGS));
        resource
            .with_embedded(self.rel(names::COMMUNICATION), communication)
            .with_embedded(self.rel(names::ADHOC_MEETINGS), adhoc)
            .with_rel(self.rel("application"))
    }
}
