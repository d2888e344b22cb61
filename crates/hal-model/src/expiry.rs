//! `expiryTime` values, in both formats the API used.

use std::fmt;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// An instant as the API wrote it: RFC 3339 (`2016-06-27T01:42:13.094Z`) or
/// the old Microsoft JSON form `/Date(1488872625837)/` (milliseconds since
/// the Unix epoch, optionally followed by an informational `+hhmm`/`-hhmm`
/// offset that does not change the instant).
///
/// The text is kept and serialized back exactly as received.
///
/// ```
/// use hal_model::ExpiryTime;
/// let a = ExpiryTime::parse("2017-03-07T07:43:45.837Z")?;
/// let b = ExpiryTime::parse("/Date(1488872625837)/")?;
/// let c = ExpiryTime::parse("/Date(1488872625837+0100)/")?;
/// assert_eq!(a.instant(), b.instant());
/// assert_eq!(b.instant(), c.instant());
/// assert_eq!(c.as_str(), "/Date(1488872625837+0100)/");
/// # Ok::<(), hal_model::ExpiryTimeError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ExpiryTime {
    raw: String,
    at: OffsetDateTime,
}

/// Which of the two formats an [`ExpiryTime`] was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExpiryFormat {
    /// RFC 3339.
    Rfc3339,
    /// `/Date(ms)/`, optionally with an offset.
    MicrosoftJson,
}

/// Why an `expiryTime` could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expiryTime {value:?} is neither RFC 3339 nor /Date(ms)/: {reason}")]
pub struct ExpiryTimeError {
    value: String,
    reason: &'static str,
}

impl ExpiryTimeError {
    fn new(value: &str, reason: &'static str) -> Self {
        // Keep the report short whatever the server sent.
        let value = value.chars().take(64).collect();
        Self { value, reason }
    }
}

impl ExpiryTime {
    /// Parses either format.
    pub fn parse(text: &str) -> Result<Self, ExpiryTimeError> {
        let at = if let Some(inner) = text
            .strip_prefix("/Date(")
            .and_then(|rest| rest.strip_suffix(")/"))
        {
            parse_ms_json(text, inner)?
        } else {
            OffsetDateTime::parse(text, &Rfc3339)
                .map_err(|_| ExpiryTimeError::new(text, "not a valid RFC 3339 date-time"))?
        };
        // The instant is written back in UTC (`to_rfc3339_utc`, `rfc3339`):
        // its UTC year must be one RFC 3339 can write.
        if !at
            .checked_to_offset(UtcOffset::UTC)
            .is_some_and(|utc| (0..=9999).contains(&utc.year()))
        {
            return Err(ExpiryTimeError::new(
                text,
                "the instant is out of range (years 0 to 9999 in UTC)",
            ));
        }
        Ok(Self {
            raw: text.to_owned(),
            at,
        })
    }

    /// `at` written as RFC 3339 in UTC with millisecond precision, as the
    /// current API wrote it.
    pub fn rfc3339(at: OffsetDateTime) -> Self {
        let at = at.to_offset(UtcOffset::UTC);
        let millis = at.millisecond();
        let raw = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{millis:03}Z",
            at.year(),
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute(),
            at.second(),
        );
        Self { raw, at }
    }

    /// `at` written as `/Date(ms)/`, as older deployments wrote it.
    pub fn microsoft_json(at: OffsetDateTime) -> Self {
        // Floor, not truncation: before 1970 the instant's millisecond is
        // the earlier one (as `rfc3339` writes it).
        let ms = at.unix_timestamp_nanos().div_euclid(1_000_000);
        Self {
            raw: format!("/Date({ms})/"),
            at,
        }
    }

    /// `at` in the given format.
    pub fn with_format(at: OffsetDateTime, format: ExpiryFormat) -> Self {
        match format {
            ExpiryFormat::Rfc3339 => Self::rfc3339(at),
            ExpiryFormat::MicrosoftJson => Self::microsoft_json(at),
        }
    }

    /// The instant.
    pub fn instant(&self) -> OffsetDateTime {
        self.at
    }

    /// The instant as a [`SystemTime`].
    pub fn system_time(&self) -> SystemTime {
        // Not `SystemTime::from`, which panics where the platform's clock
        // cannot hold the instant (before 1601 on Windows): the nearest
        // instant it can hold, else the epoch.
        let nanos = self.at.unix_timestamp_nanos();
        let span = Duration::from_nanos(u64::try_from(nanos.unsigned_abs()).unwrap_or(u64::MAX));
        let moved = if nanos >= 0 {
            SystemTime::UNIX_EPOCH.checked_add(span)
        } else {
            SystemTime::UNIX_EPOCH.checked_sub(span)
        };
        moved.unwrap_or(SystemTime::UNIX_EPOCH)
    }

    /// The instant as RFC 3339 in UTC (`2026-12-02T05:04:41Z`, a fraction
    /// only when there is one), whatever format the API wrote: what is
    /// handed on to a widget or a script. The text as received if it cannot
    /// be written so, which [`ExpiryTime::parse`] does not let happen.
    pub fn to_rfc3339_utc(&self) -> String {
        self.at
            .to_offset(UtcOffset::UTC)
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| self.raw.clone())
    }

    /// The text as received.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The format the text is in.
    pub fn format(&self) -> ExpiryFormat {
        if self.raw.starts_with("/Date(") {
            ExpiryFormat::MicrosoftJson
        } else {
            ExpiryFormat::Rfc3339
        }
    }
}

fn parse_ms_json(text: &str, inner: &str) -> Result<OffsetDateTime, ExpiryTimeError> {
    // Milliseconds, with an optional sign, then an optional [+-]hhmm offset.
    let digits_from = usize::from(inner.starts_with('-'));
    let ms_end = inner
        .get(digits_from..)
        .and_then(|rest| rest.find(['+', '-']))
        .map_or(inner.len(), |i| i + digits_from);
    let (ms_text, offset_text) = inner.split_at(ms_end);
    let ms_digits = ms_text.strip_prefix('-').unwrap_or(ms_text);
    if ms_digits.is_empty() || !ms_digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ExpiryTimeError::new(
            text,
            "the milliseconds are not a number",
        ));
    }
    let ms: i64 = ms_text
        .parse()
        .map_err(|_| ExpiryTimeError::new(text, "the milliseconds are out of range"))?;
    let offset = if offset_text.is_empty() {
        UtcOffset::UTC
    } else {
        parse_offset(offset_text)
            .ok_or_else(|| ExpiryTimeError::new(text, "the offset is not [+-]hhmm"))?
    };
    let nanos = i128::from(ms) * 1_000_000;
    // `to_offset` would panic when the local date-time in `offset` leaves
    // the supported range (e.g. the last millisecond of 9999 with +0100).
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|at| at.checked_to_offset(offset))
        .ok_or_else(|| ExpiryTimeError::new(text, "the instant is out of range"))
}

fn parse_offset(text: &str) -> Option<UtcOffset> {
    let (sign, digits) = match text.split_at_checked(1)? {
        ("+", d) => (1i8, d),
        ("-", d) => (-1i8, d),
        _ => return None,
    };
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let hours: i8 = digits.get(..2)?.parse().ok()?;
    let minutes: i8 = digits.get(2..)?.parse().ok()?;
    if minutes >= 60 {
        return None;
    }
    UtcOffset::from_hms(sign * hours, sign * minutes, 0).ok()
}

impl fmt::Debug for ExpiryTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.raw, f)
    }
}

impl fmt::Display for ExpiryTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl Serialize for ExpiryTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.raw)
    }
}

impl<'de> Deserialize<'de> for ExpiryTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn both_formats_are_handed_on_as_rfc3339_utc() {
        let json = ExpiryTime::parse("/Date(1796159107000)/").unwrap();
        assert_eq!(json.to_rfc3339_utc(), "2026-12-01T21:05:07Z");
        let offset = ExpiryTime::parse("2026-12-02T06:05:07.250+01:00").unwrap();
        assert_eq!(offset.to_rfc3339_utc(), "2026-12-02T05:05:07.25Z");
    }
}
