//! Flight SQL queries: `GetFlightInfo` plans and signs a ticket, `DoGet` redeems it and
//! streams the result; prepared statements are signed SQL handles planned on execution.

use std::pin::Pin;
use std::sync::Arc;

use arrow::ipc::writer::IpcWriteOptions;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::sql::server::PeekableFlightDataStream;
use arrow_flight::sql::{
    ActionCreatePreparedStatementResult, ProstMessageExt, TicketStatementQuery,
};
use arrow_flight::{
    FlightData, FlightDescriptor, FlightEndpoint, FlightInfo, IpcMessage, SchemaAsIpc, Ticket,
};
use futures::{Stream, StreamExt, TryStreamExt};
use prost::Message;
use tonic::{Request, Status};

use super::ingest::principal;
use super::CallError;
use crate::error::{flight_status, Error};
use crate::query::engine::Planned;
use crate::query::metrics::{QueryOutcome, QueryRecord};
use crate::query::scope::TENANT_HEADER;
use crate::query::{QueryEngine, QueryError, Scope};

pub(super) type DoGetStream =
    Pin<Box<dyn Stream<Item = Result<FlightData, Status>> + Send + 'static>>;

/// The caller's scope: its principal, and for an admin the tenant named in the
/// `lakeport-tenant` header (unqualified table names resolve there).
pub(super) fn scope<T>(request: &Request<T>) -> Result<Scope, Status> {
    let principal = principal(request)?;
    let tenant = match request.metadata().get(TENANT_HEADER) {
        Some(value) => Some(value.to_str().map_err(|_| {
            Error::from(CallError::BadHeader {
                header: TENANT_HEADER,
                problem: "is not ASCII",
            })
        })?),
        None => None,
    };
    Ok(Scope::new(principal, tenant.filter(|t| !t.is_empty())).map_err(Error::from)?)
}

/// Plans `sql` and answers with its schema and a signed ticket pinning the table versions.
pub(super) async fn flight_info(
    engine: &QueryEngine,
    scope: &Scope,
    sql: &str,
    descriptor: FlightDescriptor,
) -> Result<FlightInfo, Status> {
    let planned = plan(engine, scope, sql, "plan").await?;
    let handle = engine.ticket(scope, sql, planned.versions.clone(), false);
    let schema = planned.schema.clone();
    engine.keep_plan(handle.clone(), planned);
    let ticket = TicketStatementQuery {
        statement_handle: handle.into(),
    };
    let endpoint = FlightEndpoint::new().with_ticket(Ticket::new(ticket.as_any().encode_to_vec()));
    Ok(FlightInfo::new()
        .try_with_schema(&schema)
        .map_err(|e| {
            Error::from(CallError::Encode {
                what: "the result schema",
                detail: e.to_string(),
            })
        })?
        .with_endpoint(endpoint)
        .with_descriptor(descriptor)
        .with_ordered(true))
}

/// Plans `sql`; a refused plan is recorded as a failed query here, a planned one by the
/// DoGet that runs it.
async fn plan(
    engine: &QueryEngine,
    scope: &Scope,
    sql: &str,
    kind: &'static str,
) -> Result<Planned, Status> {
    let mut record = QueryRecord::start(&scope.default_schema, kind);
    match engine.plan(scope, sql, &[]).await {
        Ok(planned) => {
            record.handed_to_do_get();
            Ok(planned)
        }
        Err(e) => {
            let status = Status::from(Error::from(e));
            record.end(QueryOutcome::Error, &format!("{:?}", status.code()));
            Err(status)
        }
    }
}

/// Redeems a ticket and streams the query's result at the versions it pins.
pub(super) async fn do_get(
    engine: &Arc<QueryEngine>,
    ticket: TicketStatementQuery,
    caller: Scope,
) -> Result<DoGetStream, Status> {
    let mut record = QueryRecord::start(&caller.default_schema, "statement");
    let failed = |record: &mut QueryRecord, e: Error| {
        let status = Status::from(e);
        record.end(QueryOutcome::Error, &format!("{:?}", status.code()));
        status
    };
    let (scope, redeemed) = engine
        .redeem(&ticket.statement_handle, caller, false)
        .map_err(|e| failed(&mut record, e.into()))?;
    let planned = match engine.kept_plan(&ticket.statement_handle) {
        Some(planned) => planned,
        None => engine
            .plan(&scope, &redeemed.sql, &redeemed.versions)
            .await
            .map_err(|e| failed(&mut record, e.into()))?,
    };
    let schema = planned.schema.clone();
    let stream = engine
        .execute(&scope, planned)
        .await
        .map_err(|e| failed(&mut record, e.into()))?;
    let errors = engine.clone();
    let batches = stream
        .map_err(move |e| FlightError::Tonic(Box::new(Status::from(Error::from(errors.error(e))))));
    let encoded = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .build(batches)
        .map_err(flight_status);
    Ok(Box::pin(recorded(encoded, record)))
}

/// Counts what the result stream sends and records the query when it ends: ok after the
/// last message, error at a failed one, cancelled when the client goes away first.
fn recorded(
    encoded: impl Stream<Item = Result<FlightData, Status>> + Send + 'static,
    record: QueryRecord,
) -> impl Stream<Item = Result<FlightData, Status>> + Send + 'static {
    futures::stream::unfold(
        (Box::pin(encoded), Some(record)),
        |(mut encoded, mut record)| async move {
            let item = encoded.next().await;
            if let Some(r) = record.as_mut() {
                match &item {
                    Some(Ok(data)) => r.sent(rows_of(data), data.data_body.len() as u64),
                    Some(Err(status)) => {
                        r.end(QueryOutcome::Error, &format!("{:?}", status.code()))
                    }
                    None => r.end(QueryOutcome::Ok, "Ok"),
                }
            }
            if matches!(item, None | Some(Err(_))) {
                record = None;
            }
            item.map(|item| (item, (encoded, record)))
        },
    )
}

/// Rows of a record batch message (0 for schema and dictionary messages).
fn rows_of(data: &FlightData) -> u64 {
    arrow::ipc::root_as_message(&data.data_header)
        .ok()
        .and_then(|message| message.header_as_record_batch())
        .map_or(0, |batch| batch.length().max(0) as u64)
}

/// CreatePreparedStatement: plans once to check the SQL and report its schema; the handle
/// is the signed SQL, so no statement state lives on the server.
pub(super) async fn create_prepared(
    engine: &QueryEngine,
    scope: &Scope,
    sql: &str,
) -> Result<ActionCreatePreparedStatementResult, Status> {
    let planned = plan(engine, scope, sql, "prepare").await?;
    let IpcMessage(schema) = SchemaAsIpc::new(&planned.schema, &IpcWriteOptions::default())
        .try_into()
        .map_err(|e: arrow::error::ArrowError| {
            Error::from(CallError::Encode {
                what: "the result schema",
                detail: e.to_string(),
            })
        })?;
    Ok(ActionCreatePreparedStatementResult {
        prepared_statement_handle: engine.ticket(scope, sql, Vec::new(), true).into(),
        dataset_schema: schema,
        parameter_schema: Default::default(),
    })
}

/// The SQL and scope behind a prepared-statement handle, once it verifies for the caller.
pub(super) fn prepared(
    engine: &QueryEngine,
    handle: &[u8],
    caller: Scope,
) -> Result<(Scope, String), Status> {
    let (scope, redeemed) = engine.redeem(handle, caller, true).map_err(Error::from)?;
    Ok((scope, redeemed.sql))
}

/// Binding parameters: lakeport's prepared statements take none, so only an empty
/// parameter set is accepted.
pub(super) async fn check_no_parameters(
    request: Request<PeekableFlightDataStream>,
) -> Result<(), Status> {
    let mut batches = arrow_flight::decode::FlightRecordBatchStream::new_from_flight_data(
        request.into_inner().map_err(FlightError::from),
    );
    while let Some(batch) = batches.next().await {
        let batch = batch
            .map_err(|e| Status::from(Error::from(CallError::BadParameters(e.to_string()))))?;
        if batch.num_columns() > 0 && batch.num_rows() > 0 {
            return Err(Error::from(QueryError::Unsupported(
                "prepared statement parameters are not supported yet; put the values in the SQL text".into(),
            ))
            .into());
        }
    }
    Ok(())
}
