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

/// One timed load of `batches` into a fresh server over `lake`; returns seconds and the
/// server's peak RSS.
async fn timed_load(
    batches: &[RecordBatch],
    rows: usize,
    server: BenchServer,
) -> anyhow::Result<(f64, Option<u64>)> {
    let mut client = Client::connect(&server.endpoint).await?;
    // Warm-up: the table exists, so the timed run measures steady-state ingest.
    client
        .put(Some("bench"), "snowplow", batches[..1].to_vec())
        .await?;
    let start = Instant::now();
    let acks = client
        .put(Some("bench"), "snowplow", batches.to_vec())
        .await?;
    let secs = start.elapsed().as_secs_f64();
    let committed: u64 = acks.iter().map(|a| a.rows_committed).sum();
    anyhow::ensure!(
        committed == rows as u64,
        "committed {committed} of {rows} rows"
    );
    Ok((secs, peak_rss_kib(server.process.id())))
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

    let baseline_secs = baseline(&batches, &config)?;
    let local = BenchServer::start(dir.path(), &[]).await?;
    let (local_secs, local_rss) = timed_load(&batches, rows, local).await?;
    let s3 = match common::bench_python() {
        Some(python) => {
            let moto = common::Moto::start(&python).await?;
            moto.bucket("bench").await?;
            let server =
                BenchServer::start_on(dir.path(), "s3://bench/lake", &[], &moto.env()).await?;
            Some(timed_load(&batches, rows, server).await?)
        }
        None => None,
    };

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
    let report = |store: &str, secs: f64, rss: Option<u64>| {
        println!(
            "lakeport over loopback Flight into {store}, until committed: {secs:.3} s, {:.2} Mrows/s, ratio to baseline {:.2}, server peak RSS {}",
            mrows(secs),
            baseline_secs / secs,
            rss.map_or("?".into(), |kib| format!("{:.1} MiB", kib as f64 / 1024.0)),
        );
    };
    report("a local store", local_secs, local_rss);
    match s3 {
        Some((secs, rss)) => {
            report("S3 (moto on loopback)", secs, rss);
            println!(
                "the store's share: S3 (moto) takes {:.2}x the local time",
                secs / local_secs
            );
        }
        None => println!("S3 run skipped: no Python with moto (run tests/run once, or set LAKEPORT_BENCH_PYTHON)"),
    }
    println!(
        "(memory_limit {} MiB, flush_size {} MiB)",
        config.ingest.memory_limit >> 20,
        config.ingest.flush_size >> 20
    );
    Ok(())
}
