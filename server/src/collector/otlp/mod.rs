//! OTLP (spec 1.x) into `otel_logs`, `otel_spans` and `otel_metrics`: the gRPC services
//! on the Flight port (`grpc.rs`) and `POST /v1/logs|traces|metrics` on the collector port
//! (`http.rs`), protobuf or JSON. Both decode an export request, flatten it into rows
//! (`logs.rs`, `spans.rs`, `metrics.rs`) and land them as one batch. OTLP without an
//! `Idempotency-Key` is at-least-once, as its spec expects: an exporter that retries a
//! request whose answer it lost lands those rows twice.

mod grpc;
mod http;
mod logs;
mod metrics;
mod spans;
mod values;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;

use super::land::{Caller, Doors};
use super::rows_to_batch;
use super::Refusal;
use crate::error::Error;
use crate::ingest::IngestError;

pub use grpc::services;
pub(super) use http::routes;

/// One OTLP signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Signal {
    Logs,
    Traces,
    Metrics,
}

/// A decoded export request.
#[derive(Debug)]
pub(super) enum Export {
    Logs(ExportLogsServiceRequest),
    Traces(ExportTraceServiceRequest),
    Metrics(ExportMetricsServiceRequest),
}

impl Signal {
    /// The door's name in metrics and logs.
    pub(super) fn door(self) -> &'static str {
        match self {
            Signal::Logs => "otlp_logs",
            Signal::Traces => "otlp_traces",
            Signal::Metrics => "otlp_metrics",
        }
    }
}

impl Export {
    /// Decodes a body in the protobuf encoding or the OTLP JSON mapping.
    pub(super) fn decode(signal: Signal, body: &[u8], json: bool) -> Result<Self, Refusal> {
        fn parse<T: Message + Default + for<'de> serde::Deserialize<'de>>(
            body: &[u8],
            json: bool,
        ) -> Result<T, Refusal> {
            if json {
                serde_json::from_slice(body).map_err(|e| {
                    Refusal::Malformed(format!("not an OTLP JSON export request: {e}"))
                })
            } else {
                T::decode(body).map_err(|e| {
                    Refusal::Malformed(format!("not an OTLP protobuf export request: {e}"))
                })
            }
        }
        Ok(match signal {
            Signal::Logs => Export::Logs(parse(body, json)?),
            Signal::Traces => Export::Traces(parse(body, json)?),
            Signal::Metrics => Export::Metrics(parse(body, json)?),
        })
    }

    pub(super) fn dataset(&self) -> &'static str {
        match self {
            Export::Logs(_) => "otel_logs",
            Export::Traces(_) => "otel_spans",
            Export::Metrics(_) => "otel_metrics",
        }
    }

    /// The request's rows as one batch of the dataset's schema.
    fn batch(&self, schema: SchemaRef) -> Result<RecordBatch, IngestError> {
        match self {
            Export::Logs(r) => rows_to_batch(&logs::rows(r), schema),
            Export::Traces(r) => rows_to_batch(&spans::rows(r), schema),
            Export::Metrics(r) => rows_to_batch(&metrics::rows(r), schema),
        }
    }
}

/// What OTLP calls a partial success: the rows not stored, and why (and, for the
/// metrics, the rows stored).
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Rejected {
    pub(super) count: i64,
    pub(super) message: String,
    pub(super) stored: u64,
}

impl Rejected {
    fn partial(&self) -> Option<(i64, String)> {
        (self.count > 0).then(|| (self.count, self.message.clone()))
    }

    pub(super) fn logs(&self) -> ExportLogsServiceResponse {
        ExportLogsServiceResponse {
            partial_success: self
                .partial()
                .map(|(count, message)| ExportLogsPartialSuccess {
                    rejected_log_records: count,
                    error_message: message,
                }),
        }
    }

    pub(super) fn traces(&self) -> ExportTraceServiceResponse {
        ExportTraceServiceResponse {
            partial_success: self
                .partial()
                .map(|(count, message)| ExportTracePartialSuccess {
                    rejected_spans: count,
                    error_message: message,
                }),
        }
    }

    pub(super) fn metrics(&self) -> ExportMetricsServiceResponse {
        ExportMetricsServiceResponse {
            partial_success: self
                .partial()
                .map(|(count, message)| ExportMetricsPartialSuccess {
                    rejected_data_points: count,
                    error_message: message,
                }),
        }
    }
}

/// Lands an export request and reports the rows it could not store.
pub(super) async fn export(
    doors: &Doors,
    caller: &Caller,
    export: Export,
    producer: Option<String>,
) -> Result<Rejected, Error> {
    let dataset = export.dataset();
    let schema = doors.schema(caller, dataset).await?;
    let batch = export.batch(schema)?;
    drop(export);
    if batch.num_rows() == 0 {
        return Ok(Rejected::default());
    }
    let summary = doors.land(caller, dataset, batch, producer).await?;
    let mut reasons = Vec::new();
    if summary.rows_rejected > 0 {
        reasons.push(format!(
            "{} without a usable time went to the tenant's _rejected table",
            summary.rows_rejected
        ));
    }
    if summary.rows_expired > 0 {
        reasons.push(format!(
            "{} older than the tenant's retention were dropped",
            summary.rows_expired
        ));
    }
    Ok(Rejected {
        count: (summary.rows_rejected + summary.rows_expired) as i64,
        message: reasons.join("; "),
        stored: summary.rows_committed,
    })
}
