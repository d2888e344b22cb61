//! The subcommands.

/// `println!` that does not panic when stdout is closed (`… | head`).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

pub(crate) mod config_file;
pub(crate) mod demo;
pub(crate) mod doctor;
pub(crate) mod emulator;
pub(crate) mod inspect;
pub(crate) mod serve;
pub(crate) mod token;
pub(crate) mod upstream;

/// Exit code for configuration and usage errors.
pub(crate) const EXIT_CONFIG: u8 = 2;

/// The process exit code of a kind of failure.
pub(crate) fn exit_code(kind: ta_bootstrap::FailureKind) -> u8 {
    match kind {
        ta_bootstrap::FailureKind::Config => EXIT_CONFIG,
        ta_bootstrap::FailureKind::Authentication => 3,
        ta_bootstrap::FailureKind::NotFound => 4,
        // Upstream; an internal error (a bug) too, so that the documented
        // exit codes stay the only ones; its report line says `internal`.
        _ => 5,
    }
}

/// Prints the one-line failure report and returns its exit code.
pub(crate) fn fail(error: &ta_bootstrap::BootstrapError) -> u8 {
    eprintln!("error: {}: {}", error.kind().code(), error.report_line());
    exit_code(error.kind())
}

/// Prints a configuration error and returns its exit code.
pub(crate) fn config_error(message: impl std::fmt::Display) -> u8 {
    let line = message.to_string().replace(['\r', '\n'], " ");
    eprintln!("error: config: {line}");
    EXIT_CONFIG
}
