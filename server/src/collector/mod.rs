//! The HTTP doors on `[collector] listen` and the OTLP gRPC services on the Flight port:
//! each decodes its protocol into record batches of a built-in dataset and lands them
//! through the same ingest engine as DoPut (`land.rs`), answering once the rows are
//! committed. Protocol refusals (a body too large, a wrong media type) are answered here;
//! every other failure takes its status from `error.rs`, as on Flight.

mod body;
mod cloudevents;
mod land;
mod listener;
pub mod metrics;
pub mod otlp;
mod recent_events;
mod respond;
mod snowplow;

use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use serde::Serialize;

use crate::ingest::IngestError;

pub use land::Doors;
pub use listener::serve;

/// The doors' limits (from `[collector]`).
#[derive(Debug, Clone)]
pub struct CollectorSettings {
    /// Largest request body accepted, after decompression.
    pub max_body: usize,
    /// Largest single event.
    pub max_event: usize,
    /// Longest a client may take to send its request body.
    pub body_timeout: Duration,
    /// Connections served at once; more wait in the kernel's accept queue.
    pub max_connections: usize,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The Snowplow `network_userid` cookie, when set.
    pub cookie: Option<CookieSettings>,
    /// How long a Snowplow event id is remembered against resends (zero: off).
    pub dedupe_window: Duration,
    /// Most event ids remembered at once.
    pub dedupe_max_events: usize,
}

/// The first-party cookie that carries Snowplow's `network_userid`.
#[derive(Debug, Clone)]
pub struct CookieSettings {
    pub name: String,
    pub domain: Option<String>,
    pub lifetime: Duration,
}

/// What a door refuses before anything reaches the ingest engine.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("the request body is over the limit of {limit} bytes (after decompression); send smaller batches or raise collector.max_body")]
    TooLarge { limit: usize },
    #[error("{which} is {size} bytes, over the limit of {limit} for one event; send smaller events or raise collector.max_event")]
    EventTooLarge {
        which: String,
        size: usize,
        limit: usize,
    },
    #[error("unsupported Content-Type {found:?}; send {expected}")]
    MediaType {
        found: String,
        expected: &'static str,
    },
    #[error("unsupported Content-Encoding {0:?}; send gzip or an uncompressed body")]
    Encoding(String),
    #[error("malformed request body: {0}")]
    Malformed(String),
    #[error("the request body did not arrive within {0:?}")]
    SlowBody(Duration),
    #[error("the Idempotency-Key header must be 1 to 128 visible ASCII characters")]
    BadIdempotencyKey,
    #[error("{0} events of this request are still being committed by an earlier request (a resend?); send it again shortly")]
    EventsInFlight(usize),
}

/// Rows a door built, as one batch of the dataset's columns the rows have. A column all of
/// them lack is left out, as a Flight producer leaves out what it does not send: readers
/// read it as null, and a file of ten events does not carry a hundred null columns (a
/// Snowplow request cost 2.5 times its DoPut per row with them).
fn rows_to_batch<R: Serialize>(rows: &[R], schema: SchemaRef) -> Result<RecordBatch, IngestError> {
    let mut decoder = arrow::json::ReaderBuilder::new(schema.clone())
        .with_batch_size(rows.len().max(1))
        .build_decoder()
        .map_err(IngestError::Arrow)?;
    decoder.serialize(rows).map_err(IngestError::Arrow)?;
    let Some(batch) = decoder.flush().map_err(IngestError::Arrow)? else {
        return Ok(RecordBatch::new_empty(schema));
    };
    let present: Vec<usize> = (0..batch.num_columns())
        .filter(|i| {
            !schema.field(*i).is_nullable() || batch.column(*i).null_count() < batch.num_rows()
        })
        .collect();
    batch.project(&present).map_err(IngestError::Arrow)
}
