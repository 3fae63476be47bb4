//! HTTP answers to failures: a door's own refusals here, everything else by the status map
//! in `error.rs`; retryable ones carry `Retry-After`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tracing::info;

use super::Refusal;
use crate::error::{http_answer, log_http_failure, Error};

/// Why a request failed: refused by the door, or failed in the layers below.
#[derive(Debug)]
pub(super) enum Failure {
    Refused(Refusal),
    Failed(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Failed(e)
    }
}

impl From<Refusal> for Failure {
    fn from(e: Refusal) -> Self {
        Failure::Refused(e)
    }
}

impl Failure {
    /// The HTTP status, the seconds for `Retry-After` and the message.
    pub(super) fn answer(&self) -> (StatusCode, Option<u64>, String) {
        match self {
            Failure::Refused(r) => {
                let status = match r {
                    Refusal::TooLarge { .. } | Refusal::EventTooLarge { .. } => {
                        StatusCode::PAYLOAD_TOO_LARGE
                    }
                    Refusal::MediaType { .. } | Refusal::Encoding(_) => {
                        StatusCode::UNSUPPORTED_MEDIA_TYPE
                    }
                    Refusal::Malformed(_) | Refusal::BadIdempotencyKey => StatusCode::BAD_REQUEST,
                    Refusal::SlowBody(_) => StatusCode::REQUEST_TIMEOUT,
                    Refusal::EventsInFlight(_) => StatusCode::SERVICE_UNAVAILABLE,
                };
                let retry = matches!(r, Refusal::EventsInFlight(_)).then_some(1);
                info!(error = %r, status = status.as_u16(), "request refused");
                (status, retry, r.to_string())
            }
            Failure::Failed(e) => {
                log_http_failure(e);
                let (status, retry) = http_answer(e);
                let status =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                (status, retry, e.to_string())
            }
        }
    }
}

/// A plain-text answer (the Snowplow and CloudEvents doors; OTLP answers in its own
/// encoding, see `otlp::http`).
impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let (status, retry, message) = self.answer();
        let mut response = (status, format!("{message}\n")).into_response();
        with_retry_after(&mut response, retry);
        response
    }
}

pub(super) fn with_retry_after(response: &mut Response, retry: Option<u64>) {
    if let Some(seconds) = retry {
        if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
    }
}
