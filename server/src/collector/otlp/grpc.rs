//! The OTLP gRPC services (`LogsService`, `TraceService`, `MetricsService` `Export`) on the
//! Flight port. A failure is the same `Status` a DoPut would get; a retryable one carries
//! `RetryInfo`, which OTLP exporters honour.

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status};

use super::super::land::{idempotent_producer, Doors};
use super::super::metrics::Served;
use super::{export, Export, Rejected, Signal};
use crate::error::Error;
use crate::ingest::IngestError;

/// The three services, ready for the Flight port's router; `max_message` as for DoPut.
pub fn services(
    doors: Doors,
    max_message: usize,
) -> (
    LogsServiceServer<OtlpGrpc>,
    TraceServiceServer<OtlpGrpc>,
    MetricsServiceServer<OtlpGrpc>,
) {
    let door = OtlpGrpc { doors };
    (
        LogsServiceServer::new(door.clone())
            .accept_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(max_message),
        TraceServiceServer::new(door.clone())
            .accept_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(max_message),
        MetricsServiceServer::new(door)
            .accept_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(max_message),
    )
}

#[derive(Debug, Clone)]
pub struct OtlpGrpc {
    doors: Doors,
}

impl OtlpGrpc {
    async fn run<T: prost::Message>(
        &self,
        request: Request<T>,
        wrap: fn(T) -> Export,
        door: &'static str,
    ) -> Result<Rejected, Status> {
        let mut served = Served::start(door);
        let result = self.export(request, wrap, &mut served).await;
        let code = match &result {
            Ok(_) => tonic::Code::Ok,
            Err(status) => status.code(),
        };
        served.finish(&format!("grpc_{}", code as i32));
        result
    }

    async fn export<T: prost::Message>(
        &self,
        request: Request<T>,
        wrap: fn(T) -> Export,
        served: &mut Served,
    ) -> Result<Rejected, Status> {
        let headers = request.metadata().clone().into_headers();
        let caller = self.doors.caller(&headers).map_err(Status::from)?;
        served.tenant = Some(caller.tenant.clone());
        let producer = idempotent_producer(&headers, "otlp")
            .map_err(|r| Status::from(Error::from(IngestError::BadMetadata(r.to_string()))))?;
        let message = request.into_inner();
        served.bytes = message.encoded_len();
        let rejected = export(&self.doors, &caller, wrap(message), producer)
            .await
            .map_err(Status::from)?;
        served.events = rejected.stored;
        served.rejected = rejected.count as u64;
        Ok(rejected)
    }
}

#[tonic::async_trait]
impl LogsService for OtlpGrpc {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        let rejected = self.run(request, Export::Logs, Signal::Logs.door()).await?;
        Ok(Response::new(rejected.logs()))
    }
}

#[tonic::async_trait]
impl TraceService for OtlpGrpc {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let rejected = self
            .run(request, Export::Traces, Signal::Traces.door())
            .await?;
        Ok(Response::new(rejected.traces()))
    }
}

#[tonic::async_trait]
impl MetricsService for OtlpGrpc {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let rejected = self
            .run(request, Export::Metrics, Signal::Metrics.door())
            .await?;
        Ok(Response::new(rejected.metrics()))
    }
}
