//! The one way to a table: which tenants and tables exist, and their Delta snapshots
//! (latest, or the exact version a ticket was planned against). Tables come from the
//! lake's registry, which ingest shares; every subsystem that reads a table calls this.

use std::collections::BTreeSet;
use std::sync::Arc;

use deltalake::DeltaTable;

use super::layout::FileTargets;
use super::{Lake, LakeError, Sealed, StoreKind, TableHandle};
use crate::datasets::{Dataset, Datasets};

/// Tenants that exist without a file in any store yet (the registry's), handed in by the
/// wiring so the lake needs no knowledge of the registry.
pub trait TenantDirectory: Send + Sync + std::fmt::Debug {
    /// Every registered or configured tenant id.
    fn registered(&self) -> Vec<String>;
}

/// A directory that knows no tenant beyond the stores' (tests, tools).
#[derive(Debug, Default)]
pub struct NoDirectory;

impl TenantDirectory for NoDirectory {
    fn registered(&self) -> Vec<String> {
        Vec::new()
    }
}

#[derive(Debug)]
pub struct LakeTables {
    lake: Arc<Lake>,
    datasets: Arc<Datasets>,
    directory: Arc<dyn TenantDirectory>,
    targets: FileTargets,
    checkpoint_interval: u64,
}

/// A loaded table: which tenant and dataset, where it lives, and its snapshot.
#[derive(Debug, Clone)]
pub struct LoadedTable {
    pub tenant: String,
    pub dataset: Arc<Dataset>,
    pub store: String,
    pub store_kind: StoreKind,
    /// The lake's root in that store.
    pub store_root: url::Url,
    /// The store the routes name now, when it differs or the tenant has none.
    pub configured_store: Option<String>,
    pub table: DeltaTable,
}

impl LoadedTable {
    pub fn version(&self) -> u64 {
        self.table.version().unwrap_or_default()
    }
}

impl LakeTables {
    pub fn new(
        lake: Arc<Lake>,
        datasets: Arc<Datasets>,
        directory: Arc<dyn TenantDirectory>,
    ) -> Self {
        Self {
            lake,
            datasets,
            directory,
            targets: FileTargets::default(),
            checkpoint_interval: 50,
        }
    }

    /// What lake health is judged by: the file sizes compaction aims for (which
    /// `system.partitions` counts small files by) and the checkpoint interval.
    pub fn with_health_settings(mut self, targets: FileTargets, checkpoint_interval: u64) -> Self {
        self.targets = targets;
        self.checkpoint_interval = checkpoint_interval;
        self
    }

    pub fn file_targets(&self) -> &FileTargets {
        &self.targets
    }

    pub fn checkpoint_interval(&self) -> u64 {
        self.checkpoint_interval
    }

    pub fn lake(&self) -> &Arc<Lake> {
        &self.lake
    }

    /// Every dataset a table can exist for, the dead-letter table included.
    pub fn datasets(&self) -> Vec<Arc<Dataset>> {
        let mut all: Vec<_> = self.datasets.iter().cloned().collect();
        all.push(self.datasets.rejected());
        all
    }

    pub fn dataset(&self, name: &str) -> Option<Arc<Dataset>> {
        self.datasets().into_iter().find(|d| d.name == name)
    }

    /// Registered tenants plus every `tenant_id=*` directory in every store, but those
    /// being deleted (an archived tenant is listed, with no tables).
    pub async fn tenants(&self) -> Result<Vec<String>, LakeError> {
        let mut tenants: BTreeSet<String> = self.directory.registered().into_iter().collect();
        tenants.extend(self.lake.tenants_in_stores().await?);
        tenants.retain(|t| self.lake.sealed(t) != Some(Sealed::Deleting));
        Ok(tenants.into_iter().collect())
    }

    /// The tenant's tables that exist, at their latest version, in dataset name order.
    pub async fn tables_of(&self, tenant: &str) -> Result<Vec<LoadedTable>, LakeError> {
        let mut found = Vec::new();
        for dataset in self.datasets() {
            if let Some(table) = self.load(tenant, &dataset, None).await? {
                found.push(table);
            }
        }
        found.sort_by(|a, b| a.dataset.name.cmp(&b.dataset.name));
        Ok(found)
    }

    /// Every table of these tenants, tenant by tenant.
    pub async fn tables_of_all(&self, tenants: &[String]) -> Result<Vec<LoadedTable>, LakeError> {
        let mut all = Vec::new();
        for tenant in tenants {
            all.extend(self.tables_of(tenant).await?);
        }
        Ok(all)
    }

    /// Names of the tenant's tables that exist.
    pub async fn existing_names(&self, tenant: &str) -> Result<Vec<String>, LakeError> {
        let mut names = Vec::new();
        for dataset in self.datasets() {
            let Some(handle) = self.handle(tenant, &dataset)? else {
                continue;
            };
            let mut state = handle.state().lock().await;
            let exists = state.exists()
                || state
                    .catch_up()
                    .await
                    .map_err(|e| e.in_store(&handle.store.name))?;
            if exists {
                names.push(dataset.name.clone());
            }
        }
        names.sort();
        Ok(names)
    }

    /// Loads a table at its latest version (`None`) or at exactly `version`; `Ok(None)`
    /// when the table has no commit yet (or can have none: no store may take it).
    pub async fn load(
        &self,
        tenant: &str,
        dataset: &Arc<Dataset>,
        version: Option<u64>,
    ) -> Result<Option<LoadedTable>, LakeError> {
        let Some(handle) = self.handle(tenant, dataset)? else {
            return Ok(None);
        };
        let mut cached = handle.state().lock().await;
        let table = match version {
            None => {
                if !cached
                    .load_latest()
                    .await
                    .map_err(|e| e.in_store(&handle.store.name))?
                {
                    return Ok(None);
                }
                cached.table().clone()
            }
            Some(v) if cached.table().version() == Some(v) => cached.table().clone(),
            Some(v) => {
                let mut table = cached.table().clone();
                drop(cached);
                table
                    .load_version(v)
                    .await
                    .map_err(|e| LakeError::VersionGone {
                        table: format!("{tenant}.{}", dataset.name),
                        version: v,
                        detail: e.to_string(),
                    })?;
                table
            }
        };
        Ok(Some(LoadedTable {
            tenant: tenant.to_string(),
            dataset: dataset.clone(),
            store: handle.store.name.clone(),
            store_kind: handle.store.kind,
            store_root: handle.store.root.clone(),
            configured_store: handle.configured.as_ref().map(|s| s.name.clone()),
            table,
        }))
    }

    /// The registry's handle; `None` when no store may hold the table (residency).
    fn handle(
        &self,
        tenant: &str,
        dataset: &Arc<Dataset>,
    ) -> Result<Option<Arc<TableHandle>>, LakeError> {
        match self.lake.table(tenant, dataset) {
            Ok(handle) => Ok(Some(handle)),
            Err(LakeError::NoPlacement { .. }) => Ok(None),
            // Its tables are in the archive store: a read of every tenant skips them (a
            // tenant's own query restored it before it got here).
            Err(LakeError::TenantArchived(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
