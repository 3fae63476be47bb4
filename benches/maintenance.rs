//! Compaction: a lake of many small files (what streaming ingest leaves: 24 puts over 24 hour
//! partitions of four apps, 2,304 files) compacted by `maintenance.run`, in one run:
//!
//! - throughput: lakeport's compaction against the in-process limit on the same files
//!   (read them, sort each partition by event time, encode with ArrowWriter and the same
//!   settings, no store, no commit);
//! - memory: the server's peak RSS during compaction (a server started just for it, with
//!   `maintenance.memory_limit` at its default);
//! - queries: the `benches/query` queries before and after compaction, lakeport against
//!   DuckDB over the same live files (goal after: geometric mean <= 0.6).
//!
//! `cargo run --release -p lakeport-benches --bin maintenance -- [ROWS]` (default 1,048,576).

#[path = "common.rs"]
mod common;
#[path = "query_common.rs"]
mod query_common;

use std::collections::BTreeMap;
use std::time::Instant;

use arrow::array::RecordBatch;
use arrow::compute::{concat_batches, sort_to_indices, take_record_batch};
use common::{peak_rss_kib, snowplow_batches_of_apps, BenchServer};
use lakeport_client::{Client, MaintenanceRunRequest};
use lakeport_server::config::Config;
use lakeport_server::lake::dictionary;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use query_common::{geomean, query_lake, Ratios};

const PUTS: usize = 24;
const HOURS: i64 = 24;
const APPS: usize = 4;
const ADMIN: &str = "bench-admin";
const TENANT: (&str, &str) = ("bench", "token-bench");

fn flags() -> Vec<String> {
    vec![
        "--maintenance-interval".into(),
        "0s".into(),
        "--admin-token".into(),
        ADMIN.into(),
        "--tenant".into(),
        format!("{}={}", TENANT.0, TENANT.1),
    ]
}

async fn start(dir: &std::path::Path) -> anyhow::Result<BenchServer> {
    let flags = flags();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    BenchServer::start(dir, &flags).await
}

/// The in-process limit: every partition's live files read, sorted by event time and
/// encoded into one Parquet buffer with the server's settings. Returns seconds.
fn in_process_compaction(table_dir: &std::path::Path, files: &[String]) -> anyhow::Result<f64> {
    let mut partitions: BTreeMap<&str, Vec<&String>> = BTreeMap::new();
    for file in files {
        let dir = file.rsplit_once('/').map_or("", |(d, _)| d);
        partitions.entry(dir).or_default().push(file);
    }
    let props = Config::default().ingest_settings().writer_properties();
    let start = Instant::now();
    for files in partitions.values() {
        let mut batches: Vec<RecordBatch> = Vec::new();
        for file in files {
            let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(
                table_dir.join(file),
            )?)?
            .build()?;
            for batch in reader {
                batches.push(batch?);
            }
        }
        let schema = batches[0].schema();
        let all = concat_batches(&schema, &batches)?;
        let time = all.column(schema.index_of("collector_tstamp")?);
        let sorted = take_record_batch(&all, &sort_to_indices(time, None, None)?)?;
        let props = dictionary::adapt(props.clone(), &schema, std::slice::from_ref(&sorted));
        let mut writer = ArrowWriter::try_new(Vec::new(), schema, Some(props))?;
        writer.write(&sorted)?;
        std::hint::black_box(writer.into_inner()?.len());
    }
    Ok(start.elapsed().as_secs_f64())
}

fn live_files(table_dir: &std::path::Path) -> anyhow::Result<Vec<(String, u64)>> {
    let runtime = tokio::runtime::Handle::current();
    let url = url::Url::from_directory_path(table_dir).map_err(|_| anyhow::anyhow!("path"))?;
    let table = tokio::task::block_in_place(|| runtime.block_on(deltalake::open_table(url)))?;
    Ok(table
        .snapshot()?
        .log_data()
        .iter()
        .map(|f| (f.path().into_owned(), f.size() as u64))
        .collect())
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or("-".into(), |k| format!("{:.0} MiB", k as f64 / 1024.0))
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let total_rows = common::first_arg_or(1 << 20)?;
    let dir = tempfile::TempDir::new()?;
    let table_dir = dir
        .path()
        .join(format!("lake/tenant_id={}/snowplow", TENANT.0));

    let server = start(dir.path()).await?;
    let mut tenant = Client::connect(&server.endpoint)
        .await?
        .with_token(TENANT.1);
    // Every put a different 1/PUTS of the rows across all partitions (the generator is
    // seeded: the same call twice gives the same rows, which would compress unrealistically
    // well once compaction puts them side by side).
    let generated = snowplow_batches_of_apps(total_rows, HOURS, APPS);
    let all = concat_batches(&generated[0].schema(), &generated)?;
    let load = Instant::now();
    for put in 0..PUTS {
        let rows: Vec<u32> = (put..all.num_rows())
            .step_by(PUTS)
            .map(|i| i as u32)
            .collect();
        let slice = take_record_batch(&all, &arrow::array::UInt32Array::from(rows))?;
        tenant.put(None, "snowplow", vec![slice]).await?;
    }
    let files = live_files(&table_dir)?;
    let bytes: u64 = files.iter().map(|(_, size)| size).sum();
    println!(
        "== lake: {} Snowplow rows in {PUTS} puts over {HOURS} hours x {APPS} apps: {} files, {:.1} MiB, loaded in {:.1} s",
        all.num_rows(),
        files.len(),
        bytes as f64 / (1 << 20) as f64,
        load.elapsed().as_secs_f64()
    );
    let before = query_lake("before compaction", &mut tenant, &table_dir).await?;
    drop(server);

    // A fresh server, so its peak RSS is compaction's.
    let server = start(dir.path()).await?;
    let idle = server.rss_kib();
    let mut admin = Client::connect(&server.endpoint).await?.with_token(ADMIN);
    let started = Instant::now();
    let result = admin
        .maintenance_run(MaintenanceRunRequest::default())
        .await?;
    let lakeport_secs = started.elapsed().as_secs_f64();
    let peak = peak_rss_kib(server.process.id());
    let compactions: Vec<_> = result
        .steps
        .iter()
        .filter(|s| s.kind == "compaction")
        .collect();
    anyhow::ensure!(
        compactions.iter().all(|s| s.outcome == "done"),
        "a compaction did not land: {:?}",
        result.steps
    );
    let files_in: u64 = compactions.iter().map(|s| s.files_in).sum();
    let bytes_in: u64 = compactions.iter().map(|s| s.bytes_in).sum();
    let bytes_out: u64 = compactions.iter().map(|s| s.bytes_out).sum();
    let names: Vec<String> = files.iter().map(|(path, _)| path.clone()).collect();
    let limit_secs = in_process_compaction(&table_dir, &names)?;
    let after_files = live_files(&table_dir)?.len();
    println!(
        "\ncompaction: {files_in} files ({:.1} MiB) into {} ({:.1} MiB) in {lakeport_secs:.2} s = {:.1} MiB/s; \
         in-process read+sort+ArrowWriter of the same files {limit_secs:.2} s; ratio to it {:.2} (1.0 = at the limit)",
        bytes_in as f64 / (1 << 20) as f64,
        compactions.len(),
        bytes_out as f64 / (1 << 20) as f64,
        bytes_in as f64 / (1 << 20) as f64 / lakeport_secs,
        limit_secs / lakeport_secs,
    );
    println!(
        "server RSS: idle {}, peak during compaction {} (maintenance.memory_limit 1 GiB); files now {after_files}",
        mib(idle),
        mib(peak)
    );

    let mut tenant = Client::connect(&server.endpoint)
        .await?
        .with_token(TENANT.1);
    let after = query_lake("after compaction", &mut tenant, &table_dir).await?;
    report(&before, &after);
    Ok(())
}

fn report(before: &Ratios, after: &Ratios) {
    println!(
        "\n{:<18} {:>14} {:>14}",
        "lakeport/DuckDB", "before", "after"
    );
    let after_of: BTreeMap<&str, f64> = after.over_duck.iter().copied().collect();
    for (name, ratio) in &before.over_duck {
        let after = after_of.get(name).map_or("-".into(), |r| format!("{r:.2}"));
        println!("{name:<18} {ratio:>14.2} {after:>14}");
    }
    let mean = |r: &[(&str, f64)]| {
        let values: Vec<f64> = r.iter().map(|(_, v)| *v).collect();
        if values.is_empty() {
            f64::NAN
        } else {
            geomean(&values)
        }
    };
    println!(
        "geometric mean lakeport/DuckDB: before {:.2}, after {:.2} (goal after <= 0.6)",
        mean(&before.over_duck),
        mean(&after.over_duck)
    );
    println!(
        "geometric mean lakeport/in-process DataFusion: before {:.2}, after {:.2}",
        mean(&before.over_df),
        mean(&after.over_df)
    );
}
