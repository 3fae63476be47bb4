//! Memory per table: one small put to each of N tenants, then the server's RSS once those
//! tables are idle, at 100 tables and at N (default 10,000). Run twice in the same process:
//! with idle eviction (`--table-idle-timeout 1s`) and without it (`1h`), the baseline.
//!
//! `cargo run --release -p lakeport-benches --bin tables -- [N]`

#[path = "common.rs"]
mod common;

use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use common::{snowplow_batches, BenchServer};
use futures::StreamExt;
use lakeport_client::Client;

const SMALL: usize = 100;
const PRODUCERS: usize = 8;

/// Puts `batch` to tenants `from..to`, `PRODUCERS` at a time.
async fn put_tenants(
    endpoint: &str,
    batch: &RecordBatch,
    from: usize,
    to: usize,
) -> anyhow::Result<()> {
    let puts = (from..to).map(|i| {
        let batch = batch.clone();
        let endpoint = endpoint.to_string();
        async move {
            let mut client = Client::connect(&endpoint).await?;
            client
                .put(Some(&format!("t{i:05}")), "snowplow", vec![batch])
                .await?;
            anyhow::Ok(())
        }
    });
    let mut running = futures::stream::iter(puts).buffer_unordered(PRODUCERS);
    while let Some(done) = running.next().await {
        done?;
    }
    Ok(())
}

/// RSS once the tables had time to go idle (and be evicted, if the server does).
async fn idle_rss(server: &BenchServer, idle: Duration) -> anyhow::Result<f64> {
    tokio::time::sleep(idle * 3).await;
    let kib = server
        .rss_kib()
        .ok_or_else(|| anyhow::anyhow!("no /proc RSS"))?;
    Ok(kib as f64 / 1024.0)
}

async fn run(n: usize, idle_flag: &str, idle: Duration) -> anyhow::Result<(f64, f64, f64)> {
    let dir = tempfile::TempDir::new()?;
    let server = BenchServer::start(dir.path(), &["--table-idle-timeout", idle_flag]).await?;
    let batch = snowplow_batches(10, 1).remove(0);
    let start = Instant::now();
    put_tenants(&server.endpoint, &batch, 0, SMALL).await?;
    let at_small = idle_rss(&server, idle.min(Duration::from_secs(2))).await?;
    put_tenants(&server.endpoint, &batch, SMALL, n).await?;
    let secs = start.elapsed().as_secs_f64();
    let at_n = idle_rss(&server, idle.min(Duration::from_secs(2))).await?;
    Ok((at_small, at_n, secs))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n = common::first_arg_or(10_000)?;
    anyhow::ensure!(n > SMALL, "N must exceed {SMALL}");
    let (kept_small, kept_n, kept_secs) = run(n, "1h", Duration::from_secs(3600)).await?;
    let (evict_small, evict_n, evict_secs) = run(n, "1s", Duration::from_secs(1)).await?;
    println!("one 10-row put to each of {n} tenants ({PRODUCERS} producers at a time)");
    println!(
        "no eviction (table_idle_timeout 1h): RSS {kept_small:.1} MiB after {SMALL} tables, {kept_n:.1} MiB after {n} ({:.1} KiB per extra table; {kept_secs:.1} s)",
        (kept_n - kept_small) * 1024.0 / (n - SMALL) as f64
    );
    println!(
        "idle eviction (table_idle_timeout 1s): RSS {evict_small:.1} MiB after {SMALL} tables, {evict_n:.1} MiB after {n} ({:.1} KiB per extra table; {evict_secs:.1} s)",
        (evict_n - evict_small) * 1024.0 / (n - SMALL) as f64
    );
    println!(
        "RSS ratio {n} / {SMALL} idle tables: {:.2} with eviction (goal <= 2), {:.2} without",
        evict_n / evict_small,
        kept_n / kept_small
    );
    Ok(())
}
