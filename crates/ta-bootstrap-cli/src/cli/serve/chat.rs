//! The chat's settings of `serve`: where the platform's callbacks are
//! checked against (audience, issuer, keys), which agents a chat invites,
//! and the switchboard and callback endpoint built from them.

use std::sync::Arc;

use clap::Args;
use ta_bootstrap::Bootstrapper;
use ta_bootstrap::chat::{ReplicaName, StaticRouter, Switchboard, SwitchboardOptions};
use ta_bootstrap_cli::agent_spec::parse_agent;
use ta_protocol::Transport;
use ta_protocol::chat::{Plan, Timers};
use ta_widget_service::ChatEndpoint;
use ta_widget_service::callback::{CallbackAuth, CallbackVerifier, TransportKeySource};
use ta_widget_service::replicas::{self, Replicas};

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
    /// This replica's name, when several run the chat behind a load
    /// balancer (1 to 14 characters of a-z 0-9 -, starting with a letter, not ending
    /// with -: a StatefulSet pod's name):
    /// each chat's callbacks then name it, and the other replicas send them
    /// on to it.
    #[arg(long, env = "TA_REPLICA_NAME", value_name = "NAME")]
    pub(crate) replica_name: Option<String>,
    /// Another replica and the address it listens on, as
    /// `NAME=http://10.0.0.7:8080` (repeatable; `;`-separated in the
    /// variable; this replica's own entry is skipped, so one list serves
    /// all).
    #[arg(
        long = "peer",
        env = "TA_PEERS",
        value_delimiter = ';',
        value_name = "NAME=URL"
    )]
    pub(crate) peers: Vec<String>,
    /// The address of a replica not in --peer, made from its name:
    /// `http://{name}.ta-chat-peers:8080` (a headless Service).
    #[arg(long, env = "TA_PEER_URL_TEMPLATE", value_name = "URL")]
    pub(crate) peer_url_template: Option<String>,
}

/// The replica's name and its peers, resolved and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ReplicaSettings {
    pub(super) name: ReplicaName,
    pub(super) peers: Vec<(ReplicaName, String)>,
    pub(super) template: Option<String>,
}

/// The chat, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ChatSettings {
    pub(super) callback_url: Option<String>,
    pub(super) audience: String,
    pub(super) issuer: String,
    pub(super) keys_url: String,
    pub(super) plan: Plan,
    pub(super) replicas: Option<ReplicaSettings>,
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
        fill(&mut args.replica_name, &file.replica_name);
        fill_list(&mut args.peers, &file.peers);
        fill(&mut args.peer_url_template, &file.peer_url_template);
        let replicas = args.replicas()?;
        let (audience, issuer, keys_url) = match (
            args.callback_audience,
            args.callback_issuer,
            args.callback_keys_url,
        ) {
            (None, None, None) if replicas.is_some() => {
                return Err(
                    "--replica-name and --peer are the chat's: set the chat's --callback-* too"
                        .to_owned(),
                );
            }
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
            replicas,
        }))
    }

    /// The replica settings: `None` without a name; peers need one.
    fn replicas(&self) -> Result<Option<ReplicaSettings>, String> {
        let Some(name) = &self.replica_name else {
            if self.peers.is_empty() && self.peer_url_template.is_none() {
                return Ok(None);
            }
            return Err("--peer and --peer-url-template need --replica-name (TA_REPLICA_NAME, or `replica-name`)".to_owned());
        };
        let name = ReplicaName::new(name).map_err(|e| format!("replica-name: {e}"))?;
        let mut peers = Vec::new();
        for peer in &self.peers {
            let Some((peer_name, url)) = peer.split_once('=') else {
                return Err(format!(
                    "peer {peer:?}: expected NAME=URL (`r1=http://10.0.0.7:8080`)"
                ));
            };
            let peer_name =
                ReplicaName::new(peer_name.trim()).map_err(|e| format!("peer {peer:?}: {e}"))?;
            let url = url.trim();
            replicas::check_address(url).map_err(|e| format!("peer {peer_name}: {e}"))?;
            if peer_name != name {
                peers.push((peer_name, url.to_owned()));
            }
        }
        if let Some(template) = &self.peer_url_template {
            replicas::check_template(template).map_err(|e| format!("peer-url-template: {e}"))?;
        }
        Ok(Some(ReplicaSettings {
            name,
            peers,
            template: self.peer_url_template.clone(),
        }))
    }
}

impl ChatSettings {
    /// Whether `new` differs from these settings in more than the peers'
    /// addresses (which a reload applies): then only a restart applies it.
    pub(super) fn differs_but_routes(&self, new: &Self) -> bool {
        let mut routed = new.clone();
        if let (Some(theirs), Some(ours)) = (&mut routed.replicas, &self.replicas) {
            theirs.peers.clone_from(&ours.peers);
            theirs.template.clone_from(&ours.template);
        }
        routed != *self
    }

    /// Gives the running `replicas` these settings' peers and template
    /// (when both name the same replica); whether they changed.
    pub(super) fn apply_routes(&self, replicas: &Replicas) -> Result<bool, String> {
        let Some(settings) = self.replicas.as_ref().filter(|r| r.name == *replicas.me()) else {
            return Ok(false);
        };
        replicas
            .set_routes(
                settings
                    .peers
                    .iter()
                    .map(|(n, url)| (n.clone(), url.as_str())),
                settings.template.as_deref(),
            )
            .map_err(|e| e.to_string())
    }

    /// The callback endpoint: a switchboard over `bootstrapper` inviting
    /// the plan's agents, and a verifier fetching keys over `transport`.
    pub(super) fn endpoint(
        &self,
        bootstrapper: &Bootstrapper,
        transport: Arc<dyn Transport>,
    ) -> Result<ChatEndpoint, String> {
        let keys = TransportKeySource::new(Arc::clone(&transport), &self.keys_url)
            .map_err(|e| format!("callback keys: {e}"))?;
        let verifier = CallbackVerifier::new(
            CallbackAuth::new(&self.audience, &self.issuer),
            Arc::new(keys),
        );
        // An ending waits for a missing link no longer than the shutdown
        // gives the chats, so that a stopping `serve` leaves no meeting
        // open.
        let mut options = SwitchboardOptions::default()
            .with_timers(Timers::default().with_cleanup_timeout(CLEANUP_TIMEOUT));
        if let Some(replicas) = &self.replicas {
            options = options.with_replica(replicas.name.clone());
        }
        let switchboard = Switchboard::new(
            bootstrapper.clone(),
            Arc::new(StaticRouter::new(self.plan.clone())),
            options,
        );
        let endpoint = ChatEndpoint::new(switchboard, Arc::new(verifier));
        let Some(replicas) = &self.replicas else {
            return Ok(endpoint);
        };
        // Peers are reached over the same transport as the API (plain HTTP
        // inside a cluster, or HTTPS with the roots of --ca-file).
        let mut peers = Replicas::new(replicas.name.clone(), transport);
        for (name, url) in &replicas.peers {
            peers = peers
                .with_peer(name.clone(), url)
                .map_err(|e| format!("peer {name}: {e}"))?;
        }
        if let Some(template) = &replicas.template {
            peers = peers
                .with_peer_template(template)
                .map_err(|e| format!("peer-url-template: {e}"))?;
        }
        endpoint.with_replicas(peers).map_err(|e| e.to_string())
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
            replica_name: None,
            peers: Vec::new(),
            peer_url_template: None,
        }
    }

    #[test]
    fn replicas_are_named_and_their_peers_checked() {
        let file = FileConfig::default();
        let mut a = args(&["sip:a@b"]);
        a.replica_name = Some("ta-0".to_owned());
        a.peers = vec![
            "ta-0=http://10.0.0.6:8080".to_owned(),
            "ta-1 = http://10.0.0.7:8080".to_owned(),
        ];
        let replicas = a.resolve(&file).unwrap().unwrap().replicas.unwrap();
        assert_eq!(replicas.name.as_str(), "ta-0");
        assert_eq!(
            replicas.peers,
            [(
                ReplicaName::new("ta-1").unwrap(),
                "http://10.0.0.7:8080".to_owned()
            )],
            "its own entry is skipped"
        );
        for (name, peers, template, wanted) in [
            (Some("TA_0"), vec![], None, "replica-name"),
            (None, vec!["ta-1=http://h:1"], None, "need --replica-name"),
            (Some("ta-0"), vec!["ta-1"], None, "NAME=URL"),
            (Some("ta-0"), vec!["ta-1=h:1"], None, "peer ta-1"),
            (Some("ta-0"), vec![], Some("http://peers:8080"), "{name}"),
        ] {
            let mut a = args(&["sip:a@b"]);
            a.replica_name = name.map(str::to_owned);
            a.peers = peers.into_iter().map(str::to_owned).collect();
            a.peer_url_template = template.map(str::to_owned);
            let refused = a.resolve(&file).unwrap_err();
            assert!(refused.contains(wanted), "{wanted}: {refused}");
        }
        let mut off = args(&[]);
        off.callback_audience = None;
        off.callback_issuer = None;
        off.callback_keys_url = None;
        off.replica_name = Some("ta-0".to_owned());
        assert!(off.resolve(&file).unwrap_err().contains("chat's"));
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
