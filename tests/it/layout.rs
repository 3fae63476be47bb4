use std::fs::File;

use chrono::{TimeZone, Utc};
use parquet::file::reader::{FileReader, SerializedFileReader};

use crate::fixture::*;

#[tokio::test]
async fn files_land_in_hive_partitions_with_the_fixed_names() {
    let server = TestServer::start().await;
    // File names carry the write time, not the event time.
    server
        .clock
        .set(Utc.with_ymd_and_hms(2024, 6, 2, 3, 4, 5).unwrap());
    let mut client = server.client(ACME).await;
    let hour_10 = Utc.with_ymd_and_hms(2024, 5, 1, 10, 59, 58).unwrap();
    let batches = vec![
        snowplow_batch("web", hour_10, 4, "w"), // 10:59:58 .. 11:00:01 spans two hours
        snowplow_batch("mobile/ios", hour_10, 1, "m"),
    ];
    client.put(None, "snowplow", batches).await.unwrap();

    let root = server.table_path("acme", "snowplow");
    let relative: Vec<String> = server
        .files_on_disk("acme", "snowplow")
        .iter()
        .map(|p| {
            p.strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(relative.len(), 3, "{relative:?}");
    let dirs: Vec<&str> = relative
        .iter()
        .map(|r| r.rsplit_once('/').unwrap().0)
        .collect();
    assert_eq!(
        dirs,
        vec![
            "app_id=mobile%2Fios/year=2024/month=05/day=01/hour=10",
            "app_id=web/year=2024/month=05/day=01/hour=10",
            "app_id=web/year=2024/month=05/day=01/hour=11",
        ]
    );
    for r in &relative {
        let name = r.rsplit_once('/').unwrap().1;
        assert!(
            name.starts_with("data_2024_06_02_03_04_05_") && name.ends_with(".parquet"),
            "{name}"
        );
    }

    let table = server.table("acme", "snowplow").await;
    let snapshot = table.snapshot().unwrap();
    assert_eq!(
        snapshot.metadata().partition_columns().to_vec(),
        vec!["app_id", "year", "month", "day", "hour"]
    );
    let protocol = snapshot.protocol();
    assert!(
        protocol.min_reader_version() <= 3,
        "Snowflake reads reader protocol <= 3"
    );

    let per_partition = server
        .query(
            "acme",
            "snowplow",
            "SELECT app_id, hour, count(*) AS n FROM t GROUP BY app_id, hour ORDER BY app_id, hour",
        )
        .await;
    let text = arrow::util::pretty::pretty_format_batches(&per_partition)
        .unwrap()
        .to_string();
    assert!(text.contains("| mobile/ios | 10   | 1 |"), "{text}");
    assert!(text.contains("| web        | 10   | 2 |"), "{text}");
    assert!(text.contains("| web        | 11   | 2 |"), "{text}");

    let file = File::open(root.join(&relative[1])).unwrap();
    let reader = SerializedFileReader::new(file).unwrap();
    let meta = reader.metadata();
    let columns = meta.row_group(0).columns();
    assert!(columns
        .iter()
        .all(|c| c.compression().to_string().starts_with("ZSTD")));
    let names: Vec<&str> = meta
        .file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .map(|c| c.name())
        .collect();
    assert!(
        !names.contains(&"app_id") && !names.contains(&"hour"),
        "partition columns live in the path"
    );
    let ts = meta
        .file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .find(|c| c.name() == "collector_tstamp")
        .unwrap()
        .logical_type_ref()
        .cloned();
    assert_eq!(
        format!("{ts:?}"),
        "Some(Timestamp(TimestampType { is_adjusted_to_u_t_c: true, unit: MICROS }))"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn add_actions_carry_column_statistics() {
    let server = server_with_three_events().await;
    let log = std::fs::read_to_string(
        server
            .table_path("acme", "snowplow")
            .join("_delta_log/00000000000000000000.json"),
    )
    .unwrap();
    let add = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find_map(|v| v.get("add").cloned())
        .expect("an add action");
    let stats: serde_json::Value = serde_json::from_str(add["stats"].as_str().unwrap()).unwrap();
    assert_eq!(stats["numRecords"], 3);
    assert_eq!(stats["minValues"]["event_id"], "s-0");
    assert_eq!(stats["maxValues"]["event_id"], "s-2");
    assert_eq!(
        stats["minValues"]["collector_tstamp"],
        "2024-05-01T10:20:30.000Z"
    );
    assert_eq!(
        stats["maxValues"]["collector_tstamp"],
        "2024-05-01T10:20:32.000Z"
    );
    assert_eq!(stats["nullCount"]["event"], 0);
    assert!(
        stats["nullCount"].get("page_urlpath").is_none(),
        "columns the producer did not send are not written as all-null columns"
    );
    assert_eq!(add["partitionValues"]["hour"], "10");
    server.shutdown().await;
}

#[tokio::test]
async fn files_written_but_never_committed_stay_invisible() {
    let server = server_with_three_events().await;
    let stray = server.table_path("acme", "snowplow").join(
        "app_id=web/year=2024/month=05/day=01/hour=10/data_2024_05_01_10_20_30_orphan.parquet",
    );
    std::fs::copy(&server.files_on_disk("acme", "snowplow")[0], &stray).unwrap();
    assert_eq!(server.count("acme", "snowplow").await, 3);
    server.shutdown().await;
}

async fn server_with_three_events() -> TestServer {
    let server = TestServer::start().await;
    let batches = vec![snowplow_batch("web", fixed_now(), 3, "s")];
    server
        .client(ACME)
        .await
        .put(None, "snowplow", batches)
        .await
        .unwrap();
    server
}
