//! The emulator's configuration: tenant, applications, lifetimes, quirks.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::faults::FaultRule;

/// The emulator's default tenant name.
pub const DEFAULT_TENANT: &str = "contoso";
/// The emulator's default tenant id.
pub const DEFAULT_TENANT_ID: &str = "72f988bf-0000-4000-8000-00000000c0de";
/// The default application's client id.
pub const DEFAULT_CLIENT_ID: &str = "5a1c8f5e-0000-4000-8000-00000000a11e";
/// The default application's client secret. A development value, known to
/// everyone: it only opens the emulator.
pub const DEFAULT_CLIENT_SECRET: &str = "emulator-development-secret";
/// The default application's id in the API's URLs (the seed's).
pub const DEFAULT_APPLICATION_ID: &str = "1627259584";
/// The default application endpoint.
pub const DEFAULT_ENDPOINT: &str = "sip:helpdesk@contoso.com";

/// Which rel namespace the emulated deployment writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RelNamespace {
    /// `service:` (newer deployments).
    #[default]
    Service,
    /// `ms:rtc:saas:` (older deployments).
    RtcSaas,
}

/// How `expiryTime` is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExpiryStyle {
    /// `2016-06-27T01:42:13.094Z`.
    #[default]
    Rfc3339,
    /// `/Date(1466991733094)/`.
    MicrosoftJson,
}

/// How the `platformservice` path segment is cased in hrefs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PathCasing {
    /// `platformservice`.
    #[default]
    Lower,
    /// `platformService`.
    Camel,
}

/// How `endpointId` is written in hrefs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EndpointIdStyle {
    /// As the seed's answers mix them: the application href
    /// percent-encoded with lower-case hex (`sip%3ahelpdesk%40contoso.com`),
    /// the other hrefs raw.
    #[default]
    Mixed,
    /// Raw everywhere (`sip:helpdesk@contoso.com`).
    Raw,
    /// Percent-encoded everywhere.
    Encoded,
}

/// The quirks real responses showed, each a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Quirks {
    /// The rel namespace.
    pub namespace: RelNamespace,
    /// The `expiryTime` format.
    pub expiry: ExpiryStyle,
    /// Whether JSON bodies begin with a UTF-8 byte order mark.
    pub bom: bool,
    /// The casing of `platformservice` in hrefs.
    pub path_casing: PathCasing,
    /// How `endpointId` appears in hrefs.
    pub endpoint_id: EndpointIdStyle,
}

/// An application endpoint a tenant admin registered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    /// The endpoint's `sip:` URI.
    pub sip: String,
    /// Whether the tenant consented to anonymous tokens for it.
    #[serde(default = "yes")]
    pub anon_tokens: bool,
}

fn yes() -> bool {
    true
}

/// An AAD application registered in the tenant.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    /// The AAD client id.
    pub client_id: String,
    /// The client secret, if the application has one.
    #[serde(default)]
    pub client_secret: Option<String>,
    /// The application certificate (PEM) for client assertions, if any.
    #[serde(default)]
    pub certificate_pem: Option<String>,
    /// The application's id in the API's URLs.
    pub application_id: String,
    /// Whether the tenant admin consented to the application at all.
    #[serde(default = "yes")]
    pub consented: bool,
    /// Its registered endpoints.
    pub endpoints: Vec<EndpointConfig>,
}

impl std::fmt::Debug for AppConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppConfig")
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "certificate_pem",
                &self.certificate_pem.as_ref().map(|_| "<certificate>"),
            )
            .field("application_id", &self.application_id)
            .field("consented", &self.consented)
            .field("endpoints", &self.endpoints)
            .finish()
    }
}

/// The emulator's configuration. [`EmulatorConfig::default`] works with no
/// input: tenant `contoso`, one consented application with a client secret,
/// endpoint `sip:helpdesk@contoso.com`, HTTPS on an ephemeral loopback port.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmulatorConfig {
    /// The tenant's name (as in `login…/<tenant>/oauth2/v2.0/token`).
    pub tenant: String,
    /// The tenant's id (also accepted in token URLs; the `tid` claim).
    pub tenant_id: String,
    /// The registered applications.
    pub applications: Vec<AppConfig>,
    /// AAD access token lifetime, in seconds.
    pub aad_token_lifetime_secs: u64,
    /// Anonymous (psat) token lifetime, in seconds.
    pub psat_lifetime_secs: u64,
    /// Whether discovery demands a token (as one document version said).
    pub discovery_requires_token: bool,
    /// The quirks.
    pub quirks: Quirks,
    /// Serve HTTPS (default) or plain HTTP.
    pub tls: bool,
    /// The address to listen on; loopback only. Port 0 picks a free port.
    pub listen: SocketAddr,
    /// Also serve the widget-facing side (the anonymous discovery, which a
    /// browser calls) over plain HTTP on a second loopback port, and point
    /// the minted discover link there. Browsers treat loopback HTTP as a
    /// secure context, so a page reaches it without trusting the
    /// development CA; the SA's side (discovery, AAD, the API) stays on the
    /// main listener only. Off by default.
    pub widget_http: bool,
    /// Faults in force from the start (more can be added at run time).
    pub faults: Vec<FaultRule>,
    /// The seed of probabilistic faults.
    pub fault_seed: u64,
    /// The chat: UCWA for the widget, the platform's callbacks to the SA,
    /// the simulated agents.
    pub chat: crate::ChatConfig,
    /// The API's distance from its clients: a round-trip time with jitter
    /// that every request and new connection pays (none by default; see
    /// [`NetworkDistance`](crate::NetworkDistance)).
    pub network: crate::NetworkDistance,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            tenant: DEFAULT_TENANT.to_owned(),
            tenant_id: DEFAULT_TENANT_ID.to_owned(),
            applications: vec![AppConfig {
                client_id: DEFAULT_CLIENT_ID.to_owned(),
                client_secret: Some(DEFAULT_CLIENT_SECRET.to_owned()),
                certificate_pem: None,
                application_id: DEFAULT_APPLICATION_ID.to_owned(),
                consented: true,
                endpoints: vec![EndpointConfig {
                    sip: DEFAULT_ENDPOINT.to_owned(),
                    anon_tokens: true,
                }],
            }],
            aad_token_lifetime_secs: 3600,
            psat_lifetime_secs: 8 * 3600,
            discovery_requires_token: false,
            quirks: Quirks::default(),
            tls: true,
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            widget_http: false,
            faults: Vec::new(),
            fault_seed: 0x7A_E4_u64,
            chat: crate::ChatConfig::default(),
            network: crate::NetworkDistance::default(),
        }
    }
}

/// What is wrong with an emulator configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The TOML does not describe a configuration. The message names the
    /// line and what is wrong, without quoting the file or a secret's
    /// value (`client_secret`, `certificate_pem`).
    #[error("{path}{}: {message}", .line.map(|l| format!(", line {l}")).unwrap_or_default())]
    Toml {
        /// The file.
        path: String,
        /// The line that is wrong, if known.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// A value is not acceptable.
    #[error("emulator configuration: {0}")]
    Invalid(String),
}

/// The keys whose values are secrets.
const SECRET_KEYS: [&str; 2] = ["client_secret", "certificate_pem"];

/// `message` on one line, with every secret value `text` holds blanked.
fn without_secrets(text: &str, message: &str) -> String {
    fn collect(value: &toml::Value, secret: bool, into: &mut Vec<String>) {
        match value {
            toml::Value::Table(table) => {
                for (key, value) in table {
                    collect(value, secret || SECRET_KEYS.contains(&key.as_str()), into);
                }
            }
            toml::Value::Array(items) => items.iter().for_each(|v| collect(v, secret, into)),
            toml::Value::String(s) if secret => into.push(s.clone()),
            other if secret => into.push(other.to_string()),
            _ => {}
        }
    }
    let mut message = message.replace(['\r', '\n'], " ");
    if let Ok(table) = text.parse::<toml::Table>() {
        let mut secrets = Vec::new();
        collect(&toml::Value::Table(table), false, &mut secrets);
        for secret in secrets.iter().filter(|s| !s.is_empty()) {
            message = message.replace(secret.as_str(), "<not shown>");
        }
    }
    message
}

impl EmulatorConfig {
    /// Reads a configuration from TOML; absent fields take their defaults.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        Self::parse(text, "<inline>")
    }

    fn parse(text: &str, path: &str) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .and_then(|span| text.get(..span.start))
                .map(|before| before.matches('\n').count() + 1);
            // The key on that line names what is wrong (a key is no secret).
            let key = line
                .and_then(|n| text.lines().nth(n - 1))
                .and_then(|l| l.split_once('='))
                .map(|(key, _)| key.trim())
                .filter(|key| !key.is_empty());
            let message = without_secrets(text, e.message());
            ConfigError::Toml {
                path: path.to_owned(),
                line,
                message: match key {
                    Some(key) => format!("`{key}`: {message}"),
                    None => message,
                },
            }
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Reads a configuration file (TOML).
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Checks the values.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        if !self.listen.ip().is_loopback() {
            return invalid(format!(
                "listen address {} is not loopback; the emulator binds loopback addresses only",
                self.listen
            ));
        }
        if self.tenant.is_empty() || self.tenant_id.is_empty() {
            return invalid("tenant and tenant_id must not be empty".to_owned());
        }
        if self.aad_token_lifetime_secs == 0 || self.psat_lifetime_secs == 0 {
            return invalid("token lifetimes must be at least one second".to_owned());
        }
        self.chat.validate().map_err(ConfigError::Invalid)?;
        self.network.validate().map_err(ConfigError::Invalid)?;
        for app in &self.applications {
            if app.client_id.is_empty() || app.application_id.is_empty() {
                return invalid(
                    "every application needs a client_id and an application_id".to_owned(),
                );
            }
            if !app
                .application_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric())
            {
                return invalid(format!(
                    "application_id {:?} must be letters and digits",
                    app.application_id
                ));
            }
            if app.client_secret.is_none() && app.certificate_pem.is_none() {
                return invalid(format!(
                    "application {} has neither a client secret nor a certificate",
                    app.client_id
                ));
            }
            for endpoint in &app.endpoints {
                if !endpoint.sip.to_ascii_lowercase().starts_with("sip:") {
                    return invalid(format!("endpoint {:?} is not a sip: URI", endpoint.sip));
                }
            }
        }
        Ok(())
    }

    /// The AAD token lifetime.
    pub fn aad_token_lifetime(&self) -> Duration {
        Duration::from_secs(self.aad_token_lifetime_secs)
    }

    /// The psat lifetime.
    pub fn psat_lifetime(&self) -> Duration {
        Duration::from_secs(self.psat_lifetime_secs)
    }

    /// Sets the quirks (builder style).
    pub fn with_quirks(mut self, quirks: Quirks) -> Self {
        self.quirks = quirks;
        self
    }

    /// Serves plain HTTP instead of HTTPS (builder style).
    pub fn with_plain_http(mut self) -> Self {
        self.tls = false;
        self
    }

    /// Serves the widget-facing side over plain HTTP on a second loopback
    /// port too (builder style; see [`EmulatorConfig::widget_http`]).
    pub fn with_widget_http(mut self) -> Self {
        self.widget_http = true;
        self
    }

    /// Makes discovery demand a token (builder style).
    pub fn with_discovery_requiring_token(mut self) -> Self {
        self.discovery_requires_token = true;
        self
    }

    /// Sets the AAD token lifetime (builder style).
    pub fn with_aad_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.aad_token_lifetime_secs = lifetime.as_secs().max(1);
        self
    }

    /// Sets the psat lifetime (builder style).
    pub fn with_psat_lifetime(mut self, lifetime: Duration) -> Self {
        self.psat_lifetime_secs = lifetime.as_secs().max(1);
        self
    }

    /// Sets the listen address (builder style).
    pub fn with_listen(mut self, listen: SocketAddr) -> Self {
        self.listen = listen;
        self
    }

    /// Registers the development certificate
    /// ([`crate::dev_client_certificate_pem`]) for the default application,
    /// so that it can authenticate with client assertions signed with
    /// [`crate::DEV_CLIENT_CERTIFICATE_KEY`] (builder style).
    pub fn with_dev_client_certificate(mut self) -> Result<Self, ConfigError> {
        let pem = crate::tokens::dev_client_certificate_pem().map_err(ConfigError::Invalid)?;
        if let Some(app) = self.applications.first_mut() {
            app.certificate_pem = Some(pem.to_owned());
        }
        Ok(self)
    }

    /// Adds a fault rule (builder style).
    pub fn with_fault(mut self, rule: FaultRule) -> Self {
        self.faults.push(rule);
        self
    }

    /// Changes the default application (builder style).
    pub fn with_app(mut self, change: impl FnOnce(&mut AppConfig)) -> Self {
        if let Some(app) = self.applications.first_mut() {
            change(app);
        }
        self
    }
}
