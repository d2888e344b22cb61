//! Where the chat's resources live: the widget's (UCWA, bare rels, under
//! `/ucwa/psanon/v1/applications/{app}`) and the SA's (the platform's,
//! under the application's `communication`, with `endpointId`).

use crate::app::State;

/// The widget's application.
pub(super) fn app(app: &str) -> String {
    format!("/ucwa/psanon/v1/applications/{app}")
}

/// The widget's events, at `ack`.
pub(super) fn events(app_id: &str, ack: u64) -> String {
    format!("{}/events?ack={ack}&key={app_id}", app(app_id))
}

/// The widget's view of a conversation.
pub(super) fn widget_conversation(app_id: &str, conversation: &str) -> String {
    format!("{}/communication/conversations/{conversation}", app(app_id))
}

impl State {
    /// The platform's `communication` of the default application.
    pub(super) fn communication(&self) -> String {
        format!(
            "/{}/v1/applications/{}/communication",
            self.ps(),
            crate::DEFAULT_APPLICATION_ID
        )
    }

    /// `?endpointId=…` of the application's endpoint.
    pub(super) fn ep(&self) -> String {
        format!(
            "endpointId={}",
            self.endpoint_in_href(crate::DEFAULT_ENDPOINT, false)
        )
    }

    /// A platform href: `communication` + `rest`, with the endpoint id.
    pub(super) fn sa_href(&self, rest: &str) -> String {
        let sep = if rest.contains('?') { '&' } else { '?' };
        format!("{}{rest}{sep}{}", self.communication(), self.ep())
    }

    /// The platform's view of a conversation (`rest` below it).
    pub(super) fn sa_conversation(&self, conversation: &str, rest: &str) -> String {
        self.sa_href(&format!("/conversations/{conversation}{rest}"))
    }
}
