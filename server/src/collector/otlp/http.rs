//! OTLP/HTTP: `POST /v1/logs`, `/v1/traces`, `/v1/metrics` with `application/x-protobuf`
//! or `application/json`, gzip or not. The answer is in the request's encoding: an export
//! response (with `partialSuccess` when rows were not stored) or a `google.rpc.Status`.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use prost::Message;

use super::super::body::{media_type, read};
use super::super::land::{idempotent_producer, Doors};
use super::super::metrics::Served;
use super::super::respond::{with_retry_after, Failure};
use super::super::Refusal;
use super::{export, Export, Rejected, Signal};
use crate::error::rpc_status;

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

pub(in crate::collector) fn routes() -> Router<Doors> {
    Router::new()
        .route("/v1/logs", post(logs))
        .route("/v1/traces", post(traces))
        .route("/v1/metrics", post(metrics))
}

async fn logs(State(doors): State<Doors>, headers: HeaderMap, body: Body) -> Response {
    handle(&doors, Signal::Logs, headers, body).await
}

async fn traces(State(doors): State<Doors>, headers: HeaderMap, body: Body) -> Response {
    handle(&doors, Signal::Traces, headers, body).await
}

async fn metrics(State(doors): State<Doors>, headers: HeaderMap, body: Body) -> Response {
    handle(&doors, Signal::Metrics, headers, body).await
}

async fn handle(doors: &Doors, signal: Signal, headers: HeaderMap, body: Body) -> Response {
    let mut served = Served::start(signal.door());
    let response = answer(doors, signal, headers, body, &mut served).await;
    served.finish(response.status().as_str());
    response
}

async fn answer(
    doors: &Doors,
    signal: Signal,
    headers: HeaderMap,
    body: Body,
    served: &mut Served,
) -> Response {
    let json = match media_type(&headers).as_str() {
        PROTOBUF | "application/protobuf" => false,
        JSON => true,
        other => {
            let refusal = Refusal::MediaType {
                found: other.to_string(),
                expected: "application/x-protobuf or application/json",
            };
            return failure(Failure::Refused(refusal), false);
        }
    };
    match run(doors, signal, &headers, body, json, served).await {
        Ok(rejected) => success(signal, rejected, json),
        Err(f) => failure(f, json),
    }
}

async fn run(
    doors: &Doors,
    signal: Signal,
    headers: &HeaderMap,
    body: Body,
    json: bool,
    served: &mut Served,
) -> Result<Rejected, Failure> {
    let caller = doors.caller(headers)?;
    served.tenant = Some(caller.tenant.clone());
    let producer = idempotent_producer(headers, "otlp")?;
    let bytes = read(headers, body, &doors.settings).await?;
    served.bytes = bytes.len();
    let request = Export::decode(signal, &bytes, json)?;
    drop(bytes);
    let rejected = export(doors, &caller, request, producer).await?;
    served.events = rejected.stored;
    served.rejected = rejected.count as u64;
    Ok(rejected)
}

fn success(signal: Signal, rejected: Rejected, json: bool) -> Response {
    match signal {
        Signal::Logs => encoded(StatusCode::OK, &rejected.logs(), json),
        Signal::Traces => encoded(StatusCode::OK, &rejected.traces(), json),
        Signal::Metrics => encoded(StatusCode::OK, &rejected.metrics(), json),
    }
}

fn encoded<M: Message + serde::Serialize>(status: StatusCode, message: &M, json: bool) -> Response {
    if json {
        let body = serde_json::to_vec(message).unwrap_or_default();
        (status, [(header::CONTENT_TYPE, JSON)], body).into_response()
    } else {
        (
            status,
            [(header::CONTENT_TYPE, PROTOBUF)],
            message.encode_to_vec(),
        )
            .into_response()
    }
}

/// A failure as OTLP/HTTP answers it: a `google.rpc.Status` body in the request's
/// encoding, `Retry-After` on the retryable statuses.
fn failure(failure: Failure, json: bool) -> Response {
    let (status, retry, message) = failure.answer();
    let code = grpc_code(status);
    let mut response = if json {
        let body = serde_json::json!({ "code": code, "message": message }).to_string();
        (status, [(header::CONTENT_TYPE, JSON)], body).into_response()
    } else {
        (
            status,
            [(header::CONTENT_TYPE, PROTOBUF)],
            rpc_status(code, &message),
        )
            .into_response()
    };
    with_retry_after(&mut response, retry);
    response
}

/// The gRPC code of an HTTP status, for the `google.rpc.Status` body.
fn grpc_code(status: StatusCode) -> i32 {
    use tonic::Code;
    let code = match status.as_u16() {
        400 | 415 => Code::InvalidArgument,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::NotFound,
        408 | 504 => Code::DeadlineExceeded,
        409 => Code::FailedPrecondition,
        413 | 429 => Code::ResourceExhausted,
        501 => Code::Unimplemented,
        503 => Code::Unavailable,
        _ => Code::Internal,
    };
    code as i32
}
