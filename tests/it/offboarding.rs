//! `tenant.delete`: every object of the tenant goes, its record and tokens with it, and
//! nothing of another tenant is touched; the request is refused unless an admin names the
//! tenant twice, and a tenant in the config file is refused until it leaves the file.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};

use lakeport_client::{Tenant, TokenIssueRequest};
use tonic::Code;

use crate::fixture::*;

#[tokio::test]
async fn a_deleted_tenant_leaves_nothing_and_others_keep_everything() {
    let server = TestServer::start().await;
    let mut admin = server.client(ADMIN).await;
    admin
        .tenant_create(Tenant {
            id: "gamma".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let token = admin
        .token_issue(TokenIssueRequest {
            tenant: "gamma".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .token;
    let mut gamma = server.client(&token).await;
    let mut acme = server.client(ACME).await;
    for client in [&mut gamma, &mut acme] {
        client
            .put(
                None,
                "snowplow",
                vec![snowplow_batch("web", fixed_now(), 20, "e")],
            )
            .await
            .unwrap();
    }
    // A row without a usable event time goes to gamma's `_rejected` table, which goes too.
    let clicks = RecordBatch::try_from_iter([
        (
            "ts",
            Arc::new(StringArray::from(vec![
                "2024-05-01T10:00:00Z",
                "not a time",
            ])) as ArrayRef,
        ),
        ("app", Arc::new(StringArray::from(vec!["shop", "shop"]))),
    ])
    .unwrap();
    let acks = gamma.put(None, "clicks", vec![clicks]).await.unwrap();
    assert_eq!(acks.iter().map(|a| a.rows_rejected).sum::<u64>(), 1);
    let gamma_dir = server.lake.path().join("tenant_id=gamma");
    assert!(gamma_dir.join("_rejected").exists());
    let others = files_under(&server.lake.path().join("tenant_id=acme"));
    let gamma_files = files_under(&gamma_dir);

    let refused = [
        (
            server
                .client(ACME)
                .await
                .tenant_delete("gamma", "gamma")
                .await,
            Code::PermissionDenied,
        ),
        (
            admin.tenant_delete("gamma", "gama").await,
            Code::InvalidArgument,
        ),
        (
            admin.tenant_delete("acme", "acme").await,
            Code::FailedPrecondition,
        ),
        (
            admin.tenant_delete("nobody", "nobody").await,
            Code::NotFound,
        ),
    ];
    for (result, code) in refused {
        assert_eq!(status_of(&result.unwrap_err()), code);
    }

    let deleted = admin.tenant_delete("gamma", "gamma").await.unwrap();
    assert_eq!(deleted.stores.len(), 1);
    assert_eq!(deleted.stores[0].objects as usize, gamma_files.len());
    assert_eq!(deleted.stores[0].bytes, gamma_files.values().sum::<u64>());
    assert!(!gamma_dir.exists(), "nothing of gamma is left");
    assert_eq!(
        files_under(&server.lake.path().join("tenant_id=acme")),
        others
    );
    let registry = server.lake.path().join("_lakeport/tenants/gamma");
    assert!(files_under(&registry).is_empty(), "its record is gone");

    assert_eq!(
        status_of(&admin.tenant_get("gamma").await.unwrap_err()),
        Code::NotFound
    );
    let err = gamma
        .put(
            None,
            "snowplow",
            vec![snowplow_batch("web", fixed_now(), 1, "z")],
        )
        .await
        .unwrap_err();
    assert_eq!(
        status_of(&err),
        Code::Unauthenticated,
        "its tokens went with it"
    );
    assert_eq!(server.count("acme", "snowplow").await, 20);
}
