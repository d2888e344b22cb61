//! The `--config` TOML file: the same settings as the flags, keys named as
//! the long flags (lists in the plural: `allowed-origins`,
//! `trusted-hosts`, `trusted-proxies`). Unknown keys are refused, so that a
//! typo does not silently leave a setting at its default.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::secret_arg::SecretArg;

/// The file's settings; `None` is "not in the file".
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[non_exhaustive]
pub struct FileConfig {
    /// `discover-url`, as `--discover-url`.
    pub discover_url: Option<String>,
    /// `endpoint-id`, as `--endpoint-id`.
    pub endpoint_id: Option<String>,
    /// `tenant`, as `--tenant`.
    pub tenant: Option<String>,
    /// `client-id`, as `--client-id`.
    pub client_id: Option<String>,
    /// `client-secret`, as `--client-secret` (a string; a wrong value is never quoted).
    pub client_secret: Option<SecretArg>,
    /// `client-secret-file`, as `--client-secret-file`.
    pub client_secret_file: Option<PathBuf>,
    /// `client-certificate`, as `--client-certificate`.
    pub client_certificate: Option<PathBuf>,
    /// `token-url`, as `--token-url`.
    pub token_url: Option<String>,
    /// `allowed-origins`, as each `--allowed-origin`.
    pub allowed_origins: Option<Vec<String>>,
    /// `allow-http-origins`, as `--allow-http-origins`.
    pub allow_http_origins: Option<bool>,
    /// `ca-file`, as `--ca-file`.
    pub ca_file: Option<PathBuf>,
    /// `trusted-hosts`, as each `--trusted-host`.
    pub trusted_hosts: Option<Vec<String>>,
    /// `allow-insecure-loopback`, as `--allow-insecure-loopback`.
    pub allow_insecure_loopback: Option<bool>,
    /// `listen` (`serve`), as `--listen`.
    pub listen: Option<SocketAddr>,
    /// `per-client-rate` (`serve`), as `--per-client-rate`.
    pub per_client_rate: Option<u32>,
    /// `global-rate` (`serve`), as `--global-rate`.
    pub global_rate: Option<u32>,
    /// `max-mints-in-flight` (`serve`), as `--max-mints-in-flight`.
    pub max_mints_in_flight: Option<usize>,
    /// `max-connections` (`serve`), as `--max-connections`.
    pub max_connections: Option<u64>,
    /// `max-connections-per-client` (`serve`), as `--max-connections-per-client`.
    pub max_connections_per_client: Option<u64>,
    /// `pool-size` (`serve`), as `--pool-size`.
    pub pool_size: Option<u64>,
    /// `pool-max-age` (`serve`, seconds), as `--pool-max-age`.
    pub pool_max_age: Option<u64>,
    /// `pool-floor` (`serve`), as `--pool-floor`.
    pub pool_floor: Option<u64>,
    /// `pool-max-total` (`serve`), as `--pool-max-total`.
    pub pool_max_total: Option<u64>,
    /// `renew-after-fraction` (`serve`), as `--renew-after-fraction`.
    pub renew_after_fraction: Option<f64>,
    /// `trusted-proxies` (`serve`), as each `--trusted-proxy`.
    pub trusted_proxies: Option<Vec<IpAddr>>,
    /// `tls-cert` (`serve`), as `--tls-cert`.
    pub tls_cert: Option<PathBuf>,
    /// `tls-key` (`serve`), as `--tls-key`.
    pub tls_key: Option<PathBuf>,
    /// `mint-ticket-key-file` (`serve`), as `--mint-ticket-key-file`.
    pub mint_ticket_key_file: Option<PathBuf>,
    /// `callback-url` (`serve`, the chat), as `--callback-url`.
    pub callback_url: Option<String>,
    /// `callback-audience` (`serve`, the chat), as `--callback-audience`.
    pub callback_audience: Option<String>,
    /// `callback-issuer` (`serve`, the chat), as `--callback-issuer`.
    pub callback_issuer: Option<String>,
    /// `callback-keys-url` (`serve`, the chat), as `--callback-keys-url`.
    pub callback_keys_url: Option<String>,
    /// `agents` (`serve`, the chat), as each `--agent`.
    pub agents: Option<Vec<String>>,
    /// `helpdesk-name` (`serve`, the chat), as `--helpdesk-name`.
    pub helpdesk_name: Option<String>,
    /// `replica-name` (`serve`, the chat), as `--replica-name`.
    pub replica_name: Option<String>,
    /// `peers` (`serve`, the chat), as each `--peer`.
    pub peers: Option<Vec<String>>,
    /// `peer-url-template` (`serve`, the chat), as `--peer-url-template`.
    pub peer_url_template: Option<String>,
}

/// Why a configuration file's text was refused: the line (when known) and
/// the TOML library's message on one line, with any `client-secret` value
/// cut out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileConfigError {
    /// The line, counted from 1.
    pub line: Option<usize>,
    /// What is wrong (the key and why), never quoting the secret.
    pub message: String,
}

impl std::fmt::Display for FileConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for FileConfigError {}

impl FileConfig {
    /// Parses a configuration file's text.
    ///
    /// # Errors
    ///
    /// The line and key that are wrong, without quoting the file (it may
    /// hold a secret).
    pub fn parse(text: &str) -> Result<Self, FileConfigError> {
        toml::from_str(text).map_err(|e| FileConfigError {
            line: e
                .span()
                .and_then(|span| text.get(..span.start))
                .map(|before| before.matches('\n').count() + 1),
            message: safe_message(text, e.message()),
        })
    }

    /// Makes the relative paths relative to `base` (the file's directory).
    pub fn resolve_paths(&mut self, base: &Path) {
        for p in [
            &mut self.client_secret_file,
            &mut self.client_certificate,
            &mut self.ca_file,
            &mut self.tls_cert,
            &mut self.tls_key,
            &mut self.mint_ticket_key_file,
        ]
        .into_iter()
        .flatten()
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::FileConfig;

    fn error_of(text: &str) -> String {
        FileConfig::parse(text).unwrap_err().to_string()
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

    #[test]
    fn relative_paths_are_taken_from_the_file_s_directory() {
        let mut file =
            FileConfig::parse("tls-cert = \"cert.pem\"\ntls-key = \"/k.pem\"\n").unwrap();
        file.resolve_paths(std::path::Path::new("/etc/ta"));
        assert_eq!(
            file.tls_cert.unwrap(),
            std::path::Path::new("/etc/ta/cert.pem")
        );
        assert_eq!(file.tls_key.unwrap(), std::path::Path::new("/k.pem"));
    }
}
