//! Plans made by `GetFlightInfo`, kept briefly for the `DoGet` that redeems their ticket.
//!
//! A Flight SQL query is a `GetFlightInfo` (plan, answer with a ticket) followed at once by
//! a `DoGet` (redeem the ticket, run it). Planning builds the caller's catalog and a table
//! provider per table read, which for a short query on a lake of many files costs as much as
//! running it; the `DoGet` that comes right after takes the plan made for its ticket instead
//! of planning again. Keyed by the signed ticket, so a plan only ever serves the exact
//! ticket it was made for (same caller, SQL and pinned versions). A ticket redeemed twice,
//! late or on another replica is planned again, as before.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::Planned;

/// Plans kept at most; the oldest goes first.
const CAPACITY: usize = 32;
/// A plan not taken by then was for a ticket redeemed late, or never.
const KEEP: Duration = Duration::from_secs(10);

#[derive(Default)]
pub struct PlanCache {
    entries: Mutex<VecDeque<Entry>>,
}

struct Entry {
    ticket: Vec<u8>,
    made: Instant,
    planned: Planned,
}

impl std::fmt::Debug for PlanCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlanCache")
            .field("entries", &self.lock().len())
            .finish()
    }
}

impl PlanCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn put(&self, ticket: Vec<u8>, planned: Planned) {
        self.put_at(ticket, planned, Instant::now());
    }

    /// The plan made for `ticket`, if it is still here; it is then gone.
    pub fn take(&self, ticket: &[u8]) -> Option<Planned> {
        self.take_at(ticket, Instant::now())
    }

    fn put_at(&self, ticket: Vec<u8>, planned: Planned, now: Instant) {
        let mut entries = self.lock();
        entries.retain(|e| now.duration_since(e.made) < KEEP);
        if entries.len() == CAPACITY {
            entries.pop_front();
        }
        entries.push_back(Entry {
            ticket,
            made: now,
            planned,
        });
    }

    fn take_at(&self, ticket: &[u8], now: Instant) -> Option<Planned> {
        let mut entries = self.lock();
        let at = entries.iter().position(|e| e.ticket == ticket)?;
        let entry = entries.remove(at)?;
        (now.duration_since(entry.made) < KEEP).then_some(entry.planned)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::datatypes::Schema;
    use datafusion::prelude::SessionContext;

    use super::*;

    async fn planned(sql: &str) -> Planned {
        let frame = SessionContext::new().sql(sql).await.unwrap();
        Planned {
            frame,
            schema: Arc::new(Schema::empty()),
            versions: Vec::new(),
        }
    }

    async fn sql_of(planned: Option<Planned>) -> Option<String> {
        let plan = planned?.frame.into_unoptimized_plan();
        Some(format!("{}", plan.display()))
    }

    #[tokio::test]
    async fn a_plan_serves_its_own_ticket_once() {
        let cache = PlanCache::default();
        cache.put(b"ticket-a".to_vec(), planned("SELECT 1 AS a").await);
        cache.put(b"ticket-b".to_vec(), planned("SELECT 2 AS b").await);
        let a = sql_of(cache.take(b"ticket-a")).await.expect("kept");
        assert!(a.contains("AS a"), "{a}");
        assert!(cache.take(b"ticket-a").is_none(), "taken once");
        assert!(cache.take(b"ticket-c").is_none());
        assert!(cache.take(b"ticket-b").is_some());
    }

    #[tokio::test]
    async fn old_plans_are_not_served_and_the_cache_stays_bounded() {
        let cache = PlanCache::default();
        let start = Instant::now();
        cache.put_at(b"late".to_vec(), planned("SELECT 1").await, start);
        assert!(cache.take_at(b"late", start + KEEP).is_none());

        for i in 0..CAPACITY + 5 {
            cache.put_at(
                format!("t{i}").into_bytes(),
                planned("SELECT 1").await,
                start,
            );
        }
        assert_eq!(cache.lock().len(), CAPACITY);
        assert!(
            cache.take_at(b"t0", start).is_none(),
            "the oldest went first"
        );
        assert!(cache
            .take_at(format!("t{}", CAPACITY + 4).as_bytes(), start)
            .is_some());
    }
}
