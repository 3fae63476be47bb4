//! When a table's committer commits: at once when no other unit is on its way to the table,
//! otherwise when those units arrive or `commit_interval` after the previous commit,
//! whichever is first. Concurrent units share commits, a busy table sees at most one commit
//! per interval, and a unit on an idle table commits without waiting.
//!
//! A unit is "on its way" from its first buffered row until it is queued at the committer,
//! announced by an [`IncomingUnit`] it holds. One small put on an idle table is the only
//! such unit, so it commits at once; eight producers putting at once have their units join
//! one commit as soon as the last of them is queued.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// What the committer does with the units it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    CommitNow,
    /// Wait for the units on their way until this instant.
    WaitUntil(Instant),
}

/// The pure scheduling rule, fed with the committer's clock readings.
#[derive(Debug, Clone)]
pub struct CommitSchedule {
    interval: Duration,
    last_commit: Option<Instant>,
}

impl CommitSchedule {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            last_commit: None,
        }
    }

    /// `incoming`: units announced for the table and not queued yet.
    pub fn decide(&self, now: Instant, incoming: usize) -> Decision {
        let due = match self.last_commit {
            Some(last) => last + self.interval,
            None => now,
        };
        if incoming == 0 || now >= due {
            Decision::CommitNow
        } else {
            Decision::WaitUntil(due)
        }
    }

    pub fn committed_at(&mut self, at: Instant) {
        self.last_commit = Some(at);
    }
}

/// Units on their way to one table's committer.
#[derive(Debug, Default)]
pub struct Incoming {
    count: AtomicUsize,
    /// Wakes a committer waiting for units once one has arrived or was given up.
    arrived: Notify,
}

impl Incoming {
    pub fn announce(self: &Arc<Self>) -> IncomingUnit {
        self.count.fetch_add(1, Ordering::SeqCst);
        IncomingUnit(self.clone())
    }

    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    pub async fn arrived(&self) {
        self.arrived.notified().await
    }
}

/// Held by a unit from its first row until it is queued (or dropped on failure).
#[derive(Debug)]
pub struct IncomingUnit(Arc<Incoming>);

impl Drop for IncomingUnit {
    fn drop(&mut self) {
        self.0.count.fetch_sub(1, Ordering::SeqCst);
        // `notify_one` keeps a permit when the committer is not waiting yet.
        self.0.arrived.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERVAL: Duration = Duration::from_secs(1);

    #[test]
    fn the_first_unit_of_a_table_commits_at_once() {
        let schedule = CommitSchedule::new(INTERVAL);
        assert_eq!(schedule.decide(Instant::now(), 4), Decision::CommitNow);
    }

    #[test]
    fn a_unit_nobody_else_follows_commits_right_after_a_commit() {
        let mut schedule = CommitSchedule::new(INTERVAL);
        let t0 = Instant::now();
        schedule.committed_at(t0);
        let soon = t0 + Duration::from_millis(5);
        assert_eq!(schedule.decide(soon, 0), Decision::CommitNow);
    }

    #[test]
    fn units_wait_for_units_on_their_way_until_the_interval() {
        let mut schedule = CommitSchedule::new(INTERVAL);
        let t0 = Instant::now();
        schedule.committed_at(t0);
        let soon = t0 + Duration::from_millis(5);
        assert_eq!(schedule.decide(soon, 3), Decision::WaitUntil(t0 + INTERVAL));
        assert_eq!(schedule.decide(t0 + INTERVAL, 3), Decision::CommitNow);
    }

    #[test]
    fn a_unit_is_on_its_way_until_its_announcement_drops() {
        let incoming = Arc::new(Incoming::default());
        let a = incoming.announce();
        let _b = incoming.announce();
        assert_eq!(incoming.count(), 2);
        drop(a);
        assert_eq!(incoming.count(), 1);
    }
}
