//! The side HTTP port (`metrics_listen`): `/metrics` (Prometheus text format), `/healthz`
//! (the process answers) and `/readyz` (see `Health`). Plain HTTP/1.1 on its own socket, so
//! scrapers and kubelet probes need no gRPC.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::recorder::prometheus;
use super::Health;

/// Sets the gauges that are read rather than counted (storage per tenant, memory in use)
/// just before a scrape renders them.
pub type Publish = Arc<dyn Fn() + Send + Sync>;

#[derive(Clone)]
struct SideState {
    health: Arc<Health>,
    publish: Publish,
}

/// Serves until `shutdown`; the caller cancels it after the Flight server has drained, so
/// `/readyz` answers "draining" meanwhile.
pub async fn serve(
    listener: TcpListener,
    health: Arc<Health>,
    publish: Publish,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(SideState { health, publish });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

async fn metrics(State(state): State<SideState>) -> impl IntoResponse {
    (state.publish)();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        prometheus().render(),
    )
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<SideState>) -> (StatusCode, String) {
    let readiness = state.health.readiness();
    if readiness.ready {
        let mut body = String::from("ready\n");
        for door in readiness.doors {
            body.push_str(&door);
            body.push('\n');
        }
        (StatusCode::OK, body)
    } else {
        let mut body = String::from("not ready\n");
        for problem in readiness.problems {
            body.push_str(&problem);
            body.push('\n');
        }
        (StatusCode::SERVICE_UNAVAILABLE, body)
    }
}
