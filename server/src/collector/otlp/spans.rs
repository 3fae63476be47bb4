//! OTLP traces into `otel_spans`: one row per span, its events and links as JSON arrays.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link, SpanKind};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use serde::Serialize;
use serde_json::json;

use super::values::{attributes, hex_id, micros, text, Origin};

#[derive(Debug, Serialize)]
pub(super) struct SpanRow {
    start_time: Option<i64>,
    end_time: Option<i64>,
    duration_us: Option<i64>,
    service_name: Option<String>,
    trace_id: Option<String>,
    span_id: Option<String>,
    parent_span_id: Option<String>,
    trace_state: Option<String>,
    name: Option<String>,
    kind: Option<String>,
    status_code: Option<String>,
    status_message: Option<String>,
    attributes: Option<String>,
    resource_attributes: Option<String>,
    events: Option<String>,
    links: Option<String>,
    scope_name: Option<String>,
    scope_version: Option<String>,
    dropped_attributes_count: Option<i32>,
}

pub(super) fn rows(request: &ExportTraceServiceRequest) -> Vec<SpanRow> {
    let mut rows = Vec::new();
    for resource in &request.resource_spans {
        let origin = Origin::of(resource.resource.as_ref());
        for scope in &resource.scope_spans {
            let origin = origin.with_scope(scope.scope.as_ref());
            for span in &scope.spans {
                let (start, end) = (
                    micros(span.start_time_unix_nano),
                    micros(span.end_time_unix_nano),
                );
                let status = span.status.as_ref();
                rows.push(SpanRow {
                    start_time: start,
                    end_time: end,
                    duration_us: start.zip(end).map(|(s, e)| e - s),
                    service_name: origin.service_name.clone(),
                    trace_id: hex_id(&span.trace_id),
                    span_id: hex_id(&span.span_id),
                    parent_span_id: hex_id(&span.parent_span_id),
                    trace_state: text(&span.trace_state),
                    name: text(&span.name),
                    kind: SpanKind::try_from(span.kind)
                        .ok()
                        .map(|k| k.as_str_name().to_string()),
                    status_code: status
                        .and_then(|s| StatusCode::try_from(s.code).ok())
                        .map(|c| c.as_str_name().to_string()),
                    status_message: status.and_then(|s| text(&s.message)),
                    attributes: attributes(&span.attributes),
                    resource_attributes: origin.resource_attributes.clone(),
                    events: (!span.events.is_empty()).then(|| events(&span.events)),
                    links: (!span.links.is_empty()).then(|| links(&span.links)),
                    scope_name: origin.scope_name.clone(),
                    scope_version: origin.scope_version.clone(),
                    dropped_attributes_count: (span.dropped_attributes_count != 0)
                        .then_some(span.dropped_attributes_count as i32),
                });
            }
        }
    }
    rows
}

fn events(events: &[Event]) -> String {
    let list: Vec<_> = events
        .iter()
        .map(|e| {
            json!({
                "time_us": micros(e.time_unix_nano),
                "name": e.name,
                "attributes": attributes(&e.attributes)
                    .and_then(|a| serde_json::from_str::<serde_json::Value>(&a).ok()),
            })
        })
        .collect();
    serde_json::Value::Array(list).to_string()
}

fn links(links: &[Link]) -> String {
    let list: Vec<_> = links
        .iter()
        .map(|l| {
            json!({
                "trace_id": hex_id(&l.trace_id),
                "span_id": hex_id(&l.span_id),
                "trace_state": text(&l.trace_state),
                "attributes": attributes(&l.attributes)
                    .and_then(|a| serde_json::from_str::<serde_json::Value>(&a).ok()),
            })
        })
        .collect();
    serde_json::Value::Array(list).to_string()
}
