//! `system.maintenance`: the maintenance steps this server ran, oldest first.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, StringArray, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;

use super::{MaintenanceLog, StepRecord};
use crate::lake::system_table::{batch, int, text};
use crate::lake::{LakeError, SystemTable};

#[derive(Debug)]
pub struct MaintenanceTable {
    log: Arc<MaintenanceLog>,
}

impl MaintenanceTable {
    pub fn new(log: Arc<MaintenanceLog>) -> Self {
        Self { log }
    }
}

#[tonic::async_trait]
impl SystemTable for MaintenanceTable {
    fn name(&self) -> &'static str {
        "maintenance"
    }

    fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(fields()))
    }

    async fn rows(&self, tenants: &[String]) -> Result<RecordBatch, LakeError> {
        batch(self.schema(), columns(&self.log.of_tenants(tenants)))
    }
}

fn fields() -> Vec<Field> {
    vec![
        text("tenant"),
        text("dataset"),
        text("kind"),
        text("partition"),
        int("files_in"),
        int("files_out"),
        int("bytes_in"),
        int("bytes_out"),
        int("rows_in"),
        Field::new("version", DataType::Int64, true),
        Field::new(
            "started_at",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
        int("duration_ms"),
        text("outcome"),
        text("message"),
    ]
}

fn columns(records: &[StepRecord]) -> Vec<ArrayRef> {
    let text = |value: &dyn Fn(&StepRecord) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(records.iter().map(value)))
    };
    let number = |value: &dyn Fn(&StepRecord) -> u64| -> ArrayRef {
        Arc::new(Int64Array::from_iter_values(
            records.iter().map(|r| value(r) as i64),
        ))
    };
    vec![
        text(&|r| &r.tenant),
        text(&|r| &r.dataset),
        text(&|r| r.kind.as_str()),
        text(&|r| &r.partition),
        number(&|r| r.files_in),
        number(&|r| r.files_out),
        number(&|r| r.bytes_in),
        number(&|r| r.bytes_out),
        number(&|r| r.rows_in),
        Arc::new(Int64Array::from_iter(records.iter().map(|r| r.version))),
        Arc::new(
            TimestampMillisecondArray::from_iter_values(
                records.iter().map(|r| r.started_at.timestamp_millis()),
            )
            .with_timezone("UTC"),
        ),
        number(&|r| r.duration.as_millis() as u64),
        text(&|r| r.outcome.as_str()),
        text(&|r| r.message()),
    ]
}
