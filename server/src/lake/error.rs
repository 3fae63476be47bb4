//! Everything the lake can fail with. `Clone`, so one failed group commit can answer every
//! unit in it, and the query side can carry a lake error through DataFusion intact.

use std::error::Error as StdError;
use std::sync::Arc;

/// The lake's error. Source errors sit behind `Arc` to keep it `Clone`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LakeError {
    /// The object store refused or failed a request; its variant says which way.
    #[error("{}{source}", store_prefix(.store))]
    Store {
        store: String,
        source: Arc<object_store::Error>,
    },
    #[error("store {store} is not reachable: {reason}; its tables are unavailable until it is")]
    StoreUnreachable { store: String, reason: String },
    #[error("store {store}: {message}")]
    StoreConfig { store: String, message: String },
    #[error("the tables of tenant {tenant:?} could not be listed at startup ({reason}), so which store holds them is unknown; they are unavailable until a restart lists them")]
    TenantUnlisted { tenant: String, reason: String },
    #[error("tenant {0:?} is being deleted: its data is going, and it takes no writes or queries (the deletion finishes on any replica; `lakeport tenant get {0}` shows when it is gone)")]
    TenantDeleting(String),
    #[error("tenant {0:?} is archived (or being archived or restored): a write or query restores it; try again shortly")]
    TenantArchived(String),
    #[error("store {store} holds tables of tenant {tenant:?} but has no archive store: add a store with archive_for = {store:?}")]
    NoArchiveStore { store: String, tenant: String },
    #[error("the copy of {path} has {found} bytes where the source has {expected}; run it again")]
    CopyMismatch {
        path: String,
        expected: u64,
        found: u64,
    },
    #[error("delta table error: {0}")]
    Delta(Arc<deltalake::DeltaTableError>),
    #[error("parquet encoding failed: {0}")]
    Parquet(Arc<parquet::errors::ParquetError>),
    #[error("commit to {table} kept losing to concurrent writers ({attempts} attempts); resend from the last acknowledged sequence")]
    CommitContention { table: String, attempts: usize },
    #[error("another writer created table {0} at the same moment; retrying as an append")]
    CreateRace(String),
    #[error("producer {producer:?} sent sequence {first}, but sequences up to {committed} are already committed by an overlapping unit; resend starting after {committed}")]
    SequenceOverlap {
        producer: String,
        committed: i64,
        first: i64,
    },
    #[error("column {column:?} is {table} in the table but {unit} in this upload (another writer changed it concurrently); resend with the table's type")]
    SchemaConflict {
        column: String,
        table: String,
        unit: String,
    },
    #[error("tenant {tenant:?} (region {region}) has no store for dataset {dataset:?}: {why}; add a [[routes]] entry or a store of that region")]
    NoPlacement {
        tenant: String,
        region: String,
        dataset: String,
        why: String,
    },
    #[error("table {table} lives in store {actual} (region {actual_region}), outside tenant {tenant:?}'s region {region}; writes to it are refused. Move the table to a store of region {region}")]
    WrongRegion {
        table: String,
        tenant: String,
        region: String,
        actual: String,
        actual_region: String,
    },
    #[error(
        "invalid store location {0:?}: use a local path or a file://, s3://, gs://, az:// URL"
    )]
    BadLocation(String),
    #[error("the server is shutting down; retry against another replica or after restart")]
    ShuttingDown,
    #[error("an earlier unit of this stream failed to commit, so later ones are not committed; resend from the last acknowledged sequence")]
    EarlierUnitFailed,
    #[error("table {table} version {version} can no longer be read ({detail}); call GetFlightInfo again")]
    VersionGone {
        table: String,
        version: u64,
        detail: String,
    },
    #[error("internal error: {0}")]
    Internal(String),
}

/// `store NAME: ` for messages, or nothing where the store is not known (a failure seen
/// inside a query scan, whose message names the object's URL anyway).
fn store_prefix(store: &str) -> String {
    if store.is_empty() {
        String::new()
    } else {
        format!("store {store}: ")
    }
}

impl LakeError {
    /// Names the store of a store failure that was raised without one.
    pub fn in_store(self, name: &str) -> Self {
        match self {
            LakeError::Store { store, source } if store.is_empty() => LakeError::Store {
                store: name.to_string(),
                source,
            },
            other => other,
        }
    }

    /// Errors a fresh attempt at the same commit (after reloading the table) may cure.
    pub(crate) fn is_retryable(&self) -> bool {
        use deltalake::kernel::transaction::TransactionError as T;
        match self {
            LakeError::CreateRace(_) => true,
            LakeError::Store { source, .. } => {
                matches!(source.as_ref(), object_store::Error::AlreadyExists { .. })
            }
            LakeError::Delta(e) => match e.as_ref() {
                deltalake::DeltaTableError::VersionAlreadyExists(_) => true,
                deltalake::DeltaTableError::Transaction { source } => matches!(
                    source,
                    T::VersionAlreadyExists(_) | T::CommitConflict(_) | T::MaxCommitAttempts(_)
                ),
                _ => false,
            },
            _ => false,
        }
    }
}

/// The object-store failure somewhere in an error's source chain, if there is one. Delta
/// and the kernel wrap store errors in several layers; the category lives in the store's.
fn store_failure<'a>(e: &'a (dyn StdError + 'static)) -> Option<&'a object_store::Error> {
    let mut current: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = current {
        if let Some(store) = err.downcast_ref::<object_store::Error>() {
            return Some(store);
        }
        if let Some(kernel) = err.downcast_ref::<delta_kernel::Error>() {
            if let Some(store) = kernel_store_failure(kernel) {
                return Some(store);
            }
        }
        current = err.source();
    }
    None
}

/// The kernel keeps a store error without exposing it as its `source()`.
fn kernel_store_failure(e: &delta_kernel::Error) -> Option<&object_store::Error> {
    match e {
        delta_kernel::Error::ObjectStore(store) => Some(store),
        delta_kernel::Error::Backtraced { source, .. } => kernel_store_failure(source),
        _ => None,
    }
}

fn copy_store_error(e: &object_store::Error) -> object_store::Error {
    // object_store::Error is not Clone; keep its variant and its message.
    let source: Box<dyn StdError + Send + Sync> = e.to_string().into();
    match e {
        object_store::Error::NotFound { path, .. } => object_store::Error::NotFound {
            path: path.clone(),
            source,
        },
        object_store::Error::AlreadyExists { path, .. } => object_store::Error::AlreadyExists {
            path: path.clone(),
            source,
        },
        object_store::Error::Precondition { path, .. } => object_store::Error::Precondition {
            path: path.clone(),
            source,
        },
        object_store::Error::PermissionDenied { path, .. } => {
            object_store::Error::PermissionDenied {
                path: path.clone(),
                source,
            }
        }
        object_store::Error::Unauthenticated { path, .. } => object_store::Error::Unauthenticated {
            path: path.clone(),
            source,
        },
        object_store::Error::NotSupported { .. } => object_store::Error::NotSupported { source },
        object_store::Error::NotImplemented {
            operation,
            implementer,
        } => object_store::Error::NotImplemented {
            operation: operation.clone(),
            implementer: implementer.clone(),
        },
        _ => object_store::Error::Generic {
            store: "store",
            source,
        },
    }
}

impl LakeError {
    /// A store failure seen by reference (DataFusion keeps the original).
    pub(crate) fn from_store_ref(e: &object_store::Error) -> Self {
        LakeError::Store {
            store: String::new(),
            source: Arc::new(copy_store_error(e)),
        }
    }

    /// A Parquet failure seen by reference: a store failure inside keeps its category.
    pub(crate) fn from_parquet_ref(e: &parquet::errors::ParquetError) -> Self {
        match store_failure(e) {
            Some(store) => Self::from_store_ref(store),
            None => LakeError::Internal(format!("reading Parquet failed: {e}")),
        }
    }
}

impl From<object_store::Error> for LakeError {
    fn from(e: object_store::Error) -> Self {
        LakeError::Store {
            store: String::new(),
            source: Arc::new(e),
        }
    }
}

impl From<deltalake::DeltaTableError> for LakeError {
    fn from(e: deltalake::DeltaTableError) -> Self {
        match store_failure(&e) {
            Some(store) => LakeError::Store {
                store: String::new(),
                source: Arc::new(copy_store_error(store)),
            },
            None => LakeError::Delta(Arc::new(e)),
        }
    }
}

impl From<parquet::errors::ParquetError> for LakeError {
    fn from(e: parquet::errors::ParquetError) -> Self {
        match store_failure(&e) {
            Some(store) => LakeError::Store {
                store: String::new(),
                source: Arc::new(copy_store_error(store)),
            },
            None => LakeError::Parquet(Arc::new(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_failures_are_found_through_delta_wrappers() {
        let inner = object_store::Error::Unauthenticated {
            path: "x".into(),
            source: "bad key".into(),
        };
        let delta = deltalake::DeltaTableError::ObjectStore { source: inner };
        match LakeError::from(delta).in_store("events") {
            LakeError::Store { store, source } => {
                assert_eq!(store, "events");
                assert!(matches!(
                    source.as_ref(),
                    object_store::Error::Unauthenticated { .. }
                ));
            }
            other => panic!("expected a store error, got {other:?}"),
        }
        let kernel = delta_kernel::Error::ObjectStore(object_store::Error::Generic {
            store: "S3",
            source: "connection refused".into(),
        });
        let wrapped = deltalake::DeltaTableError::KernelError(kernel);
        assert!(matches!(
            LakeError::from(wrapped),
            LakeError::Store { source, .. } if matches!(source.as_ref(), object_store::Error::Generic { .. })
        ));
        let conflict = deltalake::DeltaTableError::VersionAlreadyExists(3);
        assert!(LakeError::from(conflict).is_retryable());
    }
}
