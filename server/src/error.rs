//! The error a call can end with and its one mapping to gRPC status codes. (What stops
//! the server from starting is `server::StartError`: no client ever sees it.)

use tonic::{Code, Status};
use tracing::{error, info, warn};

use crate::auth::AuthError;
use crate::datasets::DatasetError;
use crate::flight::CallError;
use crate::ingest::IngestError;
use crate::lake::LakeError;
use crate::lifecycle::LifecycleError;
use crate::maintenance::MaintenanceError;
use crate::names::NameError;
use crate::quality::QualityError;
use crate::query::QueryError;
use crate::readiness::ReadinessError;
use crate::tenants::archive_record::StepRefused;
use crate::tenants::TenantsError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Name(#[from] NameError),
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error(transparent)]
    Flight(#[from] CallError),
    #[error(transparent)]
    Maintenance(Box<MaintenanceError>),
    #[error(transparent)]
    Readiness(Box<ReadinessError>),
    #[error(transparent)]
    Tenants(Box<TenantsError>),
    #[error(transparent)]
    Quality(#[from] QualityError),
    #[error(transparent)]
    Lifecycle(Box<LifecycleError>),
}

impl From<LifecycleError> for Error {
    fn from(e: LifecycleError) -> Self {
        Error::Lifecycle(Box::new(e))
    }
}

impl From<MaintenanceError> for Error {
    fn from(e: MaintenanceError) -> Self {
        Error::Maintenance(Box::new(e))
    }
}

impl From<ReadinessError> for Error {
    fn from(e: ReadinessError) -> Self {
        Error::Readiness(Box::new(e))
    }
}

impl From<TenantsError> for Error {
    fn from(e: TenantsError) -> Self {
        Error::Tenants(Box::new(e))
    }
}

impl From<Error> for Status {
    fn from(e: Error) -> Status {
        let code = code_of(&e);
        let message = e.to_string();
        let client_side = matches!(e, Error::Ingest(IngestError::Client(_)));
        match code {
            _ if client_side => info!(error = %message, "client stream ended with an error"),
            Code::Internal | Code::Unknown => error!(error = %message, "request failed"),
            Code::Unavailable
            | Code::Aborted
            | Code::ResourceExhausted
            | Code::DeadlineExceeded => {
                warn!(error = %message, "request failed")
            }
            _ => info!(error = %message, "request refused"),
        }
        if let Error::Ingest(IngestError::Client(status)) = e {
            return status;
        }
        let retry = retry_after(&e, code);
        let message = bounded(message);
        let mut status = match retry {
            // RetryInfo in the status details: what OTLP exporters and Google's clients read.
            Some(seconds) => Status::with_details(
                code,
                message.clone(),
                retry_details(code, &message, seconds),
            ),
            None => Status::new(code, message),
        };
        if let (Some(seconds), Error::Tenants(t)) = (retry, &e) {
            if let TenantsError::Restoring { .. } = t.as_ref() {
                // gRPC's retry pushback: a client with a retry policy waits this long.
                if let Ok(value) = (seconds * 1000).to_string().parse() {
                    status.metadata_mut().insert(RETRY_PUSHBACK, value);
                }
            }
        }
        status
    }
}

/// Seconds a client should wait before it retries, for a failure a retry can cure: a
/// restore under way (its estimate), a tenant over its hard quota (a minute: usage drops
/// only when retention or an operator frees space), and a moment for the rest.
fn retry_after(e: &Error, code: Code) -> Option<u64> {
    if let Error::Tenants(t) = e {
        match t.as_ref() {
            TenantsError::Restoring { retry_after, .. } => return Some(*retry_after),
            TenantsError::OverQuota { .. } => return Some(60),
            _ => {}
        }
    }
    matches!(code, Code::Unavailable | Code::ResourceExhausted).then_some(1)
}

/// The answer of the HTTP doors to a failure: the HTTP status a client acts on (OTLP
/// exporters retry 429, 502, 503 and 504 only) and, for those, the seconds for
/// `Retry-After`. The same categories as the gRPC codes above, so every door agrees.
pub fn http_answer(e: &Error) -> (u16, Option<u64>) {
    let code = code_of(e);
    let status = match code {
        Code::Ok => 200,
        Code::InvalidArgument | Code::OutOfRange => 400,
        Code::Unauthenticated => 401,
        Code::PermissionDenied => 403,
        Code::NotFound => 404,
        Code::AlreadyExists | Code::FailedPrecondition => 409,
        Code::ResourceExhausted => 429,
        Code::Unimplemented => 501,
        // A lost commit race or a store outage: the same request succeeds on a retry.
        Code::Unavailable | Code::Aborted => 503,
        Code::DeadlineExceeded => 504,
        Code::Cancelled | Code::Unknown | Code::Internal | Code::DataLoss => 500,
    };
    let retry = match status {
        429 | 503 | 504 => Some(retry_after(e, code).unwrap_or(1)),
        _ => None,
    };
    (status, retry)
}

/// Logs a failure a door answers over HTTP, at the level its gRPC twin would have.
pub fn log_http_failure(e: &Error) {
    let message = e.to_string();
    match code_of(e) {
        Code::Internal | Code::Unknown => error!(error = %message, "request failed"),
        Code::Unavailable | Code::Aborted | Code::ResourceExhausted | Code::DeadlineExceeded => {
            warn!(error = %message, "request failed")
        }
        _ => info!(error = %message, "request refused"),
    }
}

/// `google.rpc.Status` carrying a `google.rpc.RetryInfo`, encoded for
/// `grpc-status-details-bin`.
fn retry_details(code: Code, message: &str, seconds: u64) -> bytes::Bytes {
    use prost::Message;
    let info = rpc::RetryInfo {
        retry_delay: Some(rpc::Duration {
            seconds: seconds as i64,
            nanos: 0,
        }),
    };
    let status = rpc::Status {
        code: code as i32,
        message: message.to_string(),
        details: vec![rpc::Any {
            type_url: "type.googleapis.com/google.rpc.RetryInfo".into(),
            value: info.encode_to_vec(),
        }],
    };
    status.encode_to_vec().into()
}

/// A `google.rpc.Status` body (what OTLP/HTTP answers a failure with in protobuf).
pub fn rpc_status(code: i32, message: &str) -> Vec<u8> {
    use prost::Message;
    rpc::Status {
        code,
        message: message.to_string(),
        details: vec![],
    }
    .encode_to_vec()
}

/// The few `google.rpc` and `google.protobuf` messages a retryable status carries.
mod rpc {
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct Status {
        #[prost(int32, tag = "1")]
        pub(super) code: i32,
        #[prost(string, tag = "2")]
        pub(super) message: String,
        #[prost(message, repeated, tag = "3")]
        pub(super) details: Vec<Any>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct Any {
        #[prost(string, tag = "1")]
        pub(super) type_url: String,
        #[prost(bytes = "vec", tag = "2")]
        pub(super) value: Vec<u8>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct RetryInfo {
        #[prost(message, optional, tag = "1")]
        pub(super) retry_delay: Option<Duration>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct Duration {
        #[prost(int64, tag = "1")]
        pub(super) seconds: i64,
        #[prost(int32, tag = "2")]
        pub(super) nanos: i32,
    }
}

/// The trailer gRPC clients with a retry policy read as the time to wait before retrying.
const RETRY_PUSHBACK: &str = "grpc-retry-pushback-ms";

/// Longest status message sent. gRPC carries it in a header (`grpc-message`), and HTTP/2
/// peers refuse a header block over their limit (16 KiB by default) with a protocol error
/// that hides the message entirely; some library errors embed a whole backtrace when
/// `RUST_BACKTRACE` is set. The full message is in the server's log.
const MAX_STATUS_MESSAGE: usize = 4096;

fn bounded(mut message: String) -> String {
    if message.len() > MAX_STATUS_MESSAGE {
        let mut end = MAX_STATUS_MESSAGE;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push_str(" … (cut; the server log has the whole message)");
    }
    message
}

fn code_of(e: &Error) -> Code {
    match e {
        Error::Auth(a) => match a {
            AuthError::Missing
            | AuthError::InvalidToken
            | AuthError::Expired(_)
            | AuthError::Malformed
            | AuthError::WrongTenant(_)
            | AuthError::InvalidKey => Code::Unauthenticated,
            AuthError::OtherTenant { .. }
            | AuthError::AdminOnly { .. }
            | AuthError::KeyNotToken
            | AuthError::KeyRefused(_) => Code::PermissionDenied,
            AuthError::AdminNeedsTenant => Code::InvalidArgument,
        },
        Error::Name(_) => Code::InvalidArgument,
        Error::Dataset(d) => dataset_code(d),
        Error::Ingest(i) => ingest_code(i),
        Error::Lake(l) => lake_code(l),
        Error::Query(q) => query_code(q),
        Error::Maintenance(m) => match m.as_ref() {
            MaintenanceError::Lake(l) => lake_code(l),
            MaintenanceError::UnknownDataset(_) => Code::NotFound,
            MaintenanceError::Engine(_) | MaintenanceError::Schema(_) => Code::Internal,
        },
        Error::Readiness(r) => match r.as_ref() {
            ReadinessError::Lake(l) => lake_code(l),
            ReadinessError::UnknownDataset(_) => Code::NotFound,
            ReadinessError::Footer { .. } => Code::Internal,
        },
        Error::Tenants(t) => match t.as_ref() {
            TenantsError::Lake(l) => lake_code(l),
            TenantsError::Unknown(_) | TenantsError::UnknownToken { .. } => Code::NotFound,
            TenantsError::Exists(_) => Code::AlreadyExists,
            TenantsError::Invalid(_) => Code::InvalidArgument,
            TenantsError::OverQuota { .. } => Code::ResourceExhausted,
            TenantsError::Suspended(_)
            | TenantsError::Configured(_)
            | TenantsError::EncryptionInUse { .. }
            | TenantsError::Unusable { .. } => Code::FailedPrecondition,
            TenantsError::Contended(..) => Code::Aborted,
            TenantsError::Archival { refused, .. } => match refused {
                StepRefused::Lost => Code::Aborted,
                StepRefused::Busy(_) | StepRefused::NotArchived => Code::FailedPrecondition,
            },
            TenantsError::Restoring { .. } => Code::Unavailable,
            TenantsError::Corrupt { .. } => Code::Internal,
        },
        Error::Flight(f) => match f {
            CallError::NotAuthenticated => Code::Unauthenticated,
            CallError::BadHeader { .. } | CallError::BadParameters(_) => Code::InvalidArgument,
            CallError::Unimplemented { .. } => Code::Unimplemented,
            CallError::Encode { .. } => Code::Internal,
        },
        Error::Lifecycle(l) => match l.as_ref() {
            LifecycleError::Lake(e) => lake_code(e),
            LifecycleError::UnknownDataset(_) | LifecycleError::NoTable { .. } => Code::NotFound,
            LifecycleError::BadRequest(_) => Code::InvalidArgument,
            LifecycleError::Refused(_) => Code::PermissionDenied,
            LifecycleError::TargetHoldsTable { .. } => Code::AlreadyExists,
        },
        Error::Quality(q) => match q {
            QualityError::UnknownTenant(_) => Code::NotFound,
            QualityError::Lake(l) => lake_code(l),
        },
    }
}

/// The status code an ingest failure is answered with (also the one its log line names).
pub fn ingest_code(i: &IngestError) -> Code {
    match i {
        IngestError::UnknownColumn { .. }
        | IngestError::MissingColumn { .. }
        | IngestError::WrongType { .. }
        | IngestError::UnsupportedType { .. }
        | IngestError::ReservedColumn(_)
        | IngestError::AmbiguousColumns(..)
        | IngestError::BadColumnName(_)
        | IngestError::SchemaChanged(_)
        | IngestError::BadMetadata(_)
        | IngestError::BadIpc(_)
        | IngestError::EmptyStream
        | IngestError::MissingSchema
        | IngestError::BadDescriptor(_)
        | IngestError::ValueOutOfRange { .. }
        | IngestError::Name(_)
        | IngestError::Unsupported(_) => Code::InvalidArgument,
        IngestError::MessageTooLarge(_) => Code::ResourceExhausted,
        IngestError::TableExists(_) => Code::AlreadyExists,
        IngestError::TableMissing(_) => Code::NotFound,
        IngestError::Client(status) => status.code(),
        IngestError::Arrow(_) => Code::Internal,
        IngestError::Dataset(d) => dataset_code(d),
        IngestError::Lake(l) => lake_code(l),
    }
}

fn query_code(q: &QueryError) -> Code {
    match q {
        QueryError::ReadOnly(_)
        | QueryError::PathTable(_)
        | QueryError::OtherSchema { .. }
        | QueryError::TicketForged
        | QueryError::TicketNotYours => Code::PermissionDenied,
        QueryError::Unsupported(_) | QueryError::Sql(_) | QueryError::BadTicket(_) => {
            Code::InvalidArgument
        }
        QueryError::UnknownTable { .. } => Code::NotFound,
        QueryError::MemoryExceeded { .. } | QueryError::TooManyQueries { .. } => {
            Code::ResourceExhausted
        }
        QueryError::Timeout(_) => Code::DeadlineExceeded,
        QueryError::TicketExpired => Code::FailedPrecondition,
        QueryError::Lake(l) => lake_code(l),
        QueryError::Execution(_) => Code::Internal,
    }
}

fn dataset_code(e: &DatasetError) -> Code {
    match e {
        DatasetError::Unknown(_) => Code::NotFound,
        DatasetError::BadConfig { .. } => Code::FailedPrecondition,
    }
}

fn lake_code(e: &LakeError) -> Code {
    match e {
        LakeError::Store { source, .. } => store_code(source),
        LakeError::StoreUnreachable { .. }
        | LakeError::TenantUnlisted { .. }
        | LakeError::TenantArchived(_)
        | LakeError::CopyMismatch { .. }
        | LakeError::ShuttingDown => Code::Unavailable,
        LakeError::StoreConfig { .. }
        | LakeError::BadLocation(_)
        | LakeError::NoPlacement { .. }
        | LakeError::WrongRegion { .. }
        | LakeError::SequenceOverlap { .. }
        | LakeError::TenantDeleting(_)
        | LakeError::NoArchiveStore { .. }
        | LakeError::VersionGone { .. } => Code::FailedPrecondition,
        LakeError::CommitContention { .. }
        | LakeError::CreateRace(_)
        | LakeError::SchemaConflict { .. }
        | LakeError::EarlierUnitFailed => Code::Aborted,
        LakeError::Delta(_) | LakeError::Parquet(_) | LakeError::Internal(_) => Code::Internal,
    }
}

/// What a client can do about a store failure: retry later (UNAVAILABLE), retry the
/// commit (ABORTED), have the operator fix credentials or settings (FAILED_PRECONDITION),
/// or nothing, since lakeport itself went wrong (INTERNAL).
fn store_code(e: &object_store::Error) -> Code {
    use object_store::Error as S;
    match e {
        // object_store's fallback for what no variant names: network failures, timeouts,
        // 5xx after its own retries.
        S::Generic { .. } => Code::Unavailable,
        S::AlreadyExists { .. } | S::Precondition { .. } => Code::Aborted,
        S::Unauthenticated { .. }
        | S::PermissionDenied { .. }
        | S::NotSupported { .. }
        | S::NotImplemented { .. }
        | S::UnknownConfigurationKey { .. }
        // A missing bucket or a file deleted under a reader: the lake's state, not the call.
        | S::NotFound { .. } => Code::FailedPrecondition,
        // A path lakeport built that the store refuses, a panicked task, or an answer to a
        // conditional read lakeport never sends: retrying repeats it.
        S::InvalidPath { .. } | S::JoinError { .. } | S::NotModified { .. } => Code::Internal,
        // Variants added upstream after object_store 0.13.
        _ => Code::Unavailable,
    }
}

/// The status for a failure inside an arrow-flight encoder stream: our own errors travel
/// as a status already; anything else is an encoding failure.
pub fn flight_status(e: arrow_flight::error::FlightError) -> Status {
    match e {
        arrow_flight::error::FlightError::Tonic(status) => *status,
        other => {
            error!(error = %other, "encoding a Flight response failed");
            Status::internal(format!("encoding the response failed: {other}"))
        }
    }
}

/// gRPC's "message too large" is RESOURCE_EXHAUSTED; tonic's decoder reports OUT_OF_RANGE,
/// and uses that code for nothing else.
pub fn message_size_status(status: Status) -> Status {
    if status.code() == Code::OutOfRange {
        Status::resource_exhausted(format!(
            "{}; split the data into smaller batches or raise max_message_size",
            status.message()
        ))
    } else {
        status
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn a_restore_still_under_way_says_when_to_retry() {
        let e = Error::from(TenantsError::Restoring {
            tenant: "acme".into(),
            retry_after: 30,
        });
        let status = Status::from(e);
        assert_eq!(status.code(), Code::Unavailable);
        assert!(
            status.message().contains("retry in 30s"),
            "{}",
            status.message()
        );
        assert_eq!(status.metadata().get(RETRY_PUSHBACK).unwrap(), "30000");
    }

    fn store(e: object_store::Error) -> Error {
        LakeError::Store {
            store: "events".into(),
            source: Arc::new(e),
        }
        .into()
    }

    #[test]
    fn store_failures_map_to_what_a_client_can_do() {
        let generic = store(object_store::Error::Generic {
            store: "S3",
            source: "503 Slow Down after 10 retries".into(),
        });
        assert_eq!(code_of(&generic), Code::Unavailable);
        let lost_race = store(object_store::Error::AlreadyExists {
            path: "_delta_log/1.json".into(),
            source: "exists".into(),
        });
        assert_eq!(code_of(&lost_race), Code::Aborted);
        let credentials = store(object_store::Error::Unauthenticated {
            path: "x".into(),
            source: "bad key".into(),
        });
        assert_eq!(code_of(&credentials), Code::FailedPrecondition);
        let message = Status::from(credentials).message().to_string();
        assert!(message.contains("store events"), "{message}");
    }

    #[tokio::test]
    async fn store_failures_that_a_retry_repeats_are_internal() {
        let bad_path = object_store::path::Path::parse("a//b").expect_err("empty segment");
        assert_eq!(code_of(&store(bad_path.into())), Code::Internal);
        let panicked = tokio::spawn(async { panic!("a task of the store client") })
            .await
            .expect_err("the task panicked");
        assert_eq!(code_of(&store(panicked.into())), Code::Internal);
        let not_modified = store(object_store::Error::NotModified {
            path: "_delta_log/_last_checkpoint".into(),
            source: "304".into(),
        });
        assert_eq!(code_of(&not_modified), Code::Internal);
    }

    #[test]
    fn a_huge_message_is_cut_to_fit_a_header() {
        let huge = LakeError::Internal(format!("backtrace: {}", "frame é\n".repeat(5000)));
        let status = Status::from(Error::from(huge));
        assert_eq!(status.code(), Code::Internal);
        assert!(status.message().len() < MAX_STATUS_MESSAGE + 100);
        assert!(status.message().contains("backtrace: frame é"));
        assert!(status
            .message()
            .ends_with("the server log has the whole message)"));
    }

    #[test]
    fn commit_failures_keep_their_category_through_the_query_side_too() {
        let contention = LakeError::CommitContention {
            table: "t".into(),
            attempts: 20,
        };
        assert_eq!(code_of(&contention.clone().into()), Code::Aborted);
        assert_eq!(code_of(&QueryError::Lake(contention).into()), Code::Aborted);
        let unreachable = LakeError::StoreUnreachable {
            store: "blob".into(),
            reason: "connection refused".into(),
        };
        assert_eq!(code_of(&unreachable.into()), Code::Unavailable);
        let residency = LakeError::NoPlacement {
            tenant: "acme".into(),
            region: "eu".into(),
            dataset: "snowplow".into(),
            why: "no store".into(),
        };
        assert_eq!(code_of(&residency.into()), Code::FailedPrecondition);
    }
}
