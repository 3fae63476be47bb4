//! Running lakeport in production: the Prometheus recorder, liveness and readiness, the
//! side HTTP port that serves them, and the log subscriber.

pub mod health;
pub mod logging;
pub mod recorder;
pub mod side_port;

pub use health::Health;
pub use logging::LogFormat;
