//! Start-up checks of the lake: tenant keys each usable store can apply, and tables that
//! live in another store than the routes name now.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tracing::{info, warn};

use super::{LakeError, Placement, Store, TenantPlacement};

pub(super) fn reachable<'a>(
    placement: &'a Placement,
    unreachable: &'a HashMap<String, String>,
) -> impl Iterator<Item = &'a Arc<Store>> {
    placement
        .hot_stores()
        .filter(|s| !unreachable.contains_key(&s.name))
}

/// Tries a store listing at start-up this many times before giving up on it.
const LISTING_ATTEMPTS: u32 = 3;
/// Wait before the second attempt; it doubles for each further one.
const LISTING_RETRY_DELAY: Duration = Duration::from_millis(200);

/// What the start-up scan asks of a store (a trait so a unit test can fail one listing).
pub(super) trait Listing {
    fn name(&self) -> &str;
    async fn tenants(&self) -> Result<Vec<String>, LakeError>;
    async fn datasets_of(&self, tenant: &str) -> Result<Vec<String>, LakeError>;
    async fn has_table(&self, tenant: &str, dataset: &str) -> Result<bool, LakeError>;
}

impl Listing for Store {
    fn name(&self) -> &str {
        &self.name
    }
    async fn tenants(&self) -> Result<Vec<String>, LakeError> {
        Store::tenants(self).await
    }
    async fn datasets_of(&self, tenant: &str) -> Result<Vec<String>, LakeError> {
        Store::datasets_of(self, tenant).await
    }
    async fn has_table(&self, tenant: &str, dataset: &str) -> Result<bool, LakeError> {
        Store::has_table(self, tenant, dataset).await
    }
}

/// What the start-up scan found: tables that stay in a store the routes no longer name,
/// and tenants whose tables could not be listed (tenant → why). Such a tenant's tables
/// could be anywhere, so none of them is placed until a restart lists them.
#[derive(Debug, Default)]
pub(super) struct Scan {
    pub(super) moved: HashMap<(String, String), Arc<Store>>,
    pub(super) unlisted: HashMap<String, LakeError>,
    /// Stores whose tenants could not be listed, left out (`allow_unreachable`): name → why.
    pub(super) unreachable: Vec<(String, String)>,
}

/// Scans every reachable store for tables the routes would now put elsewhere; such a
/// table stays where it is (never split across stores), and the server says so. A store
/// whose tenants cannot be listed fails the start, or with `allow_unreachable` is left
/// out like a store that did not answer.
pub(super) async fn find_moved_tables(
    placement: &Placement,
    tenants: &BTreeMap<String, TenantPlacement>,
    unreachable: &HashMap<String, String>,
    allow_unreachable: bool,
) -> Result<Scan, LakeError> {
    let mut scan = Scan::default();
    for store in reachable(placement, unreachable) {
        let found = scan_store(store.as_ref(), |tenant, dataset| {
            let region = tenants.get(tenant).and_then(|t| t.region.as_deref());
            placement
                .choose(tenant, region, dataset)
                .ok()
                .map(|c| c.name.clone())
        })
        .await;
        let found = match found {
            Ok(found) => found,
            Err(e) if allow_unreachable => {
                warn!(store = %store.name, error = %e, "store left out; its tables answer UNAVAILABLE until restart");
                scan.unreachable.push((store.name.clone(), e.to_string()));
                continue;
            }
            Err(e) => return Err(e),
        };
        for (tenant, dataset, configured) in found.moved {
            warn!(
                %tenant, %dataset, store = %store.name, configured = configured.as_deref().unwrap_or("none"),
                "table lives in another store than the routes name now; it stays there (see system.tables)"
            );
            scan.moved.insert((tenant, dataset), store.clone());
        }
        for (tenant, error) in found.unlisted {
            warn!(%tenant, store = %store.name, error = %error, "cannot list the tenant's tables; its tables answer UNAVAILABLE until a restart lists them");
            scan.unlisted.insert(tenant, error);
        }
    }
    if !scan.moved.is_empty() {
        info!(
            tables = scan.moved.len(),
            "tables kept in the store they were created in"
        );
    }
    Ok(scan)
}

/// One store's part of the scan.
#[derive(Debug, Default)]
pub(super) struct StoreScan {
    /// (tenant, dataset, the store the routes name now) of tables living here instead.
    moved: Vec<(String, String, Option<String>)>,
    unlisted: Vec<(String, LakeError)>,
}

/// `configured` names the store the routes put a (tenant, dataset) in now.
async fn scan_store<S: Listing>(
    store: &S,
    configured: impl Fn(&str, &str) -> Option<String>,
) -> Result<StoreScan, LakeError> {
    let tenants = retried(|| store.tenants()).await.map_err(|e| {
        LakeError::StoreUnreachable {
            store: store.name().to_string(),
            reason: format!("cannot list its tenants to find the tables it holds ({e}); start once it answers, or with --allow-unreachable-stores to leave it out"),
        }
    })?;
    let configured = &configured;
    let scans = tenants.into_iter().map(|tenant| async move {
        let found = list_tables_elsewhere(store, &tenant, configured).await;
        (tenant, found)
    });
    let mut scans = futures::stream::iter(scans).buffer_unordered(16);
    let mut found = StoreScan::default();
    while let Some((tenant, tables)) = scans.next().await {
        match tables {
            Ok(tables) => found.moved.extend(
                tables
                    .into_iter()
                    .map(|(dataset, now)| (tenant.clone(), dataset, now)),
            ),
            Err(e) => found.unlisted.push((tenant, e)),
        }
    }
    Ok(found)
}

/// The tenant's tables in `store` that the routes would put in another store now.
async fn list_tables_elsewhere<S: Listing>(
    store: &S,
    tenant: &str,
    configured: &impl Fn(&str, &str) -> Option<String>,
) -> Result<Vec<(String, Option<String>)>, LakeError> {
    let mut elsewhere = Vec::new();
    for dataset in retried(|| store.datasets_of(tenant)).await? {
        let now = configured(tenant, &dataset);
        if now.as_deref() == Some(store.name()) {
            continue;
        }
        if retried(|| store.has_table(tenant, &dataset)).await? {
            elsewhere.push((dataset, now));
        }
    }
    Ok(elsewhere)
}

async fn retried<T, F, Fut>(mut attempt: F) -> Result<T, LakeError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, LakeError>>,
{
    let mut delay = LISTING_RETRY_DELAY;
    let mut tries = 1;
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(e) if tries >= LISTING_ATTEMPTS => return Err(e),
            Err(_) => {
                tokio::time::sleep(delay).await;
                delay *= 2;
                tries += 1;
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A store holding tenant `acme`'s `snowplow` table and `globex`'s `otel_logs`, whose
    /// listing of `failing`'s tables always fails.
    struct Fake {
        failing: &'static str,
    }

    impl Listing for Fake {
        fn name(&self) -> &str {
            "old"
        }
        async fn tenants(&self) -> Result<Vec<String>, LakeError> {
            Ok(vec!["acme".into(), "globex".into()])
        }
        async fn datasets_of(&self, tenant: &str) -> Result<Vec<String>, LakeError> {
            if tenant == self.failing {
                return Err(LakeError::StoreUnreachable {
                    store: "old".into(),
                    reason: "503 Slow Down".into(),
                });
            }
            Ok(vec![match tenant {
                "acme" => "snowplow".into(),
                _ => "otel_logs".into(),
            }])
        }
        async fn has_table(&self, _: &str, _: &str) -> Result<bool, LakeError> {
            Ok(true)
        }
    }

    /// The routes name store `new` for everything now.
    fn routes(_: &str, _: &str) -> Option<String> {
        Some("new".into())
    }

    #[tokio::test(start_paused = true)]
    async fn a_tenant_whose_tables_cannot_be_listed_is_not_placed() {
        let found = scan_store(&Fake { failing: "acme" }, routes)
            .await
            .expect("the store's tenants were listed");
        // Guessing "no tables" would let acme's next write start a second snowplow table
        // in `new`: one (tenant, dataset) split across two stores.
        let unlisted: Vec<&str> = found.unlisted.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(unlisted, ["acme"]);
        assert_eq!(
            found.moved,
            [("globex".into(), "otel_logs".into(), Some("new".into()))]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_store_whose_tenants_cannot_be_listed_fails_the_scan() {
        struct Silent;
        impl Listing for Silent {
            fn name(&self) -> &str {
                "old"
            }
            async fn tenants(&self) -> Result<Vec<String>, LakeError> {
                Err(LakeError::Internal("connection reset".into()))
            }
            async fn datasets_of(&self, _: &str) -> Result<Vec<String>, LakeError> {
                Ok(Vec::new())
            }
            async fn has_table(&self, _: &str, _: &str) -> Result<bool, LakeError> {
                Ok(false)
            }
        }
        let failed = scan_store(&Silent, routes).await.expect_err("no guess");
        assert!(
            matches!(&failed, LakeError::StoreUnreachable { store, .. } if store == "old"),
            "{failed}"
        );
    }
}
