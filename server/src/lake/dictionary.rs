//! Which string columns of a file are dictionary-encoded.
//!
//! Parquet writers dictionary-encode every column until its dictionary page outgrows its
//! limit (1 MiB). For a column of nearly unique values (event ids, UUIDs, user ids) in a file
//! smaller than that, every value is interned, written once in the dictionary and again as
//! an index, and never falls back to plain: `perf` put the interner and the dictionary
//! pages at about a third of ingest's encoding time. A sample of the file's first values
//! tells such columns apart, as DuckDB's writer does with its dictionary ratio; they are
//! written plain, which zstd compresses at least as well.

use std::collections::HashSet;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Schema};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

/// Values sampled from the start of a file.
const SAMPLE: usize = 2048;
/// A column whose sample repeats fewer values than this share is written plain. Its
/// cardinality is then above ~10× the sample, more than a small file can repeat.
const MIN_REPEATS: f64 = 0.1;

/// `props` with dictionary encoding turned off for the top-level string and binary columns
/// that `batches` show to be nearly unique; unchanged for files too small to judge.
pub fn adapt(
    props: WriterProperties,
    schema: &Schema,
    batches: &[RecordBatch],
) -> WriterProperties {
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    if rows < SAMPLE {
        return props;
    }
    let plain: Vec<ColumnPath> = schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, field)| is_bytes(field.data_type()))
        .map(|(i, field)| (i, ColumnPath::from(field.name().as_str())))
        .filter(|(i, path)| props.dictionary_enabled(path) && nearly_unique(batches, *i))
        .map(|(_, path)| path)
        .collect();
    if plain.is_empty() {
        return props;
    }
    plain
        .into_iter()
        .fold(props.into_builder(), |builder, path| {
            builder.set_column_dictionary_enabled(path, false)
        })
        .build()
}

fn is_bytes(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
    )
}

/// Whether the first `SAMPLE` non-null values of column `index` repeat less than
/// `MIN_REPEATS` of the time.
fn nearly_unique(batches: &[RecordBatch], index: usize) -> bool {
    let values = batches.iter().flat_map(|batch| {
        let column = batch.column(index);
        (0..column.len()).filter_map(move |row| value_bytes(column.as_ref(), row))
    });
    let mut seen: HashSet<&[u8]> = HashSet::with_capacity(SAMPLE);
    let mut sampled = 0usize;
    for value in values.take(SAMPLE) {
        seen.insert(value);
        sampled += 1;
    }
    sampled > 0 && (sampled - seen.len()) as f64 / (sampled as f64) < MIN_REPEATS
}

fn value_bytes(column: &dyn Array, row: usize) -> Option<&[u8]> {
    if column.is_null(row) {
        return None;
    }
    Some(match column.data_type() {
        DataType::Utf8 => column.as_string::<i32>().value(row).as_bytes(),
        DataType::LargeUtf8 => column.as_string::<i64>().value(row).as_bytes(),
        DataType::Utf8View => column.as_string_view().value(row).as_bytes(),
        DataType::Binary => column.as_binary::<i32>().value(row),
        DataType::LargeBinary => column.as_binary::<i64>().value(row),
        DataType::BinaryView => column.as_binary_view().value(row),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Int32Array, StringArray};

    use super::*;

    fn batch(rows: usize, cardinality: usize) -> RecordBatch {
        let strings = |card: usize| -> ArrayRef {
            Arc::new(StringArray::from_iter(
                (0..rows).map(|i| (i % 7 != 0).then(|| format!("value-{}", i % card))),
            ))
        };
        RecordBatch::try_from_iter([
            ("repeated", strings(20)),
            ("ids", strings(cardinality)),
            (
                "n",
                Arc::new(Int32Array::from_iter_values(0..rows as i32)) as ArrayRef,
            ),
        ])
        .unwrap()
    }

    fn dictionary(props: &WriterProperties, column: &str) -> bool {
        props.dictionary_enabled(&ColumnPath::from(column))
    }

    #[test]
    fn nearly_unique_strings_are_written_plain() {
        let all = batch(4000, usize::MAX);
        let batches = [all.slice(0, 1000), all.slice(1000, 3000)];
        let props = adapt(WriterProperties::default(), &batches[0].schema(), &batches);
        assert!(!dictionary(&props, "ids"));
        assert!(dictionary(&props, "repeated"));
        assert!(dictionary(&props, "n"), "only byte columns are judged");
    }

    #[test]
    fn columns_of_a_few_thousand_values_keep_their_dictionary() {
        let batches = [batch(10_000, 2_000)];
        let props = adapt(WriterProperties::default(), &batches[0].schema(), &batches);
        assert!(dictionary(&props, "ids"));
    }

    #[test]
    fn small_files_and_explicit_settings_are_left_alone() {
        let small = [batch(SAMPLE - 1, usize::MAX)];
        let props = adapt(WriterProperties::default(), &small[0].schema(), &small);
        assert!(dictionary(&props, "ids"));

        let off = WriterProperties::builder()
            .set_dictionary_enabled(false)
            .build();
        let large = [batch(5000, 20)];
        let props = adapt(off, &large[0].schema(), &large);
        assert!(!dictionary(&props, "repeated"));
    }
}
