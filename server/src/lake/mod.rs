//! The lake: the stores tables live in, where each (tenant, dataset) table goes, the
//! registry of open tables, and the machinery that writes and commits their files.

mod archive;
mod blind_append;
mod checkpointer;
mod commit_log;
#[cfg(test)]
mod commit_tests;
pub mod committer;
pub mod copy;
pub mod delta;
pub mod dictionary;
pub mod encryption;
mod erase;
mod error;
pub mod files;
pub mod group_commit;
mod layout;
pub mod metrics;
mod partition_key;
pub mod placement;
mod registry;
pub mod retention;
mod sequences;
mod shared_files;
mod startup;
pub mod stats;
mod store_kind;
pub mod stores;
pub mod system_table;
pub mod table;
mod table_state;
mod tables;
pub mod usage;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::datasets::Dataset;
pub use archive::ArchivedStore;
pub use commit_log::{commit_files, last_checkpoint, read_commit, CommitSummary};
pub use committer::{CommitOutcome, CommitPolicy, UnitFiles};
pub use encryption::{KeySpec, TenantKey};
pub use erase::StoreErased;
pub use error::LakeError;
pub use group_commit::IncomingUnit;
pub use layout::{
    live_files, live_paths, partition_name, partition_usage, FileTargets, LiveFile, PartitionUsage,
};
pub use partition_key::{escape_path_value, PartitionKey, MICROS_PER_HOUR, NULL_PARTITION};
pub use placement::{Placement, RouteSpec, DEFAULT_STORE};
use registry::TableRegistry;
pub use retention::{partition_hour, Cutoff, KeepForever, RetentionPolicy};
pub use sequences::{RangeCheck, SequenceRange};
pub use shared_files::UnitRows;
use startup::{check_tenant_key, find_moved_tables, reachable};
pub use stores::{Store, StoreKind, StoreSpec};
pub use system_table::SystemTable;
pub use table::{PendingCommit, TableHandle};
pub use tables::{LakeTables, LoadedTable, NoDirectory, TenantDirectory};
pub use usage::{TableUsage, UsageLedger};

/// A tenant's placement settings.
#[derive(Debug, Clone, Default)]
pub struct TenantPlacement {
    pub region: Option<String>,
    pub key: Option<TenantKey>,
    /// Set while the tenant's live tables must not be opened.
    pub sealed: Option<Sealed>,
}

/// Why a tenant's tables are closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sealed {
    /// Its data is being deleted.
    Deleting,
    /// Its tables are leaving for the archive store, are there, or are coming back.
    Archived,
}

impl Sealed {
    fn error(self, tenant: &str) -> LakeError {
        match self {
            Sealed::Deleting => LakeError::TenantDeleting(tenant.to_string()),
            Sealed::Archived => LakeError::TenantArchived(tenant.to_string()),
        }
    }
}

/// Everything the lake is built from (plain values; the config module produces them).
#[derive(Debug, Clone)]
pub struct LakeSettings {
    pub stores: BTreeMap<String, StoreSpec>,
    pub routes: Vec<RouteSpec>,
    pub tenants: BTreeMap<String, TenantPlacement>,
    /// When tables commit and checkpoint.
    pub commit: CommitPolicy,
    /// A table unused this long is dropped from memory (snapshot and committer).
    pub table_idle_timeout: Duration,
    /// Start even when a store cannot be listed; its tables answer UNAVAILABLE.
    pub allow_unreachable_stores: bool,
}

/// Where a table is and where the configuration would put it.
#[derive(Debug, Clone)]
pub struct TableLocation {
    pub store: Arc<Store>,
    /// The store the routes name now (`None` when no store may take the tenant).
    pub configured: Option<Arc<Store>>,
}

/// All tables of every store.
#[derive(Debug)]
pub struct Lake {
    placement: Placement,
    /// Configured tenants at start; the tenant registry adds and changes them.
    tenants: RwLock<BTreeMap<String, TenantPlacement>>,
    usage: Arc<UsageLedger>,
    /// Tables found at startup in a store other than the one the routes name now.
    moved: HashMap<(String, String), Arc<Store>>,
    /// Tenants whose tables could not be listed at startup, with the failure: their
    /// tables could live in any store, so none is placed.
    unlisted: HashMap<String, LakeError>,
    /// Stores that could not be reached at startup, with the reason.
    unreachable: HashMap<String, String>,
    registry: TableRegistry,
    commit_policy: CommitPolicy,
    table_idle_timeout: Duration,
    closed: CancellationToken,
}

impl Lake {
    /// Builds the stores, checks that each is reachable (and that S3 stores honour
    /// conditional put), finds tables that live elsewhere than the routes say, and starts
    /// the idle-table sweeper.
    pub async fn open(settings: LakeSettings) -> Result<Arc<Self>, LakeError> {
        let mut stores = BTreeMap::new();
        for (name, spec) in &settings.stores {
            stores.insert(name.clone(), Arc::new(Store::new(name, spec)?));
        }
        let placement = Placement::new(stores, &settings.routes)?;
        for (tenant, t) in &settings.tenants {
            check_tenant_key(&placement, tenant, t)?;
        }
        let mut unreachable = HashMap::new();
        for store in placement.stores() {
            let checked = match store.check().await {
                Ok(()) => store.check_conditional_put().await,
                Err(e) => Err(e),
            };
            match checked {
                Ok(()) => {}
                Err(e @ LakeError::StoreConfig { .. }) => return Err(e),
                Err(e) if settings.allow_unreachable_stores => {
                    warn!(store = %store.name, error = %e, "store unreachable; its tables answer UNAVAILABLE until restart");
                    unreachable.insert(store.name.clone(), e.to_string());
                }
                Err(e) => {
                    return Err(LakeError::StoreUnreachable {
                        store: store.name.clone(),
                        reason: format!(
                            "{e} (start with --allow-unreachable-stores to serve the other stores)"
                        ),
                    })
                }
            }
        }
        let scan = find_moved_tables(
            &placement,
            &settings.tenants,
            &unreachable,
            settings.allow_unreachable_stores,
        )
        .await?;
        unreachable.extend(scan.unreachable);
        let lake = Arc::new(Self {
            placement,
            tenants: RwLock::new(settings.tenants),
            usage: Arc::default(),
            moved: scan.moved,
            unlisted: scan.unlisted,
            unreachable,
            registry: TableRegistry::default(),
            commit_policy: settings.commit,
            table_idle_timeout: settings.table_idle_timeout,
            closed: CancellationToken::new(),
        });
        spawn_sweeper(&lake);
        Ok(lake)
    }

    /// Lists each store's root once (as at startup), each within `timeout`, all at once. A
    /// store unreachable at startup stays failed: its tables are off until a restart.
    pub async fn probe_stores(&self, timeout: Duration) -> Vec<(String, Result<(), LakeError>)> {
        let probes = self.placement.stores().map(|store| async move {
            if let Some(reason) = self.unreachable.get(&store.name) {
                let failed = LakeError::StoreUnreachable {
                    store: store.name.clone(),
                    reason: format!("{reason} (at startup; restart to serve its tables)"),
                };
                return (store.name.clone(), Err(failed));
            }
            let result = match tokio::time::timeout(timeout, store.check()).await {
                Ok(result) => result,
                Err(_) => Err(LakeError::StoreUnreachable {
                    store: store.name.clone(),
                    reason: format!("no answer within {}s", timeout.as_secs()),
                }),
            };
            (store.name.clone(), result)
        });
        futures::future::join_all(probes).await
    }

    /// True when `url` is in a bucket (or, for a local store, on the disk) the lake uses.
    pub fn holds_url(&self, url: &str) -> bool {
        let Ok(url) = url::Url::parse(url) else {
            // Not a URL: a local path, which is the lake's disk as far as a caller knows.
            return true;
        };
        self.placement.stores().any(|s| s.shares_bucket_with(&url))
    }

    /// A directory of a configured store, as a store of its own (an export target).
    pub fn store_beneath(&self, name: &str, path: &str) -> Result<Store, LakeError> {
        let store = self
            .placement
            .stores()
            .find(|s| s.name == name)
            .ok_or_else(|| LakeError::BadLocation(format!("no store named {name:?}")))?;
        store.beneath(path)
    }

    pub fn default_store(&self) -> &Arc<Store> {
        self.placement.default_store()
    }

    fn tenant(&self, tenant: &str) -> TenantPlacement {
        let tenants = self.tenants.read().unwrap_or_else(|p| p.into_inner());
        tenants.get(tenant).cloned().unwrap_or_default()
    }

    /// Checks a tenant's region and key before they are stored: some store must have the
    /// region, and every store the tenant may use must be able to apply the key.
    pub fn check_tenant(&self, tenant: &str, settings: &TenantPlacement) -> Result<(), LakeError> {
        if let Some(region) = &settings.region {
            if !self.placement.stores().any(|s| s.may_take(Some(region))) {
                let regions: Vec<String> = self
                    .placement
                    .stores()
                    .filter_map(|s| s.region.clone())
                    .collect();
                return Err(LakeError::StoreConfig {
                    store: "(none)".into(),
                    message: format!(
                        "no store has region {region:?} (stores have: {})",
                        if regions.is_empty() {
                            "no region".into()
                        } else {
                            regions.join(", ")
                        }
                    ),
                });
            }
        }
        check_tenant_key(&self.placement, tenant, settings)
    }

    /// Sets a tenant's region and key (the registry's records); a key that a store the
    /// tenant may use cannot apply is refused.
    pub fn set_tenant(&self, tenant: &str, settings: TenantPlacement) -> Result<(), LakeError> {
        check_tenant_key(&self.placement, tenant, &settings)?;
        // Closing: the handles open now (an open stream's) refuse their next commit. Only
        // on the change, not at every registry read of a tenant long closed.
        if let Some(sealed) = settings.sealed.filter(|s| self.sealed(tenant) != Some(*s)) {
            self.registry.retire_tenant(tenant, sealed.error(tenant));
        }
        let mut tenants = self.tenants.write().unwrap_or_else(|p| p.into_inner());
        tenants.insert(tenant.to_string(), settings);
        Ok(())
    }

    /// Why the tenant's tables are closed, if they are.
    pub fn sealed(&self, tenant: &str) -> Option<Sealed> {
        self.tenant(tenant).sealed
    }

    /// The bytes every table holds in its store, kept current by every write of this
    /// process and by `reconcile_usage`.
    pub fn usage(&self) -> &Arc<UsageLedger> {
        &self.usage
    }

    /// True when the tenant's objects are encrypted with a key of its own (SSE-C), which
    /// only a reader holding the key can read.
    pub fn uses_sse_c(&self, tenant: &str) -> bool {
        matches!(self.tenant(tenant).key, Some(TenantKey::SseC { .. }))
    }

    /// Where a table is (or would be created), and where the routes would put it now.
    pub fn locate(&self, tenant: &str, dataset: &str) -> Result<TableLocation, LakeError> {
        if let Some(failed) = self.unlisted.get(tenant) {
            return Err(LakeError::TenantUnlisted {
                tenant: tenant.to_string(),
                reason: failed.to_string(),
            });
        }
        let settings = self.tenant(tenant);
        let configured = self
            .placement
            .choose(tenant, settings.region.as_deref(), dataset);
        let moved = self
            .moved
            .get(&(tenant.to_string(), dataset.to_string()))
            .cloned();
        match (moved, configured) {
            (Some(store), configured) => Ok(TableLocation {
                store,
                configured: configured.ok().cloned(),
            }),
            (None, Ok(store)) => Ok(TableLocation {
                store: store.clone(),
                configured: Some(store.clone()),
            }),
            (None, Err(e)) => Err(e),
        }
    }

    /// The open table (for reading, or writing once `check_writable` passes).
    pub fn table(
        &self,
        tenant: &str,
        dataset: &Arc<Dataset>,
    ) -> Result<Arc<TableHandle>, LakeError> {
        if let Some(sealed) = self.sealed(tenant) {
            return Err(sealed.error(tenant));
        }
        let location = self.locate(tenant, &dataset.name)?;
        if let Some(reason) = self.unreachable.get(&location.store.name) {
            return Err(LakeError::StoreUnreachable {
                store: location.store.name.clone(),
                reason: reason.clone(),
            });
        }
        let key = self.tenant(tenant).key;
        self.registry.get_or_open(tenant, &dataset.name, || {
            let meter = usage::TableMeter::new(
                tenant,
                &dataset.name,
                &location.store.name,
                self.usage.clone(),
            );
            TableHandle::open(
                tenant,
                dataset.clone(),
                location,
                key.as_ref(),
                self.commit_policy,
                meter,
            )
        })
    }

    /// Refuses writes to a table that lives outside its tenant's region.
    pub fn check_writable(&self, handle: &TableHandle) -> Result<(), LakeError> {
        let region = self.tenant(&handle.tenant).region;
        if handle.store.may_take(region.as_deref()) {
            return Ok(());
        }
        let region = region.unwrap_or_default();
        Err(LakeError::WrongRegion {
            table: handle.name(),
            tenant: handle.tenant.clone(),
            region,
            actual: handle.store.name.clone(),
            actual_region: handle.store.region.clone().unwrap_or_else(|| "none".into()),
        })
    }

    /// Tenants with a directory in any reachable store.
    pub async fn tenants_in_stores(&self) -> Result<Vec<String>, LakeError> {
        let mut all = Vec::new();
        for store in self.reachable_stores() {
            all.extend(store.tenants().await?);
        }
        all.sort();
        all.dedup();
        Ok(all)
    }

    fn reachable_stores(&self) -> impl Iterator<Item = &Arc<Store>> {
        reachable(&self.placement, &self.unreachable)
    }

    /// Tables open in memory now.
    pub fn open_tables(&self) -> usize {
        self.registry.len()
    }

    /// Drops idle tables now instead of at the sweeper's next round.
    pub fn evict_idle(&self) -> usize {
        self.registry.evict_idle(self.table_idle_timeout)
    }

    /// Stops the sweeper and drops every open table; committers finish what is queued.
    pub fn close(&self) {
        self.closed.cancel();
        self.registry.clear();
    }
}

fn spawn_sweeper(lake: &Arc<Lake>) {
    let weak = Arc::downgrade(lake);
    let closed = lake.closed.clone();
    let period = (lake.table_idle_timeout / 2).max(Duration::from_millis(10));
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = closed.cancelled() => break,
                _ = tokio::time::sleep(period) => {}
            }
            let Some(lake) = weak.upgrade() else { break };
            lake.evict_idle();
        }
    });
}

#[cfg(test)]
#[path = "lake_tests.rs"]
mod tests;
