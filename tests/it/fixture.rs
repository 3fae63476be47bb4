//! `TestServer`: a lakeport server on an ephemeral loopback port over a temp-dir lake.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray, TimestampMicrosecondArray};
use chrono::{DateTime, TimeZone, Utc};
use datafusion::prelude::SessionContext;
use deltalake::DeltaTable;
use lakeport_client::Client;
use lakeport_server::clock::ManualClock;
use lakeport_server::config::{AuthConfig, DatasetConfig, TenantConfig, TokenHash};
use lakeport_server::datasets::CustomColumns;
use lakeport_server::{Config, Server, StartError};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const ADMIN: &str = "admin-secret";
pub const ACME: &str = "acme-secret";
pub const BETA: &str = "beta-secret";

pub struct TestServer {
    pub addr: SocketAddr,
    pub lake: TempDir,
    pub clock: ManualClock,
    shutdown: CancellationToken,
    handle: JoinHandle<Result<(), StartError>>,
}

/// 2024-05-01T10:20:30Z, the fixture clock's time.
pub fn fixed_now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 10, 20, 30).unwrap()
}

pub fn test_config(lake: &std::path::Path) -> Config {
    let mut datasets = std::collections::BTreeMap::new();
    datasets.insert(
        "clicks".to_string(),
        DatasetConfig {
            custom: Some(CustomColumns {
                time_column: "ts".into(),
                app_column: Some("app".into()),
            }),
            target_file_size: None,
            quality: Default::default(),
            retention: None,
        },
    );
    let mut defaults = Config::default();
    defaults.set_lake(lake.to_string_lossy());
    Config {
        auth: AuthConfig {
            admin_tokens: vec![TokenHash::of_token(ADMIN)],
            tenants: vec![
                TenantConfig {
                    id: "acme".into(),
                    tokens: vec![TokenHash::of_token(ACME)],
                    ..Default::default()
                },
                TenantConfig {
                    id: "beta".into(),
                    tokens: vec![TokenHash::of_token(BETA)],
                    ..Default::default()
                },
            ],
        },
        datasets,
        ingest: lakeport_server::config::IngestConfig {
            commit_interval: std::time::Duration::from_millis(5),
            ..defaults.ingest.clone()
        },
        ..defaults
    }
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let lake = TempDir::new().expect("temp dir");
        let mut config = test_config(lake.path());
        adjust(&mut config);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let clock = ManualClock::new(fixed_now());
        let shutdown = CancellationToken::new();
        let server = Server::new(config).with_clock(Arc::new(clock.clone()));
        let handle = tokio::spawn(server.serve(listener, shutdown.clone()));
        Self {
            addr,
            lake,
            clock,
            shutdown,
            handle,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn client(&self, token: &str) -> Client {
        Client::connect(&self.endpoint())
            .await
            .expect("connect")
            .with_token(token)
    }

    pub async fn anonymous(&self) -> Client {
        Client::connect(&self.endpoint()).await.expect("connect")
    }

    /// Starts a graceful shutdown (what SIGTERM does) without waiting for it.
    pub fn begin_shutdown(&self) {
        self.shutdown.cancel();
    }

    pub async fn shutdown(self) {
        self.shutdown.cancel();
        self.handle
            .await
            .expect("server task")
            .expect("server result");
    }

    pub fn table_path(&self, tenant: &str, dataset: &str) -> PathBuf {
        self.lake
            .path()
            .join(format!("tenant_id={tenant}"))
            .join(dataset)
    }

    pub async fn table(&self, tenant: &str, dataset: &str) -> DeltaTable {
        let url = url::Url::from_directory_path(self.table_path(tenant, dataset)).expect("url");
        deltalake::open_table(url).await.expect("open table")
    }

    /// Rows visible through the Delta log, read with DataFusion.
    pub async fn count(&self, tenant: &str, dataset: &str) -> usize {
        let rows = self
            .query(tenant, dataset, "SELECT count(*) AS n FROM t")
            .await;
        let n = rows[0]
            .column(0)
            .as_any()
            .downcast_ref::<arrow::array::Int64Array>()
            .expect("count is i64")
            .value(0);
        n as usize
    }

    pub async fn query(&self, tenant: &str, dataset: &str, sql: &str) -> Vec<RecordBatch> {
        let table = self.table(tenant, dataset).await;
        let ctx = SessionContext::new();
        ctx.register_table("t", table.table_provider().await.expect("provider"))
            .expect("register");
        ctx.sql(sql)
            .await
            .expect("plan")
            .collect()
            .await
            .expect("run")
    }

    /// Data files present on disk under a table (committed or not).
    pub fn files_on_disk(&self, tenant: &str, dataset: &str) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![self.table_path(tenant, dataset)];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    if !path.ends_with("_delta_log") {
                        stack.push(path);
                    }
                } else if path.extension().is_some_and(|e| e == "parquet") {
                    out.push(path);
                }
            }
        }
        out.sort();
        out
    }
}

/// Every file under `dir` (its path relative to `dir`) with its size: a listing to compare
/// before and after an operation that must leave some objects untouched.
pub fn files_under(dir: &std::path::Path) -> std::collections::BTreeMap<String, u64> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let relative = path.strip_prefix(dir).expect("under dir");
                let size = entry.metadata().expect("metadata").len();
                out.insert(relative.to_string_lossy().into_owned(), size);
            }
        }
    }
    out
}

/// A Snowplow batch: `n` events of app `app` at `at + i seconds`.
pub fn snowplow_batch(app: &str, at: DateTime<Utc>, n: usize, id_prefix: &str) -> RecordBatch {
    let times: Vec<i64> = (0..n)
        .map(|i| at.timestamp_micros() + i as i64 * 1_000_000)
        .collect();
    RecordBatch::try_from_iter(vec![
        (
            "app_id",
            Arc::new(StringArray::from(vec![app; n])) as ArrayRef,
        ),
        (
            "collector_tstamp",
            Arc::new(TimestampMicrosecondArray::from(times).with_timezone("UTC")),
        ),
        (
            "event_id",
            Arc::new(StringArray::from_iter_values(
                (0..n).map(|i| format!("{id_prefix}-{i}")),
            )),
        ),
        ("event", Arc::new(StringArray::from(vec!["page_view"; n]))),
    ])
    .expect("batch")
}

/// Polls `check` until it holds, for up to 30 s, then fails naming `what`. Effects that
/// happen in the background (a registry refresh, a probe, a schedule) are waited for with
/// this, never with a fixed sleep.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

pub fn status_of(err: &lakeport_client::ClientError) -> tonic::Code {
    err.status()
        .map(|s| s.code())
        .unwrap_or(tonic::Code::Unknown)
}
