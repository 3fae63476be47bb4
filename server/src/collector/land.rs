//! The one way a door lands rows: the caller's tenant, the tenant's admission (suspension,
//! hard quota, a restore on first touch, its rate), memory from the ingest budget, then one
//! ingest stream of one batch, which returns once its rows are committed.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use axum::http::HeaderMap;
use tokio::sync::mpsc;

use super::{CollectorSettings, Refusal};
use crate::auth::{Authenticator, Principal};
use crate::error::Error;
use crate::ingest::budget::MemoryBudget;
use crate::ingest::intake::Intake;
use crate::ingest::{Incoming, IngestError, IngestSummary, Ingestor};
use crate::lake::LakeError;
use crate::tenants::Tenants;

/// The header an admin names the tenant in (a tenant token names its own).
pub(super) const TENANT_HEADER: &str = "x-lakeport-tenant";
/// The header that makes a retried request land once.
pub(super) const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// What every door needs to land rows.
#[derive(Debug, Clone)]
pub struct Doors {
    pub(super) ingestor: Arc<Ingestor>,
    pub(super) tenants: Arc<Tenants>,
    pub(super) auth: Arc<Authenticator>,
    pub(super) memory: MemoryBudget,
    pub(super) settings: CollectorSettings,
}

/// Who calls and for which tenant.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub tenant: String,
}

impl Doors {
    pub fn new(
        ingestor: Arc<Ingestor>,
        tenants: Arc<Tenants>,
        auth: Arc<Authenticator>,
        memory: MemoryBudget,
        settings: CollectorSettings,
    ) -> Self {
        Self {
            ingestor,
            tenants,
            auth,
            memory,
            settings,
        }
    }

    /// The caller of a request from its `authorization` and `x-lakeport-tenant` headers.
    pub fn caller(&self, headers: &HeaderMap) -> Result<Caller, Error> {
        let metadata = tonic::metadata::MetadataMap::from_headers(headers.clone());
        let principal = self.auth.authenticate(&metadata)?;
        let named = headers
            .get(TENANT_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let tenant = principal.resolve_tenant(named)?;
        Ok(Caller { principal, tenant })
    }

    /// The schema of a dataset's table, which a door's rows are shaped for.
    pub async fn schema(&self, caller: &Caller, dataset: &str) -> Result<SchemaRef, Error> {
        let target = self.ingestor.target(&caller.tenant, dataset).await?;
        target.dataset.schema.clone().ok_or_else(|| {
            LakeError::Internal(format!("built-in dataset {dataset} has no schema")).into()
        })
    }

    /// Lands `batch` in the caller's `dataset` and returns once it is committed (or
    /// refused). `producer` makes a retried request land once.
    pub async fn land(
        &self,
        caller: &Caller,
        dataset: &str,
        batch: RecordBatch,
        producer: Option<String>,
    ) -> Result<IngestSummary, Error> {
        let admission = self
            .tenants
            .admit_write(&caller.principal, &caller.tenant)
            .await?;
        let target = self.ingestor.target(&caller.tenant, dataset).await?;
        if let Some(limiter) = &admission.limiter {
            limiter.acquire(batch.num_rows() as u64).await;
        }
        let reserved = self
            .memory
            .reserve(batch.get_array_memory_size())
            .await
            .map_err(|_| LakeError::ShuttingDown)?;
        let intake = Intake::default();
        intake.add(reserved);
        let input = futures::stream::iter([
            Ok::<_, IngestError>(Incoming::Schema(batch.schema())),
            Ok(Incoming::Batch {
                batch,
                sequence: producer.map(|p| (p, 0)),
            }),
        ]);
        let (acks, mut drained) = mpsc::channel(4);
        let drain = tokio::spawn(async move { while drained.recv().await.is_some() {} });
        let summary = self.ingestor.ingest(target, input, intake, acks).await;
        let _ = drain.await;
        Ok(summary?)
    }
}

/// The producer id of a request with an `Idempotency-Key`: each key is a producer of one
/// unit, so a retry is recognised as already committed.
pub(super) fn idempotent_producer(headers: &HeaderMap, door: &str) -> Result<Option<String>, Refusal> {
    let Some(value) = headers.get(IDEMPOTENCY_HEADER) else {
        return Ok(None);
    };
    let key = value.to_str().map_err(|_| Refusal::BadIdempotencyKey)?.trim();
    if key.is_empty() || key.len() > 128 || !key.chars().all(|c| c.is_ascii_graphic()) {
        return Err(Refusal::BadIdempotencyKey);
    }
    Ok(Some(format!("{door}:{key}")))
}
