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
    TableLocation,
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
            vec![add],
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
}
