//! What maintenance runs with, and which tables one run visits.

use std::time::Duration;

use super::CompactionWriter;
use crate::lake::FileTargets;

/// Everything maintenance runs with (from `[maintenance]` and `[datasets.NAME]`).
#[derive(Debug, Clone)]
pub struct MaintenanceSettings {
    /// How often the schedule runs; zero turns it off.
    pub interval: Duration,
    pub grace_period: Duration,
    pub targets: FileTargets,
    pub writer: CompactionWriter,
}

/// Which tables a run visits, and whether it changes anything.
#[derive(Debug, Clone, Default)]
pub struct RunScope {
    pub tenant: Option<String>,
    pub dataset: Option<String>,
    pub dry_run: bool,
    /// Set by the schedule: vacuum lists the whole table for orphans only once every
    /// `FULL_VACUUM_EVERY` per table (a LIST per partition on an object store), and
    /// otherwise deletes just the files the log tombstoned. A run asked for by an admin
    /// always lists.
    pub scheduled: bool,
    /// Retention deletes the files of expired hours at once instead of leaving them to
    /// vacuum after the table's `deletedFileRetentionDuration`.
    pub purge: bool,
}

/// How often the schedule lets vacuum list a table for orphans.
pub(super) const FULL_VACUUM_EVERY: Duration = Duration::from_secs(24 * 3600);
