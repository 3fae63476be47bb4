//! The data lifecycle beyond retention (which maintenance applies): handing a tenant's data
//! over as a standalone Delta table (`export`). Beside the wings, it reaches tables only
//! through `lake::LakeTables` and writes elsewhere only through `lake::Store`.

mod export;

use std::sync::Arc;

use crate::lake::{LakeError, LakeTables};
pub use export::{parse_time, ExportReport, ExportRequest, ExportTarget};

#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error("unknown dataset {0:?}")]
    UnknownDataset(String),
    #[error("tenant {tenant:?} has no {dataset} table to export")]
    NoTable { tenant: String, dataset: String },
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Refused(String),
    #[error("{url} already holds a Delta table with other files; export into an empty location")]
    TargetHoldsTable { url: String },
}

#[derive(Debug)]
pub struct Lifecycle {
    tables: Arc<LakeTables>,
}

impl Lifecycle {
    pub fn new(tables: Arc<LakeTables>) -> Self {
        Self { tables }
    }
}
