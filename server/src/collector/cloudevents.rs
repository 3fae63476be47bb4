//! CloudEvents 1.0 over HTTP at `POST /cloudevents` into `cloudevents`: structured mode
//! (`application/cloudevents+json`), batched mode (`application/cloudevents-batch+json`)
//! and binary mode (`ce-*` headers, the body as `data`), plus the webhook validation
//! handshake (`OPTIONS` with `WebHook-Request-Origin`). An event without `time` takes its
//! arrival time. A batch with one invalid event is refused whole (400 naming it): nothing
//! of it is written.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use super::body::{media_type, read};
use super::land::{idempotent_producer, Doors};
use super::metrics::Served;
use super::respond::Failure;
use super::Refusal;
use crate::error::Error;

const STRUCTURED: &str = "application/cloudevents+json";
const BATCH: &str = "application/cloudevents-batch+json";
const DATASET: &str = "cloudevents";
/// Attributes with a column of their own; any other is an extension.
const COLUMNS: &[&str] = &[
    "id",
    "source",
    "specversion",
    "type",
    "time",
    "subject",
    "datacontenttype",
    "dataschema",
    "data",
    "data_base64",
];

pub(super) fn routes() -> Router<Doors> {
    Router::new().route("/cloudevents", post(receive).options(validate))
}

/// One row of `cloudevents`.
#[derive(Debug, PartialEq, Serialize)]
struct EventRow {
    id: String,
    source: String,
    specversion: String,
    #[serde(rename = "type")]
    kind: String,
    time: i64,
    subject: Option<String>,
    datacontenttype: Option<String>,
    dataschema: Option<String>,
    data: Option<String>,
    extensions: Option<String>,
}

async fn receive(State(doors): State<Doors>, headers: HeaderMap, body: Body) -> Response {
    let mut served = Served::start("cloudevents");
    let response = match land(&doors, &headers, body, &mut served).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(f) => f.into_response(),
    };
    served.finish(response.status().as_str());
    response
}

async fn land(
    doors: &Doors,
    headers: &HeaderMap,
    body: Body,
    served: &mut Served,
) -> Result<(), Failure> {
    let caller = doors.caller(headers)?;
    served.tenant = Some(caller.tenant.clone());
    let producer = idempotent_producer(headers, "cloudevents")?;
    let bytes = read(headers, body, &doors.settings).await?;
    served.bytes = bytes.len();
    let now = Utc::now();
    let media = media_type(headers);
    let rows = match media.as_str() {
        STRUCTURED => vec![structured(parse(&bytes)?, now).map_err(|e| at(None, e))?],
        BATCH => batch(parse(&bytes)?, now)?,
        _ => vec![binary(headers, &bytes, now)?],
    };
    let limit = doors.settings.max_event;
    for (i, row) in rows.iter().enumerate() {
        let size = row.size();
        if size > limit {
            let which = match media.as_str() {
                BATCH => format!("event {i} of the batch"),
                _ => "the event".to_string(),
            };
            return Err(Refusal::EventTooLarge { which, size, limit }.into());
        }
    }
    let schema = doors.schema(&caller, DATASET).await?;
    let batch = super::rows_to_batch(&rows, schema).map_err(Error::from)?;
    let summary = doors.land(&caller, DATASET, batch, producer).await?;
    served.events = summary.rows_committed;
    served.rejected = summary.rows_rejected + summary.rows_expired;
    Ok(())
}

fn parse(bytes: &[u8]) -> Result<Value, Refusal> {
    serde_json::from_slice(bytes).map_err(|e| Refusal::Malformed(format!("not JSON: {e}")))
}

fn at(index: Option<usize>, why: String) -> Refusal {
    match index {
        Some(i) => Refusal::Malformed(format!("event {i} of the batch: {why}")),
        None => Refusal::Malformed(why),
    }
}

fn batch(value: Value, now: DateTime<Utc>) -> Result<Vec<EventRow>, Refusal> {
    let Value::Array(events) = value else {
        return Err(Refusal::Malformed(
            "a batch must be a JSON array of events".into(),
        ));
    };
    events
        .into_iter()
        .enumerate()
        .map(|(i, event)| structured(event, now).map_err(|e| at(Some(i), e)))
        .collect()
}

impl EventRow {
    /// The event's size as stored: its attributes, data and extensions.
    fn size(&self) -> usize {
        let optional = [
            &self.subject,
            &self.datacontenttype,
            &self.dataschema,
            &self.data,
            &self.extensions,
        ];
        self.id.len()
            + self.source.len()
            + self.specversion.len()
            + self.kind.len()
            + optional
                .iter()
                .filter_map(|o| o.as_ref())
                .map(String::len)
                .sum::<usize>()
    }
}

/// A structured-mode event (a JSON object).
fn structured(value: Value, now: DateTime<Utc>) -> Result<EventRow, String> {
    let Value::Object(mut event) = value else {
        return Err("an event must be a JSON object".into());
    };
    let data = match (event.remove("data"), event.remove("data_base64")) {
        (Some(_), Some(_)) => return Err("an event has either data or data_base64".into()),
        (Some(Value::String(s)), None) => Some(s),
        (Some(Value::Null), None) | (None, None) => None,
        (Some(other), None) => Some(other.to_string()),
        (None, Some(Value::String(b64))) => Some(b64),
        (None, Some(_)) => return Err("data_base64 must be a string".into()),
    };
    let text = |event: &mut Map<String, Value>, name: &str| -> Result<Option<String>, String> {
        match event.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(format!("attribute {name} must be a string")),
        }
    };
    let mut required = |name: &str| -> Result<String, String> {
        text(&mut event, name)?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| format!("required attribute {name} is missing"))
    };
    let (id, source, specversion, kind) = (
        required("id")?,
        required("source")?,
        required("specversion")?,
        required("type")?,
    );
    let time = text(&mut event, "time")?;
    let row = EventRow {
        time: event_time(time.as_deref(), now)?,
        subject: text(&mut event, "subject")?,
        datacontenttype: text(&mut event, "datacontenttype")?,
        dataschema: text(&mut event, "dataschema")?,
        data,
        extensions: (!event.is_empty()).then(|| Value::Object(event).to_string()),
        id,
        source,
        specversion,
        kind,
    };
    check_version(&row.specversion)?;
    Ok(row)
}

/// A binary-mode event: attributes in `ce-*` headers, the body as data.
fn binary(headers: &HeaderMap, body: &[u8], now: DateTime<Utc>) -> Result<EventRow, Refusal> {
    let header = |name: &str| -> Option<String> {
        headers
            .get(format!("ce-{name}"))
            .and_then(|v| v.to_str().ok())
            .map(|v| percent_decode(v.trim()))
    };
    if header("specversion").is_none() {
        return Err(Refusal::MediaType {
            found: media_type(headers),
            expected: "application/cloudevents+json, application/cloudevents-batch+json, or any type with ce-specversion and the other ce-* headers (binary mode)",
        });
    }
    let required = |name: &str| -> Result<String, Refusal> {
        header(name)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Refusal::Malformed(format!("binary-mode header ce-{name} is missing")))
    };
    let mut extensions = Map::new();
    for (name, value) in headers {
        let Some(attribute) = name.as_str().strip_prefix("ce-") else {
            continue;
        };
        if COLUMNS.contains(&attribute) {
            continue;
        }
        if let Ok(value) = value.to_str() {
            extensions.insert(attribute.to_string(), Value::String(percent_decode(value)));
        }
    }
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let data = match std::str::from_utf8(body) {
        _ if body.is_empty() => None,
        Ok(text) => Some(text.to_string()),
        Err(_) => Some(base64::engine::general_purpose::STANDARD.encode(body)),
    };
    let row = EventRow {
        id: required("id")?,
        source: required("source")?,
        specversion: required("specversion")?,
        kind: required("type")?,
        time: event_time(header("time").as_deref(), now).map_err(Refusal::Malformed)?,
        subject: header("subject"),
        datacontenttype: content_type,
        dataschema: header("dataschema"),
        data,
        extensions: (!extensions.is_empty()).then(|| Value::Object(extensions).to_string()),
    };
    check_version(&row.specversion).map_err(Refusal::Malformed)?;
    Ok(row)
}

fn check_version(version: &str) -> Result<(), String> {
    match version {
        "1.0" => Ok(()),
        other => Err(format!("specversion {other:?} is not supported; send 1.0")),
    }
}

/// Microseconds of an RFC 3339 `time`, or of the arrival when the event has none.
fn event_time(time: Option<&str>, now: DateTime<Utc>) -> Result<i64, String> {
    match time {
        None => Ok(now.timestamp_micros()),
        Some(text) => DateTime::parse_from_rfc3339(text)
            .map(|t| t.timestamp_micros())
            .map_err(|e| format!("time {text:?} is not RFC 3339: {e}")),
    }
}

/// The HTTP binding percent-encodes header values outside printable ASCII.
fn percent_decode(value: &str) -> String {
    url::form_urlencoded::parse(format!("v={}", value.replace('+', "%2B")).as_bytes())
        .next()
        .map_or_else(|| value.to_string(), |(_, v)| v.into_owned())
}

/// The CloudEvents webhook handshake: the sender asks whether it may deliver from its
/// origin; lakeport allows any (deliveries still need a credential) at any rate.
async fn validate(headers: HeaderMap) -> Response {
    let Some(origin) = headers.get("webhook-request-origin").cloned() else {
        return (
            StatusCode::BAD_REQUEST,
            "OPTIONS /cloudevents is the webhook handshake: send WebHook-Request-Origin\n",
        )
            .into_response();
    };
    let mut response = StatusCode::OK.into_response();
    let out = response.headers_mut();
    out.insert("webhook-allowed-origin", origin);
    out.insert("webhook-allowed-rate", HeaderValue::from_static("*"));
    out.insert(
        axum::http::header::ALLOW,
        HeaderValue::from_static("POST, OPTIONS"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_714_558_830, 0).unwrap()
    }

    #[test]
    fn a_structured_event_keeps_its_attributes_and_extensions() {
        let row = structured(
            json!({"specversion": "1.0", "id": "1", "source": "/s", "type": "t",
                   "time": "2024-05-01T10:20:30.5Z", "data": {"a": 1}, "traceparent": "00-x"}),
            now(),
        )
        .unwrap();
        assert_eq!(row.time, 1_714_558_830_500_000);
        assert_eq!(row.data.as_deref(), Some(r#"{"a":1}"#));
        assert_eq!(row.extensions.as_deref(), Some(r#"{"traceparent":"00-x"}"#));
    }

    #[test]
    fn an_event_without_time_takes_its_arrival_and_a_bad_one_says_why() {
        let event = json!({"specversion": "1.0", "id": "1", "source": "/s", "type": "t"});
        assert_eq!(
            structured(event, now()).unwrap().time,
            now().timestamp_micros()
        );
        let missing = structured(json!({"specversion": "1.0", "id": "1", "type": "t"}), now());
        assert_eq!(missing.unwrap_err(), "required attribute source is missing");
        let old = structured(
            json!({"specversion": "0.3", "id": "1", "source": "/s", "type": "t"}),
            now(),
        );
        assert!(old.unwrap_err().contains("0.3"));
        let refused = batch(json!([{"specversion": "1.0"}]), now()).unwrap_err();
        assert!(refused.to_string().contains("event 0 of the batch"));
    }
}
