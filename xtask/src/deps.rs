//! `cargo xtask deps`: the layering, checked on the real dependency trees.
//!
//! Each rule names a crate, the features it is built with, and crates that
//! must not be in its normal (non-dev, non-build) dependency tree. A user
//! who takes the orchestrator library compiles no command line, no HTTP
//! server and no emulator; a user with their own transport compiles no
//! hyper; the sans-IO core compiles no runtime, socket or random source;
//! and no crate anywhere pulls aws-lc (ring is the one crypto provider).

use std::collections::BTreeSet;
use std::process::Command;

use crate::cargo;

/// What the service and binary layers bring, which a library user must not
/// compile.
const ABOVE_THE_LIBRARY: &[&str] = &[
    "clap",
    "toml",
    "tracing-subscriber",
    "axum",
    "tower-http",
    "governor",
    "prometheus-client",
    "ta-emulator",
    "ta-widget-service",
    "ta-bootstrap-cli",
    "rcgen",
    "jsonwebtoken",
    "rsa",
];

/// The hyper transport, which `--no-default-features` leaves out.
const HYPER: &[&str] = &[
    "ta-hyper",
    "hyper",
    "hyper-util",
    "hyper-rustls",
    "tokio-rustls",
];

/// What a sans-IO crate must not depend on: runtimes, sockets, TLS, random
/// sources.
const IO: &[&str] = &[
    "tokio",
    "mio",
    "hyper",
    "rustls",
    "ring",
    "rand",
    "getrandom",
    "uuid",
];

/// Crypto providers other than ring.
const NOT_RING: &[&str] = &["aws-lc-rs", "aws-lc-sys", "openssl", "openssl-sys"];

struct Rule {
    /// What the line printed calls this tree.
    name: &'static str,
    package: &'static str,
    args: &'static [&'static str],
    forbidden: &'static [&'static [&'static str]],
}

const RULES: &[Rule] = &[
    Rule {
        name: "ta-bootstrap (default features)",
        package: "ta-bootstrap",
        args: &[],
        forbidden: &[ABOVE_THE_LIBRARY, NOT_RING],
    },
    Rule {
        name: "ta-bootstrap --no-default-features",
        package: "ta-bootstrap",
        args: &["--no-default-features"],
        forbidden: &[ABOVE_THE_LIBRARY, HYPER, NOT_RING],
    },
    Rule {
        name: "ta-protocol",
        package: "ta-protocol",
        args: &[],
        forbidden: &[ABOVE_THE_LIBRARY, HYPER, IO],
    },
    Rule {
        name: "hal-model",
        package: "hal-model",
        args: &[],
        forbidden: &[ABOVE_THE_LIBRARY, HYPER, IO, &["http", "ta-protocol"]],
    },
    Rule {
        name: "ta-hyper",
        package: "ta-hyper",
        args: &[],
        forbidden: &[ABOVE_THE_LIBRARY, NOT_RING, &["ta-bootstrap"]],
    },
    Rule {
        name: "ta-widget-service",
        package: "ta-widget-service",
        args: &[],
        forbidden: &[
            &[
                "clap",
                "toml",
                "tracing-subscriber",
                "ta-emulator",
                "ta-bootstrap-cli",
                "rcgen",
                "jsonwebtoken",
                "rsa",
            ],
            NOT_RING,
        ],
    },
];

/// The crates of one normal dependency tree, by name.
fn tree(package: &str, args: &[&str]) -> Result<BTreeSet<String>, String> {
    let mut command = cargo();
    command.args([
        "tree", "--locked", "-p", package, "-e", "normal", "--prefix", "none", "--format", "{p}",
    ]);
    command.args(args);
    crates(command)
}

fn crates(mut command: Command) -> Result<BTreeSet<String>, String> {
    let output = command
        .output()
        .map_err(|e| format!("could not start cargo tree: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo tree failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect())
}

/// The forbidden crates of `rule` that are in `found`.
fn violations<'r>(rule: &'r Rule, found: &BTreeSet<String>) -> Vec<&'r str> {
    rule.forbidden
        .iter()
        .flat_map(|list| list.iter().copied())
        .filter(|name| found.contains(*name))
        .collect()
}

/// Checks every rule; prints each tree's size.
pub(crate) fn check() -> Result<(), String> {
    eprintln!("==> cargo xtask deps");
    let mut failures = Vec::new();
    for rule in RULES {
        let found = tree(rule.package, rule.args)?;
        let bad = violations(rule, &found);
        eprintln!(
            "    {}: {} crates in its normal tree",
            rule.name,
            found.len()
        );
        if !bad.is_empty() {
            failures.push(format!("{} depends on {}", rule.name, bad.join(", ")));
        }
    }
    // Every edge kind, every feature, the whole workspace: ring only.
    let mut all = cargo();
    all.args([
        "tree",
        "--locked",
        "--workspace",
        "--all-features",
        "-e",
        "all",
        "--prefix",
        "none",
        "--format",
        "{p}",
    ]);
    let everything = crates(all)?;
    let bad: Vec<&str> = NOT_RING
        .iter()
        .copied()
        .filter(|name| everything.contains(*name))
        .collect();
    eprintln!(
        "    the workspace (all features, all edges): {} crates",
        everything.len()
    );
    if !bad.is_empty() {
        failures.push(format!("the workspace depends on {}", bad.join(", ")));
    }
    if failures.is_empty() {
        eprintln!("<== cargo xtask deps: the layering holds");
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    /// The rules catch what they forbid: the binary's tree breaks the
    /// library's rule, and the library's default tree breaks the
    /// no-default rule (it has hyper).
    #[test]
    fn a_forbidden_crate_is_found() {
        let library = &RULES[0];
        let cli = tree("ta-bootstrap-cli", &[]).unwrap();
        let bad = violations(library, &cli);
        assert!(
            bad.contains(&"clap") && bad.contains(&"ta-emulator"),
            "{bad:?}"
        );
        let alone = RULES
            .iter()
            .find(|r| r.args == ["--no-default-features"])
            .unwrap();
        let with_hyper = tree("ta-bootstrap", &[]).unwrap();
        assert!(violations(alone, &with_hyper).contains(&"ta-hyper"));
        assert!(violations(alone, &tree("ta-bootstrap", alone.args).unwrap()).is_empty());
    }
}
