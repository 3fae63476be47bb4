//! The process's one Prometheus recorder: every subsystem's `metrics.rs` records through the
//! `metrics` facade into it, and `/metrics` renders it.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;

/// Seconds: from a fast commit on local disk to a slow query on a remote store.
const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Bytes: from a small hour file to a compacted 512 MiB one.
const SIZE_BUCKETS: [f64; 10] = [
    16_384.0,
    65_536.0,
    262_144.0,
    1_048_576.0,
    4_194_304.0,
    16_777_216.0,
    67_108_864.0,
    134_217_728.0,
    268_435_456.0,
    536_870_912.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The recorder, installed as the global one on first use. Several servers in one process
/// (tests) share it; a process that installed another recorder gets an empty one here.
pub fn prometheus() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = with_buckets().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "metric buckets refused; histograms render as summaries");
            PrometheusBuilder::new()
        });
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics stays empty");
        }
        crate::describe_metrics();
        handle
    })
}

fn with_buckets() -> Result<PrometheusBuilder, BuildError> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &LATENCY_BUCKETS)?
        .set_buckets_for_metric(Matcher::Suffix("_size_bytes".into()), &SIZE_BUCKETS)
}

/// Drains histogram samples into their buckets now and then, as the exporter asks of
/// whoever installs the recorder without its own listener.
pub fn spawn_upkeep(shutdown: CancellationToken) {
    let handle = prometheus();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => handle.run_upkeep(),
            }
        }
    });
}
