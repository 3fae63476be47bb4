//! A tenant's dataset table: where it lives, its Delta state, and its committer.

use std::sync::atomic::AtomicBool;
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
        // Not loaded yet: the table (and its directory) may not exist before its first commit.
        let table = deltalake::DeltaTableBuilder::from_url(url.clone())?.build()?;
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
    pub async fn refresh(
        &self,
        app_id: Option<&str>,
    ) -> Result<(Option<i64>, Option<SchemaRef>), LakeError> {
        let mut table = self.table.lock().await;
        if !refresh(&mut table).await? {
            return Ok((None, None));
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
        Ok((
            committed,
            Some(Arc::new(table_data_schema(&table, &self.dataset)?)),
        ))
    }

    /// Queues a unit for the committer and returns its pending outcome. Units of one stream
    /// are committed in the order they are queued; once one fails, `stream_failed` is set
    /// and the committer refuses the stream's later units, so no later sequence can be
    /// committed past a lost one.
    pub async fn submit(
        &self,
        adds: Vec<Add>,
        sequences: Option<SequenceRange>,
        schema: SchemaRef,
        stream_failed: Arc<AtomicBool>,
    ) -> Result<PendingCommit, LakeError> {
        let (respond, outcome) = oneshot::channel();
        let request = CommitRequest {
            adds,
            sequences,
            schema,
            stream_failed,
            respond,
        };
        self.committer
            .send(request)
            .await
            .map_err(|_| LakeError::ShuttingDown)?;
        Ok(PendingCommit(outcome))
    }
}

/// A queued unit; await `outcome` for the commit result.
#[derive(Debug)]
pub struct PendingCommit(oneshot::Receiver<Result<CommitOutcome, LakeError>>);

impl PendingCommit {
    pub async fn outcome(self) -> Result<CommitOutcome, LakeError> {
        self.0.await.map_err(|_| LakeError::ShuttingDown)?
    }
}

/// Loads newer commits; false when the table does not exist yet.
pub(crate) async fn refresh(table: &mut DeltaTable) -> Result<bool, LakeError> {
    let url = table.table_url();
    let local_dir_missing = url.scheme() == "file" && url.to_file_path().is_ok_and(|p| !p.exists());
    if table.version().is_none() && local_dir_missing {
        return Ok(false);
    }
    match table.update_incremental(None).await {
        Ok(()) => Ok(true),
        Err(deltalake::DeltaTableError::NotATable(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Creates the directory of a local table before its first commit.
pub(super) fn ensure_local_dir(url: &Url) -> Result<(), LakeError> {
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
pub(super) fn table_data_schema(
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

pub(super) fn delta_fields(fields: &[Field]) -> Result<Vec<StructField>, LakeError> {
    fields
        .iter()
        .map(|f| {
            f.try_into_kernel().map_err(|e| {
                LakeError::Internal(format!("column {} has no Delta type: {e}", f.name()))
            })
        })
        .collect()
}
