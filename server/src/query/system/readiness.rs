//! `system.readiness`: one row per table and Snowflake readiness check.

use std::sync::Arc;

use arrow::array::{ArrayRef, StringArray};
use arrow::datatypes::{DataType, Field};

use crate::readiness::TableReadiness;

pub(super) fn fields() -> Vec<Field> {
    ["tenant", "dataset", "check", "state", "evidence", "fix"]
        .into_iter()
        .map(|name| Field::new(name, DataType::Utf8, false))
        .collect()
}

pub(super) fn columns(reports: &[TableReadiness]) -> Vec<ArrayRef> {
    let rows: Vec<[&str; 6]> = reports
        .iter()
        .flat_map(|r| {
            r.checks.iter().map(move |c| {
                [
                    r.tenant.as_str(),
                    r.dataset.as_str(),
                    c.name,
                    c.state.as_str(),
                    c.evidence.as_str(),
                    c.fix.as_str(),
                ]
            })
        })
        .collect();
    (0..6)
        .map(|i| Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r[i]))) as ArrayRef)
        .collect()
}
