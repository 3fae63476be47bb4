//! Small Delta helpers shared by the table handle, its committer, maintenance and the query
//! side: refresh a table, commit on exactly the loaded snapshot, create a local table
//! directory, and translate schemas.

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

/// Commits `actions` on exactly the loaded snapshot, without delta-rs's rebase onto newer
/// versions (its conflict checker lets two removals of the same files through when they
/// say no data changed, and a caller that removes files must see every newer commit):
/// `Some(version)` when it landed (the table moves to it), `None` when another writer
/// committed first (the table is refreshed, for the caller to look again).
pub(crate) async fn commit_on_snapshot(
    table: &mut DeltaTable,
    actions: Vec<deltalake::kernel::Action>,
    operation: deltalake::protocol::DeltaOperation,
) -> Result<Option<i64>, LakeError> {
    use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
    let properties = CommitProperties::default()
        .with_max_retries(0)
        .with_create_checkpoint(false)
        .with_cleanup_expired_logs(Some(false));
    let committed = CommitBuilder::from(properties)
        .with_actions(actions)
        .build(Some(table.snapshot()?), table.log_store(), operation)
        .await;
    match committed {
        Ok(finalized) => {
            let version = finalized.version() as i64;
            table.state = Some(finalized.snapshot());
            Ok(Some(version))
        }
        Err(e) => {
            let e = LakeError::from(e);
            if !e.is_retryable() {
                return Err(e);
            }
            refresh(table).await?;
            Ok(None)
        }
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
