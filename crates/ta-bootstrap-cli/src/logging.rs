//! Log set-up: the format, the level from `RUST_LOG`, and the filters
//! written before the service had a crate of its own.

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines (coloured only on a terminal).
    Text,
    /// One JSON object per line, with the fields of the enclosing spans
    /// (such as a request's `request_id`).
    Json,
}

/// Logs go to stderr. The long-running commands (`serve`, `emulator`) log
/// at `info` unless RUST_LOG says otherwise; the one-shot commands log only
/// when RUST_LOG asks (a failing `token` prints exactly one `error:` line).
pub(crate) fn init(format: LogFormat, default: &str) {
    use std::io::IsTerminal as _;
    let filter = std::env::var(tracing_subscriber::EnvFilter::DEFAULT_ENV)
        .ok()
        .map(|spec| tracing_subscriber::EnvFilter::try_new(with_service_twins(&spec)))
        .and_then(Result::ok)
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}

/// `RUST_LOG` as written, plus, for each directive on the `ta_bootstrap`
/// target (or a module under it), the same directive on
/// `ta_widget_service`: the service's logs were under `ta_bootstrap` before
/// it became its own crate, and the filters the docs name
/// (`RUST_LOG=ta_bootstrap=debug`) keep covering them.
fn with_service_twins(spec: &str) -> String {
    const OLD: &str = "ta_bootstrap";
    let mut directives: Vec<String> = spec.split(',').map(str::to_owned).collect();
    let twins: Vec<String> = directives
        .iter()
        .filter_map(|directive| {
            let rest = directive.trim_start().strip_prefix(OLD)?;
            let whole_target = rest.is_empty()
                || rest.starts_with("::")
                || rest.starts_with('=')
                || rest.starts_with('[');
            whole_target.then(|| format!("ta_widget_service{rest}"))
        })
        .collect();
    directives.extend(twins);
    directives.join(",")
}

#[cfg(test)]
mod tests {
    use super::with_service_twins;

    #[test]
    fn the_library_target_also_covers_the_service() {
        assert_eq!(
            with_service_twins("ta_bootstrap=debug"),
            "ta_bootstrap=debug,ta_widget_service=debug"
        );
        assert_eq!(
            with_service_twins("info,ta_bootstrap::service=trace"),
            "info,ta_bootstrap::service=trace,ta_widget_service::service=trace"
        );
        assert_eq!(with_service_twins("warn"), "warn");
        // Another crate whose name starts the same way is left alone.
        assert_eq!(
            with_service_twins("ta_bootstrap_extra=debug"),
            "ta_bootstrap_extra=debug"
        );
    }
}
