//! What Snowflake cannot read in a Parquet footer: unsigned ints, FLOAT16, INTERVAL,
//! DECIMAL wider than 38 digits, INT96, timestamps not in microseconds, 1- and 2-level
//! LIST/MAP encodings; and row groups outside its 16–256 MiB guidance.

use parquet::basic::{ConvertedType, LogicalType, Repetition, TimeUnit, Type as PhysicalType};
use parquet::file::metadata::ParquetMetaData;
use parquet::schema::types::Type;

/// Snowflake's row-group guidance for external tables.
pub const MIN_ROW_GROUP: i64 = 16 << 20;
pub const MAX_ROW_GROUP: i64 = 256 << 20;

/// Problems of one column of one file: `(column path, what Snowflake cannot read)`.
pub fn unreadable_columns(metadata: &ParquetMetaData) -> Vec<(String, String)> {
    let root = metadata.file_metadata().schema();
    let mut found = Vec::new();
    for field in root.get_fields() {
        visit(field, field.name(), false, &mut found);
    }
    found
}

fn visit(t: &Type, path: &str, in_list: bool, found: &mut Vec<(String, String)>) {
    let info = t.get_basic_info();
    let logical = info.logical_type_ref();
    let converted = info.converted_type();
    let repeated = info.has_repetition() && info.repetition() == Repetition::REPEATED;
    if repeated && !in_list {
        found.push((
            path.into(),
            "a 1-level repeated field (no LIST group around it)".into(),
        ));
    }
    if !t.is_group() {
        if let Some(problem) = primitive_problem(t, logical, converted) {
            found.push((path.into(), problem));
        }
        return;
    }
    let is_list = matches!(logical, Some(LogicalType::List)) || converted == ConvertedType::LIST;
    let is_map = matches!(logical, Some(LogicalType::Map))
        || converted == ConvertedType::MAP
        || converted == ConvertedType::MAP_KEY_VALUE;
    if is_list || is_map {
        let kind = if is_list { "LIST" } else { "MAP" };
        let children = t.get_fields();
        let three_level = children.len() == 1 && {
            let middle = &children[0];
            let middle_info = middle.get_basic_info();
            let fields = if is_list { 1 } else { 2 };
            middle.is_group()
                && middle_info.repetition() == Repetition::REPEATED
                && middle.get_fields().len() == fields
                && !(is_list && (middle.name() == "array" || middle.name().ends_with("_tuple")))
        };
        if !three_level {
            found.push((
                path.into(),
                format!("a 2-level {kind} (Snowflake reads the 3-level form only)"),
            ));
            return;
        }
        let middle = &children[0];
        for child in middle.get_fields() {
            visit(child, &format!("{path}.{}", child.name()), false, found);
        }
        return;
    }
    for child in t.get_fields() {
        // The repeated group of a 3-level LIST was handled above; any other repeated
        // child is a bare (1-level) repetition.
        visit(child, &format!("{path}.{}", child.name()), false, found);
    }
}

fn primitive_problem(
    t: &Type,
    logical: Option<&LogicalType>,
    converted: ConvertedType,
) -> Option<String> {
    if t.get_physical_type() == PhysicalType::INT96 {
        return Some("INT96 timestamps (write INT64 microseconds)".into());
    }
    match logical {
        Some(LogicalType::Integer(int)) if !int.is_signed => {
            return Some(format!("an unsigned {}-bit integer", int.bit_width))
        }
        Some(LogicalType::Float16) => return Some("FLOAT16".into()),
        Some(LogicalType::Decimal(d)) if d.precision > 38 => {
            return Some(format!(
                "DECIMAL({}, {}) wider than 38 digits",
                d.precision, d.scale
            ))
        }
        Some(LogicalType::Timestamp(ts)) => match ts.unit {
            TimeUnit::MICROS => {}
            TimeUnit::MILLIS => {
                return Some("timestamps in milliseconds (Snowflake expects microseconds)".into())
            }
            TimeUnit::NANOS => {
                return Some("timestamps in nanoseconds (Snowflake expects microseconds)".into())
            }
        },
        _ => {}
    }
    match converted {
        ConvertedType::UINT_8
        | ConvertedType::UINT_16
        | ConvertedType::UINT_32
        | ConvertedType::UINT_64
            if logical.is_none() =>
        {
            Some("an unsigned integer".into())
        }
        ConvertedType::INTERVAL => Some("INTERVAL".into()),
        ConvertedType::TIMESTAMP_MILLIS if logical.is_none() => {
            Some("timestamps in milliseconds (Snowflake expects microseconds)".into())
        }
        ConvertedType::DECIMAL if logical.is_none() && t.get_precision() > 38 => Some(format!(
            "DECIMAL({}) wider than 38 digits",
            t.get_precision()
        )),
        _ => None,
    }
}

/// Row groups of a file outside Snowflake's guidance: `(smaller than 16 MiB, larger than
/// 256 MiB)`. A file's last row group, and every row group of a file too small to hold one
/// of 16 MiB, do not count as small.
pub fn row_group_misfits(metadata: &ParquetMetaData) -> (usize, usize) {
    let groups = metadata.row_groups();
    let file_bytes: i64 = groups.iter().map(|g| g.compressed_size()).sum();
    let mut small = 0;
    let mut large = 0;
    for (i, group) in groups.iter().enumerate() {
        let size = group.compressed_size();
        if size > MAX_ROW_GROUP {
            large += 1;
        } else if size < MIN_ROW_GROUP && file_bytes >= MIN_ROW_GROUP && i + 1 < groups.len() {
            small += 1;
        }
    }
    (small, large)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{
        ArrayRef, Int32Array, RecordBatch, TimestampMicrosecondArray, TimestampNanosecondArray,
        UInt16Array,
    };
    use arrow::array::{ListArray, StringArray};
    use arrow::datatypes::Int32Type;
    use bytes::Bytes;
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::WriterProperties;
    use parquet::file::reader::{FileReader, SerializedFileReader};

    use super::*;

    fn footer(batch: RecordBatch, props: Option<WriterProperties>) -> ParquetMetaData {
        let mut buffer = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut buffer, batch.schema(), props).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        SerializedFileReader::new(Bytes::from(buffer))
            .unwrap()
            .metadata()
            .clone()
    }

    fn problems(columns: Vec<(&str, ArrayRef)>) -> Vec<(String, String)> {
        unreadable_columns(&footer(RecordBatch::try_from_iter(columns).unwrap(), None))
    }

    #[test]
    fn what_lakeport_writes_is_readable() {
        let list = ListArray::from_iter_primitive::<Int32Type, _, _>([Some(vec![Some(1)])]);
        let found = problems(vec![
            ("id", Arc::new(StringArray::from(vec!["a"]))),
            ("n", Arc::new(Int32Array::from(vec![1]))),
            (
                "at",
                Arc::new(TimestampMicrosecondArray::from(vec![1]).with_timezone("UTC")),
            ),
            ("tags", Arc::new(list)),
        ]);
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn unsigned_ints_and_nanosecond_timestamps_are_named_by_column() {
        let found = problems(vec![
            ("port", Arc::new(UInt16Array::from(vec![1]))),
            ("at", Arc::new(TimestampNanosecondArray::from(vec![1]))),
        ]);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].0, "port");
        assert!(found[0].1.contains("unsigned 16-bit"));
        assert_eq!(found[1].0, "at");
        assert!(found[1].1.contains("nanoseconds"));
    }

    fn parsed(message: &str) -> Vec<(String, String)> {
        let parsed = parquet::schema::parser::parse_message_type(message).unwrap();
        let descriptor = parquet::schema::types::SchemaDescriptor::new(Arc::new(parsed));
        let meta = parquet::file::metadata::FileMetaData::new(
            1,
            0,
            None,
            None,
            Arc::new(descriptor),
            None,
        );
        unreadable_columns(&ParquetMetaData::new(meta, vec![]))
    }

    #[test]
    fn int96_and_float16_are_unreadable() {
        let found = parsed("message m { optional int96 at; }");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].1.contains("INT96"));
        let single = arrow::array::Float32Array::from(vec![1.5]);
        let half = arrow::compute::cast(&single, &arrow::datatypes::DataType::Float16).unwrap();
        let found = problems(vec![("h", half)]);
        assert_eq!(found, vec![("h".to_string(), "FLOAT16".to_string())]);
    }

    #[test]
    fn two_level_lists_and_bare_repeated_fields_are_unreadable() {
        for (message, expected) in [
            ("message m { optional group tags (LIST) { repeated int32 element; } }", "2-level LIST"),
            ("message m { optional group tags (LIST) { repeated group array { required int32 x; } } }", "2-level LIST"),
            ("message m { repeated int32 tags; }", "1-level"),
            ("message m { optional group tags (LIST) { repeated group list { optional int32 element; } } }", ""),
            ("message m { optional group attrs (MAP) { repeated group key_value { required binary key (STRING); optional int32 value; } } }", ""),
            ("message m { optional group attrs (MAP) { repeated binary key (STRING); } }", "2-level MAP"),
            ("message m { optional fixed_len_byte_array(12) iv (INTERVAL); }", "INTERVAL"),
            ("message m { optional fixed_len_byte_array(32) d (DECIMAL(76, 2)); }", "wider than 38"),
        ] {
            let found = parsed(message);
            if expected.is_empty() {
                assert!(found.iter().all(|(_, p)| !p.contains("LIST") && !p.contains("MAP")), "{message}: {found:?}");
            } else {
                assert!(found.iter().any(|(_, p)| p.contains(expected)), "{message}: {found:?}");
            }
        }
    }
}
