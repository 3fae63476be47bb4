//! The tenant registry, tokens, usage accounting and quotas, against real servers over
//! one temp-dir lake.

use std::path::Path;
use std::time::Duration;

use arrow_flight::Action;
use lakeport_client::{Client, ClientError, Tenant, TokenIssueRequest};
use tonic::Code;

use crate::fixture::{
    eventually, fixed_now, snowplow_batch, status_of, TestServer, ACME, ADMIN, BETA,
};

fn quick_registry(c: &mut lakeport_server::Config) {
    c.tenancy.registry_refresh = Duration::from_millis(50);
}

async fn put(
    client: &mut Client,
    tenant: Option<&str>,
    rows: usize,
    id: &str,
) -> Result<(), ClientError> {
    client
        .put(
            tenant,
            "snowplow",
            vec![snowplow_batch("web", fixed_now(), rows, id)],
        )
        .await
        .map(|_| ())
}

/// Bytes of every object under a directory, as the store would bill them.
fn listed_bytes(dir: &Path) -> i64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                total += meta.len() as i64;
            }
        }
    }
    total
}

async fn table_bytes(client: &mut Client, tenant: &str, dataset: &str) -> i64 {
    let report = client.quota_report(Some(tenant)).await.unwrap();
    report.tenants[0]
        .datasets
        .iter()
        .find(|d| d.dataset == dataset)
        .map_or(0, |d| d.bytes)
}

#[tokio::test]
async fn admin_actions_are_refused_to_tenants_and_bad_bodies_are_invalid() {
    let server = TestServer::start().await;
    let mut acme = server.client(ACME).await;
    for kind in [
        "tenant.create",
        "tenant.update",
        "tenant.get",
        "tenant.list",
        // A tenant may revoke its own collector keys, so `token.revoke` is not refused
        // outright; `token.issue` is refused unless it asks for a collector key.
        "token.issue",
    ] {
        let err = acme
            .flight()
            .do_action(Action::new(kind, vec![]))
            .await
            .err();
        let code = status_of(&ClientError::from(err.expect(kind)));
        assert_eq!(code, Code::PermissionDenied, "{kind}");
    }
    let mut admin = server.client(ADMIN).await;
    for kind in [
        "tenant.create",
        "tenant.update",
        "tenant.get",
        "tenant.list",
        "token.issue",
        "token.revoke",
        "quota.report",
    ] {
        let garbage = Action::new(kind, vec![0xff, 0xff, 0xff]);
        let err = admin.flight().do_action(garbage).await.err().expect(kind);
        assert_eq!(
            status_of(&ClientError::from(err)),
            Code::InvalidArgument,
            "{kind}"
        );
    }
    let bad = [
        Tenant {
            id: "Not Valid".into(),
            ..Default::default()
        },
        Tenant {
            id: "t1".into(),
            quota_soft_bytes: Some(10),
            quota_hard_bytes: Some(5),
            ..Default::default()
        },
        Tenant {
            id: "t2".into(),
            region: Some("mars".into()),
            ..Default::default()
        },
        Tenant {
            id: "t3".into(),
            state: Some("asleep".into()),
            ..Default::default()
        },
    ];
    for tenant in bad {
        let err = admin.tenant_create(tenant.clone()).await.unwrap_err();
        assert_eq!(status_of(&err), Code::InvalidArgument, "{tenant:?}: {err}");
    }
    let err = admin
        .tenant_update(
            Tenant {
                id: "acme".into(),
                ..Default::default()
            },
            vec!["colour".into()],
        )
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), Code::InvalidArgument, "{err}");
    server.shutdown().await;
}

#[tokio::test]
async fn tenants_are_created_listed_updated_and_config_fields_win() {
    let server = TestServer::start_with(|c| {
        c.auth.tenants[0].settings.quota_hard = Some(1 << 30);
    })
    .await;
    let mut admin = server.client(ADMIN).await;
    let created = admin
        .tenant_create(Tenant {
            id: "gamma".into(),
            display_name: Some("Gamma Ltd".into()),
            quota_soft_bytes: Some(1000),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(created.display_name.as_deref(), Some("Gamma Ltd"));
    assert_eq!(created.state.as_deref(), Some("active"));
    let again = admin
        .tenant_create(Tenant {
            id: "gamma".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status_of(&again), Code::AlreadyExists);
    let ids: Vec<String> = admin
        .tenant_list()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(ids, ["acme", "beta", "gamma"], "config tenants are seeded");

    let updated = admin
        .tenant_update(
            Tenant {
                id: "gamma".into(),
                quota_hard_bytes: Some(5000),
                ..Default::default()
            },
            vec!["quota_hard".into(), "quota_soft".into()],
        )
        .await
        .unwrap();
    assert_eq!(
        (updated.quota_soft_bytes, updated.quota_hard_bytes),
        (None, Some(5000))
    );

    let pinned = admin
        .tenant_update(
            Tenant {
                id: "acme".into(),
                quota_hard_bytes: Some(1),
                ..Default::default()
            },
            vec!["quota_hard".into()],
        )
        .await
        .unwrap_err();
    assert_eq!(status_of(&pinned), Code::InvalidArgument);
    assert!(pinned.to_string().contains("config file"), "{pinned}");
    assert_eq!(
        admin.tenant_get("acme").await.unwrap().config_fields,
        ["quota_hard"]
    );
    let missing = admin.tenant_get("nobody").await.unwrap_err();
    assert_eq!(status_of(&missing), Code::NotFound);
    server.shutdown().await;
}

#[tokio::test]
async fn auto_provisioning_creates_tenants_for_admins_only_when_on() {
    let off = TestServer::start().await;
    let mut admin = off.client(ADMIN).await;
    let err = put(&mut admin, Some("newcomer"), 3, "x").await.unwrap_err();
    assert_eq!(status_of(&err), Code::NotFound, "{err}");
    assert!(err.to_string().contains("tenant create"), "{err}");
    assert!(
        !off.table_path("newcomer", "snowplow").exists(),
        "nothing written"
    );
    off.shutdown().await;

    let on = TestServer::start_with(|c| {
        c.tenancy.auto_provision = Some(true);
        c.tenancy.defaults.quota_hard = Some(1 << 40);
    })
    .await;
    let mut admin = on.client(ADMIN).await;
    put(&mut admin, Some("newcomer"), 3, "x").await.unwrap();
    assert_eq!(on.count("newcomer", "snowplow").await, 3);
    let record = admin.tenant_get("newcomer").await.unwrap();
    assert_eq!(
        record.quota_hard_bytes,
        Some(1 << 40),
        "[tenant_defaults] apply"
    );
    // A tenant's token names its own tenant only; it can never reach another to create it.
    let mut acme = on.client(ACME).await;
    let err = put(&mut acme, Some("other"), 1, "y").await.unwrap_err();
    assert_eq!(status_of(&err), Code::PermissionDenied);
    assert!(admin.tenant_get("other").await.is_err());
    on.shutdown().await;
}

#[tokio::test]
async fn issued_tokens_work_and_revoked_ones_fail_on_every_server() {
    let first = TestServer::start_with(quick_registry).await;
    let lake = first.lake.path().to_string_lossy().into_owned();
    let second = TestServer::start_with(|c| {
        quick_registry(c);
        c.set_lake(lake);
    })
    .await;
    let mut admin = first.client(ADMIN).await;
    admin
        .tenant_create(Tenant {
            id: "delta".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let issued = admin
        .token_issue(TokenIssueRequest {
            tenant: "delta".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(issued.token.starts_with("lpt_"));
    let mut on_first = first.client(&issued.token).await;
    put(&mut on_first, None, 4, "a").await.unwrap();
    let endpoint = second.endpoint();
    let token = issued.token.clone();
    eventually("the second server accepts the token", || {
        let (endpoint, token) = (endpoint.clone(), token.clone());
        async move {
            let mut client = Client::connect(&endpoint).await.unwrap().with_token(&token);
            put(&mut client, None, 1, "b").await.is_ok()
        }
    })
    .await;

    admin.token_revoke("delta", &issued.token_id).await.unwrap();
    let err = put(&mut on_first, None, 1, "c").await.unwrap_err();
    assert_eq!(
        status_of(&err),
        Code::Unauthenticated,
        "at once where it was revoked"
    );
    eventually("the second server refuses the revoked token", || {
        let (endpoint, token) = (endpoint.clone(), token.clone());
        async move {
            let mut client = Client::connect(&endpoint).await.unwrap().with_token(&token);
            matches!(put(&mut client, None, 1, "d").await, Err(e) if status_of(&e) == Code::Unauthenticated)
        }
    })
    .await;
    let unknown = admin.token_revoke("delta", "nope").await.unwrap_err();
    assert_eq!(status_of(&unknown), Code::NotFound);

    // Expiry follows the server's clock.
    let expiring = admin
        .token_issue(TokenIssueRequest {
            tenant: "delta".into(),
            expires_at_ms: (fixed_now() + chrono::Duration::hours(1)).timestamp_millis(),
            description: "ci".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut client = first.client(&expiring.token).await;
    put(&mut client, None, 1, "e").await.unwrap();
    first.clock.set(fixed_now() + chrono::Duration::hours(2));
    let err = put(&mut client, None, 1, "f").await.unwrap_err();
    assert_eq!(status_of(&err), Code::Unauthenticated);
    assert!(err.to_string().contains("expired"), "{err}");
    second.shutdown().await;
    first.shutdown().await;
}

#[tokio::test]
async fn a_registry_change_on_one_server_is_in_force_on_the_other() {
    let first = TestServer::start_with(quick_registry).await;
    let lake = first.lake.path().to_string_lossy().into_owned();
    let second = TestServer::start_with(|c| {
        quick_registry(c);
        c.set_lake(lake);
    })
    .await;
    let mut on_first = first.client(ADMIN).await;
    let mut beta_on_second = second.client(BETA).await;
    put(&mut beta_on_second, None, 2, "a").await.unwrap();
    on_first
        .tenant_update(
            Tenant {
                id: "beta".into(),
                state: Some("suspended".into()),
                ..Default::default()
            },
            vec!["state".into()],
        )
        .await
        .unwrap();
    let endpoint = second.endpoint();
    eventually("the second server refuses the suspended tenant", || {
        let endpoint = endpoint.clone();
        async move {
            let mut client = Client::connect(&endpoint).await.unwrap().with_token(BETA);
            matches!(put(&mut client, None, 1, "b").await, Err(e) if status_of(&e) == Code::FailedPrecondition)
        }
    })
    .await;
    second.shutdown().await;
    first.shutdown().await;
}

#[tokio::test]
async fn usage_counts_what_the_store_holds_and_the_hard_quota_refuses_before_writing() {
    let server = TestServer::start().await;
    let mut admin = server.client(ADMIN).await;
    let mut acme = server.client(ACME).await;
    for i in 0..3 {
        put(&mut acme, None, 20, &format!("a{i}")).await.unwrap();
    }
    let on_disk = listed_bytes(&server.table_path("acme", "snowplow"));
    assert!(on_disk > 0);
    assert_eq!(table_bytes(&mut admin, "acme", "snowplow").await, on_disk);

    let soft = admin
        .tenant_update(
            Tenant {
                id: "acme".into(),
                quota_soft_bytes: Some(1),
                ..Default::default()
            },
            vec!["quota_soft".into()],
        )
        .await
        .unwrap();
    assert_eq!(soft.quota_soft_bytes, Some(1));
    let report = acme.quota_report(None).await.unwrap();
    assert_eq!(report.tenants.len(), 1, "a tenant sees only itself");
    assert_eq!(report.tenants[0].quota_state, "soft_exceeded");
    put(&mut acme, None, 1, "still-allowed").await.unwrap();

    let used = table_bytes(&mut admin, "acme", "snowplow").await;
    admin
        .tenant_update(
            Tenant {
                id: "acme".into(),
                quota_hard_bytes: Some(used as u64),
                ..Default::default()
            },
            vec!["quota_hard".into()],
        )
        .await
        .unwrap();
    let files_before = server.files_on_disk("acme", "snowplow");
    let err = put(&mut acme, None, 5, "refused").await.unwrap_err();
    assert_eq!(status_of(&err), Code::ResourceExhausted, "{err}");
    assert!(err.to_string().contains("hard storage quota"), "{err}");
    assert_eq!(
        server.files_on_disk("acme", "snowplow"),
        files_before,
        "nothing written"
    );
    let mut beta = server.client(BETA).await;
    put(&mut beta, None, 5, "b").await.unwrap();
    let rows = admin.quota_report(Some("acme")).await.unwrap().tenants[0].clone();
    assert_eq!(rows.quota_state, "hard_exceeded");
    assert_eq!(rows.rows, 61);
    server.shutdown().await;
}

#[tokio::test]
async fn a_listing_reconciles_objects_the_counts_missed_and_a_restart_counts_the_same() {
    let server = TestServer::start_with(|c| {
        c.tenancy.usage_reconcile_interval = Duration::from_millis(100);
    })
    .await;
    let mut acme = server.client(ACME).await;
    put(&mut acme, None, 10, "a").await.unwrap();
    // An orphan (a failed stream of another replica, say) bills until vacuumed.
    let stray = server.table_path("acme", "snowplow").join("orphan.parquet");
    std::fs::write(&stray, vec![7u8; 1234]).unwrap();
    let table = server.table_path("acme", "snowplow");
    let mut admin = server.client(ADMIN).await;
    let endpoint = server.endpoint();
    eventually("the listing finds the orphan", || {
        let endpoint = endpoint.clone();
        let expected = listed_bytes(&table);
        async move {
            let mut client = Client::connect(&endpoint).await.unwrap().with_token(ADMIN);
            let report = client.quota_report(Some("acme")).await.unwrap();
            report.tenants[0].usage_bytes == expected && report.tenants[0].drift_bytes == 1234
        }
    })
    .await;
    let before = table_bytes(&mut admin, "acme", "snowplow").await;
    let lake = server.lake.path().to_path_buf();
    let dir = server.lake.path().to_string_lossy().into_owned();
    let restarted = TestServer::start_with(|c| c.set_lake(dir)).await;
    let mut admin = restarted.client(ADMIN).await;
    assert_eq!(table_bytes(&mut admin, "acme", "snowplow").await, before);
    let endpoint = restarted.endpoint();
    eventually("the restarted server counts the table's rows", || {
        let endpoint = endpoint.clone();
        async move {
            let mut client = Client::connect(&endpoint).await.unwrap().with_token(ADMIN);
            let report = client.quota_report(Some("acme")).await.unwrap();
            report.tenants[0].rows == 10
        }
    })
    .await;
    assert_eq!(before, listed_bytes(&lake.join("tenant_id=acme/snowplow")));
    restarted.shutdown().await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_rate_limit_slows_only_its_tenant_and_does_not_fail_it() {
    let server = TestServer::start_with(|c| {
        c.auth.tenants[0].settings.rows_per_second = Some(1);
        c.auth.tenants[0].settings.burst_rows = Some(5);
    })
    .await;
    let mut acme = server.client(ACME).await;
    put(&mut acme, None, 5, "burst").await.unwrap();
    // 600 rows at 1 row/s: this stream waits for minutes, without failing.
    let endpoint = server.endpoint();
    let slow = tokio::spawn(async move {
        let mut acme = Client::connect(&endpoint).await.unwrap().with_token(ACME);
        put(&mut acme, None, 600, "slow").await
    });
    let mut beta = server.client(BETA).await;
    for i in 0..5 {
        put(&mut beta, None, 200, &format!("b{i}")).await.unwrap();
    }
    assert_eq!(server.count("beta", "snowplow").await, 1000);
    assert!(
        !slow.is_finished(),
        "acme's stream is held back by its rate"
    );
    slow.abort();
    assert_eq!(server.count("acme", "snowplow").await, 5);
    server.shutdown().await;
}

fn clicks_with(x: Option<arrow::array::ArrayRef>) -> arrow::array::RecordBatch {
    use std::sync::Arc;
    let mut columns: Vec<(&str, arrow::array::ArrayRef)> = vec![
        (
            "ts",
            Arc::new(arrow::array::StringArray::from(vec![
                "2024-05-01T10:00:00Z",
            ])),
        ),
        (
            "app",
            Arc::new(arrow::array::StringArray::from(vec!["shop"])),
        ),
    ];
    columns.extend(x.map(|x| ("x", x)));
    arrow::array::RecordBatch::try_from_iter(columns).unwrap()
}

#[tokio::test]
async fn the_files_of_a_failed_stream_count_until_vacuumed() {
    use std::sync::Arc;
    // Both units wait for one group commit, where their clashing types for `x` meet.
    let server =
        TestServer::start_with(|c| c.ingest.commit_interval = Duration::from_secs(2)).await;
    let mut acme = server.client(ACME).await;
    acme.put(None, "clicks", vec![clicks_with(None)])
        .await
        .unwrap();
    let puts = [
        clicks_with(Some(Arc::new(arrow::array::Int64Array::from(vec![2])))),
        clicks_with(Some(Arc::new(arrow::array::StringArray::from(vec![
            "text",
        ])))),
    ]
    .map(|batch| {
        let endpoint = server.endpoint();
        tokio::spawn(async move {
            let mut client = Client::connect(&endpoint).await.unwrap().with_token(ACME);
            client.put(None, "clicks", vec![batch]).await
        })
    });
    let mut failed = 0;
    for put in puts {
        if let Err(e) = put.await.unwrap() {
            assert_eq!(status_of(&e), Code::Aborted, "{e}");
            failed += 1;
        }
    }
    assert_eq!(failed, 1, "the second new type of x loses at the commit");
    let table = server.table("acme", "clicks").await;
    let committed = table.snapshot().unwrap().log_data().num_files();
    let on_disk = server.files_on_disk("acme", "clicks").len();
    assert!(
        on_disk > committed,
        "the refused unit left its file: {on_disk} > {committed}"
    );
    let mut admin = server.client(ADMIN).await;
    assert_eq!(
        table_bytes(&mut admin, "acme", "clicks").await,
        listed_bytes(&server.table_path("acme", "clicks"))
    );
    server.shutdown().await;
}
