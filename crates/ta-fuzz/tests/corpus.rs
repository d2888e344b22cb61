//! The committed corpus, replayed on stable: every file of
//! `fuzz/corpus/<target>/` through the same harness the fuzz target calls.
//! Every target has a corpus; a finding's input is kept there, with the
//! fix, so that it stays fixed.

#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus")
}

#[test]
fn every_target_replays_its_corpus() {
    let mut failures = Vec::new();
    for target in ta_fuzz::TARGETS {
        let dir = corpus_dir().join(target.name);
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: no corpus at {}: {e}", target.name, dir.display()));
        let mut count = 0;
        for entry in entries {
            let path = entry.expect("a corpus entry").path();
            let data = std::fs::read(&path).expect("a corpus file");
            count += 1;
            let run = target.run;
            if std::panic::catch_unwind(|| run(&data)).is_err() {
                failures.push(path.display().to_string());
            }
        }
        assert!(count > 0, "{}: the corpus is empty", target.name);
    }
    assert!(failures.is_empty(), "inputs that fail: {failures:#?}");
}

#[test]
fn every_fuzz_target_calls_its_harness() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/fuzz_targets");
    for target in ta_fuzz::TARGETS {
        let path = dir.join(format!("{}.rs", target.name));
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            text.contains(&format!("ta_fuzz::{}(data)", target.name)),
            "{} does not call ta_fuzz::{}",
            path.display(),
            target.name
        );
    }
    let manifest = std::fs::read_to_string(dir.join("../Cargo.toml")).expect("fuzz/Cargo.toml");
    for target in ta_fuzz::TARGETS {
        assert!(
            manifest.contains(&format!("name = \"{}\"", target.name)),
            "fuzz/Cargo.toml has no [[bin]] {}",
            target.name
        );
    }
}

#[test]
fn names_are_unique() {
    let mut names: Vec<_> = ta_fuzz::TARGETS.iter().map(|t| t.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), ta_fuzz::TARGETS.len());
    assert!(ta_fuzz::target("hal_resource").is_some());
}
