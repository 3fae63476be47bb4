//! `collector.dedupe_window`: the event ids (`eid`) a tenant's Snowplow requests committed
//! recently, so a tracker's resend of a batch whose answer it never got lands each event
//! once. Trackers send no Idempotency-Key; they resend the same events with the same `eid`.
//! An event is claimed before its request lands and recorded once the request committed;
//! a resend that meets a claimed event answers 503 (the first may yet fail), one that meets
//! a committed event drops it. Memory is bounded by `dedupe_max_events`: beyond it the
//! oldest ids leave before their window ends. The ids live in this process only: a resend
//! to another replica, or after a restart, is not recognised (see docs/collector.md).

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A tenant (by hash) and an event id.
type Key = (u64, u128);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// A request holding it is landing.
    Claimed,
    /// Committed at this instant.
    Committed(Instant),
}

#[derive(Debug, Default)]
struct Ids {
    seen: HashMap<Key, Seen>,
    /// Committed ids, oldest first, for expiry.
    order: VecDeque<(Instant, Key)>,
}

pub(crate) struct RecentEvents {
    window: Duration,
    max_events: usize,
    hasher: std::collections::hash_map::RandomState,
    ids: Mutex<Ids>,
}

/// What a request's events are, against what was seen.
#[derive(Debug)]
pub(crate) enum Check {
    /// Keep the events at these positions; the rest were committed already. The claim
    /// records the kept ids as committed on `committed()`, and releases them when dropped
    /// without.
    Fresh { keep: Vec<usize>, claim: Claim },
    /// As many events are still landing through an earlier request.
    InFlight(usize),
}

/// The ids a request claimed.
#[derive(Debug)]
pub(crate) struct Claim {
    recent: Option<Arc<RecentEvents>>,
    keys: Vec<Key>,
}

impl std::fmt::Debug for RecentEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecentEvents")
            .field("window", &self.window)
            .field("max_events", &self.max_events)
            .finish_non_exhaustive()
    }
}

impl RecentEvents {
    /// `None` when the window is zero (off).
    pub(crate) fn new(window: Duration, max_events: usize) -> Option<Arc<Self>> {
        (!window.is_zero() && max_events > 0).then(|| {
            Arc::new(Self {
                window,
                max_events,
                hasher: Default::default(),
                ids: Mutex::new(Ids::default()),
            })
        })
    }

    fn key(&self, tenant: &str, eid: u128) -> Key {
        (self.hasher.hash_one(tenant), eid)
    }

    /// Checks the events' ids (`None` for an id that is no UUID: never a duplicate) and
    /// claims the new ones.
    pub(crate) fn check(self: &Arc<Self>, tenant: &str, eids: &[Option<u128>]) -> Check {
        self.check_at(tenant, eids, Instant::now())
    }

    fn check_at(self: &Arc<Self>, tenant: &str, eids: &[Option<u128>], now: Instant) -> Check {
        let mut ids = self.ids.lock().unwrap_or_else(|p| p.into_inner());
        self.expire(&mut ids, now);
        let keys: Vec<Option<Key>> = eids
            .iter()
            .map(|e| e.map(|eid| self.key(tenant, eid)))
            .collect();
        let in_flight = keys
            .iter()
            .flatten()
            .filter(|k| ids.seen.get(k) == Some(&Seen::Claimed))
            .count();
        if in_flight > 0 {
            return Check::InFlight(in_flight);
        }
        let mut keep = Vec::new();
        let mut claimed = Vec::new();
        for (at, key) in keys.into_iter().enumerate() {
            match key {
                Some(key) if ids.seen.contains_key(&key) => {}
                Some(key) => {
                    ids.seen.insert(key, Seen::Claimed);
                    claimed.push(key);
                    keep.push(at);
                }
                None => keep.push(at),
            }
        }
        Check::Fresh {
            keep,
            claim: Claim {
                recent: Some(self.clone()),
                keys: claimed,
            },
        }
    }

    /// Drops committed ids past the window, and the oldest beyond `max_events`.
    fn expire(&self, ids: &mut Ids, now: Instant) {
        while let Some((at, key)) = ids.order.front().copied() {
            if now.duration_since(at) < self.window && ids.order.len() <= self.max_events {
                break;
            }
            ids.order.pop_front();
            if ids.seen.get(&key) == Some(&Seen::Committed(at)) {
                ids.seen.remove(&key);
            }
        }
    }
}

impl Claim {
    /// The request committed: its ids are duplicates for the window from now.
    pub(crate) fn committed(mut self) {
        self.committed_at(Instant::now());
    }

    fn committed_at(&mut self, now: Instant) {
        let Some(recent) = self.recent.take() else {
            return;
        };
        let mut ids = recent.ids.lock().unwrap_or_else(|p| p.into_inner());
        for key in std::mem::take(&mut self.keys) {
            ids.seen.insert(key, Seen::Committed(now));
            ids.order.push_back((now, key));
        }
        recent.expire(&mut ids, now);
    }
}

impl Drop for Claim {
    /// Not committed: a resend may land the events again.
    fn drop(&mut self) {
        let Some(recent) = self.recent.take() else {
            return;
        };
        let mut ids = recent.ids.lock().unwrap_or_else(|p| p.into_inner());
        for key in &self.keys {
            if ids.seen.get(key) == Some(&Seen::Claimed) {
                ids.seen.remove(key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh(check: Check) -> (Vec<usize>, Claim) {
        match check {
            Check::Fresh { keep, claim } => (keep, claim),
            Check::InFlight(n) => panic!("{n} in flight"),
        }
    }

    #[test]
    fn a_committed_event_is_dropped_from_a_resend_within_the_window() {
        let recent = RecentEvents::new(Duration::from_secs(60), 100).unwrap();
        let t0 = Instant::now();
        let (keep, mut claim) = fresh(recent.check_at("acme", &[Some(1), Some(2), None], t0));
        assert_eq!(keep, [0, 1, 2]);
        claim.committed_at(t0);
        let (keep, _) = fresh(recent.check_at("acme", &[Some(2), Some(3), None], t0));
        assert_eq!(
            keep,
            [1, 2],
            "2 was committed; an event without a UUID always lands"
        );
        let (keep, _) = fresh(recent.check_at("beta", &[Some(1)], t0));
        assert_eq!(keep, [0], "another tenant's ids are its own");
        let later = t0 + Duration::from_secs(61);
        let (keep, _) = fresh(recent.check_at("acme", &[Some(1)], later));
        assert_eq!(keep, [0], "past the window");
    }

    #[test]
    fn a_resend_while_the_first_is_landing_waits_and_a_failed_one_releases_its_ids() {
        let recent = RecentEvents::new(Duration::from_secs(60), 100).unwrap();
        let t0 = Instant::now();
        let (_, claim) = fresh(recent.check_at("acme", &[Some(1), Some(2)], t0));
        assert!(matches!(
            recent.check_at("acme", &[Some(2), Some(3)], t0),
            Check::InFlight(1)
        ));
        drop(claim);
        let (keep, _) = fresh(recent.check_at("acme", &[Some(2), Some(3)], t0));
        assert_eq!(keep, [0, 1], "the failed request's ids are free again");
    }

    #[test]
    fn the_oldest_ids_leave_beyond_the_limit() {
        let recent = RecentEvents::new(Duration::from_secs(60), 2).unwrap();
        let t0 = Instant::now();
        for eid in 1..=3u128 {
            let (_, mut claim) = fresh(recent.check_at("acme", &[Some(eid)], t0));
            claim.committed_at(t0);
        }
        let ids = recent.ids.lock().unwrap();
        assert!(ids.order.len() < 2 + 1 && ids.seen.len() == ids.order.len());
        drop(ids);
        let (keep, _) = fresh(recent.check_at("acme", &[Some(1), Some(3)], t0));
        assert_eq!(keep, [0], "1 left to make room; 3 is still known");
    }
}
