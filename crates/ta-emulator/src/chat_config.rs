//! The emulated chat world's settings: the SA's callback registration, the
//! platform's timers, the simulated agents and the callback faults.

use serde::{Deserialize, Serialize};

/// The default App ID URI of the SA (the audience of callback tokens).
pub const DEFAULT_APP_ID_URI: &str = "https://sa.contoso.com";

/// A simulated support agent: a Skype for Business user who joins when
/// added to a meeting, types, and answers each of the visitor's messages
/// with the next line of a script.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentConfig {
    /// The agent's SIP URI.
    pub uri: String,
    /// The agent's own display name.
    pub name: String,
    /// How long after being invited the agent joins.
    pub join_after_ms: u64,
    /// How long after a visitor's message the agent starts typing.
    pub think_ms: u64,
    /// How long the agent types before the answer is sent.
    pub type_ms: u64,
    /// The answers, in order (the last one repeats).
    pub answers: Vec<String>,
    /// Never joins (the invitation fails after the invitation timeout).
    pub never_joins: bool,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            uri: "sip:anna@contoso.com".to_owned(),
            name: "Anna".to_owned(),
            join_after_ms: 800,
            think_ms: 200,
            type_ms: 600,
            answers: vec![
                "Hi, I'm Anna. How can I help?".to_owned(),
                "Let me check that for you.".to_owned(),
                "Is there anything else I can do?".to_owned(),
            ],
            never_joins: false,
        }
    }
}

/// The chat's settings. Every timer is in milliseconds, so that tests can
/// run a conversation in seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChatConfig {
    /// The SA's registered callback URI, where the first callback of a
    /// conversation goes (settable at run time too:
    /// [`Emulator::set_callback_url`](crate::Emulator::set_callback_url)).
    /// Loopback only. `None`: visitors' invitations fail as unreachable.
    pub callback_url: Option<String>,
    /// The SA's App ID URI: the audience of the callback tokens.
    pub callback_audience: String,
    /// How long an events poll is held when there is nothing to say.
    pub long_poll_ms: u64,
    /// How long a visitor's invitation waits for the SA to accept it, and
    /// an agent's for the agent to join.
    pub invitation_timeout_ms: u64,
    /// How long a message to the visitor waits to be fetched before it
    /// fails (its sender is told it was not delivered).
    pub message_timeout_ms: u64,
    /// How long an anonymous application lives without a poll before it
    /// expires (its conversation ends).
    pub app_idle_timeout_ms: u64,
    /// How long one callback delivery may take.
    pub callback_timeout_ms: u64,
    /// How often a failed callback is tried again.
    pub callback_retries: u32,
    /// The agents.
    pub agents: Vec<AgentConfig>,
    /// Fault: every callback is delivered twice.
    pub duplicate_callbacks: bool,
    /// Fault: callbacks are held and delivered in pairs, the second first.
    pub reorder_callbacks: bool,
    /// Fault: every callback is delivered this late.
    pub callback_delay_ms: u64,
}

impl Default for ChatConfig {
    fn default() -> Self {
        Self {
            callback_url: None,
            callback_audience: DEFAULT_APP_ID_URI.to_owned(),
            long_poll_ms: 180_000,
            invitation_timeout_ms: 30_000,
            message_timeout_ms: 30_000,
            app_idle_timeout_ms: 10 * 60_000,
            callback_timeout_ms: 10_000,
            callback_retries: 2,
            agents: vec![AgentConfig::default()],
            duplicate_callbacks: false,
            reorder_callbacks: false,
            callback_delay_ms: 0,
        }
    }
}

/// The callback faults at one moment: set from [`ChatConfig`] at start,
/// and changeable while running
/// ([`Emulator::set_callback_faults`](crate::Emulator::set_callback_faults)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct CallbackFaults {
    /// Every callback is delivered twice.
    pub duplicate: bool,
    /// Callbacks are held and delivered in pairs, the second first.
    pub reorder: bool,
    /// Every callback is delivered this late (milliseconds).
    pub delay_ms: u64,
}

impl CallbackFaults {
    /// No callback fault.
    pub const NONE: Self = Self {
        duplicate: false,
        reorder: false,
        delay_ms: 0,
    };
}

impl ChatConfig {
    /// The callback faults this configuration starts with.
    pub fn callback_faults(&self) -> CallbackFaults {
        CallbackFaults {
            duplicate: self.duplicate_callbacks,
            reorder: self.reorder_callbacks,
            delay_ms: self.callback_delay_ms,
        }
    }

    /// The agent with this SIP URI.
    pub fn agent(&self, uri: &str) -> Option<&AgentConfig> {
        self.agents.iter().find(|a| a.uri.eq_ignore_ascii_case(uri))
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if let Some(url) = &self.callback_url {
            check_callback_url(url)?;
        }
        if self.long_poll_ms == 0 || self.invitation_timeout_ms == 0 {
            return Err("chat timers must be above zero".to_owned());
        }
        for agent in &self.agents {
            if !agent.uri.to_ascii_lowercase().starts_with("sip:") {
                return Err(format!("agent {:?} is not a sip: URI", agent.uri));
            }
        }
        Ok(())
    }
}

/// A callback URL must be http(s) on a loopback address: the emulator
/// calls nothing else.
pub(crate) fn check_callback_url(url: &str) -> Result<url::Url, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("callback URL {url:?}: {e}"))?;
    let loopback = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    if !matches!(parsed.scheme(), "http" | "https") || !loopback {
        return Err(format!(
            "callback URL {url:?} must be http(s) on a loopback address"
        ));
    }
    Ok(parsed)
}
