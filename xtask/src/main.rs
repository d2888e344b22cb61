//! Project automation, run as `cargo xtask <task>`.
//!
//! - `ci`: what CI checks, in order: `cargo fmt --check`, `cargo clippy` on
//!   every target with warnings denied, `cargo doc` with warnings denied,
//!   then every test (unit, integration, doc) of the workspace. The README's
//!   test command.
//! - `test`: the tests alone.
//! - `lint`: fmt and clippy alone.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::env;
use std::process::{Command, ExitCode};
use std::time::Instant;

fn cargo() -> Command {
    Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
}

fn run(name: &str, mut command: Command) -> Result<(), String> {
    eprintln!("==> {name}");
    let started = Instant::now();
    let status = command
        .status()
        .map_err(|e| format!("{name}: could not start cargo: {e}"))?;
    eprintln!("<== {name}: {status} in {:.1?}", started.elapsed());
    if status.success() {
        Ok(())
    } else {
        Err(format!("{name} failed ({status})"))
    }
}

fn fmt() -> Result<(), String> {
    let mut c = cargo();
    c.args(["fmt", "--all", "--", "--check"]);
    run("cargo fmt --check", c)
}

fn clippy() -> Result<(), String> {
    let mut c = cargo();
    c.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--all-features",
        "--locked",
        "--",
        "-D",
        "warnings",
    ]);
    run("cargo clippy -D warnings", c)
}

fn test() -> Result<(), String> {
    let mut c = cargo();
    c.args(["test", "--workspace", "--all-features", "--locked"]);
    run("cargo test", c)
}

fn doc() -> Result<(), String> {
    let mut c = cargo();
    c.args([
        "doc",
        "--workspace",
        "--no-deps",
        "--all-features",
        "--locked",
    ]);
    c.env("RUSTDOCFLAGS", "-D warnings");
    run("cargo doc -D warnings", c)
}

fn main() -> ExitCode {
    let task = env::args().nth(1).unwrap_or_default();
    let result = match task.as_str() {
        "ci" => fmt()
            .and_then(|()| clippy())
            .and_then(|()| doc())
            .and_then(|()| test()),
        "lint" => fmt().and_then(|()| clippy()),
        "test" => test(),
        _ => {
            eprintln!("usage: cargo xtask <ci|lint|test>");
            eprintln!(
                "  ci    fmt check, clippy -D warnings, doc -D warnings, all tests (what CI runs)"
            );
            eprintln!("  lint  fmt check and clippy");
            eprintln!("  test  all tests");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask {task}: {message}");
            ExitCode::FAILURE
        }
    }
}
