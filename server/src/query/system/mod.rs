//! `system.*`: usage and layout of the caller's tables, computed from the Delta log when a
//! query reads them. Each holds only the tenants of the caller's scope.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Int64Builder, StringBuilder, TimestampMicrosecondBuilder, TimestampMillisecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use datafusion::catalog::{MemTable, SchemaProvider, TableProvider};
use datafusion::error::Result as DfResult;
use deltalake::kernel::engine::arrow_conversion::TryIntoArrow;
use object_store::ObjectStoreExt;

mod maintenance;
mod quality;
mod readiness;
mod tenants;

use super::tables::{commit_files, LakeTables, LoadedTable};
use super::QueryError;
use crate::lake::{LakeError, UsageLedger};
use crate::maintenance::plan::partition_name;
use crate::maintenance::FileTargets;
use crate::readiness::{Readiness, ReadinessError};

/// The system tables, in the order they are listed.
pub const SYSTEM_TABLES: [&str; 8] = [
    "commits",
    "maintenance",
    "partitions",
    "quality",
    "readiness",
    "storage",
    "tables",
    "tenants",
];

#[derive(Debug)]
pub struct SystemSchema {
    tenants: Vec<String>,
    tables: Arc<LakeTables>,
}

fn utc(unit: TimeUnit) -> DataType {
    DataType::Timestamp(unit, Some("UTC".into()))
}

/// The schema of a system table.
pub fn system_table_schema(name: &str) -> Option<SchemaRef> {
    let s = |n: &str| Field::new(n, DataType::Utf8, false);
    let i = |n: &str| Field::new(n, DataType::Int64, false);
    let fields = match name {
        "tables" => vec![
            s("tenant"),
            s("dataset"),
            s("location"),
            s("store"),
            Field::new("configured_store", DataType::Utf8, true),
            i("version"),
            s("schema"),
        ],
        "storage" => vec![
            s("tenant"),
            s("dataset"),
            i("files"),
            i("bytes"),
            i("live_bytes"),
            i("rows"),
            i("partitions"),
            Field::new("last_commit", utc(TimeUnit::Millisecond), true),
        ],
        "partitions" => vec![
            s("tenant"),
            s("dataset"),
            s("partition"),
            i("files"),
            i("small_files"),
            i("bytes"),
            i("rows"),
            Field::new("min_event_time", utc(TimeUnit::Microsecond), true),
            Field::new("max_event_time", utc(TimeUnit::Microsecond), true),
        ],
        "maintenance" => maintenance::fields(),
        "tenants" => tenants::fields(),
        "quality" => quality::fields(),
        "readiness" => readiness::fields(),
        "commits" => vec![
            s("tenant"),
            s("dataset"),
            i("version"),
            Field::new("time", utc(TimeUnit::Millisecond), true),
            s("operation"),
            i("rows_added"),
            i("files_added"),
        ],
        _ => return None,
    };
    Some(Arc::new(Schema::new(fields)))
}

impl SystemSchema {
    pub fn new(tenants: Vec<String>, tables: Arc<LakeTables>) -> Self {
        Self { tenants, tables }
    }

    async fn loaded(&self) -> Result<Vec<LoadedTable>, QueryError> {
        let mut all = Vec::new();
        for tenant in &self.tenants {
            all.extend(self.tables.tables_of(tenant).await?);
        }
        Ok(all)
    }

    async fn batch(&self, name: &str, schema: SchemaRef) -> Result<RecordBatch, QueryError> {
        if name == "tenants" {
            let in_scope: std::collections::HashSet<&str> =
                self.tenants.iter().map(String::as_str).collect();
            let mut reports = self.tables.registry().report(None).await;
            reports.retain(|r| in_scope.contains(r.tenant.as_str()));
            return RecordBatch::try_new(schema, tenants::columns(&reports))
                .map_err(|e| QueryError::Execution(e.to_string()));
        }
        if name == "quality" {
            let results = self.tables.quality_log().of_tenants(&self.tenants);
            return RecordBatch::try_new(schema, quality::columns(&results))
                .map_err(|e| QueryError::Execution(e.to_string()));
        }
        if name == "readiness" {
            let reports = Readiness::new(self.tables.clone())
                .report(&self.tenants, None)
                .await
                .map_err(readiness_error)?;
            return RecordBatch::try_new(schema, readiness::columns(&reports))
                .map_err(|e| QueryError::Execution(e.to_string()));
        }
        let tables = self.loaded().await?;
        let columns = match name {
            "tables" => tables_columns(&tables)?,
            "storage" => {
                self.tables.registry().usage_listed().await;
                storage_columns(&tables, self.tables.lake().usage())?
            }
            "partitions" => partitions_columns(&tables, self.tables.file_targets())?,
            "maintenance" => {
                maintenance::columns(&self.tables.maintenance_log().of_tenants(&self.tenants))
            }
            _ => commits_columns(&tables).await?,
        };
        RecordBatch::try_new(schema, columns).map_err(|e| QueryError::Execution(e.to_string()))
    }
}

#[tonic::async_trait]
impl SchemaProvider for SystemSchema {
    fn table_names(&self) -> Vec<String> {
        SYSTEM_TABLES.iter().map(|s| s.to_string()).collect()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        let Some(schema) = system_table_schema(name) else {
            return Err(QueryError::UnknownTable {
                schema: "system".into(),
                table: name.into(),
                available: SYSTEM_TABLES.join(", "),
            }
            .into_datafusion());
        };
        let batch = self
            .batch(name, schema.clone())
            .await
            .map_err(QueryError::into_datafusion)?;
        Ok(Some(Arc::new(MemTable::try_new(
            schema,
            vec![vec![batch]],
        )?)))
    }

    fn table_exist(&self, name: &str) -> bool {
        SYSTEM_TABLES.contains(&name)
    }
}

fn readiness_error(e: ReadinessError) -> QueryError {
    match e {
        ReadinessError::Lake(e) => QueryError::Lake(e),
        ReadinessError::Tables(e) => e,
        other => QueryError::Execution(other.to_string()),
    }
}

fn storage_error(e: impl Into<LakeError>) -> QueryError {
    QueryError::Lake(e.into())
}

fn tables_columns(tables: &[LoadedTable]) -> Result<Vec<ArrayRef>, QueryError> {
    let (mut tenant, mut dataset, mut location, mut schema) = (
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
    );
    let (mut store, mut configured) = (StringBuilder::new(), StringBuilder::new());
    let mut version = Int64Builder::new();
    for t in tables {
        tenant.append_value(&t.tenant);
        dataset.append_value(&t.dataset.name);
        location.append_value(t.table.table_url().as_str());
        store.append_value(&t.store);
        configured.append_option(t.configured_store.as_deref());
        version.append_value(t.version() as i64);
        let snapshot = t.table.snapshot().map_err(storage_error)?;
        let arrow: Schema =
            snapshot.schema().as_ref().try_into_arrow().map_err(|e| {
                QueryError::Execution(format!("table schema has no Arrow form: {e}"))
            })?;
        let text: Vec<String> = arrow
            .fields()
            .iter()
            .map(|f| format!("{} {}", f.name(), f.data_type()))
            .collect();
        schema.append_value(text.join(", "));
    }
    Ok(vec![
        Arc::new(tenant.finish()),
        Arc::new(dataset.finish()),
        Arc::new(location.finish()),
        Arc::new(store.finish()),
        Arc::new(configured.finish()),
        Arc::new(version.finish()),
        Arc::new(schema.finish()),
    ])
}

/// Per Hive partition of one table: files, bytes, rows, event-time bounds (µs).
#[derive(Default)]
struct PartitionUsage {
    files: i64,
    /// Files under a quarter of the dataset's compaction target.
    small_files: i64,
    bytes: i64,
    rows: i64,
    min_time: Option<i64>,
    max_time: Option<i64>,
}

fn partition_usage(
    t: &LoadedTable,
    small_below: i64,
) -> Result<BTreeMap<String, PartitionUsage>, QueryError> {
    let columns = t.dataset.partition_columns();
    let snapshot = t.table.snapshot().map_err(storage_error)?;
    let mut usage: BTreeMap<String, PartitionUsage> = BTreeMap::new();
    for file in snapshot.log_data().iter() {
        let values = file.partition_values_map();
        let entry = usage.entry(partition_name(&columns, &values)).or_default();
        entry.files += 1;
        entry.small_files += i64::from(file.size() < small_below);
        entry.bytes += file.size();
        entry.rows += file.num_records().unwrap_or(0) as i64;
        if let Some((min, max)) = file
            .stats()
            .and_then(|stats| time_bounds(&stats, &t.dataset.time_column))
        {
            entry.min_time = Some(entry.min_time.map_or(min, |m| m.min(min)));
            entry.max_time = Some(entry.max_time.map_or(max, |m| m.max(max)));
        }
    }
    Ok(usage)
}

/// Min and max of the event-time column from a file's JSON statistics, in µs.
fn time_bounds(stats: &str, column: &str) -> Option<(i64, i64)> {
    let stats: serde_json::Value = serde_json::from_str(stats).ok()?;
    let parse = |bound: &str| -> Option<i64> {
        let text = stats.get(bound)?.get(column)?.as_str()?;
        Some(
            chrono::DateTime::parse_from_rfc3339(text)
                .ok()?
                .timestamp_micros(),
        )
    };
    Some((parse("minValues")?, parse("maxValues")?))
}

/// Per table: `bytes` is what the store holds under the table root (the usage counts);
/// `live_bytes` the data files of the latest version.
fn storage_columns(
    tables: &[LoadedTable],
    usage: &UsageLedger,
) -> Result<Vec<ArrayRef>, QueryError> {
    let (mut tenant, mut dataset) = (StringBuilder::new(), StringBuilder::new());
    let (mut files, mut bytes, mut live_bytes, mut rows, mut partitions) = (
        Int64Builder::new(),
        Int64Builder::new(),
        Int64Builder::new(),
        Int64Builder::new(),
        Int64Builder::new(),
    );
    let mut last_commit = TimestampMillisecondBuilder::new().with_timezone("UTC");
    let ledger = usage;
    for t in tables {
        let usage = partition_usage(t, 0)?;
        tenant.append_value(&t.tenant);
        dataset.append_value(&t.dataset.name);
        let live: i64 = usage.values().map(|u| u.bytes).sum();
        files.append_value(usage.values().map(|u| u.files).sum());
        let billed = ledger.table(&t.tenant, &t.dataset.name).map(|u| u.bytes);
        bytes.append_value(billed.unwrap_or(live));
        live_bytes.append_value(live);
        rows.append_value(usage.values().map(|u| u.rows).sum());
        partitions.append_value(usage.len() as i64);
        let snapshot = t.table.snapshot().map_err(storage_error)?;
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

fn partitions_columns(
    tables: &[LoadedTable],
    targets: &FileTargets,
) -> Result<Vec<ArrayRef>, QueryError> {
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
    for t in tables {
        let small_below = (targets.of(&t.dataset.name) / 4) as i64;
        for (key, usage) in partition_usage(t, small_below)? {
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
    Ok(vec![
        Arc::new(tenant.finish()),
        Arc::new(dataset.finish()),
        Arc::new(partition.finish()),
        Arc::new(files.finish()),
        Arc::new(small_files.finish()),
        Arc::new(bytes.finish()),
        Arc::new(rows.finish()),
        Arc::new(min_time.finish()),
        Arc::new(max_time.finish()),
    ])
}

/// What one commit file says: when, what operation, how many rows and files it added.
#[derive(Default)]
struct CommitSummary {
    time: Option<i64>,
    operation: String,
    rows_added: i64,
    files_added: i64,
}

fn summarize_commit(text: &str) -> CommitSummary {
    let mut summary = CommitSummary::default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(action) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if let Some(info) = action.get("commitInfo") {
            summary.time = info.get("timestamp").and_then(|t| t.as_i64());
            summary.operation = info
                .get("operation")
                .and_then(|o| o.as_str())
                .unwrap_or_default()
                .to_string();
        }
        if let Some(add) = action.get("add") {
            summary.files_added += 1;
            summary.rows_added += add
                .get("stats")
                .and_then(|s| s.as_str())
                .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
                .and_then(|s| s.get("numRecords").and_then(|n| n.as_i64()))
                .unwrap_or(0);
        }
    }
    summary
}

async fn commits_columns(tables: &[LoadedTable]) -> Result<Vec<ArrayRef>, QueryError> {
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
    for t in tables {
        let store = t.table.log_store().object_store(None);
        for (v, path) in commit_files(&t.table).await? {
            if v > t.version() {
                continue;
            }
            let bytes = store
                .get(&path)
                .await
                .map_err(storage_error)?
                .bytes()
                .await
                .map_err(storage_error)?;
            let summary = summarize_commit(&String::from_utf8_lossy(&bytes));
            tenant.append_value(&t.tenant);
            dataset.append_value(&t.dataset.name);
            version.append_value(v as i64);
            time.append_option(summary.time);
            operation.append_value(summary.operation);
            rows.append_value(summary.rows_added);
            files.append_value(summary.files_added);
        }
    }
    Ok(vec![
        Arc::new(tenant.finish()),
        Arc::new(dataset.finish()),
        Arc::new(version.finish()),
        Arc::new(time.finish()),
        Arc::new(operation.finish()),
        Arc::new(rows.finish()),
        Arc::new(files.finish()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_summary_counts_added_rows_and_files() {
        let text = r#"{"commitInfo":{"timestamp":1700000000000,"operation":"WRITE"}}
{"add":{"path":"a.parquet","stats":"{\"numRecords\":3}"}}
{"add":{"path":"b.parquet","stats":"{\"numRecords\":4}"}}
{"txn":{"appId":"p","version":2}}"#;
        let s = summarize_commit(text);
        assert_eq!(s.time, Some(1_700_000_000_000));
        assert_eq!(s.operation, "WRITE");
        assert_eq!((s.rows_added, s.files_added), (7, 2));
    }

    #[test]
    fn time_bounds_read_the_event_time_column() {
        let stats = r#"{"numRecords":2,"minValues":{"ts":"2024-01-01T00:00:00.000Z"},"maxValues":{"ts":"2024-01-01T01:00:00.000Z"}}"#;
        assert_eq!(
            time_bounds(stats, "ts"),
            Some((1_704_067_200_000_000, 1_704_070_800_000_000))
        );
        assert_eq!(time_bounds(stats, "other"), None);
    }
}
