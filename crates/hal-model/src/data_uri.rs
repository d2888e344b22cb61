//! `data:` URIs, the form message bodies and `customContent` take in
//! events (`data:text/plain;charset=utf-8,Hello+there`).

use std::fmt;

use base64::Engine as _;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode, utf8_percent_encode};

/// A decoded `data:` URI.
///
/// Plain text arrives percent-encoded with `+` for spaces
/// (`Message+1+from+2+to+1`): `+` is read as a space *before*
/// percent-decoding, so `%2B` stays a plus sign. The `;base64,` form is read
/// too.
///
/// ```
/// use hal_model::DataUri;
/// let uri = DataUri::parse("data:text/plain;charset=utf-8,How+can+I+help%3f")?;
/// assert_eq!(uri.media_type(), "text/plain");
/// assert_eq!(uri.text()?, "How can I help?");
/// let html = DataUri::parse("data:text/html;charset=utf-8,%3cb%3eHi%3c%2fb%3e")?;
/// assert!(html.is_html());
/// assert_eq!(html.text()?, "<b>Hi</b>");
/// assert_eq!(DataUri::plain_text("1 + 1 = 2"), "data:text/plain;charset=utf-8,1+%2B+1+%3D+2");
/// # Ok::<(), hal_model::DataUriError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct DataUri {
    media_type: String,
    charset: Option<String>,
    data: Vec<u8>,
}

/// Why a `data:` URI could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DataUriError {
    /// It does not start with `data:`.
    #[error("not a data: URI")]
    NotData,
    /// It has no `,` between the media type and the data.
    #[error("the data: URI has no ',' before its data")]
    NoComma,
    /// The `;base64` data is not base64.
    #[error("the data: URI's base64 data is invalid")]
    BadBase64,
    /// The text is not UTF-8 (or is in a charset this crate does not read).
    #[error("the data: URI's text is not UTF-8 (charset {charset:?})")]
    NotText {
        /// The declared charset, if any.
        charset: Option<String>,
    },
}

/// What stays unescaped in the text this crate writes: RFC 3986's
/// unreserved characters (a space becomes `+`).
const TEXT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b' ');

impl DataUri {
    /// Reads `data:[<media type>][;charset=…][;base64],<data>`.
    pub fn parse(uri: &str) -> Result<Self, DataUriError> {
        let rest = uri
            .get(..5)
            .filter(|scheme| scheme.eq_ignore_ascii_case("data:"))
            .and_then(|_| uri.get(5..))
            .ok_or(DataUriError::NotData)?;
        let (header, payload) = rest.split_once(',').ok_or(DataUriError::NoComma)?;
        let mut params = header.split(';').map(str::trim);
        let media_type = params
            .next()
            .filter(|m| !m.is_empty())
            .unwrap_or("text/plain")
            .to_ascii_lowercase();
        let mut charset = None;
        let mut base64 = false;
        for param in params {
            if param.eq_ignore_ascii_case("base64") {
                base64 = true;
            } else if let Some((name, value)) = param.split_once('=')
                && name.trim().eq_ignore_ascii_case("charset")
            {
                charset = Some(value.trim().trim_matches('"').to_ascii_lowercase());
            }
        }
        let data = if base64 {
            let text = percent_decode(payload.as_bytes()).collect::<Vec<u8>>();
            let compact: Vec<u8> = text
                .into_iter()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            base64::engine::general_purpose::STANDARD
                .decode(&compact)
                .map_err(|_| DataUriError::BadBase64)?
        } else {
            let spaced = payload.replace('+', " ");
            percent_decode(spaced.as_bytes()).collect()
        };
        Ok(Self {
            media_type,
            charset,
            data,
        })
    }

    /// The media type, lower case (`text/plain` when none was given).
    pub fn media_type(&self) -> &str {
        &self.media_type
    }

    /// The declared charset, lower case.
    pub fn charset(&self) -> Option<&str> {
        self.charset.as_deref()
    }

    /// Whether the media type is `text/html`.
    pub fn is_html(&self) -> bool {
        self.media_type == "text/html"
    }

    /// The decoded bytes.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The decoded text, for UTF-8 (or US-ASCII, or undeclared) data.
    pub fn text(&self) -> Result<&str, DataUriError> {
        let readable = matches!(
            self.charset.as_deref(),
            None | Some("utf-8" | "utf8" | "us-ascii")
        );
        readable
            .then(|| std::str::from_utf8(&self.data).ok())
            .flatten()
            .ok_or_else(|| DataUriError::NotText {
                charset: self.charset.clone(),
            })
    }

    /// `text` as a `text/plain; charset=utf-8` data URI, written the way the
    /// API wrote them (`+` for spaces).
    pub fn plain_text(text: &str) -> String {
        Self::encode("text/plain", text)
    }

    /// `html` as a `text/html; charset=utf-8` data URI.
    pub fn html_text(html: &str) -> String {
        Self::encode("text/html", html)
    }

    fn encode(media_type: &str, text: &str) -> String {
        let escaped = utf8_percent_encode(text, TEXT)
            .to_string()
            .replace(' ', "+");
        format!("data:{media_type};charset=utf-8,{escaped}")
    }
}

impl fmt::Debug for DataUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Message text is the visitor's: only its size is shown.
        f.debug_struct("DataUri")
            .field("media_type", &self.media_type)
            .field("charset", &self.charset)
            .field("bytes", &self.data.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn plus_is_a_space_before_percent_decoding() {
        let uri = DataUri::parse("data:text/plain;charset=utf-8,Message+1+from+2+to+1%2B").unwrap();
        assert_eq!(uri.text().unwrap(), "Message 1 from 2 to 1+");
    }

    #[test]
    fn base64_and_defaults() {
        let uri = DataUri::parse("data:;base64,SGVsbG8gdGhlcmU=").unwrap();
        assert_eq!(uri.media_type(), "text/plain");
        assert_eq!(uri.text().unwrap(), "Hello there");
        assert_eq!(
            DataUri::parse("data:foo/foo,ThisIsARandomCustomContent")
                .unwrap()
                .data(),
            b"ThisIsARandomCustomContent"
        );
    }

    #[test]
    fn what_is_refused() {
        assert_eq!(DataUri::parse("https://x"), Err(DataUriError::NotData));
        assert_eq!(
            DataUri::parse("data:text/plain"),
            Err(DataUriError::NoComma)
        );
        assert_eq!(
            DataUri::parse("data:;base64,%%%"),
            Err(DataUriError::BadBase64)
        );
        let latin = DataUri::parse("data:text/plain;charset=iso-8859-1,caf%e9").unwrap();
        assert!(matches!(latin.text(), Err(DataUriError::NotText { .. })));
        let broken = DataUri::parse("data:text/plain,%ff%fe").unwrap();
        assert!(broken.text().is_err());
        // Multi-byte characters never split a slice.
        assert_eq!(DataUri::parse("dätä:,x"), Err(DataUriError::NotData));
    }

    #[test]
    fn what_is_written_reads_back() {
        for text in ["", "a b", "100% + tax & more?", "Grüße 👋", "line\nbreak"] {
            let uri = DataUri::plain_text(text);
            assert_eq!(DataUri::parse(&uri).unwrap().text().unwrap(), text, "{uri}");
        }
        assert!(
            DataUri::parse(&DataUri::html_text("<i>x</i>"))
                .unwrap()
                .is_html()
        );
    }
}
