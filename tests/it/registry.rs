//! One tenant record this server cannot read (a newer server wrote a field or state it does
//! not know) stops only that tenant's changes: every other tenant's still take effect.

use std::path::Path;
use std::time::Duration;

use lakeport_client::Tenant;

use crate::fixture::*;

/// The newest revision file of a tenant's record and its number.
fn newest(dir: &Path) -> (u64, serde_json::Value) {
    let (revision, path) = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let n = name.strip_suffix(".json")?.parse::<u64>().ok()?;
            Some((n, e.path()))
        })
        .max()
        .unwrap();
    let record = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    (revision, record)
}

#[tokio::test]
async fn an_unreadable_record_holds_back_only_its_own_tenant() {
    let server = TestServer::start_with(|c| {
        c.tenancy.registry_refresh = Duration::from_millis(20);
    })
    .await;
    let mut admin = server.client(ADMIN).await;
    for id in ["gamma", "delta"] {
        let tenant = Tenant {
            id: id.into(),
            display_name: Some(format!("{id} at first")),
            ..Default::default()
        };
        admin.tenant_create(tenant).await.unwrap();
    }
    let registry = server.lake.path().join("_lakeport/tenants");
    // As another replica would write them: gamma's with a field this server lacks, delta's
    // a plain change.
    let (revision, mut gamma) = newest(&registry.join("gamma"));
    gamma["settings"]["a_future_setting"] = serde_json::json!(true);
    let next = registry.join(format!("gamma/{:020}.json", revision + 1));
    std::fs::write(next, serde_json::to_vec(&gamma).unwrap()).unwrap();
    let (revision, mut delta) = newest(&registry.join("delta"));
    delta["settings"]["display_name"] = serde_json::json!("delta renamed");
    let next = registry.join(format!("delta/{:020}.json", revision + 1));
    std::fs::write(next, serde_json::to_vec(&delta).unwrap()).unwrap();

    let server = &server;
    eventually(
        "delta's change is read despite gamma's record",
        || async move {
            let mut admin = server.client(ADMIN).await;
            let delta = admin.tenant_get("delta").await.unwrap();
            delta.display_name.as_deref() == Some("delta renamed")
        },
    )
    .await;
    let gamma = admin.tenant_get("gamma").await.unwrap();
    assert_eq!(gamma.display_name.as_deref(), Some("gamma at first"));
}

/// The registry's generation id, which every replica's refresh reads before it decides to
/// list the records.
fn generation(server: &TestServer) -> Option<String> {
    std::fs::read_to_string(server.lake.path().join("_lakeport/tenants.generation")).ok()
}

#[tokio::test]
async fn every_change_of_a_record_gives_the_registry_a_new_generation() {
    let server = TestServer::start().await;
    let mut admin = server.client(ADMIN).await;
    let tenant = Tenant {
        id: "epsilon".into(),
        ..Default::default()
    };
    admin.tenant_create(tenant.clone()).await.unwrap();
    let created = generation(&server).expect("a generation after the first record");
    let renamed = Tenant {
        display_name: Some("epsilon renamed".into()),
        ..tenant
    };
    admin
        .tenant_update(renamed, vec!["display_name".into()])
        .await
        .unwrap();
    let updated = generation(&server).unwrap();
    assert_ne!(updated, created, "an update is a change");
    admin.tenant_get("epsilon").await.unwrap();
    assert_eq!(generation(&server).unwrap(), updated, "a read is none");
}
