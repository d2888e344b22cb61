//! The operator's TOML files: `serve --config` and the emulator's. What is
//! read is never lost or shown: the emulator's configuration written back
//! reads the same, and an error never quotes a secret, however the file is
//! broken around it.

use arbitrary::{Arbitrary, Unstructured};
use ta_bootstrap_cli::file_config::FileConfig;
use ta_emulator::EmulatorConfig;

/// The secret the structured targets write into the file, and look for in
/// the errors.
const SECRET: &str = "Zq8-sekrit-Zq8";

/// Raw text as `serve --config`.
pub fn serve_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = FileConfig::parse(text) {
        let _ = e.to_string();
    }
}

/// Raw text as the emulator's configuration; one that is taken, written
/// back, reads the same.
pub fn emulator_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = EmulatorConfig::from_toml(text) else {
        return;
    };
    // Values TOML cannot hold (an integer beyond i64) cannot be written.
    let Ok(written) = toml::to_string(&config) else {
        return;
    };
    let again = EmulatorConfig::from_toml(&written)
        .unwrap_or_else(|e| panic!("does not read what it wrote: {e}\n{written}"));
    if !has_nan(&config) {
        assert_eq!(again, config, "{written}");
    }
}

fn has_nan(config: &EmulatorConfig) -> bool {
    format!("{config:?}").contains("NaN")
}

/// Keys of both files, in both spellings, secrets among them.
const KEYS: &[&str] = &[
    "client-secret",
    "client_secret",
    "certificate_pem",
    "client-id",
    "client_id",
    "tenant",
    "tenant_id",
    "listen",
    "allowed-origins",
    "trusted-proxies",
    "per-client-rate",
    "max-connections",
    "agents",
    "psat_lifetime_secs",
    "aad_token_lifetime_secs",
    "consented",
    "endpoints",
    "faults",
    "\"client\\u002dsecret\"",
    "'client_secret'",
    "applications.client_secret",
];

const TABLES: &[&str] = &[
    "[[applications]]",
    "[chat]",
    "[[chat.agents]]",
    "[quirks]",
    "[[faults]]",
    "[applications]",
];

#[derive(Debug, Arbitrary)]
enum Line {
    /// `key = value`.
    Setting(u8, Value),
    /// A secret key whose value holds [`SECRET`], written in one of the
    /// ways TOML allows (and some it does not).
    Secret(u8, SecretForm),
    /// A table header.
    Table(u8),
    /// Anything.
    Raw(String),
}

#[derive(Debug, Arbitrary)]
enum Value {
    Str(String),
    Int(i64),
    Bool(bool),
    Float(f64),
    Array(Vec<String>),
    Unclosed(String),
}

#[derive(Debug, Arbitrary)]
enum SecretForm {
    Basic,
    Literal,
    /// A multi-line string, with these lines inside it around the secret.
    MultiLine(Vec<String>, bool),
    Array,
    Inline,
    Unclosed,
    Bare,
}

const SECRET_KEYS: &[&str] = &[
    "client-secret",
    "client_secret",
    "certificate_pem",
    "\"client\\u002dsecret\"",
];

fn pick<'a>(list: &[&'a str], i: u8) -> &'a str {
    list.get(usize::from(i) % list.len())
        .copied()
        .unwrap_or_default()
}

fn write(lines: &[Line]) -> String {
    let mut out = String::new();
    for line in lines {
        match line {
            Line::Setting(key, value) => {
                let value = match value {
                    Value::Str(s) => format!("{s:?}"),
                    Value::Int(i) => i.to_string(),
                    Value::Bool(b) => b.to_string(),
                    Value::Float(f) => f.to_string(),
                    Value::Array(items) => format!("{items:?}"),
                    Value::Unclosed(s) => format!("\"{s}"),
                };
                out.push_str(&format!("{} = {value}\n", pick(KEYS, *key)));
            }
            Line::Secret(key, form) => {
                let key = pick(SECRET_KEYS, *key);
                let value = match form {
                    SecretForm::Basic => format!("\"{SECRET}\""),
                    SecretForm::Literal => format!("'{SECRET}'"),
                    SecretForm::MultiLine(inside, literal) => {
                        let quote = if *literal { "'''" } else { "\"\"\"" };
                        let mut body = String::new();
                        for (i, line) in inside.iter().enumerate() {
                            if i == inside.len() / 2 {
                                body.push_str(SECRET);
                                body.push('\n');
                            }
                            body.push_str(&line.replace(quote, ""));
                            body.push('\n');
                        }
                        if inside.is_empty() {
                            body.push_str(SECRET);
                        }
                        format!("{quote}\n{body}{quote}")
                    }
                    SecretForm::Array => format!("[\"{SECRET}\", 1]"),
                    SecretForm::Inline => format!("{{ value = \"{SECRET}\" }}"),
                    SecretForm::Unclosed => format!("\"{SECRET}"),
                    SecretForm::Bare => SECRET.to_owned(),
                };
                out.push_str(&format!("{key} = {value}\n"));
            }
            Line::Table(i) => {
                out.push_str(pick(TABLES, *i));
                out.push('\n');
            }
            Line::Raw(text) => {
                // No quote: a raw line cannot open a string that would
                // swallow the secret's line into another key's value.
                out.push_str(&text.replace(['"', '\''], ""));
                out.push('\n');
            }
        }
    }
    out
}

/// A file written from the fuzzer's lines, a secret among them: neither
/// configuration's error shows the secret.
pub fn config_secrets(data: &[u8]) {
    let Ok(lines) = Vec::<Line>::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let text = write(&lines);
    let secrets = lines
        .iter()
        .filter(|l| matches!(l, Line::Secret(..)))
        .count();
    // The secret written elsewhere (as a key, or in another value) may be
    // shown there: only files where it is a secret's value are checked.
    if secrets == 0 || text.matches(SECRET).count() != secrets {
        return;
    }
    if let Err(e) = FileConfig::parse(&text) {
        let shown = e.to_string();
        assert!(
            !shown.contains(SECRET),
            "serve's error shows the secret: {shown}\n{text}"
        );
    }
    if let Err(e) = EmulatorConfig::from_toml(&text) {
        let shown = format!("{e} {e:?}");
        assert!(
            !shown.contains(SECRET),
            "the emulator's error shows the secret: {shown}\n{text}"
        );
    }
}
