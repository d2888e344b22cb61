//! The bodies of the chat's requests: what the SA sends the platform and
//! the widget sends UCWA, as the contract names their members. The SA side
//! writes them; the emulator reads them, with the variants the sources
//! show (the old `impersonatedDisplayName`, PascalCase keys from the Web
//! SDK, both spellings of `callbackContext`).

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::Links;

/// The longest `operationId` the API accepts.
pub const MAX_OPERATION_ID_CHARS: usize = 50;
/// The longest `subject` (and `threadId`, `anonymousDisplayName`).
pub const MAX_SUBJECT_CHARS: usize = 250;
/// The longest `callbackUrl`.
pub const MAX_CALLBACK_URL_CHARS: usize = 1024;

/// `POST <startAdhocMeeting>`: the SA's meeting for one chat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartAdhocMeetingInput {
    /// The meeting's subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The SA's id for this operation (at most 50 characters).
    pub operation_id: String,
    /// Where the meeting's callbacks go, if not the default URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    /// The context the meeting's callbacks carry (`?callbackContext=`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_context: Option<String>,
}

/// `POST <addMessaging>`: the SA's messaging in its meeting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddMessagingInput {
    /// The SA's id for this operation.
    pub operation_id: String,
}

/// `POST <acceptAndBridge>`: accepts the visitor's invitation into the
/// meeting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AcceptAndBridgeInput {
    /// The meeting's SIP URI.
    pub online_meeting_uri: String,
    /// The name the visitor sees for the help desk (the chat walkthrough
    /// called it `impersonatedDisplayName`).
    #[serde(
        default,
        alias = "impersonatedDisplayName",
        skip_serializing_if = "Option::is_none"
    )]
    pub local_user_display_name: Option<String>,
}

/// `POST <bridgedParticipants>`: a participant whose messages the visitor
/// sees, under the name given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BridgedParticipantInput {
    /// The name the visitor sees.
    pub display_name: String,
    /// The participant's SIP URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant_uri: Option<String>,
    /// `Disabled` passes the participant's messages on.
    pub message_filter_state: crate::MessageFilterState,
}

/// `POST <addParticipant>`: invites an agent into the meeting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddParticipantInput {
    /// The agent's SIP URI.
    pub to: String,
    /// The SA's id for this operation.
    pub operation_id: String,
}

/// The SA's answer to a callback: `200` with, optionally, the context the
/// conversation's later callbacks carry. Read as `callbackContext` or as
/// `CallbackContext` (the docs' spelling); written as `callbackContext`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackAnswer {
    /// The context.
    #[serde(
        rename = "callbackContext",
        alias = "CallbackContext",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub callback_context: Option<String>,
}

/// `POST <startMessaging>`: the widget invites the help desk to a chat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartMessagingInput {
    /// The help desk's SIP URI (the token's endpoint).
    pub to: String,
    /// The widget's id for this operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_id: Option<String>,
    /// The chat's subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Extra content for the SA (`"CID:2"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_content: Option<String>,
    /// An optional first message, as `_links.message` (a data URI).
    #[serde(rename = "_links", default, skip_serializing_if = "Option::is_none")]
    pub links: Option<Links>,
}

/// `POST <anonApplications>`: the widget's anonymous application. Keys are
/// read without regard to case (the Web SDK sent `AnonymousDisplayName`,
/// `UserAgent`, `Culture`, and the server took them); `culture` and
/// `userAgent` are required, as UCWA requires them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AnonApplicationInput {
    /// The name the help desk sees.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anonymous_display_name: Option<String>,
    /// The visitor's culture (`en-us`).
    pub culture: String,
    /// The widget's name and version.
    pub user_agent: String,
}

impl<'de> Deserialize<'de> for AnonApplicationInput {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = Map::<String, Value>::deserialize(deserializer)?;
        let mut name = None;
        let mut culture = None;
        let mut user_agent = None;
        for (key, value) in map {
            let slot = match key.to_ascii_lowercase().as_str() {
                "anonymousdisplayname" => &mut name,
                "culture" => &mut culture,
                "useragent" => &mut user_agent,
                _ => continue,
            };
            if slot.is_some() {
                return Err(D::Error::custom(format!("duplicate field `{key}`")));
            }
            match value {
                Value::String(text) => *slot = Some(text),
                Value::Null => {}
                other => {
                    return Err(D::Error::custom(format!(
                        "`{key}` must be a string, not {other}"
                    )));
                }
            }
        }
        Ok(Self {
            anonymous_display_name: name,
            culture: culture.ok_or_else(|| D::Error::missing_field("culture"))?,
            user_agent: user_agent.ok_or_else(|| D::Error::missing_field("userAgent"))?,
        })
    }
}
