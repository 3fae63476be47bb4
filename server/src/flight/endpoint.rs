//! Authentication in front of every Flight call, so the SQL service only ever sees a
//! request that carries its caller (`Principal`) in the request extensions.

use std::sync::Arc;

use arrow_flight::flight_service_server::FlightService;
use arrow_flight::{
    Action, Criteria, Empty, FlightData, FlightDescriptor, FlightInfo, HandshakeRequest, PollInfo,
    SchemaResult, Ticket,
};
use tonic::{Request, Response, Status, Streaming};

use super::SqlService;
use crate::auth::{Authenticator, Principal};
use crate::error::Error;

type Svc = SqlService;

#[derive(Clone)]
pub struct FlightEndpoint {
    sql: Arc<SqlService>,
    auth: Arc<Authenticator>,
}

impl FlightEndpoint {
    pub fn new(sql: Arc<SqlService>, auth: Arc<Authenticator>) -> Self {
        Self { sql, auth }
    }

    fn authenticate<T>(&self, request: &mut Request<T>) -> Result<Principal, Status> {
        let principal = self
            .auth
            .authenticate(request.metadata())
            .map_err(|e| Status::from(Error::from(e)))?;
        request.extensions_mut().insert(principal.clone());
        Ok(principal)
    }
}

#[tonic::async_trait]
impl FlightService for FlightEndpoint {
    type HandshakeStream = <Svc as FlightService>::HandshakeStream;
    type ListFlightsStream = <Svc as FlightService>::ListFlightsStream;
    type DoGetStream = <Svc as FlightService>::DoGetStream;
    type DoPutStream = <Svc as FlightService>::DoPutStream;
    type DoExchangeStream = <Svc as FlightService>::DoExchangeStream;
    type DoActionStream = <Svc as FlightService>::DoActionStream;
    type ListActionsStream = <Svc as FlightService>::ListActionsStream;

    async fn handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        FlightService::handshake(self.sql.as_ref(), request).await
    }

    async fn list_flights(
        &self,
        mut request: Request<Criteria>,
    ) -> Result<Response<Self::ListFlightsStream>, Status> {
        self.authenticate(&mut request)?;
        FlightService::list_flights(self.sql.as_ref(), request).await
    }

    async fn get_flight_info(
        &self,
        mut request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authenticate(&mut request)?;
        FlightService::get_flight_info(self.sql.as_ref(), request).await
    }

    async fn poll_flight_info(
        &self,
        mut request: Request<FlightDescriptor>,
    ) -> Result<Response<PollInfo>, Status> {
        self.authenticate(&mut request)?;
        FlightService::poll_flight_info(self.sql.as_ref(), request).await
    }

    async fn get_schema(
        &self,
        mut request: Request<FlightDescriptor>,
    ) -> Result<Response<SchemaResult>, Status> {
        self.authenticate(&mut request)?;
        FlightService::get_schema(self.sql.as_ref(), request).await
    }

    async fn do_get(
        &self,
        mut request: Request<Ticket>,
    ) -> Result<Response<Self::DoGetStream>, Status> {
        self.authenticate(&mut request)?;
        FlightService::do_get(self.sql.as_ref(), request).await
    }

    async fn do_put(
        &self,
        mut request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoPutStream>, Status> {
        self.authenticate(&mut request)?;
        FlightService::do_put(self.sql.as_ref(), request)
            .await
            .map_err(crate::error::message_size_status)
    }

    async fn do_exchange(
        &self,
        mut request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        self.authenticate(&mut request)?;
        FlightService::do_exchange(self.sql.as_ref(), request).await
    }

    async fn do_action(
        &self,
        mut request: Request<Action>,
    ) -> Result<Response<Self::DoActionStream>, Status> {
        self.authenticate(&mut request)?;
        FlightService::do_action(self.sql.as_ref(), request).await
    }

    async fn list_actions(
        &self,
        mut request: Request<Empty>,
    ) -> Result<Response<Self::ListActionsStream>, Status> {
        self.authenticate(&mut request)?;
        FlightService::list_actions(self.sql.as_ref(), request).await
    }
}
