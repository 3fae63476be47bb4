//! OTLP metrics into `otel_metrics`: one row per data point of every kind (gauge, sum,
//! histogram, exponential histogram, summary); buckets and quantiles as JSON arrays.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value;
use opentelemetry_proto::tonic::metrics::v1::{AggregationTemporality, Metric, NumberDataPoint};
use serde::Serialize;

use super::values::{attributes, micros, text, Origin};

#[derive(Debug, Default, Serialize)]
pub(super) struct MetricRow {
    time: Option<i64>,
    start_time: Option<i64>,
    service_name: Option<String>,
    metric_name: Option<String>,
    metric_description: Option<String>,
    metric_unit: Option<String>,
    metric_type: Option<String>,
    value_double: Option<f64>,
    value_int: Option<i64>,
    count: Option<i64>,
    sum: Option<f64>,
    min: Option<f64>,
    max: Option<f64>,
    bucket_counts: Option<String>,
    explicit_bounds: Option<String>,
    aggregation_temporality: Option<String>,
    is_monotonic: Option<bool>,
    attributes: Option<String>,
    resource_attributes: Option<String>,
    scope_name: Option<String>,
    scope_version: Option<String>,
    scale: Option<i32>,
    zero_count: Option<i64>,
    positive_offset: Option<i32>,
    positive_bucket_counts: Option<String>,
    negative_offset: Option<i32>,
    negative_bucket_counts: Option<String>,
    quantile_values: Option<String>,
    flags: Option<i32>,
}

pub(super) fn rows(request: &ExportMetricsServiceRequest) -> Vec<MetricRow> {
    let mut rows = Vec::new();
    for resource in &request.resource_metrics {
        let origin = Origin::of(resource.resource.as_ref());
        for scope in &resource.scope_metrics {
            let origin = origin.with_scope(scope.scope.as_ref());
            for metric in &scope.metrics {
                points(metric, &origin, &mut rows);
            }
        }
    }
    rows
}

/// What every point of one metric shares.
fn base(metric: &Metric, origin: &Origin, kind: &str) -> MetricRow {
    MetricRow {
        service_name: origin.service_name.clone(),
        metric_name: Some(metric.name.clone()),
        metric_description: text(&metric.description),
        metric_unit: text(&metric.unit),
        metric_type: Some(kind.to_string()),
        resource_attributes: origin.resource_attributes.clone(),
        scope_name: origin.scope_name.clone(),
        scope_version: origin.scope_version.clone(),
        ..Default::default()
    }
}

fn temporality(value: i32) -> Option<String> {
    AggregationTemporality::try_from(value)
        .ok()
        .filter(|t| *t != AggregationTemporality::Unspecified)
        .map(|t| t.as_str_name().to_string())
}

fn json_list<T: Serialize>(values: &[T]) -> Option<String> {
    (!values.is_empty()).then(|| serde_json::to_string(values).unwrap_or_default())
}

fn signed(n: u64) -> i64 {
    n.min(i64::MAX as u64) as i64
}

fn flags(f: u32) -> Option<i32> {
    (f != 0).then_some(f as i32)
}

fn number(row: MetricRow, point: &NumberDataPoint) -> MetricRow {
    let (value_double, value_int) = match point.value {
        Some(Value::AsDouble(d)) => (Some(d), None),
        Some(Value::AsInt(i)) => (None, Some(i)),
        None => (None, None),
    };
    MetricRow {
        time: micros(point.time_unix_nano),
        start_time: micros(point.start_time_unix_nano),
        value_double,
        value_int,
        attributes: attributes(&point.attributes),
        flags: flags(point.flags),
        ..row
    }
}

fn buckets(buckets: Option<&Buckets>) -> (Option<i32>, Option<String>) {
    match buckets {
        Some(b) => (Some(b.offset), json_list(&b.bucket_counts)),
        None => (None, None),
    }
}

fn points(metric: &Metric, origin: &Origin, rows: &mut Vec<MetricRow>) {
    match &metric.data {
        None => {}
        Some(Data::Gauge(gauge)) => {
            for p in &gauge.data_points {
                rows.push(number(base(metric, origin, "gauge"), p));
            }
        }
        Some(Data::Sum(sum)) => {
            for p in &sum.data_points {
                let row = MetricRow {
                    aggregation_temporality: temporality(sum.aggregation_temporality),
                    is_monotonic: Some(sum.is_monotonic),
                    ..base(metric, origin, "sum")
                };
                rows.push(number(row, p));
            }
        }
        Some(Data::Histogram(h)) => {
            for p in &h.data_points {
                rows.push(MetricRow {
                    time: micros(p.time_unix_nano),
                    start_time: micros(p.start_time_unix_nano),
                    count: Some(signed(p.count)),
                    sum: p.sum,
                    min: p.min,
                    max: p.max,
                    bucket_counts: json_list(&p.bucket_counts),
                    explicit_bounds: json_list(&p.explicit_bounds),
                    aggregation_temporality: temporality(h.aggregation_temporality),
                    attributes: attributes(&p.attributes),
                    flags: flags(p.flags),
                    ..base(metric, origin, "histogram")
                });
            }
        }
        Some(Data::ExponentialHistogram(h)) => {
            for p in &h.data_points {
                let (positive_offset, positive_bucket_counts) = buckets(p.positive.as_ref());
                let (negative_offset, negative_bucket_counts) = buckets(p.negative.as_ref());
                rows.push(MetricRow {
                    time: micros(p.time_unix_nano),
                    start_time: micros(p.start_time_unix_nano),
                    count: Some(signed(p.count)),
                    sum: p.sum,
                    min: p.min,
                    max: p.max,
                    scale: Some(p.scale),
                    zero_count: Some(signed(p.zero_count)),
                    positive_offset,
                    positive_bucket_counts,
                    negative_offset,
                    negative_bucket_counts,
                    aggregation_temporality: temporality(h.aggregation_temporality),
                    attributes: attributes(&p.attributes),
                    flags: flags(p.flags),
                    ..base(metric, origin, "exponential_histogram")
                });
            }
        }
        Some(Data::Summary(s)) => {
            for p in &s.data_points {
                let quantiles: Vec<[f64; 2]> = p
                    .quantile_values
                    .iter()
                    .map(|q| [q.quantile, q.value])
                    .collect();
                rows.push(MetricRow {
                    time: micros(p.time_unix_nano),
                    start_time: micros(p.start_time_unix_nano),
                    count: Some(signed(p.count)),
                    sum: Some(p.sum),
                    quantile_values: json_list(&quantiles),
                    attributes: attributes(&p.attributes),
                    flags: flags(p.flags),
                    ..base(metric, origin, "summary")
                });
            }
        }
    }
}
