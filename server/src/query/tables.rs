//! The lake as the query side sees it: which tenants and tables exist, and their Delta
//! snapshots (latest, or the exact version a ticket was planned against).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use deltalake::DeltaTable;
use futures::TryStreamExt;
use object_store::path::Path;
use tokio::sync::Mutex;

use super::QueryError;
use crate::datasets::{Dataset, Datasets};
use crate::lake::{table::refresh, Lake};
use crate::names::check_name;

type Key = (String, String);

#[derive(Debug)]
pub struct LakeTables {
    lake: Arc<Lake>,
    datasets: Arc<Datasets>,
    configured_tenants: Vec<String>,
    /// One loaded table per (tenant, dataset), refreshed incrementally on each use.
    cache: std::sync::Mutex<HashMap<Key, Arc<Mutex<DeltaTable>>>>,
}

/// A table a query reads: which tenant and dataset, and its snapshot.
#[derive(Debug, Clone)]
pub struct LoadedTable {
    pub tenant: String,
    pub dataset: Arc<Dataset>,
    pub table: DeltaTable,
}

impl LoadedTable {
    pub fn version(&self) -> u64 {
        self.table.version().unwrap_or_default()
    }
}

impl LakeTables {
    pub fn new(lake: Arc<Lake>, datasets: Arc<Datasets>, configured_tenants: Vec<String>) -> Self {
        Self {
            lake,
            datasets,
            configured_tenants,
            cache: Default::default(),
        }
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

    /// Tenants from the configuration plus every `tenant_id=*` directory in the lake.
    pub async fn tenants(&self) -> Result<Vec<String>, QueryError> {
        let mut tenants: BTreeSet<String> = self.configured_tenants.iter().cloned().collect();
        let root = deltalake::DeltaTableBuilder::from_url(self.lake.default_store().clone())
            .and_then(|b| b.build())
            .map_err(|e| QueryError::Storage(e.to_string()))?
            .object_store();
        let listing = match root.list_with_delimiter(None).await {
            Ok(listing) => listing.common_prefixes,
            Err(object_store::Error::NotFound { .. }) => Vec::new(),
            Err(e) => return Err(QueryError::Storage(e.to_string())),
        };
        for prefix in listing {
            if let Some(tenant) = prefix
                .filename()
                .and_then(|name| name.strip_prefix("tenant_id="))
                .filter(|t| check_name("tenant", t).is_ok())
            {
                tenants.insert(tenant.to_string());
            }
        }
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

    /// Names of the tenant's tables that exist. A table seen once stays known without
    /// touching the store again; the others are looked for on every call.
    pub async fn existing_names(&self, tenant: &str) -> Result<Vec<String>, QueryError> {
        let mut names = Vec::new();
        for dataset in self.datasets() {
            let entry = self.entry(tenant, &dataset)?;
            let mut table = entry.lock().await;
            let exists = table.version().is_some()
                || refresh(&mut table)
                    .await
                    .map_err(|e| QueryError::Storage(e.to_string()))?;
            if exists {
                names.push(dataset.name.clone());
            }
        }
        names.sort();
        Ok(names)
    }

    /// Loads a table at its latest version (`None`) or at exactly `version`; `Ok(None)`
    /// when the table has no commit yet.
    pub async fn load(
        &self,
        tenant: &str,
        dataset: &Arc<Dataset>,
        version: Option<u64>,
    ) -> Result<Option<LoadedTable>, QueryError> {
        let entry = self.entry(tenant, dataset)?;
        let mut cached = entry.lock().await;
        let table = match version {
            None => {
                if !refresh(&mut cached)
                    .await
                    .map_err(|e| QueryError::Storage(e.to_string()))?
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
            table,
        }))
    }

    fn entry(
        &self,
        tenant: &str,
        dataset: &Arc<Dataset>,
    ) -> Result<Arc<Mutex<DeltaTable>>, QueryError> {
        let key = (tenant.to_string(), dataset.name.clone());
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = cache.get(&key) {
            return Ok(entry.clone());
        }
        let url = self
            .lake
            .table_url(tenant, dataset)
            .map_err(|e| QueryError::Storage(e.to_string()))?;
        let table = deltalake::DeltaTableBuilder::from_url(url)
            .and_then(|b| b.build())
            .map_err(|e| QueryError::Storage(e.to_string()))?;
        let entry = Arc::new(Mutex::new(table));
        cache.insert(key, entry.clone());
        Ok(entry)
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
        .map_err(|e| QueryError::Storage(e.to_string()))?;
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
