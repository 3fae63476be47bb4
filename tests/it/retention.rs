//! Retention: rows of an expired hour are refused at ingest, hidden from queries the moment
//! the hour expires, removed by `retention.run` (or maintenance), and with `--purge` their
//! files and bytes are gone at once. The clock is the fixture's: no waiting.

use std::collections::BTreeSet;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{Int64Type, TimestampMicrosecondType};
use chrono::{DateTime, Duration, Utc};
use futures::TryStreamExt;
use lakeport_client::{Client, MaintenanceRunRequest, RetentionRunRequest, Tenant};

use crate::fixture::*;

/// `days` days and `hours` hours before the fixture's now (2024-05-01T10:20:30Z), on the
/// hour.
fn ago(days: i64, hours: i64) -> DateTime<Utc> {
    let t = fixed_now() - Duration::days(days) - Duration::hours(hours);
    t.date_naive()
        .and_hms_opt(chrono::Timelike::hour(&t), 0, 0)
        .unwrap()
        .and_utc()
}

async fn sql(client: &mut Client, query: &str) -> Vec<RecordBatch> {
    let (_, stream) = client.query(query).await.expect("query");
    stream.try_collect().await.expect("results")
}

async fn count(client: &mut Client, table: &str) -> i64 {
    let rows = sql(client, &format!("SELECT count(*) FROM {table}")).await;
    rows[0].column(0).as_primitive::<Int64Type>().value(0)
}

async fn set_retention(admin: &mut Client, tenant: &str, retention: &str) {
    admin
        .tenant_update(
            Tenant {
                id: tenant.into(),
                retention: Some(retention.into()),
                ..Default::default()
            },
            vec!["retention".into()],
        )
        .await
        .expect("retention set");
}

fn run(tenant: &str, dry_run: bool, purge: bool) -> RetentionRunRequest {
    RetentionRunRequest {
        tenant: tenant.into(),
        dataset: "snowplow".into(),
        dry_run,
        purge,
    }
}

/// Partition directories holding a Parquet file on disk (relative to the table root).
fn dirs_on_disk(server: &TestServer) -> BTreeSet<String> {
    let root = server.table_path("acme", "snowplow");
    server
        .files_on_disk("acme", "snowplow")
        .iter()
        .map(|f| {
            let dir = f.parent().unwrap().strip_prefix(&root).unwrap();
            dir.to_string_lossy().into_owned()
        })
        .collect()
}

fn hour_dir(t: DateTime<Utc>) -> String {
    t.format("app_id=web/year=%Y/month=%m/day=%d/hour=%H")
        .to_string()
}

async fn table_bytes(admin: &mut Client) -> i64 {
    let report = admin.quota_report(Some("acme")).await.unwrap();
    report.tenants[0]
        .datasets
        .iter()
        .find(|d| d.dataset == "snowplow")
        .map_or(0, |d| d.bytes)
}

#[tokio::test]
async fn expired_hours_are_refused_hidden_removed_and_purged() {
    let server = TestServer::start().await;
    let mut acme = server.client(ACME).await;
    let mut admin = server.client(ADMIN).await;
    let (old, older, recent) = (ago(1, 2), ago(3, 1), ago(0, 3));
    for (at, prefix) in [(older, "older"), (old, "old"), (recent, "recent")] {
        acme.put(
            None,
            "snowplow",
            vec![snowplow_batch("web", at, 10, prefix)],
        )
        .await
        .unwrap();
    }
    assert_eq!(count(&mut acme, "snowplow").await, 30);

    // Two days: the hour three days back is expired at once, before any file is touched.
    set_retention(&mut admin, "acme", "2d").await;
    assert_eq!(count(&mut acme, "snowplow").await, 20);
    assert_eq!(count(&mut admin, "acme.snowplow").await, 20);
    assert_eq!(
        server.count("acme", "snowplow").await,
        30,
        "the files are still in the table"
    );

    // At ingest, rows of an expired hour are not written, nor kept as dead letters.
    let acks = acme
        .put(
            None,
            "snowplow",
            vec![
                snowplow_batch("web", older, 4, "late"),
                snowplow_batch("web", recent, 3, "fresh"),
            ],
        )
        .await
        .unwrap();
    let expired: u64 = acks.iter().map(|a| a.rows_expired).sum();
    let committed: u64 = acks.iter().map(|a| a.rows_committed).sum();
    let rejected: u64 = acks.iter().map(|a| a.rows_rejected).sum();
    assert_eq!((committed, expired, rejected), (3, 4, 0));
    let reason = &acks
        .iter()
        .find(|a| a.rows_expired > 0)
        .unwrap()
        .expired_reason;
    assert!(
        reason.contains("retention of 2days") && reason.contains("collector_tstamp"),
        "{reason}"
    );
    assert!(!server.table_path("acme", "_rejected").exists());

    // The dry run lists what would go and changes nothing.
    let version = server.table("acme", "snowplow").await.version();
    let planned = admin.retention_run(run("acme", true, false)).await.unwrap();
    assert_eq!(planned.steps.len(), 1, "{planned:?}");
    let step = &planned.steps[0];
    assert_eq!(
        (step.kind.as_str(), step.outcome.as_str()),
        ("retention", "planned")
    );
    assert_eq!(step.partition, hour_dir(older));
    assert_eq!((step.files_in, step.rows_in), (1, 10));
    assert!(step.bytes_in > 0);
    assert_eq!(server.table("acme", "snowplow").await.version(), version);
    let planned = admin.retention_run(run("acme", true, true)).await.unwrap();
    let purge = planned.steps.iter().find(|s| s.kind == "purge").unwrap();
    assert_eq!((purge.outcome.as_str(), purge.files_in), ("planned", 1));
    assert!(dirs_on_disk(&server).contains(&hour_dir(older)));
    assert_eq!(server.table("acme", "snowplow").await.version(), version);

    // A day later the next hour has expired too; the run removes both in one commit.
    server.clock.set(fixed_now() + Duration::days(1));
    assert_eq!(count(&mut acme, "snowplow").await, 13);
    let done = acme.retention_run(run("", false, false)).await.unwrap();
    let removed: BTreeSet<String> = done.steps.iter().map(|s| s.partition.clone()).collect();
    assert_eq!(removed, BTreeSet::from([hour_dir(older), hour_dir(old)]));
    assert!(done.steps.iter().all(|s| s.outcome == "done"));
    assert_eq!(done.steps[0].version, done.steps[1].version);
    assert_eq!(server.count("acme", "snowplow").await, 13);
    assert!(
        dirs_on_disk(&server).contains(&hour_dir(older)),
        "without purge the files wait for vacuum"
    );

    // `system.partitions` shows when each remaining partition expires.
    let rows = sql(
        &mut acme,
        "SELECT partition, expires_at FROM system.partitions WHERE dataset = 'snowplow'",
    )
    .await;
    let expiry = rows[0].column(1).as_primitive::<TimestampMicrosecondType>();
    assert_eq!(rows[0].num_rows(), 1);
    assert_eq!(
        expiry.value(0),
        (recent + Duration::hours(1) + Duration::days(2)).timestamp_micros()
    );

    // Purge deletes the files the earlier run removed, and the usage drops with them.
    let before = table_bytes(&mut admin).await;
    let purged = admin.retention_run(run("acme", false, true)).await.unwrap();
    let purge: Vec<_> = purged.steps.iter().filter(|s| s.kind == "purge").collect();
    assert_eq!(purge.len(), 1, "{purged:?}");
    assert_eq!((purge[0].files_in, purge[0].outcome.as_str()), (2, "done"));
    assert_eq!(
        dirs_on_disk(&server),
        BTreeSet::from([hour_dir(recent)]),
        "only the kept hour has files"
    );
    assert_eq!(
        table_bytes(&mut admin).await,
        before - purge[0].bytes_in as i64
    );
    assert_eq!(count(&mut acme, "snowplow").await, 13);
}

#[tokio::test]
async fn the_most_specific_retention_wins_and_maintenance_applies_it() {
    let server = TestServer::start_with(|config| {
        config.tenancy.defaults.retention = Some("1d".into());
    })
    .await;
    let mut acme = server.client(ACME).await;
    let mut admin = server.client(ADMIN).await;
    let (recent, old) = (ago(0, 1), ago(1, 5));
    acme.put(
        None,
        "snowplow",
        vec![snowplow_batch("web", recent, 5, "r")],
    )
    .await
    .unwrap();
    // The default of one day refuses rows of 29 hours ago.
    let acks = acme
        .put(None, "snowplow", vec![snowplow_batch("web", old, 5, "o")])
        .await
        .unwrap();
    assert_eq!(acks.iter().map(|a| a.rows_expired).sum::<u64>(), 5);

    // A retention for this tenant's snowplow alone keeps them.
    admin
        .tenant_update(
            Tenant {
                id: "acme".into(),
                dataset_retention: [("snowplow".to_string(), "forever".to_string())].into(),
                ..Default::default()
            },
            vec!["dataset_retention.snowplow".into()],
        )
        .await
        .unwrap();
    acme.put(None, "snowplow", vec![snowplow_batch("web", old, 5, "o")])
        .await
        .unwrap();
    assert_eq!(count(&mut acme, "snowplow").await, 10);

    // Cleared again, the default applies: hidden at once, removed by maintenance.
    admin
        .tenant_update(
            Tenant {
                id: "acme".into(),
                ..Default::default()
            },
            vec!["dataset_retention.snowplow".into()],
        )
        .await
        .unwrap();
    assert_eq!(count(&mut acme, "snowplow").await, 5);
    let done = admin
        .maintenance_run(MaintenanceRunRequest::default())
        .await
        .unwrap();
    let retention: Vec<_> = done
        .steps
        .iter()
        .filter(|s| s.kind == "retention")
        .collect();
    assert_eq!(retention.len(), 1, "{done:?}");
    assert_eq!(
        (retention[0].rows_in, retention[0].outcome.as_str()),
        (5, "done")
    );
    assert_eq!(server.count("acme", "snowplow").await, 5);
}

#[tokio::test]
async fn removal_races_appends_and_another_replicas_compaction_without_losing_a_row() {
    let quick = |c: &mut lakeport_server::Config| {
        c.tenancy.registry_refresh = std::time::Duration::from_millis(20);
    };
    let first = TestServer::start_with(quick).await;
    let lake = first.lake.path().to_string_lossy().into_owned();
    // The second replica does not learn the retention during the test (its registry
    // refresh is the default 10 s), so its maintenance compacts the old hour that the first
    // replica's retention removes.
    let second = TestServer::start_with(|c| c.set_lake(lake)).await;
    let mut acme = first.client(ACME).await;
    let (old, recent) = (ago(5, 0), ago(0, 2));
    // Several small files in the old hour, so compaction has something to rewrite.
    for i in 0..4 {
        let batch = snowplow_batch("web", old + Duration::minutes(i), 5, &format!("old{i}"));
        acme.put(None, "snowplow", vec![batch]).await.unwrap();
    }
    let mut admin = first.client(ADMIN).await;
    set_retention(&mut admin, "acme", "2d").await;
    assert_eq!(count(&mut acme, "snowplow").await, 0);

    // Appends to a kept hour on the first replica, compaction on the second, retention on
    // the first, all at once.
    let appends = async {
        let mut acme = first.client(ACME).await;
        for i in 0..10 {
            let batch = snowplow_batch("web", recent, 3, &format!("new{i}"));
            acme.put(None, "snowplow", vec![batch]).await.unwrap();
        }
    };
    let compaction = async {
        let mut admin = second.client(ADMIN).await;
        admin
            .maintenance_run(MaintenanceRunRequest::default())
            .await
            .unwrap()
    };
    let removal = async {
        let mut admin = first.client(ADMIN).await;
        admin
            .retention_run(run("acme", false, false))
            .await
            .unwrap()
    };
    let ((), compacted, removed) = tokio::join!(appends, compaction, removal);
    let mut steps = compacted.steps.iter().chain(&removed.steps);
    assert!(
        steps.all(|s| s.outcome != "failed"),
        "{compacted:?} {removed:?}"
    );
    // Whichever came first, the old hour is out of the table and every new row is in.
    let table = server_table_partitions(&first).await;
    assert!(
        !table.iter().any(|p| p.contains(&hour_dir(old))),
        "{table:?}"
    );
    assert_eq!(first.count("acme", "snowplow").await, 30);
    let again = admin
        .retention_run(run("acme", false, false))
        .await
        .unwrap();
    assert!(again.steps.is_empty(), "nothing left to remove: {again:?}");
}

/// The partition directories of acme's snowplow files live in the latest version.
async fn server_table_partitions(server: &TestServer) -> Vec<String> {
    let table = server.table("acme", "snowplow").await;
    table
        .snapshot()
        .unwrap()
        .log_data()
        .iter()
        .map(|f| f.path().into_owned())
        .collect()
}
