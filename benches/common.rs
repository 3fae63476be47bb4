//! Shared by the benchmarks: the generated Snowplow data and starting a server.

// Each bench binary uses only part of this module.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use arrow::array::{
    ArrayRef, Float64Array, Int32Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The server's allocator, so in-process baselines allocate the way the server does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub const BATCH_ROWS: usize = 65_536;
pub const START_US: i64 = 1_714_521_600_000_000; // 2024-05-01T00:00:00Z

/// `rows` Snowplow-like events of four apps spread evenly over `span_hours` from
/// 2024-05-01T00:00Z.
pub fn snowplow_batches(rows: usize, span_hours: i64) -> Vec<RecordBatch> {
    snowplow_batches_of_apps(rows, span_hours, 4)
}

/// As [`snowplow_batches`], from the first `app_count` (1 to 4) apps.
pub fn snowplow_batches_of_apps(
    rows: usize,
    span_hours: i64,
    app_count: usize,
) -> Vec<RecordBatch> {
    let mut rng = StdRng::seed_from_u64(42);
    let apps = &["web", "ios", "android", "partner"][..app_count];
    let events = ["page_view", "page_ping", "struct", "unstruct"];
    let countries = ["US", "GB", "DE", "FR", "PL", "BR", "JP", "IN"];
    let mut out = Vec::new();
    let mut done = 0;
    while done < rows {
        let n = BATCH_ROWS.min(rows - done);
        let idx: Vec<usize> = (done..done + n).collect();
        let columns: Vec<(&str, ArrayRef)> = vec![
            (
                "app_id",
                Arc::new(StringArray::from_iter_values(
                    idx.iter().map(|_| apps[rng.gen_range(0..apps.len())]),
                )),
            ),
            (
                "collector_tstamp",
                Arc::new(
                    TimestampMicrosecondArray::from_iter_values(
                        // in arrival order with jitter
                        idx.iter().map(|i| {
                            START_US
                                + (*i as i64 * span_hours * 3_600_000_000 / rows as i64)
                                + rng.gen_range(0..1_000_000)
                        }),
                    )
                    .with_timezone("UTC"),
                ),
            ),
            (
                "event_id",
                Arc::new(StringArray::from_iter_values(
                    idx.iter()
                        .map(|i| format!("{:08x}-bench-{i:012}", rng.gen::<u32>())),
                )),
            ),
            (
                "event",
                Arc::new(StringArray::from_iter_values(
                    idx.iter().map(|_| events[rng.gen_range(0..4)]),
                )),
            ),
            (
                "platform",
                Arc::new(StringArray::from_iter_values(idx.iter().map(|_| "web"))),
            ),
            (
                "domain_userid",
                Arc::new(StringArray::from_iter_values(
                    idx.iter()
                        .map(|_| format!("user-{:06}", rng.gen_range(0..50_000))),
                )),
            ),
            (
                "domain_sessionidx",
                Arc::new(Int32Array::from_iter_values(
                    idx.iter().map(|_| rng.gen_range(1..40)),
                )),
            ),
            (
                "geo_country",
                Arc::new(StringArray::from_iter_values(
                    idx.iter().map(|_| countries[rng.gen_range(0..8)]),
                )),
            ),
            (
                "page_urlpath",
                Arc::new(StringArray::from_iter_values(
                    idx.iter()
                        .map(|_| format!("/products/{}", rng.gen_range(0..2_000))),
                )),
            ),
            (
                "page_title",
                Arc::new(StringArray::from_iter_values(
                    idx.iter()
                        .map(|_| format!("Product {}", rng.gen_range(0..2_000))),
                )),
            ),
            (
                "br_viewwidth",
                Arc::new(Int32Array::from_iter_values(
                    idx.iter().map(|_| rng.gen_range(320..2560)),
                )),
            ),
            (
                "geo_latitude",
                Arc::new(Float64Array::from_iter_values(
                    idx.iter().map(|_| rng.gen_range(-60.0..60.0)),
                )),
            ),
        ];
        out.push(RecordBatch::try_from_iter(columns).expect("batch"));
        done += n;
    }
    out
}

/// The bench's first command-line argument as a number, or `default` without one.
pub fn first_arg_or(default: usize) -> anyhow::Result<usize> {
    Ok(std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(default))
}

/// The `q` quantile (0 to 1) of `sorted`, which must not be empty.
pub fn quantile<T: Copy>(sorted: &[T], q: f64) -> T {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    proc_status_kib(pid, "VmHWM:")
}

pub fn server_binary() -> anyhow::Result<std::path::PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe.with_file_name("lakeport-server");
    anyhow::ensure!(path.exists(), "{} missing: build it with the same profile first (cargo build --release -p lakeport-server)", path.display());
    Ok(path)
}

/// A `lakeport-server` of the bench's build profile.
pub struct BenchServer {
    pub process: std::process::Child,
    pub endpoint: String,
}

impl BenchServer {
    /// Over a local lake in `dir`, with `extra` flags.
    pub async fn start(dir: &std::path::Path, extra: &[&str]) -> anyhow::Result<Self> {
        let lake = dir.join("lake");
        Self::start_on(dir, &lake.to_string_lossy(), extra, &[]).await
    }

    /// Over the store `lake` (a path or URL), with `extra` flags and environment `env`.
    pub async fn start_on(
        dir: &std::path::Path,
        lake: &str,
        extra: &[&str],
        env: &[(&str, String)],
    ) -> anyhow::Result<Self> {
        let addr_file = dir.join(format!("addr-{}", uuid_like()));
        let mut process = std::process::Command::new(server_binary()?)
            .args(["--listen", "127.0.0.1:0", "--lake", lake])
            .arg("--addr-file")
            .arg(&addr_file)
            .args(extra)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env(
                "LAKEPORT_LOG",
                std::env::var("LAKEPORT_LOG").unwrap_or_else(|_| {
                    // delta-kernel logs an ERROR each time it probes a table that does not
                    // exist yet (every first write does).
                    "warn,buoyant_kernel::snapshot::builder=off".into()
                }),
            )
            .spawn()
            .context("start lakeport-server")?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while !addr_file.exists() {
            if let Some(status) = process.try_wait()? {
                anyhow::bail!("lakeport-server exited with {status}");
            }
            anyhow::ensure!(Instant::now() < deadline, "server did not start");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let endpoint = format!("http://{}", std::fs::read_to_string(&addr_file)?.trim());
        Ok(Self { process, endpoint })
    }

    /// The server's resident memory now, in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        proc_status_kib(self.process.id(), "VmRSS:")
    }
}

fn uuid_like() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}

fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
}

/// The Python of the test venv (`$LAKEPORT_BENCH_PYTHON`, else the newest venv tests/run
/// made in `$LAKEPORT_CACHE`), for DuckDB and moto.
pub fn bench_python() -> Option<std::path::PathBuf> {
    if let Ok(python) = std::env::var("LAKEPORT_BENCH_PYTHON") {
        return Some(python.into());
    }
    let cache = std::env::var("LAKEPORT_CACHE")
        .map(std::path::PathBuf::from)
        .or_else(|_| {
            std::env::var("HOME").map(|h| std::path::Path::new(&h).join(".cache/lakeport"))
        })
        .ok()?;
    std::fs::read_dir(cache)
        .ok()?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("pyvenv-"))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .max()
        .map(|(_, path)| path.join("bin/python"))
        .filter(|p| p.exists())
}

/// A moto S3 server on loopback (from the test venv), killed on drop.
pub struct Moto {
    process: std::process::Child,
    pub endpoint: String,
}

impl Moto {
    pub async fn start(python: &std::path::Path) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let process = std::process::Command::new(python)
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("start moto (pip install 'moto[server]')")?;
        let moto = Self {
            process,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            anyhow::ensure!(Instant::now() < deadline, "moto did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(moto)
    }

    /// Creates a bucket (moto accepts unsigned requests).
    pub async fn bucket(&self, name: &str) -> anyhow::Result<()> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let host = self.endpoint.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(host).await?;
        let request = format!("PUT /{name} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await?;
        anyhow::ensure!(
            answer.starts_with("HTTP/1.1 200"),
            "creating bucket {name}: {answer}"
        );
        Ok(())
    }

    /// What a lakeport-server needs in its environment to use this moto.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT", self.endpoint.clone()),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_ACCESS_KEY_ID", "bench".into()),
            ("AWS_SECRET_ACCESS_KEY", "bench".into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl Drop for BenchServer {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}
