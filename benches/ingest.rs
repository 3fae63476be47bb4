//! Ingest: a Snowplow-like table sent over loopback Flight to lakeport servers, against
//! baselines measured in the same run:
//! - bulk: 1M rows in one DoPut until committed, against arrow-rs `ArrowWriter` encoding the
//!   same batches with the same settings in process (the limit), and against the `deltalake`
//!   package's `write_deltalake` of the same table with the same partition columns (what
//!   users run instead); also into S3 (moto on loopback), to show the store's share;
//! - small producers: 8 producers × 20 puts × 2,000 rows, each put waiting for its ack,
//!   against 160 sequential `write_deltalake` appends of the same batches;
//! - ack latency: p50 / p99 of one small put on an idle server;
//! - memory: peak RSS with 50 concurrent producers against `memory_limit`.
//!
//! `cargo build --release --workspace --bins && target/release/ingest [ROWS]`.

#[path = "common.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::ipc::writer::FileWriter;
use common::{peak_rss_kib, snowplow_batches, BenchServer};
use lakeport_client::Client;
use lakeport_server::config::Config;
use lakeport_server::lake::dictionary;
use parquet::arrow::ArrowWriter;

const SMALL_PRODUCERS: usize = 8;
const SMALL_PUTS: usize = 20;
const SMALL_ROWS: usize = 2_000;
const LATENCY_PUTS: usize = 50;
const LATENCY_ROWS: usize = 100;
const MANY_PRODUCERS: usize = 50;
const MANY_MEMORY_LIMIT_MIB: u64 = 256;

/// The limit: ArrowWriter encoding the same batches with the server's Parquet settings,
/// including its per-file dictionary choice.
fn baseline(batches: &[RecordBatch], config: &Config) -> anyhow::Result<f64> {
    let start = Instant::now();
    let props = dictionary::adapt(
        config.ingest_settings().writer_properties(),
        &batches[0].schema(),
        batches,
    );
    let mut writer = ArrowWriter::try_new(Vec::new(), batches[0].schema(), Some(props))?;
    for batch in batches {
        writer.write(batch)?;
    }
    let bytes = writer.into_inner()?;
    std::hint::black_box(bytes.len());
    Ok(start.elapsed().as_secs_f64())
}

/// One timed load of `batches` into a fresh server; returns seconds and peak RSS.
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

/// `batches` cut into batches of `rows`.
fn rebatch(batches: &[RecordBatch], rows: usize) -> anyhow::Result<Vec<RecordBatch>> {
    let all = arrow::compute::concat_batches(&batches[0].schema(), batches)?;
    Ok((0..all.num_rows())
        .step_by(rows)
        .map(|offset| all.slice(offset, rows.min(all.num_rows() - offset)))
        .collect())
}

/// 8 producers at once, each putting its batches one by one and waiting for each ack.
async fn small_producers(endpoint: &str, batches: &[RecordBatch]) -> anyhow::Result<f64> {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for p in 0..SMALL_PRODUCERS {
        let mine: Vec<RecordBatch> = batches
            .iter()
            .skip(p)
            .step_by(SMALL_PRODUCERS)
            .cloned()
            .collect();
        let endpoint = endpoint.to_string();
        tasks.push(tokio::spawn(async move {
            let mut client = Client::connect(&endpoint).await?;
            for batch in mine {
                let rows = batch.num_rows() as u64;
                let acks = client.put(Some("small"), "snowplow", vec![batch]).await?;
                let committed: u64 = acks.iter().map(|a| a.rows_committed).sum();
                anyhow::ensure!(committed == rows, "committed {committed} of {rows}");
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(start.elapsed().as_secs_f64())
}

/// Sequential small puts on an otherwise idle server: each put's time to its ack.
async fn ack_latencies(endpoint: &str, batch: &RecordBatch) -> anyhow::Result<Vec<Duration>> {
    let mut client = Client::connect(endpoint).await?;
    client
        .put(Some("latency"), "snowplow", vec![batch.clone()])
        .await?;
    let mut out = Vec::with_capacity(LATENCY_PUTS);
    for _ in 0..LATENCY_PUTS {
        let start = Instant::now();
        client
            .put(Some("latency"), "snowplow", vec![batch.clone()])
            .await?;
        out.push(start.elapsed());
    }
    out.sort();
    Ok(out)
}

/// 50 producers each putting `batches` at once into a server with a small memory limit;
/// returns the server's RSS before and its peak during the load.
async fn many_producers(
    dir: &Path,
    batches: &[RecordBatch],
) -> anyhow::Result<(Option<u64>, Option<u64>)> {
    let limit = format!("{MANY_MEMORY_LIMIT_MIB}MiB");
    let server = BenchServer::start(dir, &["--memory-limit", &limit]).await?;
    let mut client = Client::connect(&server.endpoint).await?;
    client
        .put(Some("many"), "snowplow", batches[..1].to_vec())
        .await?;
    let idle = server.rss_kib();
    let mut tasks = Vec::new();
    for _ in 0..MANY_PRODUCERS {
        let endpoint = server.endpoint.clone();
        let batches = batches.to_vec();
        tasks.push(tokio::spawn(async move {
            let mut client = Client::connect(&endpoint).await?;
            client.put(Some("many"), "snowplow", batches).await?;
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok((idle, peak_rss_kib(server.process.id())))
}

fn write_ipc(path: &Path, batches: &[RecordBatch]) -> anyhow::Result<()> {
    let mut writer = FileWriter::try_new(std::fs::File::create(path)?, &batches[0].schema())?;
    for batch in batches {
        writer.write(batch)?;
    }
    writer.finish()?;
    Ok(())
}

/// Seconds `write_deltalake` takes in `mode` (see ingest_deltalake.py).
fn write_deltalake(python: &Path, mode: &str, ipc: &Path, table: &Path) -> anyhow::Result<f64> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("ingest_deltalake.py");
    let out = std::process::Command::new(python)
        .arg(script)
        .args([mode.as_ref(), ipc.as_os_str(), table.as_os_str()])
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "write_deltalake {mode}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    answer["seconds"]
        .as_f64()
        .ok_or_else(|| anyhow::anyhow!("no seconds in {answer}"))
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or("?".into(), |kib| format!("{:.1} MiB", kib as f64 / 1024.0))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rows = common::first_arg_or(1 << 20)?;
    let batches = snowplow_batches(rows, 6);
    let arrow_bytes: usize = batches.iter().map(|b| b.get_array_memory_size()).sum();
    let config = Config::default();
    let dir = tempfile::TempDir::new()?;
    let python = common::bench_python();
    let mrows = |secs: f64| rows as f64 / secs / 1e6;
    println!(
        "rows: {rows} in {} batches, {:.1} MiB of Arrow data",
        batches.len(),
        arrow_bytes as f64 / 1048576.0
    );

    // Bulk load.
    let baseline_secs = baseline(&batches, &config)?;
    println!(
        "baseline ArrowWriter (in process): {baseline_secs:.3} s, {:.2} Mrows/s",
        mrows(baseline_secs)
    );
    let local = BenchServer::start(dir.path(), &[]).await?;
    let (local_secs, local_rss) = timed_load(&batches, rows, local).await?;
    println!(
        "bulk: lakeport over loopback Flight into a local store, until committed: {local_secs:.3} s, {:.2} Mrows/s, ratio to ArrowWriter {:.2} (goal >= 0.8), server peak RSS {}",
        mrows(local_secs),
        baseline_secs / local_secs,
        mib(local_rss)
    );
    if let Some(python) = &python {
        let ipc = dir.path().join("bulk.arrow");
        write_ipc(&ipc, &batches)?;
        let secs = write_deltalake(python, "bulk", &ipc, &dir.path().join("dl-bulk"))?;
        println!(
            "bulk: write_deltalake of the same table: {secs:.3} s; lakeport takes {:.2}x its time (goal <= 0.5)",
            local_secs / secs
        );
        let moto = common::Moto::start(python).await?;
        moto.bucket("bench").await?;
        let server = BenchServer::start_on(dir.path(), "s3://bench/lake", &[], &moto.env()).await?;
        let (secs, rss) = timed_load(&batches, rows, server).await?;
        println!(
            "bulk: into S3 (moto on loopback): {secs:.3} s, ratio to ArrowWriter {:.2}, {:.2}x the local time (the store's share), server peak RSS {}",
            baseline_secs / secs,
            secs / local_secs,
            mib(rss)
        );
    }

    // Small producers and ack latency, on one fresh server with default settings.
    let small = rebatch(
        &snowplow_batches(SMALL_PRODUCERS * SMALL_PUTS * SMALL_ROWS, 6),
        SMALL_ROWS,
    )?;
    let server = BenchServer::start(dir.path(), &[]).await?;
    let mut client = Client::connect(&server.endpoint).await?;
    client
        .put(Some("small"), "snowplow", small[..1].to_vec())
        .await?;
    let small_secs = small_producers(&server.endpoint, &small).await?;
    println!(
        "small producers: {SMALL_PRODUCERS} x {SMALL_PUTS} puts x {SMALL_ROWS} rows, each waiting for its ack: {small_secs:.3} s"
    );
    if let Some(python) = &python {
        let ipc = dir.path().join("small.arrow");
        write_ipc(&ipc, &small)?;
        let secs = write_deltalake(python, "appends", &ipc, &dir.path().join("dl-small"))?;
        println!(
            "small producers: {} sequential write_deltalake appends: {secs:.3} s; lakeport takes {:.2}x their time (goal <= 0.2)",
            small.len(),
            small_secs / secs
        );
    }
    let latencies = ack_latencies(&server.endpoint, &small[0].slice(0, LATENCY_ROWS)).await?;
    let at = |q: f64| common::quantile(&latencies, q);
    println!(
        "ack latency of one {LATENCY_ROWS}-row put on an idle server ({LATENCY_PUTS} puts): p50 {:.1} ms (goal <= 30 ms, {:.2}x the commit_interval), p99 {:.1} ms",
        at(0.5).as_secs_f64() * 1e3,
        at(0.5).as_secs_f64() / config.ingest.commit_interval.as_secs_f64(),
        at(0.99).as_secs_f64() * 1e3
    );
    drop(server);

    // Memory with many producers.
    let per_producer = &batches[..batches.len().min(4)];
    // A lake of its own: a server started over the earlier cases' tables would first count
    // their rows (loading each snapshot), which is not what this case measures.
    let many_dir = dir.path().join("many");
    std::fs::create_dir_all(&many_dir)?;
    let (idle, peak) = many_producers(&many_dir, per_producer).await?;
    let limit_kib = MANY_MEMORY_LIMIT_MIB * 1024;
    println!(
        "memory: {MANY_PRODUCERS} producers x {} rows at once, memory_limit {MANY_MEMORY_LIMIT_MIB} MiB: server RSS idle {}, peak {}, (peak - idle) / memory_limit {}",
        per_producer.iter().map(|b| b.num_rows()).sum::<usize>(),
        mib(idle),
        mib(peak),
        match (idle, peak) {
            (Some(i), Some(p)) => format!("{:.2}", (p.saturating_sub(i)) as f64 / limit_kib as f64),
            _ => "?".into(),
        }
    );
    if python.is_none() {
        println!("write_deltalake and S3 runs skipped: no Python venv (run tests/run once, or set LAKEPORT_BENCH_PYTHON)");
    }
    Ok(())
}
