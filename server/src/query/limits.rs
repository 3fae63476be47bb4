//! Per-caller concurrency and per-query time limits around a running query's stream.
//!
//! Each tenant (and the admin) has its own slots, so one caller's burst never takes
//! another's place. A query beyond its caller's slots waits in that caller's queue, first
//! come first served (tokio's semaphore is fair), for up to the queue timeout; a client
//! that goes away while queued drops its place in the queue with it.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::Result as DfResult;
use datafusion::execution::RecordBatchStream;
use datafusion::physical_plan::SendableRecordBatchStream;
use futures::Stream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;

use super::QueryError;

/// At most `per_caller` queries at once for each tenant (and for the admin); more wait in
/// line for up to `queue_timeout`.
#[derive(Debug)]
pub struct ConcurrencyLimit {
    per_caller: usize,
    queue_timeout: Duration,
    slots: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl ConcurrencyLimit {
    pub fn new(per_caller: usize, queue_timeout: Duration) -> Self {
        Self {
            per_caller,
            queue_timeout,
            slots: Mutex::default(),
        }
    }

    /// A slot for `who`, held until the permit is dropped (when the result stream ends or
    /// the client goes away); waits in `who`'s queue while all its slots are taken.
    pub async fn acquire(&self, who: &str) -> Result<OwnedSemaphorePermit, QueryError> {
        let semaphore = self
            .slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(who.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_caller)))
            .clone();
        if let Ok(permit) = semaphore.clone().try_acquire_owned() {
            return Ok(permit);
        }
        let _queued = super::metrics::Queued::enter(who);
        match tokio::time::timeout(self.queue_timeout, semaphore.acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            // The semaphore is never closed; treat it like a full queue all the same.
            Ok(Err(_)) | Err(_) => Err(QueryError::TooManyQueries {
                who: who.to_string(),
                limit: self.per_caller,
                waited: self.queue_timeout,
            }),
        }
    }
}

/// A query's result stream that holds its concurrency slot and ends with a timeout error
/// once its deadline passes. Dropping it cancels the query.
pub struct LimitedStream {
    inner: SendableRecordBatchStream,
    deadline: Pin<Box<Sleep>>,
    timeout: Duration,
    timed_out: bool,
    _slot: OwnedSemaphorePermit,
}

impl LimitedStream {
    pub fn new(
        inner: SendableRecordBatchStream,
        timeout: Duration,
        slot: OwnedSemaphorePermit,
    ) -> Self {
        Self {
            inner,
            deadline: Box::pin(tokio::time::sleep(timeout)),
            timeout,
            timed_out: false,
            _slot: slot,
        }
    }
}

impl Stream for LimitedStream {
    type Item = DfResult<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.timed_out {
            return Poll::Ready(None);
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            self.timed_out = true;
            let timeout = self.timeout;
            return Poll::Ready(Some(Err(QueryError::Timeout(timeout).into_datafusion())));
        }
        self.inner.as_mut().poll_next(cx)
    }
}

impl RecordBatchStream for LimitedStream {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAIT: Duration = Duration::from_secs(30);

    /// A query of `who` started in the background; it queues while `who`'s slots are taken.
    async fn queue_behind(
        limit: &Arc<ConcurrencyLimit>,
        who: &'static str,
    ) -> tokio::task::JoinHandle<Result<(), QueryError>> {
        let limit = limit.clone();
        let queued = tokio::spawn(async move { limit.acquire(who).await.map(drop) });
        tokio::task::yield_now().await;
        queued
    }

    #[tokio::test(start_paused = true)]
    async fn slots_are_per_caller_and_come_back() {
        let limit = ConcurrencyLimit::new(1, WAIT);
        let first = limit.acquire("tenant:acme").await.unwrap();
        let _other = limit.acquire("tenant:beta").await.unwrap();
        drop(first);
        let _again = limit.acquire("tenant:acme").await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_query_beyond_the_slots_waits_then_gives_up_after_the_queue_timeout() {
        let limit = ConcurrencyLimit::new(1, WAIT);
        let _running = limit.acquire("tenant:acme").await.unwrap();
        let started = tokio::time::Instant::now();
        let refused = limit.acquire("tenant:acme").await;
        assert!(matches!(
            refused,
            Err(QueryError::TooManyQueries { limit: 1, waited, .. }) if waited == WAIT
        ));
        assert_eq!(started.elapsed(), WAIT, "it waited the whole queue timeout");
    }

    #[tokio::test(start_paused = true)]
    async fn queued_queries_run_in_arrival_order() {
        let limit = Arc::new(ConcurrencyLimit::new(1, WAIT));
        let running = limit.acquire("tenant:acme").await.unwrap();
        let (order_tx, mut order_rx) = tokio::sync::mpsc::unbounded_channel();
        for n in 0..3 {
            let (limit, order_tx) = (limit.clone(), order_tx.clone());
            tokio::spawn(async move {
                let _slot = limit.acquire("tenant:acme").await.unwrap();
                order_tx.send(n).unwrap();
                tokio::time::sleep(Duration::from_millis(10)).await;
            });
            // Queue them one after the other.
            tokio::task::yield_now().await;
        }
        drop(running);
        let mut order = Vec::new();
        for _ in 0..3 {
            order.push(order_rx.recv().await.unwrap());
        }
        assert_eq!(order, [0, 1, 2]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_queued_query_that_is_cancelled_frees_its_place() {
        let limit = Arc::new(ConcurrencyLimit::new(1, WAIT));
        let running = limit.acquire("tenant:acme").await.unwrap();
        let queued = queue_behind(&limit, "tenant:acme").await;
        queued.abort();
        assert!(queued.await.unwrap_err().is_cancelled());
        drop(running);
        let started = tokio::time::Instant::now();
        let _next = limit.acquire("tenant:acme").await.unwrap();
        assert_eq!(
            started.elapsed(),
            Duration::ZERO,
            "the cancelled query no longer holds a place in line"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn one_callers_queue_does_not_delay_another() {
        let limit = Arc::new(ConcurrencyLimit::new(1, WAIT));
        let _running = limit.acquire("tenant:acme").await.unwrap();
        let _queued = queue_behind(&limit, "tenant:acme").await;
        let started = tokio::time::Instant::now();
        let _beta = limit.acquire("tenant:beta").await.unwrap();
        assert_eq!(started.elapsed(), Duration::ZERO);
    }
}
