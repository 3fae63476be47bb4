//! Where a stream writes (its table and the tenant's dead-letter table) and what the whole
//! stream did.

use std::sync::Arc;

use super::IngestError;
use crate::datasets::Dataset;
use crate::lake::TableHandle;

/// The tables one stream writes to.
#[derive(Debug, Clone)]
pub struct Target {
    pub tenant: String,
    pub dataset: Arc<Dataset>,
    pub(super) main: Arc<TableHandle>,
    pub(super) rejected: Arc<TableHandle>,
}

impl Target {
    /// True when the dataset table has been created (has a Delta log).
    pub async fn exists(&self) -> Result<bool, IngestError> {
        Ok(self.main.refresh(None).await?.1.is_some())
    }
}

/// What a whole stream did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IngestSummary {
    pub rows_committed: u64,
    pub duplicates_skipped: u64,
    pub rows_rejected: u64,
    /// Rows past the table's retention, not written.
    pub rows_expired: u64,
    pub table_version: i64,
    /// Arrow bytes of the record batches received (committed or not).
    pub bytes_received: u64,
}
