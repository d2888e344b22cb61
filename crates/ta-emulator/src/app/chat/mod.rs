//! The chat's emulated world: UCWA's anonymous applications for the
//! widget ([`widget`]), the platform's calls and callbacks for the SA
//! ([`platform`], [`deliver`]), the simulated agents ([`agents`]) and the
//! platform's timers ([`timers`]), over one [`world::World`].

mod agents;
mod bridging;
mod channel;
pub(crate) mod deliver;
mod meeting;
mod paths;
pub(super) mod platform;
mod timers;
mod visitor;
pub(super) mod widget;
pub(crate) mod world;
