//! `system.partitions`: per Hive partition of each table, its files (and how many are
//! small against the compaction target), bytes, rows, event-time bounds, and when the
//! table's retention expires it.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Builder, StringBuilder, TimestampMicrosecondBuilder};
use arrow::datatypes::{Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;

use super::utc;
use crate::lake::retention::{expires_at, values_in_path};
use crate::lake::system_table::{batch, int, text};
use crate::lake::{partition_hour, partition_usage, LakeError, LakeTables, SystemTable};
use crate::query::QueryRetention;

#[derive(Debug)]
pub(super) struct PartitionsTable {
    lake: Arc<LakeTables>,
    retention: QueryRetention,
}

impl PartitionsTable {
    pub(super) fn new(lake: Arc<LakeTables>, retention: QueryRetention) -> Self {
        Self { lake, retention }
    }
}

#[tonic::async_trait]
impl SystemTable for PartitionsTable {
    fn name(&self) -> &'static str {
        "partitions"
    }

    fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(vec![
            text("tenant"),
            text("dataset"),
            text("partition"),
            int("files"),
            int("small_files"),
            int("bytes"),
            int("rows"),
            Field::new("min_event_time", utc(TimeUnit::Microsecond), true),
            Field::new("max_event_time", utc(TimeUnit::Microsecond), true),
            // Null: the table keeps its rows forever.
            Field::new("expires_at", utc(TimeUnit::Microsecond), true),
        ]))
    }

    async fn rows(&self, tenants: &[String]) -> Result<RecordBatch, LakeError> {
        let (mut tenant, mut dataset, mut partition) = (
            StringBuilder::new(),
            StringBuilder::new(),
            StringBuilder::new(),
        );
        let (mut files, mut small_files, mut bytes, mut rows) = (
            Int64Builder::new(),
            Int64Builder::new(),
            Int64Builder::new(),
            Int64Builder::new(),
        );
        let mut min_time = TimestampMicrosecondBuilder::new().with_timezone("UTC");
        let mut max_time = TimestampMicrosecondBuilder::new().with_timezone("UTC");
        let mut expires = TimestampMicrosecondBuilder::new().with_timezone("UTC");
        let targets = self.lake.file_targets();
        for t in self.lake.tables_of_all(tenants).await? {
            // Small: under a quarter of the dataset's compaction target.
            let small_below = (targets.of(&t.dataset.name) / 4) as i64;
            let columns = t.dataset.partition_columns();
            let usage = partition_usage(&t.table, &columns, &t.dataset.time_column, small_below)?;
            let retention = self.retention.policy.retention(&t.tenant, &t.dataset.name);
            for (key, usage) in usage {
                let hour = partition_hour(&values_in_path(&key));
                expires.append_option(
                    hour.and_then(|h| expires_at(h, retention))
                        .map(|at| at.timestamp_micros()),
                );
                tenant.append_value(&t.tenant);
                dataset.append_value(&t.dataset.name);
                partition.append_value(key);
                files.append_value(usage.files);
                small_files.append_value(usage.small_files);
                bytes.append_value(usage.bytes);
                rows.append_value(usage.rows);
                min_time.append_option(usage.min_time);
                max_time.append_option(usage.max_time);
            }
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(tenant.finish()),
            Arc::new(dataset.finish()),
            Arc::new(partition.finish()),
            Arc::new(files.finish()),
            Arc::new(small_files.finish()),
            Arc::new(bytes.finish()),
            Arc::new(rows.finish()),
            Arc::new(min_time.finish()),
            Arc::new(max_time.finish()),
            Arc::new(expires.finish()),
        ];
        batch(self.schema(), columns)
    }
}
