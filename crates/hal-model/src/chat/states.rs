//! The string-valued enumerations of the chat's resources and events.
//!
//! Each is open: a value this crate does not know is kept as
//! `Other(text)`, so a new state from the server is never a parse error.
//! Known values are matched without regard to ASCII case (the API wrote
//! `Incoming`, some captures `incoming`) and written back in the API's
//! spelling.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
            /// A value this crate does not know, as received.
            Other(String),
        }

        impl $name {
            /// Reads a value (known values in any ASCII case).
            pub fn parse(text: &str) -> Self {
                $(if text.eq_ignore_ascii_case($text) {
                    return Self::$variant;
                })+
                Self::Other(text.to_owned())
            }

            /// The value as the API writes it (an unknown one as received).
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $text,)+
                    Self::Other(text) => text,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                Self::parse(text)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                Ok(Self::parse(&text))
            }
        }
    };
}

open_enum!(
    /// What happened to an event's target: `added` / `updated` / `deleted`
    /// for resources, `started` / `updated` / `completed` for operations.
    EventType {
        /// A resource appeared (or joined the collection named by `in`).
        Added = "added",
        /// A resource or an operation changed.
        Updated = "updated",
        /// A resource went away (or left the collection named by `in`).
        Deleted = "deleted",
        /// An operation began (an invitation, a message).
        Started = "started",
        /// An operation ended; see the event's `status`.
        Completed = "completed",
    }
);

open_enum!(
    /// The outcome of a completed operation.
    OperationStatus {
        /// It worked.
        Success = "Success",
        /// It failed; the event's `reason` says why.
        Failure = "Failure",
    }
);

open_enum!(
    /// Which way an invitation or a message goes, seen from the resource's
    /// owner.
    Direction {
        /// Towards the owner (a visitor's invitation, as the SA sees it).
        Incoming = "Incoming",
        /// From the owner.
        Outgoing = "Outgoing",
    }
);

open_enum!(
    /// The state of an invitation (messaging, online meeting, participant).
    InvitationState {
        /// Sent, not answered yet.
        Connecting = "Connecting",
        /// Accepted.
        Connected = "Connected",
        /// Declined, timed out or failed.
        Failed = "Failed",
    }
);

open_enum!(
    /// The state of a conversation.
    ConversationState {
        /// Being set up.
        Connecting = "Connecting",
        /// Established (a peer-to-peer conversation, or a bridged one).
        Connected = "Connected",
        /// Turning into a conference.
        Conferencing = "Conferencing",
        /// A conference (the SA's ad hoc meeting).
        Conferenced = "Conferenced",
        /// Waiting in a meeting's lobby.
        InLobby = "InLobby",
        /// Over.
        Disconnected = "Disconnected",
    }
);

open_enum!(
    /// The state of a modality such as messaging.
    ModalityState {
        /// Being set up.
        Connecting = "Connecting",
        /// Ready: messages can be sent.
        Connected = "Connected",
        /// Not (or no longer) connected.
        Disconnected = "Disconnected",
    }
);

open_enum!(
    /// Whether a bridged participant's messages are held back from the
    /// other side of the bridge.
    MessageFilterState {
        /// Held back.
        Enabled = "Enabled",
        /// Passed on: the visitor sees this participant's messages.
        Disabled = "Disabled",
    }
);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn known_values_in_any_case_and_unknown_ones_kept() {
        assert_eq!(EventType::parse("Completed"), EventType::Completed);
        assert_eq!(Direction::parse("incoming"), Direction::Incoming);
        let other = ConversationState::parse("Parked");
        assert_eq!(other, ConversationState::Other("Parked".to_owned()));
        assert_eq!(other.as_str(), "Parked");
        let json = serde_json::to_string(&EventType::parse("STARTED")).unwrap();
        assert_eq!(json, "\"started\"");
        let back: ModalityState = serde_json::from_str("\"Connected\"").unwrap();
        assert_eq!(back, ModalityState::Connected);
    }
}
