//! The demo site `serve --emulator` serves on its own origins: a chat
//! widget page (vanilla HTML/JS, shipped in the binary) that asks the
//! widget-token service for a token, then performs the chat client's
//! anonymous discovery against the emulator.
//!
//! OWNED BY THE DEMO-SITE HELPER: this skeleton fixes the interface only.

use axum::Router;

/// One demo site: the page and its script, pointed at a widget-token
/// service.
#[derive(Debug, Clone)]
pub struct DemoSite {
    service_url: String,
    note: String,
}

impl DemoSite {
    /// A site whose widget calls the service at `service_url` (its base,
    /// such as `http://127.0.0.1:8080`; the page posts to
    /// `{service_url}/v1/widget-token`).
    pub fn new(service_url: impl Into<String>) -> Self {
        Self {
            service_url: service_url.into(),
            note: String::new(),
        }
    }

    /// A line shown at the top of the page (for example, "this origin is
    /// not on the allowlist").
    #[must_use]
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.note = note.into();
        self
    }

    /// The routes of the site.
    pub fn router(&self) -> Router {
        let _ = (&self.service_url, &self.note);
        Router::new()
    }
}
