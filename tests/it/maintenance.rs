//! `maintenance.run`: compaction of closed hour partitions (sorted, `dataChange = false`,
//! one file per partition), checkpoint, vacuum; under concurrent ingest and across two
//! servers on one lake, no row is lost or duplicated.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use arrow::array::{Array, AsArray};
use arrow::datatypes::TimestampMicrosecondType;
use chrono::{DateTime, Utc};
use lakeport_client::{MaintenanceRunRequest, MaintenanceStep};
use parquet::file::reader::{FileReader, SerializedFileReader};

use crate::fixture::*;

fn hour(h: u32) -> DateTime<Utc> {
    fixed_now()
        .date_naive()
        .and_hms_opt(h, 0, 0)
        .unwrap()
        .and_utc()
}

fn all() -> MaintenanceRunRequest {
    MaintenanceRunRequest::default()
}

/// Parquet files on disk per partition directory (relative to the table root).
fn files_per_partition(
    server: &TestServer,
    tenant: &str,
    dataset: &str,
) -> BTreeMap<String, Vec<PathBuf>> {
    let root = server.table_path(tenant, dataset);
    let mut out: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for file in server.files_on_disk(tenant, dataset) {
        let dir = file.parent().unwrap().strip_prefix(&root).unwrap();
        out.entry(dir.to_string_lossy().into_owned())
            .or_default()
            .push(file);
    }
    out
}

/// The live files of each partition according to the Delta log.
async fn live_per_partition(
    server: &TestServer,
    tenant: &str,
    dataset: &str,
) -> BTreeMap<String, Vec<String>> {
    let table = server.table(tenant, dataset).await;
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for file in table.snapshot().unwrap().log_data().iter() {
        let path = file.path().into_owned();
        let (dir, _) = path.rsplit_once('/').unwrap();
        out.entry(dir.to_string()).or_default().push(path.clone());
    }
    out
}

fn steps<'a>(steps: &'a [MaintenanceStep], kind: &str) -> Vec<&'a MaintenanceStep> {
    steps.iter().filter(|s| s.kind == kind).collect()
}

async fn distinct_ids(server: &TestServer) -> (usize, usize) {
    let rows = server
        .query(
            "acme",
            "snowplow",
            "SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM t",
        )
        .await;
    let value = |i: usize| {
        rows[0]
            .column(i)
            .as_primitive::<arrow::datatypes::Int64Type>()
            .value(0) as usize
    };
    (value(0), value(1))
}

#[tokio::test]
async fn closed_partitions_become_one_sorted_file_and_open_ones_wait() {
    let server = TestServer::start().await;
    let mut acme = server.client(ACME).await;
    // Five puts per partition, each a file: two closed hours (07, 08) of two apps, and
    // the current hour (10), still open. Event times run backwards across puts so that
    // only a sort puts them in order.
    for put in 0..5u32 {
        let mut batches = Vec::new();
        for (app, h) in [("web", 7), ("web", 8), ("mob", 7), ("web", 10)] {
            let at = hour(h) + chrono::Duration::minutes(50 - 10 * put as i64);
            batches.push(snowplow_batch(app, at, 20, &format!("{app}-{h}-{put}")));
        }
        acme.put(None, "snowplow", batches).await.unwrap();
    }
    let before = files_per_partition(&server, "acme", "snowplow");
    assert_eq!(before.len(), 4);
    assert!(before.values().all(|f| f.len() == 5));
    let mut admin = server.client(ADMIN).await;

    let planned = admin
        .maintenance_run(MaintenanceRunRequest {
            dry_run: true,
            ..all()
        })
        .await
        .unwrap();
    let compactions = steps(&planned.steps, "compaction");
    assert_eq!(compactions.len(), 3, "three closed partitions: {planned:?}");
    assert!(compactions
        .iter()
        .all(|s| s.outcome == "planned" && s.files_in == 5));
    assert_eq!(
        files_per_partition(&server, "acme", "snowplow"),
        before,
        "a dry run changes nothing"
    );

    let version_before = server.table("acme", "snowplow").await.version().unwrap();
    let done = admin.maintenance_run(all()).await.unwrap();
    let compactions = steps(&done.steps, "compaction");
    assert_eq!(compactions.len(), 3);
    for step in &compactions {
        assert_eq!(
            (step.outcome.as_str(), step.files_in, step.files_out),
            ("done", 5, 1)
        );
        assert!(step.bytes_out > 0 && step.version > version_before as i64);
        assert!(!step.partition.contains("hour=10"));
    }
    let checkpoint = steps(&done.steps, "checkpoint");
    assert_eq!(checkpoint.len(), 1);
    let table = server.table("acme", "snowplow").await;
    assert_eq!(checkpoint[0].version, table.version().unwrap() as i64);
    let last: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            server
                .table_path("acme", "snowplow")
                .join("_delta_log/_last_checkpoint"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(last["version"], checkpoint[0].version);

    assert_eq!(distinct_ids(&server).await, (400, 400));
    let live = live_per_partition(&server, "acme", "snowplow").await;
    for (dir, files) in &live {
        let expected = if dir.ends_with("hour=10") { 5 } else { 1 };
        assert_eq!(files.len(), expected, "{dir}");
    }

    // The compacted file: lakeport's naming, rows sorted by event time, full statistics,
    // and an `add` that says no data changed.
    let adds: Vec<serde_json::Value> =
        std::fs::read_dir(server.table_path("acme", "snowplow").join("_delta_log"))
            .unwrap()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .flat_map(|e| {
                std::fs::read_to_string(e.path())
                    .unwrap()
                    .lines()
                    .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
                    .collect::<Vec<_>>()
            })
            .filter_map(|action| action.get("add").cloned())
            .filter(|add| add["dataChange"] == false)
            .collect();
    assert_eq!(adds.len(), 3);
    for add in &adds {
        let path = add["path"].as_str().unwrap();
        let name = path.rsplit('/').next().unwrap();
        assert!(
            name.starts_with("data_2024_05_01_10_20_30_") && name.ends_with(".parquet"),
            "{name}"
        );
        let stats: serde_json::Value =
            serde_json::from_str(add["stats"].as_str().unwrap()).unwrap();
        assert_eq!(stats["numRecords"], 100);
        assert!(stats["minValues"]["collector_tstamp"].is_string());
        assert_eq!(stats["nullCount"]["event_id"], 0);
        let file = std::fs::File::open(server.table_path("acme", "snowplow").join(path)).unwrap();
        let reader = SerializedFileReader::new(file).unwrap();
        assert_eq!(reader.metadata().file_metadata().num_rows(), 100);
        let batches: Vec<_> = parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(
            std::fs::File::open(server.table_path("acme", "snowplow").join(path)).unwrap(),
            1024,
        )
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
        let times: Vec<i64> = batches
            .iter()
            .flat_map(|b| {
                let column = b.column_by_name("collector_tstamp").unwrap();
                column
                    .as_primitive::<TimestampMicrosecondType>()
                    .values()
                    .to_vec()
            })
            .collect();
        assert!(
            times.windows(2).all(|w| w[0] <= w[1]),
            "rows sorted by event time"
        );
    }

    // A second run has nothing to compact and the checkpoint is current.
    let again = admin.maintenance_run(all()).await.unwrap();
    assert!(steps(&again.steps, "compaction").is_empty(), "{again:?}");
    assert!(steps(&again.steps, "checkpoint").is_empty(), "{again:?}");

    // The replaced files stay on disk for readers of older versions until the table's
    // retention (7 days) has passed; then vacuum deletes them. By then hour 10 has closed
    // too: its files are replaced in the same run, and kept for 7 days from now.
    assert_eq!(server.files_on_disk("acme", "snowplow").len(), 23);
    server.clock.set(Utc::now() + chrono::Duration::days(8));
    let vacuumed = admin.maintenance_run(all()).await.unwrap();
    let compactions = steps(&vacuumed.steps, "compaction");
    assert_eq!(compactions.len(), 1, "{vacuumed:?}");
    assert!(compactions[0].partition.ends_with("hour=10"));
    let vacuum = steps(&vacuumed.steps, "vacuum");
    assert_eq!(vacuum.len(), 1, "{vacuumed:?}");
    assert_eq!(vacuum[0].files_in, 15);
    assert_eq!(server.files_on_disk("acme", "snowplow").len(), 23 + 1 - 15);
    assert_eq!(distinct_ids(&server).await, (400, 400));

    // What the runs did is in `system.maintenance`.
    let (_, rows) = admin.query("SELECT kind, outcome, files_in, files_out FROM system.maintenance WHERE dataset = 'snowplow' ORDER BY started_at").await.unwrap();
    let rows: Vec<_> = futures::TryStreamExt::try_collect::<Vec<_>>(rows)
        .await
        .unwrap();
    let kinds: Vec<String> = rows
        .iter()
        .flat_map(|b| {
            let k = b.column(0).as_string::<i32>();
            (0..k.len())
                .map(|i| k.value(i).to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(kinds.iter().filter(|k| *k == "compaction").count(), 4);
    assert_eq!(kinds.iter().filter(|k| *k == "vacuum").count(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn maintenance_is_for_admins_with_a_valid_body() {
    let server = TestServer::start().await;
    let mut acme = server.client(ACME).await;
    let err = acme.maintenance_run(all()).await.unwrap_err();
    assert_eq!(status_of(&err), tonic::Code::PermissionDenied, "{err}");

    let mut admin = server.client(ADMIN).await;
    let err = admin
        .maintenance_run(MaintenanceRunRequest {
            dataset: "nope".into(),
            ..all()
        })
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), tonic::Code::NotFound, "{err}");

    let bad = arrow_flight::Action::new("maintenance.run", vec![0xff, 0xff, 0xff]);
    let err = admin.flight().do_action(bad).await.err().expect("refused");
    assert_eq!(
        status_of(&lakeport_client::ClientError::from(err)),
        tonic::Code::InvalidArgument
    );

    let unknown = arrow_flight::Action::new("maintenance.explode", vec![]);
    let err = admin
        .flight()
        .do_action(unknown)
        .await
        .err()
        .expect("refused");
    assert_eq!(
        status_of(&lakeport_client::ClientError::from(err)),
        tonic::Code::Unimplemented
    );

    // Nothing to do on an empty lake is not an error.
    let result = admin.maintenance_run(all()).await.unwrap();
    assert!(result.steps.is_empty(), "{result:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn compaction_racing_with_producers_and_another_server_keeps_every_row_once() {
    let first = TestServer::start().await;
    let lake = first.lake.path().to_string_lossy().into_owned();
    let second = TestServer::start_with(|c| c.set_lake(lake)).await;
    let producers: Vec<_> = (0..3)
        .map(|p| {
            let endpoint = if p % 2 == 0 {
                first.endpoint()
            } else {
                second.endpoint()
            };
            tokio::spawn(async move {
                let mut client = lakeport_client::Client::connect(&endpoint)
                    .await
                    .unwrap()
                    .with_token(ACME);
                for seq in 0..12u64 {
                    let at = hour(7 + (seq % 2) as u32) + chrono::Duration::seconds(seq as i64);
                    let batch = snowplow_batch("web", at, 25, &format!("p{p}-s{seq}"));
                    client
                        .put_sequenced(None, "snowplow", &format!("producer-{p}"), seq, vec![batch])
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    let mut outcomes: HashSet<String> = HashSet::new();
    let mut admins = [first.client(ADMIN).await, second.client(ADMIN).await];
    while !producers.iter().all(|p| p.is_finished()) {
        let [a, b] = &mut admins;
        let (ra, rb) = tokio::join!(a.maintenance_run(all()), b.maintenance_run(all()));
        for step in ra.unwrap().steps.into_iter().chain(rb.unwrap().steps) {
            assert_ne!(step.outcome, "failed", "{step:?}");
            outcomes.insert(step.outcome);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for p in producers {
        p.await.unwrap();
    }
    assert!(
        outcomes.contains("done"),
        "no compaction ran while producers wrote: {outcomes:?}"
    );
    admins[0].maintenance_run(all()).await.unwrap();
    assert_eq!(distinct_ids(&first).await, (900, 900));
    let live = live_per_partition(&first, "acme", "snowplow").await;
    assert_eq!(live.len(), 2);
    assert!(live.values().all(|files| files.len() == 1), "{live:?}");
    first.shutdown().await;
    second.shutdown().await;
}
