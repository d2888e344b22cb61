//! `serve --emulator`: the embedded emulator (the API, Azure AD and the
//! chat's platform, from `--emulator-config` or its defaults), the settings
//! that point the service at it, and the two demo sites.

use std::path::Path;

use ta_emulator::{DEFAULT_APPLICATION_ID, DEFAULT_ENDPOINT, Emulator, EmulatorConfig};
use ta_protocol::chat::{Agent, Plan};
use ta_widget_service::server::ServerLimits;
use tokio::net::TcpListener;

use super::ServeArgs;
use super::chat::ChatSettings;
use super::settings::Settings;
use super::shutdown::Background;
use crate::cli::config_file::FileConfig;
use crate::cli::upstream::{SecretArg, UpstreamArgs};
use crate::demo_site::DemoSite;

/// The psat lifetime of the embedded emulator without a configuration
/// file: short, so that the demo widget's renewal shows within minutes.
const EMULATOR_PSAT_LIFETIME_SECS: u64 = 120;

/// The embedded emulator and the listeners of the two demo sites of
/// `--emulator`.
pub(super) struct Demo {
    pub(super) emulator: Emulator,
    allowed: TcpListener,
    refused: TcpListener,
    /// The help desk the demo page's chat invites: the application's
    /// endpoint.
    helpdesk: String,
}

impl Demo {
    /// Announces the demo sites and serves them until the service stops;
    /// the emulator is shut down after them.
    pub(super) fn serve(self, service_base: &str, background: &mut Background) {
        let origin_of = |l: &TcpListener| {
            l.local_addr()
                .map_or_else(|_| "?".to_owned(), |a| format!("http://{a}/"))
        };
        out!("demo widget (allowed origin): {}", origin_of(&self.allowed));
        out!(
            "demo widget (origin not on the allowlist): {}",
            origin_of(&self.refused)
        );
        let widget_side = self.emulator.widget_addr().map(|a| format!("http://{a}"));
        eprintln!(
            "The embedded emulator serves the API and Azure AD at {} (HTTPS with its own development CA, for the SA), and the widget's side at {} (plain http on loopback, for the browser).",
            self.emulator.discover_url(),
            widget_side.as_deref().unwrap_or("the same address")
        );
        let site = |note: &str| {
            let site = DemoSite::new(service_base.to_owned())
                .with_note(note)
                .with_helpdesk(self.helpdesk.clone());
            match &widget_side {
                Some(origin) => site.with_api_origin(origin.clone()),
                None => site,
            }
        };
        let sites = [
            (
                self.allowed,
                site("This origin is on the service's allowlist."),
            ),
            (
                self.refused,
                site("This origin is NOT on the service's allowlist: the service refuses it."),
            ),
        ];
        for (listener, site) in sites {
            background.add_site(tokio::spawn(ta_widget_service::server::serve(
                listener,
                site.router(),
                None,
                ServerLimits::default(),
                background.stopped(),
            )));
        }
        background.set_emulator(self.emulator);
    }
}

/// The embedded emulator's configuration: `--emulator-config` (the
/// `emulator` command's file) or the defaults, with the widget's plain-http
/// side on (the browser calls it on loopback: a secure context with no
/// development CA to trust), HTTPS for the SA, an ephemeral port, and the
/// `--emulator-token-lifetime` and `--emulator-long-poll` flags over it.
fn emulator_config(args: &ServeArgs) -> Result<EmulatorConfig, String> {
    let mut config = match &args.emulator_config {
        Some(path) => {
            EmulatorConfig::from_file(path).map_err(|e| format!("--emulator-config: {e}"))?
        }
        None => EmulatorConfig {
            psat_lifetime_secs: EMULATOR_PSAT_LIFETIME_SECS,
            ..EmulatorConfig::default()
        },
    };
    config.widget_http = true;
    config.tls = true;
    config.listen = EmulatorConfig::default().listen;
    if let Some(secs) = args.emulator_token_lifetime {
        config.psat_lifetime_secs = secs;
    }
    if let Some(secs) = args.emulator_long_poll {
        config.chat.long_poll_ms = secs.saturating_mul(1000);
    }
    Ok(config)
}

/// The SA's development credentials: the emulator's first application's
/// client id, secret and endpoint.
struct Credentials {
    client_id: String,
    client_secret: String,
    endpoint: String,
}

impl Credentials {
    fn of(config: &EmulatorConfig, file: Option<&Path>) -> Result<Self, String> {
        let whose = || match file {
            Some(path) => format!("--emulator-config {}", path.display()),
            None => "the embedded emulator".to_owned(),
        };
        let app = config
            .applications
            .first()
            .ok_or_else(|| format!("{}: no application", whose()))?;
        let client_secret = app.client_secret.clone().ok_or_else(|| {
            format!(
                "{}: the first application needs a client_secret (serve --emulator signs in with it)",
                whose()
            )
        })?;
        let endpoint = app
            .endpoints
            .first()
            .ok_or_else(|| format!("{}: the first application has no endpoint", whose()))?;
        // What would start cleanly and then fail every widget or chat.
        if !app.consented {
            return Err(format!(
                "{}: the first application is not consented (every mint would fail)",
                whose()
            ));
        }
        if !endpoint.anon_tokens {
            return Err(format!(
                "{}: the first application's endpoint may not mint anonymous tokens (anon_tokens = false)",
                whose()
            ));
        }
        // The emulated platform's chat links name the default application
        // and endpoint.
        let chat_ready = app.application_id == DEFAULT_APPLICATION_ID
            && endpoint.sip.eq_ignore_ascii_case(DEFAULT_ENDPOINT);
        if !chat_ready {
            return Err(format!(
                "{}: the embedded chat runs for application {DEFAULT_APPLICATION_ID} and endpoint \
                 {DEFAULT_ENDPOINT} only; the first application is {} with {}",
                whose(),
                app.application_id,
                endpoint.sip
            ));
        }
        if config.chat.agents.is_empty() {
            return Err(format!(
                "{}: no chat agents (every chat would find nobody)",
                whose()
            ));
        }
        let endpoint = endpoint.sip.clone();
        Ok(Self {
            client_id: app.client_id.clone(),
            client_secret,
            endpoint,
        })
    }
}

/// Starts the embedded emulator, binds the demo sites, and makes the
/// settings that point at them.
pub(super) async fn start_emulator_mode(args: &ServeArgs) -> Result<(Demo, Settings), String> {
    let config = emulator_config(args)?;
    let credentials = Credentials::of(&config, args.emulator_config.as_deref())?;
    let emulator = Emulator::start(config)
        .await
        .map_err(|e| format!("starting the embedded emulator: {e}"))?;
    let bind = || async {
        TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(|e| format!("listening for the demo site: {e}"))
    };
    let allowed = bind().await?;
    let refused = bind().await?;
    let origin = |l: &TcpListener| {
        l.local_addr()
            .map(|a| format!("http://{a}"))
            .map_err(|e| e.to_string())
    };
    let upstream = emulator_upstream(&emulator, &credentials, origin(&allowed)?);
    let mut settings = args.resolve_with(upstream, &FileConfig::default(), true)?;
    settings.chat = Some(emulator_chat(&emulator));
    Ok((
        Demo {
            emulator,
            allowed,
            refused,
            helpdesk: credentials.endpoint,
        },
        settings,
    ))
}

/// The chat of `--emulator`: callbacks checked as the embedded platform
/// signs them, its agents invited.
fn emulator_chat(emulator: &Emulator) -> ChatSettings {
    let agents = emulator
        .config()
        .chat
        .agents
        .iter()
        .map(|a| Agent::new(a.uri.clone(), format!("{} (Support)", a.name)))
        .collect();
    ChatSettings {
        callback_url: None,
        audience: emulator.config().chat.callback_audience.clone(),
        issuer: emulator.callback_issuer(),
        keys_url: emulator.callback_keys_url(),
        plan: Plan::new(agents),
        replicas: None,
    }
}

/// The upstream settings of `--emulator`: the embedded emulator, its
/// development `credentials` and CA, and `allowed_origin`. The widget's
/// discover link may be loopback http (the emulator's widget-facing side);
/// every link the SA follows with its AAD token stays https.
fn emulator_upstream(
    emulator: &Emulator,
    credentials: &Credentials,
    allowed_origin: String,
) -> UpstreamArgs {
    UpstreamArgs {
        config: None,
        discover_url: Some(emulator.discover_url()),
        endpoint_id: Some(credentials.endpoint.clone()),
        tenant: None,
        client_id: Some(credentials.client_id.clone()),
        client_secret: Some(SecretArg::new(&credentials.client_secret)),
        client_secret_file: None,
        client_certificate: None,
        token_url: Some(emulator.token_url()),
        allowed_origins: vec![allowed_origin],
        allow_http_origins: false,
        ca_file: None,
        trusted_hosts: Vec::new(),
        allow_insecure_loopback: false,
        extra_roots_pem: emulator.ca_pem().map(str::to_owned),
        loopback_http_widget_links: true,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

    use ta_protocol::{AllowedOrigins, OriginPolicy};

    use super::*;

    #[derive(clap::Parser)]
    struct Wrapper {
        #[command(flatten)]
        serve: ServeArgs,
    }

    /// `serve --emulator` with these flags, whatever `TA_*` variables the
    /// environment running the test has.
    fn args(flags: &[&str]) -> ServeArgs {
        use clap::{CommandFactory as _, FromArgMatches as _};
        let matches = Wrapper::command()
            .mut_args(|arg| arg.env(None))
            .try_get_matches_from(["serve", "--emulator"].iter().chain(flags))
            .unwrap();
        Wrapper::from_arg_matches(&matches).unwrap().serve
    }

    fn config_file(name: &str, toml: &str) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!("ta-{name}-{}.toml", uuid::Uuid::new_v4()));
        std::fs::write(&path, toml).unwrap();
        path
    }

    #[test]
    fn the_configuration_file_is_used_under_the_flags() {
        // No file: the short demo lifetime, the widget's http side, HTTPS.
        let config = emulator_config(&args(&[])).unwrap();
        assert_eq!(config.psat_lifetime_secs, EMULATOR_PSAT_LIFETIME_SECS);
        assert!(config.widget_http && config.tls);
        let file = config_file(
            "embedded",
            r#"
psat_lifetime_secs = 600
tls = false
listen = "127.0.0.1:9"

[chat]
long_poll_ms = 5000

[[chat.agents]]
uri = "sip:bob@contoso.com"
name = "Bob"
think_ms = 3000
"#,
        );
        let path = file.display().to_string();
        let config = emulator_config(&args(&["--emulator-config", &path])).unwrap();
        assert_eq!(config.psat_lifetime_secs, 600);
        assert_eq!(config.chat.long_poll_ms, 5000);
        assert_eq!(config.chat.agents.len(), 1);
        assert_eq!(config.chat.agents[0].think_ms, 3000);
        // Its listen address and TLS are the embedded ones.
        assert!(config.tls && config.widget_http);
        assert_eq!(config.listen.port(), 0);
        // The flags win.
        let config = emulator_config(&args(&[
            "--emulator-config",
            &path,
            "--emulator-token-lifetime",
            "30",
            "--emulator-long-poll",
            "2",
        ]))
        .unwrap();
        assert_eq!(config.psat_lifetime_secs, 30);
        assert_eq!(config.chat.long_poll_ms, 2000);
        // The SA signs in as the first application.
        let credentials = Credentials::of(&config, Some(&file)).unwrap();
        assert_eq!(credentials.endpoint, ta_emulator::DEFAULT_ENDPOINT);
        std::fs::remove_file(&file).unwrap();
    }

    #[test]
    fn a_bad_configuration_file_is_named() {
        let file = config_file("embedded-bad", "psat_lifetime_secs = \"soon\"\n");
        let path = file.display().to_string();
        let error = emulator_config(&args(&["--emulator-config", &path])).unwrap_err();
        assert!(
            error.contains("--emulator-config") && error.contains(&path),
            "{error}"
        );
        std::fs::remove_file(&file).unwrap();
        // An application without a secret cannot be the SA's.
        let mut config = EmulatorConfig::default();
        config.applications[0].client_secret = None;
        let Err(error) = Credentials::of(&config, Some(Path::new("x.toml"))) else {
            panic!("an application without a secret was taken")
        };
        assert!(
            error.contains("x.toml") && error.contains("client_secret"),
            "{error}"
        );
        for (spoil, says) in [
            (
                (|c: &mut EmulatorConfig| c.applications[0].consented = false)
                    as fn(&mut EmulatorConfig),
                "not consented",
            ),
            (
                |c| c.applications[0].endpoints[0].anon_tokens = false,
                "anon_tokens",
            ),
            (
                |c| c.applications[0].endpoints[0].sip = "sip:other@contoso.com".to_owned(),
                "sip:other@contoso.com",
            ),
            (|c| c.applications[0].application_id = "42".to_owned(), "42"),
            (|c| c.chat.agents.clear(), "no chat agents"),
        ] {
            let mut config = EmulatorConfig::default();
            spoil(&mut config);
            let Err(error) = Credentials::of(&config, Some(Path::new("x.toml"))) else {
                panic!("a configuration that fails later was taken ({says})")
            };
            assert!(error.contains("x.toml") && error.contains(says), "{error}");
        }
        let missing = emulator_config(&args(&["--emulator-config", "/nonexistent/ta.toml"]));
        assert!(missing.unwrap_err().contains("/nonexistent/ta.toml"));
    }

    /// Under `--emulator` the widget's discover link is the emulator's
    /// plain-http side, and no link the SA follows may be http.
    #[tokio::test]
    async fn the_emulator_mode_widget_link_is_loopback_http_and_the_sa_stays_on_https() {
        let emulator = Emulator::start(EmulatorConfig {
            widget_http: true,
            ..EmulatorConfig::default()
        })
        .await
        .unwrap();
        let origin = "http://127.0.0.1:3000";
        let credentials = Credentials::of(emulator.config(), None).unwrap();
        let upstream = emulator_upstream(&emulator, &credentials, origin.to_owned())
            .build()
            .unwrap();
        let config = &upstream.config;
        assert!(config.loopback_http_widget_links());
        assert!(!config.allow_insecure_loopback());
        let port = emulator.addr().port();
        for sa_link in [
            format!("http://localhost:{port}/platformservice/v1/applications"),
            format!("http://localhost:{port}/platformservice/v1/applications/1627259584"),
            format!("http://127.0.0.1:{port}/platformservice/discover"),
        ] {
            let url = url::Url::parse(&sa_link).unwrap();
            assert!(
                !config.is_secure_enough(&url),
                "{sa_link} would be followed"
            );
        }
        // A real mint over the emulator: the link the widget gets.
        let origins = AllowedOrigins::parse_list(origin, OriginPolicy::new(false, true)).unwrap();
        let minted = upstream.bootstrapper.mint(origins).await.unwrap();
        let widget = emulator.widget_addr().unwrap();
        assert_eq!(minted.discover_url.scheme(), "http");
        assert_eq!(minted.discover_url.port(), Some(widget.port()));
        assert_eq!(emulator.stats().psat_tokens_minted, 1);
    }
}
