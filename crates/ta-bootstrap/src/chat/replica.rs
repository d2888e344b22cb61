//! Which replica holds a chat: its name is the first part of the chat's id,
//! so that a callback that reaches another replica (behind a load
//! balancer) can be sent on to the one that holds the chat.

use std::fmt;

/// A replica's name: 1 to 14 characters of `a-z 0-9 -`, starting with a
/// letter and not ending with `-` (a DNS label, such as a StatefulSet
/// pod's name `ta-chat-0`; never a number, so a name put into a host
/// cannot make it an IP address). A switchboard with a name
/// ([`SwitchboardOptions::with_replica`](super::SwitchboardOptions::with_replica))
/// makes chat ids `<name>_c<16 characters>`, so that the `callbackContext`
/// of every later callback names the replica.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReplicaName(String);

/// Why a text is not a [`ReplicaName`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a replica name is 1 to 14 characters of a-z 0-9 -, starting with a letter and not ending with -, not {0:?}"
)]
pub struct InvalidReplicaName(String);

impl ReplicaName {
    /// The longest name: with `_c` and 16 characters, a chat id stays
    /// within its 32.
    pub const MAX_CHARS: usize = 14;

    /// Checks and wraps `name`.
    pub fn new(name: &str) -> Result<Self, InvalidReplicaName> {
        let valid = name.len() <= Self::MAX_CHARS
            && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
            && !name.ends_with('-')
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if valid {
            Ok(Self(name.to_owned()))
        } else {
            Err(InvalidReplicaName(name.chars().take(40).collect()))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The replica a chat's id (a callback's `callbackContext`) names, if
    /// it names one.
    pub fn of_context(context: &str) -> Option<Self> {
        let (name, rest) = context.split_once('_')?;
        if !rest.starts_with('c') {
            return None;
        }
        Self::new(name).ok()
    }
}

impl fmt::Display for ReplicaName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_are_checked_and_read_back_from_contexts() {
        assert!(ReplicaName::new("ta-bootstrap-0").is_ok());
        assert!(ReplicaName::new("a").is_ok());
        for bad in [
            "",
            "ta-bootstrap-10x",
            "A",
            "a_b",
            "a.b",
            "é",
            "2130706433",
            "0x7f000001",
            "-a",
            "a-",
        ] {
            assert!(ReplicaName::new(bad).is_err(), "{bad}");
        }
        let name = ReplicaName::new("r1").unwrap();
        assert_eq!(ReplicaName::of_context("r1_cAbC123"), Some(name));
        assert_eq!(ReplicaName::of_context("cAbC123"), None, "no replica");
        assert_eq!(ReplicaName::of_context("R1_cX"), None);
        assert_eq!(ReplicaName::of_context("r1_x"), None);
    }
}
