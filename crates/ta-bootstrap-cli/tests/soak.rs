//! The short soak: `serve` in front of the emulator for 20 s of widget load
//! and chats while faults are injected at random; every token verified,
//! every chat ended on both sides, the platform's and serve's. The long one
//! is `cargo xtask soak --minutes N` (docs/operations.md).
#![allow(clippy::unwrap_used, clippy::panic, clippy::print_stderr, missing_docs)]

use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_soak_serves_only_right_tokens_and_ends_every_chat() {
    let options =
        ta_soak::SoakOptions::new(env!("CARGO_BIN_EXE_ta-bootstrap"), Duration::from_secs(20));
    let report = ta_soak::run(&options).await.unwrap();
    eprintln!("{report}");
    assert_eq!(report.wrong_tokens, 0, "{report}");
    assert_eq!(report.panics, 0, "{report}");
    assert!(report.tokens >= 100, "{report}");
    // The faults were felt: some windows fired, and widgets saw errors.
    let fired: u64 = report.faults_fired.values().sum();
    assert!(fired > 0 && report.windows.len() >= 4, "{report}");
    assert!(report.answers.keys().any(|a| a != "200"), "{report}");
    assert!(report.fds_flat(), "{report}");
    // Chats ran through the faults; none saw another's message, and every
    // one ended, on the platform (no conversation left open) and in serve.
    assert_eq!(report.wrong_messages, 0, "{report}");
    assert_eq!(report.chats_open_at_end, (0, 0), "{report}");
    assert!(report.left_open.is_empty(), "{report}");
    assert!(
        report.chats.get("completed").is_some_and(|n| *n > 0),
        "{report}"
    );
    assert!(report.chat_answers > 0, "{report}");
}
