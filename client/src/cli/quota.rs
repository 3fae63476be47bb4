//! `lakeport quota`: storage usage against each tenant's quota (`quota.report`), and
//! `lakeport usage`: the same bytes per table (`system.storage`).

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, UInt64Array};
use lakeport_client::{Client, TenantUsage};

use super::OutputArgs;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum SortBy {
    /// Largest usage first.
    Usage,
    /// By tenant (then dataset).
    Tenant,
}

#[derive(clap::Args)]
pub(crate) struct QuotaArgs {
    /// Only this tenant (admins; a tenant always sees its own).
    #[arg(long)]
    tenant: Option<String>,
    /// One row per table instead of per tenant.
    #[arg(long)]
    datasets: bool,
    #[arg(long, value_enum, default_value_t = SortBy::Usage)]
    sort: SortBy,
    #[command(flatten)]
    out: OutputArgs,
}

#[derive(clap::Args)]
pub(crate) struct UsageArgs {
    #[arg(long, value_enum, default_value_t = SortBy::Usage)]
    sort: SortBy,
    #[command(flatten)]
    out: OutputArgs,
}

pub(crate) async fn run_quota(
    client: &mut Client,
    global_tenant: Option<&str>,
    args: QuotaArgs,
) -> anyhow::Result<()> {
    let tenant = args.tenant.as_deref().or(global_tenant);
    let mut report = client.quota_report(tenant).await?.tenants;
    if args.sort == SortBy::Usage {
        report.sort_by(|a, b| {
            b.usage_bytes
                .cmp(&a.usage_bytes)
                .then(a.tenant.cmp(&b.tenant))
        });
    }
    let batch = if args.datasets {
        datasets_batch(&report, args.sort)?
    } else {
        tenants_batch(&report)?
    };
    super::output::write_batch(&args.out, batch).await
}

pub(crate) async fn run_usage(client: &mut Client, args: UsageArgs) -> anyhow::Result<()> {
    let order = match args.sort {
        SortBy::Usage => "bytes DESC, tenant, dataset",
        SortBy::Tenant => "tenant, dataset",
    };
    let query = format!(
        "SELECT tenant, dataset, files, bytes, live_bytes, rows, partitions, last_commit \
         FROM system.storage ORDER BY {order}"
    );
    super::sql(client, &query, args.out).await
}

fn tenants_batch(report: &[TenantUsage]) -> anyhow::Result<RecordBatch> {
    let text = |f: fn(&TenantUsage) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(report.iter().map(f)))
    };
    let limit = |f: fn(&TenantUsage) -> u64| -> ArrayRef {
        Arc::new(
            report
                .iter()
                .map(|r| Some(f(r)).filter(|v| *v > 0))
                .collect::<UInt64Array>(),
        )
    };
    let known = |f: fn(&TenantUsage) -> i64| -> ArrayRef {
        Arc::new(
            report
                .iter()
                .map(|r| Some(f(r)).filter(|v| *v >= 0))
                .collect::<Int64Array>(),
        )
    };
    Ok(RecordBatch::try_from_iter([
        ("tenant", text(|r| &r.tenant)),
        ("region", text(|r| &r.region)),
        ("state", text(|r| &r.state)),
        ("usage_bytes", known(|r| r.usage_bytes)),
        ("soft_bytes", limit(|r| r.soft_bytes)),
        ("hard_bytes", limit(|r| r.hard_bytes)),
        ("quota_state", text(|r| &r.quota_state)),
        ("rows", known(|r| r.rows)),
        ("drift_bytes", known(|r| r.drift_bytes)),
    ])?)
}

fn datasets_batch(report: &[TenantUsage], sort: SortBy) -> anyhow::Result<RecordBatch> {
    let mut rows: Vec<(&str, &lakeport_client::DatasetUsage)> = report
        .iter()
        .flat_map(|t| t.datasets.iter().map(move |d| (t.tenant.as_str(), d)))
        .collect();
    if sort == SortBy::Usage {
        rows.sort_by_key(|r| std::cmp::Reverse(r.1.bytes));
    }
    Ok(RecordBatch::try_from_iter([
        (
            "tenant",
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))) as ArrayRef,
        ),
        (
            "dataset",
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.1.dataset.as_str()),
            )),
        ),
        (
            "bytes",
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1.bytes))),
        ),
        (
            "objects",
            Arc::new(Int64Array::from_iter_values(
                rows.iter().map(|r| r.1.objects),
            )),
        ),
        (
            "rows",
            Arc::new(
                rows.iter()
                    .map(|r| Some(r.1.rows).filter(|v| *v >= 0))
                    .collect::<Int64Array>(),
            ),
        ),
        (
            "drift_bytes",
            Arc::new(Int64Array::from_iter_values(
                rows.iter().map(|r| r.1.drift_bytes),
            )),
        ),
    ])?)
}
