//! `date_trunc` that truncates UTC timestamps as the zone-less values they equal.

use std::sync::Arc;

use arrow::array::{make_array, Array, ArrayRef};
use arrow::datatypes::{DataType, Field, FieldRef, TimeUnit};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::sort_properties::{ExprProperties, SortProperties};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature,
};

use super::is_utc;

/// DataFusion's `date_trunc`, handed UTC timestamps without their zone (the same instants,
/// so the same truncation) and giving the result its zone back. Everything else, the
/// signature and the result type included, is DataFusion's own.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct UtcDateTrunc {
    inner: Arc<ScalarUDF>,
}

impl UtcDateTrunc {
    pub fn udf() -> ScalarUDF {
        ScalarUDF::new_from_impl(Self {
            inner: datafusion::functions::datetime::date_trunc(),
        })
    }
}

impl ScalarUDFImpl for UtcDateTrunc {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn invoke_with_args(&self, mut args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let Some(DataType::Timestamp(unit, Some(tz))) = args.args.get(1).map(|a| a.data_type())
        else {
            return self.inner.invoke_with_args(args);
        };
        if !is_utc(&tz) {
            return self.inner.invoke_with_args(args);
        }
        let zoneless = DataType::Timestamp(unit, None);
        args.args[1] = with_zone(&args.args[1], unit, None)?;
        args.arg_fields[1] = retyped(&args.arg_fields[1], &zoneless);
        args.return_field = retyped(&args.return_field, &zoneless);
        let truncated = self.inner.invoke_with_args(args)?;
        with_zone(&truncated, unit, Some(tz))
    }

    fn output_ordering(&self, inputs: &[ExprProperties]) -> Result<SortProperties> {
        self.inner.output_ordering(inputs)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }
}

fn retyped(field: &FieldRef, data_type: &DataType) -> FieldRef {
    Arc::new(Field::clone(field).with_data_type(data_type.clone()))
}

/// The same timestamp values (of `unit`) under the zone annotation `tz`, without touching
/// the values.
fn with_zone(value: &ColumnarValue, unit: TimeUnit, tz: Option<Arc<str>>) -> Result<ColumnarValue> {
    Ok(match value {
        ColumnarValue::Array(array) => {
            let data_type = DataType::Timestamp(unit, tz);
            let data = array.to_data().into_builder().data_type(data_type);
            ColumnarValue::Array(make_array(data.build()?) as ArrayRef)
        }
        ColumnarValue::Scalar(scalar) => ColumnarValue::Scalar(match scalar {
            ScalarValue::TimestampSecond(v, _) => ScalarValue::TimestampSecond(*v, tz.clone()),
            ScalarValue::TimestampMillisecond(v, _) => {
                ScalarValue::TimestampMillisecond(*v, tz.clone())
            }
            ScalarValue::TimestampMicrosecond(v, _) => {
                ScalarValue::TimestampMicrosecond(*v, tz.clone())
            }
            ScalarValue::TimestampNanosecond(v, _) => {
                ScalarValue::TimestampNanosecond(*v, tz.clone())
            }
            other => other.clone(),
        }),
    })
}

#[cfg(test)]
mod tests {
    use arrow::array::{AsArray, TimestampMicrosecondArray};
    use arrow::datatypes::TimestampMicrosecondType;
    use datafusion::prelude::SessionContext;

    use super::*;

    /// 2024-03-31 00:30 UTC .. 2024-11-03 23:59 UTC, a minute short of a day apart and
    /// crossing the European and US daylight-saving changes (which UTC has none of).
    fn timestamps() -> Vec<Option<i64>> {
        let start = 1_711_845_000_000_000_i64;
        (0..500)
            .map(|i| Some(start + i * 43_139_000_123))
            .chain([None])
            .collect()
    }

    async fn truncate(granularity: &str, tz: &str, fast: bool) -> Vec<Option<i64>> {
        let ctx = SessionContext::new();
        if fast {
            ctx.register_udf(UtcDateTrunc::udf());
        }
        let array = TimestampMicrosecondArray::from(timestamps()).with_timezone(tz);
        let batch = arrow::array::RecordBatch::try_from_iter([("ts", Arc::new(array) as ArrayRef)])
            .unwrap();
        ctx.register_batch("t", batch).unwrap();
        let sql = format!("SELECT date_trunc('{granularity}', ts) AS d FROM t");
        let batches = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
        let column = batches[0].column(0);
        assert_eq!(
            column.data_type(),
            &DataType::Timestamp(TimeUnit::Microsecond, Some(tz.into())),
            "the result keeps the column's zone"
        );
        column
            .as_primitive::<TimestampMicrosecondType>()
            .iter()
            .collect()
    }

    #[tokio::test]
    async fn utc_truncation_equals_datafusions_own_at_every_granularity() {
        for granularity in [
            "second", "minute", "hour", "day", "week", "month", "quarter", "year",
        ] {
            for tz in ["UTC", "+00:00"] {
                assert_eq!(
                    truncate(granularity, tz, true).await,
                    truncate(granularity, tz, false).await,
                    "{granularity} in {tz}"
                );
            }
        }
    }

    #[tokio::test]
    async fn other_zones_are_left_to_datafusion() {
        for tz in ["Europe/Warsaw", "America/New_York", "+05:30"] {
            assert_eq!(
                truncate("day", tz, true).await,
                truncate("day", tz, false).await,
                "{tz}"
            );
        }
    }

    #[tokio::test]
    async fn a_utc_scalar_is_truncated_too() {
        let ctx = SessionContext::new();
        ctx.register_udf(UtcDateTrunc::udf());
        let sql = "SELECT date_trunc('hour', arrow_cast('2024-05-01T10:20:30Z', 'Timestamp(Microsecond, Some(\"UTC\"))')) AS d";
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let value = batches[0]
            .column(0)
            .as_primitive::<TimestampMicrosecondType>()
            .value(0);
        assert_eq!(value, 1_714_557_600_000_000, "2024-05-01T10:00:00Z");
    }
}
