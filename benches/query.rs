//! Query latency: Snowplow analytics queries through lakeport's Flight SQL, against
//! DataFusion reading the same Delta table in process (lakeport's overhead) and, when the
//! bench's Python venv has it, DuckDB over the same Parquet files. All in the same run, on
//! two lake shapes: many hour partitions of one small file each (what streaming ingest
//! leaves), and a bulk load (few partitions, large files of several row groups). Then
//! dashboard-style concurrency: 1, 4 and 16 clients of two tenants at once.
//!
//! `cargo run --release -p lakeport-benches --bin query -- [ROWS]` (default 1,048,576).
//! DuckDB runs through `$LAKEPORT_BENCH_PYTHON` (default: the venv tests/run made in
//! `$LAKEPORT_CACHE`).

#[path = "common.rs"]
mod common;
#[path = "query_common.rs"]
mod query_common;

use std::time::Instant;

use common::{snowplow_batches_of_apps, BenchServer};
use lakeport_client::Client;
use query_common::{means, query_lake, via_lakeport, QUERIES};

const TENANTS: [(&str, &str); 2] = [("bench", "token-bench"), ("bench2", "token-bench2")];
const CONCURRENT_CLIENTS: [usize; 3] = [1, 4, 16];
const QUERIES_PER_CLIENT: usize = 4;

/// A lake to query: how the same generated events are spread and written.
struct Shape {
    name: &'static str,
    span_hours: i64,
    apps: usize,
    /// Server flags for the load.
    flags: &'static [&'static str],
    /// Whether the concurrency runs (two tenants) happen on this lake.
    concurrency: bool,
}

const SHAPES: [Shape; 2] = [
    Shape {
        name: "hourly",
        span_hours: 72,
        apps: 4,
        flags: &[],
        concurrency: true,
    },
    // One unit for the whole load (flush size above it), row groups of 16,384 rows: every
    // partition is one file of several row groups.
    Shape {
        name: "bulk",
        span_hours: 6,
        apps: 3,
        flags: &["--flush-size", "1GiB", "--row-group-rows", "16384"],
        concurrency: false,
    },
];

async fn tenant_client(endpoint: &str, (_, token): (&str, &str)) -> anyhow::Result<Client> {
    Ok(Client::connect(endpoint).await?.with_token(token))
}

/// `clients` at once, alternating between the two tenants, each running
/// `QUERIES_PER_CLIENT` of the non-`count` queries one after another: (queries per second,
/// p50, p99 latency in seconds).
async fn concurrent(endpoint: &str, clients: usize) -> anyhow::Result<(f64, f64, f64)> {
    let real: Vec<&str> = QUERIES
        .iter()
        .filter(|(name, _)| *name != "count")
        .map(|(_, sql)| *sql)
        .collect();
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            let endpoint = endpoint.to_string();
            let real = real.clone();
            tokio::spawn(async move {
                let mut client = tenant_client(&endpoint, TENANTS[i % TENANTS.len()]).await?;
                let mut latencies = Vec::new();
                for k in 0..QUERIES_PER_CLIENT {
                    let sql = real[(i + k) % real.len()];
                    let start = Instant::now();
                    via_lakeport(&mut client, sql).await?;
                    latencies.push(start.elapsed().as_secs_f64());
                }
                anyhow::Ok(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let wall = start.elapsed().as_secs_f64();
    latencies.sort_by(|a, b| a.total_cmp(b));
    Ok((
        latencies.len() as f64 / wall,
        common::quantile(&latencies, 0.5),
        common::quantile(&latencies, 0.99),
    ))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let total_rows = common::first_arg_or(1 << 20)?;
    let mut summary = Vec::new();
    for shape in &SHAPES {
        let dir = tempfile::TempDir::new()?;
        let mut flags: Vec<&str> = shape.flags.to_vec();
        let tenant_flags: Vec<String> = TENANTS.iter().map(|(t, k)| format!("{t}={k}")).collect();
        for tenant in &tenant_flags {
            flags.extend(["--tenant", tenant]);
        }
        let server = BenchServer::start(dir.path(), &flags).await?;
        let batches = snowplow_batches_of_apps(total_rows, shape.span_hours, shape.apps);
        // The concurrency runs query both tenants.
        let loaded = if shape.concurrency {
            &TENANTS[..]
        } else {
            &TENANTS[..1]
        };
        let load_start = Instant::now();
        for tenant in loaded {
            let mut client = tenant_client(&server.endpoint, *tenant).await?;
            client.put(None, "snowplow", batches.clone()).await?;
        }
        println!(
            "\n== lake '{}': {total_rows} Snowplow rows over {} hours x {} apps (server flags {:?}), loaded through lakeport for {} tenant(s) in {:.1} s",
            shape.name,
            shape.span_hours,
            shape.apps,
            shape.flags,
            loaded.len(),
            load_start.elapsed().as_secs_f64()
        );
        let table_dir = dir
            .path()
            .join(format!("lake/tenant_id={}/snowplow", TENANTS[0].0));
        let mut client = tenant_client(&server.endpoint, TENANTS[0]).await?;
        let ratios = query_lake(shape.name, &mut client, &table_dir).await?;
        summary.push((shape.name, ratios));

        if shape.concurrency {
            println!(
                "\n{:<26} {:>10} {:>10} {:>10}",
                "concurrent clients (2 tenants)", "queries/s", "p50", "p99"
            );
            for clients in CONCURRENT_CLIENTS {
                let (rate, p50, p99) = concurrent(&server.endpoint, clients).await?;
                println!(
                    "{:<26} {:>10.1} {:>8.1}ms {:>8.1}ms",
                    clients,
                    rate,
                    p50 * 1e3,
                    p99 * 1e3
                );
            }
        }
        drop(server);
    }
    println!(
        "\ngeometric means (goals: lp/duck <= 0.8 without count, each query <= 1.0; lp/df <= 1.05)"
    );
    for (shape, ratios) in &summary {
        println!("{shape:<8} lakeport/DataFusion {}", means(&ratios.over_df));
        if !ratios.over_duck.is_empty() {
            println!(
                "{shape:<8} lakeport/DuckDB     {}",
                means(&ratios.over_duck)
            );
        }
    }
    Ok(())
}
