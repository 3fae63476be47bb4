//! The log side of maintenance: a checkpoint at the latest version when there is none,
//! expired log files removed, and data files nothing references any more deleted.

use std::sync::Arc;

use deltalake::kernel::transaction::CommitProperties;
use deltalake::operations::vacuum::{Clock as VacuumClock, VacuumMode};
use deltalake::DeltaTable;

use super::MaintenanceError;
use crate::clock::Clock;
use crate::lake::{last_checkpoint, LakeError};

/// Writes a checkpoint at the table's loaded version unless `_last_checkpoint` already
/// names it; true when one was written.
pub(super) async fn checkpoint_if_missing(
    table: &DeltaTable,
    dry_run: bool,
) -> Result<bool, MaintenanceError> {
    let Some(version) = table.version() else {
        return Ok(false);
    };
    let store = table.object_store();
    if last_checkpoint(store.as_ref()).await? == Some(version as i64) {
        return Ok(false);
    }
    if !dry_run {
        deltalake::checkpoints::create_checkpoint(table, None)
            .await
            .map_err(LakeError::from)?;
    }
    Ok(true)
}

/// Deletes log files older than the table's `delta.logRetentionDuration` (30 days by
/// default) that the latest checkpoint makes unnecessary; how many went.
pub(super) async fn clean_log(
    table: &DeltaTable,
    dry_run: bool,
) -> Result<usize, MaintenanceError> {
    if dry_run {
        return Ok(0);
    }
    Ok(deltalake::checkpoints::cleanup_metadata(table, None)
        .await
        .map_err(LakeError::from)?)
}

/// Deletes the data files the latest version does not reference and that are older than
/// the table's `delta.deletedFileRetentionDuration` (7 days by default): files compaction
/// replaced (tombstoned in the log) and, when `full`, the orphans of units that never
/// committed, which only a listing of the table finds. Returns the files (to be) deleted.
pub(super) async fn vacuum(
    table: &DeltaTable,
    clock: Arc<dyn Clock>,
    full: bool,
    dry_run: bool,
) -> Result<Vec<String>, MaintenanceError> {
    let mode = if full {
        VacuumMode::Full
    } else {
        VacuumMode::Lite
    };
    let (_, metrics) = table
        .clone()
        .vacuum()
        .with_mode(mode)
        .with_dry_run(dry_run)
        .with_clock(Arc::new(ClockAdapter(clock)))
        .with_commit_properties(CommitProperties::default().with_create_checkpoint(false))
        .await
        .map_err(LakeError::from)?;
    Ok(metrics.files_deleted)
}

#[derive(Debug)]
struct ClockAdapter(Arc<dyn Clock>);

impl VacuumClock for ClockAdapter {
    fn current_timestamp_millis(&self) -> i64 {
        self.0.now().timestamp_millis()
    }
}
