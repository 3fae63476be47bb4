//! `lakeport maintenance run` and `lakeport retention run`: run maintenance (or retention
//! alone) now and print what each step did.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, UInt64Array};
use lakeport_client::{
    Client, MaintenanceRunRequest, MaintenanceRunResult, MaintenanceStep, RetentionRunRequest,
};

use super::OutputArgs;

#[derive(clap::Subcommand)]
pub(crate) enum MaintenanceCommand {
    /// Compact closed hour partitions, checkpoint, clean the log and vacuum now (admin).
    /// Exits non-zero when a step failed.
    Run {
        /// Only this tenant's tables (default: every tenant).
        #[arg(long)]
        tenant: Option<String>,
        /// Only this dataset's tables (default: every dataset).
        #[arg(long)]
        dataset: Option<String>,
        /// Print what would be done; change nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        out: OutputArgs,
    },
}

#[derive(clap::Subcommand)]
pub(crate) enum RetentionCommand {
    /// Remove the hour partitions past each table's retention now (queries stopped
    /// returning them the moment they expired). Their files follow with vacuum after the
    /// table's deletedFileRetentionDuration, or at once with --purge. A tenant runs it on
    /// its own tables. Exits non-zero when a step failed.
    Run {
        /// Only this tenant's tables (admin; default: every tenant).
        #[arg(long)]
        tenant: Option<String>,
        /// Only this dataset's table (default: every dataset).
        #[arg(long)]
        dataset: Option<String>,
        /// List the expired partitions, files, rows and bytes; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Delete the expired files now, not after the deleted-file retention (an erasure
        /// request). Readers of older table versions lose those versions.
        #[arg(long)]
        purge: bool,
        #[command(flatten)]
        out: OutputArgs,
    },
}

pub(crate) async fn run_retention(
    client: &mut Client,
    global_tenant: Option<&str>,
    command: RetentionCommand,
) -> anyhow::Result<()> {
    let RetentionCommand::Run {
        tenant,
        dataset,
        dry_run,
        purge,
        out,
    } = command;
    let request = RetentionRunRequest {
        tenant: tenant
            .or(global_tenant.map(str::to_string))
            .unwrap_or_default(),
        dataset: dataset.unwrap_or_default(),
        dry_run,
        purge,
    };
    let result = client.retention_run(request).await?;
    print_steps(result, out).await
}

pub(crate) async fn run(
    client: &mut Client,
    global_tenant: Option<&str>,
    command: MaintenanceCommand,
) -> anyhow::Result<()> {
    let MaintenanceCommand::Run {
        tenant,
        dataset,
        dry_run,
        out,
    } = command;
    let request = MaintenanceRunRequest {
        tenant: tenant
            .or(global_tenant.map(str::to_string))
            .unwrap_or_default(),
        dataset: dataset.unwrap_or_default(),
        dry_run,
    };
    let result = client.maintenance_run(request).await?;
    print_steps(result, out).await
}

/// Prints the steps; an error when any failed.
async fn print_steps(result: MaintenanceRunResult, out: OutputArgs) -> anyhow::Result<()> {
    super::output::write_batch(&out, steps_batch(&result.steps)?).await?;
    let failed = result
        .steps
        .iter()
        .filter(|s| s.outcome == "failed")
        .count();
    if failed > 0 {
        anyhow::bail!("{failed} maintenance step(s) failed (see the message column)");
    }
    Ok(())
}

fn steps_batch(steps: &[MaintenanceStep]) -> anyhow::Result<RecordBatch> {
    let text = |f: fn(&MaintenanceStep) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(steps.iter().map(f)))
    };
    let count = |f: fn(&MaintenanceStep) -> u64| -> ArrayRef {
        Arc::new(UInt64Array::from_iter_values(steps.iter().map(f)))
    };
    let version: ArrayRef = Arc::new(Int64Array::from_iter(
        steps.iter().map(|s| (s.version >= 0).then_some(s.version)),
    ));
    Ok(RecordBatch::try_from_iter([
        ("tenant", text(|s| &s.tenant)),
        ("dataset", text(|s| &s.dataset)),
        ("kind", text(|s| &s.kind)),
        ("partition", text(|s| &s.partition)),
        ("files_in", count(|s| s.files_in)),
        ("files_out", count(|s| s.files_out)),
        ("bytes_in", count(|s| s.bytes_in)),
        ("bytes_out", count(|s| s.bytes_out)),
        ("rows_in", count(|s| s.rows_in)),
        ("version", version),
        ("duration_ms", count(|s| s.duration_ms)),
        ("outcome", text(|s| &s.outcome)),
        ("message", text(|s| &s.message)),
    ])?)
}
