//! The adaptive group commit, observed through tokio's paused clock: with no timer but the
//! committer's, the clock only moves when the committer waits for its interval, so the
//! virtual time a commit took tells whether it waited.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use deltalake::kernel::Add;
use tokio::time::Instant;

use super::stores::{Store, StoreSpec};
use super::table::TableHandle;
use super::{
    CommitOutcome, CommitPolicy, IncomingUnit, PartitionKey, PendingCommit, SequenceRange,
    TableLocation, UnitFiles, UnitRows,
};
use crate::datasets::Datasets;

const INTERVAL: Duration = Duration::from_secs(3600);

fn table(dir: &std::path::Path) -> TableHandle {
    checkpointed_table(dir, 50)
}

fn checkpointed_table(dir: &std::path::Path, checkpoint_every: u64) -> TableHandle {
    let spec = StoreSpec {
        url: dir.to_string_lossy().into_owned(),
        ..Default::default()
    };
    let store = Arc::new(Store::new("default", &spec).unwrap());
    let snowplow = Datasets::new(&Default::default())
        .unwrap()
        .get("snowplow")
        .unwrap();
    let location = TableLocation {
        configured: Some(store.clone()),
        store,
    };
    let policy = CommitPolicy {
        interval: INTERVAL,
        checkpoint_every,
    };
    TableHandle::open(
        "acme",
        snowplow,
        location,
        None,
        policy,
        super::usage::TableMeter::new("acme", "snowplow", "default", Default::default()),
    )
    .unwrap()
}

/// A unit naming a file the commit does not read: enough to exercise the committer.
async fn submit_unit(
    table: &TableHandle,
    seq: i64,
    announced: Option<IncomingUnit>,
) -> PendingCommit {
    let key = PartitionKey {
        app: Some(Some("web".into())),
        hour: 0,
    };
    let add = Add {
        path: format!("{}/part-{seq}.parquet", key.path()),
        partition_values: key.values(),
        size: 1,
        data_change: true,
        ..Default::default()
    };
    let schema = table.dataset.schema.clone().unwrap();
    table
        .submit(
            UnitFiles::Written(vec![add]),
            Some(SequenceRange::new("p", seq)),
            schema,
            Arc::new(AtomicBool::new(false)),
            announced,
        )
        .await
        .unwrap()
}

async fn commit_unit(
    table: &TableHandle,
    seq: i64,
    announced: Option<IncomingUnit>,
) -> CommitOutcome {
    submit_unit(table, seq, announced)
        .await
        .outcome()
        .await
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_unit_on_an_idle_table_commits_without_waiting_for_the_interval() {
    let dir = tempfile::TempDir::new().unwrap();
    let table = table(dir.path());
    let start = Instant::now();
    commit_unit(&table, 0, None).await;
    // Right after a commit, a unit nobody else follows still goes at once.
    let announced = table.announce_unit();
    commit_unit(&table, 1, Some(announced)).await;
    assert!(
        start.elapsed() < INTERVAL,
        "waited {:?} for the commit slot",
        start.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn a_unit_waits_for_units_on_their_way_at_most_the_interval() {
    let dir = tempfile::TempDir::new().unwrap();
    let table = table(dir.path());
    commit_unit(&table, 0, None).await;
    let start = Instant::now();
    let other = table.announce_unit();
    commit_unit(&table, 1, None).await;
    assert!(
        start.elapsed() >= INTERVAL,
        "committed after {:?} while another unit was on its way",
        start.elapsed()
    );
    drop(other);
}

#[tokio::test(start_paused = true)]
async fn units_share_a_commit_as_soon_as_the_last_one_arrives() {
    let dir = tempfile::TempDir::new().unwrap();
    let table = table(dir.path());
    commit_unit(&table, 0, None).await;
    let start = Instant::now();
    let second = table.announce_unit();
    let first = submit_unit(&table, 1, None).await;
    let second = submit_unit(&table, 2, Some(second)).await;
    let (first, second) = (first.outcome().await, second.outcome().await);
    assert_eq!(
        first.unwrap(),
        second.unwrap(),
        "one commit holds both units"
    );
    assert!(start.elapsed() < INTERVAL, "waited {:?}", start.elapsed());
}

#[tokio::test]
async fn a_checkpoint_closes_every_interval_of_commits() {
    let dir = tempfile::TempDir::new().unwrap();
    let table = checkpointed_table(dir.path(), 3);
    for seq in 0..7 {
        let outcome = commit_unit(&table, seq, None).await;
        assert_eq!(outcome, CommitOutcome::Committed { version: seq });
    }
    // Checkpoints are written in the background: wait for the second one.
    let log = dir.path().join("tenant_id=acme/snowplow/_delta_log");
    let last_checkpoint = || -> Option<u64> {
        let text = std::fs::read(log.join("_last_checkpoint")).ok()?;
        serde_json::from_slice::<serde_json::Value>(&text).ok()?["version"].as_u64()
    };
    for _ in 0..600 {
        if last_checkpoint() == Some(5) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(last_checkpoint(), Some(5));
    let mut checkpoints: Vec<String> = std::fs::read_dir(&log)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(".checkpoint."))
        .collect();
    checkpoints.sort();
    assert_eq!(
        checkpoints,
        [
            "00000000000000000002.checkpoint.parquet",
            "00000000000000000005.checkpoint.parquet"
        ]
    );
    // The load the checkpoint was written from becomes the table's snapshot.
    for _ in 0..600 {
        if versions(&table).await.0 == Some(5) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(versions(&table).await, (Some(5), Some(6)));
}

/// A small unit's rows for the committer to share files: one `event_id` per hour given.
async fn submit_rows(
    table: &TableHandle,
    producer: &str,
    hours: &[i64],
    announced: Option<IncomingUnit>,
) -> PendingCommit {
    use arrow::array::{RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    let file_schema = Arc::new(Schema::new(vec![Field::new(
        "event_id",
        DataType::Utf8,
        true,
    )]));
    let mut parts = std::collections::BTreeMap::new();
    for hour in hours {
        let batch = RecordBatch::try_new(
            file_schema.clone(),
            vec![Arc::new(StringArray::from(vec![format!(
                "{producer}-{hour}"
            )]))],
        )
        .unwrap();
        let key = PartitionKey {
            app: Some(Some("web".into())),
            hour: *hour,
        };
        parts.insert(key, vec![batch]);
    }
    let rows = UnitRows {
        parts,
        file_schema,
        rows: hours.len() as u64,
        props: Default::default(),
        flushed_at: chrono::Utc::now(),
        hold: Box::new(()),
    };
    table
        .submit(
            UnitFiles::Rows(Box::new(rows)),
            Some(SequenceRange::new(producer, 0)),
            table.dataset.schema.clone().unwrap(),
            Arc::new(AtomicBool::new(false)),
            announced,
        )
        .await
        .unwrap()
}

/// The `add` actions of one commit: (partition hour, rows).
fn adds_of(dir: &std::path::Path, version: i64) -> Vec<(String, u64)> {
    let path = dir.join(format!(
        "tenant_id=acme/snowplow/_delta_log/{version:020}.json"
    ));
    let text = std::fs::read_to_string(path).unwrap();
    let mut adds: Vec<(String, u64)> = text
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|action| {
            let add = action.get("add")?;
            let stats: serde_json::Value = serde_json::from_str(add["stats"].as_str()?).ok()?;
            Some((
                add["partitionValues"]["hour"].as_str()?.to_string(),
                stats["numRecords"].as_u64()?,
            ))
        })
        .collect();
    adds.sort();
    adds
}

#[tokio::test(start_paused = true)]
async fn small_units_of_one_commit_share_one_file_per_partition() {
    let dir = tempfile::TempDir::new().unwrap();
    let table = table(dir.path());
    submit_rows(&table, "seed", &[0], None)
        .await
        .outcome()
        .await
        .unwrap();
    let (b, c) = (table.announce_unit(), table.announce_unit());
    let a = submit_rows(&table, "a", &[0, 1], None).await;
    let b = submit_rows(&table, "b", &[1, 2], Some(b)).await;
    let c = submit_rows(&table, "c", &[1], Some(c)).await;
    let outcomes = [a, b, c];
    let mut versions = vec![];
    for pending in outcomes {
        versions.push(pending.outcome().await.unwrap());
    }
    assert_eq!(versions, vec![CommitOutcome::Committed { version: 1 }; 3]);
    assert_eq!(
        adds_of(dir.path(), 1),
        [("00".into(), 1), ("01".into(), 3), ("02".into(), 1)],
        "one file per hour holding every unit's rows of that hour"
    );
}

#[tokio::test(start_paused = true)]
async fn a_shared_file_never_holds_the_rows_of_a_unit_left_out_of_its_commit() {
    let dir = tempfile::TempDir::new().unwrap();
    let table = table(dir.path());
    submit_rows(&table, "a", &[0], None)
        .await
        .outcome()
        .await
        .unwrap();
    // "a" sends sequence 0 again (a retry) beside a new producer: the retry is a duplicate,
    // so the shared files are written again without its rows.
    let fresh = table.announce_unit();
    let retry = submit_rows(&table, "a", &[0, 1], None).await;
    let fresh = submit_rows(&table, "b", &[0], Some(fresh)).await;
    assert_eq!(retry.outcome().await.unwrap(), CommitOutcome::Duplicate);
    assert_eq!(
        fresh.outcome().await.unwrap(),
        CommitOutcome::Committed { version: 1 }
    );
    assert_eq!(adds_of(dir.path(), 1), [("00".into(), 1)]);
}

/// The (loaded snapshot, head) versions of the table's state.
async fn versions(table: &TableHandle) -> (Option<u64>, Option<i64>) {
    let state = table.state().lock().await;
    (state.table().version(), state.head())
}

/// Another writer's commit of `actions` on the newest version of the table under `dir`.
async fn commit_elsewhere(dir: &std::path::Path, actions: Vec<deltalake::kernel::Action>) -> i64 {
    use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
    use deltalake::protocol::{DeltaOperation, SaveMode};
    let url = url::Url::from_directory_path(dir.join("tenant_id=acme/snowplow")).unwrap();
    let other = deltalake::open_table(url).await.unwrap();
    let operation = DeltaOperation::Write {
        mode: SaveMode::Append,
        partition_by: None,
        predicate: None,
    };
    CommitBuilder::from(CommitProperties::default())
        .with_actions(actions)
        .build(
            Some(other.snapshot().unwrap()),
            other.log_store(),
            operation,
        )
        .await
        .unwrap()
        .version() as i64
}

#[tokio::test]
async fn appends_are_recorded_without_reloading_the_snapshot_and_other_writers_caught_up() {
    use deltalake::kernel::{Action, Remove, Transaction};
    let dir = tempfile::TempDir::new().unwrap();
    let table = table(dir.path());
    for seq in 0..3 {
        commit_unit(&table, seq, None).await;
    }
    assert_eq!(
        versions(&table).await,
        (Some(0), Some(2)),
        "appends past the create"
    );

    // Another replica's blind append takes version 3: ours lands at 4, and its producer's
    // sequence is known without a reload.
    let theirs = commit_elsewhere(dir.path(), vec![Action::Txn(Transaction::new("q", 5))]).await;
    assert_eq!(theirs, 3);
    assert_eq!(
        commit_unit(&table, 3, None).await,
        CommitOutcome::Committed { version: 4 }
    );
    assert_eq!(versions(&table).await, (Some(0), Some(4)));
    let q = table.refresh(Some("q")).await.unwrap().0;
    assert_eq!(q, Some(5), "the other writer's txn");
    let p = table.refresh(Some("p")).await.unwrap().0;
    assert_eq!(p, Some(3), "our own last txn, from the recorded appends");

    // A commit that removes a file is no blind append: the next catch-up reloads.
    let remove = Remove {
        path: "app_id=web/year=1970/month=01/day=01/hour=00/part-0.parquet".into(),
        data_change: true,
        deletion_timestamp: Some(1),
        ..Default::default()
    };
    assert_eq!(
        commit_elsewhere(dir.path(), vec![Action::Remove(remove)]).await,
        5
    );
    assert_eq!(
        commit_unit(&table, 4, None).await,
        CommitOutcome::Committed { version: 6 }
    );
    let (loaded, head) = versions(&table).await;
    assert_eq!(head, Some(6));
    assert_eq!(loaded, Some(5), "reloaded at the removal, then appended");
    // What this process recorded is what a fresh reader of the log finds.
    let url = url::Url::from_directory_path(dir.path().join("tenant_id=acme/snowplow")).unwrap();
    let fresh = deltalake::open_table(url).await.unwrap();
    assert_eq!(fresh.version(), Some(6));
    let snapshot = fresh.snapshot().unwrap();
    let log_store = fresh.log_store();
    for (app, version) in [("p", 4), ("q", 5)] {
        let found = snapshot.transaction_version(log_store.as_ref(), app);
        assert_eq!(found.await.unwrap(), Some(version), "{app}");
    }
}
