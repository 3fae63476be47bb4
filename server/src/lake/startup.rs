//! Start-up checks of the lake: tenant keys each usable store can apply, and tables that
//! live in another store than the routes name now.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use futures::StreamExt;
use tracing::{info, warn};

use super::{LakeError, Placement, Store, TenantPlacement};

pub(super) fn reachable<'a>(
    placement: &'a Placement,
    unreachable: &'a HashMap<String, String>,
) -> impl Iterator<Item = &'a Arc<Store>> {
    placement
        .stores()
        .filter(|s| !unreachable.contains_key(&s.name))
}

/// Scans every reachable store for tables the routes would now put elsewhere; such a
/// table stays where it is (never split across stores), and the server says so.
pub(super) async fn find_moved_tables(
    placement: &Placement,
    tenants: &BTreeMap<String, TenantPlacement>,
    unreachable: &HashMap<String, String>,
) -> HashMap<(String, String), Arc<Store>> {
    let mut moved = HashMap::new();
    for store in reachable(placement, unreachable) {
        let found = match store.tenants().await {
            Ok(t) => t,
            Err(e) => {
                warn!(store = %store.name, error = %e, "cannot list tenants");
                continue;
            }
        };
        let scans = found.into_iter().map(|tenant| async move {
            let datasets = store.datasets_of(&tenant).await.unwrap_or_default();
            (tenant, datasets)
        });
        let mut scans = futures::stream::iter(scans).buffer_unordered(16);
        while let Some((tenant, datasets)) = scans.next().await {
            let region = tenants.get(&tenant).and_then(|t| t.region.as_deref());
            for dataset in datasets {
                let configured = placement.choose(&tenant, region, &dataset);
                if configured.as_ref().is_ok_and(|c| c.name == store.name) {
                    continue;
                }
                if !store.has_table(&tenant, &dataset).await.unwrap_or(false) {
                    continue;
                }
                let configured = configured.map_or_else(|_| "none".into(), |c| c.name.clone());
                warn!(
                    %tenant, %dataset, store = %store.name, %configured,
                    "table lives in another store than the routes name now; it stays there (see system.tables)"
                );
                moved.insert((tenant.clone(), dataset), store.clone());
            }
        }
    }
    if !moved.is_empty() {
        info!(
            tables = moved.len(),
            "tables kept in the store they were created in"
        );
    }
    moved
}

/// Refuses at startup a tenant key that a store the tenant may use cannot apply.
pub(super) fn check_tenant_key(
    placement: &Placement,
    tenant: &str,
    settings: &TenantPlacement,
) -> Result<(), LakeError> {
    let Some(key) = &settings.key else {
        return Ok(());
    };
    for store in placement.stores() {
        if !store.may_take(settings.region.as_deref()) {
            continue;
        }
        if !key.applies_to(store.kind) {
            return Err(LakeError::StoreConfig {
                store: store.name.clone(),
                message: format!(
                    "tenant {tenant:?} has a {} key, which a {:?} store cannot apply; give the tenant a region whose stores can, or another key kind",
                    key.kind(),
                    store.kind
                ),
            });
        }
        // Builds (and caches) the tenant's client now, so a key the store's auth cannot
        // carry refuses to start instead of failing the tenant's first write.
        store.client(Some(key)).map_err(|e| match e {
            LakeError::StoreConfig { store, message } => LakeError::StoreConfig {
                store,
                message: format!("tenant {tenant:?}: {message}"),
            },
            other => other,
        })?;
    }
    Ok(())
}
