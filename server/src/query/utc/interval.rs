//! `timestamp ± INTERVAL` of a fixed length as `timestamp ± duration`.

use arrow::datatypes::{DataType, IntervalMonthDayNano, TimeUnit};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, Result, ScalarValue};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::utils::merge_schema;
use datafusion::logical_expr::{BinaryExpr, Expr, ExprSchemable, LogicalPlan, Operator};
use datafusion::optimizer::optimizer::ApplyOrder;
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};

use super::is_utc;

const NANOS_PER_DAY: i64 = 86_400_000_000_000;

/// Rewrites `ts + INTERVAL '30 minutes'` (and `-`, and `INTERVAL + ts`) into the same
/// arithmetic with a duration literal when the interval has a fixed length for `ts`: no
/// months, and days only when `ts` is in UTC or has no zone (elsewhere a day can be 23 or
/// 25 hours). Arrow adds an interval through a calendar conversion of every value; a
/// duration is one integer addition.
#[derive(Debug)]
pub struct FixedIntervalToDuration;

impl OptimizerRule for FixedIntervalToDuration {
    fn name(&self) -> &str {
        "lakeport_fixed_interval_to_duration"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::BottomUp)
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        let inputs = plan.inputs();
        if inputs.is_empty() {
            return Ok(Transformed::no(plan));
        }
        let schema = merge_schema(&inputs);
        // Output columns are named after their expressions: keep the names, or the nodes
        // above no longer find the columns they read.
        let names = NamePreserver::new(&plan);
        plan.map_expressions(|expr| {
            let name = names.save(&expr);
            let rewritten = expr.transform_up(|e| rewrite(e, &schema))?;
            Ok(rewritten.update_data(|e| name.restore(e)))
        })
    }
}

fn rewrite(expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = &expr else {
        return Ok(Transformed::no(expr));
    };
    let (timestamp, interval, timestamp_left) = match (left.as_ref(), op, right.as_ref()) {
        (ts, Operator::Plus | Operator::Minus, Expr::Literal(iv, _)) => (ts, iv, true),
        (Expr::Literal(iv, _), Operator::Plus, ts) => (ts, iv, false),
        _ => return Ok(Transformed::no(expr)),
    };
    let ScalarValue::IntervalMonthDayNano(Some(interval)) = interval else {
        return Ok(Transformed::no(expr));
    };
    // A column the schema does not know (an outer reference) is left alone.
    let Ok(DataType::Timestamp(unit, tz)) = timestamp.get_type(schema) else {
        return Ok(Transformed::no(expr));
    };
    let Some(duration) = fixed_duration(*interval, unit, tz.as_deref()) else {
        return Ok(Transformed::no(expr));
    };
    let duration = Box::new(Expr::Literal(duration, None));
    let timestamp = Box::new(timestamp.clone());
    let (left, right) = if timestamp_left {
        (timestamp, duration)
    } else {
        (duration, timestamp)
    };
    Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr {
        left,
        op: *op,
        right,
    })))
}

/// The interval as a duration literal in `unit`, when it has one length at every instant
/// of `tz` and that length is a whole number of `unit`s.
fn fixed_duration(
    interval: IntervalMonthDayNano,
    unit: TimeUnit,
    tz: Option<&str>,
) -> Option<ScalarValue> {
    if interval.months != 0 || (interval.days != 0 && !tz.is_none_or(is_utc)) {
        return None;
    }
    let nanos = i64::from(interval.days)
        .checked_mul(NANOS_PER_DAY)?
        .checked_add(interval.nanoseconds)?;
    let per_unit = match unit {
        TimeUnit::Second => 1_000_000_000,
        TimeUnit::Millisecond => 1_000_000,
        TimeUnit::Microsecond => 1_000,
        TimeUnit::Nanosecond => 1,
    };
    if nanos % per_unit != 0 {
        return None;
    }
    let value = Some(nanos / per_unit);
    Some(match unit {
        TimeUnit::Second => ScalarValue::DurationSecond(value),
        TimeUnit::Millisecond => ScalarValue::DurationMillisecond(value),
        TimeUnit::Microsecond => ScalarValue::DurationMicrosecond(value),
        TimeUnit::Nanosecond => ScalarValue::DurationNanosecond(value),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, RecordBatch, TimestampMicrosecondArray};
    use datafusion::prelude::SessionContext;

    use super::*;

    fn interval(months: i32, days: i32, nanos: i64) -> IntervalMonthDayNano {
        IntervalMonthDayNano::new(months, days, nanos)
    }

    #[test]
    fn only_fixed_lengths_become_durations() {
        let us = TimeUnit::Microsecond;
        let minutes_30 = interval(0, 0, 1_800_000_000_000);
        assert_eq!(
            fixed_duration(minutes_30, us, Some("UTC")),
            Some(ScalarValue::DurationMicrosecond(Some(1_800_000_000)))
        );
        assert_eq!(
            fixed_duration(minutes_30, us, Some("Europe/Warsaw")),
            Some(ScalarValue::DurationMicrosecond(Some(1_800_000_000))),
            "minutes are minutes in every zone"
        );
        let one_day = interval(0, 1, 0);
        assert_eq!(
            fixed_duration(one_day, us, None),
            Some(ScalarValue::DurationMicrosecond(Some(86_400_000_000)))
        );
        assert_eq!(
            fixed_duration(one_day, us, Some("UTC")),
            Some(ScalarValue::DurationMicrosecond(Some(86_400_000_000)))
        );
        assert_eq!(
            fixed_duration(one_day, us, Some("America/New_York")),
            None,
            "a day there can be 23 or 25 hours"
        );
        assert_eq!(fixed_duration(interval(1, 0, 0), us, Some("UTC")), None);
        assert_eq!(
            fixed_duration(interval(0, 0, 1), us, Some("UTC")),
            None,
            "a nanosecond is not a whole number of microseconds"
        );
    }

    async fn run(sql: &str, rule: bool) -> (Vec<RecordBatch>, String) {
        let ctx = SessionContext::new();
        if rule {
            ctx.add_optimizer_rule(Arc::new(FixedIntervalToDuration));
        }
        let start = 1_711_845_000_000_000_i64;
        let values: Vec<Option<i64>> = (0..300)
            .map(|i| Some(start + i * 43_139_000_123))
            .chain([None])
            .collect();
        let batch = RecordBatch::try_from_iter([
            (
                "ts",
                Arc::new(TimestampMicrosecondArray::from(values.clone()).with_timezone("UTC"))
                    as ArrayRef,
            ),
            (
                "local",
                Arc::new(TimestampMicrosecondArray::from(values).with_timezone("Europe/Warsaw")),
            ),
        ])
        .unwrap();
        ctx.register_batch("t", batch).unwrap();
        let frame = ctx.sql(sql).await.unwrap();
        let plan = format!(
            "{}",
            frame
                .clone()
                .into_optimized_plan()
                .unwrap()
                .display_indent()
        );
        (frame.collect().await.unwrap(), plan)
    }

    #[tokio::test]
    async fn rewritten_arithmetic_returns_the_same_rows() {
        let sql = "SELECT ts + INTERVAL '30 minutes' AS a, ts - INTERVAL '1 day 2 hours' AS b, \
                   INTERVAL '90 seconds' + ts AS c, local + INTERVAL '1 day' AS d, \
                   ts + INTERVAL '1 month' AS e, \
                   ts > lag(ts) OVER (ORDER BY ts) + INTERVAL '30 minutes' AS f FROM t";
        // An aggregate and a window over rewritten arithmetic, unaliased: the columns the
        // nodes above read keep their names.
        let grouped = "WITH o AS (SELECT ts, lag(ts) OVER (ORDER BY ts) AS prev FROM t) \
                       SELECT sum(CASE WHEN ts > prev + INTERVAL '30 minutes' THEN 1 ELSE 0 END), \
                       max(ts - INTERVAL '2 hours') FROM o";
        let (fast, plan) = run(grouped, true).await;
        assert_eq!(fast, run(grouped, false).await.0);
        assert!(plan.contains("Duration"), "the rule fired: {plan}");
        let (fast, plan) = run(sql, true).await;
        let (slow, _) = run(sql, false).await;
        assert_eq!(fast, slow);
        assert!(plan.contains("Duration"), "the rule fired: {plan}");
        assert!(
            plan.contains("IntervalMonthDayNano"),
            "months and a day in Warsaw stay intervals: {plan}"
        );
    }
}
