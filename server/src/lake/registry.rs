//! One registry of open tables, shared by ingest and query. A table that nobody uses for
//! `idle` is dropped (its snapshot freed, its committer ended), so memory and task count
//! follow the tables in use, not every table ever touched.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::table::TableHandle;
use super::LakeError;

type Key = (String, String);

struct Entry {
    handle: Arc<TableHandle>,
    last_used: Instant,
}

#[derive(Default)]
pub(super) struct TableRegistry {
    entries: Mutex<HashMap<Key, Entry>>,
}

impl std::fmt::Debug for TableRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TableRegistry({} open)", self.len())
    }
}

impl TableRegistry {
    /// The open handle of a table, or the one `open` makes.
    pub(super) fn get_or_open(
        &self,
        tenant: &str,
        dataset: &str,
        open: impl FnOnce() -> Result<TableHandle, LakeError>,
    ) -> Result<Arc<TableHandle>, LakeError> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let key = (tenant.to_string(), dataset.to_string());
        let now = Instant::now();
        if let Some(entry) = entries.get_mut(&key) {
            entry.last_used = now;
            return Ok(entry.handle.clone());
        }
        let handle = Arc::new(open()?);
        entries.insert(
            key,
            Entry {
                handle: handle.clone(),
                last_used: now,
            },
        );
        Ok(handle)
    }

    /// Drops the handles unused for `idle` that no request holds; returns how many.
    pub(super) fn evict_idle(&self, idle: Duration) -> usize {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let before = entries.len();
        let now = Instant::now();
        entries.retain(|_, e| {
            Arc::strong_count(&e.handle) > 1 || now.duration_since(e.last_used) < idle
        });
        let evicted = before - entries.len();
        if evicted > 0 {
            entries.shrink_to_fit();
        }
        evicted
    }

    pub(super) fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Drops the handles of a tenant's tables (its data is being deleted): its next table
    /// is opened afresh from the store.
    pub(super) fn forget_tenant(&self, tenant: &str) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(t, _), _| t != tenant);
    }

    /// Drops the handles of a tenant's tables and refuses further commits through the ones
    /// still held (an open stream's): the tenant's tables are closing.
    pub(super) fn retire_tenant(&self, tenant: &str, why: LakeError) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        for ((t, _), entry) in entries.iter() {
            if t == tenant {
                entry.handle.retire(why.clone());
            }
        }
        entries.retain(|(t, _), _| t != tenant);
    }

    /// Drops every handle (shutdown): committers finish what is queued, then end.
    pub(super) fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}
