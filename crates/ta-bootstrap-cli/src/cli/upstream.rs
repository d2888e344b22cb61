//! The upstream configuration shared by `token`, `doctor` (and `serve`).

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use ta_bootstrap::{
    Bootstrapper, CertificateSigner, ClientCredentialsProvider, Credential, Observer,
};
pub(crate) use ta_bootstrap_cli::secret_arg::SecretArg;
use ta_hyper::HyperTransport;
use ta_protocol::aad::{ClientId, TokenEndpoint};
use ta_protocol::{
    AllowedOrigins, ApplicationSessionId, ClientSecret, Config, DEFAULT_DISCOVER_URL, Origin,
    OriginPolicy, Transport,
};

/// Where the deployment is and how to authenticate.
///
/// Every value comes from a flag, else its environment variable, else the
/// `--config` file, else its default.
#[derive(Debug, Clone, Args)]
pub(crate) struct UpstreamArgs {
    /// A TOML file with any of these settings (keys as the long flags:
    /// `endpoint-id = "sip:…"`, lists as arrays: `allowed-origins = […]`).
    /// Flags and environment variables win over the file.
    #[arg(long, env = "TA_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// The discover URL of the deployment [default: the public service's].
    #[arg(long, env = "TA_DISCOVER_URL")]
    pub(crate) discover_url: Option<String>,
    /// The application endpoint, a `sip:` URI (required).
    #[arg(long, env = "TA_ENDPOINT_ID")]
    pub(crate) endpoint_id: Option<String>,
    /// The AAD tenant (id or domain); needed unless --token-url is given.
    #[arg(long, env = "TA_TENANT")]
    pub(crate) tenant: Option<String>,
    /// The AAD application (client) id (required).
    #[arg(long, env = "TA_CLIENT_ID")]
    pub(crate) client_id: Option<String>,
    /// The client secret (prefer the environment variable or a file:
    /// command lines are visible to other users).
    #[arg(
        long,
        env = "TA_CLIENT_SECRET",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    pub(crate) client_secret: Option<SecretArg>,
    /// A file holding the client secret (trailing whitespace ignored); read
    /// again when `serve` reloads its configuration.
    #[arg(long, env = "TA_CLIENT_SECRET_FILE")]
    pub(crate) client_secret_file: Option<PathBuf>,
    /// A PEM file with the application certificate and its PKCS#8 key;
    /// read again when `serve` reloads its configuration.
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
    /// Allow plain http to loopback hosts, and loopback `http://` origins
    /// such as `http://127.0.0.1:3000` (development only).
    #[arg(long, env = "TA_ALLOW_INSECURE_LOOPBACK")]
    pub(crate) allow_insecure_loopback: bool,
    /// Extra trusted roots as PEM text (the embedded emulator's CA).
    #[arg(skip)]
    pub(crate) extra_roots_pem: Option<String>,
    /// Accept a loopback `http` discover link for the widget (the embedded
    /// emulator's widget-facing side); every link the SA follows stays
    /// `https`.
    #[arg(skip)]
    pub(crate) loopback_http_widget_links: bool,
}

/// Everything built from the arguments.
pub(crate) struct Upstream {
    pub(crate) config: Arc<Config>,
    /// The transport the bootstrapper uses (the chat's keys come over it).
    pub(crate) transport: Arc<dyn Transport>,
    pub(crate) tokens: Arc<ClientCredentialsProvider>,
    pub(crate) bootstrapper: Bootstrapper,
    pub(crate) token_endpoint: TokenEndpoint,
}

impl UpstreamArgs {
    /// The allowed origins, checked.
    pub(crate) fn origins(&self) -> Result<AllowedOrigins, String> {
        let policy = OriginPolicy::new(self.allow_http_origins, self.allow_insecure_loopback);
        let origins =
            match Origin::parse_all(self.allowed_origins.iter().map(String::as_str), policy) {
                Err(ta_protocol::OriginError::Empty) => {
                    return Err(
                        "at least one --allowed-origin (or TA_ALLOWED_ORIGINS) is required"
                            .to_owned(),
                    );
                }
                other => other.map_err(|e| e.to_string())?,
            };
        AllowedOrigins::new(origins).map_err(|e| e.to_string())
    }

    /// Builds the configuration, transport, token provider and bootstrapper.
    pub(crate) fn build(&self) -> Result<Upstream, String> {
        self.build_with(None, None)
    }

    /// The same, reporting to `observer` (serve's metrics).
    pub(crate) fn build_with(
        &self,
        observer: Option<Arc<dyn Observer>>,
        limits: Option<ta_hyper::Limits>,
    ) -> Result<Upstream, String> {
        let endpoint_id = self
            .endpoint_id
            .as_deref()
            .ok_or("--endpoint-id (TA_ENDPOINT_ID, or `endpoint-id` in the configuration file) is required")?;
        let discover_url = self.discover_url.as_deref().unwrap_or(DEFAULT_DISCOVER_URL);
        let mut builder = Config::builder(discover_url, endpoint_id)
            .allow_insecure_loopback(self.allow_insecure_loopback)
            .loopback_http_widget_links(self.loopback_http_widget_links);
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
        // Both given: the URL is used, so it must be the tenant's, or the
        // operator believes in a tenant that is not the one asked.
        if let (Some(url), Some(tenant)) = (&self.token_url, &self.tenant) {
            if !token_endpoint
                .tenant()
                .is_some_and(|named| named.eq_ignore_ascii_case(tenant.trim()))
            {
                return Err(format!(
                    "--token-url {url} is not a token endpoint of --tenant {tenant} \
                     (its path does not name that tenant); give only one of them"
                ));
            }
        }
        let client_id = self.client_id.as_deref().ok_or(
            "--client-id (TA_CLIENT_ID, or `client-id` in the configuration file) is required",
        )?;
        let client_id = ClientId::new(client_id).map_err(|e| e.to_string())?;
        let credential = self.credential()?;
        let mut transport = HyperTransport::builder();
        if let Some(limits) = limits {
            transport = transport.limits(limits);
        }
        if let Some(pem) = &self.extra_roots_pem {
            transport = transport
                .add_root_certificates_pem(pem.as_bytes())
                .map_err(|e| e.to_string())?;
        }
        if let Some(ca) = &self.ca_file {
            transport = transport
                .add_root_certificates_file(ca)
                .map_err(|e| e.to_string())?;
        }
        let transport: Arc<dyn Transport> = Arc::new(transport.build().map_err(|e| e.to_string())?);
        let mut bootstrapper = Bootstrapper::with_client_credentials(
            Arc::clone(&config),
            Arc::clone(&transport),
            token_endpoint.clone(),
            client_id,
            credential,
        );
        if let Some(observer) = observer {
            bootstrapper = bootstrapper.observer(observer);
        }
        let bootstrapper = bootstrapper.build();
        let tokens = Arc::clone(
            bootstrapper
                .client_credentials()
                .ok_or("the bootstrapper has no client-credentials provider")?,
        );
        Ok(Upstream {
            config,
            transport,
            tokens,
            bootstrapper,
            token_endpoint,
        })
    }
}

impl UpstreamArgs {
    /// The credential, read now (a secret file or a certificate file is
    /// read again at each call: this is how `serve` rotates it).
    pub(crate) fn credential(&self) -> Result<Credential, String> {
        let secret = self
            .client_secret
            .as_ref()
            .filter(|s| !s.expose().is_empty());
        match (secret, &self.client_secret_file, &self.client_certificate) {
            (Some(secret), None, None) => Ok(Credential::Secret(ClientSecret::new(
                secret.expose().to_owned(),
            ))),
            (None, Some(path), None) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("client secret file {}: {e}", path.display()))?;
                let secret = text.trim_end();
                if secret.is_empty() {
                    return Err(format!("client secret file {}: it is empty", path.display()));
                }
                Ok(Credential::Secret(ClientSecret::new(secret.to_owned())))
            }
            (None, None, Some(path)) => Ok(Credential::signer(
                CertificateSigner::from_file(path).map_err(|e| e.to_string())?,
            )),
            (None, None, None) => Err(
                "one of --client-secret (TA_CLIENT_SECRET), --client-secret-file (TA_CLIENT_SECRET_FILE) or --client-certificate (TA_CLIENT_CERTIFICATE) is required"
                    .to_owned(),
            ),
            _ => Err(
                "give only one of --client-secret, --client-secret-file and --client-certificate (each also an environment variable or a configuration key)"
                    .to_owned(),
            ),
        }
    }
}

/// A session id from the command line, checked.
pub(crate) fn session_id(value: Option<&str>) -> Result<Option<ApplicationSessionId>, String> {
    value
        .map(|v| ApplicationSessionId::new(v.to_owned()).map_err(|e| e.to_string()))
        .transpose()
}
