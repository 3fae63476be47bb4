//! What a door hands the ingest engine, message by message: the stream's schema first,
//! then record batches, each with the producer's id and sequence where it sends them
//! (exactly-once). Doors decode their protocol (Flight IPC, OTLP, HTTP bodies) into this.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

#[derive(Debug)]
pub enum Incoming {
    /// The schema every batch of the stream has; a later different one is refused.
    Schema(SchemaRef),
    Batch {
        batch: RecordBatch,
        /// (producer id, sequence) of an exactly-once producer.
        sequence: Option<(String, i64)>,
        /// Events the door could not turn into rows; they go to `_rejected` with the
        /// batch's rows that normalization sets aside.
        refused: Vec<Refused>,
    },
}

/// An event a door refused, as it arrived, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Refused {
    pub reason: String,
    /// The event as JSON text.
    pub raw: String,
}
