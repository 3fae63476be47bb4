//! The server's error type and its one mapping to gRPC status codes.

use tonic::{Code, Status};
use tracing::{error, info, warn};

use crate::auth::AuthError;
use crate::config::ConfigError;
use crate::datasets::DatasetError;
use crate::ingest::IngestError;
use crate::lake::LakeError;
use crate::names::NameError;
use crate::query::QueryError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
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
    #[error("refusing to start without credentials on {0}: configure [auth] admin_token or [[tenants]] tokens, or listen on a loopback address")]
    OpenNonLoopback(String),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("transport error: {0}")]
    Transport(#[from] tonic::transport::Error),
}

impl From<Error> for Status {
    fn from(e: Error) -> Status {
        let code = code_of(&e);
        let message = e.to_string();
        let client_side = matches!(e, Error::Ingest(IngestError::Client(_)));
        match code {
            _ if client_side => info!(%message, "client stream ended with an error"),
            Code::Internal | Code::Unknown => error!(%message, "request failed"),
            Code::Unavailable
            | Code::Aborted
            | Code::ResourceExhausted
            | Code::DeadlineExceeded => {
                warn!(%message, "request failed")
            }
            _ => info!(%message, "request refused"),
        }
        if let Error::Ingest(IngestError::Client(status)) = e {
            return status;
        }
        Status::new(code, message)
    }
}

fn code_of(e: &Error) -> Code {
    match e {
        Error::Config(_) => Code::InvalidArgument,
        Error::Auth(a) => match a {
            AuthError::Missing
            | AuthError::InvalidToken
            | AuthError::Malformed
            | AuthError::WrongTenant(_) => Code::Unauthenticated,
            AuthError::OtherTenant { .. } => Code::PermissionDenied,
            AuthError::AdminNeedsTenant => Code::InvalidArgument,
        },
        Error::Name(_) => Code::InvalidArgument,
        Error::Dataset(d) => match d {
            DatasetError::Unknown(_) => Code::NotFound,
            DatasetError::BadConfig { .. } => Code::FailedPrecondition,
        },
        Error::Ingest(i) => match i {
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
            | IngestError::Unsupported(_) => Code::InvalidArgument,
            IngestError::MessageTooLarge(_) => Code::ResourceExhausted,
            IngestError::TableExists(_) => Code::AlreadyExists,
            IngestError::TableMissing(_) => Code::NotFound,
            IngestError::Client(status) => status.code(),
            IngestError::Arrow(_) => Code::Internal,
        },
        Error::Lake(l) => match l {
            LakeError::SequenceOverlap { .. } => Code::FailedPrecondition,
            LakeError::SchemaConflict { .. } => Code::Aborted,
            LakeError::CreateRace(_) => Code::Aborted,
            LakeError::ShuttingDown => Code::Unavailable,
            LakeError::EarlierUnitFailed => Code::Aborted,
            LakeError::ObjectStore(_) => Code::Unavailable,
            LakeError::BadLocation(_) => Code::FailedPrecondition,
            LakeError::Delta(_) | LakeError::Parquet(_) | LakeError::Internal(_) => Code::Internal,
        },
        Error::Query(q) => match q {
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
            QueryError::TicketExpired | QueryError::VersionGone { .. } => Code::FailedPrecondition,
            QueryError::Storage(_) => Code::Unavailable,
            QueryError::Execution(_) => Code::Internal,
        },
        Error::OpenNonLoopback(_) => Code::FailedPrecondition,
        Error::Io(_) => Code::Internal,
        Error::Transport(_) => Code::Unavailable,
    }
}
