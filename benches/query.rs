//! Query latency: Snowplow analytics queries through lakeport's Flight SQL, against
//! DataFusion reading the same Delta table in process (lakeport's overhead) and, when the
//! bench's Python venv has it, DuckDB over the same Parquet files. All in the same run.
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
use common::{snowplow_batches, BenchServer};
use datafusion::prelude::SessionContext;
use futures::TryStreamExt;
use lakeport_client::Client;

const REPEATS: usize = 5;
const SPAN_HOURS: i64 = 72;

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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let total_rows: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1 << 20);
    let dir = tempfile::TempDir::new()?;
    let server = BenchServer::start(dir.path(), &["--admin-token", "bench-admin"]).await?;
    let mut client = Client::connect(&server.endpoint)
        .await?
        .with_token("bench-admin")
        .with_tenant("bench");
    let load_start = Instant::now();
    let batches = snowplow_batches(total_rows, SPAN_HOURS);
    client.put(Some("bench"), "snowplow", batches).await?;
    println!(
        "lake: {total_rows} Snowplow rows over {SPAN_HOURS} hours, 4 apps, loaded through lakeport in {:.1} s",
        load_start.elapsed().as_secs_f64()
    );

    let table_dir = dir.path().join("lake/tenant_id=bench/snowplow");
    let url =
        url::Url::from_directory_path(&table_dir).map_err(|_| anyhow::anyhow!("table path"))?;
    let mut table = deltalake::DeltaTableBuilder::from_url(url)?.build()?;
    table.load().await?;
    println!(
        "table: version {:?}, {} files",
        table.version(),
        table.snapshot()?.log_data().iter().count()
    );
    let ctx = SessionContext::new();
    ctx.register_table("snowplow", table.table_provider().await?)?;

    let duckdb = via_duckdb(&table_dir);
    if let Err(why) = &duckdb {
        println!("DuckDB skipped: {why}");
    }

    println!(
        "\n{:<18} {:>11} {:>11} {:>11} {:>9} {:>9}",
        "query (median of 5)", "lakeport", "datafusion", "duckdb", "lp/df", "lp/duck"
    );
    let (mut over_df, mut over_duck) = (Vec::new(), Vec::new());
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
        over_df.push(lp / df);
        let duck = duckdb.as_ref().ok().and_then(|d| d.get(*name)).copied();
        if let Some((secs, duck_rows)) = duck {
            anyhow::ensure!(
                duck_rows == lp_rows,
                "{name}: lakeport {lp_rows} rows, DuckDB {duck_rows}"
            );
            over_duck.push(lp / secs);
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
    println!(
        "\ngeometric mean lakeport/DataFusion in process: {:.2} (goal <= 1.1)",
        geomean(&over_df)
    );
    if !over_duck.is_empty() {
        println!(
            "geometric mean lakeport/DuckDB: {:.2} (goal <= 1.0)",
            geomean(&over_duck)
        );
    }
    drop(server);
    Ok(())
}
