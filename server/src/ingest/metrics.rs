//! Ingest metrics: what producers sent and what became of it, per tenant and dataset.

use metrics::{counter, describe_counter, describe_gauge, gauge, Unit};

use lakeport_proto::IngestAck;

pub const ROWS: &str = "lakeport_ingest_rows_total";
pub const BYTES: &str = "lakeport_ingest_bytes_total";
pub const ROWS_REJECTED: &str = "lakeport_ingest_rows_rejected_total";
pub const ROWS_EXPIRED: &str = "lakeport_ingest_rows_expired_total";
pub const DUPLICATES_SKIPPED: &str = "lakeport_ingest_duplicates_skipped_total";
pub const STREAMS: &str = "lakeport_ingest_streams_total";
pub const STREAMS_IN_FLIGHT: &str = "lakeport_ingest_streams_in_flight";
pub const BUFFER_MEMORY: &str = "lakeport_ingest_buffer_memory_bytes";

pub fn describe() {
    describe_counter!(ROWS, "Rows committed to their dataset table.");
    describe_counter!(
        BYTES,
        Unit::Bytes,
        "In-memory Arrow bytes of the acknowledged units."
    );
    describe_counter!(
        ROWS_REJECTED,
        "Rows that failed validation and went to the tenant's _rejected table."
    );
    describe_counter!(
        ROWS_EXPIRED,
        "Rows not written because their hour was past the table's retention."
    );
    describe_counter!(
        DUPLICATES_SKIPPED,
        "Rows skipped because their producer sequence was already committed."
    );
    describe_counter!(STREAMS, "DoPut and bulk-ingest streams ended, by outcome.");
    describe_gauge!(STREAMS_IN_FLIGHT, "Ingest streams open now.");
    describe_gauge!(
        BUFFER_MEMORY,
        Unit::Bytes,
        "Memory of the ingest budget in use (buffered rows and receive buffers)."
    );
}

/// One acknowledged unit.
pub fn unit_acknowledged(ack: &IngestAck, bytes: usize) {
    let labels = [
        ("tenant", ack.tenant.clone()),
        ("dataset", ack.dataset.clone()),
    ];
    counter!(ROWS, &labels).increment(ack.rows_committed);
    counter!(ROWS_REJECTED, &labels).increment(ack.rows_rejected);
    counter!(ROWS_EXPIRED, &labels).increment(ack.rows_expired);
    counter!(DUPLICATES_SKIPPED, &labels).increment(ack.duplicates_skipped);
    counter!(BYTES, &labels).increment(bytes as u64);
}

/// Counts a stream as open until dropped, then as ended with the outcome it was given.
pub struct StreamGauge {
    labels: [(&'static str, String); 2],
    outcome: &'static str,
}

impl StreamGauge {
    pub fn open(tenant: &str, dataset: &str) -> Self {
        let labels = [
            ("tenant", tenant.to_string()),
            ("dataset", dataset.to_string()),
        ];
        gauge!(STREAMS_IN_FLIGHT, &labels).increment(1.0);
        Self {
            labels,
            outcome: "cancelled",
        }
    }

    pub fn finished(&mut self, ok: bool) {
        self.outcome = if ok { "ok" } else { "error" };
    }
}

impl Drop for StreamGauge {
    fn drop(&mut self) {
        gauge!(STREAMS_IN_FLIGHT, &self.labels).decrement(1.0);
        let [tenant, dataset] = self.labels.clone();
        counter!(
            STREAMS,
            &[tenant, dataset, ("outcome", self.outcome.to_string())]
        )
        .increment(1);
    }
}

pub fn buffer_memory(bytes: usize) {
    gauge!(BUFFER_MEMORY).set(bytes as f64);
}
