//! A tenant's ingest rate applied to a DoPut stream: each record batch message takes its
//! rows (read from the IPC header, without decoding) from the tenant's bucket before the
//! next message is read, so an over-rate producer is slowed by gRPC flow control.

use std::pin::Pin;
use std::sync::Arc;

use arrow_flight::FlightData;
use futures::{Stream, StreamExt};
use tonic::Status;

use crate::tenants::rate::RateLimiter;

pub(super) type DataStream = Pin<Box<dyn Stream<Item = Result<FlightData, Status>> + Send>>;

pub(super) fn throttled<S>(input: S, limiter: Option<Arc<RateLimiter>>) -> DataStream
where
    S: Stream<Item = Result<FlightData, Status>> + Send + 'static,
{
    let Some(limiter) = limiter else {
        return Box::pin(input);
    };
    Box::pin(input.then(move |item| {
        let limiter = limiter.clone();
        async move {
            if let Ok(data) = &item {
                let rows = batch_rows(&data.data_header);
                if rows > 0 {
                    limiter.acquire(rows).await;
                }
            }
            item
        }
    }))
}

/// Rows of a record batch message (0 for a schema, a dictionary or anything unreadable:
/// the decoder reports those).
fn batch_rows(header: &[u8]) -> u64 {
    arrow_ipc::root_as_message(header)
        .ok()
        .and_then(|m| m.header_as_record_batch())
        .map_or(0, |b| b.length().max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;
    use arrow::record_batch::RecordBatch;
    use arrow_flight::encode::FlightDataEncoderBuilder;
    use futures::TryStreamExt;

    #[tokio::test]
    async fn rows_come_from_the_batch_header() {
        let batch =
            RecordBatch::try_from_iter([("n", Arc::new(Int64Array::from(vec![1, 2, 3])) as _)])
                .unwrap();
        let data: Vec<FlightData> = FlightDataEncoderBuilder::new()
            .build(futures::stream::iter([Ok(batch)]))
            .try_collect()
            .await
            .unwrap();
        let rows: Vec<u64> = data.iter().map(|d| batch_rows(&d.data_header)).collect();
        assert_eq!(rows, vec![0, 3], "schema message, then the batch");
    }
}
