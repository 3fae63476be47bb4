//! arrow-flight's `FlightSqlService`, overriding what lakeport supports.

use std::sync::Arc;

use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::server::{DoPutError, FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::Any;
use arrow_flight::sql::{CommandStatementIngest, SqlInfo};
use arrow_flight::HandshakeRequest;
use tonic::{Request, Response, Status, Streaming};

use super::handshake::{handshake, HandshakeStream};
use super::ingest::{put_path, put_statement_ingest};
use crate::auth::Authenticator;
use crate::error::Error;
use crate::ingest::IngestError;
use crate::ingest::Ingestor;

pub struct SqlService {
    ingestor: Arc<Ingestor>,
    auth: Arc<Authenticator>,
}

impl SqlService {
    pub fn new(ingestor: Arc<Ingestor>, auth: Arc<Authenticator>) -> Self {
        Self { ingestor, auth }
    }
}

#[tonic::async_trait]
impl FlightSqlService for SqlService {
    type FlightService = SqlService;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<HandshakeStream>, Status> {
        handshake(&self.auth, request.metadata())
    }

    async fn do_put_fallback(
        &self,
        request: Request<PeekableFlightDataStream>,
        _message: Any,
    ) -> Result<Response<<Self as FlightService>::DoPutStream>, Status> {
        let stream = put_path(&self.ingestor, request).await?;
        Ok(Response::new(stream))
    }

    async fn do_put_statement_ingest(
        &self,
        command: CommandStatementIngest,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        Ok(put_statement_ingest(&self.ingestor, command, request).await?)
    }

    async fn do_put_error_callback(
        &self,
        _request: Request<PeekableFlightDataStream>,
        error: DoPutError,
    ) -> Result<Response<<Self as FlightService>::DoPutStream>, Status> {
        let error = match error {
            DoPutError::MissingCommand => IngestError::EmptyStream,
            DoPutError::MissingFlightDescriptor => IngestError::BadDescriptor(
                "the first message must carry the flight descriptor".into(),
            ),
        };
        Err(Error::from(error).into())
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}
