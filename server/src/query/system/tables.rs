//! `system.tables`: each table of the caller's tenants, where it lives and its schema.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Builder, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use deltalake::kernel::engine::arrow_conversion::TryIntoArrow;

use crate::lake::system_table::{batch, text};
use crate::lake::{LakeError, LakeTables, LoadedTable, SystemTable};

#[derive(Debug)]
pub(super) struct TablesTable {
    lake: Arc<LakeTables>,
}

impl TablesTable {
    pub(super) fn new(lake: Arc<LakeTables>) -> Self {
        Self { lake }
    }
}

#[tonic::async_trait]
impl SystemTable for TablesTable {
    fn name(&self) -> &'static str {
        "tables"
    }

    fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(vec![
            text("tenant"),
            text("dataset"),
            text("location"),
            text("store"),
            Field::new("configured_store", DataType::Utf8, true),
            Field::new("version", DataType::Int64, false),
            text("schema"),
        ]))
    }

    async fn rows(&self, tenants: &[String]) -> Result<RecordBatch, LakeError> {
        let tables = self.lake.tables_of_all(tenants).await?;
        batch(self.schema(), columns(&tables)?)
    }
}

fn columns(tables: &[LoadedTable]) -> Result<Vec<ArrayRef>, LakeError> {
    let (mut tenant, mut dataset, mut location, mut schema) = (
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
    );
    let (mut store, mut configured) = (StringBuilder::new(), StringBuilder::new());
    let mut version = Int64Builder::new();
    for t in tables {
        tenant.append_value(&t.tenant);
        dataset.append_value(&t.dataset.name);
        location.append_value(t.table.table_url().as_str());
        store.append_value(&t.store);
        configured.append_option(t.configured_store.as_deref());
        version.append_value(t.version() as i64);
        let snapshot = t.table.snapshot()?;
        let arrow: Schema = snapshot
            .schema()
            .as_ref()
            .try_into_arrow()
            .map_err(|e| LakeError::Internal(format!("table schema has no Arrow form: {e}")))?;
        let text: Vec<String> = arrow
            .fields()
            .iter()
            .map(|f| format!("{} {}", f.name(), f.data_type()))
            .collect();
        schema.append_value(text.join(", "));
    }
    Ok(vec![
        Arc::new(tenant.finish()),
        Arc::new(dataset.finish()),
        Arc::new(location.finish()),
        Arc::new(store.finish()),
        Arc::new(configured.finish()),
        Arc::new(version.finish()),
        Arc::new(schema.finish()),
    ])
}
