//! `system.commits`: every commit still in each table's Delta log, up to the version read.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Builder, StringBuilder, TimestampMillisecondBuilder};
use arrow::datatypes::{Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;

use super::utc;
use crate::lake::system_table::{batch, int, text};
use crate::lake::{commit_files, read_commit, LakeError, LakeTables, SystemTable};

#[derive(Debug)]
pub(super) struct CommitsTable {
    lake: Arc<LakeTables>,
}

impl CommitsTable {
    pub(super) fn new(lake: Arc<LakeTables>) -> Self {
        Self { lake }
    }
}

#[tonic::async_trait]
impl SystemTable for CommitsTable {
    fn name(&self) -> &'static str {
        "commits"
    }

    fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(vec![
            text("tenant"),
            text("dataset"),
            int("version"),
            Field::new("time", utc(TimeUnit::Millisecond), true),
            text("operation"),
            int("rows_added"),
            int("files_added"),
        ]))
    }

    async fn rows(&self, tenants: &[String]) -> Result<RecordBatch, LakeError> {
        let (mut tenant, mut dataset, mut operation) = (
            StringBuilder::new(),
            StringBuilder::new(),
            StringBuilder::new(),
        );
        let (mut version, mut rows, mut files) = (
            Int64Builder::new(),
            Int64Builder::new(),
            Int64Builder::new(),
        );
        let mut time = TimestampMillisecondBuilder::new().with_timezone("UTC");
        for t in self.lake.tables_of_all(tenants).await? {
            for (v, path) in commit_files(&t.table).await? {
                if v > t.version() {
                    continue;
                }
                let summary = read_commit(&t.table, &path).await?;
                tenant.append_value(&t.tenant);
                dataset.append_value(&t.dataset.name);
                version.append_value(v as i64);
                time.append_option(summary.time);
                operation.append_value(summary.operation);
                rows.append_value(summary.rows_added);
                files.append_value(summary.files_added);
            }
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(tenant.finish()),
            Arc::new(dataset.finish()),
            Arc::new(version.finish()),
            Arc::new(time.finish()),
            Arc::new(operation.finish()),
            Arc::new(rows.finish()),
            Arc::new(files.finish()),
        ];
        batch(self.schema(), columns)
    }
}
