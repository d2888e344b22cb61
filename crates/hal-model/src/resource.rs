//! The generic HAL resource.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{Link, Links, Namespace, Rel, RelMap};

/// A resource's `_embedded` map.
pub type Embedded = RelMap<Resource>;

static NO_LINKS: Links = RelMap::new();
static NOTHING_EMBEDDED: Embedded = RelMap::new();

/// A HAL resource: `_links`, `_embedded`, the API's `rel` and `etag`
/// members, and every other property, kept as received.
///
/// Parsing and serializing a resource loses nothing: members this crate does
/// not know stay in [`Resource::properties`], and an empty `_links` or
/// `_embedded` that was sent is sent back.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Resource {
    #[serde(rename = "_links", default, skip_serializing_if = "Option::is_none")]
    links: Option<Links>,
    #[serde(rename = "_embedded", default, skip_serializing_if = "Option::is_none")]
    embedded: Option<Embedded>,
    /// The resource's own rel, such as `service:application`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rel: Option<Rel>,
    /// The version tag some resources carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// Every other member, in the order received.
    #[serde(flatten)]
    pub properties: Map<String, Value>,
}

impl Resource {
    /// An empty resource.
    pub fn new() -> Self {
        Self::default()
    }

    /// The `_links` (empty if the resource had none).
    pub fn links(&self) -> &Links {
        self.links.as_ref().unwrap_or(&NO_LINKS)
    }

    /// The `_links`, for changing them.
    pub fn links_mut(&mut self) -> &mut Links {
        self.links.get_or_insert_with(Links::new)
    }

    /// The `_embedded` resources (empty if the resource had none).
    pub fn embedded(&self) -> &Embedded {
        self.embedded.as_ref().unwrap_or(&NOTHING_EMBEDDED)
    }

    /// The `_embedded` resources, for changing them.
    pub fn embedded_mut(&mut self) -> &mut Embedded {
        self.embedded.get_or_insert_with(Embedded::new)
    }

    /// The first link whose rel has this local name (any namespace).
    pub fn link(&self, local_name: &str) -> Option<&Link> {
        self.links().find(local_name).map(|(_, link)| link)
    }

    /// The first embedded resource whose rel has this local name.
    pub fn embedded_resource(&self, local_name: &str) -> Option<&Self> {
        self.embedded().find(local_name).map(|(_, r)| r)
    }

    /// A string property, if present and a string.
    pub fn str_property(&self, name: &str) -> Option<&str> {
        self.properties.get(name).and_then(Value::as_str)
    }

    /// The first embedded resource of this local name, as a typed
    /// resource.
    pub fn embedded_as<T: From<Self>>(&self, local_name: &str) -> Option<T> {
        self.embedded_resource(local_name).cloned().map(T::from)
    }

    /// The `self` link, if any.
    pub fn self_link(&self) -> Option<&Link> {
        self.links().get(&Rel::parse(crate::names::SELF))
    }

    /// The API namespace this resource writes its rels in: that of its own
    /// `rel` if it has one, else that of its first namespaced link or
    /// embedded resource.
    pub fn namespace(&self) -> Option<Namespace> {
        self.rel
            .as_ref()
            .and_then(Rel::namespace)
            .or_else(|| self.links().rels().find_map(Rel::namespace))
            .or_else(|| self.embedded().rels().find_map(Rel::namespace))
    }

    /// Adds a link (builder style).
    pub fn with_link(mut self, rel: Rel, link: Link) -> Self {
        self.links_mut().insert(rel, link);
        self
    }

    /// Adds an embedded resource (builder style).
    pub fn with_embedded(mut self, rel: Rel, resource: Self) -> Self {
        self.embedded_mut().insert(rel, resource);
        self
    }

    /// Sets the resource's own rel (builder style).
    pub fn with_rel(mut self, rel: Rel) -> Self {
        self.rel = Some(rel);
        self
    }

    /// Sets the etag (builder style).
    pub fn with_etag(mut self, etag: impl Into<String>) -> Self {
        self.etag = Some(etag.into());
        self
    }

    /// Sets another property (builder style).
    pub fn with_property(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.properties.insert(name.into(), value.into());
        self
    }
}
