//! Ingest throughput: a Snowplow-like table sent over loopback Flight to a lakeport server
//! until committed, against the limit measured in the same run: arrow-rs `ArrowWriter`
//! encoding the same batches with the same settings in process.
//!
//! `cargo run --release -p lakeport-benches --bin ingest -- [ROWS]` (default 1,048,576).
//! Prints both throughputs, their ratio and the server process's peak RSS.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use arrow::array::{
    ArrayRef, Float64Array, Int32Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use lakeport_client::Client;
use lakeport_server::config::Config;
use lakeport_server::lake::files::writer_properties;
use parquet::arrow::ArrowWriter;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const BATCH_ROWS: usize = 65_536;
const START_US: i64 = 1_714_521_600_000_000; // 2024-05-01T00:00:00Z

fn snowplow_batches(rows: usize) -> Vec<RecordBatch> {
    let mut rng = StdRng::seed_from_u64(42);
    let apps = ["web", "ios", "android", "partner"];
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
                    idx.iter().map(|_| apps[rng.gen_range(0..4)]),
                )),
            ),
            (
                "collector_tstamp",
                Arc::new(
                    TimestampMicrosecondArray::from_iter_values(
                        // six hours of traffic, in arrival order with jitter
                        idx.iter().map(|i| {
                            START_US
                                + (*i as i64 * 21_600_000_000 / rows as i64)
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

/// The limit: ArrowWriter encoding the same batches with the server's Parquet settings.
fn baseline(batches: &[RecordBatch], config: &Config) -> anyhow::Result<f64> {
    let start = Instant::now();
    let mut writer = ArrowWriter::try_new(
        Vec::new(),
        batches[0].schema(),
        Some(writer_properties(&config.ingest)),
    )?;
    for batch in batches {
        writer.write(batch)?;
    }
    let bytes = writer.into_inner()?;
    std::hint::black_box(bytes.len());
    Ok(start.elapsed().as_secs_f64())
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
}

fn server_binary() -> anyhow::Result<std::path::PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe.with_file_name("lakeport-server");
    anyhow::ensure!(path.exists(), "{} missing: build it with the same profile first (cargo build --release -p lakeport-server)", path.display());
    Ok(path)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rows: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1 << 20);
    let batches = snowplow_batches(rows);
    let arrow_bytes: usize = batches.iter().map(|b| b.get_array_memory_size()).sum();
    let config = Config::default();

    let lake = tempfile::TempDir::new()?;
    let addr_file = lake.path().join("addr");
    let mut server = std::process::Command::new(server_binary()?)
        .args(["--listen", "127.0.0.1:0", "--lake"])
        .arg(lake.path().join("lake"))
        .arg("--addr-file")
        .arg(&addr_file)
        .env(
            "LAKEPORT_LOG",
            std::env::var("LAKEPORT_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .spawn()
        .context("start lakeport-server")?;
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    while !addr_file.exists() {
        anyhow::ensure!(Instant::now() < deadline, "server did not start");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let endpoint = format!("http://{}", std::fs::read_to_string(&addr_file)?.trim());
    let mut client = Client::connect(&endpoint).await?;

    // Warm-up: the table exists, so the timed run measures steady-state ingest.
    client
        .put(Some("bench"), "snowplow", batches[..1].to_vec())
        .await?;

    let baseline_secs = baseline(&batches, &config)?;
    let start = Instant::now();
    let acks = client
        .put(Some("bench"), "snowplow", batches.clone())
        .await?;
    let lakeport_secs = start.elapsed().as_secs_f64();
    let committed: u64 = acks.iter().map(|a| a.rows_committed).sum();
    anyhow::ensure!(
        committed == rows as u64,
        "committed {committed} of {rows} rows"
    );
    let rss = peak_rss_kib(server.id());
    let _ = server.kill();

    let mrows = |secs: f64| rows as f64 / secs / 1e6;
    println!(
        "rows: {rows} in {} batches, {:.1} MiB of Arrow data",
        batches.len(),
        arrow_bytes as f64 / 1048576.0
    );
    println!(
        "baseline ArrowWriter (in process): {baseline_secs:.3} s, {:.2} Mrows/s",
        mrows(baseline_secs)
    );
    println!(
        "lakeport over loopback Flight, until committed: {lakeport_secs:.3} s, {:.2} Mrows/s",
        mrows(lakeport_secs)
    );
    println!(
        "throughput ratio lakeport/baseline: {:.2}",
        baseline_secs / lakeport_secs
    );
    if let Some(kib) = rss {
        println!(
            "server peak RSS: {:.1} MiB (memory_limit {} MiB, flush_size {} MiB)",
            kib as f64 / 1024.0,
            config.ingest.memory_limit >> 20,
            config.ingest.flush_size >> 20
        );
    }
    Ok(())
}
