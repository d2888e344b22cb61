//! What `serve` runs with: flags, `TA_*` variables and the configuration
//! file, resolved and checked; and which of their changes need a restart.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use ta_protocol::{Origin, OriginPolicy};
use ta_widget_service::server::ServerLimits;
use ta_widget_service::{PoolConfig, RenewalHint, ServiceConfig, WidgetService};

use super::ServeArgs;
use crate::cli::config_file::{FileConfig, fill, fill_list};
use crate::cli::upstream::UpstreamArgs;

/// The default listening address.
const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);

/// Everything `serve` runs with, resolved and checked.
#[derive(Debug, Clone)]
pub(super) struct Settings {
    pub(super) upstream: UpstreamArgs,
    pub(super) allowlist: Vec<Origin>,
    pub(super) listen: SocketAddr,
    pub(super) per_client_rate: u32,
    pub(super) global_rate: u32,
    pub(super) max_mints_in_flight: usize,
    pub(super) max_connections: usize,
    pub(super) max_connections_per_client: usize,
    pub(super) renewal: RenewalHint,
    /// The pool of pre-minted tokens (off unless `pool-size` is set).
    pub(super) pool: PoolConfig,
    pub(super) trusted_proxies: Vec<IpAddr>,
    pub(super) tls: Option<(PathBuf, PathBuf)>,
    /// The key file of the site's widget tickets, if they are checked.
    pub(super) mint_ticket_key_file: Option<PathBuf>,
    /// The chat, if it is on.
    pub(super) chat: Option<super::chat::ChatSettings>,
}

impl ServeArgs {
    /// Reads the configuration file (if any) and checks everything but the
    /// credential, which [`UpstreamArgs::credential`] reads.
    pub(super) fn resolve(&self) -> Result<Settings, String> {
        let (upstream, file) = self.upstream.with_config_file()?;
        self.resolve_with(upstream, &file, false)
    }

    /// The settings with `upstream` and `file`. `embedded` is `--emulator`:
    /// loopback http origins are allowed, and the chat's flags are not read
    /// (the embedded emulator's chat replaces them), so that a stray
    /// `TA_CALLBACK_*` in the environment does not stop the demo.
    pub(super) fn resolve_with(
        &self,
        upstream: UpstreamArgs,
        file: &FileConfig,
        embedded: bool,
    ) -> Result<Settings, String> {
        let allowlist = allowlist_for(&upstream, embedded || upstream.allow_insecure_loopback)?;
        let mut listen = self.listen;
        fill(&mut listen, &file.listen);
        let mut per_client_rate = self.per_client_rate;
        fill(&mut per_client_rate, &file.per_client_rate);
        let mut global_rate = self.global_rate;
        fill(&mut global_rate, &file.global_rate);
        let mut max_mints_in_flight = self.max_mints_in_flight;
        fill(&mut max_mints_in_flight, &file.max_mints_in_flight);
        let mut max_connections = self.max_connections;
        fill(&mut max_connections, &file.max_connections);
        let mut max_connections_per_client = self.max_connections_per_client;
        fill(
            &mut max_connections_per_client,
            &file.max_connections_per_client,
        );
        let server_defaults = ServerLimits::default();
        let count = |v: Option<u64>, default: usize| {
            v.map_or(default, |v| usize::try_from(v).unwrap_or(usize::MAX))
        };
        let max_connections = match max_connections {
            Some(0) => return Err("max-connections must be at least 1".to_owned()),
            v => count(v, server_defaults.max_connections),
        };
        let max_connections_per_client = count(
            max_connections_per_client,
            server_defaults.max_connections_per_client,
        );
        let mut renew_after_fraction = self.renew_after_fraction;
        fill(&mut renew_after_fraction, &file.renew_after_fraction);
        let mut trusted_proxies = self.trusted_proxies.clone();
        fill_list(&mut trusted_proxies, &file.trusted_proxies);
        let mut mint_ticket_key_file = self.mint_ticket_key_file.clone();
        fill(&mut mint_ticket_key_file, &file.mint_ticket_key_file);
        let (mut tls_cert, mut tls_key) = (self.tls_cert.clone(), self.tls_key.clone());
        if tls_cert.is_none() && tls_key.is_none() {
            tls_cert.clone_from(&file.tls_cert);
            tls_key.clone_from(&file.tls_key);
        }
        let tls = match (tls_cert, tls_key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => return Err("--tls-cert and --tls-key go together".to_owned()),
        };
        let positive = |value: Option<u32>, default: u32, name: &str| match value {
            Some(0) => Err(format!("{name} must be at least 1")),
            Some(v) => Ok(v),
            None => Ok(default),
        };
        // The service's own defaults: they are written once, there.
        let defaults = ServiceConfig::new(Vec::new());
        let max_mints_in_flight = match max_mints_in_flight {
            Some(0) => return Err("max-mints-in-flight must be at least 1".to_owned()),
            Some(v) => v,
            None => defaults.max_mints_in_flight,
        };
        let renewal = match renew_after_fraction {
            Some(fraction) => {
                RenewalHint::fraction(fraction).map_err(|e| format!("renew-after-fraction: {e}"))?
            }
            None => defaults.renewal,
        };
        let chat = if embedded {
            None
        } else {
            self.chat.resolve(file)?
        };
        let pool = self.pool(file)?;
        if pool.is_on() && max_mints_in_flight < 2 {
            return Err(format!(
                "pool-size: the pool takes at most half of max-mints-in-flight, which is {max_mints_in_flight}: set it to 2 or more"
            ));
        }
        Ok(Settings {
            pool,
            chat,
            allowlist,
            listen: listen.unwrap_or(DEFAULT_LISTEN),
            per_client_rate: positive(
                per_client_rate,
                defaults.per_client_per_minute,
                "per-client-rate",
            )?,
            global_rate: positive(global_rate, defaults.global_per_second, "global-rate")?,
            max_mints_in_flight,
            max_connections,
            max_connections_per_client,
            renewal,
            trusted_proxies,
            tls,
            mint_ticket_key_file,
            upstream,
        })
    }

    /// The pool's settings, from the flags and the file; with no size (or
    /// 0) there is no pool, and the other settings are only checked.
    fn pool(&self, file: &FileConfig) -> Result<PoolConfig, String> {
        let mut size = self.pool_size;
        fill(&mut size, &file.pool_size);
        let mut max_age = self.pool_max_age;
        fill(&mut max_age, &file.pool_max_age);
        let mut floor = self.pool_floor;
        fill(&mut floor, &file.pool_floor);
        let mut max_total = self.pool_max_total;
        fill(&mut max_total, &file.pool_max_total);
        let count = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        let named = |e: ta_widget_service::PoolConfigError| format!("pool-{}: {e}", e.setting);
        let max_age = max_age.map_or(PoolConfig::DEFAULT_MAX_AGE, std::time::Duration::from_secs);
        let mut pool = PoolConfig::new(count(size.unwrap_or(0)), max_age).map_err(named)?;
        // With no pool there is no size for the floor to exceed.
        if let Some(floor) = floor.filter(|_| pool.is_on()) {
            pool = pool.with_floor(count(floor)).map_err(named)?;
        }
        if let Some(max_total) = max_total {
            pool = pool.with_max_total(count(max_total)).map_err(named)?;
        }
        Ok(pool)
    }

    /// The files whose change `--watch-config` reacts to.
    pub(super) fn watched_files(&self, settings: &Settings) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = [
            self.upstream.config.clone(),
            settings.upstream.client_secret_file.clone(),
            settings.upstream.client_certificate.clone(),
        ]
        .into_iter()
        .flatten()
        .collect();
        if let Some((cert, key)) = &settings.tls {
            files.push(cert.clone());
            files.push(key.clone());
        }
        files
    }
}

impl Settings {
    /// The service's configuration.
    pub(super) fn service_config(&self) -> ServiceConfig {
        let mut config = ServiceConfig::new(self.allowlist.clone());
        config.per_client_per_minute = self.per_client_rate;
        config.global_per_second = self.global_rate;
        config.max_mints_in_flight = self.max_mints_in_flight;
        config.renewal = self.renewal;
        config.pool = self.pool.clone();
        config.trusted_proxies.clone_from(&self.trusted_proxies);
        config
    }
}

/// The site allowlist of `upstream`'s origins, loopback `http` origins
/// admitted when `loopback_http`.
pub(super) fn allowlist_for(
    upstream: &UpstreamArgs,
    loopback_http: bool,
) -> Result<Vec<Origin>, String> {
    let policy = OriginPolicy::new(upstream.allow_http_origins, loopback_http);
    WidgetService::allowlist(&upstream.allowed_origins, policy).map_err(|e| {
        format!("site allowlist (--allowed-origin, TA_ALLOWED_ORIGINS or `allowed-origins`): {e}")
    })
}

/// Settings that only a restart applies, named as the keys.
pub(super) fn restart_needed(old: &Settings, new: &Settings) -> Vec<&'static str> {
    let (a, b) = (&old.upstream, &new.upstream);
    let mut changed = Vec::new();
    let mut check = |same: bool, name: &'static str| {
        if !same {
            changed.push(name);
        }
    };
    check(a.discover_url == b.discover_url, "discover-url");
    check(a.endpoint_id == b.endpoint_id, "endpoint-id");
    check(a.tenant == b.tenant, "tenant");
    check(a.client_id == b.client_id, "client-id");
    check(a.token_url == b.token_url, "token-url");
    check(a.ca_file == b.ca_file, "ca-file");
    check(a.trusted_hosts == b.trusted_hosts, "trusted-hosts");
    check(
        a.allow_insecure_loopback == b.allow_insecure_loopback,
        "allow-insecure-loopback",
    );
    check(old.listen == new.listen, "listen");
    check(
        old.per_client_rate == new.per_client_rate,
        "per-client-rate",
    );
    check(old.global_rate == new.global_rate, "global-rate");
    check(
        old.max_mints_in_flight == new.max_mints_in_flight,
        "max-mints-in-flight",
    );
    check(old.renewal == new.renewal, "renew-after-fraction");
    // A reload applies the pool's settings, but for turning it on or off.
    check(
        old.pool.is_on() == new.pool.is_on(),
        "pool-size (the pool on or off)",
    );
    check(
        old.mint_ticket_key_file == new.mint_ticket_key_file,
        "mint-ticket-key-file",
    );
    check(
        old.max_connections == new.max_connections
            && old.max_connections_per_client == new.max_connections_per_client,
        "max-connections/max-connections-per-client",
    );
    check(
        old.trusted_proxies == new.trusted_proxies,
        "trusted-proxies",
    );
    check(
        old.tls.is_some() == new.tls.is_some() && old.tls == new.tls,
        "tls-cert/tls-key",
    );
    let chat_differs = match (&old.chat, &new.chat) {
        (Some(old), Some(new)) => old.differs_but_routes(new),
        (old, new) => old.is_some() != new.is_some(),
    };
    check(
        !chat_differs,
        "the chat's settings (callback-*, agents, helpdesk-name, replica-name)",
    );
    changed
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        serve: ServeArgs,
    }

    /// The settings of `serve` with these flags, whatever `TA_*` variables
    /// the environment running the test has.
    fn settings(args: &[&str]) -> Result<Settings, String> {
        settings_of(args, false)
    }

    /// The same, `embedded` as under `--emulator`.
    fn settings_of(args: &[&str], embedded: bool) -> Result<Settings, String> {
        use clap::{CommandFactory as _, FromArgMatches as _};
        let matches = Wrapper::command()
            .mut_args(|arg| arg.env(None))
            .try_get_matches_from(
                ["serve", "--allowed-origin", "https://contoso.com"]
                    .iter()
                    .chain(args),
            )
            .map_err(|e| e.to_string())?;
        let serve = Wrapper::from_arg_matches(&matches)
            .map_err(|e| e.to_string())?
            .serve;
        serve.resolve_with(serve.upstream.clone(), &FileConfig::default(), embedded)
    }

    #[test]
    fn under_the_emulator_the_chat_s_flags_are_not_read() {
        let partial = ["--callback-audience", "https://sa.contoso.com"];
        assert!(settings(&partial).unwrap_err().contains("the chat needs"));
        assert!(settings_of(&partial, true).unwrap().chat.is_none());
    }

    #[test]
    fn the_defaults_are_the_documented_ones() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(
            (s.per_client_rate, s.global_rate, s.max_mints_in_flight),
            (60, 200, 256)
        );
        assert!(s.trusted_proxies.is_empty() && s.tls.is_none());
        assert_eq!(s.renewal.as_fraction(), 0.75);
        assert_eq!(
            (s.max_connections, s.max_connections_per_client),
            (4096, 256)
        );
    }

    #[test]
    fn connection_caps_are_read_and_checked() {
        let s = settings(&[
            "--max-connections",
            "100",
            "--max-connections-per-client",
            "0",
        ])
        .unwrap();
        assert_eq!((s.max_connections, s.max_connections_per_client), (100, 0));
        let refused = settings(&["--max-connections", "0"]).err().unwrap();
        assert!(refused.contains("max-connections"), "{refused}");
    }

    #[test]
    fn a_renewal_fraction_must_keep_renew_after_below_expires_in() {
        let s = settings(&["--renew-after-fraction", "0.5"]).unwrap();
        assert_eq!(s.renewal.as_fraction(), 0.5);
        for bad in ["1", "1.5", "0", "-0.2", "NaN"] {
            let flag = format!("--renew-after-fraction={bad}");
            let refused = settings(&[flag.as_str()]).unwrap_err();
            assert!(
                refused.contains("renew-after-fraction") && refused.contains("below 1"),
                "{bad}: {refused}"
            );
        }
    }

    #[test]
    fn the_pool_is_off_by_default_and_its_settings_are_checked() {
        let s = settings(&[]).unwrap();
        assert!(!s.pool.is_on());
        let s = settings(&["--pool-size", "20", "--pool-max-age", "60"]).unwrap();
        assert_eq!(s.pool.size(), 20);
        assert_eq!(s.pool.max_age(), std::time::Duration::from_secs(60));
        assert_eq!((s.pool.floor(), s.pool.max_total()), (1, 1000));
        assert!(s.service_config().pool.is_on());
        let s = settings(&[
            "--pool-size",
            "5",
            "--pool-floor",
            "5",
            "--pool-max-total",
            "7",
        ])
        .unwrap();
        assert_eq!((s.pool.floor(), s.pool.max_total()), (5, 7));
        let refused = settings(&["--pool-size", "5", "--pool-floor", "6"]).unwrap_err();
        assert!(
            refused.contains("pool-floor") && refused.contains("size"),
            "{refused}"
        );
        // Size 0 turns the pool off, whatever the floor says.
        let s = settings(&["--pool-size", "0", "--pool-floor", "2"]).unwrap();
        assert!(!s.pool.is_on());
        // The pool takes at most half of the mints in flight: not of 1.
        let refused = settings(&["--pool-size", "5", "--max-mints-in-flight", "1"]).unwrap_err();
        assert!(refused.contains("max-mints-in-flight"), "{refused}");
        assert!(settings(&["--pool-size", "5", "--max-mints-in-flight", "2"]).is_ok());
        // A reload applies new pool settings, but not the pool on or off.
        let five = settings(&["--pool-size", "5"]).unwrap();
        let ten = settings(&["--pool-size", "10", "--pool-floor", "3"]).unwrap();
        assert!(restart_needed(&five, &ten).is_empty());
        let off = settings(&[]).unwrap();
        assert_eq!(
            restart_needed(&off, &five),
            ["pool-size (the pool on or off)"]
        );
        for bad in [
            ["--pool-max-age", "0"],
            ["--pool-size", "10001"],
            ["--pool-max-total", "0"],
        ] {
            let refused = settings(&bad).err().unwrap();
            assert!(refused.contains(bad[0]), "{bad:?}: {refused}");
        }
    }

    #[test]
    fn loopback_http_origins_are_refused_without_the_switch() {
        let refused = settings(&["--allowed-origin", "http://127.0.0.1:3000"]).unwrap_err();
        assert!(refused.contains("site allowlist"), "{refused}");
        let allowed = settings(&[
            "--allowed-origin",
            "http://127.0.0.1:3000",
            "--allow-insecure-loopback",
        ])
        .unwrap();
        assert_eq!(allowed.allowlist.len(), 2);
        assert!(
            settings(&[
                "--allowed-origin",
                "http://contoso.com",
                "--allow-insecure-loopback"
            ])
            .is_err()
        );
        assert!(
            settings(&["--tls-cert", "cert.pem"]).is_err(),
            "a certificate needs its key"
        );
    }

    #[test]
    fn a_reload_applies_the_peers_and_restarts_for_the_rest_of_the_chat() {
        let chat = |name: &str, extra: &[&str]| {
            let mut args = vec![
                "--callback-audience",
                "https://sa.contoso.com",
                "--callback-issuer",
                "https://sts.windows.net/t/",
                "--callback-keys-url",
                "https://login.example/keys",
                "--agent",
                "sip:anna@contoso.com=Anna",
                "--replica-name",
                name,
            ];
            args.extend_from_slice(extra);
            settings(&args).unwrap()
        };
        let old = chat("r0", &["--peer", "r1=http://10.0.0.7:8080"]);
        let more = chat(
            "r0",
            &[
                "--peer",
                "r1=http://10.0.0.7:8080",
                "--peer",
                "r2=http://10.0.0.8:8080",
                "--peer-url-template",
                "http://{name}.peers:8080",
            ],
        );
        assert!(restart_needed(&old, &more).is_empty(), "peers apply live");
        let renamed = chat("r9", &["--peer", "r1=http://10.0.0.7:8080"]);
        let needs = restart_needed(&old, &renamed);
        assert!(
            needs.iter().any(|n| n.contains("replica-name")),
            "{needs:?}"
        );
        let no_chat = settings(&[]).unwrap();
        assert!(!restart_needed(&old, &no_chat).is_empty());
    }
}
