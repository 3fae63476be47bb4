//! The ingest engine's timing and memory knobs, seen from a client: `flush_interval`
//! commits rows of a stream that stays open, and a memory budget smaller than one batch
//! makes producers wait for each other instead of failing.

use std::time::Duration;

use arrow_flight::FlightDescriptor;
use futures::StreamExt;
use lakeport_client::{encode, SequencedBatch};
use lakeport_proto::IngestAck;
use prost::Message;
use tokio::sync::mpsc;

use crate::fixture::*;

#[tokio::test]
async fn flush_interval_commits_rows_of_a_stream_that_stays_open() {
    let server = TestServer::start_with(|c| {
        c.ingest.flush_interval = Duration::from_millis(20);
    })
    .await;
    let mut client = server.client(ACME).await;
    let (tx, rx) = mpsc::channel::<SequencedBatch>(4);
    let descriptor = FlightDescriptor::new_path(vec!["snowplow".into()]);
    let batches = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|batch| (batch, rx))
    });
    let data = encode(descriptor, batches);
    let put = tokio::spawn(async move {
        let mut results = client.flight().do_put(data).await.unwrap();
        let first = results.next().await.expect("an ack").unwrap();
        (
            IngestAck::decode(first.app_metadata.as_ref()).unwrap(),
            results,
        )
    });
    tx.send((snowplow_batch("web", fixed_now(), 7, "open"), None))
        .await
        .unwrap();
    // The stream stays open (`tx` is alive): only the flush interval can commit the rows.
    let (ack, mut results) = tokio::time::timeout(Duration::from_secs(60), put)
        .await
        .expect("an ack before the stream ends")
        .unwrap();
    assert_eq!(ack.rows_committed, 7);
    assert_eq!(server.count("acme", "snowplow").await, 7);
    drop(tx);
    while let Some(result) = results.next().await {
        result.unwrap();
    }
}

#[tokio::test]
async fn producers_wait_for_memory_and_nothing_fails() {
    // Each batch is larger than the whole budget, so units go one at a time.
    let server = TestServer::start_with(|c| {
        c.ingest.memory_limit = 4 << 10;
        c.ingest.flush_size = 1;
    })
    .await;
    let mut tasks = Vec::new();
    for p in 0..4 {
        let mut client = server.client(ACME).await;
        tasks.push(tokio::spawn(async move {
            let batches: Vec<_> = (0..5)
                .map(|i| snowplow_batch("web", fixed_now(), 50, &format!("p{p}-{i}")))
                .collect();
            client
                .put_sequenced(None, "snowplow", &format!("producer-{p}"), 0, batches)
                .await
        }));
    }
    for task in tasks {
        let acks = task
            .await
            .unwrap()
            .expect("a producer over budget waits, it does not fail");
        assert_eq!(acks.iter().map(|a| a.rows_committed).sum::<u64>(), 250);
    }
    assert_eq!(server.count("acme", "snowplow").await, 1_000);
}
