//! Secrets as newtypes whose `Debug` and `Display` never show the value.

use std::fmt;

pub use hal_model::PsatToken;

macro_rules! secret_string {
    ($(#[$meta:meta])* $name:ident, $what:literal) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            /// Wraps the secret value.
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The secret value, for the one place it must go (the wire).
            pub fn expose(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "(<redacted, {} bytes>)"), self.0.len())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!("<redacted ", $what, ">"))
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self(value)
            }
        }
    };
}

secret_string!(
    /// An Azure AD application's client secret.
    ClientSecret,
    "client secret"
);

secret_string!(
    /// An Azure AD access token (the bearer token the API accepts). Opaque to
    /// this client: it is never decoded.
    AccessToken,
    "access token"
);

secret_string!(
    /// A signed client assertion (a JWT proving possession of the
    /// application's certificate key).
    ClientAssertion,
    "client assertion"
);

/// Private key material (for example a PKCS#8 document), kept for a signer.
#[derive(Clone, PartialEq, Eq)]
pub struct PrivateKey(Vec<u8>);

impl PrivateKey {
    /// Wraps the key bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    /// The key bytes, for the signer.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey(<redacted, {} bytes>)", self.0.len())
    }
}

/// Masks what looks like a credential in a text that may echo server or
/// client data (error messages, URLs): `psat=` tokens in any of their
/// encodings, the values of `anonymousContext` parameters, and JWT-shaped
/// words (`eyJ…`).
pub fn redact(text: &str) -> String {
    // (marker, case-insensitive, keep the marker itself); a marker that is
    // not kept (`eyJ`) must start a word.
    const MARKERS: [(&str, bool, bool); 6] = [
        ("psat=", true, true),
        ("psat%3d", true, true),
        ("psat%253d", true, true),
        ("anonymousContext=", false, true),
        ("anonymousMeetingJoinContext=", false, true),
        ("eyJ", false, false),
    ];
    // ASCII lower-casing keeps every byte offset. Each marker's next
    // occurrence is looked for again only once the cursor has passed it, so
    // the whole text is read a bounded number of times (a text full of
    // markers, such as a 1 MiB error message, was read once per marker).
    let lower = text.to_ascii_lowercase();
    let find = |marker: &str, insensitive: bool, keep: bool, from: usize| -> Option<usize> {
        if insensitive {
            lower.get(from..)?.find(marker).map(|i| i + from)
        } else {
            find_word_start(text, marker, keep, from)
        }
    };
    let mut next: [Option<usize>; MARKERS.len()] =
        MARKERS.map(|(marker, insensitive, keep)| find(marker, insensitive, keep, 0));
    let mut out = String::with_capacity(text.len());
    let mut cursor = 0;
    loop {
        for (slot, &(marker, insensitive, keep)) in next.iter_mut().zip(&MARKERS) {
            if slot.is_some_and(|at| at < cursor) {
                *slot = find(marker, insensitive, keep, cursor);
            }
        }
        let found = next
            .iter()
            .zip(&MARKERS)
            .filter_map(|(at, &(marker, _, keep))| at.map(|at| (at, marker.len(), keep)))
            .min_by_key(|&(at, _, _)| at);
        let Some((start, marker_len, keep)) = found else {
            out.push_str(text.get(cursor..).unwrap_or_default());
            return out;
        };
        out.push_str(text.get(cursor..start).unwrap_or_default());
        let after_marker = start + marker_len;
        let after = text.get(after_marker..).unwrap_or_default();
        let secret_len = after
            .find(|c: char| {
                c.is_whitespace() || matches!(c, '"' | '\'' | '&' | ',' | '`' | ')' | '>' | '<')
            })
            .unwrap_or(after.len());
        if keep {
            out.push_str(text.get(start..after_marker).unwrap_or_default());
        }
        out.push_str("<redacted>");
        cursor = after_marker + secret_len;
    }
}

/// Finds `marker` from byte `from` where it starts a word (or anywhere, for
/// `key=` markers).
fn find_word_start(text: &str, marker: &str, anywhere: bool, from: usize) -> Option<usize> {
    let rest = text.get(from..)?;
    rest.match_indices(marker)
        .map(|(i, _)| i + from)
        .find(|&i| {
            anywhere
                || text
                    .get(..i)
                    .and_then(|before| before.chars().next_back())
                    .is_none_or(|c| !c.is_ascii_alphanumeric())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_values() {
        let s = ClientSecret::new("hunter2-sentinel");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(!format!("{s}").contains("hunter2"));
        let t = AccessToken::new("eyJ0eXAi.sentinel");
        assert!(!format!("{t:?} {t}").contains("sentinel"));
        let k = PrivateKey::new(b"-----BEGIN PRIVATE KEY-----sentinel".to_vec());
        assert!(!format!("{k:?}").contains("sentinel"));
    }

    #[test]
    fn a_text_full_of_markers_is_read_through_once() {
        // Each marker's next place is kept: 100,000 of them are masked one
        // by one (this text used to be re-read once per marker).
        let text = "psat=x eyJy anonymousContext=z ".repeat(100_000);
        let out = redact(&text);
        assert_eq!(
            out,
            "psat=<redacted> <redacted> anonymousContext=<redacted> ".repeat(100_000)
        );
    }

    #[test]
    fn redact_masks_tokens_in_every_encoding() {
        let text = "GET https://h/discover?anonymousContext=psat%253deyJabc.def.ghi&x=1 token psat=eyJ0.a.b \"eyJhbGci.x.y\"";
        let out = redact(text);
        assert!(!out.contains("eyJ"), "{out}");
        assert!(!out.contains("def.ghi"), "{out}");
        assert!(out.contains("&x=1"), "{out}");
        assert!(out.contains("anonymousContext=<redacted>"), "{out}");
        assert_eq!(redact("plain text"), "plain text");
        // `eyJ` inside a word is no JWT; a marker right after a secret is.
        assert_eq!(redact("abceyJx eyJx"), "abceyJx <redacted>");
        assert_eq!(redact("psat=a,PSAT=b"), "psat=<redacted>,PSAT=<redacted>");
    }
}
