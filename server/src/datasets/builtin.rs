//! Canonical Arrow schemas of the built-in datasets. Every timestamp is microseconds UTC
//! (what Delta's `timestamp` and Snowflake expect); every integer is signed.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// All columns are nullable in the table; "required" only means a batch must carry them.
fn fields(spec: &[(&str, DataType)]) -> SchemaRef {
    Arc::new(Schema::new(
        spec.iter()
            .map(|(name, ty)| Field::new(*name, ty.clone(), true))
            .collect::<Vec<_>>(),
    ))
}

pub(super) const SNOWPLOW_REQUIRED: &[&str] = &["app_id", "collector_tstamp", "event_id"];

/// The Snowplow enriched event (atomic.events); the self-describing event and contexts
/// are JSON text, under the names of Snowplow's enriched-event format.
pub(super) fn snowplow() -> SchemaRef {
    use DataType::{Float64, Int32, Utf8};
    let s = || Utf8;
    let spec: Vec<(&str, DataType)> = vec![
        ("app_id", s()),
        ("platform", s()),
        ("etl_tstamp", ts()),
        ("collector_tstamp", ts()),
        ("dvce_created_tstamp", ts()),
        ("event", s()),
        ("event_id", s()),
        ("txn_id", Int32),
        ("name_tracker", s()),
        ("v_tracker", s()),
        ("v_collector", s()),
        ("v_etl", s()),
        ("user_id", s()),
        ("user_ipaddress", s()),
        ("user_fingerprint", s()),
        ("domain_userid", s()),
        ("domain_sessionidx", Int32),
        ("network_userid", s()),
        ("geo_country", s()),
        ("geo_region", s()),
        ("geo_city", s()),
        ("geo_zipcode", s()),
        ("geo_latitude", Float64),
        ("geo_longitude", Float64),
        ("geo_region_name", s()),
        ("ip_isp", s()),
        ("ip_organization", s()),
        ("ip_domain", s()),
        ("ip_netspeed", s()),
        ("page_url", s()),
        ("page_title", s()),
        ("page_referrer", s()),
        ("page_urlscheme", s()),
        ("page_urlhost", s()),
        ("page_urlport", Int32),
        ("page_urlpath", s()),
        ("page_urlquery", s()),
        ("page_urlfragment", s()),
        ("refr_urlscheme", s()),
        ("refr_urlhost", s()),
        ("refr_urlport", Int32),
        ("refr_urlpath", s()),
        ("refr_urlquery", s()),
        ("refr_urlfragment", s()),
        ("refr_medium", s()),
        ("refr_source", s()),
        ("refr_term", s()),
        ("mkt_medium", s()),
        ("mkt_source", s()),
        ("mkt_term", s()),
        ("mkt_content", s()),
        ("mkt_campaign", s()),
        ("se_category", s()),
        ("se_action", s()),
        ("se_label", s()),
        ("se_property", s()),
        ("se_value", Float64),
        ("tr_orderid", s()),
        ("tr_affiliation", s()),
        ("tr_total", Float64),
        ("tr_tax", Float64),
        ("tr_shipping", Float64),
        ("tr_city", s()),
        ("tr_state", s()),
        ("tr_country", s()),
        ("ti_orderid", s()),
        ("ti_sku", s()),
        ("ti_name", s()),
        ("ti_category", s()),
        ("ti_price", Float64),
        ("ti_quantity", Int32),
        ("pp_xoffset_min", Int32),
        ("pp_xoffset_max", Int32),
        ("pp_yoffset_min", Int32),
        ("pp_yoffset_max", Int32),
        ("useragent", s()),
        ("br_name", s()),
        ("br_family", s()),
        ("br_version", s()),
        ("br_type", s()),
        ("br_renderengine", s()),
        ("br_lang", s()),
        ("br_features_pdf", DataType::Boolean),
        ("br_cookies", DataType::Boolean),
        ("br_colordepth", s()),
        ("br_viewwidth", Int32),
        ("br_viewheight", Int32),
        ("os_name", s()),
        ("os_family", s()),
        ("os_manufacturer", s()),
        ("os_timezone", s()),
        ("dvce_type", s()),
        ("dvce_ismobile", DataType::Boolean),
        ("dvce_screenwidth", Int32),
        ("dvce_screenheight", Int32),
        ("doc_charset", s()),
        ("doc_width", Int32),
        ("doc_height", Int32),
        ("tr_currency", s()),
        ("ti_currency", s()),
        ("base_currency", s()),
        ("geo_timezone", s()),
        ("mkt_clickid", s()),
        ("mkt_network", s()),
        ("etl_tags", s()),
        ("dvce_sent_tstamp", ts()),
        ("refr_domain_userid", s()),
        ("refr_dvce_tstamp", ts()),
        ("domain_sessionid", s()),
        ("derived_tstamp", ts()),
        ("event_vendor", s()),
        ("event_name", s()),
        ("event_format", s()),
        ("event_version", s()),
        ("event_fingerprint", s()),
        ("true_tstamp", ts()),
        ("unstruct_event", s()),
        ("contexts", s()),
    ];
    fields(&spec)
}

pub(super) const OTEL_LOGS_REQUIRED: &[&str] = &["time"];

/// OTLP log records, flattened; attributes are JSON objects in strings.
pub(super) fn otel_logs() -> SchemaRef {
    use DataType::{Int32, Utf8};
    fields(&[
        ("time", ts()),
        ("observed_time", ts()),
        ("service_name", Utf8),
        ("severity_number", Int32),
        ("severity_text", Utf8),
        ("body", Utf8),
        ("trace_id", Utf8),
        ("span_id", Utf8),
        ("flags", Int32),
        ("attributes", Utf8),
        ("resource_attributes", Utf8),
        ("scope_name", Utf8),
        ("scope_version", Utf8),
    ])
}

pub(super) const OTEL_SPANS_REQUIRED: &[&str] = &["start_time", "trace_id", "span_id"];

/// OTLP spans, flattened; events and links are JSON arrays in strings.
pub(super) fn otel_spans() -> SchemaRef {
    use DataType::{Int32, Int64, Utf8};
    fields(&[
        ("start_time", ts()),
        ("end_time", ts()),
        ("duration_us", Int64),
        ("service_name", Utf8),
        ("trace_id", Utf8),
        ("span_id", Utf8),
        ("parent_span_id", Utf8),
        ("trace_state", Utf8),
        ("name", Utf8),
        ("kind", Utf8),
        ("status_code", Utf8),
        ("status_message", Utf8),
        ("attributes", Utf8),
        ("resource_attributes", Utf8),
        ("events", Utf8),
        ("links", Utf8),
        ("scope_name", Utf8),
        ("scope_version", Utf8),
        ("dropped_attributes_count", Int32),
    ])
}

pub(super) const OTEL_METRICS_REQUIRED: &[&str] = &["time", "metric_name"];

/// OTLP metric data points, one row each; histogram buckets are JSON in strings.
pub(super) fn otel_metrics() -> SchemaRef {
    use DataType::{Float64, Int64, Utf8};
    fields(&[
        ("time", ts()),
        ("start_time", ts()),
        ("service_name", Utf8),
        ("metric_name", Utf8),
        ("metric_description", Utf8),
        ("metric_unit", Utf8),
        ("metric_type", Utf8),
        ("value_double", Float64),
        ("value_int", Int64),
        ("count", Int64),
        ("sum", Float64),
        ("min", Float64),
        ("max", Float64),
        ("bucket_counts", Utf8),
        ("explicit_bounds", Utf8),
        ("aggregation_temporality", Utf8),
        ("is_monotonic", DataType::Boolean),
        ("attributes", Utf8),
        ("resource_attributes", Utf8),
        ("scope_name", Utf8),
        ("scope_version", Utf8),
        // Exponential histograms: scale, zero bucket and the two offset bucket ranges.
        ("scale", DataType::Int32),
        ("zero_count", Int64),
        ("positive_offset", DataType::Int32),
        ("positive_bucket_counts", Utf8),
        ("negative_offset", DataType::Int32),
        ("negative_bucket_counts", Utf8),
        // Summaries: [[quantile, value], ...].
        ("quantile_values", Utf8),
        ("flags", DataType::Int32),
    ])
}

pub(super) const CLOUDEVENTS_REQUIRED: &[&str] = &["id", "source", "specversion", "type", "time"];

/// CloudEvents 1.0 context attributes plus `data` (text or JSON).
pub(super) fn cloudevents() -> SchemaRef {
    use DataType::Utf8;
    fields(&[
        ("id", Utf8),
        ("source", Utf8),
        ("specversion", Utf8),
        ("type", Utf8),
        ("time", ts()),
        ("subject", Utf8),
        ("datacontenttype", Utf8),
        ("dataschema", Utf8),
        ("data", Utf8),
        // Extension attributes as a JSON object.
        ("extensions", Utf8),
    ])
}

/// The tenant's dead-letter table: rows that could not be placed, with the reason.
pub(super) fn rejected() -> SchemaRef {
    use DataType::{Int64, Utf8};
    fields(&[
        ("rejected_at", ts()),
        ("dataset", Utf8),
        ("reason", Utf8),
        ("producer_id", Utf8),
        ("sequence", Int64),
        ("row", Utf8),
    ])
}
