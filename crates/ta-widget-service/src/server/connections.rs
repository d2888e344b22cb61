//! The open connections of one accept loop: how many, from which address,
//! and which may be dropped to make room.
//!
//! A connection is *waiting* from its accept until its first request head
//! is complete, *busy* while a request is being answered, and *idle*
//! between requests. At the cap, a new connection takes the place of the
//! oldest waiting one (a client that never finishes its head holds nothing
//! it may keep), else of the oldest idle one; when every connection is
//! busy, the new one is closed.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::task::AbortHandle;

use crate::metrics::ConnectionMetrics;

/// Why a connection was closed at accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refused {
    /// Its address holds its share of connections already.
    PerClient,
    /// Every connection is busy.
    Full,
}

impl Refused {
    pub(super) fn label(self) -> &'static str {
        match self {
            Self::PerClient => "per_client",
            Self::Full => "full",
        }
    }
}

/// What a connection's task reports about it.
#[derive(Debug, Default)]
pub(super) struct Activity {
    /// Whether a request head has been complete on it.
    started: AtomicBool,
    /// Requests being answered on it.
    in_flight: AtomicUsize,
}

impl Activity {
    /// A request head is complete: the request goes to the router. The
    /// connection is busy until the guard is dropped (hold it until the
    /// response's body is sent or given up).
    pub(super) fn request_began(self: &Arc<Self>) -> RequestGuard {
        self.started.store(true, Ordering::Release);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        RequestGuard(Arc::clone(self))
    }

    /// Whether a request head was ever complete on it.
    pub(super) fn started(&self) -> bool {
        self.started.load(Ordering::Acquire)
    }

    fn idle(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
    }
}

/// A request being answered on a connection; dropped when its response's
/// body is done (or the request is given up: a reset stream, a panic).
#[derive(Debug)]
pub(super) struct RequestGuard(Arc<Activity>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let _ = self
            .0
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }
}

struct Entry {
    ip: IpAddr,
    activity: Arc<Activity>,
    abort: Option<AbortHandle>,
}

#[derive(Default)]
struct Table {
    next: u64,
    /// By id, which is the order of accept: the oldest first.
    open: BTreeMap<u64, Entry>,
    per_ip: HashMap<IpAddr, usize>,
}

impl Table {
    fn remove(&mut self, id: u64) -> Option<Entry> {
        let entry = self.open.remove(&id)?;
        if let Some(count) = self.per_ip.get_mut(&entry.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.per_ip.remove(&entry.ip);
            }
        }
        Some(entry)
    }

    /// The oldest waiting connection, else the oldest idle one.
    fn evictable(&self) -> Option<u64> {
        let waiting = self
            .open
            .iter()
            .find(|(_, e)| !e.activity.started())
            .map(|(id, _)| *id);
        waiting.or_else(|| {
            self.open
                .iter()
                .find(|(_, e)| e.activity.idle())
                .map(|(id, _)| *id)
        })
    }
}

/// The open connections, with the caps.
pub(super) struct Registry {
    table: Mutex<Table>,
    max: usize,
    per_client: usize,
    exempt: Vec<IpAddr>,
    metrics: Option<ConnectionMetrics>,
}

impl Registry {
    /// At most `max` connections (at least one), `per_client` from one
    /// address (0: no such cap) except from the `exempt` ones.
    pub(super) fn new(
        max: usize,
        per_client: usize,
        exempt: Vec<IpAddr>,
        metrics: Option<ConnectionMetrics>,
    ) -> Arc<Self> {
        Arc::new(Self {
            table: Mutex::new(Table::default()),
            max: max.max(1),
            per_client,
            exempt: exempt.into_iter().map(canonical).collect(),
            metrics,
        })
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits a connection from `ip`, making room at the cap; the ticket
    /// frees its place when dropped.
    pub(super) fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Ticket, Refused> {
        let mut table = self.table();
        let ip = canonical(ip);
        let from_ip = table.per_ip.get(&ip).copied().unwrap_or(0);
        if self.per_client > 0 && from_ip >= self.per_client && !self.exempt.contains(&ip) {
            drop(table);
            self.count_refused(Refused::PerClient);
            return Err(Refused::PerClient);
        }
        if table.open.len() >= self.max {
            let Some(id) = table.evictable() else {
                drop(table);
                self.count_refused(Refused::Full);
                return Err(Refused::Full);
            };
            if let Some(entry) = table.remove(id) {
                if let Some(abort) = entry.abort {
                    abort.abort();
                }
                if let Some(m) = &self.metrics {
                    m.dropped("evicted");
                }
            }
        }
        let id = table.next;
        table.next += 1;
        let activity = Arc::new(Activity::default());
        table.open.insert(
            id,
            Entry {
                ip,
                activity: Arc::clone(&activity),
                abort: None,
            },
        );
        *table.per_ip.entry(ip).or_insert(0) += 1;
        // Under the lock, so that the gauge follows the table's order.
        self.set_gauge(table.open.len());
        drop(table);
        Ok(Ticket {
            id,
            activity,
            registry: Arc::clone(self),
        })
    }

    /// Frees the oldest waiting connection, if any (a descriptor for the
    /// accept loop when the process has none left). Whether one was.
    pub(super) fn shed_waiting(&self) -> bool {
        let mut table = self.table();
        let oldest = table
            .open
            .iter()
            .find(|(_, e)| !e.activity.started())
            .map(|(id, _)| *id);
        let Some(entry) = oldest.and_then(|id| table.remove(id)) else {
            return false;
        };
        self.set_gauge(table.open.len());
        drop(table);
        if let Some(abort) = entry.abort {
            abort.abort();
        }
        if let Some(m) = &self.metrics {
            m.dropped("evicted");
        }
        true
    }

    /// Lets the registry stop connection `id`'s task to make room.
    pub(super) fn set_abort(&self, id: u64, abort: &AbortHandle) {
        let mut table = self.table();
        if let Some(entry) = table.open.get_mut(&id) {
            entry.abort = Some(abort.clone());
        }
        // Else it ended already. (It cannot have been evicted before its
        // task was known: the accept loop admits the next connection only
        // after this.)
    }

    /// How many connections are open.
    #[cfg(test)]
    fn open(&self) -> usize {
        self.table().open.len()
    }

    fn set_gauge(&self, open: usize) {
        if let Some(m) = &self.metrics {
            m.open.set(i64::try_from(open).unwrap_or(i64::MAX));
        }
    }

    fn count_refused(&self, why: Refused) {
        if let Some(m) = &self.metrics {
            m.refused(why.label());
        }
    }

    pub(super) fn count_dropped(&self, reason: &'static str) {
        if let Some(m) = &self.metrics {
            m.dropped(reason);
        }
    }

    pub(super) fn count_accept_error(&self) {
        if let Some(m) = &self.metrics {
            m.accept_errors.inc();
        }
    }
}

/// An IPv4 address mapped into IPv6 counts as the IPv4 one.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// One admitted connection's place; freed when dropped.
pub(super) struct Ticket {
    id: u64,
    activity: Arc<Activity>,
    registry: Arc<Registry>,
}

impl Ticket {
    /// What the connection's requests report.
    pub(super) fn activity(&self) -> Arc<Activity> {
        Arc::clone(&self.activity)
    }

    /// Its id, for [`Registry::set_abort`].
    pub(super) fn id(&self) -> u64 {
        self.id
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut table = self.registry.table();
        if table.remove(self.id).is_some() {
            self.registry.set_gauge(table.open.len());
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

    #[test]
    fn at_the_cap_the_oldest_waiting_then_the_oldest_idle_make_room() {
        let registry = Registry::new(3, 0, Vec::new(), None);
        let first = registry.admit(A).unwrap();
        let second = registry.admit(A).unwrap();
        let third = registry.admit(A).unwrap();
        // The first is busy, the second idle after a request, the third waits.
        let _busy = first.activity().request_began();
        drop(second.activity().request_began());
        let fourth = registry.admit(A).unwrap();
        assert_eq!(registry.open(), 3);
        assert!(
            !registry.table().open.contains_key(&third.id),
            "the waiting one went"
        );
        let _fourth_busy = fourth.activity().request_began();
        let _fifth = registry.admit(A).unwrap();
        assert!(
            !registry.table().open.contains_key(&second.id),
            "then the idle one"
        );
        // All busy now but the fifth, which waits: it goes next; with every
        // one busy, a new one is refused.
        let sixth = registry.admit(A).unwrap();
        let _sixth_busy = sixth.activity().request_began();
        assert_eq!(registry.admit(A).err(), Some(Refused::Full));
        // A ticket dropped frees its place.
        drop(first);
        assert_eq!(registry.open(), 2);
        assert!(registry.admit(A).is_ok());
        drop((second, third));
    }

    #[test]
    fn one_address_holds_its_share_unless_exempt() {
        let mapped = IpAddr::V6(Ipv4Addr::new(127, 0, 0, 1).to_ipv6_mapped());
        let registry = Registry::new(10, 2, vec![B], None);
        let _a1 = registry.admit(A).unwrap();
        let _a2 = registry.admit(mapped).unwrap();
        assert_eq!(registry.admit(A).err(), Some(Refused::PerClient));
        let exempt: Vec<_> = (0..5).map(|_| registry.admit(B).unwrap()).collect();
        assert_eq!(exempt.len(), 5);
        assert!(registry.admit(IpAddr::V6(Ipv6Addr::LOCALHOST)).is_ok());
    }

    #[test]
    fn shedding_frees_only_a_waiting_connection() {
        let registry = Registry::new(10, 0, Vec::new(), None);
        let busy = registry.admit(A).unwrap();
        let _request = busy.activity().request_began();
        assert!(!registry.shed_waiting());
        let _waiting = registry.admit(A).unwrap();
        assert!(registry.shed_waiting());
        assert_eq!(registry.open(), 1);
    }
}
