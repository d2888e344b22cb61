//! Structure-aware input: JSON built from the fuzzer's bytes with
//! `arbitrary`, its member names and strings mostly taken from what the API
//! and AAD really send, so that the typed readers see inputs that get past
//! the JSON layer.

use arbitrary::{Arbitrary, Unstructured};
use serde_json::{Map, Number, Value};

/// Member names the readers look for.
const KEYS: &[&str] = &[
    "_links",
    "_embedded",
    "href",
    "rel",
    "templated",
    "self",
    "applications",
    "application",
    "anonApplicationTokens",
    "discover",
    "communication",
    "adhocMeetings",
    "expiryTime",
    "token",
    "etag",
    "code",
    "subcode",
    "message",
    "errorReportId",
    "sender",
    "events",
    "link",
    "type",
    "status",
    "reason",
    "baseuri",
    "conversation",
    "messaging",
    "onlineMeeting",
    "participant",
    "messagingInvitation",
    "onlineMeetingInvitation",
    "participantInvitation",
    "state",
    "direction",
    "operationId",
    "threadId",
    "importance",
    "to",
    "from",
    "name",
    "uri",
    "plainMessage",
    "htmlMessage",
    "next",
    "resync",
    "resume",
    "ms:rtc:saas:applications",
    "service:applications",
    "access_token",
    "token_type",
    "expires_in",
    "ext_expires_in",
    "error",
    "error_description",
    "error_codes",
    "correlation_id",
    "trace_id",
    "keys",
    "kty",
    "kid",
    "x5t",
    "n",
    "e",
    "use",
    "alg",
];

/// Values the readers treat specially.
const TEXTS: &[&str] = &[
    "",
    "https://api.example/platformservice/v1/applications",
    "/platformservice/v1/applications/16?endpointId=sip%3ahelpdesk%40contoso.com",
    "https://webpoolbl20r04.infra.lync.com/platformservice/v1/anonApplications",
    "https:other.example/x",
    "//other.example/x",
    "http://127.0.0.1:1/x",
    "../../x",
    "psat=eyJ0eXAiOiJKV1QifQ.eyJhc2kiOiJ4In0.c2ln",
    "2026-12-02T08:00:00Z",
    "2026-12-02T08:00:00.1234567+01:00",
    "/Date(1800000000000)/",
    "/Date(-62135596800001+0100)/",
    "data:text/plain;charset=utf-8,Hello%20there",
    "data:text/html;base64,PGI+aGk8L2I+",
    "added",
    "updated",
    "deleted",
    "started",
    "completed",
    "failure",
    "success",
    "Incoming",
    "Outgoing",
    "Connecting",
    "Connected",
    "Disconnected",
    "sip:helpdesk@contoso.com",
    "Bearer",
    "bearer",
    "3599",
    "invalid_client",
    "AADSTS7000215: Invalid client secret provided.",
    "RSA",
    "AQAB",
    "RS256",
    "ServiceFailure",
    "Forbidden",
    "NotFound",
];

/// A JSON value as the fuzzer chose it.
#[derive(Debug, Arbitrary)]
pub enum Json {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A number with a fraction.
    Float(f64),
    /// A string.
    Str(Text),
    /// An array.
    Array(Vec<Self>),
    /// An object, with member names that may repeat.
    Object(Vec<(Key, Self)>),
}

/// A member name: most often one the readers know.
#[derive(Debug, Arbitrary)]
pub enum Key {
    /// One of the member names the readers look for.
    Known(u8),
    /// Anything.
    Other(String),
}

/// A string: often one the readers treat specially.
#[derive(Debug, Arbitrary)]
pub enum Text {
    /// One of the values the readers treat specially.
    Known(u8),
    /// Anything.
    Other(String),
}

fn pick(list: &'static [&'static str], i: u8) -> &'static str {
    list.get(usize::from(i) % list.len())
        .copied()
        .unwrap_or_default()
}

impl Key {
    fn text(&self) -> &str {
        match self {
            Self::Known(i) => pick(KEYS, *i),
            Self::Other(s) => s,
        }
    }
}

impl Text {
    fn text(&self) -> &str {
        match self {
            Self::Known(i) => pick(TEXTS, *i),
            Self::Other(s) => s,
        }
    }
}

impl Json {
    /// The value, as text: a repeated member is written twice, as a server
    /// could.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            Self::Object(members) => {
                out.push('{');
                for (i, (key, value)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(key.text().to_owned()).to_string());
                    out.push(':');
                    value.write(out);
                }
                out.push('}');
            }
            Self::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            scalar => out.push_str(&scalar.scalar().to_string()),
        }
    }

    fn scalar(&self) -> Value {
        match self {
            Self::Null | Self::Array(_) | Self::Object(_) => Value::Null,
            Self::Bool(b) => Value::Bool(*b),
            Self::Int(i) => Value::Number((*i).into()),
            Self::Float(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Self::Str(s) => Value::String(s.text().to_owned()),
        }
    }

    /// The value as [`serde_json::Value`] (a repeated member keeps its last
    /// value).
    pub fn to_value(&self) -> Value {
        match self {
            Self::Object(members) => Value::Object(
                members
                    .iter()
                    .map(|(k, v)| (k.text().to_owned(), v.to_value()))
                    .collect::<Map<_, _>>(),
            ),
            Self::Array(items) => Value::Array(items.iter().map(Self::to_value).collect()),
            scalar => scalar.scalar(),
        }
    }
}

/// The JSON text the fuzzer's bytes describe, or `None` when they are too
/// few.
pub fn json_text(data: &[u8]) -> Option<String> {
    Json::arbitrary_take_rest(Unstructured::new(data))
        .ok()
        .map(|json| json.to_text())
}
