//! Keeping tables cheap to read: compaction of closed hour partitions, a checkpoint at the
//! latest version, log cleanup and vacuum. Run by a schedule in every replica and on
//! demand (`maintenance.run`); replicas need no coordination, since every step is either
//! a Delta commit that conflicts with a competing one or a deletion of what nothing
//! references.

mod compact;
pub mod history;
mod housekeeping;
pub mod metrics;
pub mod plan;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::clock::Clock;
use crate::datasets::Dataset;
use crate::lake::delta::{refresh, table_data_schema};
use crate::lake::LakeError;
use crate::query::tables::{LakeTables, LoadedTable};
use crate::query::QueryError;
use compact::Compacted;
pub use compact::CompactionWriter;
pub use history::{MaintenanceLog, Outcome, StepKind, StepRecord};
pub use housekeeping::last_checkpoint;
use plan::{live_files, CompactionRules};

#[derive(Debug, thiserror::Error)]
pub enum MaintenanceError {
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error(transparent)]
    Tables(#[from] QueryError),
    #[error("compaction engine: {0}")]
    Engine(Box<datafusion::error::DataFusionError>),
    #[error("compaction schema: {0}")]
    Schema(#[from] arrow::error::ArrowError),
    #[error("unknown dataset {0:?}")]
    UnknownDataset(String),
}

impl From<datafusion::error::DataFusionError> for MaintenanceError {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        Self::Engine(Box::new(e))
    }
}

/// Everything maintenance runs with (from `[maintenance]` and `[datasets.NAME]`).
#[derive(Debug, Clone)]
pub struct MaintenanceSettings {
    /// How often the schedule runs; zero turns it off.
    pub interval: Duration,
    pub grace_period: Duration,
    pub targets: FileTargets,
    pub writer: CompactionWriter,
}

/// The size compaction packs each dataset's files toward.
#[derive(Debug, Clone)]
pub struct FileTargets {
    pub default: u64,
    /// Datasets that set their own `target_file_size`.
    pub per_dataset: BTreeMap<String, u64>,
}

impl Default for FileTargets {
    fn default() -> Self {
        Self {
            default: 256 << 20,
            per_dataset: BTreeMap::new(),
        }
    }
}

impl FileTargets {
    pub fn of(&self, dataset: &str) -> u64 {
        self.per_dataset
            .get(dataset)
            .copied()
            .unwrap_or(self.default)
    }
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
}

/// How often the schedule lets vacuum list a table for orphans.
const FULL_VACUUM_EVERY: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug)]
pub struct Maintenance {
    tables: Arc<LakeTables>,
    settings: MaintenanceSettings,
    clock: Arc<dyn Clock>,
    log: Arc<MaintenanceLog>,
    /// One run at a time per process: the schedule and admin runs take turns.
    running: tokio::sync::Mutex<()>,
    /// When each table (tenant, dataset) was last vacuumed with a full listing.
    full_vacuums: std::sync::Mutex<std::collections::HashMap<(String, String), std::time::Instant>>,
}

impl Maintenance {
    pub fn new(
        tables: Arc<LakeTables>,
        settings: MaintenanceSettings,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let log = tables.maintenance_log();
        Self {
            tables,
            settings,
            clock,
            log,
            running: tokio::sync::Mutex::new(()),
            full_vacuums: Default::default(),
        }
    }

    /// Runs every `interval` until `stop` fires (not at all for a zero interval).
    pub fn spawn_schedule(self: &Arc<Self>, stop: CancellationToken) {
        if self.settings.interval.is_zero() {
            return;
        }
        let this = Arc::downgrade(self);
        let interval = self.settings.interval;
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(interval) => {}
                }
                let Some(this) = this.upgrade() else { break };
                let scope = RunScope {
                    scheduled: true,
                    ..RunScope::default()
                };
                if let Err(e) = this.run(&scope).await {
                    warn!(error = %e, "scheduled maintenance failed; next try in one interval");
                }
            }
        });
    }

    /// Maintains every table of the scope; one record per step that did something. A
    /// table whose step fails gets a `failed` record and the run goes on with the next.
    pub async fn run(&self, scope: &RunScope) -> Result<Vec<StepRecord>, MaintenanceError> {
        let datasets = match &scope.dataset {
            Some(name) => vec![self
                .tables
                .dataset(name)
                .ok_or_else(|| MaintenanceError::UnknownDataset(name.clone()))?],
            None => self.tables.datasets(),
        };
        let tenants = match &scope.tenant {
            Some(tenant) => vec![tenant.clone()],
            None => self.tables.tenants().await?,
        };
        let _turn = self.running.lock().await;
        let mut records = Vec::new();
        for tenant in &tenants {
            for dataset in &datasets {
                let loaded = match self.tables.load(tenant, dataset, None).await {
                    Ok(Some(loaded)) => loaded,
                    Ok(None) => continue,
                    Err(e) => {
                        records.push(StepRecord::failed(
                            tenant,
                            &dataset.name,
                            StepKind::Compaction,
                            self.clock.now(),
                            e,
                        ));
                        continue;
                    }
                };
                records.extend(self.maintain(loaded, scope).await);
            }
        }
        if !scope.dry_run {
            metrics::run_finished(&records);
            self.log.push(&records);
        }
        Ok(records)
    }

    async fn maintain(&self, loaded: LoadedTable, scope: &RunScope) -> Vec<StepRecord> {
        let dry_run = scope.dry_run;
        let LoadedTable {
            tenant,
            dataset,
            mut table,
            ..
        } = loaded;
        let mut records = self
            .compact_table(&tenant, &dataset, &mut table, dry_run)
            .await;
        if !dry_run && records.iter().any(|r| r.outcome == Outcome::Done) {
            if let Err(e) = refresh(&mut table).await {
                records.push(StepRecord::failed(
                    &tenant,
                    &dataset.name,
                    StepKind::Checkpoint,
                    self.clock.now(),
                    e,
                ));
                return records;
            }
        }
        let name = &dataset.name;
        let started = Started::now(&self.clock);
        let checkpoint = housekeeping::checkpoint_if_missing(&table, dry_run).await;
        records.extend(self.record(
            &tenant,
            name,
            StepKind::Checkpoint,
            started,
            dry_run,
            checkpoint,
            |written, r| {
                r.version = table.version().map(|v| v as i64);
                *written
            },
        ));
        let started = Started::now(&self.clock);
        let cleaned = housekeeping::clean_log(&table, dry_run).await;
        records.extend(self.record(
            &tenant,
            name,
            StepKind::LogCleanup,
            started,
            dry_run,
            cleaned,
            |n, r| {
                r.files_in = *n as u64;
                *n > 0
            },
        ));
        let started = Started::now(&self.clock);
        let full = self.full_vacuum_due(&tenant, name, scope);
        let vacuumed = housekeeping::vacuum(&table, self.clock.clone(), full, dry_run).await;
        records.extend(self.record(
            &tenant,
            name,
            StepKind::Vacuum,
            started,
            dry_run,
            vacuumed,
            |files, r| {
                r.files_in = files.len() as u64;
                !files.is_empty()
            },
        ));
        records
    }

    /// Whether this run's vacuum lists the table for orphans (and notes that it does).
    fn full_vacuum_due(&self, tenant: &str, dataset: &str, scope: &RunScope) -> bool {
        let mut last = self.full_vacuums.lock().unwrap_or_else(|p| p.into_inner());
        let key = (tenant.to_string(), dataset.to_string());
        let due = !scope.scheduled
            || last
                .get(&key)
                .is_none_or(|at| at.elapsed() >= FULL_VACUUM_EVERY);
        if due && !scope.dry_run {
            last.insert(key, std::time::Instant::now());
        }
        due
    }

    /// A record for a table-wide step: `None` when it had nothing to do.
    #[allow(clippy::too_many_arguments)]
    fn record<T>(
        &self,
        tenant: &str,
        dataset: &str,
        kind: StepKind,
        started: Started,
        dry_run: bool,
        result: Result<T, MaintenanceError>,
        describe: impl FnOnce(&T, &mut StepRecord) -> bool,
    ) -> Option<StepRecord> {
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

    async fn compact_table(
        &self,
        tenant: &str,
        dataset: &Arc<Dataset>,
        table: &mut deltalake::DeltaTable,
        dry_run: bool,
    ) -> Vec<StepRecord> {
        let rules = CompactionRules {
            target_file_size: self.settings.targets.of(&dataset.name),
            grace_period: self.settings.grace_period,
        };
        let files = match live_files(table) {
            Ok(files) => files,
            Err(e) => {
                return vec![StepRecord::failed(
                    tenant,
                    &dataset.name,
                    StepKind::Compaction,
                    self.clock.now(),
                    e,
                )];
            }
        };
        let bins = plan::plan(files, &dataset.partition_columns(), rules, self.clock.now());
        let mut records = Vec::new();
        for group in plan::by_hour(bins) {
            let started = Started::now(&self.clock);
            let mut group_records: Vec<StepRecord> = group
                .iter()
                .map(|bin| {
                    let mut record =
                        StepRecord::new(tenant, &dataset.name, StepKind::Compaction, started.at);
                    record.partition = bin.partition.clone();
                    record.files_in = bin.files.len() as u64;
                    record.bytes_in = bin.bytes();
                    record.files_out = 1;
                    record
                })
                .collect();
            if dry_run {
                for record in &mut group_records {
                    record.outcome = Outcome::Planned;
                }
                records.extend(group_records);
                continue;
            }
            let compacted = match table_data_schema(table, dataset) {
                Ok(schema) => {
                    compact::compact_group(
                        table,
                        &group,
                        Arc::new(schema),
                        &dataset.time_column,
                        &self.settings.writer,
                        started.at,
                    )
                    .await
                }
                Err(e) => Err(e.into()),
            };
            match compacted {
                Ok(outcomes) => {
                    for (record, outcome) in group_records.iter_mut().zip(outcomes) {
                        match outcome {
                            Compacted::Replaced { add, version } => {
                                record.bytes_out = add.size as u64;
                                record.version = Some(version);
                            }
                            Compacted::LostRace => {
                                info!(tenant, dataset = %dataset.name, partition = %record.partition, "another writer compacted these files first");
                                record.files_out = 0;
                                record.outcome = Outcome::LostRace;
                            }
                        }
                    }
                }
                Err(e) => {
                    warn!(tenant, dataset = %dataset.name, partition = %group[0].partition, error = %e, "compaction failed");
                    for record in &mut group_records {
                        record.files_out = 0;
                        record.outcome = Outcome::Failed(e.to_string());
                    }
                }
            }
            for record in &mut group_records {
                record.duration = started.timer.elapsed();
            }
            records.extend(group_records);
        }
        records
    }
}

/// When a step started: by the clock (its record) and by a timer (its duration).
#[derive(Debug, Clone, Copy)]
struct Started {
    at: chrono::DateTime<chrono::Utc>,
    timer: std::time::Instant,
}

impl Started {
    fn now(clock: &Arc<dyn Clock>) -> Self {
        Self {
            at: clock.now(),
            timer: std::time::Instant::now(),
        }
    }
}
