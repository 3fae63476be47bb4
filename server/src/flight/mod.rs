//! The Arrow Flight / Flight SQL surface. `FlightEndpoint` authenticates every call except
//! the handshake and hands it to `SqlService`, arrow-flight's `FlightSqlService`.

mod endpoint;
mod handshake;
mod ingest;
mod metadata;
mod query;
mod sql_service;

pub use endpoint::FlightEndpoint;
pub use sql_service::SqlService;
