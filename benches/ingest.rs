//! Ingest throughput: a Snowplow-like table sent over loopback Flight to a lakeport server
//! until committed, against the limit measured in the same run: arrow-rs `ArrowWriter`
//! encoding the same batches with the same settings in process.
//!
//! `cargo run --release -p lakeport-benches --bin ingest -- [ROWS]` (default 1,048,576).
//! Prints both throughputs, their ratio and the server process's peak RSS.

#[path = "common.rs"]
mod common;

use std::time::Instant;

use arrow::array::RecordBatch;
use common::{peak_rss_kib, snowplow_batches, BenchServer};
use lakeport_client::Client;
use lakeport_server::config::Config;
use lakeport_server::lake::files::writer_properties;
use parquet::arrow::ArrowWriter;

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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rows: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1 << 20);
    let batches = snowplow_batches(rows, 6);
    let arrow_bytes: usize = batches.iter().map(|b| b.get_array_memory_size()).sum();
    let config = Config::default();

    let dir = tempfile::TempDir::new()?;
    let server = BenchServer::start(dir.path(), &[]).await?;
    let mut client = Client::connect(&server.endpoint).await?;

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
    let rss = peak_rss_kib(server.process.id());
    drop(server);

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
