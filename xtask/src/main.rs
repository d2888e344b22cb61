//! Project automation, run as `cargo xtask <task>`.
//!
//! - `ci`: what CI checks, in order: `cargo fmt --check`, `cargo clippy` on
//!   every target with warnings denied, `cargo doc` with warnings denied,
//!   then every test (unit, integration, doc) of the workspace. The README's
//!   test command.
//!   After clippy, `deps` checks the layering; after the tests, the
//!   orchestrator library is linted and tested alone with
//!   `--no-default-features` (no hyper transport), and the examples run.
//!   After fmt, `js` checks the widget's JavaScript client.
//! - `js`: `node --test` on `clients/js/`, and `tsc --noEmit` on its
//!   TypeScript declarations ([`js`]).
//! - `test`: the tests alone.
//! - `lint`: fmt and clippy alone.
//! - `examples`: runs every example of `examples/` (each starts its own
//!   emulator, checks what it shows and exits 0).
//! - `deps`: the dependency rules of the layers ([`deps`]), with the number
//!   of crates in each tree.
//! - `bench [emulator|serve|latency]`: criterion benchmarks; speed targets live there,
//!   never in timed tests.
//! - `fuzz [TARGET] [--seconds N] [--runs N] [--record]`: the libFuzzer
//!   targets of `fuzz/`, with a nightly toolchain ([`fuzz`]); CI replays
//!   their committed corpus on stable instead (`crates/ta-fuzz`).
//! - `soak [--minutes N] [--seconds N] [--widgets N] [--chats N] [--seed N] [--serve-log FILE]`: `serve`
//!   (release) in front of the emulator under widget load while faults are
//!   injected at random, every token verified (`crates/ta-soak`).
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod deps;
mod fuzz;
mod js;

use std::env;
use std::process::{Command, ExitCode};
use std::time::Instant;

pub(crate) fn cargo() -> Command {
    Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
}

fn run(name: &str, mut command: Command) -> Result<(), String> {
    eprintln!("==> {name}");
    let started = Instant::now();
    let status = command
        .status()
        .map_err(|e| format!("{name}: could not start {:?}: {e}", command.get_program()))?;
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

/// The orchestrator library alone, without its default `hyper` feature: it
/// must build, lint clean and pass its tests with a transport of the
/// user's own.
fn library_alone() -> Result<(), String> {
    let mut c = cargo();
    c.args([
        "clippy",
        "-p",
        "ta-bootstrap",
        "--no-default-features",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
    ]);
    run("cargo clippy -p ta-bootstrap --no-default-features", c)?;
    let mut c = cargo();
    c.args([
        "test",
        "-p",
        "ta-bootstrap",
        "--no-default-features",
        "--locked",
    ]);
    run("cargo test -p ta-bootstrap --no-default-features", c)
}

/// The runnable examples, each against an emulator it starts itself.
const EXAMPLES: [&str; 4] = [
    "reqwest_transport",
    "sans_io_sync",
    "axum_mount",
    "remote_signer",
];

fn examples() -> Result<(), String> {
    for example in EXAMPLES {
        let mut c = cargo();
        c.args(["run", "--locked", "-p", "ta-examples", "--example", example]);
        run(&format!("example {example}"), c)?;
    }
    Ok(())
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

fn bench(which: Option<&str>) -> Result<(), String> {
    let mut c = cargo();
    c.args(["bench", "--locked"]);
    match which {
        Some("emulator") => c.args(["-p", "ta-emulator", "--bench", "emulator"]),
        Some("serve") => c.args(["-p", "ta-widget-service", "--bench", "serve"]),
        Some("latency") => c.args(["-p", "ta-widget-service", "--bench", "latency"]),
        None => c.arg("--workspace"),
        Some(other) => {
            return Err(format!(
                "no benchmark named {other:?} (known: emulator, serve, latency)"
            ));
        }
    };
    run("cargo bench", c)
}

/// `soak [--minutes N] [--seconds N] [--widgets N] [--chats N] [--seed N] [--serve-log FILE]`: a release
/// build of the binary and of the soak, then one soak (`crates/ta-soak`).
fn soak(args: &[String]) -> Result<(), String> {
    let mut c = cargo();
    c.args([
        "build",
        "--release",
        "--locked",
        "-p",
        "ta-bootstrap-cli",
        "-p",
        "ta-soak",
    ]);
    run("cargo build --release (ta-bootstrap, ta-soak)", c)?;
    let release = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release");
    let mut c = Command::new(release.join("ta-soak"));
    c.arg("--serve")
        .arg(release.join("ta-bootstrap"))
        .args(args);
    run("soak", c)
}

fn main() -> ExitCode {
    let task = env::args().nth(1).unwrap_or_default();
    let arg = env::args().nth(2);
    let result = match task.as_str() {
        "ci" => fmt()
            .and_then(|()| js::check())
            .and_then(|()| clippy())
            .and_then(|()| deps::check())
            .and_then(|()| doc())
            .and_then(|()| test())
            .and_then(|()| library_alone())
            .and_then(|()| examples()),
        "lint" => fmt().and_then(|()| clippy()),
        "deps" => deps::check(),
        "js" => js::check(),
        "examples" => examples(),
        "test" => test(),
        "bench" => bench(arg.as_deref()),
        "fuzz" => fuzz::run(&env::args().skip(2).collect::<Vec<_>>()),
        "soak" => soak(&env::args().skip(2).collect::<Vec<_>>()),
        _ => {
            eprintln!(
                "usage: cargo xtask <ci|lint|js|deps|test|examples|bench [emulator|serve|latency]|fuzz [TARGET] [--seconds N] [--runs N] [--record]|soak [--minutes N]>"
            );
            eprintln!(
                "  ci    fmt check, the JS client, clippy -D warnings, deps, doc -D warnings, all tests, the library alone, the examples (what CI runs)"
            );
            eprintln!("  js    the widget's JS client: node --test, and tsc --noEmit on its types");
            eprintln!("  examples  runs every example against its own emulator");
            eprintln!("  lint  fmt check and clippy");
            eprintln!("  deps  the layers' dependency rules, with the size of each tree");
            eprintln!("  test  all tests");
            eprintln!(
                "  bench criterion benchmarks (emulator: its own rates; serve: serve against the mint)"
            );
            eprintln!(
                "  fuzz  the libFuzzer targets (nightly, cargo-fuzz): each until N runs (10 million) or N seconds (60); --record writes docs/fuzzing.md's row"
            );
            eprintln!(
                "  soak  serve in front of the emulator under widget load and random faults, every token verified (--minutes N, default 10)"
            );
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
