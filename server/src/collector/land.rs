//! The one way a door lands rows: the caller's tenant, the tenant's admission (suspension,
//! hard quota, a restore on first touch, its rate), memory from the ingest budget, then one
//! ingest stream of one batch, which returns once its rows are committed.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use axum::http::HeaderMap;
use tokio::sync::mpsc;

use super::recent_events::RecentEvents;
use super::{CollectorSettings, Refusal};
use crate::auth::{AuthError, Authenticator, KeyScope, Principal};
use crate::error::Error;
use crate::ingest::budget::MemoryBudget;
use crate::ingest::intake::Intake;
use crate::ingest::{Incoming, IngestError, IngestSummary, Ingestor, Refused};
use crate::lake::LakeError;
use crate::tenants::Tenants;

/// The header an admin names the tenant in (a tenant token names its own).
pub(super) const TENANT_HEADER: &str = "x-lakeport-tenant";
/// The header that makes a retried request land once.
pub(super) const IDEMPOTENCY_HEADER: &str = "idempotency-key";
/// The header a collector key comes in (a `/k/<key>/...` path is rewritten into it).
pub(super) const KEY_HEADER: &str = "x-lakeport-key";

/// What every door needs to land rows.
#[derive(Debug, Clone)]
pub struct Doors {
    pub(super) ingestor: Arc<Ingestor>,
    pub(super) tenants: Arc<Tenants>,
    pub(super) auth: Arc<Authenticator>,
    pub(super) memory: MemoryBudget,
    pub(super) settings: CollectorSettings,
    /// Snowplow event ids committed recently (`None`: `dedupe_window` is off).
    pub(super) recent: Option<Arc<RecentEvents>>,
}

/// The address a connection comes from (the listener records it on each connection).
#[derive(Debug, Clone, Copy)]
pub(super) struct Peer(pub std::net::SocketAddr);

/// Who calls and for which tenant.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub tenant: String,
    /// A collector key's scope, with the browser origin the request came from.
    pub key: Option<(KeyScope, Option<String>)>,
}

impl Doors {
    pub fn new(
        ingestor: Arc<Ingestor>,
        tenants: Arc<Tenants>,
        auth: Arc<Authenticator>,
        memory: MemoryBudget,
        settings: CollectorSettings,
    ) -> Self {
        let recent = RecentEvents::new(settings.dedupe_window, settings.dedupe_max_events);
        Self {
            ingestor,
            tenants,
            auth,
            memory,
            settings,
            recent,
        }
    }

    /// The caller of a request: a collector key (`x-lakeport-key`), or the
    /// `authorization` and `x-lakeport-tenant` headers.
    pub fn caller(&self, headers: &HeaderMap) -> Result<Caller, Error> {
        if let Some(key) = headers.get(KEY_HEADER) {
            let key = key.to_str().map_err(|_| AuthError::InvalidKey)?.trim();
            let (tenant, scope) = self.auth.collector_key(key)?;
            return Ok(Caller {
                principal: Principal::Tenant(tenant.clone()),
                tenant,
                key: Some((scope, browser_origin(headers))),
            });
        }
        let metadata = tonic::metadata::MetadataMap::from_headers(headers.clone());
        let principal = self.auth.authenticate(&metadata)?;
        let named = headers
            .get(TENANT_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let tenant = principal.resolve_tenant(named)?;
        Ok(Caller {
            principal,
            tenant,
            key: None,
        })
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
        self.land_with_refused(caller, dataset, batch, Vec::new(), producer)
            .await
    }

    /// Like `land`, with the events the door could not read going to `_rejected` in the
    /// same commit as the rows.
    pub async fn land_with_refused(
        &self,
        caller: &Caller,
        dataset: &str,
        batch: RecordBatch,
        refused: Vec<Refused>,
        producer: Option<String>,
    ) -> Result<IngestSummary, Error> {
        if let Some((scope, origin)) = &caller.key {
            scope.allows(dataset, origin.as_deref())?;
        }
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
                refused,
            }),
        ]);
        let (acks, mut drained) = mpsc::channel(4);
        let drain = tokio::spawn(async move { while drained.recv().await.is_some() {} });
        let summary = self.ingestor.ingest(target, input, intake, acks).await;
        let _ = drain.await;
        Ok(summary?)
    }
}

/// The web origin a browser sent the request from: its `Origin`, else the origin of its
/// `Referer` (an image pixel sends no `Origin`).
fn browser_origin(headers: &HeaderMap) -> Option<String> {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(origin) = header(axum::http::header::ORIGIN).filter(|o| *o != "null") {
        return Some(origin.to_string());
    }
    let referer = url::Url::parse(header(axum::http::header::REFERER)?).ok()?;
    Some(referer.origin().ascii_serialization())
}

/// The producer id of a request with an `Idempotency-Key`: each key is a producer of one
/// unit, so a retry is recognised as already committed.
pub(super) fn idempotent_producer(
    headers: &HeaderMap,
    door: &str,
) -> Result<Option<String>, Refusal> {
    let Some(value) = headers.get(IDEMPOTENCY_HEADER) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .map_err(|_| Refusal::BadIdempotencyKey)?
        .trim();
    if key.is_empty() || key.len() > 128 || !key.chars().all(|c| c.is_ascii_graphic()) {
        return Err(Refusal::BadIdempotencyKey);
    }
    Ok(Some(format!("{door}:{key}")))
}
