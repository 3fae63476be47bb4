//! What maintenance did: one record per step that did (or, in a dry run, would do)
//! something, kept in memory for `system.maintenance` and returned by `maintenance.run`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::warn;

use super::MaintenanceError;
use crate::clock::Clock;

/// Records kept; older ones are dropped first.
const KEPT: usize = 2000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    Compaction,
    Checkpoint,
    LogCleanup,
    Vacuum,
    /// Expired hour partitions removed from the table.
    Retention,
    /// Files of expired hours deleted at once, without waiting for vacuum.
    Purge,
}

impl StepKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Compaction => "compaction",
            StepKind::Checkpoint => "checkpoint",
            StepKind::LogCleanup => "log_cleanup",
            StepKind::Vacuum => "vacuum",
            StepKind::Retention => "retention",
            StepKind::Purge => "purge",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// A dry run: what would have been done.
    Planned,
    /// Another replica compacted some of the files first; nothing was changed.
    LostRace,
    Failed(String),
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::Planned => "planned",
            Outcome::LostRace => "lost_race",
            Outcome::Failed(_) => "failed",
        }
    }
}

/// One maintenance step on one table (a compaction is per partition group).
#[derive(Debug, Clone)]
pub struct StepRecord {
    pub tenant: String,
    pub dataset: String,
    pub kind: StepKind,
    /// The partition a compaction rewrote; empty for the table-wide steps.
    pub partition: String,
    pub files_in: u64,
    pub files_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Rows the step took in (the rows of an expired partition).
    pub rows_in: u64,
    /// The table version the step committed or checkpointed, when it did.
    pub version: Option<i64>,
    pub started_at: DateTime<Utc>,
    pub duration: Duration,
    pub outcome: Outcome,
}

impl StepRecord {
    pub fn new(tenant: &str, dataset: &str, kind: StepKind, started_at: DateTime<Utc>) -> Self {
        Self {
            tenant: tenant.to_string(),
            dataset: dataset.to_string(),
            kind,
            partition: String::new(),
            files_in: 0,
            files_out: 0,
            bytes_in: 0,
            bytes_out: 0,
            rows_in: 0,
            version: None,
            started_at,
            duration: Duration::ZERO,
            outcome: Outcome::Done,
        }
    }

    /// A step that failed with `error`.
    pub fn failed(
        tenant: &str,
        dataset: &str,
        kind: StepKind,
        at: DateTime<Utc>,
        error: impl std::fmt::Display,
    ) -> Self {
        let mut record = Self::new(tenant, dataset, kind, at);
        record.outcome = Outcome::Failed(error.to_string());
        record
    }

    pub fn message(&self) -> &str {
        match &self.outcome {
            Outcome::Failed(message) => message,
            _ => "",
        }
    }
}

/// When a step started: by the clock (its record) and by a timer (its duration).
#[derive(Debug, Clone, Copy)]
pub(super) struct Started {
    pub(super) at: DateTime<Utc>,
    pub(super) timer: std::time::Instant,
}

impl Started {
    pub(super) fn now(clock: &Arc<dyn Clock>) -> Self {
        Self {
            at: clock.now(),
            timer: std::time::Instant::now(),
        }
    }
}

/// A table-wide step under way (checkpoint, log cleanup, vacuum): which, on what table,
/// since when, and whether it only plans.
pub(super) struct TableStep<'a> {
    tenant: &'a str,
    dataset: &'a str,
    kind: StepKind,
    started: Started,
    dry_run: bool,
}

impl<'a> TableStep<'a> {
    pub(super) fn start(
        tenant: &'a str,
        dataset: &'a str,
        kind: StepKind,
        clock: &Arc<dyn Clock>,
        dry_run: bool,
    ) -> Self {
        Self {
            tenant,
            dataset,
            kind,
            started: Started::now(clock),
            dry_run,
        }
    }

    /// Its record: `None` when `describe` says it had nothing to do.
    pub(super) fn finish<T>(
        self,
        result: Result<T, MaintenanceError>,
        describe: impl FnOnce(&T, &mut StepRecord) -> bool,
    ) -> Option<StepRecord> {
        let Self {
            tenant,
            dataset,
            kind,
            started,
            dry_run,
        } = self;
        let mut record = StepRecord::new(tenant, dataset, kind, started.at);
        record.duration = started.timer.elapsed();
        match result {
            Ok(value) => {
                if !describe(&value, &mut record) {
                    return None;
                }
                if dry_run {
                    record.outcome = Outcome::Planned;
                }
            }
            Err(e) => {
                warn!(tenant, dataset, step = kind.as_str(), error = %e, "maintenance step failed");
                record.outcome = Outcome::Failed(e.to_string());
            }
        }
        Some(record)
    }
}

/// The latest records of this process, oldest first.
#[derive(Debug, Default)]
pub struct MaintenanceLog {
    records: Mutex<VecDeque<StepRecord>>,
}

impl MaintenanceLog {
    pub fn push(&self, records: &[StepRecord]) {
        let mut kept = self.records.lock().unwrap_or_else(|p| p.into_inner());
        kept.extend(records.iter().cloned());
        while kept.len() > KEPT {
            kept.pop_front();
        }
    }

    pub fn of_tenants(&self, tenants: &[String]) -> Vec<StepRecord> {
        let kept = self.records.lock().unwrap_or_else(|p| p.into_inner());
        kept.iter()
            .filter(|r| tenants.contains(&r.tenant))
            .cloned()
            .collect()
    }
}
