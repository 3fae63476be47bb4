use std::sync::Arc;

use arrow::array::{
    ArrayRef, Int16Array, Int32Array, RecordBatch, StringArray, TimestampNanosecondArray,
};

use crate::fixture::*;

fn clicks(ts: Vec<&str>, extra: Option<(&str, ArrayRef)>) -> RecordBatch {
    let n = ts.len();
    let mut columns: Vec<(String, ArrayRef)> = vec![
        ("ts".into(), Arc::new(StringArray::from(ts)) as ArrayRef),
        ("app".into(), Arc::new(StringArray::from(vec!["shop"; n]))),
    ];
    if let Some((name, array)) = extra {
        columns.push((name.to_string(), array));
    }
    RecordBatch::try_from_iter(columns).unwrap()
}

#[tokio::test]
async fn custom_datasets_grow_new_columns_as_nullable() {
    let server = TestServer::start().await;
    let mut client = server.client(ACME).await;
    client
        .put(
            None,
            "clicks",
            vec![clicks(vec!["2024-05-01T10:00:00Z"], None)],
        )
        .await
        .unwrap();
    let with_price = clicks(
        vec!["2024-05-01T11:00:00Z"],
        Some(("price", Arc::new(Int32Array::from(vec![7])))),
    );
    client.put(None, "clicks", vec![with_price]).await.unwrap();

    let rows = server
        .query(
            "acme",
            "clicks",
            "SELECT app, app_id, price FROM t ORDER BY ts",
        )
        .await;
    let text = arrow::util::pretty::pretty_format_batches(&rows)
        .unwrap()
        .to_string();
    assert!(text.contains("| shop | shop   |       |"), "{text}");
    assert!(text.contains("| shop | shop   | 7     |"), "{text}");

    // The column now exists as Int32: a narrowing-free widening is fine, text is not.
    let as_text = clicks(
        vec!["2024-05-01T11:00:00Z"],
        Some(("price", Arc::new(StringArray::from(vec!["7"])))),
    );
    let err = client.put(None, "clicks", vec![as_text]).await.unwrap_err();
    assert_eq!(status_of(&err), tonic::Code::InvalidArgument);
    assert!(err.to_string().contains("price"), "{err}");
    server.shutdown().await;
}

#[tokio::test]
async fn rows_without_a_usable_event_time_go_to_the_dead_letter_table() {
    let server = TestServer::start().await;
    let mut client = server.client(ACME).await;
    let batch = clicks(
        vec![
            "2024-05-01T10:00:00Z",
            "not a time",
            "2024-05-01T10:30:00+02:00",
        ],
        None,
    );
    let acks = client
        .put_sequenced(None, "clicks", "p", 1, vec![batch.clone()])
        .await
        .unwrap();
    assert_eq!(acks.iter().map(|a| a.rows_committed).sum::<u64>(), 2);
    assert_eq!(acks.iter().map(|a| a.rows_rejected).sum::<u64>(), 1);

    let rejected = server
        .query(
            "acme",
            "_rejected",
            "SELECT dataset, reason, producer_id, sequence, \"row\" FROM t",
        )
        .await;
    let text = arrow::util::pretty::pretty_format_batches(&rejected)
        .unwrap()
        .to_string();
    assert!(
        text.contains("unparseable event time in column ts"),
        "{text}"
    );
    assert!(text.contains(r#""ts":"not a time""#), "{text}");
    assert!(text.contains("| clicks "), "{text}");

    // A retry skips both the committed rows and the rejected one.
    let acks = client
        .put_sequenced(None, "clicks", "p", 1, vec![batch])
        .await
        .unwrap();
    assert_eq!(acks.iter().map(|a| a.duplicates_skipped).sum::<u64>(), 3);
    assert_eq!(server.count("acme", "_rejected").await, 1);
    assert_eq!(server.count("acme", "clicks").await, 2);
    server.shutdown().await;
}

#[tokio::test]
async fn lossless_casts_store_microsecond_utc_timestamps() {
    let server = TestServer::start().await;
    let mut client = server.client(ACME).await;
    let nanos = fixed_now().timestamp_nanos_opt().unwrap() + 123_456_789;
    let batch = RecordBatch::try_from_iter(vec![
        (
            "app_id",
            Arc::new(StringArray::from(vec!["web"])) as ArrayRef,
        ),
        (
            "collector_tstamp",
            Arc::new(TimestampNanosecondArray::from(vec![nanos])),
        ),
        ("event_id", Arc::new(StringArray::from(vec!["e"]))),
        ("txn_id", Arc::new(Int16Array::from(vec![5]))),
    ])
    .unwrap();
    client.put(None, "snowplow", vec![batch]).await.unwrap();
    let rows = server
        .query(
            "acme",
            "snowplow",
            "SELECT CAST(collector_tstamp AS VARCHAR) AS t, txn_id FROM t",
        )
        .await;
    let text = arrow::util::pretty::pretty_format_batches(&rows)
        .unwrap()
        .to_string();
    assert!(text.contains("2024-05-01T10:20:30.123456Z"), "{text}");
    assert!(text.contains("| 5 "), "{text}");
    server.shutdown().await;
}
