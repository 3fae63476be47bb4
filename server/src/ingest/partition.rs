//! Step 2 of ingest: split a normalized batch by Hive partition
//! (`app_id=…/year=YYYY/month=MM/day=DD/hour=HH`, UTC, from the event time).

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch, UInt32Array};
use arrow::compute::{cast, take_record_batch};
use arrow::datatypes::{DataType, Schema, SchemaRef, TimestampMicrosecondType};
use chrono::{DateTime, Datelike, Timelike, Utc};

use super::IngestError;
use crate::datasets::{Dataset, APP_PARTITION_COLUMN};

const MICROS_PER_HOUR: i64 = 3_600_000_000;
/// Hive's name for the partition of null values.
pub const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// One Hive partition of a table.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitionKey {
    /// `None` when the dataset has no app column; `Some(None)` for a null app id.
    pub app: Option<Option<String>>,
    /// Hours since the Unix epoch, UTC.
    pub hour: i64,
}

impl PartitionKey {
    pub fn hour_start(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.hour * MICROS_PER_HOUR).unwrap_or_default()
    }

    /// Delta `partitionValues`.
    pub fn values(&self) -> HashMap<String, Option<String>> {
        let t = self.hour_start();
        let mut values = HashMap::new();
        if let Some(app) = &self.app {
            values.insert(APP_PARTITION_COLUMN.to_string(), app.clone());
        }
        values.insert("year".into(), Some(format!("{:04}", t.year())));
        values.insert("month".into(), Some(format!("{:02}", t.month())));
        values.insert("day".into(), Some(format!("{:02}", t.day())));
        values.insert("hour".into(), Some(format!("{:02}", t.hour())));
        values
    }

    /// Directory of the partition relative to the table root, Hive-escaped.
    pub fn path(&self) -> String {
        let t = self.hour_start();
        let time = format!(
            "year={:04}/month={:02}/day={:02}/hour={:02}",
            t.year(),
            t.month(),
            t.day(),
            t.hour()
        );
        match &self.app {
            None => time,
            Some(None) => format!("{APP_PARTITION_COLUMN}={NULL_PARTITION}/{time}"),
            Some(Some(app)) => format!("{APP_PARTITION_COLUMN}={}/{time}", escape_path_value(app)),
        }
    }
}

/// Escapes a partition value the way Hive and Spark do, so it is one path segment.
pub fn escape_path_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        let needs = c.is_control()
            || matches!(
                c,
                '"' | '#'
                    | '%'
                    | '\''
                    | '*'
                    | '/'
                    | ':'
                    | '='
                    | '?'
                    | '\\'
                    | '\x7f'
                    | '{'
                    | '['
                    | ']'
                    | '^'
            );
        if needs {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    if out.is_empty() {
        return NULL_PARTITION.to_string();
    }
    out
}

/// Splits normalized batches into per-partition batches holding only the file columns.
#[derive(Debug)]
pub struct Partitioner {
    time_index: usize,
    has_app: bool,
    app_index: Option<usize>,
    file_schema: SchemaRef,
    file_columns: Vec<usize>,
}

impl Partitioner {
    pub fn new(dataset: &Dataset, table_schema: &Schema) -> Result<Self, IngestError> {
        let index = |name: &str| {
            table_schema
                .index_of(name)
                .map_err(|_| IngestError::MissingColumn {
                    dataset: dataset.name.clone(),
                    column: name.to_string(),
                })
        };
        let time_index = index(&dataset.time_column)?;
        // An optional app column the producer does not send partitions as null.
        let has_app = dataset.app_column.is_some();
        let app_index = dataset
            .app_column
            .as_deref()
            .and_then(|name| table_schema.index_of(name).ok());
        let drop_app = dataset.app_column_is_partition();
        let file_columns: Vec<usize> = (0..table_schema.fields().len())
            .filter(|i| !(drop_app && table_schema.field(*i).name() == APP_PARTITION_COLUMN))
            .collect();
        let file_schema = Arc::new(
            table_schema
                .project(&file_columns)
                .map_err(IngestError::Arrow)?,
        );
        Ok(Self {
            time_index,
            has_app,
            app_index,
            file_schema,
            file_columns,
        })
    }

    /// Schema of the Parquet files: the table columns minus the partition columns.
    pub fn file_schema(&self) -> &SchemaRef {
        &self.file_schema
    }

    pub fn split(
        &self,
        batch: &RecordBatch,
    ) -> Result<Vec<(PartitionKey, RecordBatch)>, IngestError> {
        if batch.num_rows() == 0 {
            return Ok(vec![]);
        }
        let times = batch
            .column(self.time_index)
            .as_primitive::<TimestampMicrosecondType>();
        let apps = match self.app_index {
            Some(i) => Some(cast(batch.column(i), &DataType::Utf8).map_err(IngestError::Arrow)?),
            None => None,
        };
        let apps = apps.as_ref().map(|a| a.as_string::<i32>());
        let mut groups: HashMap<(Option<Option<&str>>, i64), Vec<u32>> = HashMap::new();
        for row in 0..batch.num_rows() {
            let hour = times.value(row).div_euclid(MICROS_PER_HOUR);
            let app = match apps {
                Some(a) => Some(a.is_valid(row).then(|| a.value(row))),
                None if self.has_app => Some(None),
                None => None,
            };
            groups.entry((app, hour)).or_default().push(row as u32);
        }
        let projected = batch
            .project(&self.file_columns)
            .map_err(IngestError::Arrow)?;
        let mut out = Vec::with_capacity(groups.len());
        for ((app, hour), rows) in groups {
            let key = PartitionKey {
                app: app.map(|a| a.map(str::to_string)),
                hour,
            };
            let part = if rows.len() == batch.num_rows() {
                projected.clone()
            } else {
                take_record_batch(&projected, &UInt32Array::from(rows))
                    .map_err(IngestError::Arrow)?
            };
            out.push((key, part));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_zero_padded_and_escaped() {
        let key = PartitionKey {
            app: Some(Some("web/shop".into())),
            hour: 473_352 + 5, // 2024-01-01T05:00Z
        };
        assert_eq!(
            key.path(),
            "app_id=web%2Fshop/year=2024/month=01/day=01/hour=05"
        );
        assert_eq!(key.values()["month"].as_deref(), Some("01"));
        let no_app = PartitionKey { app: None, hour: 0 };
        assert_eq!(no_app.path(), "year=1970/month=01/day=01/hour=00");
        let null_app = PartitionKey {
            app: Some(None),
            hour: 0,
        };
        assert!(null_app
            .path()
            .starts_with("app_id=__HIVE_DEFAULT_PARTITION__/"));
        assert_eq!(null_app.values()["app_id"], None);
    }
}
