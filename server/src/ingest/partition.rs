//! Step 2 of ingest: split a normalized batch by Hive partition
//! (`app_id=…/year=YYYY/month=MM/day=DD/hour=HH`, UTC, from the event time).

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch, UInt32Array};
use arrow::compute::{cast, take_record_batch};
use arrow::datatypes::{DataType, Schema, SchemaRef, TimestampMicrosecondType};

use super::IngestError;
use crate::datasets::{Dataset, APP_PARTITION_COLUMN};
use crate::lake::{PartitionKey, MICROS_PER_HOUR};

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
    use std::collections::BTreeMap;

    use arrow::array::{ArrayRef, StringArray, TimestampMicrosecondArray};

    use super::*;
    use crate::datasets::Datasets;

    #[test]
    fn rows_are_grouped_by_app_and_hour_and_files_drop_the_app_column() {
        let snowplow = Datasets::new(&BTreeMap::new())
            .unwrap()
            .get("snowplow")
            .unwrap();
        let hour = MICROS_PER_HOUR;
        let batch = RecordBatch::try_from_iter(vec![
            (
                "app_id",
                Arc::new(StringArray::from(vec![
                    Some("web"),
                    Some("ios"),
                    Some("web"),
                    None,
                ])) as ArrayRef,
            ),
            (
                "collector_tstamp",
                Arc::new(
                    TimestampMicrosecondArray::from(vec![hour + 1, hour + 2, 2 * hour, hour + 3])
                        .with_timezone("UTC"),
                ),
            ),
            (
                "event_id",
                Arc::new(StringArray::from(vec!["a", "b", "c", "d"])),
            ),
        ])
        .unwrap();
        let partitioner = Partitioner::new(&snowplow, &batch.schema()).unwrap();
        let names: Vec<_> = partitioner
            .file_schema()
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        assert_eq!(names, ["collector_tstamp", "event_id"]);
        let parts = partitioner.split(&batch).unwrap();
        let summary: Vec<_> = parts
            .iter()
            .map(|(key, part)| {
                let ids = part.column(1).as_string::<i32>();
                let ids: Vec<_> = ids.iter().flatten().collect();
                (key.app.clone().flatten(), key.hour, ids)
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (None, 1, vec!["d"]),
                (Some("ios".to_string()), 1, vec!["b"]),
                (Some("web".to_string()), 1, vec!["a"]),
                (Some("web".to_string()), 2, vec!["c"]),
            ]
        );
    }
}
