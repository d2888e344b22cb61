//! The widget's JavaScript client (`clients/js/`): its rules under node's
//! test runner, and its TypeScript declarations compiled against a usage
//! file with the `typescript` its lockfile pins (installed with `npm ci`
//! from the npm registry when it is missing).

use std::path::PathBuf;
use std::process::Command;

use crate::run;

/// The client's folder.
fn folder() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("clients")
        .join("js")
}

/// `node --test`, then `tsc --noEmit`.
pub(crate) fn check() -> Result<(), String> {
    let dir = folder();
    let mut c = Command::new("node");
    c.current_dir(&dir).args(["--test", "test/"]);
    run("node --test (clients/js)", c)?;
    let tsc = dir
        .join("node_modules")
        .join("typescript")
        .join("bin")
        .join("tsc");
    if !tsc.exists() {
        let mut c = Command::new("npm");
        c.current_dir(&dir)
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"]);
        run("npm ci (clients/js: typescript)", c)?;
    }
    let mut c = Command::new("node");
    c.current_dir(&dir)
        .arg(tsc)
        .args(["--noEmit", "-p", "tsconfig.json"]);
    run("tsc --noEmit (clients/js)", c)
}
