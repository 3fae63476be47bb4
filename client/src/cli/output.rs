//! Writing a result stream as a table, CSV, JSON, Parquet or Arrow IPC, batch by batch
//! (only `table` holds the whole result, to size its columns).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::Context;
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow_flight::error::FlightError;
use futures::{Stream, StreamExt};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// Aligned text table.
    Table,
    /// CSV with a header row.
    Csv,
    /// One JSON array of row objects.
    Json,
    /// A Parquet file.
    Parquet,
    /// An Arrow IPC file (Feather v2).
    Arrow,
}

/// Writes one batch (a command's report) as `out` asks.
pub(crate) async fn write_batch(out: &super::OutputArgs, batch: RecordBatch) -> anyhow::Result<()> {
    let schema = batch.schema();
    let stream = futures::stream::iter([Ok(batch)]);
    write(out.format, out.output.as_deref(), schema, stream).await
}

pub(crate) async fn write<S>(
    format: Format,
    path: Option<&Path>,
    schema: SchemaRef,
    mut batches: S,
) -> anyhow::Result<()>
where
    S: Stream<Item = Result<RecordBatch, FlightError>> + Unpin,
{
    let sink: Box<dyn Write + Send> = match path {
        Some(path) => Box::new(BufWriter::new(
            File::create(path).with_context(|| format!("create {}", path.display()))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout())),
    };
    let mut writer = Writer::new(format, sink, schema)?;
    while let Some(batch) = batches.next().await {
        writer.write(&batch.map_err(server_error)?)?;
    }
    writer.finish()
}

/// The server's message, without the client library's wrapping.
pub(crate) fn server_error(e: FlightError) -> anyhow::Error {
    match e {
        FlightError::Tonic(status) => anyhow::anyhow!("{}: {}", status.code(), status.message()),
        other => anyhow::anyhow!(other),
    }
}

enum Writer {
    Table(Box<dyn Write + Send>, SchemaRef, Vec<RecordBatch>),
    Csv(arrow::csv::Writer<Box<dyn Write + Send>>),
    Json(arrow::json::ArrayWriter<Box<dyn Write + Send>>),
    Parquet(parquet::arrow::ArrowWriter<Box<dyn Write + Send>>),
    Arrow(arrow::ipc::writer::FileWriter<Box<dyn Write + Send>>),
}

impl Writer {
    fn new(format: Format, sink: Box<dyn Write + Send>, schema: SchemaRef) -> anyhow::Result<Self> {
        Ok(match format {
            Format::Table => Writer::Table(sink, schema, Vec::new()),
            Format::Csv => Writer::Csv(
                arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(sink),
            ),
            Format::Json => Writer::Json(arrow::json::ArrayWriter::new(sink)),
            Format::Parquet => {
                Writer::Parquet(parquet::arrow::ArrowWriter::try_new(sink, schema, None)?)
            }
            Format::Arrow => Writer::Arrow(arrow::ipc::writer::FileWriter::try_new(sink, &schema)?),
        })
    }

    fn write(&mut self, batch: &RecordBatch) -> anyhow::Result<()> {
        match self {
            Writer::Table(_, _, batches) => batches.push(batch.clone()),
            Writer::Csv(w) => w.write(batch)?,
            Writer::Json(w) => w.write(batch)?,
            Writer::Parquet(w) => w.write(batch)?,
            Writer::Arrow(w) => w.write(batch)?,
        }
        Ok(())
    }

    fn finish(self) -> anyhow::Result<()> {
        match self {
            Writer::Table(mut sink, schema, batches) => {
                let batches = if batches.is_empty() {
                    vec![RecordBatch::new_empty(schema)]
                } else {
                    batches
                };
                writeln!(
                    sink,
                    "{}",
                    arrow::util::pretty::pretty_format_batches(&batches)?
                )?;
                sink.flush()?;
            }
            Writer::Csv(w) => w.into_inner().flush()?,
            Writer::Json(mut w) => {
                w.finish()?;
                let mut sink = w.into_inner();
                writeln!(sink)?;
                sink.flush()?;
            }
            Writer::Parquet(w) => {
                w.into_inner()?.flush()?;
            }
            Writer::Arrow(mut w) => {
                w.finish()?;
                w.into_inner()?.flush()?;
            }
        }
        Ok(())
    }
}
