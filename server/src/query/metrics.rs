//! Query metrics: queries by outcome, their latency, and what they returned, per tenant
//! (the scope's schema: the tenant, or `system` for an admin that named none).

use std::time::Instant;

use metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Unit,
};
use tracing::info;

pub const QUERIES: &str = "lakeport_queries_total";
pub const QUERY_DURATION: &str = "lakeport_query_duration_seconds";
pub const ROWS_RETURNED: &str = "lakeport_query_rows_returned_total";
pub const BYTES_RETURNED: &str = "lakeport_query_bytes_returned_total";
pub const QUERIES_QUEUED: &str = "lakeport_queries_queued";

pub fn describe() {
    describe_counter!(
        QUERIES,
        "SQL queries by outcome: ok, error (refused or failed), cancelled (the client left)."
    );
    describe_histogram!(
        QUERY_DURATION,
        Unit::Seconds,
        "From planning (or ticket redemption) to the last batch sent."
    );
    describe_counter!(ROWS_RETURNED, "Rows sent to clients.");
    describe_gauge!(
        QUERIES_QUEUED,
        "Queries waiting now for a place in their caller's queue (query.max_concurrent)."
    );
    describe_counter!(
        BYTES_RETURNED,
        Unit::Bytes,
        "Arrow IPC bytes of the result batches sent."
    );
}

/// One query waiting in `caller`'s queue (`tenant:T` or `admin`), counted until dropped:
/// when it gets its place, gives up, or its client goes away.
#[derive(Debug)]
pub struct Queued {
    caller: String,
}

impl Queued {
    pub fn enter(caller: &str) -> Self {
        gauge!(QUERIES_QUEUED, "caller" => caller.to_string()).increment(1.0);
        Self {
            caller: caller.to_string(),
        }
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        gauge!(QUERIES_QUEUED, "caller" => self.caller.clone()).decrement(1.0);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryOutcome {
    Ok,
    Error,
    Cancelled,
}

impl QueryOutcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
            Self::Cancelled => "cancelled",
        }
    }
}

/// One query from its start: counts what it returns and records it once, when it ends
/// (or, dropped unfinished, as cancelled).
#[derive(Debug)]
pub struct QueryRecord {
    tenant: String,
    kind: &'static str,
    started: Instant,
    rows: u64,
    bytes: u64,
    ended: bool,
}

impl QueryRecord {
    pub fn start(tenant: &str, kind: &'static str) -> Self {
        Self {
            tenant: tenant.to_string(),
            kind,
            started: Instant::now(),
            rows: 0,
            bytes: 0,
            ended: false,
        }
    }

    pub fn sent(&mut self, rows: u64, bytes: u64) {
        self.rows += rows;
        self.bytes += bytes;
    }

    /// A planned statement is recorded by the DoGet that redeems its ticket, not here.
    pub fn handed_to_do_get(mut self) {
        self.ended = true;
    }

    /// Records the query; `status` is the gRPC code it ended with.
    pub fn end(&mut self, outcome: QueryOutcome, status: &str) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        let took = self.started.elapsed();
        let tenant = self.tenant.clone();
        histogram!(QUERY_DURATION, "tenant" => tenant.clone()).record(took.as_secs_f64());
        counter!(QUERIES, "tenant" => tenant.clone(), "outcome" => outcome.as_str()).increment(1);
        counter!(ROWS_RETURNED, "tenant" => tenant.clone()).increment(self.rows);
        counter!(BYTES_RETURNED, "tenant" => tenant).increment(self.bytes);
        info!(
            tenant = %self.tenant,
            kind = self.kind,
            rows = self.rows,
            bytes = self.bytes,
            status,
            duration_ms = took.as_millis() as u64,
            "query finished"
        );
    }
}

impl Drop for QueryRecord {
    fn drop(&mut self) {
        self.end(QueryOutcome::Cancelled, "Cancelled");
    }
}
