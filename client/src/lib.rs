//! Rust SDK for lakeport: connect, authenticate, and stream Arrow record batches into a
//! tenant's dataset with exactly-once producer sequences.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::error::FlightError;
use arrow_flight::sql::{CommandGetTables, CommandStatementQuery, ProstMessageExt};
use arrow_flight::{Action, FlightClient, FlightData, FlightDescriptor, FlightInfo, PutResult};
use futures::{Stream, StreamExt, TryStreamExt};
use prost::Message;
use tonic::transport::{Channel, Endpoint};

pub use lakeport_proto::{
    DatasetUsage, IngestAck, IngestMetadata, MaintenanceRunRequest, MaintenanceRunResult,
    MaintenanceStep, QualityCheck, QualityReport, QualityRunRequest, QuotaReport,
    QuotaReportRequest, ReadinessCheck, ReadinessRequest, ReadinessResult, RetentionRunRequest,
    StoreRemoval, TableReadiness, Tenant, TenantArchiveRequest, TenantCreateRequest,
    TenantDeleteRequest, TenantDeleteResult, TenantEncryption, TenantExportRequest,
    TenantExportResult, TenantGetRequest, TenantList, TenantListRequest, TenantToken,
    TenantUpdateRequest, TenantUsage, TokenIssueRequest, TokenIssueResult, TokenRevokeRequest,
};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {endpoint}: {source}")]
    Connect {
        endpoint: String,
        source: tonic::transport::Error,
    },
    #[error("{}: {}", .0.code(), .0.message())]
    Status(tonic::Status),
    #[error("{0}")]
    Flight(FlightError),
    #[error("invalid answer from server: {0}")]
    BadAck(prost::DecodeError),
}

impl ClientError {
    /// The gRPC status the server answered with, if the error came from the server.
    pub fn status(&self) -> Option<&tonic::Status> {
        match self {
            ClientError::Status(s) => Some(s),
            ClientError::Flight(FlightError::Tonic(s)) => Some(s),
            _ => None,
        }
    }
}

impl From<FlightError> for ClientError {
    fn from(e: FlightError) -> Self {
        match e {
            FlightError::Tonic(status) => ClientError::Status(*status),
            other => ClientError::Flight(other),
        }
    }
}

/// A batch and the producer sequence it carries.
pub type SequencedBatch = (RecordBatch, Option<IngestMetadata>);

/// A connection to a lakeport server.
#[derive(Debug)]
pub struct Client {
    flight: FlightClient,
}

impl Client {
    /// Connects to `http://host:port` (or `grpc://host:port`).
    pub async fn connect(endpoint: &str) -> Result<Self, ClientError> {
        let uri = endpoint
            .replacen("grpc://", "http://", 1)
            .replacen("grpc+tcp://", "http://", 1);
        let connect_error = |source| ClientError::Connect {
            endpoint: endpoint.to_string(),
            source,
        };
        let channel: Channel = Endpoint::from_shared(uri)
            .map_err(connect_error)?
            .connect()
            .await
            .map_err(connect_error)?;
        Ok(Self {
            flight: FlightClient::new(channel),
        })
    }

    /// Sends `authorization: Bearer <token>` with every call.
    pub fn with_token(mut self, token: &str) -> Self {
        let _ = self
            .flight
            .add_header("authorization", &format!("Bearer {token}"));
        self
    }

    /// Sends `lakeport-tenant: <tenant>` with every call: for an admin, the tenant whose
    /// tables unqualified SQL names resolve to.
    pub fn with_tenant(mut self, tenant: &str) -> Self {
        let _ = self.flight.add_header("lakeport-tenant", tenant);
        self
    }

    /// Plans `sql` on the server (Flight SQL `GetFlightInfo`): the result schema and ticket.
    pub async fn plan(&mut self, sql: &str) -> Result<FlightInfo, ClientError> {
        let command = CommandStatementQuery {
            query: sql.to_string(),
            transaction_id: None,
        };
        let descriptor = FlightDescriptor::new_cmd(command.as_any().encode_to_vec());
        Ok(self.flight.get_flight_info(descriptor).await?)
    }

    /// Runs `sql` and streams its result batches.
    pub async fn query(
        &mut self,
        sql: &str,
    ) -> Result<(SchemaRef, FlightRecordBatchStream), ClientError> {
        let info = self.plan(sql).await?;
        self.fetch(info).await
    }

    /// Redeems every endpoint of `info` (lakeport answers with one) as one batch stream.
    async fn fetch(
        &mut self,
        info: FlightInfo,
    ) -> Result<(SchemaRef, FlightRecordBatchStream), ClientError> {
        let schema = info
            .clone()
            .try_decode_schema()
            .map_err(|e| ClientError::Flight(FlightError::Arrow(e)))?;
        let schema = std::sync::Arc::new(schema);
        let ticket = info
            .endpoint
            .into_iter()
            .find_map(|e| e.ticket)
            .ok_or_else(|| {
                ClientError::Flight(FlightError::ProtocolError(
                    "FlightInfo without a ticket".into(),
                ))
            })?;
        Ok((schema, self.flight.do_get(ticket).await?))
    }

    /// The caller's tables (Flight SQL `GetTables`): schema (tenant), table and type columns.
    pub async fn tables(&mut self) -> Result<Vec<RecordBatch>, ClientError> {
        let command = CommandGetTables {
            include_schema: false,
            ..Default::default()
        };
        let descriptor = FlightDescriptor::new_cmd(command.as_any().encode_to_vec());
        let info = self.flight.get_flight_info(descriptor).await?;
        let (_, stream) = self.fetch(info).await?;
        Ok(stream.try_collect().await?)
    }

    /// Runs maintenance now (admin only): compaction of closed partitions, checkpoint, log
    /// cleanup and vacuum over the tables the request names (all when empty).
    pub async fn maintenance_run(
        &mut self,
        request: MaintenanceRunRequest,
    ) -> Result<MaintenanceRunResult, ClientError> {
        self.action("maintenance.run", request).await
    }

    /// Removes the expired hour partitions now (a tenant its own; an admin a named tenant's
    /// or all), and with `purge` deletes their files at once.
    pub async fn retention_run(
        &mut self,
        request: RetentionRunRequest,
    ) -> Result<MaintenanceRunResult, ClientError> {
        self.action("retention.run", request).await
    }

    /// Whether Snowflake can read each table (the caller's own; an admin's named tenant, or
    /// all), with the checks' evidence and fixes and the SQL to read them.
    pub async fn readiness(
        &mut self,
        request: ReadinessRequest,
    ) -> Result<ReadinessResult, ClientError> {
        self.action("snowflake.readiness", request).await
    }

    /// Registers a tenant (admin); unset settings follow the server's `[tenant_defaults]`.
    pub async fn tenant_create(&mut self, tenant: Tenant) -> Result<Tenant, ClientError> {
        let request = TenantCreateRequest {
            tenant: Some(tenant),
        };
        self.action("tenant.create", request).await
    }

    /// Sets the named `fields` of a tenant to their value in `tenant` (admin).
    pub async fn tenant_update(
        &mut self,
        tenant: Tenant,
        fields: Vec<String>,
    ) -> Result<Tenant, ClientError> {
        let request = TenantUpdateRequest {
            tenant: Some(tenant),
            fields,
        };
        self.action("tenant.update", request).await
    }

    /// Deletes a tenant and every object it has in every store, then its record and tokens
    /// (admin); what was removed, per store. `confirm` must repeat the id.
    pub async fn tenant_delete(
        &mut self,
        id: &str,
        confirm: &str,
    ) -> Result<TenantDeleteResult, ClientError> {
        let request = TenantDeleteRequest {
            id: id.into(),
            confirm: confirm.into(),
        };
        self.action("tenant.delete", request).await
    }

    /// Archives a tenant now (admin): answers once its live copy is gone.
    pub async fn tenant_archive(&mut self, id: &str) -> Result<Tenant, ClientError> {
        let request = TenantArchiveRequest { id: id.into() };
        self.action("tenant.archive", request).await
    }

    /// Restores an archived tenant now (admin): answers once its tables are live.
    pub async fn tenant_restore(&mut self, id: &str) -> Result<Tenant, ClientError> {
        let request = TenantArchiveRequest { id: id.into() };
        self.action("tenant.restore", request).await
    }

    /// Copies a tenant's partitions of a time range into a new standalone Delta table in
    /// another store (a tenant its own; an admin any tenant's).
    pub async fn tenant_export(
        &mut self,
        request: TenantExportRequest,
    ) -> Result<TenantExportResult, ClientError> {
        self.action("tenant.export", request).await
    }

    /// A tenant's settings in force and its tokens (admin).
    pub async fn tenant_get(&mut self, id: &str) -> Result<Tenant, ClientError> {
        let request = TenantGetRequest { id: id.into() };
        self.action("tenant.get", request).await
    }

    /// Every registered tenant (admin).
    pub async fn tenant_list(&mut self) -> Result<Vec<Tenant>, ClientError> {
        let list: TenantList = self.action("tenant.list", TenantListRequest {}).await?;
        Ok(list.tenants)
    }

    /// Issues a token for a tenant (admin); the token is in the result only.
    pub async fn token_issue(
        &mut self,
        request: TokenIssueRequest,
    ) -> Result<TokenIssueResult, ClientError> {
        self.action("token.issue", request).await
    }

    /// Revokes a tenant's token (admin).
    pub async fn token_revoke(&mut self, tenant: &str, token_id: &str) -> Result<(), ClientError> {
        let request = TokenRevokeRequest {
            tenant: tenant.into(),
            token_id: token_id.into(),
        };
        let _: () = self.action("token.revoke", request).await?;
        Ok(())
    }

    /// Storage usage against quota: the caller's own tenant, or (admin) `tenant` or all.
    pub async fn quota_report(&mut self, tenant: Option<&str>) -> Result<QuotaReport, ClientError> {
        let request = QuotaReportRequest {
            tenant: tenant.unwrap_or_default().into(),
        };
        self.action("quota.report", request).await
    }

    /// Evaluates the data-quality expectations now: the caller's own tables, or (admin)
    /// `tenant`'s or every tenant's.
    pub async fn quality_run(
        &mut self,
        tenant: Option<&str>,
    ) -> Result<QualityReport, ClientError> {
        let request = QualityRunRequest {
            tenant: tenant.unwrap_or_default().into(),
        };
        self.action("quality.run", request).await
    }

    /// One of lakeport's DoActions: a protobuf body, a single protobuf result.
    async fn action<R: Message + Default>(
        &mut self,
        name: &str,
        request: impl Message,
    ) -> Result<R, ClientError> {
        let action = Action::new(name, request.encode_to_vec());
        let mut results: Vec<_> = self.flight.do_action(action).await?.try_collect().await?;
        let body = results.pop().unwrap_or_default();
        R::decode(body).map_err(ClientError::BadAck)
    }

    /// Raw Flight client, for calls the SDK does not wrap.
    pub fn flight(&mut self) -> &mut FlightClient {
        &mut self.flight
    }

    /// Writes batches without producer sequences (a retry may duplicate them).
    pub async fn put(
        &mut self,
        tenant: Option<&str>,
        dataset: &str,
        batches: Vec<RecordBatch>,
    ) -> Result<Vec<IngestAck>, ClientError> {
        let items = batches.into_iter().map(|b| (b, None));
        self.put_stream(tenant, dataset, futures::stream::iter(items))
            .await
    }

    /// Writes batches numbered `first_sequence`, `first_sequence + 1`, … for `producer_id`;
    /// resending the same numbers after a failure never duplicates rows.
    pub async fn put_sequenced(
        &mut self,
        tenant: Option<&str>,
        dataset: &str,
        producer_id: &str,
        first_sequence: u64,
        batches: Vec<RecordBatch>,
    ) -> Result<Vec<IngestAck>, ClientError> {
        let producer_id = producer_id.to_string();
        let items = batches.into_iter().enumerate().map(move |(i, b)| {
            let meta = IngestMetadata {
                producer_id: producer_id.clone(),
                sequence: first_sequence + i as u64,
            };
            (b, Some(meta))
        });
        self.put_stream(tenant, dataset, futures::stream::iter(items))
            .await
    }

    /// Streams batches (all of one schema) and returns the server's acks once every row is
    /// durably committed.
    pub async fn put_stream<S>(
        &mut self,
        tenant: Option<&str>,
        dataset: &str,
        batches: S,
    ) -> Result<Vec<IngestAck>, ClientError>
    where
        S: Stream<Item = SequencedBatch> + Send + 'static,
    {
        let path: Vec<String> = tenant
            .into_iter()
            .map(str::to_string)
            .chain([dataset.to_string()])
            .collect();
        let descriptor = FlightDescriptor::new_path(path);
        let data = encode(descriptor, batches);
        let results = self.flight.do_put(data).await?;
        let results: Vec<PutResult> = results.try_collect().await?;
        results
            .iter()
            .map(|r| IngestAck::decode(r.app_metadata.as_ref()).map_err(ClientError::BadAck))
            .collect()
    }
}

/// Turns batches into FlightData: the descriptor rides on the schema message, each batch's
/// sequence on its record-batch message.
pub fn encode<S>(
    descriptor: FlightDescriptor,
    batches: S,
) -> impl Stream<Item = Result<FlightData, FlightError>> + Send
where
    S: Stream<Item = SequencedBatch> + Send + 'static,
{
    let mut descriptor = Some(descriptor);
    batches.flat_map(move |(batch, meta)| {
        let messages =
            match arrow_flight::utils::batches_to_flight_data(&batch.schema(), vec![batch]) {
                Ok(mut messages) => {
                    match descriptor.take() {
                        Some(d) => messages[0] = messages[0].clone().with_descriptor(d),
                        None => {
                            messages.remove(0);
                        }
                    }
                    if let (Some(meta), Some(last)) = (meta, messages.last_mut()) {
                        last.app_metadata = meta.encode_to_vec().into();
                    }
                    messages.into_iter().map(Ok).collect::<Vec<_>>()
                }
                Err(e) => vec![Err(FlightError::Arrow(e))],
            };
        futures::stream::iter(messages)
    })
}
