//! The periodic check of the counts: one recursive listing per store, summed per table
//! directory, laid over the ledger; tables whose log moved get their rows recounted from
//! their Delta snapshot.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use tracing::info;

use super::Reconciled;
use crate::lake::{Lake, LakeError, Store};

/// What a listing found under one table directory.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListedTable {
    pub bytes: i64,
    pub objects: i64,
    /// The newest commit file in `_delta_log/`.
    pub log_head: Option<String>,
    /// When that commit file was written.
    pub last_write: Option<DateTime<Utc>>,
}

/// How many tables' rows are recounted at once. Each count loads the table's snapshot (all
/// its files with their statistics), so at a start over many tables this bounds the memory
/// the recount takes beside ingest: a snapshot load is short, two keep the store busy.
const ROW_COUNTS_AT_ONCE: usize = 2;

impl Lake {
    /// Lists every reachable store and lays the listing over the counts; logs each table
    /// whose count drifted from the listing. Rows are recounted separately
    /// (`recount_rows`): that loads each moved table's snapshot, far slower than a listing.
    pub async fn reconcile_usage(&self, now: DateTime<Utc>) -> Result<Vec<Reconciled>, LakeError> {
        self.reconcile_stores(None, now).await
    }

    /// Lists one tenant's tables in every store and lays that over its counts, rows
    /// included (a restored tenant's tables are back all at once, written by no commit
    /// this process counted).
    pub async fn reconcile_tenant(
        &self,
        tenant: &str,
        now: DateTime<Utc>,
    ) -> Result<(), LakeError> {
        let changes = self.reconcile_stores(Some(tenant), now).await?;
        self.recount_rows(changes).await;
        Ok(())
    }

    /// Lists every reachable store (only `only`'s tables, when given) and lays the listing
    /// over the counts; logs each table whose count drifted in a full listing (a restored
    /// tenant's tables differ from its counts by design).
    async fn reconcile_stores(
        &self,
        only: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Reconciled>, LakeError> {
        let ledger = self.usage.clone();
        let mut all = Vec::new();
        let stores: Vec<Arc<Store>> = self.reachable_stores().cloned().collect();
        for store in stores {
            let before = ledger.generations();
            let listed = list_tables(&store, only).await?;
            let in_store = |tenant: &str, dataset: &str| {
                only.is_none_or(|only| only == tenant)
                    && self
                        .locate(tenant, dataset)
                        .is_ok_and(|location| location.store.name == store.name)
            };
            let changes = ledger.reconcile(&store.name, &listed, in_store, &before, now);
            let drifted = changes.iter().filter(|c| c.drift.is_some_and(|d| d != 0));
            for change in drifted.filter(|_| only.is_none()) {
                info!(tenant = %change.tenant, dataset = %change.dataset, store = %store.name, drift_bytes = change.drift, "usage reconciled: the listing differs from the running count (writes by other replicas, or objects changed outside lakeport)");
            }
            all.extend(changes);
        }
        Ok(all)
    }

    /// Rows of the latest version of each table whose log moved, from its snapshot; a
    /// table that cannot be loaded keeps the rows it had.
    pub async fn recount_rows(&self, changes: Vec<Reconciled>) {
        let counts = changes
            .into_iter()
            .filter(|c| c.log_moved)
            .map(|c| async move {
                let rows = self.count_rows(&c.tenant, &c.dataset).await;
                (c, rows)
            });
        let counted: Vec<_> = futures::stream::iter(counts)
            .buffer_unordered(ROW_COUNTS_AT_ONCE)
            .collect()
            .await;
        for (c, rows) in counted {
            match rows {
                Ok(rows) => self.usage.set_rows(&c.tenant, &c.dataset, rows),
                Err(e) => {
                    info!(tenant = %c.tenant, dataset = %c.dataset, error = %e, "cannot count the table's rows; keeping the last count")
                }
            }
        }
    }

    async fn count_rows(&self, tenant: &str, dataset: &str) -> Result<i64, LakeError> {
        let store = self.locate(tenant, dataset)?.store;
        let url = store.table_url(tenant, dataset)?;
        let key = self.tenant(tenant).key;
        let table = store
            .table_builder(url, key.as_ref())?
            .load()
            .await
            .map_err(|e| LakeError::from(e).in_store(&store.name))?;
        let snapshot = table.snapshot()?;
        Ok(snapshot
            .log_data()
            .iter()
            .map(|file| file.num_records().unwrap_or(0) as i64)
            .sum())
    }
}

/// Sums every object under each `tenant_id=<t>/<dataset>/` of the store (of one tenant's
/// when `only` names it).
async fn list_tables(
    store: &Store,
    only: Option<&str>,
) -> Result<BTreeMap<(String, String), ListedTable>, LakeError> {
    let root = store.root_path();
    let client = store.client(None)?;
    let prefix = match only {
        Some(tenant) => root.clone().join(format!("tenant_id={tenant}")),
        None => root.clone(),
    };
    let mut objects = client.list(Some(&prefix));
    let mut tables: BTreeMap<(String, String), ListedTable> = BTreeMap::new();
    let skip = root.parts().count();
    while let Some(meta) = objects
        .try_next()
        .await
        .map_err(|e| LakeError::from(e).in_store(&store.name))?
    {
        let parts: Vec<_> = meta.location.parts().skip(skip).collect();
        let [tenant_dir, dataset, rest @ ..] = parts.as_slice() else {
            continue;
        };
        let Some(tenant) = tenant_dir.as_ref().strip_prefix("tenant_id=") else {
            continue;
        };
        let table = tables
            .entry((tenant.to_string(), dataset.as_ref().to_string()))
            .or_default();
        table.bytes += meta.size as i64;
        table.objects += 1;
        if let [log, name] = rest {
            if log.as_ref() == "_delta_log" && is_commit_file(name.as_ref()) {
                let name = name.as_ref().to_string();
                if table.log_head.as_ref().is_none_or(|head| *head < name) {
                    table.log_head = Some(name);
                    table.last_write = Some(meta.last_modified);
                }
            }
        }
    }
    Ok(tables)
}

fn is_commit_file(name: &str) -> bool {
    name.strip_suffix(".json")
        .is_some_and(|v| v.len() == 20 && v.bytes().all(|b| b.is_ascii_digit()))
}
