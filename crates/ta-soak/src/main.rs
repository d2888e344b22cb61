//! `ta-soak --serve PATH [--minutes N | --seconds N] [--widgets N] [--chats N] [--seed N] [--serve-log FILE]`:
//! one soak, its report on stdout; exit 1 if it failed (a wrong token, a
//! panic, memory or descriptors growing).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut serve = None;
    let mut duration = Duration::from_secs(600);
    let mut widgets = None;
    let mut chats = None;
    let mut seed = None;
    let mut serve_log = None;
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        let value = args.get(i + 1);
        let number = || value.and_then(|v| v.parse::<u64>().ok()).filter(|v| *v > 0);
        match (arg.as_str(), number()) {
            ("--serve", _) if value.is_some() => serve = value.cloned(),
            ("--minutes", Some(n)) => duration = Duration::from_secs(n * 60),
            ("--seconds", Some(n)) => duration = Duration::from_secs(n),
            ("--widgets", Some(n)) => widgets = usize::try_from(n).ok(),
            ("--chats", Some(n)) => chats = usize::try_from(n).ok(),
            ("--seed", Some(n)) => seed = Some(n),
            ("--serve-log", _) if value.is_some() => serve_log = value.map(Into::into),
            _ => {
                eprintln!(
                    "usage: ta-soak --serve PATH [--minutes N | --seconds N] [--widgets N] [--chats N] [--seed N] [--serve-log FILE]"
                );
                return ExitCode::from(2);
            }
        }
        i += 2;
    }
    let Some(serve) = serve else {
        eprintln!("ta-soak: --serve PATH (the ta-bootstrap binary) is required");
        return ExitCode::from(2);
    };
    let mut options = ta_soak::SoakOptions::new(serve, duration);
    if let Some(w) = widgets {
        options.widgets = w;
    }
    if let Some(c) = chats {
        options.chats = c;
    }
    if let Some(s) = seed {
        options.seed = s;
    }
    options.serve_log = serve_log;
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ta-soak: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(ta_soak::run(&options)) {
        Ok(report) => {
            println!("{report}");
            if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("ta-soak: {e}");
            ExitCode::FAILURE
        }
    }
}
