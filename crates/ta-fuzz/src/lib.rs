//! The fuzz harnesses: one function per target, each taking the fuzzer's
//! bytes, for every reader of what a server, a browser or a file sends.
//!
//! The cargo-fuzz targets of `fuzz/` (built with a nightly toolchain by
//! `cargo xtask fuzz`) call these functions, and the stable test
//! `tests/corpus.rs` replays the committed corpus `fuzz/corpus/<target>/`
//! through the same functions. A harness returns when the input is taken or
//! refused as it should be, and panics when a reader panics or breaks a
//! property (a round trip, a secret shown, a forged token taken).
//!
//! Some targets are structure-aware: they build their input with
//! [`arbitrary`] (JSON from [`json`], TOML lines, tickets), where raw bytes
//! would rarely get past the first parser.

#![allow(clippy::panic)] // a harness reports a broken property by panicking

mod aad;
mod chat;
mod config;
mod hal;
mod headers;
pub mod json;
mod origins;
mod text;
mod tokens;

/// A fuzz target: its name (as `fuzz/fuzz_targets/<name>.rs` and
/// `fuzz/corpus/<name>/`) and its harness.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// The target's name.
    pub name: &'static str,
    /// What it reads.
    pub reads: &'static str,
    /// The harness.
    pub run: fn(&[u8]),
}

macro_rules! targets {
    ($($module:ident :: $name:ident => $reads:expr),* $(,)?) => {
        $(pub use $module::$name;)*
        /// Every target, in the order `cargo xtask fuzz` runs them.
        pub const TARGETS: &[Target] = &[
            $(Target { name: stringify!($name), reads: $reads, run: $module::$name },)*
        ];
    };
}

targets! {
    hal::hal_resource => "the API's HAL answers and the chat's request bodies (raw)",
    hal::hal_structured => "the same, as JSON built from the API's names",
    text::expiry_time => "`expiryTime`, RFC 3339 and `/Date(ms)/`",
    headers::www_authenticate => "`WWW-Authenticate` challenges",
    headers::retry_after => "`Retry-After`, seconds or an HTTP date",
    aad::aad_token_response => "AAD token answers (v1, v2) and errors (raw)",
    aad::aad_structured => "the same, as built JSON",
    origins::origin => "origins and allowlists",
    origins::urls => "the discover URL, the token endpoint, the tenant, trusted hosts",
    headers::forwarded => "`Forwarded` / `X-Forwarded-For` behind trusted proxies",
    config::serve_config => "`serve --config` TOML",
    config::emulator_config => "the emulator's TOML, written back",
    config::config_secrets => "both TOML files, built around a secret",
    tokens::inspect_claims => "the token `inspect` reads",
    chat::callback => "a callback's events envelope (raw)",
    chat::callback_structured => "the same, as built JSON",
    text::data_uri => "data-URI message bodies",
    text::chat_states => "the chat's state words",
    text::callback_context => "`callbackContext`",
    tokens::callback_token => "a callback token, unsigned",
    tokens::callback_claims => "a callback token's claims, signed",
    tokens::jwks_document => "the identity provider's keys document",
    tokens::mint_ticket => "the site's mint ticket",
    text::agent_spec => "an `--agent` spec",
}

/// The target named `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}
