use std::time::Duration;

use futures::StreamExt;
use lakeport_client::IngestAck;

use crate::fixture::*;

#[tokio::test]
async fn put_commits_every_row_and_acks_it() {
    let server = TestServer::start().await;
    let mut client = server.client(ACME).await;
    let batches = vec![
        snowplow_batch("web", fixed_now(), 10, "a"),
        snowplow_batch("web", fixed_now(), 5, "b"),
    ];
    let acks = client.put(None, "snowplow", batches).await.unwrap();
    let committed: u64 = acks.iter().map(|a| a.rows_committed).sum();
    assert_eq!(committed, 15);
    let last = acks.last().unwrap();
    assert_eq!(
        (last.tenant.as_str(), last.dataset.as_str()),
        ("acme", "snowplow")
    );
    assert_eq!(last.table_version, 0);
    assert_eq!(server.count("acme", "snowplow").await, 15);
    server.shutdown().await;
}

#[tokio::test]
async fn admin_names_the_tenant_and_tables_appear_on_first_write() {
    let server = TestServer::start_with(|c| c.tenancy.auto_provision = Some(true)).await;
    let mut admin = server.client(ADMIN).await;
    admin
        .put(
            Some("newcomer"),
            "snowplow",
            vec![snowplow_batch("app", fixed_now(), 3, "x")],
        )
        .await
        .unwrap();
    assert_eq!(server.count("newcomer", "snowplow").await, 3);
    let err = admin
        .put(
            None,
            "snowplow",
            vec![snowplow_batch("app", fixed_now(), 1, "x")],
        )
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), tonic::Code::InvalidArgument);
    assert!(err.to_string().contains("[tenant, dataset]"), "{err}");
    server.shutdown().await;
}

#[tokio::test]
async fn concurrent_puts_share_group_commits() {
    let server =
        TestServer::start_with(|c| c.ingest.commit_interval = Duration::from_secs(1)).await;
    let puts = (0..8).map(|i| {
        let endpoint = server.endpoint();
        async move {
            let mut client = lakeport_client::Client::connect(&endpoint)
                .await
                .unwrap()
                .with_token(ACME);
            client
                .put(
                    None,
                    "snowplow",
                    vec![snowplow_batch("web", fixed_now(), 100, &format!("p{i}"))],
                )
                .await
                .unwrap()
        }
    });
    let acks: Vec<Vec<IngestAck>> = futures::future::join_all(puts).await;
    let versions: std::collections::BTreeSet<i64> =
        acks.iter().flatten().map(|a| a.table_version).collect();
    assert!(
        versions.len() < 8,
        "8 puts within one interval must share commits, got versions {versions:?}"
    );
    assert_eq!(server.count("acme", "snowplow").await, 800);
    server.shutdown().await;
}

#[tokio::test]
async fn a_schema_only_stream_commits_nothing_and_acks_zero() {
    let server = TestServer::start().await;
    let mut client = server.client(ACME).await;
    let descriptor = arrow_flight::FlightDescriptor::new_path(vec!["snowplow".into()]);
    let schema = snowplow_batch("web", fixed_now(), 1, "s").schema();
    let options = Default::default();
    let schema_only = arrow_flight::SchemaAsIpc::new(&schema, &options);
    let data = arrow_flight::FlightData::from(schema_only).with_descriptor(descriptor);
    let results: Vec<_> = client
        .flight()
        .do_put(futures::stream::iter([Ok(data)]))
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(results.len(), 1);
    let ack: IngestAck =
        prost::Message::decode(results[0].as_ref().unwrap().app_metadata.as_ref()).unwrap();
    assert_eq!((ack.rows_committed, ack.table_version), (0, -1));
    assert!(!server
        .table_path("acme", "snowplow")
        .join("_delta_log")
        .exists());
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_drains_a_put_in_flight() {
    let server = TestServer::start().await;
    let mut client = server.client(ACME).await;
    let (tx, rx) = futures::channel::mpsc::unbounded();
    tx.unbounded_send((snowplow_batch("web", fixed_now(), 4, "first"), None))
        .unwrap();
    let descriptor = arrow_flight::FlightDescriptor::new_path(vec!["snowplow".into()]);
    // do_put returns once the server has answered with headers: the call is in flight.
    let results = client
        .flight()
        .do_put(lakeport_client::encode(descriptor, rx))
        .await
        .unwrap();
    server.begin_shutdown();
    tx.unbounded_send((snowplow_batch("web", fixed_now(), 6, "second"), None))
        .unwrap();
    drop(tx);
    let results: Vec<_> = results.collect().await;
    let committed: u64 = results
        .iter()
        .map(|r| {
            let ack: IngestAck =
                prost::Message::decode(r.as_ref().unwrap().app_metadata.as_ref()).unwrap();
            ack.rows_committed
        })
        .sum();
    assert_eq!(committed, 10);
    assert_eq!(server.count("acme", "snowplow").await, 10);
    server.shutdown().await;
}

#[tokio::test]
async fn each_unit_is_acknowledged_while_the_stream_is_still_open() {
    let server = TestServer::start_with(|c| c.ingest.flush_size = 1).await;
    let mut client = server.client(ACME).await;
    let (tx, rx) = futures::channel::mpsc::unbounded();
    tx.unbounded_send((snowplow_batch("web", fixed_now(), 3, "u1"), None))
        .unwrap();
    let descriptor = arrow_flight::FlightDescriptor::new_path(vec!["snowplow".into()]);
    let mut results = client
        .flight()
        .do_put(lakeport_client::encode(descriptor, rx))
        .await
        .unwrap();
    // The producer sends nothing more until the first unit is acknowledged.
    let first = tokio::time::timeout(Duration::from_secs(60), results.next())
        .await
        .expect("an ack while the stream is open")
        .unwrap()
        .unwrap();
    let ack: IngestAck = prost::Message::decode(first.app_metadata.as_ref()).unwrap();
    assert_eq!(ack.rows_committed, 3);
    tx.unbounded_send((snowplow_batch("web", fixed_now(), 2, "u2"), None))
        .unwrap();
    drop(tx);
    let rest: Vec<_> = results.collect().await;
    assert_eq!(rest.len(), 1);
    assert_eq!(server.count("acme", "snowplow").await, 5);
    server.shutdown().await;
}
