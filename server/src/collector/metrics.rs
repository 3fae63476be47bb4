//! Door metrics: requests, events, bytes, rows not stored and latency, by door and tenant,
//! and one debug log line per request.

use std::time::Instant;

use metrics::{counter, describe_counter, describe_histogram, histogram, Unit};
use tracing::debug;

pub const REQUESTS: &str = "lakeport_collector_requests_total";
pub const EVENTS: &str = "lakeport_collector_events_total";
pub const BYTES: &str = "lakeport_collector_bytes_total";
pub const REJECTED: &str = "lakeport_collector_rejected_total";
pub const DURATION: &str = "lakeport_collector_request_duration_seconds";

pub fn describe() {
    describe_counter!(
        REQUESTS,
        "Requests to the collector doors, by door, tenant and HTTP status (gRPC: its code)."
    );
    describe_counter!(EVENTS, "Events (rows) the doors committed.");
    describe_counter!(
        BYTES,
        Unit::Bytes,
        "Request bodies the doors read, after decompression."
    );
    describe_counter!(
        REJECTED,
        "Events a door answered as not stored (partial success)."
    );
    describe_histogram!(
        DURATION,
        Unit::Seconds,
        "Time from a request's arrival to its answer, by door and tenant."
    );
}

/// One request through a door; `finish` records it.
#[derive(Debug)]
pub(super) struct Served {
    door: &'static str,
    started: Instant,
    pub(super) tenant: Option<String>,
    pub(super) bytes: usize,
    pub(super) events: u64,
    pub(super) rejected: u64,
}

impl Served {
    pub(super) fn start(door: &'static str) -> Self {
        Self {
            door,
            started: Instant::now(),
            tenant: None,
            bytes: 0,
            events: 0,
            rejected: 0,
        }
    }

    /// Records the request with the status it was answered with.
    pub(super) fn finish(self, status: &str) {
        let took = self.started.elapsed();
        let tenant = self.tenant.clone().unwrap_or_default();
        let labels = [("door", self.door.to_string()), ("tenant", tenant.clone())];
        counter!(
            REQUESTS,
            "door" => self.door,
            "tenant" => tenant.clone(),
            "status" => status.to_string()
        )
        .increment(1);
        counter!(EVENTS, &labels).increment(self.events);
        counter!(BYTES, &labels).increment(self.bytes as u64);
        counter!(REJECTED, &labels).increment(self.rejected);
        histogram!(DURATION, &labels).record(took.as_secs_f64());
        debug!(
            door = self.door,
            tenant = %tenant,
            status,
            events = self.events,
            rejected = self.rejected,
            bytes = self.bytes,
            duration_ms = took.as_millis() as u64,
            "collector request"
        );
    }
}
