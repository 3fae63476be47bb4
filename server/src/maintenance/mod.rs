//! Keeping tables cheap to read: compaction of closed hour partitions, a checkpoint at the
//! latest version, log cleanup and vacuum. Run by a schedule in every replica and on
//! demand (`maintenance.run`); replicas need no coordination, since every step is either
//! a Delta commit that conflicts with a competing one or a deletion of what nothing
//! references.

mod compact;
mod expire;
pub mod history;
mod housekeeping;
pub mod metrics;
pub mod plan;
mod schedule;
mod settings;
mod system_table;
mod table;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::clock::Clock;
use crate::lake::{LakeError, LakeTables, LoadedTable, RetentionPolicy};
pub use compact::CompactionWriter;
pub use history::{MaintenanceLog, Outcome, StepKind, StepRecord};
pub use settings::{MaintenanceSettings, RunScope};
pub use system_table::MaintenanceTable;

#[derive(Debug, thiserror::Error)]
pub enum MaintenanceError {
    #[error(transparent)]
    Lake(#[from] LakeError),
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

#[derive(Debug)]
pub struct Maintenance {
    tables: Arc<LakeTables>,
    settings: MaintenanceSettings,
    clock: Arc<dyn Clock>,
    retention: Arc<dyn RetentionPolicy>,
    log: Arc<MaintenanceLog>,
    /// One run at a time per process: the schedule and admin runs take turns.
    running: tokio::sync::Mutex<()>,
    /// When each table (tenant, dataset) was last vacuumed with a full listing.
    full_vacuums: std::sync::Mutex<HashMap<(String, String), DateTime<Utc>>>,
}

impl Maintenance {
    pub fn new(
        tables: Arc<LakeTables>,
        settings: MaintenanceSettings,
        clock: Arc<dyn Clock>,
        retention: Arc<dyn RetentionPolicy>,
    ) -> Self {
        Self {
            tables,
            settings,
            clock,
            retention,
            log: Arc::default(),
            running: tokio::sync::Mutex::new(()),
            full_vacuums: Default::default(),
        }
    }

    /// What maintenance did in this process, for `system.maintenance`.
    pub fn log(&self) -> Arc<MaintenanceLog> {
        self.log.clone()
    }

    /// Maintains every table of the scope; one record per step that did something. A
    /// table whose step fails gets a `failed` record and the run goes on with the next.
    pub async fn run(&self, scope: &RunScope) -> Result<Vec<StepRecord>, MaintenanceError> {
        self.each_table(scope, Job::Maintain).await
    }

    /// Applies retention alone to every table of the scope (`retention.run`): the expired
    /// partitions of each, and with `scope.purge` their files.
    pub async fn run_retention(
        &self,
        scope: &RunScope,
    ) -> Result<Vec<StepRecord>, MaintenanceError> {
        self.each_table(scope, Job::Retention).await
    }

    async fn each_table(
        &self,
        scope: &RunScope,
        job: Job,
    ) -> Result<Vec<StepRecord>, MaintenanceError> {
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
                            job.first_step(),
                            self.clock.now(),
                            e,
                        ));
                        continue;
                    }
                };
                records.extend(match job {
                    Job::Maintain => self.maintain(loaded, scope).await,
                    Job::Retention => self.retention_only(loaded, scope).await,
                });
            }
        }
        if !scope.dry_run {
            metrics::run_finished(&records);
            self.log.push(&records);
        }
        Ok(records)
    }
}

/// What a run does to each table.
#[derive(Debug, Clone, Copy)]
enum Job {
    /// Every step: retention, compaction, checkpoint, log cleanup, vacuum.
    Maintain,
    Retention,
}

impl Job {
    /// The step a table that cannot be loaded is recorded as failing.
    fn first_step(self) -> StepKind {
        match self {
            Job::Maintain => StepKind::Compaction,
            Job::Retention => StepKind::Retention,
        }
    }
}

impl Maintenance {
    async fn retention_only(&self, loaded: LoadedTable, scope: &RunScope) -> Vec<StepRecord> {
        let LoadedTable {
            tenant,
            dataset,
            mut table,
            ..
        } = loaded;
        self.expire(&tenant, &dataset, &mut table, scope)
            .await
            .records
    }
}
