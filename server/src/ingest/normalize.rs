//! Step 1 of ingest: check an incoming schema against the dataset once per stream, then turn
//! each batch into the table's column order and types, setting aside rows without a usable
//! event time for the dead-letter table.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch};
use arrow::compute::{cast_with_options, filter_record_batch, CastOptions};
use arrow::datatypes::{DataType, Field, Float32Type, Float64Type, Schema, SchemaRef};
use arrow::util::display::array_value_to_string;

use super::types::{
    converts_losslessly, is_text, narrows_when_values_fit, storage_type, timestamp_us_utc,
};
use super::IngestError;
use crate::datasets::{Dataset, APP_PARTITION_COLUMN, TIME_PARTITION_COLUMNS};

/// Characters Delta (without column mapping) and Parquet do not allow in column names.
const FORBIDDEN_IN_NAMES: &[char] = &[' ', ',', ';', '{', '}', '(', ')', '\n', '\t', '='];

/// Plan for one stream: where each table column comes from and how it is cast. Only the
/// columns the producer sends are materialized: Delta readers read a column missing from a
/// file as null, so files need not carry dozens of all-null columns.
#[derive(Debug)]
pub struct Normalizer {
    /// The table's data schema (what a new table is created with).
    target: SchemaRef,
    /// The schema of normalized batches: the target columns the input carries.
    output: SchemaRef,
    /// For each output column, the input column it is cast from.
    sources: Vec<usize>,
    /// For each output column, true when it narrows and each value must be checked.
    checked: Vec<bool>,
    time_index: usize,
    time_column: String,
}

/// A batch in table form, plus the input rows that were set aside and why.
#[derive(Debug)]
pub struct Normalized {
    pub batch: RecordBatch,
    pub rejected: Vec<(usize, String)>,
}

impl Normalizer {
    /// `table_schema` is the data schema of an existing custom table (no derived partition
    /// columns); built-in datasets ignore it.
    pub fn new(
        dataset: &Dataset,
        table_schema: Option<&Schema>,
        input: &Schema,
    ) -> Result<Self, IngestError> {
        check_names(input)?;
        for required in &dataset.required {
            if input.index_of(required).is_err() {
                return Err(IngestError::MissingColumn {
                    dataset: dataset.name.clone(),
                    column: required.clone(),
                });
            }
        }
        let target = match &dataset.schema {
            Some(fixed) => {
                for field in input.fields() {
                    if fixed.index_of(field.name()).is_err() {
                        return Err(IngestError::UnknownColumn {
                            dataset: dataset.name.clone(),
                            column: field.name().clone(),
                        });
                    }
                }
                fixed.clone()
            }
            None => custom_target(dataset, table_schema, input)?,
        };
        let mut sources = Vec::with_capacity(input.fields().len());
        let mut checked = Vec::with_capacity(input.fields().len());
        let mut output_fields = Vec::with_capacity(input.fields().len());
        for field in target.fields() {
            if let Ok(i) = input.index_of(field.name()) {
                let from = input.field(i).data_type();
                let is_time = field.name() == &dataset.time_column;
                let lossless =
                    converts_losslessly(from, field.data_type()) || (is_time && is_text(from));
                let narrows = !lossless && narrows_when_values_fit(from, field.data_type());
                if !lossless && !narrows {
                    return Err(IngestError::WrongType {
                        column: field.name().clone(),
                        expected: field.data_type().to_string(),
                        found: from.to_string(),
                    });
                }
                sources.push(i);
                checked.push(narrows);
                output_fields.push(field.as_ref().clone());
            }
        }
        let output = Arc::new(Schema::new(output_fields));
        let time_index =
            output
                .index_of(&dataset.time_column)
                .map_err(|_| IngestError::MissingColumn {
                    dataset: dataset.name.clone(),
                    column: dataset.time_column.clone(),
                })?;
        Ok(Self {
            target,
            output,
            sources,
            checked,
            time_index,
            time_column: dataset.time_column.clone(),
        })
    }

    /// The table's data schema this stream writes to.
    pub fn target_schema(&self) -> &SchemaRef {
        &self.target
    }

    /// Schema of the batches `apply` returns.
    pub fn output_schema(&self) -> &SchemaRef {
        &self.output
    }

    pub fn apply(&self, input: &RecordBatch) -> Result<Normalized, IngestError> {
        let options = CastOptions {
            safe: false,
            ..Default::default()
        };
        let rows = input.num_rows();
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.sources.len());
        let mut rejected = Vec::new();
        for (index, (field, i)) in self.output.fields().iter().zip(&self.sources).enumerate() {
            let column = match i {
                i if index == self.time_index => {
                    let (times, reasons) = self.event_times(input.column(*i))?;
                    rejected = reasons;
                    times
                }
                i if self.checked[index] => {
                    narrow(input.column(*i), field.data_type(), field.name())?
                }
                i => cast_with_options(input.column(*i), field.data_type(), &options).map_err(
                    |e| IngestError::WrongType {
                        column: field.name().clone(),
                        expected: field.data_type().to_string(),
                        found: format!("{} ({e})", input.column(*i).data_type()),
                    },
                )?,
            };
            columns.push(column);
        }
        let batch =
            RecordBatch::try_new(self.output.clone(), columns).map_err(IngestError::Arrow)?;
        if rejected.is_empty() {
            return Ok(Normalized { batch, rejected });
        }
        let mut keep = vec![true; rows];
        for (row, _) in &rejected {
            keep[*row] = false;
        }
        let batch =
            filter_record_batch(&batch, &BooleanArray::from(keep)).map_err(IngestError::Arrow)?;
        Ok(Normalized { batch, rejected })
    }

    /// Converts the event-time column; rows where it is null or unparseable are listed.
    fn event_times(
        &self,
        column: &ArrayRef,
    ) -> Result<(ArrayRef, Vec<(usize, String)>), IngestError> {
        let target = timestamp_us_utc();
        let text = is_text(column.data_type());
        // Text is parsed leniently (failures become null and are reported per row).
        let options = CastOptions {
            safe: text,
            ..Default::default()
        };
        let times =
            cast_with_options(column, &target, &options).map_err(|e| IngestError::WrongType {
                column: self.time_column.clone(),
                expected: target.to_string(),
                found: format!("{} ({e})", column.data_type()),
            })?;
        if times.null_count() == 0 {
            return Ok((times, vec![]));
        }
        let as_text = if text {
            Some(
                cast_with_options(column, &DataType::Utf8, &CastOptions::default())
                    .map_err(IngestError::Arrow)?,
            )
        } else {
            None
        };
        let mut reasons = Vec::new();
        for row in 0..times.len() {
            if times.is_valid(row) {
                continue;
            }
            let reason = match &as_text {
                Some(strings) if strings.is_valid(row) => {
                    let value =
                        arrow::array::AsArray::as_string::<i32>(strings.as_ref()).value(row);
                    let shown: String = value.chars().take(64).collect();
                    format!(
                        "unparseable event time in column {}: {shown:?}",
                        self.time_column
                    )
                }
                _ => format!("null event time in column {}", self.time_column),
            };
            reasons.push((row, reason));
        }
        Ok((times, reasons))
    }
}

/// Casts a narrowing column, refusing the batch at the first value that does not fit.
fn narrow(input: &ArrayRef, to: &DataType, column: &str) -> Result<ArrayRef, IngestError> {
    let safe = CastOptions {
        safe: true,
        ..Default::default()
    };
    let out = cast_with_options(input, to, &safe).map_err(IngestError::Arrow)?;
    let lost = |row: usize| -> IngestError {
        IngestError::ValueOutOfRange {
            column: column.to_string(),
            row,
            value: array_value_to_string(input, row).unwrap_or_else(|_| "?".into()),
            expected: to.to_string(),
        }
    };
    if matches!(to, DataType::Float32) {
        let wide =
            cast_with_options(input, &DataType::Float64, &safe).map_err(IngestError::Arrow)?;
        let (wide, out) = (
            wide.as_primitive::<Float64Type>(),
            out.as_primitive::<Float32Type>(),
        );
        for row in 0..wide.len() {
            let (v, w) = (wide.value(row), out.value(row) as f64);
            if wide.is_valid(row) && v != w && !(v.is_nan() && w.is_nan()) {
                return Err(lost(row));
            }
        }
    } else if out.null_count() != input.logical_null_count() {
        // A value out of range became null under the safe cast.
        let row = (0..out.len())
            .find(|&row| out.is_null(row) && input.is_valid(row))
            .unwrap_or(0);
        return Err(lost(row));
    }
    Ok(out)
}

fn check_names(input: &Schema) -> Result<(), IngestError> {
    let mut seen: HashMap<String, &str> = HashMap::new();
    for field in input.fields() {
        let name = field.name();
        if name.is_empty() || name.contains(FORBIDDEN_IN_NAMES) {
            return Err(IngestError::BadColumnName(name.clone()));
        }
        if let Some(other) = seen.insert(name.to_lowercase(), name) {
            return Err(IngestError::AmbiguousColumns(
                other.to_string(),
                name.clone(),
            ));
        }
    }
    Ok(())
}

fn custom_target(
    dataset: &Dataset,
    table_schema: Option<&Schema>,
    input: &Schema,
) -> Result<SchemaRef, IngestError> {
    let mut fields: Vec<Field> = table_schema
        .map(|s| s.fields().iter().map(|f| f.as_ref().clone()).collect())
        .unwrap_or_default();
    for field in input.fields() {
        let name = field.name();
        let reserved = TIME_PARTITION_COLUMNS.contains(&name.as_str())
            || (name == APP_PARTITION_COLUMN && !dataset.app_column_is_partition());
        if reserved {
            return Err(IngestError::ReservedColumn(name.clone()));
        }
        if let Some(existing) = fields.iter().find(|f| f.name().eq_ignore_ascii_case(name)) {
            if existing.name() != name {
                return Err(IngestError::AmbiguousColumns(
                    existing.name().clone(),
                    name.clone(),
                ));
            }
            continue;
        }
        let stored = if name == &dataset.time_column {
            timestamp_us_utc()
        } else {
            storage_type(field.data_type()).map_err(|hint| IngestError::UnsupportedType {
                column: name.clone(),
                found: field.data_type().to_string(),
                hint,
            })?
        };
        fields.push(Field::new(name, stored, true));
    }
    Ok(Arc::new(Schema::new(fields)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CustomDatasetConfig, DatasetConfig};
    use crate::datasets::Datasets;
    use arrow::array::{
        Float64Array, Int32Array, Int64Array, StringArray, TimestampNanosecondArray,
    };
    use arrow::datatypes::TimeUnit;
    use std::collections::BTreeMap;

    fn datasets() -> Datasets {
        let mut config = BTreeMap::new();
        config.insert(
            "clicks".to_string(),
            DatasetConfig {
                custom: Some(CustomDatasetConfig {
                    time_column: "ts".into(),
                    app_column: None,
                }),
                target_file_size: None,
                quality: Default::default(),
            },
        );
        Datasets::new(&config).unwrap()
    }

    fn snowplow_input() -> RecordBatch {
        RecordBatch::try_from_iter(vec![
            (
                "app_id",
                Arc::new(StringArray::from(vec!["web", "web"])) as ArrayRef,
            ),
            (
                "collector_tstamp",
                Arc::new(TimestampNanosecondArray::from(vec![
                    Some(1_700_000_000_123_456_789),
                    None,
                ])),
            ),
            ("event_id", Arc::new(StringArray::from(vec!["e1", "e2"]))),
            (
                "txn_id",
                Arc::new(arrow::array::Int16Array::from(vec![1, 2])),
            ),
        ])
        .unwrap()
    }

    #[test]
    fn builtin_batches_get_the_full_schema_and_null_times_are_set_aside() {
        let ds = datasets();
        let snowplow = ds.get("snowplow").unwrap();
        let input = snowplow_input();
        let n = Normalizer::new(&snowplow, None, &input.schema()).unwrap();
        let out = n.apply(&input).unwrap();
        assert_eq!(out.batch.num_rows(), 1);
        assert_eq!(n.target_schema(), snowplow.schema.as_ref().unwrap());
        let names: Vec<_> = out
            .batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(names, ["app_id", "collector_tstamp", "event_id", "txn_id"]);
        assert_eq!(
            out.rejected,
            vec![(1, "null event time in column collector_tstamp".to_string())]
        );
        let ts = out.batch.column_by_name("collector_tstamp").unwrap();
        assert_eq!(
            ts.data_type(),
            &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        );
    }

    #[test]
    fn builtin_rejects_unknown_missing_and_narrowing_columns() {
        let ds = datasets();
        let snowplow = ds.get("snowplow").unwrap();
        let schema = |fields: Vec<Field>| Schema::new(fields);
        let base = || {
            vec![
                Field::new("app_id", DataType::Utf8, true),
                Field::new("collector_tstamp", timestamp_us_utc(), true),
                Field::new("event_id", DataType::Utf8, true),
            ]
        };
        let mut unknown = base();
        unknown.push(Field::new("bogus", DataType::Utf8, true));
        assert!(
            matches!(Normalizer::new(&snowplow, None, &schema(unknown)), Err(IngestError::UnknownColumn { column, .. }) if column == "bogus")
        );
        assert!(
            matches!(Normalizer::new(&snowplow, None, &schema(base()[..2].to_vec())), Err(IngestError::MissingColumn { column, .. }) if column == "event_id")
        );
        let mut lossy = base();
        lossy.push(Field::new("txn_id", DataType::Float64, true));
        assert!(
            matches!(Normalizer::new(&snowplow, None, &schema(lossy)), Err(IngestError::WrongType { column, .. }) if column == "txn_id")
        );
    }

    #[test]
    fn narrowing_columns_pass_when_every_value_fits() {
        let ds = datasets();
        let snowplow = ds.get("snowplow").unwrap();
        let batch = |width: Vec<Option<i64>>| {
            let times = vec![Some(1_700_000_000_000_000_000); width.len()];
            RecordBatch::try_from_iter(vec![
                (
                    "collector_tstamp",
                    Arc::new(TimestampNanosecondArray::from(times)) as ArrayRef,
                ),
                (
                    "event_id",
                    Arc::new(StringArray::from(vec!["e"; width.len()])),
                ),
                ("dvce_screenwidth", Arc::new(Int64Array::from(width))),
                ("app_id", Arc::new(StringArray::from(vec!["web"; 3]))),
            ])
            .unwrap()
        };
        let fits = batch(vec![Some(1920), None, Some(-5)]);
        let n = Normalizer::new(&snowplow, None, &fits.schema()).unwrap();
        let out = n.apply(&fits).unwrap();
        let width = out.batch.column_by_name("dvce_screenwidth").unwrap();
        assert_eq!(width.data_type(), &DataType::Int32);
        assert_eq!(width.null_count(), 1);

        let too_wide = batch(vec![Some(1), Some(1 << 40), Some(2)]);
        match n.apply(&too_wide) {
            Err(IngestError::ValueOutOfRange {
                column, row, value, ..
            }) => {
                assert_eq!(
                    (column.as_str(), row, value.as_str()),
                    ("dvce_screenwidth", 1, "1099511627776")
                );
            }
            other => panic!("expected ValueOutOfRange, got {other:?}"),
        }
    }

    #[test]
    fn float64_narrows_to_float32_only_when_exact() {
        let target = DataType::Float32;
        let exact: ArrayRef = Arc::new(Float64Array::from(vec![Some(0.5), None, Some(f64::NAN)]));
        assert_eq!(narrow(&exact, &target, "x").unwrap().null_count(), 1);
        let inexact: ArrayRef = Arc::new(Float64Array::from(vec![0.5, 0.1]));
        assert!(matches!(
            narrow(&inexact, &target, "x"),
            Err(IngestError::ValueOutOfRange { row: 1, .. })
        ));
    }

    #[test]
    fn custom_datasets_parse_text_times_and_grow_new_columns() {
        let ds = datasets();
        let clicks = ds.get("clicks").unwrap();
        let input = RecordBatch::try_from_iter(vec![
            (
                "ts",
                Arc::new(StringArray::from(vec!["2024-05-01T10:00:00Z", "yesterday"])) as ArrayRef,
            ),
            ("n", Arc::new(Int32Array::from(vec![1, 2]))),
        ])
        .unwrap();
        let table = Schema::new(vec![Field::new("ts", timestamp_us_utc(), true)]);
        let n = Normalizer::new(&clicks, Some(&table), &input.schema()).unwrap();
        assert_eq!(
            n.target_schema().fields().len(),
            2,
            "the table gains column n"
        );
        let out = n.apply(&input).unwrap();
        assert_eq!(out.batch.num_rows(), 1);
        assert_eq!(out.rejected[0].0, 1);
        assert!(
            out.rejected[0].1.contains("unparseable"),
            "{}",
            out.rejected[0].1
        );
        let reserved = Schema::new(vec![
            Field::new("ts", DataType::Utf8, true),
            Field::new("hour", DataType::Utf8, true),
        ]);
        assert!(matches!(
            Normalizer::new(&clicks, None, &reserved),
            Err(IngestError::ReservedColumn(_))
        ));
        let ambiguous = Schema::new(vec![
            Field::new("ts", DataType::Utf8, true),
            Field::new("A", DataType::Utf8, true),
            Field::new("a", DataType::Utf8, true),
        ]);
        assert!(matches!(
            Normalizer::new(&clicks, None, &ambiguous),
            Err(IngestError::AmbiguousColumns(..))
        ));
    }
}
