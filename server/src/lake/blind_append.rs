//! Commits a blind append (files added, `txn`s, commit info) at the version after the
//! table's head with the log store's atomic create, and records it in the table's state
//! without reloading the snapshot (see `table_state`). The commit entry is the one
//! delta-rs's `CommitBuilder` writes; what is skipped is its snapshot update after the
//! commit, a replay of the whole file list.

use std::collections::HashMap;

use deltalake::kernel::transaction::{CommitData, PROTOCOL};
use deltalake::kernel::{Action, Transaction};
use deltalake::logstore::CommitOrBytes;
use deltalake::protocol::DeltaOperation;
use uuid::Uuid;

use super::table_state::{Appended, TableState};
use super::LakeError;

/// Log stores that take a commit's bytes with a conditional create (the others rename a
/// temporary file, which delta-rs's own commit path handles).
const CONDITIONAL_CREATE_STORES: [&str; 2] = ["DefaultLogStore", "LakeFSLogStore"];

/// True when the table exists and its log store takes commits by conditional create.
pub(crate) fn appends_blindly(state: &TableState) -> bool {
    state.exists() && CONDITIONAL_CREATE_STORES.contains(&state.table().log_store().name().as_str())
}

/// Commits at the version after the head and returns it. A version taken meanwhile by
/// another writer is a retryable error: the caller catches up and checks its sequences
/// again.
pub(crate) async fn commit_blind_append(
    state: &mut TableState,
    adds: Vec<Action>,
    operation: DeltaOperation,
    app_metadata: HashMap<String, serde_json::Value>,
    txns: Vec<Transaction>,
) -> Result<i64, LakeError> {
    let head = state
        .head()
        .ok_or_else(|| LakeError::Internal("blind append to a table with no commit".into()))?;
    let log_store = state.table().log_store();
    // Appends change neither protocol nor metadata, so the loaded snapshot's are the head's.
    PROTOCOL
        .can_commit(state.table().snapshot()?, &adds, &operation)
        .map_err(deltalake::DeltaTableError::from)?;
    let recorded: Vec<(String, i64)> = txns.iter().map(|t| (t.app_id.clone(), t.version)).collect();
    let data = CommitData::new(adds, operation, app_metadata, txns);
    let bytes = data.get_bytes().map_err(deltalake::DeltaTableError::from)?;
    let version = head + 1;
    match log_store
        .write_commit_entry(
            version as u64,
            CommitOrBytes::LogBytes(bytes),
            Uuid::new_v4(),
        )
        .await
    {
        Ok(()) => {
            state.appended(Appended {
                version,
                txns: recorded,
            });
            Ok(version)
        }
        // `VersionAlreadyExists` stays a Delta transaction error: `is_retryable` knows it.
        Err(e) => Err(deltalake::DeltaTableError::from(e).into()),
    }
}
