//! `lakeport put`: stream files into a dataset with a progress bar. Every batch carries the
//! producer id and its sequence number, so rerunning an interrupted upload skips what the
//! server already committed.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use anyhow::Context;
use arrow::datatypes::Schema;
use indicatif::{ProgressBar, ProgressStyle};
use lakeport_client::{Client, IngestAck, IngestMetadata};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::input;

#[derive(clap::Args)]
pub(crate) struct PutArgs {
    /// Dataset to write to, e.g. `snowplow` or a custom dataset.
    #[arg(long)]
    dataset: String,
    /// Rows per batch sent (and per sequence number).
    #[arg(long, default_value_t = 65_536)]
    batch_rows: usize,
    /// Producer id for exactly-once resends. Default: derived from the tenant, dataset,
    /// batch size and the files' paths, sizes and modification times, so rerunning the same
    /// command resumes where it stopped.
    #[arg(long)]
    producer_id: Option<String>,
    /// Files: .csv, .ndjson/.jsonl/.json, .parquet, .arrow (IPC file) or .arrows (IPC stream).
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

#[derive(Default)]
struct Summary {
    committed: u64,
    duplicates: u64,
    rejected: u64,
    version: i64,
}

impl Summary {
    fn add(&mut self, acks: &[IngestAck]) {
        for ack in acks {
            self.committed += ack.rows_committed;
            self.duplicates += ack.duplicates_skipped;
            self.rejected += ack.rows_rejected;
            self.version = self.version.max(ack.table_version);
        }
    }
}

pub(crate) async fn run(
    client: &mut Client,
    tenant: Option<&str>,
    args: PutArgs,
) -> anyhow::Result<()> {
    anyhow::ensure!(args.batch_rows > 0, "--batch-rows must be at least 1");
    let producer = match &args.producer_id {
        Some(id) => id.clone(),
        None => default_producer_id(tenant, &args)?,
    };
    let table_schema = table_schema(client, &args.dataset).await?;
    let sizes = args
        .files
        .iter()
        .map(|f| {
            std::fs::metadata(f)
                .map(|m| m.len())
                .with_context(|| format!("open {}", f.display()))
        })
        .collect::<anyhow::Result<Vec<u64>>>()?;
    let bar = ProgressBar::new(sizes.iter().sum()).with_style(
        ProgressStyle::with_template(
            "{spinner} {msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
        )?
        .progress_chars("=> "),
    );

    let mut summary = Summary {
        version: -1,
        ..Default::default()
    };
    let mut next_sequence = 1u64;
    let mut done_bytes = 0u64;
    let mut rows_read = 0u64;
    for (path, size) in args.files.iter().zip(&sizes) {
        let source = input::open(path, table_schema.as_ref(), args.batch_rows)?;
        let (tx, rx) = mpsc::channel(4);
        let reader_bar = bar.clone();
        let producer_id = producer.clone();
        let first = next_sequence;
        let rows_before = rows_read;
        let reader = tokio::task::spawn_blocking(move || -> anyhow::Result<(u64, u64)> {
            let mut sequence = first;
            let mut rows = 0u64;
            for batch in source.batches {
                let batch = batch?;
                rows += batch.num_rows() as u64;
                let meta = IngestMetadata {
                    producer_id: producer_id.clone(),
                    sequence,
                };
                sequence += 1;
                if tx.blocking_send((batch, Some(meta))).is_err() {
                    break; // the upload failed; its error is reported below
                }
                reader_bar.set_position(done_bytes + source.consumed.bytes(rows));
                reader_bar.set_message(format!("{} rows", rows_before + rows));
            }
            Ok((sequence, rows))
        });
        let acks = client
            .put_stream(tenant, &args.dataset, ReceiverStream::new(rx))
            .await;
        let (sequence, rows) = reader
            .await
            .context("reader task")?
            .with_context(|| format!("read {}", path.display()))?;
        let acks = acks.map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        next_sequence = sequence;
        rows_read += rows;
        done_bytes += size;
        bar.set_position(done_bytes);
        summary.add(&acks);
    }
    bar.finish_and_clear();
    println!(
        "{} rows read, {} committed, {} already committed (skipped), {} rejected to _rejected; table version {}; producer {producer}",
        rows_read, summary.committed, summary.duplicates, summary.rejected, summary.version
    );
    Ok(())
}

/// The table's current schema (`None` before its first commit), so text formats parse
/// into the column types the table already has.
async fn table_schema(client: &mut Client, dataset: &str) -> anyhow::Result<Option<Schema>> {
    let sql = format!("SELECT * FROM \"{dataset}\" LIMIT 0");
    match client.plan(&sql).await {
        Ok(info) => Ok(Some(info.try_decode_schema()?)),
        Err(e)
            if e.status()
                .is_some_and(|s| s.code() == tonic::Code::NotFound) =>
        {
            Ok(None)
        }
        Err(e) => Err(anyhow::anyhow!("{e}")),
    }
}

fn default_producer_id(tenant: Option<&str>, args: &PutArgs) -> anyhow::Result<String> {
    let mut hash = Sha256::new();
    hash.update(tenant.unwrap_or_default());
    hash.update([0]);
    hash.update(&args.dataset);
    hash.update(args.batch_rows.to_le_bytes());
    for path in &args.files {
        let meta = std::fs::metadata(path).with_context(|| format!("open {}", path.display()))?;
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        hash.update(absolute(path).to_string_lossy().as_bytes());
        hash.update([0]);
        hash.update(meta.len().to_le_bytes());
        hash.update(modified.to_le_bytes());
    }
    Ok(format!(
        "lakeport-cli-{}",
        &hex::encode(hash.finalize())[..16]
    ))
}

fn absolute(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
}
