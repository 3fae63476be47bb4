//! The OTLP gRPC services (`LogsService`, `TraceService`, `MetricsService` `Export`) on the
//! Flight port. A failure is the same `Status` a DoPut would get; a retryable one carries
//! `RetryInfo`, which OTLP exporters honour.

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status};

use super::super::land::{idempotent_producer, Doors};
use super::{export, Export, Rejected};
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
    async fn run<T>(&self, request: Request<T>, wrap: fn(T) -> Export) -> Result<Rejected, Status> {
        let headers = request.metadata().clone().into_headers();
        let caller = self.doors.caller(&headers).map_err(Status::from)?;
        let producer = idempotent_producer(&headers, "otlp").map_err(|r| {
            Status::from(Error::from(IngestError::BadMetadata(r.to_string())))
        })?;
        export(&self.doors, &caller, wrap(request.into_inner()), producer)
            .await
            .map_err(Status::from)
    }
}

#[tonic::async_trait]
impl LogsService for OtlpGrpc {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        let rejected = self.run(request, Export::Logs).await?;
        Ok(Response::new(ExportLogsServiceResponse {
            partial_success: (rejected.count > 0).then(|| ExportLogsPartialSuccess {
                rejected_log_records: rejected.count,
                error_message: rejected.message,
            }),
        }))
    }
}

#[tonic::async_trait]
impl TraceService for OtlpGrpc {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let rejected = self.run(request, Export::Traces).await?;
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: (rejected.count > 0).then(|| ExportTracePartialSuccess {
                rejected_spans: rejected.count,
                error_message: rejected.message,
            }),
        }))
    }
}

#[tonic::async_trait]
impl MetricsService for OtlpGrpc {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let rejected = self.run(request, Export::Metrics).await?;
        Ok(Response::new(ExportMetricsServiceResponse {
            partial_success: (rejected.count > 0).then(|| ExportMetricsPartialSuccess {
                rejected_data_points: rejected.count,
                error_message: rejected.message,
            }),
        }))
    }
}
