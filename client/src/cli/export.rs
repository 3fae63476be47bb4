//! `lakeport export`: hand a range of a tenant's table over as a standalone Delta table.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, UInt64Array};
use lakeport_client::{Client, TenantExportRequest};

use super::OutputArgs;

#[derive(clap::Args)]
pub(crate) struct ExportArgs {
    /// The tenant whose data goes (a tenant token: its own).
    tenant: String,
    #[arg(long)]
    dataset: String,
    /// First hour included: 2026-01-01 or an RFC 3339 time.
    #[arg(long)]
    from: String,
    /// First hour left out.
    #[arg(long)]
    to: String,
    /// The new table's root (s3://bucket/prefix, az://…, gs://…; file:// for admins), or
    /// the name of a configured store (admins; with --path).
    #[arg(long)]
    to_store: String,
    /// A directory of the configured store named by --to-store.
    #[arg(long)]
    path: Option<String>,
    /// An object_store option for the target URL, e.g. aws_access_key_id=… (repeatable;
    /// the customer's credentials).
    #[arg(long = "option", value_parser = parse_option)]
    options: Vec<(String, String)>,
    #[command(flatten)]
    out: OutputArgs,
}

fn parse_option(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .ok_or_else(|| format!("{text:?} is not KEY=VALUE"))
}

pub(crate) async fn run(client: &mut Client, args: ExportArgs) -> anyhow::Result<()> {
    let url = args.to_store.contains("://");
    if !url && args.path.is_none() {
        anyhow::bail!(
            "--to-store {} names a configured store: give --path DIR in it (or give a URL)",
            args.to_store
        );
    }
    let (to_url, to_store) = if url {
        (args.to_store, String::new())
    } else {
        (String::new(), args.to_store)
    };
    let request = TenantExportRequest {
        tenant: args.tenant,
        dataset: args.dataset,
        from: args.from,
        to: args.to,
        to_url,
        options: args.options.into_iter().collect(),
        to_store,
        path: args.path.unwrap_or_default(),
    };
    let result = client.tenant_export(request).await?;
    let batch = RecordBatch::try_from_iter([
        (
            "url",
            Arc::new(StringArray::from(vec![result.url.as_str()])) as ArrayRef,
        ),
        ("files", Arc::new(UInt64Array::from(vec![result.files]))),
        (
            "files_copied",
            Arc::new(UInt64Array::from(vec![result.files_copied])),
        ),
        ("bytes", Arc::new(UInt64Array::from(vec![result.bytes]))),
        ("rows", Arc::new(UInt64Array::from(vec![result.rows]))),
        ("version", Arc::new(Int64Array::from(vec![result.version]))),
    ])?;
    super::output::write_batch(&args.out, batch).await
}
