//! Integration tests: one binary, one shared fixture (a real server on 127.0.0.1:0 over a
//! temporary lake, with a manual clock).

mod fixture;

mod activity;
mod archival;
mod auth;
mod engine;
mod errors;
mod idempotency;
mod ingest;
mod layering;
mod layout;
mod maintenance;
mod offboarding;
mod operations;
mod quality;
mod query_queue;
mod read_paths;
mod registry;
mod retention;
mod schema;
mod tenants;
