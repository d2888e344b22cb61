//! The chat across replicas: a callback for a chat that another replica
//! holds is sent on to it.
//!
//! Behind a load balancer, the platform's callbacks for one conversation
//! may reach any replica, while the chat's state lives in the one that
//! accepted the visitor's invitation. With a [`ReplicaName`] given to the
//! switchboard
//! ([`SwitchboardOptions::with_replica`](ta_bootstrap::chat::SwitchboardOptions::with_replica)),
//! every chat id, and so the `callbackContext` of every later callback,
//! names the replica that holds the chat. A replica that receives a
//! callback naming another one checks its token first, then sends it on,
//! unchanged (its token included), to that replica's own address, and
//! answers with that replica's answer. A callback sent on is marked
//! ([`FORWARDED_BY`]) and never sent on again. The first callback of a
//! conversation (the visitor's invitation, which has no context yet) opens
//! the chat on whichever replica it reaches.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use ta_bootstrap::chat::ReplicaName;
use ta_protocol::Transport;
use url::Url;

/// The header that marks a callback sent on by another replica: its value
/// is the sender's name.
pub const FORWARDED_BY: &str = "x-ta-forwarded-by";

/// How long a replica waits for the one it sends a callback on to.
pub(crate) const FORWARD_TIMEOUT: Duration = Duration::from_secs(5);

/// This replica's name and how to reach the others (which can change
/// while it runs: [`Replicas::set_routes`]).
pub struct Replicas {
    me: ReplicaName,
    routes: RwLock<Routes>,
    pub(crate) transport: Arc<dyn Transport>,
}

/// How to reach the other replicas.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Routes {
    peers: BTreeMap<ReplicaName, Url>,
    template: Option<String>,
}

impl std::fmt::Debug for Replicas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let routes = self.routes.read().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("Replicas")
            .field("me", &self.me)
            .field("peers", &routes.peers)
            .field("template", &routes.template)
            .finish_non_exhaustive()
    }
}

/// A peer's address that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("replica address {shown:?}: {reason}")]
pub struct ReplicaAddressError {
    shown: String,
    reason: &'static str,
}

fn base_url(text: &str) -> Result<Url, ReplicaAddressError> {
    let refused = |reason| ReplicaAddressError {
        shown: text.chars().take(200).collect(),
        reason,
    };
    let url = Url::parse(text).map_err(|_| refused("not an absolute URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(refused("must be http or https"));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(refused("must have no query, fragment or user"));
    }
    if url.host_str().is_none() {
        return Err(refused("must name a host"));
    }
    Ok(url)
}

/// Checks a peer's address as [`Replicas::with_peer`] would.
pub fn check_address(base: &str) -> Result<(), ReplicaAddressError> {
    base_url(base).map(|_| ())
}

/// Checks a peer address template as [`Replicas::with_peer_template`]
/// would: `{name}` once, as the first label of a host name under the
/// operator's domain (`http://{name}.ta-chat-peers:8080`).
pub fn check_template(template: &str) -> Result<(), ReplicaAddressError> {
    let refused = |reason| ReplicaAddressError {
        shown: template.chars().take(200).collect(),
        reason,
    };
    let first_label = ["http://{name}.", "https://{name}."]
        .iter()
        .any(|start| template.starts_with(start));
    if template.matches("{name}").count() != 1 || !first_label {
        return Err(refused(
            "must hold {name} once, as the host's first label: http://{name}.peers:8080",
        ));
    }
    let url = base_url(&template.replace("{name}", "a"))?;
    if !matches!(url.host(), Some(url::Host::Domain(_))) {
        return Err(refused("must make a host name, not an IP address"));
    }
    Ok(())
}

/// The switchboard and the replicas of a [`ChatEndpoint`](crate::ChatEndpoint) name different
/// replicas.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the switchboard runs as replica {switchboard:?} but the replicas name this one {replicas}: give both the same name"
)]
pub struct ReplicaMismatch {
    /// The switchboard's replica (`None`: it was given none).
    pub switchboard: Option<ReplicaName>,
    /// The name [`Replicas`] gives this replica.
    pub replicas: ReplicaName,
}

impl Replicas {
    /// This replica, `me`, sending callbacks on over `transport` (which
    /// must reach the peers' addresses: plain HTTP inside a cluster, or
    /// HTTPS with the roots that sign their certificates).
    pub fn new(me: ReplicaName, transport: Arc<dyn Transport>) -> Self {
        Self {
            me,
            routes: RwLock::default(),
            transport,
        }
    }

    fn routes_mut(&mut self) -> &mut Routes {
        self.routes
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A peer `name` at `base` (`http(s)://host:port`, the address the
    /// service listens on; `/v1/callback` is added). This replica's own
    /// name is skipped, so that one list serves every replica.
    pub fn with_peer(mut self, name: ReplicaName, base: &str) -> Result<Self, ReplicaAddressError> {
        let url = base_url(base)?;
        if name != self.me {
            self.routes_mut().peers.insert(name, url);
        }
        Ok(self)
    }

    /// Replaces how the other replicas are reached, while the service runs
    /// (a reload after replicas were added or removed): `peers` as
    /// [`with_peer`](Self::with_peer) takes them, and `template` as
    /// [`with_peer_template`](Self::with_peer_template). All or nothing: on
    /// an error the routes stay. Returns whether they changed.
    pub fn set_routes<'a>(
        &self,
        peers: impl IntoIterator<Item = (ReplicaName, &'a str)>,
        template: Option<&str>,
    ) -> Result<bool, ReplicaAddressError> {
        let mut routes = Routes::default();
        for (name, base) in peers {
            let url = base_url(base)?;
            if name != self.me {
                routes.peers.insert(name, url);
            }
        }
        if let Some(template) = template {
            check_template(template)?;
            routes.template = Some(template.to_owned());
        }
        let mut current = self.routes.write().unwrap_or_else(PoisonError::into_inner);
        let changed = *current != routes;
        *current = routes;
        Ok(changed)
    }

    /// The address of any peer not listed, made from its name:
    /// `template` holds `{name}` once, as the first label of its host (for
    /// a StatefulSet behind a headless Service:
    /// `http://{name}.ta-chat-peers:8080`). A name is a DNS label (`a-z 0-9
    /// -`, starting with a letter), so the host stays a name under the
    /// operator's domain.
    pub fn with_peer_template(mut self, template: &str) -> Result<Self, ReplicaAddressError> {
        check_template(template)?;
        self.routes_mut().template = Some(template.to_owned());
        Ok(self)
    }

    /// This replica's name.
    pub fn me(&self) -> &ReplicaName {
        &self.me
    }

    /// Where a callback for `name`'s chats goes, with `query` (the
    /// callback's own), if `name` is a peer this replica can reach.
    pub(crate) fn callback_url(&self, name: &ReplicaName, query: Option<&str>) -> Option<Url> {
        let base = {
            let routes = self.routes.read().unwrap_or_else(PoisonError::into_inner);
            match routes.peers.get(name) {
                Some(base) => base.clone(),
                None => {
                    base_url(&routes.template.as_ref()?.replace("{name}", name.as_str())).ok()?
                }
            }
        };
        let mut url = base.join("v1/callback").ok()?;
        if base.path() != "/" {
            // A base with a path keeps it: `http://h/sa` → `http://h/sa/v1/callback`.
            url.set_path(&format!(
                "{}/v1/callback",
                base.path().trim_end_matches('/')
            ));
        }
        url.set_query(query);
        Some(url)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    struct Nowhere;

    #[async_trait::async_trait]
    impl Transport for Nowhere {
        async fn send(
            &self,
            _: http::Request<bytes::Bytes>,
        ) -> Result<http::Response<bytes::Bytes>, ta_protocol::TransportError> {
            Err(ta_protocol::TransportError::new(
                ta_protocol::TransportErrorKind::Connect,
                false,
            ))
        }
    }

    fn name(s: &str) -> ReplicaName {
        ReplicaName::new(s).unwrap()
    }

    #[test]
    fn peers_are_listed_or_made_from_the_template() {
        let replicas = Replicas::new(name("r0"), Arc::new(Nowhere))
            .with_peer(name("r1"), "http://10.0.0.7:8080")
            .unwrap()
            .with_peer_template("http://{name}.peers.svc:8080/sa/")
            .unwrap();
        assert_eq!(
            replicas
                .callback_url(&name("r1"), Some("callbackContext=r1_cX"))
                .unwrap()
                .as_str(),
            "http://10.0.0.7:8080/v1/callback?callbackContext=r1_cX"
        );
        assert_eq!(
            replicas.callback_url(&name("r2"), None).unwrap().as_str(),
            "http://r2.peers.svc:8080/sa/v1/callback"
        );
        let alone = Replicas::new(name("r0"), Arc::new(Nowhere));
        assert!(alone.callback_url(&name("r1"), None).is_none());
    }

    #[test]
    fn the_routes_change_while_running_all_or_nothing() {
        let replicas = Replicas::new(name("r0"), Arc::new(Nowhere))
            .with_peer(name("r1"), "http://10.0.0.7:8080")
            .unwrap();
        // A bad address anywhere: nothing changes.
        let refused = replicas.set_routes(
            [
                (name("r2"), "http://10.0.0.8:8080"),
                (name("r3"), "10.0.0.9"),
            ],
            None,
        );
        assert!(refused.is_err());
        assert!(replicas.callback_url(&name("r2"), None).is_none());
        assert!(replicas.callback_url(&name("r1"), None).is_some());
        // r1 gone, r2 added, this replica's own entry skipped.
        let list = [
            (name("r0"), "http://10.0.0.6:8080"),
            (name("r2"), "http://10.0.0.8:8080"),
        ];
        assert_eq!(replicas.set_routes(list.clone(), None), Ok(true));
        assert!(replicas.callback_url(&name("r1"), None).is_none());
        assert!(replicas.callback_url(&name("r0"), None).is_none());
        assert_eq!(
            replicas.callback_url(&name("r2"), None).unwrap().as_str(),
            "http://10.0.0.8:8080/v1/callback"
        );
        assert_eq!(replicas.set_routes(list, None), Ok(false), "the same");
        assert_eq!(
            replicas.set_routes([], Some("http://{name}.peers:8080")),
            Ok(true)
        );
        assert!(replicas.callback_url(&name("r1"), None).is_some());
    }

    #[test]
    fn unusable_addresses_are_named() {
        let r = || Replicas::new(name("r0"), Arc::new(Nowhere));
        for bad in [
            "10.0.0.7:8080",
            "ftp://h",
            "http://h/?q=1",
            "http://u@h",
            "http://h/#f",
        ] {
            let error = r().with_peer(name("r1"), bad).unwrap_err();
            assert!(
                error.to_string().contains("replica address"),
                "{bad}: {error}"
            );
        }
        for bad in [
            "http://peers:8080",
            "{name}:8080",
            "http://{name}:8080",
            "http://{name}.{name}.peers:8080",
            "http://peers:8080/{name}",
            "http://x{name}.peers:8080",
            "http://{name}.10.0.0.7:8080",
            "http://{name}.7:8080",
        ] {
            assert!(r().with_peer_template(bad).is_err(), "{bad}");
        }
        assert!(
            r().with_peer_template("https://{name}.peers.ns.svc.cluster.local")
                .is_ok()
        );
    }
}
