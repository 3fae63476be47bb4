//! Ingest: a pipeline of named steps per DoPut stream:
//! decode → normalize → partition → buffer → write files → commit → ack.
//!
//! `ingestor` is the entry point, `stream` the loop of one DoPut, `dedupe` the producer
//! sequences, `budget` the shared buffer memory, `intake` its gate in front of tonic, `unit`
//! the write → commit → ack of what a stream flushed. Files and commits themselves are the lake's.

pub mod budget;
pub mod dedupe;
mod expiry;
mod ingestor;
mod input;
pub mod intake;
pub mod metrics;
pub mod normalize;
pub mod partition;
pub mod rejected;
mod stream;
mod target;
pub mod types;
mod unit;

pub use ingestor::{IngestSettings, Ingestor, StatusOf};
pub use input::{Incoming, Refused};
pub use target::{IngestSummary, Target};

use crate::datasets::DatasetError;
use crate::lake::LakeError;
use crate::names::NameError;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("dataset {dataset:?} has no column {column:?}; send only its columns (see docs/datasets.md)")]
    UnknownColumn { dataset: String, column: String },
    #[error("dataset {dataset:?} needs column {column:?} in every batch")]
    MissingColumn { dataset: String, column: String },
    #[error("column {column:?} must be {expected} (or convert to it losslessly) but is {found}")]
    WrongType {
        column: String,
        expected: String,
        found: String,
    },
    #[error("column {column:?} has type {found}, which cannot be stored: {hint}")]
    UnsupportedType {
        column: String,
        found: String,
        hint: String,
    },
    #[error("column {0:?} is a partition column lakeport derives itself; rename it")]
    ReservedColumn(String),
    #[error("columns {0:?} and {1:?} differ only in case, which Snowflake and Spark cannot tell apart; rename one")]
    AmbiguousColumns(String, String),
    #[error("column name {0:?} is empty or holds one of ' ,;{{}}()\\n\\t='; rename it")]
    BadColumnName(String),
    #[error("schema changed mid-stream at column {0:?}; start a new DoPut for a new schema")]
    SchemaChanged(String),
    #[error("invalid ingest metadata in app_metadata: {0}")]
    BadMetadata(String),
    #[error("malformed Arrow IPC data: {0}")]
    BadIpc(String),
    #[error("{0}; split the data into smaller batches or raise max_message_size")]
    MessageTooLarge(String),
    #[error("empty DoPut stream: the first message must carry the flight descriptor and the Arrow schema")]
    EmptyStream,
    #[error("the first DoPut message must carry the Arrow schema")]
    MissingSchema,
    #[error("invalid flight descriptor: {0}")]
    BadDescriptor(String),
    #[error("unsupported ingest option: {0}")]
    Unsupported(String),
    #[error("table {0} already exists; use mode 'append' (or 'create_append')")]
    TableExists(String),
    #[error("table {0} does not exist yet; use mode 'create' or 'create_append'")]
    TableMissing(String),
    #[error("the client stream failed: {0}")]
    Client(tonic::Status),
    #[error("column {column:?} row {row}: value {value} does not fit the table's {expected}; send a value in range or a column of a wider type")]
    ValueOutOfRange {
        column: String,
        row: usize,
        value: String,
        expected: String,
    },
    #[error("arrow error: {0}")]
    Arrow(arrow::error::ArrowError),
    #[error(transparent)]
    Name(#[from] NameError),
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error(transparent)]
    Lake(#[from] LakeError),
}
