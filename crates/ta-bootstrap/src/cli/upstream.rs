//! The upstream configuration shared by `token`, `doctor` (and `serve`).

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use ta_bootstrap::{
    Bootstrapper, CertificateSigner, ClientCredentialsProvider, Credential, Metrics, RandomIds,
    SystemClock, TokenProvider,
};
use ta_hyper::HyperTransport;
use ta_protocol::aad::{ClientId, TokenEndpoint};
use ta_protocol::{
    AllowedOrigins, ApplicationSessionId, ClientSecret, Config, DEFAULT_DISCOVER_URL, Origin,
    OriginPolicy, Transport,
};

/// A secret from the command line or the environment; `Debug` hides it.
#[derive(Clone)]
pub(crate) struct SecretArg(String);

impl std::str::FromStr for SecretArg {
    type Err = std::convert::Infallible;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Ok(Self(value.to_owned()))
    }
}

impl std::fmt::Debug for SecretArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Where the deployment is and how to authenticate.
#[derive(Debug, Args)]
pub(crate) struct UpstreamArgs {
    /// The discover URL of the deployment.
    #[arg(long, env = "TA_DISCOVER_URL", default_value = DEFAULT_DISCOVER_URL)]
    pub(crate) discover_url: String,
    /// The application endpoint, a `sip:` URI.
    #[arg(long, env = "TA_ENDPOINT_ID")]
    pub(crate) endpoint_id: String,
    /// The AAD tenant (id or domain); needed unless --token-url is given.
    #[arg(long, env = "TA_TENANT")]
    pub(crate) tenant: Option<String>,
    /// The AAD application (client) id.
    #[arg(long, env = "TA_CLIENT_ID")]
    pub(crate) client_id: String,
    /// The client secret (prefer the environment variable: command lines
    /// are visible to other users).
    #[arg(
        long,
        env = "TA_CLIENT_SECRET",
        hide_env_values = true,
        conflicts_with = "client_certificate",
        allow_hyphen_values = true
    )]
    pub(crate) client_secret: Option<SecretArg>,
    /// A PEM file with the application certificate and its PKCS#8 key.
    #[arg(long, env = "TA_CLIENT_CERTIFICATE")]
    pub(crate) client_certificate: Option<PathBuf>,
    /// The AAD token endpoint [default: https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token].
    #[arg(long, env = "TA_TOKEN_URL")]
    pub(crate) token_url: Option<String>,
    /// A web origin the widget may call the API from (repeatable).
    #[arg(
        long = "allowed-origin",
        env = "TA_ALLOWED_ORIGINS",
        value_delimiter = ';'
    )]
    pub(crate) allowed_origins: Vec<String>,
    /// Accept `http://` origins (the service accepted them; allow on purpose).
    #[arg(long, env = "TA_ALLOW_HTTP_ORIGINS")]
    pub(crate) allow_http_origins: bool,
    /// Extra trusted root certificates (PEM).
    #[arg(long, env = "TA_CA_FILE")]
    pub(crate) ca_file: Option<PathBuf>,
    /// A host the AAD token may also be sent to (repeatable; `*.domain`
    /// allowed).
    #[arg(long = "trusted-host", env = "TA_TRUSTED_HOSTS", value_delimiter = ';')]
    pub(crate) trusted_hosts: Vec<String>,
    /// Allow plain http to loopback hosts (development only).
    #[arg(long, env = "TA_ALLOW_INSECURE_LOOPBACK")]
    pub(crate) allow_insecure_loopback: bool,
}

/// Everything built from the arguments.
pub(crate) struct Upstream {
    pub(crate) config: Arc<Config>,
    pub(crate) tokens: Arc<ClientCredentialsProvider>,
    pub(crate) bootstrapper: Bootstrapper,
    pub(crate) token_endpoint: TokenEndpoint,
}

impl UpstreamArgs {
    /// The allowed origins, checked.
    pub(crate) fn origins(&self) -> Result<AllowedOrigins, String> {
        let policy = OriginPolicy {
            allow_http: self.allow_http_origins,
            allow_loopback_http: false,
        };
        let origins = self
            .allowed_origins
            .iter()
            .map(|o| o.trim())
            .filter(|o| !o.is_empty())
            .map(|o| Origin::parse(o, policy))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        if origins.is_empty() {
            return Err(
                "at least one --allowed-origin (or TA_ALLOWED_ORIGINS) is required".to_owned(),
            );
        }
        AllowedOrigins::new(origins).map_err(|e| e.to_string())
    }

    /// Builds the configuration, transport, token provider and bootstrapper.
    pub(crate) fn build(&self) -> Result<Upstream, String> {
        self.build_with(None, None)
    }

    /// The same, counting in `metrics`.
    pub(crate) fn build_with(
        &self,
        metrics: Option<Arc<Metrics>>,
        limits: Option<ta_hyper::Limits>,
    ) -> Result<Upstream, String> {
        let mut builder = Config::builder(&self.discover_url, &self.endpoint_id)
            .allow_insecure_loopback(self.allow_insecure_loopback);
        for host in &self.trusted_hosts {
            builder = builder.trust_host(host.trim());
        }
        let config = builder.build().map_err(|e| e.to_string())?.into_shared();
        let token_endpoint = match (&self.token_url, &self.tenant) {
            (Some(url), _) => TokenEndpoint::parse(url, self.allow_insecure_loopback),
            (None, Some(tenant)) => TokenEndpoint::for_tenant(tenant),
            (None, None) => {
                return Err("--tenant (or --token-url) is required".to_owned());
            }
        }
        .map_err(|e| e.to_string())?;
        let client_id = ClientId::new(&self.client_id).map_err(|e| e.to_string())?;
        let credential = match (&self.client_secret, &self.client_certificate) {
            (Some(SecretArg(secret)), None) if !secret.is_empty() => {
                Credential::Secret(ClientSecret::new(secret.clone()))
            }
            (None, Some(path)) => Credential::Certificate(Box::new(
                CertificateSigner::from_file(path).map_err(|e| e.to_string())?,
            )),
            _ => {
                return Err(
                    "one of --client-secret (TA_CLIENT_SECRET) or --client-certificate (TA_CLIENT_CERTIFICATE) is required"
                        .to_owned(),
                );
            }
        };
        let mut transport = HyperTransport::builder();
        if let Some(limits) = limits {
            transport = transport.limits(limits);
        }
        if let Some(ca) = &self.ca_file {
            transport = transport
                .add_root_certificates_file(ca)
                .map_err(|e| e.to_string())?;
        }
        let transport: Arc<dyn Transport> = Arc::new(transport.build().map_err(|e| e.to_string())?);
        let mut provider = ClientCredentialsProvider::new(
            Arc::clone(&transport),
            token_endpoint.clone(),
            client_id,
            credential,
            Arc::new(SystemClock),
            Arc::new(RandomIds::new()),
        );
        if let Some(metrics) = &metrics {
            provider = provider.with_metrics(Arc::clone(metrics));
        }
        let tokens = Arc::new(provider);
        let mut bootstrapper = Bootstrapper::builder(
            Arc::clone(&config),
            Arc::clone(&transport),
            Arc::clone(&tokens) as Arc<dyn TokenProvider>,
        );
        if let Some(metrics) = metrics {
            bootstrapper = bootstrapper.metrics(metrics);
        }
        let bootstrapper = bootstrapper.build();
        Ok(Upstream {
            config,
            tokens,
            bootstrapper,
            token_endpoint,
        })
    }
}

/// A session id from the command line, checked.
pub(crate) fn session_id(value: Option<&str>) -> Result<Option<ApplicationSessionId>, String> {
    value
        .map(|v| ApplicationSessionId::new(v.to_owned()).map_err(|e| e.to_string()))
        .transpose()
}
