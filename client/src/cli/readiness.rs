//! `lakeport readiness`: can Snowflake read each table, what to fix, and the SQL to paste.
//! Exits non-zero when a table fails a check, so it works as a CI gate.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use lakeport_client::{Client, ReadinessRequest, TableReadiness};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ReadinessFormat {
    /// One aligned row per table and check, then the SQL with `--ddl`.
    Table,
    /// One JSON array of tables, each with its checks (and `ddl` with `--ddl`).
    Json,
}

#[derive(clap::Args)]
pub(crate) struct ReadinessArgs {
    /// Only this tenant's tables (a tenant token sees its own; an admin, every tenant).
    #[arg(long)]
    tenant: Option<String>,
    /// Only this dataset's table.
    #[arg(long)]
    dataset: Option<String>,
    #[arg(long, value_enum, default_value_t = ReadinessFormat::Table)]
    format: ReadinessFormat,
    /// Also print the Snowflake SQL for each table.
    #[arg(long)]
    ddl: bool,
}

pub(crate) async fn run(
    client: &mut Client,
    global_tenant: Option<&str>,
    args: ReadinessArgs,
) -> anyhow::Result<()> {
    let request = ReadinessRequest {
        tenant: args
            .tenant
            .or(global_tenant.map(str::to_string))
            .unwrap_or_default(),
        dataset: args.dataset.unwrap_or_default(),
    };
    let tables = client.readiness(request).await?.tables;
    match args.format {
        ReadinessFormat::Json => {
            let json: Vec<serde_json::Value> =
                tables.iter().map(|t| table_json(t, args.ddl)).collect();
            println!("{}", serde_json::to_string_pretty(&json)?);
        }
        ReadinessFormat::Table => {
            let batch = checks_batch(&tables)?;
            println!("{}", arrow::util::pretty::pretty_format_batches(&[batch])?);
            if args.ddl {
                for t in &tables {
                    println!("\n{}", t.ddl);
                }
            }
        }
    }
    let failing: Vec<String> = tables
        .iter()
        .filter(|t| t.state == "fail")
        .map(|t| format!("{}.{}", t.tenant, t.dataset))
        .collect();
    if !failing.is_empty() {
        anyhow::bail!(
            "Snowflake cannot read {} table(s): {} (see the fix column)",
            failing.len(),
            failing.join(", ")
        );
    }
    Ok(())
}

fn table_json(t: &TableReadiness, ddl: bool) -> serde_json::Value {
    let checks: Vec<serde_json::Value> = t
        .checks
        .iter()
        .map(|c| {
            serde_json::json!({
                "check": c.name, "state": c.state, "evidence": c.evidence, "fix": c.fix,
            })
        })
        .collect();
    let mut value = serde_json::json!({
        "tenant": t.tenant, "dataset": t.dataset, "location": t.location,
        "state": t.state, "checks": checks,
    });
    if ddl {
        value["ddl"] = serde_json::Value::String(t.ddl.clone());
    }
    value
}

fn checks_batch(tables: &[TableReadiness]) -> anyhow::Result<RecordBatch> {
    let rows: Vec<[&str; 6]> = tables
        .iter()
        .flat_map(|t| {
            t.checks.iter().map(move |c| {
                [
                    t.tenant.as_str(),
                    t.dataset.as_str(),
                    c.name.as_str(),
                    c.state.as_str(),
                    c.evidence.as_str(),
                    c.fix.as_str(),
                ]
            })
        })
        .collect();
    let column = |i: usize| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r[i])))
    };
    Ok(RecordBatch::try_from_iter(
        ["tenant", "dataset", "check", "state", "evidence", "fix"]
            .into_iter()
            .enumerate()
            .map(|(i, name)| (name, column(i))),
    )?)
}
