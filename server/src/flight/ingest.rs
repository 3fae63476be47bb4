//! DoPut: descriptor PATH `[dataset]` / `[tenant, dataset]` streams acks back as
//! `PutResult`s carrying `IngestAck`; Flight SQL `CommandStatementIngest` (ADBC
//! `adbc_ingest`) answers with the committed row count.

use std::pin::Pin;
use std::sync::Arc;

use arrow_flight::sql::server::PeekableFlightDataStream;
use arrow_flight::sql::{CommandStatementIngest, TableExistsOption, TableNotExistOption};
use arrow_flight::{flight_descriptor::DescriptorType, PutResult};
use futures::Stream;
use lakeport_proto::IngestAck;
use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Status};

use super::put_decode::decode;
use super::throttle::throttled;
use super::CallError;
use crate::auth::Principal;
use crate::error::Error;
use crate::ingest::intake::Intake;
use crate::ingest::{IngestError, Ingestor, Target};
use crate::lake::LakeError;
use crate::tenants::Tenants;

pub(super) type PutStream = Pin<Box<dyn Stream<Item = Result<PutResult, Status>> + Send + 'static>>;

pub(super) fn principal<T>(request: &Request<T>) -> Result<Principal, Status> {
    request
        .extensions()
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| Error::from(CallError::NotAuthenticated).into())
}

/// The memory the intake gate (installed by `server.rs`) reserves for this DoPut.
fn intake<T>(request: &Request<T>) -> Result<Intake, IngestError> {
    request
        .extensions()
        .get::<Intake>()
        .cloned()
        .ok_or_else(|| {
            LakeError::Internal("DoPut reached ingest without passing the intake gate".into())
                .into()
        })
}

/// DoPut with a PATH descriptor.
pub(super) async fn put_path(
    ingestor: &Arc<Ingestor>,
    tenants: &Arc<Tenants>,
    mut request: Request<PeekableFlightDataStream>,
) -> Result<PutStream, Error> {
    let principal = principal(&request).map_err(IngestError::Client)?;
    let first = match request.get_mut().peek().await {
        None => return Err(IngestError::EmptyStream.into()),
        Some(Err(status)) => return Err(IngestError::Client(status.clone()).into()),
        Some(Ok(first)) => first.clone(),
    };
    let descriptor = first.flight_descriptor.ok_or(IngestError::EmptyStream)?;
    if descriptor.r#type() != DescriptorType::Path {
        return Err(IngestError::BadDescriptor(
            "use a PATH descriptor [dataset] or [tenant, dataset], or a Flight SQL CommandStatementIngest".into(),
        )
        .into());
    }
    let (tenant, dataset) = match descriptor.path.as_slice() {
        [dataset] => (None, dataset.as_str()),
        [tenant, dataset] => (Some(tenant.as_str()), dataset.as_str()),
        other => {
            return Err(IngestError::BadDescriptor(format!(
                "path has {} elements; use [dataset] or [tenant, dataset]",
                other.len()
            ))
            .into())
        }
    };
    let tenant = principal.resolve_tenant(tenant)?;
    let admission = tenants.admit_write(&principal, &tenant).await?;
    let target = ingestor.target(&tenant, dataset).await?;

    let (ack_tx, mut ack_rx) = mpsc::channel::<IngestAck>(16);
    let (out_tx, out_rx) = mpsc::channel::<Result<PutResult, Status>>(16);
    let ingestor = ingestor.clone();
    let intake = intake(&request)?;
    let input = decode(throttled(request.into_inner(), admission.limiter));
    tokio::spawn(async move {
        let forward_tx = out_tx.clone();
        let forward = async move {
            while let Some(ack) = ack_rx.recv().await {
                let result = PutResult {
                    app_metadata: ack.encode_to_vec().into(),
                };
                if forward_tx.send(Ok(result)).await.is_err() {
                    break;
                }
            }
        };
        let (result, ()) = tokio::join!(ingestor.ingest(target, input, intake, ack_tx), forward);
        if let Err(e) = result {
            let _ = out_tx.send(Err(Error::from(e).into())).await;
        }
    });
    Ok(Box::pin(ReceiverStream::new(out_rx)))
}

/// Flight SQL bulk ingest; `db_schema` names the tenant for an admin.
pub(super) async fn put_statement_ingest(
    ingestor: &Arc<Ingestor>,
    tenants: &Arc<Tenants>,
    command: CommandStatementIngest,
    request: Request<PeekableFlightDataStream>,
) -> Result<i64, Error> {
    let principal = principal(&request).map_err(IngestError::Client)?;
    if command.temporary {
        return Err(IngestError::Unsupported(
            "temporary tables; lakeport tables are permanent Delta tables".into(),
        )
        .into());
    }
    if command.transaction_id.is_some() {
        return Err(IngestError::Unsupported(
            "transactions; every ingest commits on its own".into(),
        )
        .into());
    }
    let tenant = principal.resolve_tenant(command.schema.as_deref().filter(|s| !s.is_empty()))?;
    let admission = tenants.admit_write(&principal, &tenant).await?;
    let target = ingestor.target(&tenant, &command.table).await?;
    check_table_options(&target, &command).await?;

    let (ack_tx, mut ack_rx) = mpsc::channel::<IngestAck>(16);
    let drain = tokio::spawn(async move { while ack_rx.recv().await.is_some() {} });
    let intake = intake(&request)?;
    let input = decode(throttled(request.into_inner(), admission.limiter));
    let summary = ingestor.ingest(target, input, intake, ack_tx).await?;
    let _ = drain.await;
    Ok(summary.rows_committed as i64)
}

async fn check_table_options(
    target: &Target,
    command: &CommandStatementIngest,
) -> Result<(), Error> {
    let Some(options) = &command.table_definition_options else {
        return Ok(());
    };
    let if_exists =
        TableExistsOption::try_from(options.if_exists).unwrap_or(TableExistsOption::Unspecified);
    let if_not_exist = TableNotExistOption::try_from(options.if_not_exist)
        .unwrap_or(TableNotExistOption::Unspecified);
    if if_exists == TableExistsOption::Replace {
        return Err(IngestError::Unsupported(
            "mode 'replace': lakeport never drops landed data; use 'append'".into(),
        )
        .into());
    }
    let strict = if_exists == TableExistsOption::Fail || if_not_exist == TableNotExistOption::Fail;
    if !strict {
        return Ok(());
    }
    let name = format!("{}.{}", target.tenant, target.dataset.name);
    let exists = target.exists().await?;
    if exists && if_exists == TableExistsOption::Fail {
        return Err(IngestError::TableExists(name).into());
    }
    if !exists && if_not_exist == TableNotExistOption::Fail {
        return Err(IngestError::TableMissing(name).into());
    }
    Ok(())
}
