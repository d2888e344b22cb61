//! HAL+JSON types and the resource types of the Skype for Business
//! **Trusted Application API**.
//!
//! This crate is data only: it depends on serde, `url` and `time`, and does no
//! I/O. It is shared by the client side (`ta-protocol`) and the emulator,
//! which serializes its answers with the same types.
//!
//! - [`Rel`] treats `service:x` and `ms:rtc:saas:x` as the same relation.
//! - [`Resource`] keeps every member it was given: a round trip loses nothing.
//! - [`Link::resolve`] resolves hrefs with the `url` crate and keeps
//!   percent-encoding exactly as the server wrote it.
//! - [`from_slice`] accepts a UTF-8 byte order mark and reports the JSON path
//!   of what did not fit.
//!
//! ```
//! use hal_model::{Application, from_slice};
//! let body = br#"{"_links":{"service:anonApplicationTokens":{"href":"/platformservice/v1/applications/1/anonApplicationTokens"}},"rel":"service:application"}"#;
//! let app: Application = from_slice(body)?;
//! assert!(app.anon_application_tokens().is_some());
//! # Ok::<(), hal_model::ParseError>(())
//! ```

#[macro_use]
mod macros;
mod api;
mod chat;
mod data_uri;
mod events;
mod expiry;
mod link;
mod rel;
mod resource;

pub use api::{
    AnonApplicationToken, AnonDiscover, Application, Applications, Discover, ErrorBody, PsatToken,
};
pub use chat::{
    AcceptAndBridgeInput, AddMessagingInput, AddParticipantInput, AnonApplicationInput,
    BridgedParticipant, BridgedParticipantInput, CallbackAnswer, Conversation, ConversationBridge,
    ConversationState, Direction, EventType, InvitationState, MAX_CALLBACK_URL_CHARS,
    MAX_OPERATION_ID_CHARS, MAX_SUBJECT_CHARS, Message, MessageFilterState, Messaging,
    MessagingInvitation, ModalityState, OnlineMeeting, OnlineMeetingInvitation, OperationStatus,
    PLATFORM_APP_ID, Participant, ParticipantInvitation, StartAdhocMeetingInput,
    StartMessagingInput, UcwaApplication,
};
pub use data_uri::{DataUri, DataUriError};
pub use events::{Event, EventLink, Events, Sender};
pub use expiry::{ExpiryFormat, ExpiryTime, ExpiryTimeError};
pub use link::{HrefError, Link, Links, OneOrMany, RelMap};
pub use rel::{Namespace, Rel, chat_names, names};
pub use resource::{Embedded, Resource};

use serde::de::DeserializeOwned;

/// The UTF-8 byte order mark some answers began with.
pub const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Why a body could not be read as the expected JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct ParseError {
    path: String,
    message: String,
    line: usize,
    column: usize,
    kind: ParseErrorKind,
}

/// What sort of problem a [`ParseError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// The body is not JSON (or not UTF-8, or has trailing characters).
    Syntax,
    /// The body ended early.
    Eof,
    /// The body is JSON, but not of the expected shape.
    Data,
}

impl ParseError {
    /// The JSON path of the value that did not fit (`.` for the document
    /// itself), for example `_links.self.href`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The parser's message, without position.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Line (1-based) and column of the failure in the body.
    pub fn position(&self) -> (usize, usize) {
        (self.line, self.column)
    }

    /// What sort of problem this is.
    pub fn kind(&self) -> ParseErrorKind {
        self.kind
    }

    fn describe(&self) -> String {
        let what = match self.kind {
            ParseErrorKind::Syntax => "the body is not valid JSON",
            ParseErrorKind::Eof => "the body ends early",
            ParseErrorKind::Data => "unexpected JSON",
        };
        format!(
            "{what} at `{}` (line {}, column {}): {}",
            self.path, self.line, self.column, self.message
        )
    }
}

/// Parses a JSON body as `T`.
///
/// A leading UTF-8 byte order mark is skipped. On failure the error keeps the
/// JSON path of the value that did not fit; no input makes this panic.
pub fn from_slice<T: DeserializeOwned>(body: &[u8]) -> Result<T, ParseError> {
    let body = body.strip_prefix(UTF8_BOM).unwrap_or(body);
    let mut de = serde_json::Deserializer::from_slice(body);
    let mut track = serde_path_to_error::Track::new();
    let result = T::deserialize(serde_path_to_error::Deserializer::new(&mut de, &mut track))
        .and_then(|value| de.end().map(|()| value));
    result.map_err(|error| {
        let kind = match error.classify() {
            serde_json::error::Category::Data => ParseErrorKind::Data,
            serde_json::error::Category::Eof => ParseErrorKind::Eof,
            serde_json::error::Category::Syntax | serde_json::error::Category::Io => {
                ParseErrorKind::Syntax
            }
        };
        let full = error.to_string();
        // serde_json appends " at line L column C"; the position is kept apart.
        let message = full
            .rsplit_once(" at line ")
            .map_or(full.as_str(), |(message, _)| message)
            .to_owned();
        ParseError {
            path: track.path().to_string(),
            message,
            line: error.line(),
            column: error.column(),
            kind,
        }
    })
}

/// Serializes a value as a JSON body (the emulator's answers).
pub fn to_vec<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // Serializing these types cannot fail: every key is a string and no
    // custom serializer returns an error.
    serde_json::to_vec(value).unwrap_or_default()
}
