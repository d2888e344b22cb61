//! Reading the `--config` file (parsed by the library's
//! [`ta_bootstrap_cli::file_config`]) and merging it under the flags.

use std::path::Path;

pub(crate) use ta_bootstrap_cli::file_config::FileConfig;

use super::upstream::UpstreamArgs;

/// Reads and parses `path`; the error names the file, and the line and
/// key that are wrong. Relative paths are relative to the file's directory.
pub(crate) fn read(path: &Path) -> Result<FileConfig, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("configuration file {}: {e}", path.display()))?;
    let mut file = FileConfig::parse(&text).map_err(|e| match e.line {
        Some(_) => format!("configuration file {}, {e}", path.display()),
        None => format!("configuration file {}: {e}", path.display()),
    })?;
    file.resolve_paths(path.parent().unwrap_or_else(|| Path::new(".")));
    Ok(file)
}

impl UpstreamArgs {
    /// These arguments with what the configuration file (if any) sets and
    /// they do not; and the file's settings.
    pub(crate) fn with_config_file(&self) -> Result<(Self, FileConfig), String> {
        let Some(path) = &self.config else {
            return Ok((self.clone(), FileConfig::default()));
        };
        let file = read(path)?;
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
        // makes the file's credential keys ignored (an empty
        // `TA_CLIENT_SECRET` is unset).
        if self
            .client_secret
            .as_ref()
            .is_none_or(|s| s.expose().is_empty())
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
