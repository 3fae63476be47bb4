//! The Snowplow collector: `POST /com.snowplowanalytics.snowplow/tp2` (a `payload_data`
//! batch), `GET /i` (one event in the query string, answered with a 1×1 GIF) and CORS
//! preflights, into `snowplow`. A malformed event goes to `_rejected` with its reason in
//! the same commit as the rest of the batch; the answer comes once both are committed.

mod browser;
mod protocol;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;
use tracing::debug;

use super::body::read;
use super::land::{idempotent_producer, Doors, Peer};
use super::metrics::Served;
use super::recent_events::{Check, Claim, RecentEvents};
use super::respond::Failure;
use super::Refusal;
use crate::error::Error;
use crate::ingest::Refused;
use protocol::{event_row, Arrival, Params, SnowplowRow};

const DATASET: &str = "snowplow";
const POST_PATH: &str = "/com.snowplowanalytics.snowplow/tp2";
const PAYLOAD_SCHEMA: &str = "iglu:com.snowplowanalytics.snowplow/payload_data/";

/// A transparent 1×1 GIF, the answer trackers' pixel requests expect.
const PIXEL: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x01, 0x44, 0x00, 0x3b,
];

pub(super) fn routes() -> Router<Doors> {
    Router::new()
        .route(POST_PATH, post(receive_post).options(preflight))
        .route("/i", get(receive_pixel).options(preflight))
        .route("/ice.png", get(receive_pixel).options(preflight))
}

async fn preflight(headers: HeaderMap) -> Response {
    let mut response = StatusCode::OK.into_response();
    browser::preflight(&headers, response.headers_mut());
    response
}

async fn receive_post(
    State(doors): State<Doors>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut served = Served::start("snowplow");
    let events = match read(&headers, body, &doors.settings).await {
        Ok(bytes) => {
            served.bytes = bytes.len();
            payload_data(&bytes)
        }
        Err(refusal) => Err(refusal),
    };
    let outcome = match events {
        Ok(events) => land(&doors, peer, &headers, events, &mut served).await,
        Err(refusal) => Err(Failure::Refused(refusal)),
    };
    answer(outcome, &headers, served, None)
}

async fn receive_pixel(
    State(doors): State<Doors>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let mut served = Served::start("snowplow");
    let query = query.unwrap_or_default();
    served.bytes = query.len();
    let params: Params = url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    // A bare pixel request (a health probe, a prefetch) carries no event.
    let events = match params.is_empty() {
        true => Vec::new(),
        false => vec![Ok(params)],
    };
    let outcome = land(&doors, peer, &headers, events, &mut served).await;
    answer(outcome, &headers, served, Some(PIXEL))
}

/// The answer: 200 with CORS headers and the cookie (a pixel for GET), or the failure's
/// status, still with CORS headers so a browser's tracker can read it.
fn answer(
    outcome: Result<Option<HeaderValue>, Failure>,
    headers: &HeaderMap,
    served: Served,
    pixel: Option<&'static [u8]>,
) -> Response {
    let mut response = match outcome {
        Ok(cookie) => {
            let mut response = match pixel {
                Some(gif) => ([(header::CONTENT_TYPE, "image/gif")], gif).into_response(),
                None => StatusCode::OK.into_response(),
            };
            if let Some(cookie) = cookie {
                response.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            response
        }
        Err(failure) => failure.into_response(),
    };
    browser::cors(headers, response.headers_mut());
    served.finish(response.status().as_str());
    response
}

/// Lands the events of one request; returns the `Set-Cookie` to answer with.
async fn land(
    doors: &Doors,
    peer: Peer,
    headers: &HeaderMap,
    events: Vec<Result<Params, Refused>>,
    served: &mut Served,
) -> Result<Option<HeaderValue>, Failure> {
    let caller = doors.caller(headers)?;
    served.tenant = Some(caller.tenant.clone());
    let producer = idempotent_producer(headers, DATASET)?;
    let (network_userid, cookie) = browser::network_userid(headers, doors.settings.cookie.as_ref());
    if events.is_empty() {
        return Ok(cookie);
    }
    let arrival = Arrival {
        collector_tstamp: chrono::Utc::now().timestamp_micros(),
        ip: (!browser::anonymous(headers)).then(|| {
            browser::client_ip(peer.0, headers, &doors.settings.trusted_proxies).to_string()
        }),
        useragent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        network_userid,
    };
    let mut rows = Vec::with_capacity(events.len());
    let mut refused = Vec::new();
    let limit = doors.settings.max_event;
    for event in events {
        match event {
            Ok(params) if event_size(&params) > limit => refused.push(oversized(&params, limit)),
            Ok(params) => match event_row(&params, &arrival) {
                Ok(row) => rows.push(row),
                Err(reason) => refused.push(Refused {
                    reason,
                    raw: serde_json::to_string(&params).unwrap_or_default(),
                }),
            },
            Err(refusal) => refused.push(refusal),
        }
    }
    let (rows, claim) = match &doors.recent {
        Some(recent) => unseen(recent, &caller.tenant, rows)?,
        None => (rows, None),
    };
    let schema = doors.schema(&caller, DATASET).await?;
    let batch = super::rows_to_batch(&rows, schema).map_err(Error::from)?;
    let summary = doors
        .land_with_refused(&caller, DATASET, batch, refused, producer)
        .await?;
    if let Some(claim) = claim {
        claim.committed();
    }
    served.events = summary.rows_committed;
    served.rejected = summary.rows_rejected + summary.rows_expired;
    Ok(cookie)
}

/// The rows whose event ids were not committed within `collector.dedupe_window`, and the
/// claim on their ids; a request meeting ids still landing through another is refused.
fn unseen(
    recent: &Arc<RecentEvents>,
    tenant: &str,
    rows: Vec<SnowplowRow>,
) -> Result<(Vec<SnowplowRow>, Option<Claim>), Refusal> {
    let eids: Vec<Option<u128>> = rows
        .iter()
        .map(|r| uuid::Uuid::parse_str(&r.event_id).ok().map(|u| u.as_u128()))
        .collect();
    match recent.check(tenant, &eids) {
        Check::InFlight(count) => Err(Refusal::EventsInFlight(count)),
        Check::Fresh { keep, claim } => {
            let resent = rows.len() - keep.len();
            if resent > 0 {
                debug!(
                    tenant,
                    resent, "events committed within the dedupe window dropped"
                );
            }
            let rows = rows
                .into_iter()
                .enumerate()
                .filter(|(at, _)| keep.binary_search(at).is_ok())
                .map(|(_, row)| row)
                .collect();
            Ok((rows, Some(claim)))
        }
    }
}

fn event_size(params: &Params) -> usize {
    params.iter().map(|(k, v)| k.len() + v.len()).sum()
}

/// A Snowplow event over `collector.max_event` goes to `_rejected` (as Snowplow's own
/// collector makes a size-violation bad row) with the parameters that identify it; a 413
/// would have trackers resend the batch forever.
fn oversized(params: &Params, limit: usize) -> Refused {
    const IDENTIFYING: [&str; 7] = ["e", "eid", "aid", "p", "tna", "tv", "dtm"];
    let kept: Params = params
        .iter()
        .filter(|(k, v)| IDENTIFYING.contains(&k.as_str()) && v.len() <= 256)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Refused {
        reason: format!(
            "the event is {} bytes, over collector.max_event ({limit}); the row keeps only its identifying parameters",
            event_size(params)
        ),
        raw: serde_json::to_string(&kept).unwrap_or_default(),
    }
}

/// The events of a `payload_data` body: each an object of parameters. An event that is
/// not one is refused on its own; a body that is not `payload_data` is refused whole.
fn payload_data(bytes: &[u8]) -> Result<Vec<Result<Params, Refused>>, Refusal> {
    let body: Value =
        serde_json::from_slice(bytes).map_err(|e| Refusal::Malformed(format!("not JSON: {e}")))?;
    let schema = body.get("schema").and_then(Value::as_str).unwrap_or("");
    let Some(Value::Array(events)) = body.get("data") else {
        return Err(Refusal::Malformed(format!(
            "a tp2 body is self-describing JSON with schema {PAYLOAD_SCHEMA}... and a data array of events"
        )));
    };
    if !schema.starts_with(PAYLOAD_SCHEMA) {
        return Err(Refusal::Malformed(format!(
            "schema {schema:?} is not {PAYLOAD_SCHEMA}..."
        )));
    }
    Ok(events.iter().map(params_of).collect())
}

fn params_of(event: &Value) -> Result<Params, Refused> {
    let refused = |reason: &str| Refused {
        reason: reason.to_string(),
        raw: event.to_string(),
    };
    let Value::Object(fields) = event else {
        return Err(refused("an event must be a JSON object of parameters"));
    };
    fields
        .iter()
        .map(|(name, value)| match value {
            Value::String(s) => Ok((name.clone(), s.clone())),
            Value::Number(n) => Ok((name.clone(), n.to_string())),
            Value::Bool(b) => Ok((name.clone(), if *b { "1" } else { "0" }.to_string())),
            Value::Null => Ok((name.clone(), String::new())),
            _ => Err(refused(&format!("parameter {name} must be a string"))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_keeps_good_events_and_refuses_bad_ones_alone() {
        let body =
            br#"{"schema":"iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4",
                        "data":[{"e":"pv","vid":2},"oops",{"e":"se","x":{"a":1}}]}"#;
        let events = payload_data(body).unwrap();
        assert_eq!(events[0].as_ref().unwrap()["vid"], "2");
        assert!(events[1]
            .as_ref()
            .unwrap_err()
            .reason
            .contains("JSON object"));
        assert!(events[2]
            .as_ref()
            .unwrap_err()
            .reason
            .contains("parameter x"));
        let wrong = payload_data(br#"{"schema":"iglu:x/y/jsonschema/1-0-0","data":[]}"#);
        assert!(wrong.unwrap_err().to_string().contains("payload_data"));
        assert!(payload_data(b"{}").is_err());
    }
}
