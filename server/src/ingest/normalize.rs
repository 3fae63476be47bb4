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
#[path = "normalize_tests.rs"]
mod tests;
