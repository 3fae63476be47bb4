//! Step 4 of ingest: one committer task per table turns the file units of all concurrent
//! DoPuts into Delta commits (adaptive group commit, see `group_commit`). Each
//! producer's highest sequence goes into the same commit as its rows as a Delta `txn`
//! action, so a retried unit is recognised and skipped, never duplicated.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arrow::datatypes::{Field, Schema, SchemaRef};
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, Add, StructField, Transaction};
use deltalake::protocol::{DeltaOperation, SaveMode};
use tokio::sync::{mpsc, oneshot, Mutex};
use tokio::time::Instant;
use tracing::{debug, warn};

use super::blind_append::{appends_blindly, commit_blind_append};
use super::checkpointer::Checkpointer;
use super::delta::{create_schema, delta_fields, ensure_local_dir, table_data_schema};
use super::group_commit::{CommitSchedule, Decision, Incoming};
use super::metrics;
use super::sequences::{RangeCheck, SequenceRange};
use super::shared_files::{write_shared, UnitRows};
use super::stats::rows_of;
use super::table_state::TableState;
use super::usage::TableMeter;
use super::LakeError;
use crate::datasets::Dataset;

/// How often a commit that lost a race with another writer is rebuilt and tried again.
/// An attempt is one try at the next version (delta-rs's own commit path retried up to 15
/// times inside each attempt), so a table every replica writes gets as many tries as
/// before; a lost try costs a log listing and a read of each newer commit.
const MAX_ATTEMPTS: usize = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    Committed {
        version: i64,
    },
    /// Every sequence of the unit was already committed; its files (if it wrote its own)
    /// stay unreferenced.
    Duplicate,
}

/// What a unit brings to its commit.
#[derive(Debug)]
pub enum UnitFiles {
    /// Files the unit wrote itself (a large unit).
    Written(Vec<Add>),
    /// Rows the committer writes into files shared with the other units of the commit.
    Rows(Box<UnitRows>),
}

impl UnitFiles {
    pub fn is_empty(&self) -> bool {
        match self {
            UnitFiles::Written(adds) => adds.is_empty(),
            UnitFiles::Rows(rows) => rows.parts.is_empty(),
        }
    }

    fn rows(&self) -> i64 {
        match self {
            UnitFiles::Written(adds) => rows_of(adds),
            UnitFiles::Rows(rows) => rows.rows as i64,
        }
    }

    fn shared(&self) -> Option<&UnitRows> {
        match self {
            UnitFiles::Written(_) => None,
            UnitFiles::Rows(rows) => Some(rows),
        }
    }
}

/// One unit of one stream, waiting to be committed with the others.
#[derive(Debug)]
pub struct CommitRequest {
    pub files: UnitFiles,
    pub sequences: Option<SequenceRange>,
    /// Data schema (table columns minus derived partition columns) the files were written for.
    pub schema: SchemaRef,
    /// Set when a unit of the same stream failed; later units must not commit.
    pub stream_failed: Arc<AtomicBool>,
    pub respond: oneshot::Sender<Result<CommitOutcome, LakeError>>,
}

/// When a table commits, and when it writes a checkpoint.
#[derive(Debug, Clone, Copy)]
pub struct CommitPolicy {
    /// Longest a unit waits for others to share its commit (`ingest.commit_interval`).
    pub interval: Duration,
    /// A checkpoint closes every this many commits (`maintenance.checkpoint_interval`).
    pub checkpoint_every: u64,
}

pub(super) fn spawn(
    table: Arc<Mutex<TableState>>,
    dataset: Arc<Dataset>,
    store: String,
    policy: CommitPolicy,
    incoming: Arc<Incoming>,
    meter: Arc<TableMeter>,
) -> mpsc::Sender<CommitRequest> {
    let (tx, rx) = mpsc::channel(1024);
    metrics::committer_started(&meter.tenant, &meter.dataset);
    tokio::spawn(run(table, dataset, store, policy, incoming, meter, rx));
    tx
}

/// Runs until every sender (the table handle and the units holding it) is gone.
async fn run(
    table: Arc<Mutex<TableState>>,
    dataset: Arc<Dataset>,
    store: String,
    policy: CommitPolicy,
    incoming: Arc<Incoming>,
    meter: Arc<TableMeter>,
    mut rx: mpsc::Receiver<CommitRequest>,
) {
    let mut schedule = CommitSchedule::new(policy.interval);
    let checkpoints = Checkpointer::new(policy.checkpoint_every);
    while let Some(first) = rx.recv().await {
        let mut group = vec![first];
        let mut open = true;
        loop {
            while let Ok(more) = rx.try_recv() {
                group.push(more);
            }
            match schedule.decide(Instant::now(), incoming.count()) {
                Decision::CommitNow => break,
                Decision::WaitUntil(at) => tokio::select! {
                    _ = tokio::time::sleep_until(at) => break,
                    _ = incoming.arrived() => {}
                    more = rx.recv(), if open => match more {
                        Some(more) => group.push(more),
                        None => open = false,
                    },
                },
            }
        }
        schedule.committed_at(Instant::now());
        let object_store = table.lock().await.table().object_store();
        let shared = write_before_commit(object_store, &group).await;
        let mut state = table.lock().await;
        if let Some((version, rows)) =
            commit_group(&mut state, &dataset, &store, &meter, group, shared).await
        {
            meter.committed(rows, chrono::Utc::now());
            checkpoints.after_commit(&table, &state, version);
        }
    }
}

struct Pending {
    request: CommitRequest,
    outcome: Option<Result<CommitOutcome, LakeError>>,
}

/// The shared files written for a commit, and which units' rows they hold.
struct SharedFiles {
    units: Vec<usize>,
    written: Result<Vec<Add>, LakeError>,
}

/// Writes the files the group's sharing units share, before the table is locked, so the
/// streams' refreshes do not wait for the encoding. A unit that turns out not to be
/// committed (its stream failed, its sequence was committed meanwhile) has the files
/// written again without it (`commit_group`).
async fn write_before_commit(
    store: Arc<dyn deltalake::ObjectStore>,
    group: &[CommitRequest],
) -> SharedFiles {
    let units: Vec<usize> = (0..group.len())
        .filter(|i| {
            group[*i].files.shared().is_some() && !group[*i].stream_failed.load(Ordering::SeqCst)
        })
        .collect();
    let rows: Vec<&UnitRows> = units
        .iter()
        .filter_map(|i| group[*i].files.shared())
        .collect();
    let written = write_shared(store, &rows).await;
    SharedFiles { units, written }
}

/// Commits `group` (retrying lost races) and answers each unit; the version committed
/// and the rows it added, if any.
async fn commit_group(
    state: &mut TableState,
    dataset: &Dataset,
    store: &str,
    meter: &TableMeter,
    group: Vec<CommitRequest>,
    mut shared: SharedFiles,
) -> Option<(i64, i64)> {
    let started = Instant::now();
    let mut pending: Vec<Pending> = group
        .into_iter()
        .map(|request| Pending {
            request,
            outcome: None,
        })
        .collect();
    let mut last_error = None;
    for attempt in 1..=MAX_ATTEMPTS {
        match try_commit(state, dataset, &mut pending, &mut shared, attempt).await {
            Ok(()) => {
                last_error = None;
                break;
            }
            Err(e) if e.is_retryable() => {
                debug!(table = %state.table().table_url(), attempt, error = %e, "commit lost a race, rebuilding");
                metrics::commit_retried(&meter.tenant, &meter.dataset);
                last_error = Some(LakeError::CommitContention {
                    table: state.table().table_url().to_string(),
                    attempts: attempt,
                });
            }
            Err(e) => {
                last_error = Some(e.in_store(store));
                break;
            }
        }
    }
    if let Some(e) = &last_error {
        warn!(table = %state.table().table_url(), error = %e, "commit failed");
        for p in pending.iter_mut().filter(|p| p.outcome.is_none()) {
            p.outcome = Some(Err(e.clone()));
        }
    }
    for p in &pending {
        if matches!(p.outcome, Some(Err(_))) {
            p.request.stream_failed.store(true, Ordering::SeqCst);
        }
    }
    let committed: Vec<(i64, i64)> = pending
        .iter()
        .filter_map(|p| match p.outcome {
            Some(Ok(CommitOutcome::Committed { version })) => {
                Some((version, p.request.files.rows()))
            }
            _ => None,
        })
        .collect();
    let committed = committed
        .iter()
        .map(|(v, _)| *v)
        .max()
        .map(|version| (version, committed.iter().map(|(_, r)| r).sum()));
    metrics::commit_finished(
        &meter.tenant,
        &meter.dataset,
        last_error.is_none(),
        started.elapsed(),
    );
    for p in pending {
        let outcome = p
            .outcome
            .unwrap_or_else(|| Err(LakeError::Internal("unit left without outcome".into())));
        let _ = p.request.respond.send(outcome);
    }
    committed
}

/// One attempt: drop units already committed, commit the rest.
async fn try_commit(
    state: &mut TableState,
    dataset: &Dataset,
    pending: &mut [Pending],
    shared: &mut SharedFiles,
    attempt: usize,
) -> Result<(), LakeError> {
    // The state catches up with the log only after a lost race: an append is written at
    // the version after the head this process knows, and an atomic create refuses it if
    // another writer took that version, so a stale head costs a retry, never a wrong
    // commit; an idle table saves a log listing per commit.
    let exists = if attempt == 1 && state.exists() {
        true
    } else {
        state.catch_up().await?
    };
    let current = if exists {
        Some(table_data_schema(state.table(), dataset)?)
    } else {
        None
    };

    let mut versions: HashMap<String, i64> = HashMap::new();
    let mut new_fields: Vec<Field> = Vec::new();
    let mut included = Vec::new();
    for (index, p) in pending.iter_mut().enumerate() {
        p.outcome = None;
        if p.request.stream_failed.load(Ordering::SeqCst) {
            p.outcome = Some(Err(LakeError::EarlierUnitFailed));
            continue;
        }
        if let Some(range) = &p.request.sequences {
            let committed = match versions.get(&range.app_id) {
                Some(v) => Some(*v),
                None => state.transaction_version(&range.app_id).await?,
            };
            let committed = committed.unwrap_or(-1);
            match range.check(committed) {
                RangeCheck::New => {}
                RangeCheck::Committed => {
                    p.outcome = Some(Ok(CommitOutcome::Duplicate));
                    continue;
                }
                RangeCheck::Overlaps => {
                    p.outcome = Some(Err(LakeError::SequenceOverlap {
                        producer: range.app_id.clone(),
                        committed,
                        first: range.first,
                    }));
                    continue;
                }
            }
        }
        if let Err(e) = merge_schema(current.as_ref(), &mut new_fields, &p.request.schema) {
            p.outcome = Some(Err(e));
            continue;
        }
        if let Some(range) = &p.request.sequences {
            versions.insert(range.app_id.clone(), range.last);
        }
        included.push(index);
    }
    if included.is_empty() {
        return Ok(());
    }

    let sharing: Vec<usize> = included
        .iter()
        .copied()
        .filter(|i| pending[*i].request.files.shared().is_some())
        .collect();
    if sharing != shared.units || shared.written.is_err() {
        let rows: Vec<&UnitRows> = sharing
            .iter()
            .filter_map(|i| pending[*i].request.files.shared())
            .collect();
        shared.written = write_shared(state.table().object_store(), &rows).await;
        shared.units = sharing;
    }
    let shared_adds = shared.written.as_ref().map_err(Clone::clone)?;
    let adds: Vec<Action> = included
        .iter()
        .flat_map(|i| match &pending[*i].request.files {
            UnitFiles::Written(adds) => adds.as_slice(),
            UnitFiles::Rows(_) => &[],
        })
        .chain(shared_adds)
        .cloned()
        .map(Action::Add)
        .collect();
    let txns: Vec<Transaction> = versions
        .iter()
        .map(|(app_id, version)| Transaction::new(app_id, *version))
        .collect();
    // `isBlindAppend` tells conflict checkers (delta-rs, Spark) that the commit read
    // nothing, so a compaction racing with it is rebased over it instead of failing.
    let app_metadata = HashMap::from([("isBlindAppend".to_string(), serde_json::json!(true))]);
    let partition_columns = dataset.partition_columns();
    let operation = DeltaOperation::Write {
        mode: SaveMode::Append,
        partition_by: Some(partition_columns.clone()),
        predicate: None,
    };

    let version = if current.is_some() {
        if !new_fields.is_empty() {
            // A schema change goes through delta-rs on the newest snapshot.
            state.load_latest().await?;
            let table = state.table().clone();
            let fields = delta_fields(&new_fields)?;
            state.replace(table.add_columns().with_fields(fields).await?);
            debug!(table = %state.table().table_url(), added = new_fields.len(), "table schema grew");
        }
        if appends_blindly(state) {
            commit_blind_append(state, adds, operation, app_metadata, txns).await?
        } else {
            commit_through_delta_rs(state, adds, operation, properties(app_metadata, txns)).await?
        }
    } else {
        let columns: Vec<StructField> = delta_fields(&create_schema(dataset, &new_fields))?;
        ensure_local_dir(state.table().table_url())?;
        let created = state
            .table()
            .clone()
            .create()
            .with_table_name(&dataset.name)
            .with_columns(columns)
            .with_partition_columns(partition_columns)
            .with_actions(adds)
            .with_commit_properties(properties(app_metadata, txns))
            .with_save_mode(SaveMode::ErrorIfExists)
            .await;
        match created {
            Ok(created) => state.replace(created),
            // Another writer created the table since our refresh: the next attempt
            // appends to it instead.
            Err(_) if state.load_latest().await? => {
                return Err(LakeError::CreateRace(state.table().table_url().to_string()))
            }
            Err(e) => return Err(e.into()),
        }
        // delta-rs may land a create at a later version when it lost a race it could
        // resolve; report the version actually written.
        state.head().unwrap_or(0)
    };
    for i in included {
        pending[i].outcome = Some(Ok(CommitOutcome::Committed { version }));
    }
    Ok(())
}

/// Commit properties for delta-rs's commit path. Checkpoints follow
/// `maintenance.checkpoint_interval` (see `checkpointer`), not delta-rs's post-commit
/// hook, which reads the table's own `delta.checkpointInterval`; log cleanup is
/// maintenance's (a log listing per commit otherwise).
fn properties(
    app_metadata: HashMap<String, serde_json::Value>,
    txns: Vec<Transaction>,
) -> CommitProperties {
    CommitProperties::default()
        .with_application_transactions(txns)
        .with_create_checkpoint(false)
        .with_cleanup_expired_logs(Some(false))
        .with_metadata(app_metadata)
}

/// Appends through delta-rs's `CommitBuilder`, on the newest snapshot (a log store without
/// conditional create): it loads the snapshot of its own version after the commit.
async fn commit_through_delta_rs(
    state: &mut TableState,
    adds: Vec<Action>,
    operation: DeltaOperation,
    properties: CommitProperties,
) -> Result<i64, LakeError> {
    if !state.loaded_at_head() {
        state.load_latest().await?;
    }
    let table = state.table();
    let finalized = CommitBuilder::from(properties)
        .with_actions(adds)
        .build(Some(table.snapshot()?), table.log_store(), operation)
        .await?;
    let version = finalized.version() as i64;
    let mut table = table.clone();
    table.state = Some(finalized.snapshot());
    state.replace(table);
    Ok(version)
}

/// Adds the unit's columns the table lacks to `new_fields`; a type clash is an error.
fn merge_schema(
    current: Option<&Schema>,
    new_fields: &mut Vec<Field>,
    unit: &Schema,
) -> Result<(), LakeError> {
    let mut additions = Vec::new();
    for field in unit.fields() {
        let existing = current
            .and_then(|s| s.field_with_name(field.name()).ok())
            .or_else(|| new_fields.iter().find(|f| f.name() == field.name()));
        match existing {
            Some(e) if e.data_type().equals_datatype(field.data_type()) => {}
            Some(e) => {
                return Err(LakeError::SchemaConflict {
                    column: field.name().clone(),
                    table: e.data_type().to_string(),
                    unit: field.data_type().to_string(),
                })
            }
            None => additions.push(field.as_ref().clone()),
        }
    }
    new_fields.extend(additions);
    Ok(())
}
