//! The memory all streams may hold together (`ingest.memory_limit`): the rows of their
//! units, and the receive buffer each stream keeps at the size of its largest message. A
//! stream reserves before it buffers and gives rows back once their files are written, its
//! receive buffer when it ends; when the budget is used up the stream waits (backpressure on
//! the producer), nothing fails.
//!
//! Receive buffers take at most half the budget. A buffer is only given back when its stream
//! ends, so without that share streams holding buffers could leave no room for any rows and
//! wait on each other forever; with it, rows always have half the budget to come back to.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The budget counts KiB, so a limit up to the semaphore's maximum fits.
const UNIT: usize = 1024;

#[derive(Debug, Clone)]
pub struct MemoryBudget {
    semaphore: Arc<Semaphore>,
    capacity: usize,
    /// The receive buffers' share; a buffer holds permits of both semaphores.
    buffers: Arc<Semaphore>,
    buffer_capacity: usize,
}

/// Memory held by a unit or a receive buffer; returned to the budget on drop.
#[derive(Debug, Default)]
pub struct Reservation {
    memory: Option<OwnedSemaphorePermit>,
    share: Option<OwnedSemaphorePermit>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the ingest memory budget is closed")]
pub struct BudgetClosed;

impl MemoryBudget {
    pub fn new(limit_bytes: usize) -> Self {
        let capacity = (limit_bytes / UNIT).clamp(2, Semaphore::MAX_PERMITS);
        let buffer_capacity = capacity / 2;
        Self {
            semaphore: Arc::new(Semaphore::new(capacity)),
            capacity,
            buffers: Arc::new(Semaphore::new(buffer_capacity)),
            buffer_capacity,
        }
    }

    /// A request above its part of the budget takes all of that part, so it still
    /// proceeds alone.
    fn units(bytes: usize, capacity: usize) -> u32 {
        bytes
            .div_ceil(UNIT)
            .clamp(1, capacity.min(u32::MAX as usize)) as u32
    }

    /// Rows can always have what buffers cannot take, so a stream holding a full-share
    /// buffer still gets the rows of a message above half the budget.
    fn row_units(&self, bytes: usize) -> u32 {
        Self::units(bytes, self.capacity - self.buffer_capacity)
    }

    /// Bytes reserved right now (rows and receive buffers), in whole budget units.
    pub fn in_use(&self) -> usize {
        (self.capacity - self.semaphore.available_permits()) * UNIT
    }

    /// Reserves rows' memory without waiting; `None` when the budget has not enough left.
    pub fn try_reserve(&self, bytes: usize) -> Option<Reservation> {
        try_acquire(&self.semaphore, self.row_units(bytes)).map(Reservation::rows)
    }

    /// Waits until `bytes` are free. Waiters are served in order, so a large reservation
    /// is not starved by small ones.
    pub async fn reserve(&self, bytes: usize) -> Result<Reservation, BudgetClosed> {
        acquire(&self.semaphore, self.row_units(bytes))
            .await
            .map(Reservation::rows)
    }

    fn buffer_units(&self, bytes: usize) -> u32 {
        Self::units(bytes, self.buffer_capacity)
    }

    /// What a receive buffer for a `bytes` message holds: rounded up to the budget's unit,
    /// at most the buffers' share.
    pub fn buffer_size(&self, bytes: usize) -> usize {
        self.buffer_units(bytes) as usize * UNIT
    }

    /// Reserves receive-buffer memory without waiting, from the buffers' share and the budget.
    pub fn try_reserve_buffer(&self, bytes: usize) -> Option<Reservation> {
        let units = self.buffer_units(bytes);
        let share = try_acquire(&self.buffers, units)?;
        let memory = try_acquire(&self.semaphore, units)?;
        Some(Reservation::buffer(memory, share))
    }

    /// Waits for receive-buffer memory: first a place in the buffers' share, then the budget.
    pub async fn reserve_buffer(&self, bytes: usize) -> Result<Reservation, BudgetClosed> {
        let units = self.buffer_units(bytes);
        let share = acquire(&self.buffers, units).await?;
        let memory = acquire(&self.semaphore, units).await?;
        Ok(Reservation::buffer(memory, share))
    }

    /// Bytes free now (rounded down to the budget's unit).
    #[cfg(test)]
    fn available(&self) -> usize {
        self.semaphore.available_permits() * UNIT
    }
}

fn try_acquire(semaphore: &Arc<Semaphore>, units: u32) -> Option<OwnedSemaphorePermit> {
    semaphore.clone().try_acquire_many_owned(units).ok()
}

async fn acquire(
    semaphore: &Arc<Semaphore>,
    units: u32,
) -> Result<OwnedSemaphorePermit, BudgetClosed> {
    semaphore
        .clone()
        .acquire_many_owned(units)
        .await
        .map_err(|_| BudgetClosed)
}

impl Reservation {
    fn rows(memory: OwnedSemaphorePermit) -> Self {
        Self {
            memory: Some(memory),
            share: None,
        }
    }

    /// A receive buffer holds its place in the buffers' share as well as its memory.
    fn buffer(memory: OwnedSemaphorePermit, share: OwnedSemaphorePermit) -> Self {
        Self {
            memory: Some(memory),
            share: Some(share),
        }
    }

    /// The bytes held (a multiple of the budget's unit).
    pub fn bytes(&self) -> usize {
        self.memory.as_ref().map_or(0, |p| p.num_permits() * UNIT)
    }

    /// Adds `other` to this reservation; both are released together.
    pub fn merge(&mut self, other: Reservation) {
        fn join(held: &mut Option<OwnedSemaphorePermit>, more: Option<OwnedSemaphorePermit>) {
            match (held.as_mut(), more) {
                (Some(held), Some(more)) => held.merge(more),
                (None, more) => *held = more,
                (_, None) => {}
            }
        }
        join(&mut self.memory, other.memory);
        join(&mut self.share, other.share);
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
        held.merge(budget.try_reserve(5 * UNIT).unwrap());
        held.merge(budget.try_reserve(1).unwrap());
        assert_eq!(budget.available(), 0);
        assert!(budget.try_reserve(1).is_none());
        drop(held);
        assert_eq!(budget.available(), 10 * UNIT);
    }

    #[test]
    fn a_message_larger_than_the_budget_takes_each_half_of_it() {
        let budget = MemoryBudget::new(10 * UNIT);
        let buffer = budget.try_reserve_buffer(1 << 30).unwrap();
        let rows = budget.try_reserve(1 << 30).unwrap();
        assert_eq!(budget.available(), 0);
        assert_eq!(
            budget.buffer_size(1 << 30),
            buffer.bytes(),
            "it is already as large as it gets"
        );
        drop((buffer, rows));
        assert!(budget.try_reserve(1 << 30).is_some());
    }

    #[tokio::test]
    async fn a_stream_waits_for_memory_instead_of_failing() {
        let budget = MemoryBudget::new(10 * UNIT);
        let mut held = budget.try_reserve(4 * UNIT).unwrap();
        held.merge(budget.try_reserve(4 * UNIT).unwrap());
        let mut waiting = Box::pin(budget.reserve(4 * UNIT));
        assert!((&mut waiting).now_or_never().is_none(), "must wait");
        drop(held);
        let got = waiting.await.expect("granted once memory is back");
        assert_eq!(budget.available(), 6 * UNIT);
        drop(got);
    }

    #[test]
    fn receive_buffers_take_at_most_half_the_budget() {
        let budget = MemoryBudget::new(10 * UNIT);
        let mut buffers = budget.try_reserve_buffer(3 * UNIT).unwrap();
        buffers.merge(budget.try_reserve_buffer(2 * UNIT).unwrap());
        assert!(
            budget.try_reserve_buffer(1).is_none(),
            "the share is used up"
        );
        assert_eq!(budget.available(), 5 * UNIT);
        let rows = budget
            .try_reserve(5 * UNIT)
            .expect("rows keep the other half");
        drop(buffers);
        assert_eq!(budget.available(), 5 * UNIT);
        assert!(budget.try_reserve_buffer(5 * UNIT).is_some());
        drop(rows);
    }

    #[tokio::test]
    async fn a_buffer_waits_for_its_share_and_then_for_the_budget() {
        let budget = MemoryBudget::new(10 * UNIT);
        let mut rows = budget.try_reserve(5 * UNIT).unwrap();
        rows.merge(budget.try_reserve(4 * UNIT).unwrap());
        let mut waiting = Box::pin(budget.reserve_buffer(2 * UNIT));
        assert!(
            (&mut waiting).now_or_never().is_none(),
            "must wait for rows to go"
        );
        drop(rows);
        let buffer = waiting.await.expect("granted once memory is back");
        assert_eq!(buffer.bytes(), 2 * UNIT);
        assert_eq!(budget.available(), 8 * UNIT);
    }
}
