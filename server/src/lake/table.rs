//! A tenant's dataset table: where it lives, its Delta state, and its committer.

use std::sync::Arc;

use arrow::datatypes::{Field, Schema, SchemaRef};
use deltalake::kernel::engine::arrow_conversion::{TryIntoArrow, TryIntoKernel};
use deltalake::kernel::StructField;
use deltalake::DeltaTable;
use tokio::sync::{mpsc, oneshot, Mutex};
use url::Url;

use super::committer::{self, CommitOutcome, CommitRequest, SequenceRange};
use super::LakeError;
use crate::datasets::{Dataset, APP_PARTITION_COLUMN, TIME_PARTITION_COLUMNS};
use deltalake::kernel::Add;

#[derive(Debug)]
pub struct TableHandle {
    pub tenant: String,
    pub dataset: Arc<Dataset>,
    pub url: Url,
    table: Arc<Mutex<DeltaTable>>,
    committer: mpsc::Sender<CommitRequest>,
}

impl TableHandle {
    pub(super) async fn open(
        tenant: &str,
        dataset: Arc<Dataset>,
        url: Url,
        commit_interval: std::time::Duration,
    ) -> Result<Self, LakeError> {
        let table = DeltaTable::try_from_url(url.clone()).await?;
        let table = Arc::new(Mutex::new(table));
        let committer = committer::spawn(table.clone(), dataset.clone(), commit_interval);
        Ok(Self {
            tenant: tenant.to_string(),
            dataset,
            url,
            table,
            committer,
        })
    }

    /// Object store rooted at the table directory.
    pub async fn store(&self) -> Arc<dyn deltalake::ObjectStore> {
        self.table.lock().await.object_store()
    }

    /// Refreshes the table and returns the highest committed sequence of a producer and the
    /// table's data schema (`None` for a table not created yet).
    pub async fn refresh(&self, app_id: Option<&str>) -> Result<(Option<i64>, Option<SchemaRef>), LakeError> {
        let mut table = self.table.lock().await;
        match table.update_incremental(None).await {
            Ok(()) => {}
            Err(deltalake::DeltaTableError::NotATable(_)) => return Ok((None, None)),
            Err(e) if table.version().is_none() && e.to_string().contains("No files in log segment") => {
                return Ok((None, None))
            }
            Err(e) => return Err(e.into()),
        }
        let committed = match app_id {
            Some(app_id) => {
                table
                    .snapshot()?
                    .transaction_version(table.log_store().as_ref(), app_id)
                    .await?
            }
            None => None,
        };
        Ok((committed, Some(Arc::new(table_data_schema(&table, &self.dataset)?))))
    }

    /// Hands a unit to the committer and waits until it is durable (or found duplicate).
    pub async fn commit(
        &self,
        adds: Vec<Add>,
        sequences: Option<SequenceRange>,
        schema: SchemaRef,
    ) -> Result<CommitOutcome, LakeError> {
        let (respond, outcome) = oneshot::channel();
        let request = CommitRequest {
            adds,
            sequences,
            schema,
            respond,
        };
        self.committer.send(request).await.map_err(|_| LakeError::ShuttingDown)?;
        outcome.await.map_err(|_| LakeError::ShuttingDown)?
    }
}

/// The table's columns as Arrow, minus the partition columns derived from time and app.
pub(super) fn table_data_schema(table: &DeltaTable, dataset: &Dataset) -> Result<Schema, LakeError> {
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

pub(super) fn delta_fields(fields: &[Field]) -> Result<Vec<StructField>, LakeError> {
    fields
        .iter()
        .map(|f| {
            f.try_into_kernel()
                .map_err(|e| LakeError::Internal(format!("column {} has no Delta type: {e}", f.name())))
        })
        .collect()
}
