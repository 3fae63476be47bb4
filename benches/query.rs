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

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Context;
use arrow::array::RecordBatch;
use common::{snowplow_batches_of_apps, BenchServer};
use datafusion::prelude::SessionContext;
use futures::TryStreamExt;
use lakeport_client::Client;

const REPEATS: usize = 5;
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

/// (name, SQL): the same text runs on all three engines.
const QUERIES: &[(&str, &str)] = &[
    ("count", "SELECT count(*) AS n FROM snowplow"),
    (
        "hourly_per_app",
        "SELECT app_id, date_trunc('hour', collector_tstamp) AS hour, count(*) AS n \
         FROM snowplow GROUP BY 1, 2 ORDER BY 1, 2",
    ),
    (
        "top_pages",
        "SELECT page_urlpath, count(*) AS views FROM snowplow WHERE event = 'page_view' \
         GROUP BY page_urlpath ORDER BY views DESC, page_urlpath LIMIT 10",
    ),
    (
        "users_per_country",
        "SELECT geo_country, count(DISTINCT domain_userid) AS users FROM snowplow \
         GROUP BY geo_country ORDER BY geo_country",
    ),
    (
        "sessionization",
        "WITH ordered AS ( \
           SELECT domain_userid, collector_tstamp, \
                  lag(collector_tstamp) OVER (PARTITION BY domain_userid ORDER BY collector_tstamp) AS prev \
           FROM snowplow), \
         starts AS ( \
           SELECT domain_userid, CASE WHEN prev IS NULL OR collector_tstamp > prev + INTERVAL '30 minutes' \
                                      THEN 1 ELSE 0 END AS new_session \
           FROM ordered) \
         SELECT count(DISTINCT domain_userid) AS users, sum(new_session) AS sessions FROM starts",
    ),
    (
        "one_day",
        "SELECT app_id, count(*) AS n, count(DISTINCT domain_userid) AS users FROM snowplow \
         WHERE collector_tstamp >= '2024-05-02T00:00:00Z' AND collector_tstamp < '2024-05-03T00:00:00Z' \
         GROUP BY app_id ORDER BY app_id",
    ),
];

fn median(mut times: Vec<f64>) -> f64 {
    times.sort_by(|a, b| a.total_cmp(b));
    times[times.len() / 2]
}

fn rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(|b| b.num_rows()).sum()
}

async fn via_lakeport(client: &mut Client, sql: &str) -> anyhow::Result<Vec<RecordBatch>> {
    let (_, stream) = client.query(sql).await?;
    Ok(stream.try_collect().await?)
}

async fn via_datafusion(ctx: &SessionContext, sql: &str) -> anyhow::Result<Vec<RecordBatch>> {
    Ok(ctx.sql(sql).await?.collect().await?)
}

/// DuckDB's (median seconds, rows) per query, or why it was skipped.
fn via_duckdb(table_dir: &std::path::Path) -> Result<BTreeMap<String, (f64, usize)>, String> {
    let python = common::bench_python()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/query_duckdb.py");
    let queries: BTreeMap<&str, &str> = QUERIES.iter().copied().collect();
    let mut child = std::process::Command::new(&python)
        .arg(script)
        .arg(table_dir)
        .arg(REPEATS.to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("{python}: {e}"))?;
    let stdin = child.stdin.take().ok_or("no stdin")?;
    serde_json::to_writer(stdin, &queries).map_err(|e| e.to_string())?;
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    if !output.status.success() {
        return Err(format!(
            "DuckDB script failed ({}); is duckdb installed in the venv?",
            output.status
        ));
    }
    let parsed: BTreeMap<String, (f64, usize)> =
        serde_json::from_slice(&output.stdout).map_err(|e| e.to_string())?;
    Ok(parsed)
}

fn geomean(values: &[f64]) -> f64 {
    (values.iter().map(|v| v.ln()).sum::<f64>() / values.len() as f64).exp()
}

/// Per query: lakeport / in-process DataFusion and, when DuckDB ran, lakeport / DuckDB.
struct Ratios {
    over_df: Vec<(&'static str, f64)>,
    over_duck: Vec<(&'static str, f64)>,
}

/// Runs every query on `shape`'s lake through lakeport, in-process DataFusion and DuckDB.
async fn query_shape(
    shape: &Shape,
    server: &BenchServer,
    table_dir: &std::path::Path,
) -> anyhow::Result<Ratios> {
    let mut client = tenant_client(&server.endpoint, TENANTS[0]).await?;
    let url =
        url::Url::from_directory_path(table_dir).map_err(|_| anyhow::anyhow!("table path"))?;
    let mut table = deltalake::DeltaTableBuilder::from_url(url)?.build()?;
    table.load().await?;
    println!(
        "table: version {:?}, {} files",
        table.version(),
        table.snapshot()?.log_data().iter().count()
    );
    // With lakeport's own fast paths and Parquet reads, so the ratio is lakeport's Flight and
    // planning overhead.
    let ctx = SessionContext::new();
    lakeport_server::query::utc::install(&ctx);
    let provider = lakeport_server::query::lake_scan::LakeScan::new(table.table_provider().await?);
    ctx.register_table("snowplow", provider)?;

    let duckdb = via_duckdb(table_dir);
    if let Err(why) = &duckdb {
        println!("DuckDB skipped: {why}");
    }

    println!(
        "\n{:<18} {:>11} {:>11} {:>11} {:>9} {:>9}",
        format!("{} (median of {REPEATS})", shape.name),
        "lakeport",
        "datafusion",
        "duckdb",
        "lp/df",
        "lp/duck"
    );
    let mut ratios = Ratios {
        over_df: Vec::new(),
        over_duck: Vec::new(),
    };
    for (name, sql) in QUERIES {
        via_lakeport(&mut client, sql)
            .await
            .with_context(|| format!("{name} via lakeport"))?;
        via_datafusion(&ctx, sql)
            .await
            .with_context(|| format!("{name} in process"))?;
        let (mut lp, mut df) = (Vec::new(), Vec::new());
        let (mut lp_rows, mut df_rows) = (0, 0);
        for _ in 0..REPEATS {
            let start = Instant::now();
            lp_rows = rows(&via_lakeport(&mut client, sql).await?);
            lp.push(start.elapsed().as_secs_f64());
            let start = Instant::now();
            df_rows = rows(&via_datafusion(&ctx, sql).await?);
            df.push(start.elapsed().as_secs_f64());
        }
        anyhow::ensure!(
            lp_rows == df_rows,
            "{name}: lakeport {lp_rows} rows, DataFusion {df_rows}"
        );
        let (lp, df) = (median(lp), median(df));
        ratios.over_df.push((name, lp / df));
        let duck = duckdb.as_ref().ok().and_then(|d| d.get(*name)).copied();
        if let Some((secs, duck_rows)) = duck {
            anyhow::ensure!(
                duck_rows == lp_rows,
                "{name}: lakeport {lp_rows} rows, DuckDB {duck_rows}"
            );
            ratios.over_duck.push((name, lp / secs));
        }
        println!(
            "{:<18} {:>9.1}ms {:>9.1}ms {:>11} {:>9.2} {:>9}",
            name,
            lp * 1e3,
            df * 1e3,
            duck.map(|(s, _)| format!("{:.1}ms", s * 1e3))
                .unwrap_or_else(|| "-".into()),
            lp / df,
            duck.map(|(s, _)| format!("{:.2}", lp / s))
                .unwrap_or_else(|| "-".into()),
        );
    }
    Ok(ratios)
}

/// `all (without count)`: the geometric mean of every ratio, and of all but `count`'s
/// (answered from Delta statistics, it flatters the mean).
fn means(ratios: &[(&str, f64)]) -> String {
    let all: Vec<f64> = ratios.iter().map(|(_, r)| *r).collect();
    let real: Vec<f64> = ratios
        .iter()
        .filter(|(name, _)| *name != "count")
        .map(|(_, r)| *r)
        .collect();
    format!("{:.2} ({:.2} without count)", geomean(&all), geomean(&real))
}

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
        let ratios = query_shape(shape, &server, &table_dir).await?;
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
