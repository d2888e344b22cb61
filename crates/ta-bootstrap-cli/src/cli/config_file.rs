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
    pub(crate) max_connections: Option<u64>,
    pub(crate) max_connections_per_client: Option<u64>,
    pub(crate) renew_after_fraction: Option<f64>,
    pub(crate) trusted_proxies: Option<Vec<IpAddr>>,
    pub(crate) tls_cert: Option<PathBuf>,
    pub(crate) tls_key: Option<PathBuf>,
    pub(crate) mint_ticket_key_file: Option<PathBuf>,
    pub(crate) callback_url: Option<String>,
    pub(crate) callback_audience: Option<String>,
    pub(crate) callback_issuer: Option<String>,
    pub(crate) callback_keys_url: Option<String>,
    pub(crate) agents: Option<Vec<String>>,
    pub(crate) helpdesk_name: Option<String>,
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
            let message = safe_message(&text, e.message());
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
            &mut file.mint_ticket_key_file,
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

/// The TOML library's message, on one line, with any `client-secret` value
/// cut out. The secret's own deserializer already refuses a wrong value
/// without quoting it; this is the second line of defence, and it reads the
/// key as TOML does (quoted, escaped or dotted spellings alike).
fn safe_message(text: &str, message: &str) -> String {
    let mut message = message.replace(['\r', '\n'], " ");
    if let Ok(table) = text.parse::<toml::Table>() {
        let mut values = Vec::new();
        if let Some(value) = table.get("client-secret") {
            secret_texts(value, &mut values);
        }
        for value in values.iter().filter(|v| !v.is_empty()) {
            message = message.replace(value.as_str(), "<not shown>");
        }
    }
    message
}

/// Every text a secret's value could be quoted as.
fn secret_texts(value: &toml::Value, into: &mut Vec<String>) {
    match value {
        toml::Value::String(s) => into.push(s.clone()),
        toml::Value::Array(items) => items.iter().for_each(|v| secret_texts(v, into)),
        toml::Value::Table(table) => table.values().for_each(|v| secret_texts(v, into)),
        other => into.push(other.to_string()),
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::FileConfig;

    fn error_of(text: &str) -> String {
        let dir = std::env::temp_dir().join(format!("ta-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!(
            "{:x}.toml",
            text.len() * 31 + text.as_bytes()[0] as usize
        ));
        std::fs::write(&path, text).unwrap();
        let error = FileConfig::read(&path).unwrap_err();
        let _ = std::fs::remove_file(&path);
        error
    }

    #[test]
    fn a_wrong_secret_value_is_named_but_not_quoted() {
        let error = error_of("client-id = \"app\"\nclient-secret = 424242424242\n");
        assert!(error.contains("line 2"), "{error}");
        assert!(error.contains("client-secret"), "{error}");
        assert!(!error.contains("424242424242"), "{error}");
        // However the key is spelled.
        let error = error_of("\"client\\u002dsecret\" = 424242424242\n");
        assert!(error.contains("client-secret"), "{error}");
        assert!(!error.contains("424242424242"), "{error}");
        let error = error_of("client-secret = 4242.4242\n");
        assert!(!error.contains("4242.4242"), "{error}");
    }

    #[test]
    fn a_secret_quoted_in_a_message_is_cut_out() {
        let text = "\"client\\u002dsecret\" = \"sekrit-value\"\nlisten = 1\n";
        let message = super::safe_message(text, "listen: got 1 next to sekrit-value\nagain");
        assert_eq!(message, "listen: got 1 next to <not shown> again");
        let text = "client-secret = 424242\n";
        let message = super::safe_message(text, "invalid type: integer `424242`");
        assert!(!message.contains("424242"), "{message}");
    }

    #[test]
    fn other_messages_keep_their_detail() {
        let error = error_of("client-secret = \"sekrit-value\"\nlisten-address = \"x\"\n");
        assert!(error.contains("listen-address"), "{error}");
        assert!(error.contains("line 2"), "{error}");
        // A wrong value elsewhere is quoted, so that the operator sees it.
        let error = error_of("per-client-rate = \"many\"\n");
        assert!(error.contains("\"many\""), "{error}");
    }
}
