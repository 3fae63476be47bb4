use crate::fixture::*;

#[tokio::test]
async fn retried_sequences_are_skipped_and_counted_never_duplicated() {
    let server = TestServer::start().await;
    let mut client = server.client(ACME).await;
    let batches: Vec<_> = (0..5)
        .map(|i| snowplow_batch("web", fixed_now(), 10, &format!("b{i}")))
        .collect();

    let acks = client
        .put_sequenced(None, "snowplow", "producer-1", 0, batches.clone())
        .await
        .unwrap();
    assert_eq!(acks.iter().map(|a| a.rows_committed).sum::<u64>(), 50);
    assert_eq!(acks.last().unwrap().last_sequence, 4);

    // The whole upload again: every row is a duplicate.
    let acks = client
        .put_sequenced(None, "snowplow", "producer-1", 0, batches.clone())
        .await
        .unwrap();
    assert_eq!(acks.iter().map(|a| a.rows_committed).sum::<u64>(), 0);
    assert_eq!(acks.iter().map(|a| a.duplicates_skipped).sum::<u64>(), 50);

    // An overlapping resume: sequences 3..=6, of which 5 and 6 are new.
    let more: Vec<_> = (3..7)
        .map(|i| snowplow_batch("web", fixed_now(), 10, &format!("b{i}")))
        .collect();
    let acks = client
        .put_sequenced(None, "snowplow", "producer-1", 3, more)
        .await
        .unwrap();
    assert_eq!(acks.iter().map(|a| a.rows_committed).sum::<u64>(), 20);
    assert_eq!(acks.iter().map(|a| a.duplicates_skipped).sum::<u64>(), 20);

    // Another producer has its own sequence space.
    let acks = client
        .put_sequenced(None, "snowplow", "producer-2", 0, batches[..1].to_vec())
        .await
        .unwrap();
    assert_eq!(acks.iter().map(|a| a.rows_committed).sum::<u64>(), 10);

    assert_eq!(server.count("acme", "snowplow").await, 80);
    let table = server.table("acme", "snowplow").await;
    let snapshot = table.snapshot().unwrap();
    let log_store = table.log_store();
    assert_eq!(
        snapshot
            .transaction_version(log_store.as_ref(), "producer-1")
            .await
            .unwrap(),
        Some(6)
    );
    assert_eq!(
        snapshot
            .transaction_version(log_store.as_ref(), "producer-2")
            .await
            .unwrap(),
        Some(0)
    );
    server.shutdown().await;
}

#[tokio::test]
async fn json_ingest_metadata_is_accepted() {
    let server = TestServer::start().await;
    let mut client = server.client(ACME).await;
    let batch = snowplow_batch("web", fixed_now(), 3, "j");
    for _ in 0..2 {
        let descriptor = arrow_flight::FlightDescriptor::new_path(vec!["snowplow".into()]);
        let mut messages =
            arrow_flight::utils::batches_to_flight_data(&batch.schema(), vec![batch.clone()])
                .unwrap();
        messages[0] = messages[0].clone().with_descriptor(descriptor);
        messages[1].app_metadata =
            bytes::Bytes::from_static(br#"{"producer_id": "json-producer", "sequence": 1}"#);
        let stream = futures::stream::iter(messages.into_iter().map(Ok));
        use futures::TryStreamExt;
        client
            .flight()
            .do_put(stream)
            .await
            .unwrap()
            .try_collect::<Vec<_>>()
            .await
            .unwrap();
    }
    assert_eq!(server.count("acme", "snowplow").await, 3);
    server.shutdown().await;
}
