//! `lakeport quality`: evaluates the data-quality expectations now (`quality.run`) and
//! prints one row per expectation and table; exits non-zero when any is in error.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray, UInt64Array};
use lakeport_client::{Client, QualityCheck};

use super::OutputArgs;

#[derive(clap::Args)]
pub(crate) struct QualityArgs {
    /// Only this tenant (admins; a tenant always checks its own tables).
    #[arg(long)]
    tenant: Option<String>,
    #[command(flatten)]
    out: OutputArgs,
}

pub(crate) async fn run(
    client: &mut Client,
    global_tenant: Option<&str>,
    args: QualityArgs,
) -> anyhow::Result<()> {
    let tenant = args.tenant.as_deref().or(global_tenant);
    let checks = client.quality_run(tenant).await?.checks;
    let batch = checks_batch(&checks)?;
    super::output::write_batch(&args.out, batch).await?;
    let errors: Vec<String> = checks
        .iter()
        .filter(|c| c.state == "error")
        .map(|c| match c.column.as_str() {
            "" => format!("{}.{} {}", c.tenant, c.dataset, c.expectation),
            column => format!("{}.{} {}({column})", c.tenant, c.dataset, c.expectation),
        })
        .collect();
    if !errors.is_empty() {
        anyhow::bail!(
            "{} expectation(s) in error: {}",
            errors.len(),
            errors.join(", ")
        );
    }
    Ok(())
}

fn checks_batch(checks: &[QualityCheck]) -> anyhow::Result<RecordBatch> {
    let text = |value: &dyn Fn(&QualityCheck) -> String| -> ArrayRef {
        Arc::new(
            checks
                .iter()
                .map(|c| Some(value(c)))
                .collect::<StringArray>(),
        )
    };
    Ok(RecordBatch::try_from_iter([
        ("tenant", text(&|c| c.tenant.clone())),
        ("dataset", text(&|c| c.dataset.clone())),
        ("expectation", text(&|c| c.expectation.clone())),
        ("column", text(&|c| c.column.clone())),
        ("state", text(&|c| c.state.clone())),
        (
            "failing",
            Arc::new(UInt64Array::from_iter_values(
                checks.iter().map(|c| c.failing),
            )) as ArrayRef,
        ),
        ("samples", text(&|c| c.samples.join(", "))),
        ("detail", text(&|c| c.detail.clone())),
    ])?)
}
