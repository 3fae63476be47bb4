//! What this process knows of one table's Delta log: a loaded snapshot, plus the blind
//! appends committed past it. Loading a snapshot makes delta-rs replay the live file list
//! (a kernel log replay over every file), which per commit cost more than half of the
//! server's CPU on small requests and grew with the table. Ingest needs no file list: it
//! needs the newest version, the schema and the producers' `txn` versions, and a blind
//! append (files added, `txn`s, commit info) changes only the version and the `txn`s. So
//! appends are recorded here instead, and the snapshot is reloaded only when a commit did
//! more (a schema change, a compaction, a removal), when a reader needs the files, and
//! when a checkpoint is written (`rebase`).

use deltalake::kernel::Action;
use deltalake::logstore::LogStore;
use deltalake::DeltaTable;

use super::commit_log::actions;
use super::delta::refresh;
use super::LakeError;

/// Appends recorded past the snapshot before the next catch-up reloads it instead, so a
/// table whose checkpoints are written by another replica cannot collect them forever.
const MAX_APPENDED: usize = 1_000;

/// Newer commits read one by one at a catch-up; further behind, a load (which starts from
/// the newest checkpoint) is cheaper than reading each commit in turn.
const MAX_COMMITS_READ: i64 = 32;

/// A commit past the snapshot that only added files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Appended {
    pub version: i64,
    /// `(app_id, version)` of each `txn` the commit carries.
    pub txns: Vec<(String, i64)>,
}

#[derive(Debug)]
pub(crate) struct TableState {
    table: DeltaTable,
    /// Consecutive versions right after the snapshot's, oldest first.
    appended: Vec<Appended>,
}

impl TableState {
    pub(crate) fn new(table: DeltaTable) -> Self {
        Self {
            table,
            appended: Vec::new(),
        }
    }

    /// The loaded snapshot, whose version may be older than `head`.
    pub(crate) fn table(&self) -> &DeltaTable {
        &self.table
    }

    /// True once the table has a commit this process knows of.
    pub(crate) fn exists(&self) -> bool {
        self.table.version().is_some()
    }

    /// The newest version this process knows of.
    pub(crate) fn head(&self) -> Option<i64> {
        let loaded = self.table.version()? as i64;
        Some(loaded + self.appended.len() as i64)
    }

    /// The highest version committed for `app_id` up to `head`.
    pub(crate) async fn transaction_version(&self, app_id: &str) -> Result<Option<i64>, LakeError> {
        if let Some(version) = latest_txn(&self.appended, app_id) {
            return Ok(Some(version));
        }
        if !self.exists() {
            return Ok(None);
        }
        Ok(self
            .table
            .snapshot()?
            .transaction_version(self.table.log_store().as_ref(), app_id)
            .await?)
    }

    /// Records a blind append this process committed at `head + 1`.
    pub(crate) fn appended(&mut self, commit: Appended) {
        debug_assert_eq!(Some(commit.version - 1), self.head());
        self.appended.push(commit);
    }

    /// Brings `head` to the newest version in the log; false when the table has no log yet.
    /// Newer blind appends (another replica's, say) are read and recorded; anything else
    /// reloads the snapshot.
    pub(crate) async fn catch_up(&mut self) -> Result<bool, LakeError> {
        let Some(head) = self.head() else {
            return self.load_latest().await;
        };
        if self.appended.len() >= MAX_APPENDED {
            return self.load_latest().await;
        }
        let log_store = self.table.log_store();
        let Ok(latest) = log_store.get_latest_version(head as u64).await else {
            // The head's own commit file is gone (log cleanup) or unreadable: a full load
            // finds the log from its checkpoint.
            return self.load_latest().await;
        };
        if latest as i64 - head > MAX_COMMITS_READ {
            return self.load_latest().await;
        }
        let mut newer = Vec::new();
        for version in head + 1..=latest as i64 {
            let bytes = log_store.read_commit_entry(version as u64).await?;
            match bytes.as_deref().and_then(blind_append_txns) {
                Some(txns) => newer.push(Appended { version, txns }),
                None => return self.load_latest().await,
            }
        }
        self.appended.extend(newer);
        Ok(true)
    }

    /// Reloads the snapshot at the newest version in the log (what a reader of the files, a
    /// schema change or a conflicting commit needs); false when the table has no log yet.
    pub(crate) async fn load_latest(&mut self) -> Result<bool, LakeError> {
        let exists = refresh(&mut self.table).await?;
        self.appended.clear();
        Ok(exists)
    }

    /// Moves the snapshot to `newer`, a load of this table at a version up to `head` (the one
    /// a checkpoint was just written from), so the appends it covers need no replay later.
    pub(crate) fn rebase(&mut self, newer: DeltaTable) {
        let (Some(loaded), Some(newer_version), Some(head)) =
            (self.table.version(), newer.version(), self.head())
        else {
            return;
        };
        let newer_version = newer_version as i64;
        if newer_version <= loaded as i64 || newer_version > head {
            return;
        }
        self.appended.retain(|a| a.version > newer_version);
        self.table = newer;
    }

    /// The snapshot after a commit delta-rs made on it (which loaded its own version).
    pub(crate) fn replace(&mut self, table: DeltaTable) {
        self.table = table;
        self.appended.clear();
    }

    /// True when the loaded snapshot is the head (what a commit through delta-rs needs).
    pub(crate) fn loaded_at_head(&self) -> bool {
        self.appended.is_empty()
    }
}

/// The newest `txn` version of `app_id` among `appended`.
fn latest_txn(appended: &[Appended], app_id: &str) -> Option<i64> {
    appended
        .iter()
        .rev()
        .find_map(|a| a.txns.iter().find(|(id, _)| id == app_id).map(|(_, v)| *v))
}

/// The `txn`s of a commit that only added files; `None` for any other commit (or one with an
/// action this delta-rs does not know).
pub(crate) fn blind_append_txns(commit: &[u8]) -> Option<Vec<(String, i64)>> {
    let text = std::str::from_utf8(commit).ok()?;
    let mut txns = Vec::new();
    for action in actions(text) {
        match action? {
            Action::Add(_) | Action::CommitInfo(_) => {}
            Action::Txn(txn) => txns.push((txn.app_id, txn.version)),
            _ => return None,
        }
    }
    Some(txns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_txn_of_a_producer_wins() {
        let appended = vec![
            Appended {
                version: 3,
                txns: vec![("a".into(), 5), ("b".into(), 1)],
            },
            Appended {
                version: 4,
                txns: vec![("a".into(), 9)],
            },
        ];
        assert_eq!(latest_txn(&appended, "a"), Some(9));
        assert_eq!(latest_txn(&appended, "b"), Some(1));
        assert_eq!(latest_txn(&appended, "c"), None);
    }

    #[test]
    fn only_adds_txns_and_commit_info_make_a_blind_append() {
        let add = r#"{"add":{"path":"a.parquet","partitionValues":{},"size":1,"modificationTime":1,"dataChange":true}}"#;
        let txn = r#"{"txn":{"appId":"p","version":7}}"#;
        let info = r#"{"commitInfo":{"timestamp":1,"operation":"WRITE"}}"#;
        let remove = r#"{"remove":{"path":"a.parquet","dataChange":false,"deletionTimestamp":1}}"#;
        let metadata = r#"{"metaData":{"id":"x","format":{"provider":"parquet","options":{}},"schemaString":"{}","partitionColumns":[],"configuration":{},"createdTime":1}}"#;

        let blind = format!("{info}\n{add}\n{txn}\n");
        assert_eq!(
            blind_append_txns(blind.as_bytes()),
            Some(vec![("p".to_string(), 7)])
        );
        assert_eq!(
            blind_append_txns(format!("{info}\n{add}\n{remove}").as_bytes()),
            None
        );
        assert_eq!(
            blind_append_txns(format!("{info}\n{metadata}").as_bytes()),
            None
        );
        assert_eq!(blind_append_txns(b"{\"someFutureAction\":{}}"), None);
    }
}
