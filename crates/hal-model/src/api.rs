//! The resources of the Trusted Application API, typed.
//!
//! Each type wraps the generic [`Resource`] it was parsed from, so nothing the
//! server sent is lost, and adds accessors for the members this API defines.
//! A missing link is `None` here: whether that is an error is for the caller
//! (the protocol) to say, with the rel named.

use std::fmt;

use serde::de::{Error as _, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::{Embedded, ExpiryTime, Link, Links, Namespace, Rel, Resource, names};

resource_wrapper!(
    /// The answer of the (unauthenticated) discovery request.
    Discover
);

impl Discover {
    /// The link to the applications resource (`service:applications` or
    /// `ms:rtc:saas:applications`).
    pub fn applications(&self) -> Option<&Link> {
        self.0.link(names::APPLICATIONS)
    }

    /// The rel the applications link was found under, which tells the
    /// deployment's namespace.
    pub fn applications_rel(&self) -> Option<&Rel> {
        self.0.links().find(names::APPLICATIONS).map(|(rel, _)| rel)
    }

    /// A discovery answer in `namespace` pointing at `applications_href`.
    pub fn build(namespace: Namespace, self_href: &str, applications_href: &str) -> Self {
        Self(
            Resource::new()
                .with_link(Rel::parse(names::SELF), Link::new(self_href))
                .with_link(
                    Rel::new(namespace, names::APPLICATIONS),
                    Link::new(applications_href),
                ),
        )
    }
}

resource_wrapper!(
    /// The answer of `GET <applications>?endpointId=…`: a link to the
    /// application resource dedicated to this application endpoint.
    Applications
);

impl Applications {
    /// The link to the application resource (usually relative).
    pub fn application(&self) -> Option<&Link> {
        self.0.link(names::APPLICATION)
    }
}

resource_wrapper!(
    /// The application resource: the capabilities the tenant consented to.
    Application
);

impl Application {
    /// The link to mint anonymous application tokens, present only when the
    /// tenant consented to that capability.
    pub fn anon_application_tokens(&self) -> Option<&Link> {
        self.0.link(names::ANON_APPLICATION_TOKENS)
    }

    /// The embedded communication resource, with its own links
    /// (`startMessaging`, `joinOnlineMeeting`, …).
    pub fn communication(&self) -> Option<&Resource> {
        self.0.embedded_resource(names::COMMUNICATION)
    }

    /// The embedded ad hoc meetings resource.
    pub fn adhoc_meetings(&self) -> Option<&Resource> {
        self.0.embedded_resource(names::ADHOC_MEETINGS)
    }

    /// The local names of every capability listed: links other than `self`,
    /// and embedded resources, in the order received.
    pub fn capabilities(&self) -> Vec<&str> {
        self.0
            .links()
            .rels()
            .chain(self.0.embedded().rels())
            .map(Rel::local_name)
            .filter(|name| *name != names::SELF)
            .collect()
    }
}

resource_wrapper!(
    /// The chat client's anonymous discovery answer: the link to UCWA's
    /// applications resource for the anonymous user.
    AnonDiscover
);

impl AnonDiscover {
    /// The `anonApplications` link.
    pub fn anon_applications(&self) -> Option<&Link> {
        self.0.link(names::ANON_APPLICATIONS)
    }
}

/// An anonymous application token (`psat=…`), the credential a chat widget
/// uses as an anonymous user.
///
/// It is a bearer credential: `Debug` and `Display` never show it. Read it
/// with [`PsatToken::expose`] only where it must go on the wire or to the
/// widget.
#[derive(Clone, PartialEq, Eq)]
pub struct PsatToken(String);

impl PsatToken {
    /// Wraps a token.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The token text.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The JWT after the `psat=` prefix, if the prefix is there.
    pub fn jwt(&self) -> Option<&str> {
        self.0.strip_prefix("psat=")
    }
}

impl fmt::Debug for PsatToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PsatToken(<redacted, {} bytes>)", self.0.len())
    }
}

impl fmt::Display for PsatToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted psat token>")
    }
}

impl Serialize for PsatToken {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PsatToken {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self)
    }
}

/// The answer of the `anonApplicationTokens` POST.
///
/// Its `Debug` hides the token and the hrefs (the discover link carries the
/// token in its query).
#[derive(Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct AnonApplicationToken {
    /// The `psat=…` token for the widget.
    pub token: PsatToken,
    /// When the token expires.
    #[serde(rename = "expiryTime")]
    pub expiry_time: ExpiryTime,
    /// Links (`self`, the anonymous `discover` link), `rel`, and any other
    /// member.
    #[serde(flatten)]
    pub resource: Resource,
}

impl AnonApplicationToken {
    /// An answer: the token, its expiry, and its links and other members.
    pub fn new(token: PsatToken, expiry_time: ExpiryTime, resource: Resource) -> Self {
        Self {
            token,
            expiry_time,
            resource,
        }
    }
}

// Written by hand rather than derived with `#[serde(flatten)]`: a flattened
// `Resource` is buffered before it is read, so a bad member inside it (such as
// `_links.self.href`) lost its JSON path in `from_slice`'s errors.
impl<'de> Deserialize<'de> for AnonApplicationToken {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TokenVisitor;

        impl<'de> Visitor<'de> for TokenVisitor {
            type Value = AnonApplicationToken;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an anonymous application token object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut token = None;
                let mut expiry_time = None;
                let mut resource = Resource::new();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "token" if token.is_some() => {
                            return Err(A::Error::duplicate_field("token"));
                        }
                        "token" => token = Some(map.next_value::<PsatToken>()?),
                        "expiryTime" if expiry_time.is_some() => {
                            return Err(A::Error::duplicate_field("expiryTime"));
                        }
                        "expiryTime" => expiry_time = Some(map.next_value::<ExpiryTime>()?),
                        "_links" => {
                            if let Some(links) = map.next_value::<Option<Links>>()? {
                                *resource.links_mut() = links;
                            }
                        }
                        "_embedded" => {
                            if let Some(embedded) = map.next_value::<Option<Embedded>>()? {
                                *resource.embedded_mut() = embedded;
                            }
                        }
                        "rel" => resource.rel = map.next_value()?,
                        "etag" => resource.etag = map.next_value()?,
                        _ => {
                            let value = map.next_value::<Value>()?;
                            resource.properties.insert(key, value);
                        }
                    }
                }
                Ok(AnonApplicationToken {
                    token: token.ok_or_else(|| A::Error::missing_field("token"))?,
                    expiry_time: expiry_time
                        .ok_or_else(|| A::Error::missing_field("expiryTime"))?,
                    resource,
                })
            }
        }

        deserializer.deserialize_map(TokenVisitor)
    }
}

impl fmt::Debug for AnonApplicationToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnonApplicationToken")
            .field("token", &self.token)
            .field("expiry_time", &self.expiry_time)
            .field("links", &self.resource.links().rels().collect::<Vec<_>>())
            .field("rel", &self.resource.rel)
            .finish_non_exhaustive()
    }
}

impl AnonApplicationToken {
    /// The anonymous discover link the chat client goes to first
    /// (`service:discover` or `ms:rtc:saas:discover`).
    pub fn discover(&self) -> Option<&Link> {
        self.resource.link(names::DISCOVER)
    }

    /// The `self` link.
    pub fn self_link(&self) -> Option<&Link> {
        self.resource.self_link()
    }
}

/// The JSON body of an error answer:
/// `{"code":"Forbidden","subcode":"ApplicationNotFound","message":"…"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error class (`Forbidden`, `Conflict`, `ServiceFailure`, …).
    pub code: String,
    /// The precise reason (`ApplicationNotFound`, `AlreadyExists`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subcode: Option<String>,
    /// A human-readable message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Every other member (`errorReportId`, …), kept.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ErrorBody {
    /// An error body with the given code, subcode and message.
    pub fn new(code: &str, subcode: Option<&str>, message: &str) -> Self {
        Self {
            code: code.to_owned(),
            subcode: subcode.map(str::to_owned),
            message: Some(message.to_owned()),
            extra: Map::new(),
        }
    }

    /// The `errorReportId` a `ServiceFailure` may carry.
    pub fn error_report_id(&self) -> Option<&str> {
        self.extra.get("errorReportId").and_then(Value::as_str)
    }
}
