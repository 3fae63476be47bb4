//! The memory all streams' buffers may hold together (`ingest.memory_limit`). A stream
//! reserves what it buffers and gives it back once its unit's files are written; when the
//! budget is used up, the stream waits (backpressure on the producer), nothing fails.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The budget counts KiB, so a limit up to the semaphore's maximum fits.
const UNIT: usize = 1024;

#[derive(Debug, Clone)]
pub struct MemoryBudget {
    semaphore: Arc<Semaphore>,
    capacity: usize,
}

/// Memory held by one unit; returned to the budget on drop.
#[derive(Debug, Default)]
pub struct Reservation(Option<OwnedSemaphorePermit>);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the ingest memory budget is closed")]
pub struct BudgetClosed;

impl MemoryBudget {
    pub fn new(limit_bytes: usize) -> Self {
        let capacity = (limit_bytes / UNIT).clamp(1, Semaphore::MAX_PERMITS);
        Self {
            semaphore: Arc::new(Semaphore::new(capacity)),
            capacity,
        }
    }

    /// A request above the whole budget takes the whole budget, so it still proceeds alone.
    fn units(&self, bytes: usize) -> u32 {
        bytes
            .div_ceil(UNIT)
            .clamp(1, self.capacity.min(u32::MAX as usize)) as u32
    }

    /// Reserves without waiting; `None` when the budget has not enough left.
    pub fn try_reserve(&self, bytes: usize) -> Option<Reservation> {
        self.semaphore
            .clone()
            .try_acquire_many_owned(self.units(bytes))
            .ok()
            .map(|p| Reservation(Some(p)))
    }

    /// Waits until `bytes` are free. Waiters are served in order, so a large reservation
    /// is not starved by small ones.
    pub async fn reserve(&self, bytes: usize) -> Result<Reservation, BudgetClosed> {
        self.semaphore
            .clone()
            .acquire_many_owned(self.units(bytes))
            .await
            .map(|p| Reservation(Some(p)))
            .map_err(|_| BudgetClosed)
    }

    /// Bytes free now (rounded down to the budget's unit).
    #[cfg(test)]
    fn available(&self) -> usize {
        self.semaphore.available_permits() * UNIT
    }
}

impl Reservation {
    /// The bytes held (a multiple of the budget's unit).
    pub fn bytes(&self) -> usize {
        self.0.as_ref().map_or(0, |p| p.num_permits() * UNIT)
    }

    /// Adds `other` to this reservation; both are released together.
    pub fn merge(&mut self, other: Reservation) {
        match (&mut self.0, other.0) {
            (Some(held), Some(more)) => held.merge(more),
            (None, more) => self.0 = more,
            (_, None) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;

    use super::*;

    #[test]
    fn reservations_come_back_on_drop() {
        let budget = MemoryBudget::new(10 * UNIT);
        let mut held = budget.try_reserve(4 * UNIT).unwrap();
        held.merge(budget.try_reserve(5 * UNIT + 1).unwrap());
        assert_eq!(budget.available(), 0);
        assert!(budget.try_reserve(1).is_none());
        drop(held);
        assert_eq!(budget.available(), 10 * UNIT);
    }

    #[test]
    fn a_request_larger_than_the_budget_takes_all_of_it() {
        let budget = MemoryBudget::new(10 * UNIT);
        let all = budget.try_reserve(1 << 30).unwrap();
        assert_eq!(budget.available(), 0);
        drop(all);
        assert!(budget.try_reserve(1 << 30).is_some());
    }

    #[tokio::test]
    async fn a_stream_waits_for_memory_instead_of_failing() {
        let budget = MemoryBudget::new(10 * UNIT);
        let held = budget.try_reserve(8 * UNIT).unwrap();
        let mut waiting = Box::pin(budget.reserve(4 * UNIT));
        assert!((&mut waiting).now_or_never().is_none(), "must wait");
        drop(held);
        let got = waiting.await.expect("granted once memory is back");
        assert_eq!(budget.available(), 6 * UNIT);
        drop(got);
    }
}
