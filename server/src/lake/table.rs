//! A tenant's dataset table: where it lives, its Delta state, and its committer. The
//! committer task lives as long as the handle: the registry drops idle handles, and the
//! committer ends once its queue is empty and closed.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use tokio::sync::{mpsc, oneshot, Mutex};
use url::Url;

use super::committer::{self, CommitOutcome, CommitPolicy, CommitRequest, UnitFiles};
use super::delta::table_data_schema;
use super::encryption::TenantKey;
use super::group_commit::{Incoming, IncomingUnit};
use super::sequences::SequenceRange;
use super::stores::Store;
use super::table_state::TableState;
use super::usage::TableMeter;
use super::{LakeError, TableLocation};
use crate::datasets::Dataset;

pub struct TableHandle {
    pub tenant: String,
    pub dataset: Arc<Dataset>,
    pub url: Url,
    pub store: Arc<Store>,
    /// The store the routes name now (`None` when no store may take the tenant); differs
    /// from `store` for a table kept where it was created.
    pub configured: Option<Arc<Store>>,
    table: Arc<Mutex<TableState>>,
    committer: mpsc::Sender<CommitRequest>,
    incoming: Arc<Incoming>,
    /// Set when the tenant's tables closed (archived, deleted) while this handle was held.
    retired: std::sync::Mutex<Option<LakeError>>,
}

impl std::fmt::Debug for TableHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableHandle")
            .field("tenant", &self.tenant)
            .field("dataset", &self.dataset.name)
            .field("store", &self.store.name)
            .finish_non_exhaustive()
    }
}

impl TableHandle {
    pub(super) fn open(
        tenant: &str,
        dataset: Arc<Dataset>,
        location: TableLocation,
        key: Option<&TenantKey>,
        policy: CommitPolicy,
        meter: Arc<TableMeter>,
    ) -> Result<Self, LakeError> {
        let TableLocation { store, configured } = location;
        let url = store.table_url(tenant, &dataset.name)?;
        // Not loaded yet: the table (and its directory) may not exist before its first commit.
        let table = store
            .metered_table_builder(url.clone(), key, meter.clone())?
            .build()
            .map_err(|e| LakeError::from(e).in_store(&store.name))?;
        let table = Arc::new(Mutex::new(TableState::new(table)));
        let incoming = Arc::new(Incoming::default());
        let committer = committer::spawn(
            table.clone(),
            dataset.clone(),
            store.name.clone(),
            policy,
            incoming.clone(),
            meter,
        );
        Ok(Self {
            tenant: tenant.to_string(),
            dataset,
            url,
            store,
            configured,
            table,
            committer,
            incoming,
            retired: std::sync::Mutex::new(None),
        })
    }

    /// Refuses this handle's further commits.
    pub(super) fn retire(&self, why: LakeError) {
        *self.retired.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
    }

    /// `tenant.dataset`, as errors and logs name a table.
    pub fn name(&self) -> String {
        format!("{}.{}", self.tenant, self.dataset.name)
    }

    /// The table's Delta state, shared with the committer; readers load its newest
    /// snapshot and clone it.
    pub(crate) fn state(&self) -> &Arc<Mutex<TableState>> {
        &self.table
    }

    /// Object store rooted at the table directory.
    pub async fn object_store(&self) -> Arc<dyn deltalake::ObjectStore> {
        self.table.lock().await.table().object_store()
    }

    /// Catches up with the log and returns the highest committed sequence of a producer and
    /// the table's data schema (`None` for a table not created yet).
    pub async fn refresh(
        &self,
        app_id: Option<&str>,
    ) -> Result<(Option<i64>, Option<SchemaRef>), LakeError> {
        let in_store = |e: LakeError| e.in_store(&self.store.name);
        let mut state = self.table.lock().await;
        if !state.catch_up().await.map_err(in_store)? {
            return Ok((None, None));
        }
        let committed = match app_id {
            Some(app_id) => state.transaction_version(app_id).await.map_err(in_store)?,
            None => None,
        };
        Ok((
            committed,
            Some(Arc::new(table_data_schema(state.table(), &self.dataset)?)),
        ))
    }

    /// Announces a unit that will be queued: until it is (or the announcement drops), the
    /// committer holds other units back for it, up to `commit_interval`.
    pub fn announce_unit(&self) -> IncomingUnit {
        self.incoming.announce()
    }

    /// Queues a unit for the committer and returns its pending outcome. Units of one stream
    /// are committed in the order they are queued; once one fails, `stream_failed` is set
    /// and the committer refuses the stream's later units, so no later sequence can be
    /// committed past a lost one.
    pub async fn submit(
        &self,
        files: UnitFiles,
        sequences: Option<SequenceRange>,
        schema: SchemaRef,
        stream_failed: Arc<AtomicBool>,
        announced: Option<IncomingUnit>,
    ) -> Result<PendingCommit, LakeError> {
        if let Some(why) = self
            .retired
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            return Err(why);
        }
        let (respond, outcome) = oneshot::channel();
        let request = CommitRequest {
            files,
            sequences,
            schema,
            stream_failed,
            respond,
        };
        self.committer
            .send(request)
            .await
            .map_err(|_| LakeError::ShuttingDown)?;
        // Dropped only once the unit is in the queue, so the committer sees it on waking.
        drop(announced);
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
