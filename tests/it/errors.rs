use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_flight::{FlightData, FlightDescriptor};
use futures::StreamExt;
use tonic::Code;

use crate::fixture::*;

async fn put_err(
    server: &TestServer,
    token: &str,
    tenant: Option<&str>,
    dataset: &str,
    batch: RecordBatch,
) -> (Code, String) {
    let mut client = server.client(token).await;
    let err = client.put(tenant, dataset, vec![batch]).await.unwrap_err();
    (status_of(&err), err.to_string())
}

#[tokio::test]
async fn bad_inputs_get_the_status_a_client_can_act_on() {
    let server = TestServer::start().await;
    let good = || snowplow_batch("web", fixed_now(), 2, "e");

    let wrong_type = RecordBatch::try_from_iter(vec![
        (
            "app_id",
            Arc::new(StringArray::from(vec!["web"])) as ArrayRef,
        ),
        (
            "collector_tstamp",
            Arc::new(TimestampMicrosecondArray::from(vec![0]).with_timezone("UTC")),
        ),
        ("event_id", Arc::new(Int64Array::from(vec![1]))),
    ])
    .unwrap();
    let (code, msg) = put_err(&server, ACME, None, "snowplow", wrong_type).await;
    assert_eq!(code, Code::InvalidArgument);
    assert!(msg.contains("event_id"), "{msg}");

    let missing = good().project(&[0, 1]).unwrap();
    let (code, msg) = put_err(&server, ACME, None, "snowplow", missing).await;
    assert_eq!(code, Code::InvalidArgument);
    assert!(msg.contains("event_id"), "{msg}");

    let unknown_column = RecordBatch::try_from_iter(
        good()
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .zip(good().columns().iter().cloned())
            .chain([(
                "bogus_col".to_string(),
                Arc::new(StringArray::from(vec!["x", "y"])) as ArrayRef,
            )]),
    )
    .unwrap();
    let (code, msg) = put_err(&server, ACME, None, "snowplow", unknown_column).await;
    assert_eq!(code, Code::InvalidArgument);
    assert!(msg.contains("bogus_col"), "{msg}");

    let (code, msg) = put_err(&server, ACME, None, "nosuch", good()).await;
    assert_eq!(code, Code::NotFound, "{msg}");

    for bad in ["Snowplow", "_rejected", "a/b", ""] {
        let (code, msg) = put_err(&server, ACME, None, bad, good()).await;
        assert_eq!(code, Code::InvalidArgument, "{bad}: {msg}");
    }
    let (code, _) = put_err(&server, ADMIN, Some("Bad Tenant"), "snowplow", good()).await;
    assert_eq!(code, Code::InvalidArgument);

    let (code, _) = put_err(&server, "not-a-token", None, "snowplow", good()).await;
    assert_eq!(code, Code::Unauthenticated);
    let mut anonymous = server.anonymous().await;
    let err = anonymous
        .put(None, "snowplow", vec![good()])
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), Code::Unauthenticated);

    let (code, msg) = put_err(&server, ACME, Some("beta"), "snowplow", good()).await;
    assert_eq!(code, Code::PermissionDenied, "{msg}");

    assert!(
        !server.table_path("acme", "snowplow").exists()
            || server.files_on_disk("acme", "snowplow").is_empty()
    );
    assert!(!server.table_path("beta", "snowplow").exists());
    server.shutdown().await;
}

#[tokio::test]
async fn malformed_ipc_empty_streams_and_schema_changes_are_invalid_argument() {
    let server = TestServer::start().await;
    let mut client = server.client(ACME).await;
    let descriptor = FlightDescriptor::new_path(vec!["snowplow".into()]);

    let garbage = FlightData::new()
        .with_descriptor(descriptor.clone())
        .with_data_header(bytes::Bytes::from_static(b"\x01\x02not flatbuffers at all"));
    let err = collect_put(&mut client, vec![garbage]).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");

    let err = collect_put(&mut client, vec![]).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");

    let first = snowplow_batch("web", fixed_now(), 2, "a");
    let second = first.project(&[0, 1, 2]).unwrap();
    let mut messages =
        arrow_flight::utils::batches_to_flight_data(&first.schema(), vec![first]).unwrap();
    messages[0] = messages[0].clone().with_descriptor(descriptor);
    messages.extend(
        arrow_flight::utils::batches_to_flight_data(&second.schema(), vec![second]).unwrap(),
    );
    let err = collect_put(&mut client, messages).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("schema changed"),
        "{}",
        err.message()
    );
    assert!(
        !server
            .table_path("acme", "snowplow")
            .join("_delta_log")
            .exists(),
        "nothing half-written"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn oversize_messages_are_resource_exhausted() {
    let server = TestServer::start_with(|c| c.ingest.max_message_size = 64 * 1024).await;
    let mut client = server.client(ACME).await;
    let err = client
        .put(
            None,
            "snowplow",
            vec![snowplow_batch("web", fixed_now(), 20_000, "big")],
        )
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), Code::ResourceExhausted, "{err}");
    // A stream whose second message is too large fails the same way, and commits nothing.
    let small = snowplow_batch("web", fixed_now(), 2, "small");
    let big = snowplow_batch("web", fixed_now(), 20_000, "big");
    let err = client
        .put(None, "snowplow", vec![small, big])
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), Code::ResourceExhausted, "{err}");
    assert!(!server
        .table_path("acme", "snowplow")
        .join("_delta_log")
        .exists());
    server.shutdown().await;
}

async fn collect_put(
    client: &mut lakeport_client::Client,
    messages: Vec<FlightData>,
) -> Result<(), tonic::Status> {
    let stream = futures::stream::iter(messages.into_iter().map(Ok));
    let to_status = |e: arrow_flight::error::FlightError| match e {
        arrow_flight::error::FlightError::Tonic(s) => *s,
        other => tonic::Status::unknown(other.to_string()),
    };
    let mut results = client.flight().do_put(stream).await.map_err(to_status)?;
    while let Some(item) = results.next().await {
        item.map_err(to_status)?;
    }
    Ok(())
}
