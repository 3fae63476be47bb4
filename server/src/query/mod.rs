//! Read-only DataFusion SQL over the lake, scoped to the caller's tenant: who sees what
//! (`scope`), which tables exist (`tables`), the DataFusion catalog over them (`catalog`,
//! `system`), what SQL is allowed (`guard`), signed stateless tickets (`ticket`) and the
//! per-query limits (`limits`), tied together by `QueryEngine` (`engine`).

pub mod catalog;
pub mod engine;
pub mod guard;
pub mod lake_scan;
pub mod limits;
pub mod metrics;
pub mod plan_cache;
pub mod retention;
pub mod scope;
pub mod system;
pub mod ticket;
pub mod utc;

use std::time::Duration;

use datafusion::error::DataFusionError;

use crate::lake::LakeError;

pub use engine::{Planned, QueryEngine, QuerySettings};
pub use retention::QueryRetention;
pub use scope::Scope;

/// The one catalog lakeport's SQL sees.
pub const CATALOG: &str = "lakeport";
/// Schema of the `system.*` tables.
pub const SYSTEM_SCHEMA: &str = "system";

/// Everything a query can fail with. `Clone`, so an error raised inside DataFusion (through
/// `DataFusionError::External`) can be recovered with its category intact.
#[derive(Debug, Clone, thiserror::Error)]
pub enum QueryError {
    #[error("lakeport SQL is read-only: {0} is not allowed; land data with DoPut or ADBC ingest")]
    ReadOnly(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("{0:?} names a file or URL; lakeport only queries its own tables (see SHOW TABLES)")]
    PathTable(String),
    #[error("schema {schema:?} is not visible to you; your tables are in {visible}")]
    OtherSchema { schema: String, visible: String },
    #[error("table {table:?} not found in schema {schema:?}; tables there: {available}")]
    UnknownTable {
        schema: String,
        table: String,
        available: String,
    },
    #[error("{0}")]
    Sql(String),
    #[error("query exceeded its memory limit of {limit}: {detail}; narrow the query (filters, LIMIT, fewer columns) or ask for a larger query.memory_limit")]
    MemoryExceeded { limit: String, detail: String },
    #[error(
        "{who} already runs {limit} queries, the most allowed at once, and this one waited {waited:?} in line for a place (query.queue_timeout); retry later, or ask for a higher query.max_concurrent"
    )]
    TooManyQueries {
        who: String,
        limit: usize,
        waited: Duration,
    },
    #[error("query ran longer than the server's query timeout of {0:?}; narrow it or ask for a longer query.timeout")]
    Timeout(Duration),
    #[error("ticket rejected: {0}")]
    BadTicket(String),
    #[error("ticket rejected: its signature does not verify (altered, or issued by a server with another ticket_secret); call GetFlightInfo again")]
    TicketForged,
    #[error("ticket was not issued to you; call GetFlightInfo with your own credentials")]
    TicketNotYours,
    #[error("ticket expired; call GetFlightInfo again for a fresh one")]
    TicketExpired,
    #[error("reading the lake failed: {0}")]
    Lake(#[from] LakeError),
    #[error("query failed: {0}")]
    Execution(String),
}

impl QueryError {
    pub(crate) fn into_datafusion(self) -> DataFusionError {
        DataFusionError::External(Box::new(self))
    }
}

impl From<DataFusionError> for QueryError {
    fn from(e: DataFusionError) -> Self {
        classify(&e, &e)
    }
}

fn classify(top: &DataFusionError, e: &DataFusionError) -> QueryError {
    use datafusion::arrow::error::ArrowError;
    match e {
        DataFusionError::External(inner) => match inner.downcast_ref::<QueryError>() {
            Some(q) => q.clone(),
            None => match inner.downcast_ref::<DataFusionError>() {
                Some(d) => classify(top, d),
                None => QueryError::Execution(top.to_string()),
            },
        },
        DataFusionError::Context(_, inner) => classify(top, inner),
        DataFusionError::Shared(inner) => classify(top, inner),
        // DataFusion wraps planning errors in a diagnostic for editors; the category is inside.
        DataFusionError::Diagnostic(_, inner) => classify(top, inner),
        DataFusionError::Collection(all) => match all.first() {
            Some(first) => classify(top, first),
            None => QueryError::Execution(top.to_string()),
        },
        DataFusionError::ResourcesExhausted(detail) => QueryError::MemoryExceeded {
            limit: String::new(),
            detail: detail.clone(),
        },
        DataFusionError::Plan(_)
        | DataFusionError::SQL(..)
        | DataFusionError::SchemaError(..)
        | DataFusionError::NotImplemented(_) => QueryError::Sql(top.to_string()),
        DataFusionError::ArrowError(arrow, _) => match arrow.as_ref() {
            ArrowError::DivideByZero
            | ArrowError::CastError(_)
            | ArrowError::ParseError(_)
            | ArrowError::ComputeError(_)
            | ArrowError::ArithmeticOverflow(_)
            | ArrowError::InvalidArgumentError(_) => QueryError::Sql(top.to_string()),
            _ => QueryError::Execution(top.to_string()),
        },
        DataFusionError::ObjectStore(e) => QueryError::Lake(LakeError::from_store_ref(e)),
        DataFusionError::ParquetError(e) => QueryError::Lake(LakeError::from_parquet_ref(e)),
        _ => QueryError::Execution(top.to_string()),
    }
}
