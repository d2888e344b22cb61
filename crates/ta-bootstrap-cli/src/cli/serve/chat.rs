//! The chat's settings of `serve`: where the platform's callbacks are
//! checked against (audience, issuer, keys), which agents a chat invites,
//! and the switchboard and callback endpoint built from them.

use std::sync::Arc;

use clap::Args;
use ta_bootstrap::Bootstrapper;
use ta_bootstrap::chat::{StaticRouter, Switchboard, SwitchboardOptions};
use ta_bootstrap_cli::agent_spec::parse_agent;
use ta_protocol::Transport;
use ta_protocol::chat::{Plan, Timers};
use ta_widget_service::ChatEndpoint;
use ta_widget_service::callback::{CallbackAuth, CallbackVerifier, TransportKeySource};

use crate::cli::config_file::{FileConfig, fill, fill_list};

/// The longest an ending chat waits for a link it needs: under the
/// shutdown's grace for the chats (10 s).
const CLEANUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(8);

/// The chat's flags.
#[derive(Debug, Clone, Args)]
pub(crate) struct ChatArgs {
    /// The public URL the API calls back (this service's `/v1/callback`,
    /// as the Internet reaches it): registered for the application; what
    /// `doctor` checks.
    #[arg(long, env = "TA_CALLBACK_URL")]
    pub(crate) callback_url: Option<String>,
    /// The SA's App ID URI: the audience callback tokens must have. With
    /// the issuer and the keys URL, turns the chat on.
    #[arg(long, env = "TA_CALLBACK_AUDIENCE")]
    pub(crate) callback_audience: Option<String>,
    /// The tenant's issuer callback tokens must have
    /// (`https://sts.windows.net/<tenant id>/`).
    #[arg(long, env = "TA_CALLBACK_ISSUER")]
    pub(crate) callback_issuer: Option<String>,
    /// The identity provider's keys document (JWKS) callback tokens are
    /// checked against (https).
    #[arg(long, env = "TA_CALLBACK_KEYS_URL")]
    pub(crate) callback_keys_url: Option<String>,
    /// An agent each chat invites, as `sip:anna@contoso.com=Anna
    /// (Support)`: the SIP URI, `=`, the name the visitor sees
    /// (repeatable; `;`-separated in the variable).
    #[arg(long = "agent", env = "TA_AGENTS", value_delimiter = ';')]
    pub(crate) agents: Vec<String>,
    /// The name the visitor sees for the help desk [default: Help Desk].
    #[arg(long, env = "TA_HELPDESK_NAME")]
    pub(crate) helpdesk_name: Option<String>,
}

/// The chat, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ChatSettings {
    pub(super) callback_url: Option<String>,
    pub(super) audience: String,
    pub(super) issuer: String,
    pub(super) keys_url: String,
    pub(super) plan: Plan,
}

impl ChatArgs {
    /// The chat's settings: `None` when none of audience, issuer and keys
    /// URL is set (no chat); an error naming what is missing when only some
    /// are, or when no agent is.
    pub(super) fn resolve(&self, file: &FileConfig) -> Result<Option<ChatSettings>, String> {
        let mut args = self.clone();
        fill(&mut args.callback_url, &file.callback_url);
        fill(&mut args.callback_audience, &file.callback_audience);
        fill(&mut args.callback_issuer, &file.callback_issuer);
        fill(&mut args.callback_keys_url, &file.callback_keys_url);
        fill_list(&mut args.agents, &file.agents);
        fill(&mut args.helpdesk_name, &file.helpdesk_name);
        let (audience, issuer, keys_url) = match (
            args.callback_audience,
            args.callback_issuer,
            args.callback_keys_url,
        ) {
            (None, None, None) => return Ok(None),
            (Some(a), Some(i), Some(k)) => (a, i, k),
            (a, i, k) => {
                let missing: Vec<&str> = [
                    (a.is_none(), "--callback-audience (TA_CALLBACK_AUDIENCE)"),
                    (i.is_none(), "--callback-issuer (TA_CALLBACK_ISSUER)"),
                    (k.is_none(), "--callback-keys-url (TA_CALLBACK_KEYS_URL)"),
                ]
                .into_iter()
                .filter_map(|(m, name)| m.then_some(name))
                .collect();
                return Err(format!("the chat needs {} too", missing.join(" and ")));
            }
        };
        if args.agents.is_empty() {
            return Err("the chat needs at least one --agent (TA_AGENTS, or `agents`)".to_owned());
        }
        let agents = args
            .agents
            .iter()
            .map(|a| parse_agent(a))
            .collect::<Result<Vec<_>, _>>()?;
        let mut plan = Plan::new(agents);
        if let Some(name) = args.helpdesk_name {
            plan = plan.with_helpdesk_name(name);
        }
        Ok(Some(ChatSettings {
            callback_url: args.callback_url,
            audience,
            issuer,
            keys_url,
            plan,
        }))
    }
}

impl ChatSettings {
    /// The callback endpoint: a switchboard over `bootstrapper` inviting
    /// the plan's agents, and a verifier fetching keys over `transport`.
    pub(super) fn endpoint(
        &self,
        bootstrapper: &Bootstrapper,
        transport: Arc<dyn Transport>,
    ) -> Result<ChatEndpoint, String> {
        let keys = TransportKeySource::new(transport, &self.keys_url)
            .map_err(|e| format!("callback keys: {e}"))?;
        let verifier = CallbackVerifier::new(
            CallbackAuth::new(&self.audience, &self.issuer),
            Arc::new(keys),
        );
        let switchboard = Switchboard::new(
            bootstrapper.clone(),
            Arc::new(StaticRouter::new(self.plan.clone())),
            // An ending waits for a missing link no longer than the
            // shutdown gives the chats, so that a stopping `serve` leaves
            // no meeting open.
            SwitchboardOptions::default()
                .with_timers(Timers::default().with_cleanup_timeout(CLEANUP_TIMEOUT)),
        );
        Ok(ChatEndpoint::new(switchboard, Arc::new(verifier)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn args(agents: &[&str]) -> ChatArgs {
        ChatArgs {
            callback_url: None,
            callback_audience: Some("https://sa.contoso.com".to_owned()),
            callback_issuer: Some("https://sts.windows.net/t/".to_owned()),
            callback_keys_url: Some("https://login.example/common/discovery/keys".to_owned()),
            agents: agents.iter().map(|a| (*a).to_owned()).collect(),
            helpdesk_name: None,
        }
    }

    #[test]
    fn the_chat_is_on_with_all_three_and_an_agent() {
        let file = FileConfig::default();
        let chat = args(&["sip:Anna@contoso.com=Anna (Support)", "sip:bo@contoso.com"])
            .resolve(&file)
            .unwrap()
            .unwrap();
        assert_eq!(
            chat.plan.agents,
            [
                ta_protocol::chat::Agent::new("sip:anna@contoso.com", "Anna (Support)"),
                ta_protocol::chat::Agent::new("sip:bo@contoso.com", "bo@contoso.com")
            ]
        );
        let mut none = args(&[]);
        none.callback_audience = None;
        none.callback_issuer = None;
        none.callback_keys_url = None;
        assert_eq!(none.resolve(&file).unwrap(), None);
        let mut partial = args(&["sip:a@b"]);
        partial.callback_issuer = None;
        let refused = partial.resolve(&file).unwrap_err();
        assert!(
            refused.contains("--callback-issuer") && !refused.contains("--callback-audience"),
            "{refused}"
        );
        assert!(args(&[]).resolve(&file).unwrap_err().contains("--agent"));
        assert!(
            args(&["anna@contoso.com"])
                .resolve(&file)
                .unwrap_err()
                .contains("sip:")
        );
    }
}
