//! lakeport's query fast paths (UTC `date_trunc`, fixed intervals as durations, plans kept
//! from GetFlightInfo for DoGet, Parquet reads without a row filter) return exactly what DataFusion's defaults return over the
//! same Delta table, on both lake shapes: many small hour files, and few files of several
//! row groups. Columns cover strings (high and low cardinality, the latter
//! dictionary-encoded by the writer), UTC timestamps and mostly-null values.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::util::pretty::pretty_format_batches;
use futures::TryStreamExt;

use crate::fixture::*;

const ROWS: usize = 6_000;
/// 2024-04-28T00:00:00Z
const START_US: i64 = 1_714_262_400_000_000;

/// `ROWS` clicks spread over `hours` from `START_US`, in `apps` apps.
fn clicks(hours: i64, apps: usize) -> RecordBatch {
    let step = hours * 3_600_000_000 / ROWS as i64;
    let ts: Vec<i64> = (0..ROWS as i64)
        .map(|i| START_US + i * step + (i * 7_919) % 1_000_000)
        .collect();
    let app = ["web", "ios", "android"];
    let kinds = ["view", "click", "scroll", "buy"];
    RecordBatch::try_from_iter(vec![
        (
            "ts",
            Arc::new(TimestampMicrosecondArray::from(ts).with_timezone("UTC")) as ArrayRef,
        ),
        (
            "app",
            Arc::new(StringArray::from_iter_values(
                (0..ROWS).map(|i| app[i * 7 % apps]),
            )),
        ),
        (
            "user_id",
            Arc::new(StringArray::from_iter_values(
                (0..ROWS).map(|i| format!("user-{:04}", i * 31 % 400)),
            )),
        ),
        (
            "kind",
            Arc::new(StringArray::from_iter_values(
                (0..ROWS).map(|i| kinds[i * 13 % 4]),
            )),
        ),
        (
            "note",
            Arc::new(StringArray::from_iter(
                (0..ROWS).map(|i| (i % 10 == 0).then(|| format!("note {}", i % 37))),
            )),
        ),
        (
            "amount",
            Arc::new(Float64Array::from_iter(
                (0..ROWS).map(|i| (i % 3 != 0).then_some(i as f64 / 4.0)),
            )),
        ),
    ])
    .expect("batch")
}

/// Each query, `{t}` standing for the table; every one orders its rows completely.
const QUERIES: &[&str] = &[
    "SELECT app, date_trunc('hour', ts) AS h, count(*) AS n FROM {t} GROUP BY 1, 2 ORDER BY 1, 2",
    "SELECT date_trunc('day', ts) AS d, date_trunc('month', ts) AS m, date_trunc('week', ts) AS w, \
     count(note) AS notes, sum(amount) AS amount FROM {t} GROUP BY 1, 2, 3 ORDER BY 1",
    "SELECT kind, count(*) AS n, count(DISTINCT user_id) AS users FROM {t} \
     WHERE note IS NULL GROUP BY kind ORDER BY kind",
    "SELECT user_id, ts, ts + INTERVAL '30 minutes' AS later, ts - INTERVAL '1 day 2 hours' AS before \
     FROM {t} WHERE kind = 'scroll' AND note IS NOT NULL ORDER BY user_id, ts",
    "WITH o AS (SELECT user_id, ts, lag(ts) OVER (PARTITION BY user_id ORDER BY ts) AS prev FROM {t}) \
     SELECT user_id, sum(CASE WHEN prev IS NULL OR ts > prev + INTERVAL '30 minutes' THEN 1 ELSE 0 END) AS sessions \
     FROM o GROUP BY user_id ORDER BY user_id",
    "SELECT app, count(*) AS n FROM {t} WHERE ts >= '2024-04-28T01:00:00Z' AND ts < '2024-04-28T02:30:00Z' \
     AND (note LIKE 'note 1%' OR amount > 100) GROUP BY app ORDER BY app",
];

async fn same_rows_on(server: &TestServer) {
    let mut client = server.client(ACME).await;
    for sql in QUERIES {
        let (_, stream) = client
            .query(&sql.replace("{t}", "clicks"))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let ours: Vec<RecordBatch> = stream.try_collect().await.expect("lakeport rows");
        let defaults = server
            .query("acme", "clicks", &sql.replace("{t}", "t"))
            .await;
        let ours = pretty_format_batches(&ours).unwrap().to_string();
        let defaults = pretty_format_batches(&defaults).unwrap().to_string();
        assert!(ours.lines().count() > 4, "{sql} returned rows: {ours}");
        assert_eq!(ours, defaults, "{sql}");
    }
}

#[tokio::test]
async fn fast_paths_return_what_datafusion_returns_on_many_small_files() {
    let server = TestServer::start().await;
    let batch = clicks(72, 3);
    let mut client = server.client(ACME).await;
    for part in 0..4 {
        let rows = ROWS / 4;
        client
            .put(None, "clicks", vec![batch.slice(part * rows, rows)])
            .await
            .expect("put");
    }
    assert!(server.files_on_disk("acme", "clicks").len() > 200);
    same_rows_on(&server).await;
}

#[tokio::test]
async fn fast_paths_return_what_datafusion_returns_on_files_of_several_row_groups() {
    let server = TestServer::start_with(|config| config.ingest.row_group_rows = 400).await;
    let mut client = server.client(ACME).await;
    client
        .put(None, "clicks", vec![clicks(3, 2)])
        .await
        .expect("put");
    let files = server.files_on_disk("acme", "clicks");
    assert!(files.len() <= 8, "{} files", files.len());
    let row_groups =
        parquet::file::reader::SerializedFileReader::new(std::fs::File::open(&files[0]).unwrap())
            .map(|r| parquet::file::reader::FileReader::metadata(&r).num_row_groups())
            .unwrap();
    assert!(row_groups > 1, "{row_groups} row groups");
    same_rows_on(&server).await;
}
