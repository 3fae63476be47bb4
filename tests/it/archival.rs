//! Archival: an archived tenant's tables live only in the archive store (itself a valid
//! Delta table); its next query or write brings them back with every row once, a resent
//! sequence included; a tenant idle for `archive_after` is archived on its own; two
//! replicas asked at once archive it once.

use std::path::Path;
use std::time::Duration;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use futures::TryStreamExt;
use lakeport_client::{Client, Tenant};
use lakeport_server::lake::StoreSpec;
use tempfile::TempDir;
use tonic::Code;

use crate::fixture::*;

/// An archive store beside the lake, quick registry reads (the archive waits two of them
/// between its steps), and a short restore wait.
fn with_archive(archive: &Path) -> impl FnOnce(&mut lakeport_server::Config) + '_ {
    move |c| {
        c.stores.insert(
            "archive".into(),
            StoreSpec {
                url: archive.to_string_lossy().into_owned(),
                archive_for: Some("default".into()),
                ..Default::default()
            },
        );
        c.tenancy.registry_refresh = Duration::from_millis(50);
        c.tenancy.restore_wait = Duration::from_secs(20);
    }
}

async fn count(client: &mut Client, table: &str) -> i64 {
    let (_, stream) = client
        .query(&format!("SELECT count(*) FROM {table}"))
        .await
        .expect("query");
    let rows: Vec<RecordBatch> = stream.try_collect().await.expect("results");
    rows[0].column(0).as_primitive::<Int64Type>().value(0)
}

/// Rows of the Delta table at `dir`, read with deltalake and DataFusion.
async fn rows_in_place(dir: &Path) -> i64 {
    let url = url::Url::from_directory_path(dir).unwrap();
    let table = deltalake::open_table(url).await.unwrap();
    let ctx = datafusion::prelude::SessionContext::new();
    ctx.register_table("t", table.table_provider().await.unwrap())
        .unwrap();
    let rows = ctx
        .sql("SELECT count(*) FROM t")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    rows[0].column(0).as_primitive::<Int64Type>().value(0)
}

async fn load_two_tables(server: &TestServer) {
    let mut acme = server.client(ACME).await;
    for i in 0..3 {
        let batch = snowplow_batch("web", fixed_now(), 20, &format!("s{i}"));
        acme.put(None, "snowplow", vec![batch]).await.unwrap();
    }
    let mut beta = server.client(BETA).await;
    let batch = snowplow_batch("web", fixed_now(), 7, "b");
    beta.put(None, "snowplow", vec![batch]).await.unwrap();
}

#[tokio::test]
async fn an_archived_tenant_comes_back_on_its_first_query_with_every_row() {
    let archive = TempDir::new().unwrap();
    let server = TestServer::start_with(with_archive(archive.path())).await;
    load_two_tables(&server).await;
    let live = server.lake.path().join("tenant_id=acme");
    let before = files_under(&live);
    let beta_before = files_under(&server.lake.path().join("tenant_id=beta"));

    let mut admin = server.client(ADMIN).await;
    let archived = admin.tenant_archive("acme").await.unwrap();
    assert_eq!(archived.archive_state, "archived");
    assert_eq!(archived.archive_location, "archive");
    assert_eq!(
        archived.archived_bytes,
        before.values().sum::<u64>(),
        "the archive records every byte it moved"
    );
    assert!(!live.exists(), "the live copy is gone");
    let kept = archive.path().join("tenant_id=acme");
    assert_eq!(files_under(&kept), before, "every object, the same size");
    assert_eq!(
        rows_in_place(&kept.join("snowplow")).await,
        60,
        "the archive copy is a Delta table a reader opens in place"
    );
    assert_eq!(
        files_under(&server.lake.path().join("tenant_id=beta")),
        beta_before
    );
    // An admin's read of every tenant skips the archived one; it stays archived.
    let shown = admin.tenant_get("acme").await.unwrap();
    assert_eq!(shown.archive_state, "archived");
    assert!(shown.archived_at_ms > 0);
    assert_eq!(usage(&mut admin).await, 0, "nothing live to bill");

    let mut acme = server.client(ACME).await;
    assert_eq!(
        count(&mut acme, "snowplow").await,
        60,
        "restored on first query"
    );
    let shown = admin.tenant_get("acme").await.unwrap();
    assert_eq!(shown.archive_state, "");
    assert_eq!(files_under(&live), before);
    eventually("the archive copy is deleted", || {
        let kept = kept.clone();
        async move { !kept.exists() }
    })
    .await;
    let mut beta = server.client(BETA).await;
    assert_eq!(count(&mut beta, "snowplow").await, 7);
    let billed = before.values().sum::<u64>() as i64;
    let server = &server;
    eventually("the restored tables are billed again", || async move {
        usage(&mut server.client(ADMIN).await).await == billed
    })
    .await;
}

/// acme's billed bytes, as `quota.report` counts them.
async fn usage(admin: &mut Client) -> i64 {
    let report = admin.quota_report(Some("acme")).await.unwrap();
    report.tenants[0].usage_bytes
}

#[tokio::test]
async fn a_write_restores_first_and_a_resent_sequence_lands_once() {
    let archive = TempDir::new().unwrap();
    let server = TestServer::start_with(with_archive(archive.path())).await;
    let mut acme = server.client(ACME).await;
    let batches: Vec<_> = (0..4)
        .map(|i| snowplow_batch("web", fixed_now(), 10, &format!("q{i}")))
        .collect();
    acme.put_sequenced(None, "snowplow", "p1", 0, batches[..3].to_vec())
        .await
        .unwrap();
    let mut admin = server.client(ADMIN).await;
    admin.tenant_archive("acme").await.unwrap();

    // The producer resends from sequence 2 after the archive: 2 is a duplicate, 3 is new.
    let acks = acme
        .put_sequenced(None, "snowplow", "p1", 2, batches[2..].to_vec())
        .await
        .unwrap();
    let committed: u64 = acks.iter().map(|a| a.rows_committed).sum();
    let duplicates: u64 = acks.iter().map(|a| a.duplicates_skipped).sum();
    assert_eq!((committed, duplicates), (10, 10));
    assert_eq!(count(&mut acme, "snowplow").await, 40);
    assert_eq!(server.count("acme", "snowplow").await, 40);
}

#[tokio::test]
async fn archiving_needs_an_archive_store_and_leaves_the_tenant_live_when_refused() {
    let server = TestServer::start().await;
    load_two_tables(&server).await;
    let mut admin = server.client(ADMIN).await;
    let err = admin.tenant_archive("acme").await.unwrap_err();
    assert_eq!(status_of(&err), Code::FailedPrecondition, "{err}");
    assert!(err.to_string().contains("archive_for"), "{err}");
    assert_eq!(admin.tenant_get("acme").await.unwrap().archive_state, "");
    let mut acme = server.client(ACME).await;
    assert_eq!(count(&mut acme, "snowplow").await, 60);
    let err = admin.tenant_restore("acme").await.unwrap_err();
    assert_eq!(status_of(&err), Code::FailedPrecondition, "{err}");
}

#[tokio::test]
async fn an_idle_tenant_is_archived_after_its_archive_after() {
    let archive = TempDir::new().unwrap();
    let server = TestServer::start_with(with_archive(archive.path())).await;
    load_two_tables(&server).await;
    let mut admin = server.client(ADMIN).await;
    admin
        .tenant_update(
            Tenant {
                id: "acme".into(),
                archive_after: Some("2d".into()),
                ..Default::default()
            },
            vec!["archive_after".into()],
        )
        .await
        .unwrap();
    server.clock.set(fixed_now() + chrono::Duration::days(1));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        admin.tenant_get("acme").await.unwrap().archive_state,
        "",
        "one idle day of two: still live"
    );
    server.clock.set(fixed_now() + chrono::Duration::days(2));
    let admin = &server;
    eventually("acme is archived", || async move {
        let mut admin = admin.client(ADMIN).await;
        admin.tenant_get("acme").await.unwrap().archive_state == "archived"
    })
    .await;
    let mut client = server.client(ADMIN).await;
    assert_eq!(client.tenant_get("beta").await.unwrap().archive_state, "");
    let mut acme = server.client(ACME).await;
    assert_eq!(count(&mut acme, "snowplow").await, 60);
}

#[tokio::test]
async fn two_replicas_asked_at_once_archive_the_tenant_once() {
    let archive = TempDir::new().unwrap();
    let first = TestServer::start_with(with_archive(archive.path())).await;
    load_two_tables(&first).await;
    let lake = first.lake.path().to_string_lossy().into_owned();
    let second = TestServer::start_with(|c| {
        with_archive(archive.path())(c);
        c.set_lake(lake);
    })
    .await;
    let (mut a, mut b) = (first.client(ADMIN).await, second.client(ADMIN).await);
    let (one, two) = tokio::join!(a.tenant_archive("acme"), b.tenant_archive("acme"));
    let outcomes = [one, two];
    let won = outcomes.iter().filter(|o| o.is_ok()).count();
    assert_eq!(won, 1, "{outcomes:?}");
    for lost in outcomes.iter().filter_map(|o| o.as_ref().err()) {
        assert_eq!(status_of(lost), Code::FailedPrecondition, "{lost}");
    }
    let mut acme = second.client(ACME).await;
    assert_eq!(count(&mut acme, "snowplow").await, 60);
    let mut acme = first.client(ACME).await;
    assert_eq!(count(&mut acme, "snowplow").await, 60);
}

#[tokio::test]
async fn a_call_that_cannot_wait_is_told_to_retry_and_the_retry_finds_every_row() {
    let archive = TempDir::new().unwrap();
    let server = TestServer::start_with(|c| {
        with_archive(archive.path())(c);
        c.tenancy.restore_wait = Duration::ZERO;
    })
    .await;
    load_two_tables(&server).await;
    let mut admin = server.client(ADMIN).await;
    admin.tenant_archive("acme").await.unwrap();
    let mut acme = server.client(ACME).await;
    let err = acme
        .query("SELECT count(*) FROM snowplow")
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), Code::Unavailable, "{err}");
    assert!(err.to_string().contains("retry in"), "{err}");
    let server = &server;
    eventually("a retry finds the tenant restored", || async move {
        let mut acme = server.client(ACME).await;
        match acme.query("SELECT count(*) FROM snowplow").await {
            Ok((_, stream)) => {
                let rows: Vec<RecordBatch> = stream.try_collect().await.unwrap();
                assert_eq!(rows[0].column(0).as_primitive::<Int64Type>().value(0), 60);
                true
            }
            Err(e) if status_of(&e) == Code::Unavailable => false,
            Err(e) => panic!("{e}"),
        }
    })
    .await;
}
