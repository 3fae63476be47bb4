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
        let mut groups = Groups::default();
        for row in 0..batch.num_rows() {
            let hour = times.value(row).div_euclid(MICROS_PER_HOUR);
            let app = match apps {
                Some(a) => Some(a.is_valid(row).then(|| a.value(row))),
                None if self.has_app => Some(None),
                None => None,
            };
            groups.add(app, hour, row as u32);
        }
        let projected = batch
            .project(&self.file_columns)
            .map_err(IngestError::Arrow)?;
        let mut out = Vec::with_capacity(groups.rows.len());
        for ((app, hour), rows) in groups.rows {
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

/// An app value as the partitioner sees it: `None` for a dataset without an app column,
/// `Some(None)` for a null app.
type App<'a> = Option<Option<&'a str>>;

/// Apps compared one by one before the group finder switches to a hash map.
const FEW_APPS: usize = 8;

/// Row numbers per (app, hour) of one batch. Rows mostly arrive in time order and a batch
/// holds few apps, so an app is found by comparing strings and remembers the group of its
/// last hour: the common row costs a compare or two, not a hash of its key (hashing every
/// row was a tenth of the bulk-ingest CPU).
#[derive(Default)]
struct Groups<'a> {
    apps: Vec<AppGroups<'a>>,
    /// Index of `apps`, read once there are more than `FEW_APPS`.
    by_app: HashMap<App<'a>, usize>,
    last_app: usize,
    /// Row numbers per (app, hour), in first-seen order.
    rows: Vec<((App<'a>, i64), Vec<u32>)>,
}

struct AppGroups<'a> {
    app: App<'a>,
    /// The app's last hour and its index in `rows`.
    last: Option<(i64, usize)>,
    by_hour: HashMap<i64, usize>,
}

impl<'a> Groups<'a> {
    fn add(&mut self, app: App<'a>, hour: i64, row: u32) {
        let a = self.app_index(app);
        let entry = &mut self.apps[a];
        let group = match entry.last {
            Some((last_hour, group)) if last_hour == hour => group,
            _ => {
                let rows = &mut self.rows;
                let group = *entry.by_hour.entry(hour).or_insert_with(|| {
                    rows.push(((app, hour), Vec::new()));
                    rows.len() - 1
                });
                entry.last = Some((hour, group));
                group
            }
        };
        self.rows[group].1.push(row);
    }

    fn app_index(&mut self, app: App<'a>) -> usize {
        if self.apps.get(self.last_app).is_some_and(|a| a.app == app) {
            return self.last_app;
        }
        let found = if self.apps.len() <= FEW_APPS {
            self.apps.iter().position(|a| a.app == app)
        } else {
            self.by_app.get(&app).copied()
        };
        let index = found.unwrap_or_else(|| {
            self.apps.push(AppGroups {
                app,
                last: None,
                by_hour: HashMap::new(),
            });
            self.by_app.insert(app, self.apps.len() - 1);
            self.apps.len() - 1
        });
        self.last_app = index;
        index
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use arrow::array::{ArrayRef, StringArray, TimestampMicrosecondArray};

    use super::*;
    use crate::datasets::Datasets;

    #[test]
    fn groups_match_a_plain_grouping_with_many_apps_and_hours_out_of_order() {
        let names: Vec<String> = (0..3 * FEW_APPS).map(|i| format!("app{i}")).collect();
        let apps: Vec<App> = names
            .iter()
            .enumerate()
            .map(|(i, name)| Some((i != 5).then_some(name.as_str())))
            .collect();
        let rows: Vec<(App, i64)> = (0..2000usize)
            .map(|i| {
                (
                    apps[(i * 7 + i / 13) % apps.len()],
                    ((i * 5) % 11) as i64 - 3,
                )
            })
            .collect();
        let mut groups = Groups::default();
        for (row, (app, hour)) in rows.iter().enumerate() {
            groups.add(*app, *hour, row as u32);
        }
        let mut expected: BTreeMap<(App, i64), Vec<u32>> = BTreeMap::new();
        for (row, key) in rows.iter().enumerate() {
            expected.entry(*key).or_default().push(row as u32);
        }
        let got: BTreeMap<(App, i64), Vec<u32>> = groups.rows.into_iter().collect();
        assert_eq!(got.len(), expected.len(), "one group per key");
        assert_eq!(got, expected);
    }

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
