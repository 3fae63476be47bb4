//! `system.tenants`: each tenant's usage against its quota (a tenant sees its own row, an
//! admin every tenant's): billed bytes from the usage counts, not a listing per query.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, StringArray, TimestampMillisecondArray, UInt64Array};
use arrow::datatypes::{DataType, Field, TimeUnit};

use crate::tenants::TenantReport;

pub(super) fn fields() -> Vec<Field> {
    let s = |n: &str, null| Field::new(n, DataType::Utf8, null);
    let time = |n: &str| {
        Field::new(
            n,
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            true,
        )
    };
    vec![
        s("tenant", false),
        s("display_name", true),
        s("region", true),
        s("state", false),
        Field::new("usage_bytes", DataType::Int64, false),
        Field::new("soft_bytes", DataType::UInt64, true),
        Field::new("hard_bytes", DataType::UInt64, true),
        s("quota_state", false),
        Field::new("rows", DataType::Int64, true),
        time("last_write"),
        time("last_query"),
        Field::new("drift_bytes", DataType::Int64, true),
        time("reconciled_at"),
    ]
}

pub(super) fn columns(reports: &[TenantReport]) -> Vec<ArrayRef> {
    let text = |value: &dyn Fn(&TenantReport) -> Option<&str>| -> ArrayRef {
        Arc::new(reports.iter().map(value).collect::<StringArray>())
    };
    let time = |value: &dyn Fn(&TenantReport) -> Option<i64>| -> ArrayRef {
        Arc::new(
            reports
                .iter()
                .map(value)
                .collect::<TimestampMillisecondArray>()
                .with_timezone("UTC"),
        )
    };
    vec![
        text(&|r| Some(&r.tenant)),
        text(&|r| r.display_name.as_deref()),
        text(&|r| r.region.as_deref()),
        text(&|r| Some(r.state)),
        Arc::new(Int64Array::from_iter_values(
            reports.iter().map(|r| r.usage_bytes),
        )),
        Arc::new(reports.iter().map(|r| r.soft).collect::<UInt64Array>()),
        Arc::new(reports.iter().map(|r| r.hard).collect::<UInt64Array>()),
        text(&|r| Some(r.quota_state.as_str())),
        Arc::new(reports.iter().map(|r| r.rows).collect::<Int64Array>()),
        time(&|r| r.last_write.map(|t| t.timestamp_millis())),
        time(&|r| r.last_query.map(|t| t.timestamp_millis())),
        Arc::new(
            reports
                .iter()
                .map(|r| r.drift_bytes)
                .collect::<Int64Array>(),
        ),
        time(&|r| r.reconciled_at.map(|t| t.timestamp_millis())),
    ]
}
