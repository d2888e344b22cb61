//! The `--config` TOML file: the same settings as the flags, keys named as
//! the long flags (lists in the plural: `allowed-origins`,
//! `trusted-hosts`, `trusted-proxies`). Unknown keys are refused, so that a
//! typo does not silently leave a setting at its default. Relative paths are
//! relative to the file's directory.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::upstream::{SecretArg, UpstreamArgs};

/// The file's settings; `None` is "not in the file".
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct FileConfig {
    pub(crate) discover_url: Option<String>,
    pub(crate) endpoint_id: Option<String>,
    pub(crate) tenant: Option<String>,
    pub(crate) client_id: Option<String>,
    pub(crate) client_secret: Option<SecretArg>,
    pub(crate) client_secret_file: Option<PathBuf>,
    pub(crate) client_certificate: Option<PathBuf>,
    pub(crate) token_url: Option<String>,
    pub(crate) allowed_origins: Option<Vec<String>>,
    pub(crate) allow_http_origins: Option<bool>,
    pub(crate) ca_file: Option<PathBuf>,
    pub(crate) trusted_hosts: Option<Vec<String>>,
    pub(crate) allow_insecure_loopback: Option<bool>,
    // `serve` only.
    pub(crate) listen: Option<SocketAddr>,
    pub(crate) per_client_rate: Option<u32>,
    pub(crate) global_rate: Option<u32>,
    pub(crate) max_mints_in_flight: Option<usize>,
    pub(crate) trusted_proxies: Option<Vec<IpAddr>>,
    pub(crate) tls_cert: Option<PathBuf>,
    pub(crate) tls_key: Option<PathBuf>,
}

impl FileConfig {
    /// Reads and parses `path`; the error names the file, and the line and
    /// key that are wrong.
    pub(crate) fn read(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("configuration file {}: {e}", path.display()))?;
        // One line, naming the line and the key, without quoting the file
        // (it may hold a secret).
        let mut file: Self = toml::from_str(&text).map_err(|e| {
            let line = e
                .span()
                .and_then(|span| text.get(..span.start))
                .map(|before| before.matches('\n').count() + 1);
            let message = e.message().replace(['\r', '\n'], " ");
            match line {
                Some(line) => format!(
                    "configuration file {}, line {line}: {message}",
                    path.display()
                ),
                None => format!("configuration file {}: {message}", path.display()),
            }
        })?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        for p in [
            &mut file.client_secret_file,
            &mut file.client_certificate,
            &mut file.ca_file,
            &mut file.tls_cert,
            &mut file.tls_key,
        ]
        .into_iter()
        .flatten()
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        Ok(file)
    }
}

impl UpstreamArgs {
    /// These arguments with what the configuration file (if any) sets and
    /// they do not; and the file's settings.
    pub(crate) fn with_config_file(&self) -> Result<(Self, FileConfig), String> {
        let Some(path) = &self.config else {
            return Ok((self.clone(), FileConfig::default()));
        };
        let file = FileConfig::read(path)?;
        Ok((self.merged(&file), file))
    }

    /// Fills what is unset from `file`.
    pub(crate) fn merged(&self, file: &FileConfig) -> Self {
        let mut merged = self.clone();
        fill(&mut merged.discover_url, &file.discover_url);
        fill(&mut merged.endpoint_id, &file.endpoint_id);
        fill(&mut merged.tenant, &file.tenant);
        fill(&mut merged.client_id, &file.client_id);
        fill(&mut merged.token_url, &file.token_url);
        fill(&mut merged.ca_file, &file.ca_file);
        // The credential is one setting: any credential flag or variable
        // makes the file's credential keys ignored.
        if self.client_secret.is_none()
            && self.client_secret_file.is_none()
            && self.client_certificate.is_none()
        {
            merged.client_secret.clone_from(&file.client_secret);
            merged
                .client_secret_file
                .clone_from(&file.client_secret_file);
            merged
                .client_certificate
                .clone_from(&file.client_certificate);
        }
        fill_list(&mut merged.allowed_origins, &file.allowed_origins);
        fill_list(&mut merged.trusted_hosts, &file.trusted_hosts);
        merged.allow_http_origins |= file.allow_http_origins.unwrap_or(false);
        merged.allow_insecure_loopback |= file.allow_insecure_loopback.unwrap_or(false);
        merged
    }
}

/// `value` if set, else the file's.
pub(crate) fn fill<T: Clone>(value: &mut Option<T>, file: &Option<T>) {
    if value.is_none() {
        value.clone_from(file);
    }
}

/// `list` if not empty, else the file's.
pub(crate) fn fill_list<T: Clone>(list: &mut Vec<T>, file: &Option<Vec<T>>) {
    if list.is_empty() {
        if let Some(file) = file {
            list.clone_from(file);
        }
    }
}
