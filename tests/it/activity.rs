//! Tenant activity is shared and durable: a query on one server shows as the tenant's last
//! query on a server started later on the same lake, read from the registry.

use std::time::Duration;

use crate::fixture::*;

fn quick_flush(c: &mut lakeport_server::Config) {
    c.tenancy.activity_flush = Duration::from_millis(20);
}

#[tokio::test]
async fn last_write_and_query_outlive_the_server_that_saw_them() {
    let first = TestServer::start_with(quick_flush).await;
    let mut acme = first.client(ACME).await;
    acme.put(
        None,
        "snowplow",
        vec![snowplow_batch("web", fixed_now(), 3, "a")],
    )
    .await
    .unwrap();
    let (_, stream) = acme.query("SELECT count(*) FROM snowplow").await.unwrap();
    drop(stream);
    let stored = first
        .lake
        .path()
        .join("_lakeport/tenants/acme/activity.json");
    eventually("the activity is written to the registry", || {
        let stored = stored.clone();
        async move {
            std::fs::read(&stored)
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .is_some_and(|v| v["last_query"].is_string() && v["last_write"].is_string())
        }
    })
    .await;
    let lake = first.lake.path().to_string_lossy().into_owned();
    let second = TestServer::start_with(|c| {
        quick_flush(c);
        c.set_lake(lake);
    })
    .await;
    let expected = fixed_now().timestamp_millis();
    let second = &second;
    eventually("the second server reads the activity", || async move {
        let mut admin = second.client(ADMIN).await;
        let acme = admin.tenant_get("acme").await.unwrap();
        acme.last_query_ms == expected && acme.last_write_ms > 0
    })
    .await;
    let mut admin = second.client(ADMIN).await;
    let beta = admin.tenant_get("beta").await.unwrap();
    assert_eq!((beta.last_query_ms, beta.last_write_ms), (0, 0));
}
