//! Command-line parsing and dispatch: `sql`, `put`, `tables`, `usage`, `quota`,
//! `maintenance`, `retention`, `export`, `readiness`, `quality`, `tenant`, `token`.

mod export;
mod input;
mod key;
mod maintenance;
mod output;
mod put;
mod quality;
mod quota;
mod readiness;
mod tenant;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use lakeport_client::Client;

pub(crate) use output::Format;

#[derive(Parser)]
#[command(name = "lakeport", version, about = "Client for a lakeport server")]
pub(crate) struct Cli {
    /// Server address, e.g. http://127.0.0.1:50051.
    #[arg(
        long,
        env = "LAKEPORT_ENDPOINT",
        default_value = "http://127.0.0.1:50051"
    )]
    endpoint: String,
    /// Bearer token (omit for an open server).
    #[arg(long, env = "LAKEPORT_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Tenant to act for (admins only): where `put` writes and unqualified SQL names resolve.
    #[arg(long, env = "LAKEPORT_TENANT")]
    tenant: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
pub(crate) struct OutputArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Write to this file instead of standard output.
    #[arg(long, short)]
    output: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run one SQL query and print or save its result.
    Sql {
        query: String,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Upload CSV, NDJSON, Parquet or Arrow IPC files into a dataset. Rerunning the same
    /// command after an interruption resumes without duplicating rows.
    Put(put::PutArgs),
    /// List the tables you can query.
    Tables {
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Storage per table: `bytes` is what the store holds (and bills) under the table,
    /// `live_bytes` the data files of its latest version (a view over `system.storage`).
    Usage(quota::UsageArgs),
    /// Storage usage against each tenant's quota (your own as a tenant; all as admin).
    Quota(quota::QuotaArgs),
    /// The tenant registry (admin).
    #[command(subcommand)]
    Tenant(Box<tenant::TenantCommand>),
    /// Tenant tokens (admin).
    #[command(subcommand)]
    Token(tenant::TokenCommand),
    /// Write-only collector keys for browsers and apps (a tenant for itself, or admin).
    #[command(subcommand)]
    Key(key::KeyCommand),
    /// Table maintenance (admin).
    #[command(subcommand)]
    Maintenance(maintenance::MaintenanceCommand),
    /// Retention: remove the rows past each table's retention now.
    #[command(subcommand)]
    Retention(maintenance::RetentionCommand),
    /// Copy a tenant's partitions of a time range into a new standalone Delta table in
    /// another store (a customer's bucket), readable by any Delta reader.
    Export(Box<export::ExportArgs>),
    /// Whether Snowflake can read each table, what to fix, and (with --ddl) the SQL to read
    /// it. Exits non-zero when a table fails a check.
    Readiness(readiness::ReadinessArgs),
    /// Evaluate the data-quality expectations now (like `dbt test`): one row per
    /// expectation and table. Exits non-zero when any is in error.
    Quality(quality::QualityArgs),
}

pub(crate) async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut client = Client::connect(&cli.endpoint).await?;
    if let Some(token) = &cli.token {
        client = client.with_token(token);
    }
    if let Some(tenant) = &cli.tenant {
        client = client.with_tenant(tenant);
    }
    match cli.command {
        Command::Sql { query, out } => sql(&mut client, &query, out).await,
        Command::Put(args) => put::run(&mut client, cli.tenant.as_deref(), args).await,
        Command::Tables { out } => {
            let batches = client.tables().await?;
            let schema = match batches.first() {
                Some(b) => b.schema(),
                None => return Ok(()),
            };
            let columns = ["db_schema_name", "table_name", "table_type"];
            let projected = batches
                .iter()
                .map(|b| {
                    let indices: Vec<usize> = columns
                        .iter()
                        .filter_map(|c| schema.index_of(c).ok())
                        .collect();
                    b.project(&indices)
                })
                .collect::<Result<Vec<_>, _>>()?;
            let projected_schema = projected
                .first()
                .map(|b| b.schema())
                .unwrap_or_else(|| schema.clone());
            let stream = futures::stream::iter(projected.into_iter().map(Ok));
            output::write(out.format, out.output.as_deref(), projected_schema, stream).await
        }
        Command::Readiness(args) => readiness::run(&mut client, cli.tenant.as_deref(), args).await,
        Command::Maintenance(command) => {
            maintenance::run(&mut client, cli.tenant.as_deref(), command).await
        }
        Command::Retention(command) => {
            maintenance::run_retention(&mut client, cli.tenant.as_deref(), command).await
        }
        Command::Export(args) => export::run(&mut client, *args).await,
        Command::Usage(args) => quota::run_usage(&mut client, args).await,
        Command::Quota(args) => quota::run_quota(&mut client, cli.tenant.as_deref(), args).await,
        Command::Quality(args) => quality::run(&mut client, cli.tenant.as_deref(), args).await,
        Command::Tenant(command) => tenant::run_tenant(&mut client, *command).await,
        Command::Token(command) => tenant::run_token(&mut client, command).await,
        Command::Key(command) => key::run_key(&mut client, command).await,
    }
}

pub(crate) async fn sql(client: &mut Client, query: &str, out: OutputArgs) -> anyhow::Result<()> {
    let (schema, stream) = client.query(query).await?;
    output::write(out.format, out.output.as_deref(), schema, stream).await
}
