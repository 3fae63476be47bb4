//! What each table costs in its store: every object under the table root (data files, the
//! log, checkpoints, files removed but not vacuumed, orphans of failed streams), which is
//! what the bucket bills. Kept current by the metered store every table writes through
//! (`meter`), and reconciled by a listing of each store (`reconcile`).

mod meter;
mod reconcile;

use std::collections::BTreeMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

pub use meter::{MeteredStore, TableMeter};
pub use reconcile::ListedTable;

/// A table's usage as this process knows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableUsage {
    /// Bytes of every object under the table root.
    pub bytes: i64,
    pub objects: i64,
    /// Rows of the table's latest version, when known (a commit or a reconcile saw it).
    pub rows: Option<i64>,
    /// Time of the table's latest commit.
    pub last_write: Option<DateTime<Utc>>,
    /// What the last listing found minus what was counted; `None` before the first
    /// listing, or when writes raced it.
    pub drift: Option<i64>,
    pub reconciled_at: Option<DateTime<Utc>>,
    /// Newest log entry the last listing saw: rows are recounted only when it moves.
    pub(crate) log_head: Option<String>,
    /// Bumped by every counted change, so a reconcile can tell whether writes raced it.
    generation: u64,
}

/// Usage of every table this process has counted or listed, keyed by (tenant, dataset).
#[derive(Debug, Default)]
pub struct UsageLedger {
    tables: Mutex<BTreeMap<(String, String), TableUsage>>,
    /// Stores listed at least once by this process.
    listed_stores: Mutex<std::collections::BTreeSet<String>>,
}

/// What a reconcile changed for one table.
#[derive(Debug, Clone, PartialEq)]
pub struct Reconciled {
    pub tenant: String,
    pub dataset: String,
    /// Listed minus counted; `None` when writes raced the listing.
    pub drift: Option<i64>,
    /// The log moved since the last listing: the table's rows should be recounted.
    pub log_moved: bool,
}

impl UsageLedger {
    fn with<R>(&self, tenant: &str, dataset: &str, f: impl FnOnce(&mut TableUsage) -> R) -> R {
        let mut tables = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        let usage = tables
            .entry((tenant.to_string(), dataset.to_string()))
            .or_default();
        f(usage)
    }

    /// An object of `bytes` appeared (or, negative, went away) under the table root.
    pub fn record(&self, tenant: &str, dataset: &str, bytes: i64, objects: i64) {
        self.with(tenant, dataset, |u| {
            u.bytes += bytes;
            u.objects += objects;
            u.generation += 1;
        });
    }

    /// A commit of this process added `rows` at `at`.
    pub fn committed(&self, tenant: &str, dataset: &str, rows: i64, at: DateTime<Utc>) {
        self.with(tenant, dataset, |u| {
            u.rows = Some(u.rows.unwrap_or(0) + rows);
            u.last_write = Some(u.last_write.map_or(at, |w| w.max(at)));
        });
    }

    /// The rows of the table's latest version, counted from its snapshot.
    pub fn set_rows(&self, tenant: &str, dataset: &str, rows: i64) {
        self.with(tenant, dataset, |u| u.rows = Some(rows));
    }

    /// Generations of every table, taken before a listing starts.
    pub fn generations(&self) -> BTreeMap<(String, String), u64> {
        let tables = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        tables
            .iter()
            .map(|(k, u)| (k.clone(), u.generation))
            .collect()
    }

    /// Lays a listing of one store over the counts. `before` are the generations taken when
    /// the listing started: a table written to since keeps its count (the listing may or
    /// may not hold those writes) and is settled by the next listing. `tables` are the
    /// tables of this store (listed or counted); one the listing did not find holds nothing.
    pub fn reconcile(
        &self,
        store: &str,
        listed: &BTreeMap<(String, String), ListedTable>,
        in_store: impl Fn(&str, &str) -> bool,
        before: &BTreeMap<(String, String), u64>,
        at: DateTime<Utc>,
    ) -> Vec<Reconciled> {
        // Before a store's first listing the counts hold only this server's writes since
        // its start: the difference is what was there before, not drift.
        let first = self
            .listed_stores
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(store.to_string());
        let mut tables = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        for key in listed.keys() {
            tables.entry(key.clone()).or_default();
        }
        let mut changes = Vec::new();
        for (key, usage) in tables.iter_mut() {
            if !in_store(&key.0, &key.1) {
                continue;
            }
            let found = listed.get(key).cloned().unwrap_or_default();
            let raced = before.get(key).copied().unwrap_or(0) != usage.generation;
            let drift = (!raced && !first).then(|| found.bytes - usage.bytes);
            if !raced {
                usage.bytes = found.bytes;
                usage.objects = found.objects;
            }
            let log_moved = found.log_head.is_some() && found.log_head != usage.log_head;
            usage.log_head = found.log_head;
            if let Some(written) = found.last_write {
                usage.last_write = Some(usage.last_write.map_or(written, |w| w.max(written)));
            }
            if found.bytes == 0 && found.objects == 0 {
                usage.rows = Some(0);
            }
            usage.drift = drift;
            usage.reconciled_at = Some(at);
            changes.push(Reconciled {
                tenant: key.0.clone(),
                dataset: key.1.clone(),
                drift,
                log_moved,
            });
        }
        changes
    }

    /// The usage of one table.
    pub fn table(&self, tenant: &str, dataset: &str) -> Option<TableUsage> {
        let tables = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        tables
            .get(&(tenant.to_string(), dataset.to_string()))
            .cloned()
    }

    /// Every table's usage, in (tenant, dataset) order.
    pub fn all(&self) -> BTreeMap<(String, String), TableUsage> {
        self.tables
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// A tenant's tables, in dataset order.
    pub fn of_tenant(&self, tenant: &str) -> Vec<(String, TableUsage)> {
        let tables = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        tables
            .range((tenant.to_string(), String::new())..)
            .take_while(|((t, _), _)| t == tenant)
            .map(|((_, dataset), u)| (dataset.clone(), u.clone()))
            .collect()
    }

    /// Forgets a tenant whose objects were all deleted.
    pub fn forget_tenant(&self, tenant: &str) {
        self.tables
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(t, _), _| t != tenant);
    }

    /// A tenant's bytes over all its tables.
    pub fn tenant_bytes(&self, tenant: &str) -> i64 {
        self.of_tenant(tenant).iter().map(|(_, u)| u.bytes).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(bytes: i64, objects: i64, head: &str) -> ListedTable {
        ListedTable {
            bytes,
            objects,
            log_head: Some(head.to_string()),
            last_write: None,
        }
    }

    #[test]
    fn a_quiet_table_takes_the_listing_and_reports_the_drift() {
        let ledger = UsageLedger::default();
        ledger.record("acme", "snowplow", 100, 1);
        ledger.record("acme", "otel_logs", 5, 1);
        ledger.record("beta", "snowplow", 7, 1);
        let before = ledger.generations();
        let listing = BTreeMap::from([(("acme".into(), "snowplow".into()), listed(130, 3, "1"))]);
        let first = ledger.reconcile("default", &listing, |t, _| t == "acme", &before, Utc::now());
        assert!(
            first.iter().all(|c| c.drift.is_none()),
            "no drift at a first listing"
        );
        ledger.record("acme", "snowplow", -30, 0);
        ledger.record("acme", "otel_logs", 5, 1);
        let before = ledger.generations();
        let changes =
            ledger.reconcile("default", &listing, |t, _| t == "acme", &before, Utc::now());
        assert_eq!(changes.len(), 2);
        let snowplow = ledger.table("acme", "snowplow").unwrap();
        assert_eq!((snowplow.bytes, snowplow.drift), (130, Some(30)));
        let gone = ledger.table("acme", "otel_logs").unwrap();
        assert_eq!((gone.bytes, gone.drift, gone.rows), (0, Some(-5), Some(0)));
        assert_eq!(
            ledger.table("beta", "snowplow").unwrap().bytes,
            7,
            "other store"
        );
        assert_eq!(ledger.tenant_bytes("acme"), 130);
    }

    #[test]
    fn writes_during_a_listing_keep_the_count() {
        let ledger = UsageLedger::default();
        ledger.record("acme", "snowplow", 100, 1);
        let before = ledger.generations();
        ledger.record("acme", "snowplow", 50, 1);
        let listing = BTreeMap::from([(("acme".into(), "snowplow".into()), listed(100, 1, "1"))]);
        let changes = ledger.reconcile("default", &listing, |_, _| true, &before, Utc::now());
        assert_eq!(changes[0].drift, None);
        assert!(changes[0].log_moved);
        assert_eq!(ledger.table("acme", "snowplow").unwrap().bytes, 150);
        let again = ledger.reconcile(
            "default",
            &listing,
            |_, _| true,
            &ledger.generations(),
            Utc::now(),
        );
        assert!(!again[0].log_moved, "the log head did not move");
    }
}
