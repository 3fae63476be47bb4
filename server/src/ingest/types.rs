//! Which Arrow types lakeport stores, and which incoming types convert to them without
//! losing information. Documented in docs/datasets.md ("Types and casts").

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, TimeUnit};

/// The one timestamp type in the lake: microseconds, UTC.
pub fn timestamp_us_utc() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// The type a new column of a custom dataset is stored as, or why it cannot be stored.
pub fn storage_type(ty: &DataType) -> Result<DataType, String> {
    use DataType::*;
    Ok(match ty {
        Boolean | Int8 | Int16 | Int32 | Int64 | Float32 | Float64 | Utf8 | Binary | Date32 => ty.clone(),
        LargeUtf8 | Utf8View => Utf8,
        LargeBinary | BinaryView | FixedSizeBinary(_) => Binary,
        UInt8 => Int16,
        UInt16 => Int32,
        UInt32 => Int64,
        UInt64 => return Err("unsigned 64-bit integers have no lossless Delta/Snowflake type; send Int64 or Decimal128(20, 0)".into()),
        Float16 => Float32,
        Timestamp(_, _) => timestamp_us_utc(),
        Decimal128(p, _) if *p <= 38 => ty.clone(),
        Decimal256(p, s) if *p <= 38 => Decimal128(*p, *s),
        Decimal128(_, _) | Decimal256(_, _) => return Err("decimal precision above 38 is not readable by Snowflake".into()),
        Dictionary(_, value) => storage_type(value)?,
        List(f) | LargeList(f) | ListView(f) | LargeListView(f) | FixedSizeList(f, _) => {
            List(Arc::new(storage_field(f)?))
        }
        Struct(fields) => Struct(
            fields
                .iter()
                .map(|f| storage_field(f))
                .collect::<Result<Vec<_>, _>>()?
                .into(),
        ),
        Map(entries, sorted) => Map(Arc::new(storage_field(entries)?), *sorted),
        Null => return Err("type Null cannot be stored; give the column a concrete type".into()),
        other => return Err(format!("type {other} has no Delta equivalent")),
    })
}

fn storage_field(field: &Field) -> Result<Field, String> {
    Ok(field
        .clone()
        .with_data_type(storage_type(field.data_type())?))
}

/// True when every value of `from` is representable as `to` (nanoseconds are truncated to
/// microseconds, and timestamps without a zone are read as UTC: both documented).
pub fn converts_losslessly(from: &DataType, to: &DataType) -> bool {
    use DataType::*;
    if from == to || from.equals_datatype(to) || matches!(from, Null) {
        return true;
    }
    match (from, to) {
        (Dictionary(_, value), _) => converts_losslessly(value, to),
        (LargeUtf8 | Utf8View, Utf8) => true,
        (LargeBinary | BinaryView | FixedSizeBinary(_), Binary) => true,
        (Int8, Int16 | Int32 | Int64 | Float32 | Float64) => true,
        (Int16, Int32 | Int64 | Float32 | Float64) => true,
        (Int32, Int64 | Float64) => true,
        (UInt8, Int16 | Int32 | Int64 | Float32 | Float64) => true,
        (UInt16, Int32 | Int64 | Float32 | Float64) => true,
        (UInt32, Int64 | Float64) => true,
        (Float16, Float32 | Float64) => true,
        (Float32, Float64) => true,
        (Timestamp(_, _), Timestamp(TimeUnit::Microsecond, Some(_))) => true,
        (Decimal128(p, s) | Decimal256(p, s), Decimal128(p2, s2)) => {
            s2 >= s && (*p2 as i16 - *s2 as i16) >= (*p as i16 - *s as i16)
        }
        (Int32, Decimal128(p, 0)) => *p >= 10,
        (Int64, Decimal128(p, 0)) => *p >= 19,
        (LargeList(a) | ListView(a) | LargeListView(a) | FixedSizeList(a, _), List(b)) => {
            converts_losslessly(a.data_type(), b.data_type())
        }
        _ => false,
    }
}

/// True when `from` converts to `to` for some values only: a narrower integer, or Float32
/// from Float64. Such a column is accepted, and each batch is checked value by value.
pub fn narrows_when_values_fit(from: &DataType, to: &DataType) -> bool {
    use DataType::*;
    let int = |t: &DataType| {
        matches!(
            t,
            Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64
        )
    };
    match (from, to) {
        (Dictionary(_, value), _) => narrows_when_values_fit(value, to),
        (Float64, Float32) => true,
        (f, Int8 | Int16 | Int32 | Int64) => int(f) && !converts_losslessly(f, to),
        _ => false,
    }
}

/// True for types whose values may be event-time text to parse (RFC 3339 / ISO 8601).
pub fn is_text(ty: &DataType) -> bool {
    match ty {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, value) => is_text(value),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DataType::*;

    #[test]
    fn widening_is_lossless_narrowing_is_not() {
        assert!(converts_losslessly(&Int32, &Int64));
        assert!(!converts_losslessly(&Int64, &Int32));
        assert!(!converts_losslessly(&Int64, &Float64));
        assert!(!converts_losslessly(&Utf8, &Int64));
        assert!(converts_losslessly(
            &Timestamp(TimeUnit::Nanosecond, None),
            &timestamp_us_utc()
        ));
        assert!(converts_losslessly(
            &Dictionary(Box::new(Int32), Box::new(Utf8)),
            &Utf8
        ));
        assert!(!converts_losslessly(&Decimal128(10, 2), &Decimal128(10, 4)));
        assert!(converts_losslessly(&Decimal128(10, 2), &Decimal128(12, 4)));
    }

    #[test]
    fn narrowing_numbers_are_checked_per_value() {
        assert!(narrows_when_values_fit(&Int64, &Int32));
        assert!(narrows_when_values_fit(&UInt64, &Int64));
        assert!(narrows_when_values_fit(&Int32, &Int8));
        assert!(narrows_when_values_fit(&Float64, &Float32));
        assert!(!narrows_when_values_fit(&Int32, &Int64), "lossless already");
        assert!(!narrows_when_values_fit(&Float64, &Int32));
        assert!(!narrows_when_values_fit(&Utf8, &Int32));
        assert!(!narrows_when_values_fit(&Int64, &Float32));
    }

    #[test]
    fn storage_types_are_snowflake_readable() {
        assert_eq!(storage_type(&UInt32).unwrap(), Int64);
        assert!(storage_type(&UInt64).is_err());
        assert!(storage_type(&Null).is_err());
        assert!(storage_type(&Decimal256(40, 2)).is_err());
        assert_eq!(
            storage_type(&Timestamp(TimeUnit::Second, None)).unwrap(),
            timestamp_us_utc()
        );
    }
}
