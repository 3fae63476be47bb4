//! A table of the `system` schema: read-only rows about lakeport's own state, for the
//! caller's tenants. Each subsystem that holds such state serves its table through this
//! trait, and the wiring hands them to the query wing's catalog, so the query wing imports
//! none of them.

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use super::LakeError;

#[tonic::async_trait]
pub trait SystemTable: Send + Sync + std::fmt::Debug {
    /// Its name under `system`.
    fn name(&self) -> &'static str;

    fn schema(&self) -> SchemaRef;

    /// Its rows about these tenants (the caller's scope).
    async fn rows(&self, tenants: &[String]) -> Result<RecordBatch, LakeError>;
}

/// A non-null text column of a system table.
pub fn text(name: &str) -> arrow::datatypes::Field {
    arrow::datatypes::Field::new(name, arrow::datatypes::DataType::Utf8, false)
}

/// A non-null 64-bit integer column of a system table.
pub fn int(name: &str) -> arrow::datatypes::Field {
    arrow::datatypes::Field::new(name, arrow::datatypes::DataType::Int64, false)
}

/// A batch from built columns; a column that does not fit the schema is a bug.
pub fn batch(
    schema: SchemaRef,
    columns: Vec<arrow::array::ArrayRef>,
) -> Result<RecordBatch, LakeError> {
    RecordBatch::try_new(schema, columns)
        .map_err(|e| LakeError::Internal(format!("system table columns do not fit: {e}")))
}
