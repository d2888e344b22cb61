//! `cargo xtask fuzz [TARGET] [--seconds N] [--runs N] [--record]`: the
//! libFuzzer targets of `fuzz/` (cargo-fuzz, which needs a nightly
//! toolchain; CI never runs this), one after the other.
//!
//! Each target runs until `--runs` executions (default 10 million) or
//! `--seconds` (default 60) have passed, whichever comes first, from the
//! committed corpus `fuzz/corpus/<target>/` (read only) and a work corpus
//! `fuzz/corpus-work/<target>/` (where libFuzzer keeps what it finds; not
//! committed). A finding is left in `fuzz/artifacts/<target>/`. The log of
//! each run is `fuzz/logs/<target>.log`. With `--record`, each target's row
//! of the table in `docs/fuzzing.md` is rewritten with what it ran.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

struct Options {
    target: Option<String>,
    seconds: u64,
    runs: u64,
    record: bool,
}

fn options(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        target: None,
        seconds: 60,
        runs: 10_000_000,
        record: false,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> Result<u64, String> {
            args.next()
                .and_then(|v| v.parse().ok())
                .filter(|v| *v > 0)
                .ok_or_else(|| format!("{name} needs a positive whole number"))
        };
        match arg.as_str() {
            "--seconds" => options.seconds = number("--seconds")?,
            "--runs" => options.runs = number("--runs")?,
            "--record" => options.record = true,
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
            name => options.target = Some(name.to_owned()),
        }
    }
    Ok(options)
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The targets `fuzz/Cargo.toml` declares, in its order.
fn targets() -> Result<Vec<String>, String> {
    let manifest = fs::read_to_string(root().join("fuzz/Cargo.toml"))
        .map_err(|e| format!("fuzz/Cargo.toml: {e}"))?;
    Ok(manifest
        .split("[[bin]]")
        .skip(1)
        .filter_map(|bin| {
            let line = bin.lines().find(|l| l.trim_start().starts_with("name"))?;
            Some(line.split('"').nth(1)?.to_owned())
        })
        .collect())
}

fn nightly_cargo_fuzz() -> Command {
    let mut c = Command::new("rustup");
    c.args(["run", "nightly", "cargo", "fuzz"]);
    c
}

/// What one run did, read from libFuzzer's final statistics.
struct Ran {
    executions: u64,
    seconds: f64,
    finding: Option<String>,
}

fn run_target(name: &str, options: &Options) -> Result<Ran, String> {
    let fuzz = root().join("fuzz");
    let work = fuzz.join("corpus-work").join(name);
    let logs = fuzz.join("logs");
    fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    fs::create_dir_all(&logs).map_err(|e| format!("{}: {e}", logs.display()))?;
    let log_path = logs.join(format!("{name}.log"));
    build_target(name, &fuzz, &log_path)?;
    let log = fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let mut c = nightly_cargo_fuzz();
    c.current_dir(&fuzz)
        .args(["run", "-O", name])
        .arg(&work)
        .arg(fuzz.join("corpus").join(name))
        .args([
            "--",
            &format!("-max_total_time={}", options.seconds),
            &format!("-runs={}", options.runs),
            // Under ASan the process grows with the allocator's caches, not
            // the live heap (docs/fuzzing.md): one allocation is bounded
            // tightly, the whole process loosely.
            "-malloc_limit_mb=512",
            "-rss_limit_mb=8192",
            "-timeout=10",
            "-max_len=65536",
            "-print_final_stats=1",
        ])
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log);
    eprintln!(
        "==> fuzz {name}: up to {} runs or {} s (log: fuzz/logs/{name}.log)",
        options.runs, options.seconds
    );
    let started = Instant::now();
    let status = c
        .status()
        .map_err(|e| format!("could not start rustup run nightly cargo fuzz: {e}"))?;
    let text = fs::read_to_string(&log_path).unwrap_or_default();
    let stat = |key: &str| -> Option<u64> {
        text.lines()
            .rev()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().parse().ok())
    };
    let executions = stat("stat::number_of_executed_units:").unwrap_or(0);
    let finding = (!status.success()).then(|| {
        text.lines()
            .find(|l| l.contains("panicked at") || l.starts_with("==") && l.contains("ERROR"))
            .unwrap_or("the run failed: see the log")
            .trim()
            .to_owned()
    });
    Ok(Ran {
        executions,
        seconds: started.elapsed().as_secs_f64(),
        finding,
    })
}

/// Builds `name`'s harness before its clock starts: a build that fails is
/// an error of this command (its output in the log), never a finding.
fn build_target(name: &str, fuzz: &Path, log_path: &Path) -> Result<(), String> {
    let log = fs::File::create(log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let status = nightly_cargo_fuzz()
        .current_dir(fuzz)
        .args(["build", "-O", name])
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .status()
        .map_err(|e| format!("could not start rustup run nightly cargo fuzz: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "the harness of {name} did not build (nothing was run or recorded): see fuzz/logs/{name}.log"
        ))
    }
}

/// Rewrites `name`'s row of the Runs table in `docs/fuzzing.md`.
fn record(name: &str, ran: &Ran, options: &Options) -> Result<(), String> {
    let path = root().join("docs/fuzzing.md");
    let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let result = match &ran.finding {
        None => "no finding".to_owned(),
        Some(f) => format!("**finding**: {}", f.replace('|', "\\|")),
    };
    let row = format!(
        "| `{name}` | {} | {:.0} s | `cargo xtask fuzz {name} --seconds {} --runs {}` | {result} |",
        ran.executions, ran.seconds, options.seconds, options.runs
    );
    let text = replace_run_row(&text, name, &row)?;
    fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// `text` with `name`'s row under the `## Runs` heading (and only there:
/// the Targets table names the same targets) replaced by `row`.
fn replace_run_row(text: &str, name: &str, row: &str) -> Result<String, String> {
    let prefix = format!("| `{name}` |");
    let mut in_runs = false;
    let mut found = false;
    let mut out = String::with_capacity(text.len() + row.len());
    for line in text.lines() {
        if line.starts_with("## ") {
            in_runs = line.trim_end() == "## Runs";
        }
        if in_runs && !found && line.starts_with(&prefix) {
            found = true;
            out.push_str(row);
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    if found {
        Ok(out)
    } else {
        Err(format!(
            "docs/fuzzing.md has no row for `{name}` under `## Runs`"
        ))
    }
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let options = options(args)?;
    let version = nightly_cargo_fuzz().arg("--version").output();
    if !version.is_ok_and(|o| o.status.success()) {
        return Err(
            "cargo fuzz with a nightly toolchain is needed: `rustup toolchain list` shows whether one is installed (`rustup toolchain install nightly`), and `cargo install cargo-fuzz` installs cargo-fuzz"
                .to_owned(),
        );
    }
    let all = targets()?;
    let chosen: Vec<String> = match &options.target {
        Some(name) if all.contains(name) => vec![name.clone()],
        Some(name) => {
            return Err(format!(
                "no fuzz target {name:?} (known: {})",
                all.join(", ")
            ));
        }
        None => all,
    };
    let mut findings = Vec::new();
    for name in &chosen {
        let ran = run_target(name, &options)?;
        eprintln!(
            "<== fuzz {name}: {} executions in {:.0} s: {}",
            ran.executions,
            ran.seconds,
            ran.finding.as_deref().unwrap_or("no finding")
        );
        if options.record {
            record(name, &ran, &options)?;
        }
        if ran.finding.is_some() {
            findings.push(name.clone());
        }
    }
    if findings.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "findings in {} (inputs in fuzz/artifacts/<target>/)",
            findings.join(", ")
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::replace_run_row;

    const DOC: &str = "# Fuzzing\n\n## Targets\n\n| `a` | reads a |\n| `b` | reads b |\n\n## Runs\n\n| `a` | not run yet | | | |\n| `b` | not run yet | | | |\n\n## Findings\n\n| `a` | kept |\n";

    #[test]
    fn only_the_runs_row_is_rewritten() {
        let out = replace_run_row(DOC, "a", "| `a` | 10 | 1 s | x | no finding |").unwrap();
        assert_eq!(
            out,
            DOC.replace(
                "| `a` | not run yet | | | |",
                "| `a` | 10 | 1 s | x | no finding |"
            )
        );
        assert!(out.contains("| `a` | reads a |"));
        assert!(out.contains("| `a` | kept |"));
    }

    #[test]
    fn a_target_without_a_runs_row_is_an_error() {
        let err = replace_run_row(DOC, "c", "| `c` | |").unwrap_err();
        assert!(err.contains("`c`"), "{err}");
        let no_runs = DOC.replace("## Runs", "## Other");
        assert!(replace_run_row(&no_runs, "a", "| `a` | |").is_err());
    }
}
