//! Retention in the background: a table's expired hour partitions leave it in one commit
//! of `remove` actions (`dataChange = true`), and vacuum deletes their files once the
//! table's `deletedFileRetentionDuration` has passed, or at once when purged.
//!
//! The commit only removes files of expired hours, which no append adds to (ingest refuses
//! their rows), so losing a race to an append just means trying again on the newer version.
//! It uses no rebasing of delta-rs (which would not see a concurrent compaction of the same
//! files): every attempt removes the files live in the snapshot it is built on, and a lost
//! race reloads the log and looks again, so a compaction that rewrote an expired hour first
//! has its new file removed instead.

use std::collections::BTreeMap;

use deltalake::protocol::DeltaOperation;
use deltalake::DeltaTable;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::ObjectStoreExt;
use tracing::{debug, info};

use super::history::Started;
use super::{Maintenance, MaintenanceError, Outcome, RunScope, StepKind, StepRecord};
use crate::datasets::Dataset;
use crate::lake::delta::commit_on_snapshot;
use crate::lake::{live_files, live_paths, partition_name, Cutoff, LakeError, LiveFile};

/// How often the removal is rebuilt after losing a race to other writers.
const MAX_ATTEMPTS: usize = 30;
/// Objects looked up at once before a purge.
const AT_ONCE: usize = 16;

/// What one table's retention step did.
pub(super) struct Expiry {
    /// One record per expired partition, and one for the purge.
    pub(super) records: Vec<StepRecord>,
    /// True when a commit landed (the table's state moved).
    pub(super) committed: bool,
}

/// An expired partition as the removal sees it.
struct ExpiredPartition {
    files: Vec<LiveFile>,
    rows: u64,
    bytes: u64,
}

impl Maintenance {
    /// Removes the table's expired partitions (and with `scope.purge`, deletes their files
    /// now); nothing when its retention keeps everything.
    pub(super) async fn expire(
        &self,
        tenant: &str,
        dataset: &Dataset,
        table: &mut DeltaTable,
        scope: &RunScope,
    ) -> Expiry {
        let mut expiry = Expiry {
            records: Vec::new(),
            committed: false,
        };
        let retention = self.retention.retention(tenant, &dataset.name);
        let Some(cutoff) = Cutoff::at(retention, self.clock.now()) else {
            return expiry;
        };
        let started = Started::now(&self.clock);
        let record = |partition: &str, expired: &ExpiredPartition| {
            let mut record =
                StepRecord::new(tenant, &dataset.name, StepKind::Retention, started.at);
            record.partition = partition.to_string();
            record.files_in = expired.files.len() as u64;
            record.bytes_in = expired.bytes;
            record.rows_in = expired.rows;
            record
        };
        let removed = match self
            .remove_expired(table, dataset, cutoff, scope.dry_run)
            .await
        {
            Ok((partitions, version)) => {
                expiry.committed = version.is_some();
                for (partition, expired) in &partitions {
                    let mut r = record(partition, expired);
                    r.version = version;
                    r.outcome = if scope.dry_run {
                        Outcome::Planned
                    } else {
                        Outcome::Done
                    };
                    r.duration = started.timer.elapsed();
                    expiry.records.push(r);
                }
                if version.is_some() {
                    info!(tenant, dataset = %dataset.name, partitions = partitions.len(), first_kept = %cutoff.first_kept(), ?version, "expired partitions removed");
                }
                partitions
                    .into_values()
                    .flat_map(|p| p.files)
                    .map(|f| f.path)
                    .collect()
            }
            Err(e) => {
                expiry.records.push(StepRecord::failed(
                    tenant,
                    &dataset.name,
                    StepKind::Retention,
                    started.at,
                    e,
                ));
                return expiry;
            }
        };
        if scope.purge {
            expiry.records.push(
                self.purge(tenant, dataset, table, cutoff, removed, scope.dry_run)
                    .await,
            );
        }
        expiry
    }

    /// Commits the removal of every live file of an expired hour: the expired partitions
    /// by name, and the version that removed them (`None` when nothing was, or a dry run).
    async fn remove_expired(
        &self,
        table: &mut DeltaTable,
        dataset: &Dataset,
        cutoff: Cutoff,
        dry_run: bool,
    ) -> Result<(BTreeMap<String, ExpiredPartition>, Option<i64>), MaintenanceError> {
        for attempt in 1..=MAX_ATTEMPTS {
            let expired = expired_partitions(table, dataset, cutoff)?;
            if expired.is_empty() || dry_run {
                return Ok((expired, None));
            }
            let deleted_at = self.clock.now().timestamp_millis();
            let actions = expired
                .values()
                .flat_map(|p| &p.files)
                .map(|f| f.removal(deleted_at, true))
                .collect();
            let operation = DeltaOperation::Delete {
                predicate: Some(format!(
                    "hour partitions before {} (retention)",
                    cutoff.first_kept().format("%Y-%m-%dT%H:00Z")
                )),
            };
            match commit_on_snapshot(table, actions, operation).await? {
                Some(version) => return Ok((expired, Some(version))),
                None => {
                    debug!(table = %table.table_url(), attempt, "retention commit lost a race; looking again")
                }
            }
        }
        Err(LakeError::CommitContention {
            table: table.table_url().to_string(),
            attempts: MAX_ATTEMPTS,
        }
        .into())
    }

    /// Deletes now the files of expired hours the table no longer references: those just
    /// removed and those an earlier run removed (the log's tombstones), so an erasure need
    /// not wait for `deletedFileRetentionDuration`. A file still live is never touched.
    async fn purge(
        &self,
        tenant: &str,
        dataset: &Dataset,
        table: &DeltaTable,
        cutoff: Cutoff,
        removed_now: Vec<String>,
        dry_run: bool,
    ) -> StepRecord {
        let started = Started::now(&self.clock);
        let mut record = StepRecord::new(tenant, &dataset.name, StepKind::Purge, started.at);
        let purged = purge_files(table, cutoff, removed_now, dry_run).await;
        record.duration = started.timer.elapsed();
        match purged {
            Ok((files, bytes)) => {
                record.files_in = files;
                record.bytes_in = bytes;
                if dry_run {
                    record.outcome = Outcome::Planned;
                }
                if files > 0 && !dry_run {
                    info!(tenant, dataset = %dataset.name, files, bytes, "expired files purged");
                }
            }
            Err(e) => record.outcome = Outcome::Failed(e.to_string()),
        }
        record
    }
}

/// The live files of the table's expired hours, by partition, with their rows and bytes.
fn expired_partitions(
    table: &DeltaTable,
    dataset: &Dataset,
    cutoff: Cutoff,
) -> Result<BTreeMap<String, ExpiredPartition>, MaintenanceError> {
    let columns = dataset.partition_columns();
    let mut expired: BTreeMap<String, ExpiredPartition> = BTreeMap::new();
    for file in live_files(table)? {
        if !cutoff.expires(&file.partition_values) {
            continue;
        }
        let name = partition_name(&columns, &file.partition_values);
        let entry = expired.entry(name).or_insert_with(|| ExpiredPartition {
            files: Vec::new(),
            rows: 0,
            bytes: 0,
        });
        entry.bytes += file.size;
        entry.rows += file.rows.unwrap_or(0);
        entry.files.push(file);
    }
    Ok(expired)
}

/// Deletes (or, in a dry run, counts) the unreferenced files of expired hours: how many
/// there were and their bytes.
async fn purge_files(
    table: &DeltaTable,
    cutoff: Cutoff,
    removed_now: Vec<String>,
    dry_run: bool,
) -> Result<(u64, u64), MaintenanceError> {
    let live = live_paths(table)?;
    let snapshot = table.snapshot().map_err(LakeError::from)?;
    let log_store = table.log_store();
    let tombstones: Vec<String> = snapshot
        .all_tombstones(log_store.as_ref())
        .map_ok(|t| t.path().into_owned())
        .try_collect()
        .await
        .map_err(LakeError::from)?;
    // What this run removed (still live in a dry run, which removed nothing), and what
    // earlier runs removed that is not live again.
    let mut paths: std::collections::BTreeSet<String> = removed_now.into_iter().collect();
    paths.extend(
        tombstones
            .into_iter()
            .filter(|p| cutoff.expires_path(p) && !live.contains(p)),
    );
    let store = table.object_store();
    // Sizes first (a file already gone is not counted), then one batched delete.
    let found: Vec<Option<(Path, u64)>> = futures::stream::iter(paths)
        .map(|path| {
            let store = store.clone();
            async move {
                let location = Path::parse(&path).unwrap_or_else(|_| Path::from(path.as_str()));
                match store.head(&location).await {
                    Ok(meta) => Ok(Some((location, meta.size))),
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(LakeError::from(e)),
                }
            }
        })
        .buffer_unordered(AT_ONCE)
        .try_collect()
        .await?;
    let found: Vec<(Path, u64)> = found.into_iter().flatten().collect();
    let files = found.len() as u64;
    let bytes = found.iter().map(|(_, size)| size).sum();
    if !dry_run {
        let locations = futures::stream::iter(found.into_iter().map(|(l, _)| Ok(l))).boxed();
        let deleted: Vec<_> = store.delete_stream(locations).collect().await;
        for result in deleted {
            match result {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(LakeError::from(e).into()),
            }
        }
    }
    Ok((files, bytes))
}
