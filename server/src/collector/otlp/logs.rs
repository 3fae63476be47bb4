//! OTLP logs into `otel_logs`: one row per log record.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use serde::Serialize;

use super::values::{attributes, body, hex_id, micros, text, Origin};

#[derive(Debug, Serialize)]
pub(super) struct LogRow {
    time: Option<i64>,
    observed_time: Option<i64>,
    service_name: Option<String>,
    severity_number: Option<i32>,
    severity_text: Option<String>,
    body: Option<String>,
    trace_id: Option<String>,
    span_id: Option<String>,
    flags: Option<i32>,
    attributes: Option<String>,
    resource_attributes: Option<String>,
    scope_name: Option<String>,
    scope_version: Option<String>,
}

/// The rows of a request. A record without `time_unix_nano` takes its observed time (the
/// OTLP data model's rule); one with neither has no event time and is rejected by ingest.
pub(super) fn rows(request: &ExportLogsServiceRequest) -> Vec<LogRow> {
    let mut rows = Vec::new();
    for resource in &request.resource_logs {
        let origin = Origin::of(resource.resource.as_ref());
        for scope in &resource.scope_logs {
            let origin = origin.with_scope(scope.scope.as_ref());
            for record in &scope.log_records {
                let observed = micros(record.observed_time_unix_nano);
                rows.push(LogRow {
                    time: micros(record.time_unix_nano).or(observed),
                    observed_time: observed,
                    service_name: origin.service_name.clone(),
                    severity_number: (record.severity_number != 0)
                        .then_some(record.severity_number),
                    severity_text: text(&record.severity_text),
                    body: body(record.body.as_ref()),
                    trace_id: hex_id(&record.trace_id),
                    span_id: hex_id(&record.span_id),
                    flags: (record.flags != 0).then_some(record.flags as i32),
                    attributes: attributes(&record.attributes),
                    resource_attributes: origin.resource_attributes.clone(),
                    scope_name: origin.scope_name.clone(),
                    scope_version: origin.scope_version.clone(),
                });
            }
        }
    }
    rows
}
