//! Starting: the settings resolved (or, under `--emulator`, the embedded
//! emulator started and its settings made), the upstream client and the
//! service built, the listener bound and announced, and what runs beside
//! the service spawned (the warm-up loop; under `--emulator`, the demo
//! sites).

use std::sync::Arc;
use std::time::Duration;

use ta_emulator::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_ENDPOINT, Emulator, EmulatorConfig,
};
use ta_protocol::chat::{Agent, Plan};
use ta_widget_service::server::{ServerLimits, ServerTls};
use ta_widget_service::{Metrics, WidgetService};
use tokio::net::TcpListener;
use tracing::{info, warn};

use super::ServeArgs;
use super::chat::ChatSettings;
use super::reload::Running;
use super::settings::Settings;
use super::shutdown::Background;
use crate::cli::config_file::FileConfig;
use crate::cli::upstream::{SecretArg, UpstreamArgs};
use crate::demo_site::DemoSite;

/// The psat lifetime of the embedded emulator: short, so that the demo
/// widget's renewal shows within minutes.
const EMULATOR_PSAT_LIFETIME_SECS: u64 = 120;

/// A started service, about to serve.
pub(super) struct Started {
    pub(super) settings: Settings,
    pub(super) service: WidgetService,
    pub(super) tls: Option<Arc<ServerTls>>,
    /// What a reload changes.
    pub(super) running: Running,
    pub(super) listener: TcpListener,
    pub(super) background: Background,
}

/// Starts everything but the accept loop; a configuration error otherwise.
pub(super) async fn start(args: &ServeArgs) -> Result<Started, String> {
    let (demo, settings) = if args.emulator {
        if let Some(path) = &args.upstream.config {
            // Likely a TA_CONFIG left in the environment: say so, and go on.
            warn!(
                config = %path.display(),
                "--emulator: the configuration file is not read; the embedded emulator is the deployment"
            );
        }
        let (demo, settings) = start_emulator_mode(args).await?;
        (Some(demo), settings)
    } else {
        (None, args.resolve()?)
    };
    let metrics = Arc::new(Metrics::new());
    // One upstream call gives up after 10 s, a whole mint (retries and a
    // cold cache included) after the service's 25 s upstream deadline,
    // inside its 30 s request deadline: a browser gets a typed 504.
    let limits = ta_hyper::Limits::default()
        .with_connect_timeout(Duration::from_secs(3))
        .with_request_timeout(Duration::from_secs(8))
        .with_call_timeout(Duration::from_secs(10));
    let upstream = settings
        .upstream
        .build_with(Some(Arc::clone(&metrics) as _), Some(limits))?;
    let tls = match &settings.tls {
        Some((cert, key)) => Some(Arc::new(
            ServerTls::from_files(cert, key).map_err(|e| format!("TLS: {e}"))?,
        )),
        None => None,
    };
    let mut service = WidgetService::new(
        upstream.bootstrapper.clone(),
        settings.service_config(),
        metrics,
    );
    if let Some(chat) = &settings.chat {
        service = service
            .with_chat(chat.endpoint(&upstream.bootstrapper, Arc::clone(&upstream.transport))?);
    }
    let listener = TcpListener::bind(settings.listen)
        .await
        .map_err(|e| format!("listening on {}: {e}", settings.listen))?;
    let address = listener.local_addr().unwrap_or(settings.listen);
    let scheme = if tls.is_some() { "https" } else { "http" };
    let service_base = format!("{scheme}://{address}");
    // Printed on stdout so that scripts and tests can find the port.
    out!("serving widget tokens on {service_base}/v1/widget-token");
    let mut background = Background::new();
    if let Some(demo) = demo {
        // The emulated platform calls the service back on loopback.
        let port = address.port();
        let callback = format!("{scheme}://127.0.0.1:{port}/v1/callback");
        if let Err(e) = demo.emulator.set_callback_url(&callback) {
            warn!(error = %e, "the embedded emulator cannot call the service back");
        }
        demo.serve(&service_base, &mut background);
    }
    if settings.chat.is_some() {
        // After the demo sites' lines, which scripts read by position.
        out!("taking the platform's callbacks on {service_base}/v1/callback");
    }
    info!(%address, tls = tls.is_some(), allowed_origins = settings.allowlist.len(), "serving widget tokens");
    let warm = service.clone();
    background.add_task(tokio::spawn(async move { warm.keep_warm().await }));
    let running = Running {
        service: service.clone(),
        tokens: Arc::clone(&upstream.tokens),
        tls: tls.clone(),
    };
    Ok(Started {
        settings,
        service,
        tls,
        running,
        listener,
        background,
    })
}

/// The embedded emulator and the listeners of the two demo sites of
/// `--emulator`.
struct Demo {
    emulator: Emulator,
    allowed: TcpListener,
    refused: TcpListener,
}

impl Demo {
    /// Announces the demo sites and serves them until the service stops;
    /// the emulator is shut down after them.
    fn serve(self, service_base: &str, background: &mut Background) {
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
                .with_helpdesk(DEFAULT_ENDPOINT);
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

/// Starts the embedded emulator, binds the demo sites, and makes the
/// settings that point at them.
async fn start_emulator_mode(args: &ServeArgs) -> Result<(Demo, Settings), String> {
    let mut config = EmulatorConfig {
        psat_lifetime_secs: args
            .emulator_token_lifetime
            .unwrap_or(EMULATOR_PSAT_LIFETIME_SECS),
        // The browser calls the emulator over plain http on loopback (a
        // secure context, with no development CA to trust).
        widget_http: true,
        ..EmulatorConfig::default()
    };
    if let Some(secs) = args.emulator_long_poll {
        config.chat.long_poll_ms = secs.saturating_mul(1000);
    }
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
    let upstream = emulator_upstream(&emulator, origin(&allowed)?);
    let mut settings = args.resolve_with(upstream, &FileConfig::default(), true)?;
    settings.chat = Some(emulator_chat(&emulator));
    Ok((
        Demo {
            emulator,
            allowed,
            refused,
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
        audience: ta_emulator::DEFAULT_APP_ID_URI.to_owned(),
        issuer: emulator.callback_issuer(),
        keys_url: emulator.callback_keys_url(),
        plan: Plan::new(agents),
    }
}

/// The upstream settings of `--emulator`: the embedded emulator, its
/// development credentials and CA, and `allowed_origin`. The widget's
/// discover link may be loopback http (the emulator's widget-facing side);
/// every link the SA follows with its AAD token stays https.
fn emulator_upstream(emulator: &Emulator, allowed_origin: String) -> UpstreamArgs {
    UpstreamArgs {
        config: None,
        discover_url: Some(emulator.discover_url()),
        endpoint_id: Some(DEFAULT_ENDPOINT.to_owned()),
        tenant: None,
        client_id: Some(DEFAULT_CLIENT_ID.to_owned()),
        client_secret: Some(SecretArg::new(DEFAULT_CLIENT_SECRET)),
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
    #![allow(clippy::unwrap_used)]

    use ta_protocol::{AllowedOrigins, OriginPolicy};

    use super::*;

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
        let upstream = emulator_upstream(&emulator, origin.to_owned())
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
