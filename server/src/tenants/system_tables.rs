//! The registry's system tables. `system.tenants`: each tenant's usage against its quota
//! (a tenant sees its own row, an admin every tenant's), billed bytes from the usage
//! counts, not a listing per query. `system.storage`: per table, what the store holds
//! (the usage counts) beside the live data files of the latest version.

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Int64Array, Int64Builder, StringArray, StringBuilder, TimestampMillisecondArray,
    TimestampMillisecondBuilder, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;

use super::{TenantReport, Tenants};
use crate::lake::system_table::{batch, int, text};
use crate::lake::{partition_usage, LakeError, LakeTables, LoadedTable, SystemTable, UsageLedger};

#[derive(Debug)]
pub struct TenantsTable {
    tenants: Arc<Tenants>,
}

impl TenantsTable {
    pub fn new(tenants: Arc<Tenants>) -> Self {
        Self { tenants }
    }
}

#[tonic::async_trait]
impl SystemTable for TenantsTable {
    fn name(&self) -> &'static str {
        "tenants"
    }

    fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(tenants_fields()))
    }

    async fn rows(&self, tenants: &[String]) -> Result<RecordBatch, LakeError> {
        let in_scope: HashSet<&str> = tenants.iter().map(String::as_str).collect();
        let mut reports = self.tenants.report(None).await;
        reports.retain(|r| in_scope.contains(r.tenant.as_str()));
        batch(self.schema(), tenants_columns(&reports))
    }
}

fn tenants_fields() -> Vec<Field> {
    let s = |n: &str, null| Field::new(n, DataType::Utf8, null);
    let time = |n: &str| {
        Field::new(
            n,
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            true,
        )
    };
    vec![
        s("tenant", false),
        s("display_name", true),
        s("region", true),
        s("state", false),
        Field::new("usage_bytes", DataType::Int64, false),
        Field::new("soft_bytes", DataType::UInt64, true),
        Field::new("hard_bytes", DataType::UInt64, true),
        s("quota_state", false),
        Field::new("rows", DataType::Int64, true),
        time("last_write"),
        time("last_query"),
        Field::new("drift_bytes", DataType::Int64, true),
        time("reconciled_at"),
        time("archived_at"),
        s("archive_location", true),
        Field::new("archived_bytes", DataType::UInt64, true),
    ]
}

fn tenants_columns(reports: &[TenantReport]) -> Vec<ArrayRef> {
    let text = |value: &dyn Fn(&TenantReport) -> Option<&str>| -> ArrayRef {
        Arc::new(reports.iter().map(value).collect::<StringArray>())
    };
    let time = |value: &dyn Fn(&TenantReport) -> Option<i64>| -> ArrayRef {
        Arc::new(
            reports
                .iter()
                .map(value)
                .collect::<TimestampMillisecondArray>()
                .with_timezone("UTC"),
        )
    };
    vec![
        text(&|r| Some(&r.tenant)),
        text(&|r| r.display_name.as_deref()),
        text(&|r| r.region.as_deref()),
        text(&|r| Some(r.state)),
        Arc::new(Int64Array::from_iter_values(
            reports.iter().map(|r| r.usage_bytes),
        )),
        Arc::new(reports.iter().map(|r| r.soft).collect::<UInt64Array>()),
        Arc::new(reports.iter().map(|r| r.hard).collect::<UInt64Array>()),
        text(&|r| Some(r.quota_state.as_str())),
        Arc::new(reports.iter().map(|r| r.rows).collect::<Int64Array>()),
        time(&|r| r.last_write.map(|t| t.timestamp_millis())),
        time(&|r| r.last_query.map(|t| t.timestamp_millis())),
        Arc::new(
            reports
                .iter()
                .map(|r| r.drift_bytes)
                .collect::<Int64Array>(),
        ),
        time(&|r| r.reconciled_at.map(|t| t.timestamp_millis())),
        time(&|r| {
            r.archive
                .as_ref()
                .and_then(|a| a.archived_at)
                .map(|t| t.timestamp_millis())
        }),
        Arc::new(
            reports
                .iter()
                .map(|r| r.archive.as_ref().map(|a| a.location()))
                .collect::<StringArray>(),
        ),
        Arc::new(
            reports
                .iter()
                .map(|r| r.archive.as_ref().map(|a| a.bytes()))
                .collect::<UInt64Array>(),
        ),
    ]
}

#[derive(Debug)]
pub struct StorageTable {
    tenants: Arc<Tenants>,
    lake: Arc<LakeTables>,
}

impl StorageTable {
    pub fn new(tenants: Arc<Tenants>, lake: Arc<LakeTables>) -> Self {
        Self { tenants, lake }
    }
}

#[tonic::async_trait]
impl SystemTable for StorageTable {
    fn name(&self) -> &'static str {
        "storage"
    }

    fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(vec![
            text("tenant"),
            text("dataset"),
            int("files"),
            int("bytes"),
            int("live_bytes"),
            int("rows"),
            int("partitions"),
            Field::new(
                "last_commit",
                DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                true,
            ),
        ]))
    }

    async fn rows(&self, tenants: &[String]) -> Result<RecordBatch, LakeError> {
        let tables = self.lake.tables_of_all(tenants).await?;
        self.tenants.usage_listed().await;
        batch(
            self.schema(),
            storage_columns(&tables, self.lake.lake().usage())?,
        )
    }
}

/// Per table: `bytes` is what the store holds under the table root (the usage counts);
/// `live_bytes` the data files of the latest version.
fn storage_columns(
    tables: &[LoadedTable],
    ledger: &UsageLedger,
) -> Result<Vec<ArrayRef>, LakeError> {
    let (mut tenant, mut dataset) = (StringBuilder::new(), StringBuilder::new());
    let (mut files, mut bytes, mut live_bytes, mut rows, mut partitions) = (
        Int64Builder::new(),
        Int64Builder::new(),
        Int64Builder::new(),
        Int64Builder::new(),
        Int64Builder::new(),
    );
    let mut last_commit = TimestampMillisecondBuilder::new().with_timezone("UTC");
    for t in tables {
        let columns = t.dataset.partition_columns();
        let usage = partition_usage(&t.table, &columns, &t.dataset.time_column, 0)?;
        tenant.append_value(&t.tenant);
        dataset.append_value(&t.dataset.name);
        let live: i64 = usage.values().map(|u| u.bytes).sum();
        files.append_value(usage.values().map(|u| u.files).sum());
        let billed = ledger.table(&t.tenant, &t.dataset.name).map(|u| u.bytes);
        bytes.append_value(billed.unwrap_or(live));
        live_bytes.append_value(live);
        rows.append_value(usage.values().map(|u| u.rows).sum());
        partitions.append_value(usage.len() as i64);
        let snapshot = t.table.snapshot()?;
        last_commit.append_option(snapshot.version_timestamp(t.version()));
    }
    Ok(vec![
        Arc::new(tenant.finish()),
        Arc::new(dataset.finish()),
        Arc::new(files.finish()),
        Arc::new(bytes.finish()),
        Arc::new(live_bytes.finish()),
        Arc::new(rows.finish()),
        Arc::new(partitions.finish()),
        Arc::new(last_commit.finish()),
    ])
}
