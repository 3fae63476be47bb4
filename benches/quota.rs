//! Tenant usage reporting at scale: a generated lake of N tenants × 4 datasets (Delta logs
//! of a few commits and small stand-in data files, no real rows) and a registry record per
//! tenant. Times a full `quota.report` and `SELECT * FROM system.tenants` (admin) at 100
//! and 1,000 tenants, and at 1,000 tenants with three times the files per table: the
//! report reads the usage counts, so it should grow with tables, not with files. The first
//! report after start waits for the server's startup listing, timed on its own.
//!
//! `cargo run --release -p lakeport-benches --bin quota -- [N]`

#[path = "common.rs"]
mod common;

use std::path::Path;
use std::time::Instant;

use chrono::Utc;
use common::BenchServer;
use futures::TryStreamExt;
use lakeport_client::Client;
use lakeport_server::tenants::{TenantRecord, TenantSettings};
use serde_json::json;

const DATASETS: [&str; 4] = ["snowplow", "otel_logs", "otel_spans", "cloudevents"];
const ADMIN: &str = "bench-admin-token";
const RUNS: usize = 5;

/// One table: `commits` commits of two stand-in files each.
fn write_table(root: &Path, commits: usize) -> anyhow::Result<()> {
    let log = root.join("_delta_log");
    std::fs::create_dir_all(&log)?;
    let schema = json!({"type": "struct", "fields": [
        {"name": "event_id", "type": "string", "nullable": true, "metadata": {}},
        {"name": "n", "type": "long", "nullable": true, "metadata": {}},
    ]});
    for version in 0..commits {
        let mut lines = Vec::new();
        if version == 0 {
            lines.push(json!({"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}}));
            lines.push(json!({"metaData": {
                "id": format!("{:032x}", rand::random::<u128>()),
                "format": {"provider": "parquet", "options": {}},
                "schemaString": schema.to_string(),
                "partitionColumns": [],
                "configuration": {},
                "createdTime": 1_714_558_830_000i64,
            }}));
        }
        lines.push(json!({"commitInfo": {"timestamp": 1_714_558_830_000i64 + version as i64, "operation": "WRITE"}}));
        for f in 0..2 {
            let name = format!("data_{version}_{f}.parquet");
            std::fs::write(root.join(&name), vec![0u8; 1024])?;
            lines.push(json!({"add": {
                "path": name, "partitionValues": {}, "size": 1024,
                "modificationTime": 1_714_558_830_000i64, "dataChange": true,
                "stats": json!({"numRecords": 100}).to_string(),
            }}));
        }
        let text: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        std::fs::write(
            log.join(format!("{version:020}.json")),
            text.join("\n") + "\n",
        )?;
    }
    Ok(())
}

fn generate(lake: &Path, tenants: usize, commits: usize) -> anyhow::Result<()> {
    for t in 0..tenants {
        let id = format!("t{t:05}");
        for dataset in DATASETS {
            write_table(&lake.join(format!("tenant_id={id}")).join(dataset), commits)?;
        }
        let record = TenantRecord::new(
            &id,
            TenantSettings {
                quota_soft: Some(50 << 30),
                quota_hard: Some(60 << 30),
                ..Default::default()
            },
            Utc::now(),
        );
        let dir = lake.join("_lakeport/tenants").join(&id);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(
            dir.join(format!("{:020}.json", 0)),
            serde_json::to_vec(&record)?,
        )?;
    }
    Ok(())
}

fn median(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

struct Figures {
    first_report: f64,
    rows_counted: f64,
    report: f64,
    system_tenants: f64,
}

async fn measure(tenants: usize, commits: usize) -> anyhow::Result<Figures> {
    let dir = tempfile::TempDir::new()?;
    let lake = dir.path().join("lake");
    generate(&lake, tenants, commits)?;
    let start = Instant::now();
    let server = BenchServer::start(
        dir.path(),
        &["--admin-token", ADMIN, "--usage-reconcile-interval", "1h"],
    )
    .await?;
    let mut client = Client::connect(&server.endpoint).await?.with_token(ADMIN);
    let report = client.quota_report(None).await?;
    let first_report = start.elapsed().as_secs_f64();
    anyhow::ensure!(
        report.tenants.len() == tenants,
        "{} tenants reported",
        report.tenants.len()
    );
    let expected_bytes = (commits * 2 * 1024) as i64 * DATASETS.len() as i64;
    anyhow::ensure!(
        report
            .tenants
            .iter()
            .all(|t| t.usage_bytes > expected_bytes),
        "every table's files and log counted"
    );
    // Rows come from each table's snapshot after the listing, in the background.
    let expected_rows = (commits * 2 * 100) as i64 * DATASETS.len() as i64;
    loop {
        let report = client.quota_report(None).await?;
        if report.tenants.iter().all(|t| t.rows == expected_rows) {
            break;
        }
        anyhow::ensure!(
            start.elapsed().as_secs() < 600,
            "rows not counted within 10 minutes"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let rows_counted = start.elapsed().as_secs_f64();
    let mut report_times = Vec::new();
    let mut sql_times = Vec::new();
    for _ in 0..RUNS {
        let at = Instant::now();
        client.quota_report(None).await?;
        report_times.push(at.elapsed().as_secs_f64());
        let at = Instant::now();
        let (_, stream) = client.query("SELECT * FROM system.tenants").await?;
        let batches: Vec<_> = stream.try_collect().await?;
        sql_times.push(at.elapsed().as_secs_f64());
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        anyhow::ensure!(rows == tenants, "system.tenants has {rows} rows");
    }
    Ok(Figures {
        first_report,
        rows_counted,
        report: median(report_times),
        system_tenants: median(sql_times),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n = common::first_arg_or(1_000)?;
    let small = (n / 10).max(1);
    let cases = [(small, 3), (n, 3), (n, 9)];
    let mut results = Vec::new();
    for (tenants, commits) in cases {
        let f = measure(tenants, commits).await?;
        println!(
            "{tenants:>5} tenants × 4 datasets, {} objects per table: start + listing + first report {:.2} s, rows of every table counted {:.2} s; quota.report {:.1} ms; SELECT * FROM system.tenants {:.1} ms (median of {RUNS})",
            commits * 3,
            f.first_report,
            f.rows_counted,
            f.report * 1e3,
            f.system_tenants * 1e3
        );
        results.push(f);
    }
    let (a, b, c) = (&results[0], &results[1], &results[2]);
    println!(
        "{n} vs {small} tenants: quota.report ×{:.1}, system.tenants ×{:.1} (tables ×{:.0})",
        b.report / a.report,
        b.system_tenants / a.system_tenants,
        n as f64 / small as f64
    );
    println!(
        "3× the files per table at {n} tenants: quota.report ×{:.2}, system.tenants ×{:.2}, startup listing ×{:.2}",
        c.report / b.report,
        c.system_tenants / b.system_tenants,
        c.first_report / b.first_report
    );
    Ok(())
}
