//! `lakeport`: the command-line client. For now it uploads Parquet and Arrow IPC files.

use std::fs::File;
use std::path::PathBuf;

use anyhow::Context;
use arrow::array::RecordBatch;
use clap::{Parser, Subcommand};
use lakeport_client::Client;

#[derive(Parser)]
#[command(name = "lakeport", version, about = "Client for a lakeport server")]
struct Cli {
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
    /// Tenant to act for (admins only).
    #[arg(long, env = "LAKEPORT_TENANT")]
    tenant: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Upload Parquet (.parquet) or Arrow IPC (.arrow, .feather) files into a dataset.
    Put {
        #[arg(long)]
        dataset: String,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

fn read_batches(path: &PathBuf) -> anyhow::Result<Vec<RecordBatch>> {
    let file = File::open(path).with_context(|| format!("open {}", path.display()))?;
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default();
    let batches = match extension {
        "parquet" => parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)?
            .build()?
            .collect::<Result<Vec<_>, _>>()?,
        "arrow" | "feather" | "ipc" => {
            arrow::ipc::reader::FileReader::try_new(file, None)?.collect::<Result<Vec<_>, _>>()?
        }
        other => anyhow::bail!(
            "{}: unsupported file type {other:?}; use .parquet or .arrow",
            path.display()
        ),
    };
    Ok(batches)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lakeport: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut client = Client::connect(&cli.endpoint).await?;
    if let Some(token) = &cli.token {
        client = client.with_token(token);
    }
    match cli.command {
        Command::Put { dataset, files } => {
            for path in &files {
                let batches = read_batches(path)?;
                let acks = client.put(cli.tenant.as_deref(), &dataset, batches).await?;
                let committed: u64 = acks.iter().map(|a| a.rows_committed).sum();
                let rejected: u64 = acks.iter().map(|a| a.rows_rejected).sum();
                let version = acks.iter().map(|a| a.table_version).max().unwrap_or(-1);
                println!(
                    "{}: {committed} rows committed, {rejected} rejected (table version {version})",
                    path.display()
                );
            }
        }
    }
    Ok(())
}
