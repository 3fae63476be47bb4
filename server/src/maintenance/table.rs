//! Maintaining one table: compaction of its closed hours, then a checkpoint, log cleanup
//! and vacuum, each step recorded.

use std::sync::Arc;

use tracing::{info, warn};

use super::compact::{self, Compacted};
use super::history::{Started, TableStep};
use super::plan::{self, CompactionRules};
use super::settings::FULL_VACUUM_EVERY;
use super::{housekeeping, Maintenance, Outcome, RunScope, StepKind, StepRecord};
use crate::datasets::Dataset;
use crate::lake::delta::{refresh, table_data_schema};
use crate::lake::{live_files, LoadedTable};

impl Maintenance {
    pub(super) async fn maintain(&self, loaded: LoadedTable, scope: &RunScope) -> Vec<StepRecord> {
        let dry_run = scope.dry_run;
        let LoadedTable {
            tenant,
            dataset,
            mut table,
            ..
        } = loaded;
        // Expired hours go first: compacting them would be wasted work.
        let expiry = self.expire(&tenant, &dataset, &mut table, scope).await;
        let mut records = expiry.records;
        records.extend(
            self.compact_table(&tenant, &dataset, &mut table, dry_run)
                .await,
        );
        let compacted = records
            .iter()
            .any(|r| r.kind == StepKind::Compaction && r.outcome == Outcome::Done);
        if !dry_run && (compacted || expiry.committed) {
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
        let step = |kind| TableStep::start(&tenant, name, kind, &self.clock, dry_run);
        let started = step(StepKind::Checkpoint);
        let checkpoint = housekeeping::checkpoint_if_missing(&table, dry_run).await;
        records.extend(started.finish(checkpoint, |written, r| {
            r.version = table.version().map(|v| v as i64);
            *written
        }));
        let started = step(StepKind::LogCleanup);
        let cleaned = housekeeping::clean_log(&table, dry_run).await;
        records.extend(started.finish(cleaned, |n, r| {
            r.files_in = *n as u64;
            *n > 0
        }));
        let started = step(StepKind::Vacuum);
        let full = self.full_vacuum_due(&tenant, name, scope);
        let vacuumed = housekeeping::vacuum(&table, self.clock.clone(), full, dry_run).await;
        records.extend(started.finish(vacuumed, |files, r| {
            r.files_in = files.len() as u64;
            !files.is_empty()
        }));
        records
    }

    /// Whether this run's vacuum lists the table for orphans (and notes that it does).
    fn full_vacuum_due(&self, tenant: &str, dataset: &str, scope: &RunScope) -> bool {
        let mut last = self.full_vacuums.lock().unwrap_or_else(|p| p.into_inner());
        let key = (tenant.to_string(), dataset.to_string());
        let now = self.clock.now();
        let due = !scope.scheduled
            || last.get(&key).is_none_or(|at| {
                (now - *at)
                    .to_std()
                    .is_ok_and(|since| since >= FULL_VACUUM_EVERY)
            });
        if due && !scope.dry_run {
            last.insert(key, now);
        }
        due
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
