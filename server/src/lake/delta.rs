//! Small Delta helpers shared by the table handle, its committer and the query side:
//! refresh a table, create a local table directory, and translate schemas.

use arrow::datatypes::{DataType, Field, Schema};
use deltalake::kernel::engine::arrow_conversion::{TryIntoArrow, TryIntoKernel};
use deltalake::kernel::StructField;
use deltalake::DeltaTable;
use url::Url;

use super::LakeError;
use crate::datasets::{Dataset, APP_PARTITION_COLUMN, TIME_PARTITION_COLUMNS};

/// Loads newer commits; false when the table does not exist yet.
pub(crate) async fn refresh(table: &mut DeltaTable) -> Result<bool, LakeError> {
    let url = table.table_url();
    let local_dir_missing = url.scheme() == "file" && url.to_file_path().is_ok_and(|p| !p.exists());
    if table.version().is_none() && (local_dir_missing || !has_log(table).await?) {
        // Asking delta-kernel for a table with no log makes it log an ERROR (it is a
        // normal first write here), so look before loading.
        return Ok(false);
    }
    match table.update_incremental(None).await {
        Ok(()) => Ok(true),
        Err(deltalake::DeltaTableError::NotATable(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// True when the table's `_delta_log/` holds any object.
async fn has_log(table: &DeltaTable) -> Result<bool, LakeError> {
    use futures::StreamExt;
    let store = table.log_store().object_store(None);
    let log = object_store::path::Path::from("_delta_log");
    match store.list(Some(&log)).next().await {
        None => Ok(false),
        Some(Ok(_)) => Ok(true),
        Some(Err(e)) => Err(e.into()),
    }
}

/// Creates the directory of a local table before its first commit.
pub(crate) fn ensure_local_dir(url: &Url) -> Result<(), LakeError> {
    if url.scheme() == "file" {
        let path = url
            .to_file_path()
            .map_err(|_| LakeError::BadLocation(url.to_string()))?;
        std::fs::create_dir_all(&path)
            .map_err(|e| LakeError::BadLocation(format!("{url}: {e}")))?;
    }
    Ok(())
}

/// The table's columns as Arrow, minus the partition columns derived from time and app.
pub(crate) fn table_data_schema(
    table: &DeltaTable,
    dataset: &Dataset,
) -> Result<Schema, LakeError> {
    let kernel_schema = table.snapshot()?.schema();
    let arrow: Schema = kernel_schema
        .as_ref()
        .try_into_arrow()
        .map_err(|e| LakeError::Internal(format!("table schema has no Arrow form: {e}")))?;
    let derived = |name: &str| {
        TIME_PARTITION_COLUMNS.contains(&name)
            || (name == APP_PARTITION_COLUMN && !dataset.app_column_is_partition())
    };
    let fields: Vec<Field> = arrow
        .fields()
        .iter()
        .filter(|f| !derived(f.name()))
        .map(|f| f.as_ref().clone())
        .collect();
    Ok(Schema::new(fields))
}

/// The full schema of a new table: data columns, then derived partition columns.
pub(crate) fn create_schema(dataset: &Dataset, data_fields: &[Field]) -> Vec<Field> {
    let mut fields = data_fields.to_vec();
    for column in dataset.partition_columns() {
        if !fields.iter().any(|f| f.name() == &column) {
            fields.push(Field::new(column, DataType::Utf8, true));
        }
    }
    fields
}

pub(crate) fn delta_fields(fields: &[Field]) -> Result<Vec<StructField>, LakeError> {
    fields
        .iter()
        .map(|f| {
            f.try_into_kernel().map_err(|e| {
                LakeError::Internal(format!("column {} has no Delta type: {e}", f.name()))
            })
        })
        .collect()
}
