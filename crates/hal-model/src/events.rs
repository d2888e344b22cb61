//! The events envelope: the body of every callback the platform sends the
//! SA (its webhooks), and of every answer of a UCWA event channel (the
//! widget's long poll). Both have the same shape:
//!
//! ```json
//! {"_links": {"self": {...}, "next": {...}},
//!  "sender": [{"rel": "service:conversation", "href": "...",
//!              "events": [{"link": {"rel": "service:message", "href": "..."},
//!                          "type": "completed", "status": "Success",
//!                          "_embedded": {"service:message": {...}}}]}],
//!  "baseuri": "https://webpoolbl20r04.infra.lync.com"}
//! ```
//!
//! Members this crate does not know are ignored; every known one is
//! written back.

use serde::{Deserialize, Serialize};

use crate::{Embedded, ErrorBody, EventType, Link, Links, OperationStatus, Rel, Resource};

/// An events envelope.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Events {
    #[serde(rename = "_links", default, skip_serializing_if = "Option::is_none")]
    links: Option<Links>,
    /// Who the events are about, in order; empty for a heartbeat.
    #[serde(default)]
    pub sender: Vec<Sender>,
    /// The absolute origin relative hrefs resolve against (callbacks only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseuri: Option<String>,
}

/// The resource a group of events comes from (`communication`, a
/// `conversation`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sender {
    /// The sender's rel, such as `service:conversation`.
    pub rel: Rel,
    /// The sender resource.
    pub href: String,
    /// Its events, in the order they happened.
    #[serde(default)]
    pub events: Vec<Event>,
}

/// One event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The resource the event is about.
    pub link: EventLink,
    /// The collection the target joined or left (`typingParticipants`).
    #[serde(rename = "in", default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<EventLink>,
    /// What happened.
    #[serde(rename = "type")]
    pub kind: EventType,
    /// The outcome of a completed operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<OperationStatus>,
    /// Why an operation failed or a resource changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<ErrorBody>,
    #[serde(rename = "_embedded", default, skip_serializing_if = "Option::is_none")]
    embedded: Option<Embedded>,
}

/// The `link` or `in` of an event: a rel, an href and an optional title.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventLink {
    /// The target's rel.
    pub rel: Rel,
    /// The target.
    pub href: String,
    /// A label: a participant's name (possibly empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

impl EventLink {
    /// A link to `href` under `rel`.
    pub fn new(rel: Rel, href: impl Into<String>) -> Self {
        Self {
            rel,
            href: href.into(),
            title: None,
        }
    }

    /// The same target as a HAL [`Link`], to resolve it.
    pub fn to_link(&self) -> Link {
        let mut link = Link::new(self.href.clone());
        link.title.clone_from(&self.title);
        link
    }
}

impl Events {
    /// An envelope of `sender` groups.
    pub fn new(sender: Vec<Sender>) -> Self {
        Self {
            links: None,
            sender,
            baseuri: None,
        }
    }

    /// The `_links` (empty if there were none).
    pub fn links(&self) -> &Links {
        static NONE: Links = Links::new();
        self.links.as_ref().unwrap_or(&NONE)
    }

    /// The `_links`, for changing them.
    pub fn links_mut(&mut self) -> &mut Links {
        self.links.get_or_insert_with(Links::new)
    }

    /// The link to the next poll of an event channel (which acknowledges
    /// this answer).
    pub fn next(&self) -> Option<&Link> {
        self.links().get(&Rel::parse("next"))
    }

    /// The link an event channel gives instead of `next` after a wrong
    /// `ack`: follow it and drop what was cached.
    pub fn resync(&self) -> Option<&Link> {
        self.links().get(&Rel::parse("resync"))
    }

    /// The link an event channel gives instead of `next` after a long
    /// idleness (the conversations were reset).
    pub fn resume(&self) -> Option<&Link> {
        self.links().get(&Rel::parse("resume"))
    }

    /// Whether this is a heartbeat: no sender, no event.
    pub fn is_heartbeat(&self) -> bool {
        self.sender.iter().all(|s| s.events.is_empty())
    }

    /// Every event with its sender, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&Sender, &Event)> {
        self.sender
            .iter()
            .flat_map(|s| s.events.iter().map(move |e| (s, e)))
    }

    /// How many events the envelope holds.
    pub fn len(&self) -> usize {
        self.sender.iter().map(|s| s.events.len()).sum()
    }

    /// Whether it holds no event.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Sender {
    /// A sender group.
    pub fn new(rel: Rel, href: impl Into<String>, events: Vec<Event>) -> Self {
        Self {
            rel,
            href: href.into(),
            events,
        }
    }
}

impl Event {
    /// An event of `kind` about `link`.
    pub fn new(link: EventLink, kind: EventType) -> Self {
        Self {
            link,
            collection: None,
            kind,
            status: None,
            reason: None,
            embedded: None,
        }
    }

    /// The `_embedded` resources (empty for a `deleted` event).
    pub fn embedded(&self) -> &Embedded {
        static NONE: Embedded = Embedded::new();
        self.embedded.as_ref().unwrap_or(&NONE)
    }

    /// The embedded copy of the target: the resource embedded under the
    /// link's rel (in either namespace), else the only one embedded.
    pub fn target(&self) -> Option<&Resource> {
        let embedded = self.embedded();
        embedded
            .get(&self.link.rel)
            .or_else(|| embedded.find(self.link.rel.local_name()).map(|(_, r)| r))
            .or_else(|| {
                let mut all = embedded.iter();
                match (all.next(), all.next()) {
                    (Some((_, only)), None) => only.first(),
                    _ => None,
                }
            })
    }

    /// The embedded copy of the target, as a typed resource.
    pub fn target_as<T: From<Resource>>(&self) -> Option<T> {
        self.target().cloned().map(T::from)
    }

    /// Whether the event is about a resource of this local name (either
    /// namespace).
    pub fn is_about(&self, local_name: &str) -> bool {
        self.link.rel.has_local_name(local_name)
    }

    /// Whether the target joined or left a collection of this local name.
    pub fn is_in(&self, local_name: &str) -> bool {
        self.collection
            .as_ref()
            .is_some_and(|c| c.rel.has_local_name(local_name))
    }

    /// Embeds a copy of the target (builder style).
    pub fn with_target(mut self, resource: Resource) -> Self {
        self.embedded
            .get_or_insert_with(Embedded::new)
            .insert(self.link.rel.clone(), resource);
        self
    }

    /// Sets the collection (builder style).
    pub fn within(mut self, collection: EventLink) -> Self {
        self.collection = Some(collection);
        self
    }

    /// Sets the status, and the reason of a failure (builder style).
    pub fn with_status(mut self, status: OperationStatus, reason: Option<ErrorBody>) -> Self {
        self.status = Some(status);
        self.reason = reason;
        self
    }
}
