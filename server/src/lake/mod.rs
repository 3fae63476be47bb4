//! The lake: where each tenant's tables live, and the machinery that writes and commits
//! their files.

pub mod committer;
pub mod files;
pub mod stats;
pub mod table;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use url::Url;

use crate::datasets::Dataset;
pub use committer::{CommitOutcome, SequenceRange};
pub use table::{PendingCommit, TableHandle};

#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error("delta table error: {0}")]
    Delta(#[from] deltalake::DeltaTableError),
    #[error("object store error: {0}")]
    ObjectStore(#[from] object_store::Error),
    #[error("parquet encoding failed: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("producer {producer:?} sent sequence {first}, but sequences up to {committed} are already committed by an overlapping unit; resend starting after {committed}")]
    SequenceOverlap {
        producer: String,
        committed: i64,
        first: i64,
    },
    #[error("column {column:?} is {table} in the table but {unit} in this upload (another writer changed it concurrently); resend with the table's type")]
    SchemaConflict {
        column: String,
        table: String,
        unit: String,
    },
    #[error("invalid store location {0:?}: use a local path or a file:// URL")]
    BadLocation(String),
    #[error("the server is shutting down; retry against another replica or after restart")]
    ShuttingDown,
    #[error("another writer created the table at the same moment; retrying")]
    CreateRace(String),
    #[error("an earlier unit of this stream failed to commit, so later ones are not committed; resend from the last acknowledged sequence")]
    EarlierUnitFailed,
    #[error("internal error: {0}")]
    Internal(String),
}

impl LakeError {
    /// Errors a fresh attempt at the same commit (after reloading the table) may cure.
    pub fn is_retryable(&self) -> bool {
        use deltalake::kernel::transaction::TransactionError as T;
        match self {
            LakeError::CreateRace(_) => true,
            LakeError::Delta(deltalake::DeltaTableError::VersionAlreadyExists(_)) => true,
            LakeError::Delta(deltalake::DeltaTableError::Transaction { source }) => matches!(
                source,
                T::VersionAlreadyExists(_) | T::CommitConflict(_) | T::MaxCommitAttempts(_)
            ),
            _ => false,
        }
    }

    pub(crate) fn retry_on_create_race(e: deltalake::DeltaTableError) -> LakeError {
        let text = e.to_string();
        if text.contains("already exists")
            || matches!(e, deltalake::DeltaTableError::VersionAlreadyExists(_))
        {
            LakeError::CreateRace(text)
        } else {
            LakeError::Delta(e)
        }
    }

    /// A copy for each waiting unit (the source error types are not `Clone`).
    pub(crate) fn clone_for_client(&self) -> LakeError {
        match self {
            LakeError::SequenceOverlap {
                producer,
                committed,
                first,
            } => LakeError::SequenceOverlap {
                producer: producer.clone(),
                committed: *committed,
                first: *first,
            },
            LakeError::ShuttingDown => LakeError::ShuttingDown,
            LakeError::EarlierUnitFailed => LakeError::EarlierUnitFailed,
            other => LakeError::Internal(format!("commit failed: {other}")),
        }
    }
}

/// All tables this server writes, opened on first use.
#[derive(Debug)]
pub struct Lake {
    default_store: Url,
    commit_interval: Duration,
    tables: Mutex<HashMap<(String, String), Arc<TableHandle>>>,
}

impl Lake {
    pub fn new(default_store: &str, commit_interval: Duration) -> Result<Self, LakeError> {
        Ok(Self {
            default_store: store_url(default_store)?,
            commit_interval,
            tables: Mutex::new(HashMap::new()),
        })
    }

    pub fn default_store(&self) -> &Url {
        &self.default_store
    }

    /// `<store>/tenant_id=<tenant>/<dataset>/`, the store being the dataset's own or the lake.
    pub fn table_url(&self, tenant: &str, dataset: &Dataset) -> Result<Url, LakeError> {
        let base = match &dataset.store {
            Some(store) => store_url(store)?,
            None => self.default_store.clone(),
        };
        base.join(&format!("tenant_id={tenant}/{}/", dataset.name))
            .map_err(|e| LakeError::BadLocation(format!("{base}: {e}")))
    }

    pub async fn table(
        &self,
        tenant: &str,
        dataset: &Arc<Dataset>,
    ) -> Result<Arc<TableHandle>, LakeError> {
        let key = (tenant.to_string(), dataset.name.clone());
        let mut tables = self.tables.lock().await;
        if let Some(handle) = tables.get(&key) {
            return Ok(handle.clone());
        }
        let url = self.table_url(tenant, dataset)?;
        let handle =
            Arc::new(TableHandle::open(tenant, dataset.clone(), url, self.commit_interval).await?);
        tables.insert(key, handle.clone());
        Ok(handle)
    }
}

/// Turns a configured store (local path or URL) into a directory URL ending in `/`.
pub fn store_url(store: &str) -> Result<Url, LakeError> {
    let mut url = match Url::parse(store) {
        Ok(url) if url.scheme().len() > 1 => url,
        _ => {
            let path = std::path::Path::new(store);
            std::fs::create_dir_all(path)
                .map_err(|e| LakeError::BadLocation(format!("{store}: {e}")))?;
            let absolute = path
                .canonicalize()
                .map_err(|e| LakeError::BadLocation(format!("{store}: {e}")))?;
            Url::from_directory_path(&absolute)
                .map_err(|_| LakeError::BadLocation(store.to_string()))?
        }
    };
    match url.scheme() {
        "file" => table::ensure_local_dir(&url)?,
        "memory" => {}
        _ => return Err(LakeError::BadLocation(store.to_string())),
    }
    if !url.path().ends_with('/') {
        url.set_path(&format!("{}/", url.path()));
    }
    Ok(url)
}
