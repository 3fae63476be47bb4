//! The analyst queries of the query and maintenance benches, run through lakeport, in-process
//! DataFusion (the same Delta provider lakeport uses) and DuckDB, with their ratios.

// Each bench binary uses only part of this module.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Context;
use arrow::array::RecordBatch;
use datafusion::prelude::SessionContext;
use futures::TryStreamExt;
use lakeport_client::Client;

pub const REPEATS: usize = 5;

/// (name, SQL): the same text runs on all three engines.
pub const QUERIES: &[(&str, &str)] = &[
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

pub fn median(mut times: Vec<f64>) -> f64 {
    times.sort_by(|a, b| a.total_cmp(b));
    times[times.len() / 2]
}

pub fn rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(|b| b.num_rows()).sum()
}

pub async fn via_lakeport(client: &mut Client, sql: &str) -> anyhow::Result<Vec<RecordBatch>> {
    let (_, stream) = client.query(sql).await?;
    Ok(stream.try_collect().await?)
}

pub async fn via_datafusion(ctx: &SessionContext, sql: &str) -> anyhow::Result<Vec<RecordBatch>> {
    Ok(ctx.sql(sql).await?.collect().await?)
}

/// DuckDB's (median seconds, rows) per query, or why it was skipped.
pub fn via_duckdb(table_dir: &std::path::Path) -> Result<BTreeMap<String, (f64, usize)>, String> {
    let python = crate::common::bench_python()
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

pub fn geomean(values: &[f64]) -> f64 {
    (values.iter().map(|v| v.ln()).sum::<f64>() / values.len() as f64).exp()
}

/// Per query: lakeport / in-process DataFusion and, when DuckDB ran, lakeport / DuckDB.
pub struct Ratios {
    pub over_df: Vec<(&'static str, f64)>,
    pub over_duck: Vec<(&'static str, f64)>,
}

/// Runs every query on the lake at `table_dir` through lakeport (`client`), in-process
/// DataFusion and DuckDB; `label` heads the table printed.
pub async fn query_lake(
    label: &str,
    client: &mut Client,
    table_dir: &std::path::Path,
) -> anyhow::Result<Ratios> {
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
    let keep_all = lakeport_server::query::lake_scan::ScanRetention {
        retention: lakeport_server::query::QueryRetention {
            policy: std::sync::Arc::new(lakeport_server::lake::KeepForever),
            clock: std::sync::Arc::new(lakeport_server::clock::SystemClock),
        },
        tenant: String::new(),
        dataset: "snowplow".into(),
    };
    let provider =
        lakeport_server::query::lake_scan::LakeScan::new(table.table_provider().await?, keep_all);
    ctx.register_table("snowplow", provider)?;

    let duckdb = via_duckdb(table_dir);
    if let Err(why) = &duckdb {
        println!("DuckDB skipped: {why}");
    }

    println!(
        "\n{:<18} {:>11} {:>11} {:>11} {:>9} {:>9}",
        format!("{label} (median of {REPEATS})"),
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
        via_lakeport(client, sql)
            .await
            .with_context(|| format!("{name} via lakeport"))?;
        via_datafusion(&ctx, sql)
            .await
            .with_context(|| format!("{name} in process"))?;
        let (mut lp, mut df) = (Vec::new(), Vec::new());
        let (mut lp_rows, mut df_rows) = (0, 0);
        for _ in 0..REPEATS {
            let start = Instant::now();
            lp_rows = rows(&via_lakeport(client, sql).await?);
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
pub fn means(ratios: &[(&str, f64)]) -> String {
    let all: Vec<f64> = ratios.iter().map(|(_, r)| *r).collect();
    let real: Vec<f64> = ratios
        .iter()
        .filter(|(name, _)| *name != "count")
        .map(|(_, r)| *r)
        .collect();
    format!("{:.2} ({:.2} without count)", geomean(&all), geomean(&real))
}
