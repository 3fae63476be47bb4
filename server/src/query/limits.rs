//! Per-caller concurrency and per-query time limits around a running query's stream.

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

/// At most `per_caller` queries at once for each tenant (and for the admin).
#[derive(Debug)]
pub struct ConcurrencyLimit {
    per_caller: usize,
    slots: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl ConcurrencyLimit {
    pub fn new(per_caller: usize) -> Self {
        Self {
            per_caller,
            slots: Mutex::default(),
        }
    }

    /// A slot for `who`, held until the permit is dropped (when the result stream ends or
    /// the client goes away).
    pub fn acquire(&self, who: &str) -> Result<OwnedSemaphorePermit, QueryError> {
        let semaphore = self
            .slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(who.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_caller)))
            .clone();
        semaphore
            .try_acquire_owned()
            .map_err(|_| QueryError::TooManyQueries {
                who: who.to_string(),
                limit: self.per_caller,
            })
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

    #[test]
    fn slots_are_per_caller_and_come_back() {
        let limit = ConcurrencyLimit::new(1);
        let first = limit.acquire("tenant:acme").unwrap();
        assert!(matches!(
            limit.acquire("tenant:acme"),
            Err(QueryError::TooManyQueries { limit: 1, .. })
        ));
        let _other = limit.acquire("tenant:beta").unwrap();
        drop(first);
        let _again = limit.acquire("tenant:acme").unwrap();
    }
}
