//! `ta-bootstrap`: mint anonymous widget tokens on the Skype for Business
//! Trusted Application API, check a deployment, run the emulator.
//!
//! Every flag is also an environment variable (`TA_…`); see `--help` and
//! `docs/operations.md`. Exit codes: 0 success, 2 usage or configuration,
//! 3 authentication, 4 not found or not consented, 5 upstream or transport.
#![allow(clippy::print_stdout, clippy::print_stderr)] // a command line prints

mod cli;
mod demo_site;
mod logging;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use logging::LogFormat;

/// Bootstraps anonymous chat widgets on the Skype for Business Trusted
/// Application API.
#[derive(Debug, Parser)]
#[command(name = "ta-bootstrap", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// The format of log lines on stderr (the level comes from RUST_LOG).
    #[arg(long, global = true, env = "TA_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the whole flow against an embedded emulator, narrating each step
    /// on stderr; prints the minted token and discover link on stdout.
    Demo(cli::demo::DemoArgs),
    /// Mints one widget token against a deployment; prints one JSON object.
    Token(cli::token::TokenArgs),
    /// Checks a deployment step by step and prints a checklist.
    Doctor(cli::doctor::DoctorArgs),
    /// Runs the emulator standalone until Ctrl-C.
    Emulator(cli::emulator::EmulatorArgs),
    /// Decodes a psat token's claims, without verifying it.
    Inspect(cli::inspect::InspectArgs),
    /// Serves widget tokens to browsers on the allowed origins.
    Serve(Box<cli::serve::ServeArgs>),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = match cli.command {
        Command::Serve(_) | Command::Emulator(_) => "info",
        _ => "off",
    };
    logging::init(cli.log_format, default_level);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: could not start the runtime: {e}");
            return ExitCode::from(5);
        }
    };
    let code = runtime.block_on(async {
        match cli.command {
            Command::Demo(args) => cli::demo::run(args).await,
            Command::Token(args) => cli::token::run(args).await,
            Command::Doctor(args) => cli::doctor::run(args).await,
            Command::Emulator(args) => cli::emulator::run(args).await,
            Command::Inspect(args) => cli::inspect::run(&args),
            Command::Serve(args) => cli::serve::run(*args).await,
        }
    });
    ExitCode::from(code)
}
