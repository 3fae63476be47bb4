//! `system.quality`: the latest evaluation of each data-quality expectation per tenant
//! table (from the schedule or the last `lakeport quality`).

use std::sync::Arc;

use arrow::array::{
    ArrayRef, ListBuilder, StringArray, StringBuilder, TimestampMillisecondArray, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;

use super::{QualityLog, QualityResult};
use crate::lake::system_table::batch;
use crate::lake::{LakeError, SystemTable};

#[derive(Debug)]
pub struct QualityTable {
    log: Arc<QualityLog>,
}

impl QualityTable {
    pub fn new(log: Arc<QualityLog>) -> Self {
        Self { log }
    }
}

#[tonic::async_trait]
impl SystemTable for QualityTable {
    fn name(&self) -> &'static str {
        "quality"
    }

    fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(fields()))
    }

    async fn rows(&self, tenants: &[String]) -> Result<RecordBatch, LakeError> {
        batch(self.schema(), columns(&self.log.of_tenants(tenants)))
    }
}

fn fields() -> Vec<Field> {
    let s = |n: &str, null| Field::new(n, DataType::Utf8, null);
    vec![
        s("tenant", false),
        s("dataset", false),
        s("expectation", false),
        s("column_name", true),
        s("state", false),
        Field::new("failing", DataType::UInt64, false),
        Field::new(
            "sample_keys",
            DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))),
            false,
        ),
        s("detail", false),
        Field::new(
            "checked_at",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
    ]
}

fn columns(results: &[QualityResult]) -> Vec<ArrayRef> {
    let text = |value: &dyn Fn(&QualityResult) -> Option<&str>| -> ArrayRef {
        Arc::new(results.iter().map(value).collect::<StringArray>())
    };
    let mut samples = ListBuilder::new(StringBuilder::new());
    for r in results {
        for sample in &r.samples {
            samples.values().append_value(sample);
        }
        samples.append(true);
    }
    vec![
        text(&|r| Some(&r.tenant)),
        text(&|r| Some(&r.dataset)),
        text(&|r| Some(r.expectation)),
        text(&|r| r.column.as_deref()),
        text(&|r| Some(r.state.as_str())),
        Arc::new(UInt64Array::from_iter_values(
            results.iter().map(|r| r.failing),
        )),
        Arc::new(samples.finish()),
        text(&|r| Some(&r.detail)),
        Arc::new(
            TimestampMillisecondArray::from_iter_values(
                results.iter().map(|r| r.checked_at.timestamp_millis()),
            )
            .with_timezone("UTC"),
        ),
    ]
}
