//! HAL links, `_links` and `_embedded` maps, and href resolution.

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{MapAccess, SeqAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use url::Url;

use crate::Rel;

/// A HAL link object.
///
/// `href` is kept exactly as received, percent-encoding included: resolving
/// it never decodes or re-encodes what the server wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Link {
    /// The target, absolute or relative to the resource's own URL.
    pub href: String,
    /// Whether `href` is a URI template (this API never sent one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub templated: Option<bool>,
    /// A human-readable label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// A key to tell links of the same rel apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The media type expected at the target.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// Any other member, kept so that nothing is lost on a round trip.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Link {
    /// A link with only an `href`.
    pub fn new(href: impl Into<String>) -> Self {
        Self {
            href: href.into(),
            templated: None,
            title: None,
            name: None,
            media_type: None,
            extra: Map::new(),
        }
    }

    /// Resolves `href` against `base`, the URL the resource holding this link
    /// was fetched from.
    ///
    /// Relative and absolute hrefs are both accepted. Percent-encoding is kept
    /// as received (`sip%3ahelpdesk%40contoso.com` stays lower-case and is not
    /// encoded again; a raw `sip:helpdesk@contoso.com` stays raw).
    ///
    /// ```
    /// # use hal_model::Link;
    /// let base = url::Url::parse("https://api.example/platformservice/v1/applications?endpointId=x")?;
    /// let link = Link::new("/platformservice/v1/applications/16?endpointId=sip%3ahelpdesk%40contoso.com");
    /// assert_eq!(
    ///     link.resolve(&base)?.as_str(),
    ///     "https://api.example/platformservice/v1/applications/16?endpointId=sip%3ahelpdesk%40contoso.com",
    /// );
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn resolve(&self, base: &Url) -> Result<Url, HrefError> {
        if self.templated == Some(true) {
            return Err(HrefError::Templated {
                href: self.href.clone(),
            });
        }
        if self.href.trim().is_empty() {
            return Err(HrefError::Empty);
        }
        base.join(&self.href).map_err(|source| HrefError::Invalid {
            href: self.href.clone(),
            source,
        })
    }

    /// Parses `href` as an absolute URL; a relative href is an error, and
    /// so is one whose meaning depends on the base: `https:host/x` is
    /// `https://host/x` alone, but a path against an `https` base (as
    /// [`Link::resolve`] reads it).
    pub fn absolute(&self) -> Result<Url, HrefError> {
        if self.templated == Some(true) {
            return Err(HrefError::Templated {
                href: self.href.clone(),
            });
        }
        if self.href.trim().is_empty() {
            return Err(HrefError::Empty);
        }
        match Url::parse(&self.href) {
            Ok(url) if url.has_host() && same_against_any_base(&url, &self.href) => Ok(url),
            Ok(_) => Err(HrefError::NotAbsolute {
                href: self.href.clone(),
            }),
            Err(url::ParseError::RelativeUrlWithoutBase) => Err(HrefError::NotAbsolute {
                href: self.href.clone(),
            }),
            Err(source) => Err(HrefError::Invalid {
                href: self.href.clone(),
                source,
            }),
        }
    }
}

/// Why an href could not be turned into a URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HrefError {
    /// The href is empty.
    #[error("the href is empty")]
    Empty,
    /// The href does not parse as a URL reference.
    #[error("the href {href:?} is not a valid URL: {source}")]
    Invalid {
        /// The href as received.
        href: String,
        /// What the URL parser said.
        #[source]
        source: url::ParseError,
    },
    /// An absolute URL was required and the href is relative.
    #[error("the href {href:?} is not an absolute URL")]
    NotAbsolute {
        /// The href as received.
        href: String,
    },
    /// The link is a URI template, which this API never uses.
    #[error("the href {href:?} is a URI template")]
    Templated {
        /// The href as received.
        href: String,
    },
}

/// One value or an array of values, as HAL allows for both links and
/// embedded resources. Serializes back in the shape it came in.
#[derive(Debug, Clone, PartialEq)]
pub enum OneOrMany<T> {
    /// A single object.
    One(T),
    /// An array of objects (possibly empty).
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    /// The values as a slice, whichever shape they came in.
    pub fn as_slice(&self) -> &[T] {
        match self {
            Self::One(one) => std::slice::from_ref(one),
            Self::Many(many) => many,
        }
    }

    /// The first value, if any.
    pub fn first(&self) -> Option<&T> {
        self.as_slice().first()
    }
}

impl<T: Serialize> Serialize for OneOrMany<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::One(one) => one.serialize(serializer),
            Self::Many(many) => many.serialize(serializer),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OneOrManyVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for OneOrManyVisitor<T> {
            type Value = OneOrMany<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object or an array of objects")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(OneOrMany::One)
            }

            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                Vec::<T>::deserialize(SeqAccessDeserializer::new(seq)).map(OneOrMany::Many)
            }
        }

        deserializer.deserialize_any(OneOrManyVisitor(PhantomData))
    }
}

/// An ordered map from rels to one or many values: HAL's `_links` (with
/// [`Link`] values) and `_embedded` (with [`Resource`](crate::Resource)
/// values).
///
/// Entries keep the order and the exact rel text they came with. Lookups
/// compare rels by meaning (see [`Rel`]), so `service:x` finds
/// `ms:rtc:saas:x`.
#[derive(Clone, PartialEq)]
pub struct RelMap<T> {
    entries: Vec<(Rel, OneOrMany<T>)>,
}

/// A resource's `_links`.
pub type Links = RelMap<Link>;

impl<T> RelMap<T> {
    /// An empty map.
    pub const fn new() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    /// Number of rels.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is no rel at all.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The first value under `rel` (compared by meaning).
    pub fn get(&self, rel: &Rel) -> Option<&T> {
        self.get_all(rel).first()
    }

    /// All values under `rel` (compared by meaning); empty if none.
    pub fn get_all(&self, rel: &Rel) -> &[T] {
        self.entries
            .iter()
            .find(|(r, _)| r == rel)
            .map_or(&[], |(_, v)| v.as_slice())
    }

    /// The first value whose rel has this local name, in either namespace or
    /// none, with the rel it was found under.
    pub fn find(&self, local_name: &str) -> Option<(&Rel, &T)> {
        self.entries
            .iter()
            .filter(|(r, _)| r.has_local_name(local_name))
            .find_map(|(r, v)| v.first().map(|first| (r, first)))
    }

    /// Adds a single value under `rel` (after any existing entries).
    pub fn insert(&mut self, rel: Rel, value: T) {
        self.entries.push((rel, OneOrMany::One(value)));
    }

    /// Adds an array of values under `rel`.
    pub fn insert_many(&mut self, rel: Rel, values: Vec<T>) {
        self.entries.push((rel, OneOrMany::Many(values)));
    }

    /// Removes every entry whose rel equals `rel`, returning how many went.
    pub fn remove(&mut self, rel: &Rel) -> usize {
        let before = self.entries.len();
        self.entries.retain(|(r, _)| r != rel);
        before - self.entries.len()
    }

    /// The entries in order.
    pub fn iter(&self) -> impl Iterator<Item = (&Rel, &OneOrMany<T>)> {
        self.entries.iter().map(|(r, v)| (r, v))
    }

    /// The rels in order.
    pub fn rels(&self) -> impl Iterator<Item = &Rel> {
        self.entries.iter().map(|(r, _)| r)
    }
}

impl<T> Default for RelMap<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: fmt::Debug> fmt::Debug for RelMap<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.entries.iter().map(|(r, v)| (r, v)))
            .finish()
    }
}

impl<T: Serialize> Serialize for RelMap<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.entries.len()))?;
        for (rel, value) in &self.entries {
            map.serialize_entry(rel, value)?;
        }
        map.end()
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for RelMap<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RelMapVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for RelMapVisitor<T> {
            type Value = RelMap<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object mapping rels to objects or arrays of objects")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
                while let Some((rel, value)) = map.next_entry::<Rel, OneOrMany<T>>()? {
                    entries.push((rel, value));
                }
                Ok(RelMap { entries })
            }
        }

        deserializer.deserialize_map(RelMapVisitor(PhantomData))
    }
}

/// Whether `href`, which parses alone as `url`, means `url` against a base
/// of the same scheme on another host too.
fn same_against_any_base(url: &Url, href: &str) -> bool {
    Url::parse(&format!("{}://base.invalid/", url.scheme()))
        .and_then(|base| base.join(href))
        .is_ok_and(|joined| joined == *url)
}
