//! Rows set aside during normalization, as rows of the tenant's `_rejected` table.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray, UInt32Array,
};
use arrow::compute::take_record_batch;
use arrow::datatypes::SchemaRef;
use chrono::{DateTime, Utc};

use super::input::Refused;
use super::IngestError;

/// The `rows` of `input` set aside, each as its reason and the row as JSON.
pub fn set_aside(
    input: &RecordBatch,
    rows: &[(usize, String)],
) -> Result<Vec<Refused>, IngestError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let indices = UInt32Array::from(rows.iter().map(|(r, _)| *r as u32).collect::<Vec<_>>());
    let taken = take_record_batch(input, &indices).map_err(IngestError::Arrow)?;
    let mut writer = arrow::json::LineDelimitedWriter::new(Vec::new());
    writer.write(&taken).map_err(IngestError::Arrow)?;
    writer.finish().map_err(IngestError::Arrow)?;
    let text = String::from_utf8(writer.into_inner()).unwrap_or_default();
    Ok(rows
        .iter()
        .zip(
            text.lines()
                .map(str::to_string)
                .chain(std::iter::repeat(String::new())),
        )
        .map(|((_, reason), raw)| Refused {
            reason: reason.clone(),
            raw,
        })
        .collect())
}

/// Builds `_rejected` rows: when, which dataset, why, who sent it, and the row as JSON.
pub fn rejected_rows(
    schema: &SchemaRef,
    dataset: &str,
    rows: &[Refused],
    producer: Option<&(String, i64)>,
    now: DateTime<Utc>,
) -> Result<RecordBatch, IngestError> {
    let n = rows.len();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(
            TimestampMicrosecondArray::from(vec![now.timestamp_micros(); n]).with_timezone("UTC"),
        ),
        Arc::new(StringArray::from(vec![dataset; n])),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.reason.as_str()),
        )),
        Arc::new(StringArray::from(vec![producer.map(|p| p.0.as_str()); n])),
        Arc::new(Int64Array::from(vec![producer.map(|p| p.1); n])),
        Arc::new(StringArray::from_iter(
            rows.iter()
                .map(|r| (!r.raw.is_empty()).then_some(r.raw.as_str())),
        )),
    ];
    RecordBatch::try_new(schema.clone(), columns).map_err(IngestError::Arrow)
}
