use super::*;
use crate::datasets::Datasets;

async fn local_lake(dir: &std::path::Path, idle: Duration) -> Arc<Lake> {
    let settings = LakeSettings {
        stores: BTreeMap::from([(
            DEFAULT_STORE.to_string(),
            StoreSpec {
                url: dir.to_string_lossy().into_owned(),
                ..Default::default()
            },
        )]),
        routes: Vec::new(),
        tenants: BTreeMap::new(),
        commit: CommitPolicy {
            interval: Duration::from_millis(1),
            checkpoint_every: 50,
        },
        table_idle_timeout: idle,
        allow_unreachable_stores: false,
    };
    Lake::open(settings).await.expect("lake opens")
}

#[tokio::test]
async fn idle_tables_are_dropped_with_their_committer_unless_in_use() {
    let dir = tempfile::TempDir::new().unwrap();
    let lake = local_lake(dir.path(), Duration::ZERO).await;
    let snowplow = Datasets::new(&BTreeMap::new())
        .unwrap()
        .get("snowplow")
        .unwrap();
    let held = lake.table("acme", &snowplow).unwrap();
    let delta = Arc::downgrade(held.state());
    for tenant in ["t1", "t2", "t3"] {
        lake.table(tenant, &snowplow).unwrap();
    }
    assert_eq!(lake.open_tables(), 4);
    assert_eq!(lake.evict_idle(), 3, "only the tables nobody holds go");
    assert_eq!(lake.open_tables(), 1);
    drop(held);
    lake.evict_idle();
    assert_eq!(lake.open_tables(), 0);
    // The committer task held the table's state; it ends once its handle is gone.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while delta.upgrade().is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "committer still running"
        );
        tokio::task::yield_now().await;
    }
    lake.close();
}
