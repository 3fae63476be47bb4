//! A table's checkpoints, written by its committer's side after commits. A checkpoint is
//! due when a version closes an interval of `every` commits: versions `every - 1`,
//! `2 * every - 1`, … (Delta's own rule, so Spark and delta-rs writers of the same table
//! checkpoint at the same versions). It runs in a task of its own after the acks went out:
//! it needs the table's file list at that version, a replay of the log that held the next
//! commit back by up to 200 ms (ack p99 on the ingest bench). That load then becomes the
//! table's snapshot (`TableState::rebase`), so the appends recorded since need no replay
//! later. A failure is logged, not returned: the commit is durable, readers replay JSON
//! commits meanwhile, and the next interval writes a newer checkpoint. One table's
//! checkpoints are written one at a time and never older than the newest: a slow one
//! finishing last would point `_last_checkpoint` back.

use std::sync::Arc;

use tokio::sync::Mutex;
use tracing::{debug, warn};

use super::table_state::TableState;

pub(super) struct Checkpointer {
    every: u64,
    /// The newest version checkpointed; held while a checkpoint is written.
    newest: Arc<Mutex<i64>>,
}

impl Checkpointer {
    pub(super) fn new(every: u64) -> Self {
        Self {
            every,
            newest: Arc::new(Mutex::new(-1)),
        }
    }

    /// Starts the checkpoint of `version` when it is due and still the table's head.
    pub(super) fn after_commit(
        &self,
        shared: &Arc<Mutex<TableState>>,
        state: &TableState,
        version: i64,
    ) {
        let Ok(at) = u64::try_from(version) else {
            return;
        };
        if !(at + 1).is_multiple_of(self.every) || state.head() != Some(version) {
            return;
        }
        let mut table = state.table().clone();
        let shared = shared.clone();
        let newest = self.newest.clone();
        tokio::spawn(async move {
            let mut newest = newest.lock().await;
            if *newest >= version {
                return;
            }
            let written = match table.update_incremental(Some(at)).await {
                Ok(()) => deltalake::checkpoints::create_checkpoint(&table, None).await,
                Err(e) => Err(e),
            };
            match written {
                Ok(()) => {
                    debug!(table = %table.table_url(), version, "checkpoint written");
                    *newest = version;
                    shared.lock().await.rebase(table);
                }
                Err(e) => {
                    warn!(table = %table.table_url(), version, error = %e, "checkpoint failed; readers replay the JSON commits until the next one")
                }
            }
        });
    }
}
