//! The lake as the query side sees it: which tenants and tables exist, and their Delta
//! snapshots (latest, or the exact version a ticket was planned against). Tables come from
//! the lake's registry, which ingest shares.

use std::collections::BTreeSet;
use std::sync::Arc;

use deltalake::DeltaTable;
use futures::TryStreamExt;
use object_store::path::Path;

use super::QueryError;
use crate::datasets::{Dataset, Datasets};
use crate::lake::delta::refresh;
use crate::lake::{Lake, LakeError, StoreKind, TableHandle};
use crate::maintenance::{FileTargets, MaintenanceLog};
use crate::quality::QualityLog;
use crate::tenants::Tenants;

#[derive(Debug)]
pub struct LakeTables {
    lake: Arc<Lake>,
    datasets: Arc<Datasets>,
    tenants: Arc<Tenants>,
    maintenance: Arc<MaintenanceLog>,
    quality: Arc<QualityLog>,
    targets: FileTargets,
    checkpoint_interval: u64,
}

/// A table a query reads: which tenant and dataset, where it lives, and its snapshot.
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
    pub fn new(lake: Arc<Lake>, datasets: Arc<Datasets>, tenants: Arc<Tenants>) -> Self {
        Self {
            lake,
            datasets,
            tenants,
            maintenance: Arc::default(),
            quality: Arc::default(),
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

    /// What maintenance did in this process, for `system.maintenance`.
    pub fn maintenance_log(&self) -> Arc<MaintenanceLog> {
        self.maintenance.clone()
    }

    /// The latest data-quality results, for `system.quality`.
    pub fn quality_log(&self) -> Arc<QualityLog> {
        self.quality.clone()
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

    /// The tenant registry (configured tenants included).
    pub fn registry(&self) -> &Arc<Tenants> {
        &self.tenants
    }

    /// Registered tenants plus every `tenant_id=*` directory in every store.
    pub async fn tenants(&self) -> Result<Vec<String>, QueryError> {
        let mut tenants: BTreeSet<String> = self
            .tenants
            .views()
            .into_iter()
            .map(|v| v.record.id)
            .collect();
        tenants.extend(self.lake.tenants_in_stores().await?);
        Ok(tenants.into_iter().collect())
    }

    /// The tenant's tables that exist, at their latest version, in dataset name order.
    pub async fn tables_of(&self, tenant: &str) -> Result<Vec<LoadedTable>, QueryError> {
        let mut found = Vec::new();
        for dataset in self.datasets() {
            if let Some(table) = self.load(tenant, &dataset, None).await? {
                found.push(table);
            }
        }
        found.sort_by(|a, b| a.dataset.name.cmp(&b.dataset.name));
        Ok(found)
    }

    /// Names of the tenant's tables that exist.
    pub async fn existing_names(&self, tenant: &str) -> Result<Vec<String>, QueryError> {
        let mut names = Vec::new();
        for dataset in self.datasets() {
            let Some(handle) = self.handle(tenant, &dataset)? else {
                continue;
            };
            let mut table = handle.delta().lock().await;
            let exists = table.version().is_some()
                || refresh(&mut table)
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
    ) -> Result<Option<LoadedTable>, QueryError> {
        let Some(handle) = self.handle(tenant, dataset)? else {
            return Ok(None);
        };
        let mut cached = handle.delta().lock().await;
        let table = match version {
            None => {
                if !refresh(&mut cached)
                    .await
                    .map_err(|e| e.in_store(&handle.store.name))?
                {
                    return Ok(None);
                }
                cached.clone()
            }
            Some(v) if cached.version() == Some(v) => cached.clone(),
            Some(v) => {
                let mut table = cached.clone();
                drop(cached);
                table
                    .load_version(v)
                    .await
                    .map_err(|e| QueryError::VersionGone {
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
    ) -> Result<Option<Arc<TableHandle>>, QueryError> {
        match self.lake.table(tenant, dataset) {
            Ok(handle) => Ok(Some(handle)),
            Err(LakeError::NoPlacement { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// The commit files (`_delta_log/NNN.json`) still in the log, oldest first.
pub async fn commit_files(table: &DeltaTable) -> Result<Vec<(u64, Path)>, QueryError> {
    let store = table.log_store().object_store(None);
    let log = Path::from("_delta_log");
    let objects: Vec<_> = store
        .list(Some(&log))
        .try_collect()
        .await
        .map_err(LakeError::from)?;
    let mut commits: Vec<(u64, Path)> = objects
        .into_iter()
        .filter_map(|meta| {
            let name = meta.location.filename()?;
            let version = name.strip_suffix(".json")?.parse::<u64>().ok()?;
            Some((version, meta.location))
        })
        .collect();
    commits.sort_by_key(|(v, _)| *v);
    Ok(commits)
}
