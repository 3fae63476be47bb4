//! The Arrow Flight / Flight SQL surface. `FlightEndpoint` authenticates every call except
//! the handshake and hands it to `SqlService`, arrow-flight's `FlightSqlService`.

mod action_body;
mod actions;
mod endpoint;
mod handshake;
mod ingest;
pub mod intake_gate;
mod lifecycle_actions;
mod metadata;
mod put_decode;
mod put_metadata;
mod quality_action;
mod query;
mod sql_service;
mod steps;
mod tenant_actions;
mod throttle;

pub use actions::Actions;
pub use endpoint::FlightEndpoint;
pub use sql_service::SqlService;

/// Failures of the Flight surface itself (not of ingest or query).
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("request was not authenticated")]
    NotAuthenticated,
    #[error("header {header} {problem}")]
    BadHeader {
        header: &'static str,
        problem: &'static str,
    },
    #[error("{command} is not supported by lakeport: {why}")]
    Unimplemented { command: String, why: String },
    #[error("bad parameter data: {0}")]
    BadParameters(String),
    #[error("cannot encode {what}: {detail}")]
    Encode { what: &'static str, detail: String },
}
