//! `system.readiness`: one row per table and Snowflake readiness check.

use std::sync::Arc;

use arrow::array::{ArrayRef, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;

use super::{Readiness, ReadinessError, TableReadiness};
use crate::lake::system_table::batch;
use crate::lake::{LakeError, SystemTable};

#[derive(Debug)]
pub struct ReadinessTable {
    readiness: Readiness,
}

impl ReadinessTable {
    pub fn new(readiness: Readiness) -> Self {
        Self { readiness }
    }
}

#[tonic::async_trait]
impl SystemTable for ReadinessTable {
    fn name(&self) -> &'static str {
        "readiness"
    }

    fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(fields()))
    }

    async fn rows(&self, tenants: &[String]) -> Result<RecordBatch, LakeError> {
        let reports = self
            .readiness
            .report(tenants, None)
            .await
            .map_err(|e| match e {
                ReadinessError::Lake(e) => e,
                other => LakeError::Internal(other.to_string()),
            })?;
        batch(self.schema(), columns(&reports))
    }
}

fn fields() -> Vec<Field> {
    ["tenant", "dataset", "check", "state", "evidence", "fix"]
        .into_iter()
        .map(|name| Field::new(name, DataType::Utf8, false))
        .collect()
}

fn columns(reports: &[TableReadiness]) -> Vec<ArrayRef> {
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
