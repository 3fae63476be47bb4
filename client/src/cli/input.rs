//! Reading upload files as batches: CSV, NDJSON, Parquet, Arrow IPC (file or stream),
//! with the number of bytes read so far for the progress bar.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context};
use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::error::ArrowError;

pub(crate) type Batches = Box<dyn Iterator<Item = Result<RecordBatch, ArrowError>> + Send>;

/// An open upload file.
pub(crate) struct Source {
    pub(crate) batches: Batches,
    /// Bytes of the file consumed so far (for Parquet: estimated from rows read).
    pub(crate) consumed: Consumed,
}

pub(crate) enum Consumed {
    Bytes(Arc<AtomicU64>),
    Rows { total_rows: u64, size: u64 },
}

impl Consumed {
    pub(crate) fn bytes(&self, rows_read: u64) -> u64 {
        match self {
            Consumed::Bytes(n) => n.load(Ordering::Relaxed),
            Consumed::Rows { total_rows, size } if *total_rows > 0 => {
                (*size as u128 * rows_read as u128 / *total_rows as u128) as u64
            }
            Consumed::Rows { .. } => 0,
        }
    }
}

/// A reader that counts how far into the file it has read.
struct Counting<R> {
    inner: R,
    position: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.position.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl<R: Seek> Seek for Counting<R> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        let at = self.inner.seek(pos)?;
        self.position.store(at, Ordering::Relaxed);
        Ok(at)
    }
}

fn counting(file: File) -> (Counting<File>, Consumed) {
    let position = Arc::new(AtomicU64::new(0));
    let reader = Counting {
        inner: file,
        position: position.clone(),
    };
    (reader, Consumed::Bytes(position))
}

/// The file's format, from its extension.
fn format_of(path: &Path) -> anyhow::Result<&'static str> {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    Ok(match extension.as_str() {
        "csv" => "csv",
        "json" | "ndjson" | "jsonl" => "ndjson",
        "parquet" | "pq" => "parquet",
        "arrow" | "feather" | "ipc" => "arrow",
        "arrows" => "arrows",
        other => bail!(
            "{}: unknown file type {other:?}; use .csv, .ndjson/.jsonl/.json, .parquet, .arrow or .arrows",
            path.display()
        ),
    })
}

/// Types of columns the table already has win over types guessed from text, so `123` in a
/// string column stays a string.
fn with_table_types(inferred: Schema, table: Option<&Schema>) -> SchemaRef {
    let Some(table) = table else {
        return Arc::new(inferred);
    };
    let fields: Vec<_> = inferred
        .fields()
        .iter()
        .map(|f| match table.field_with_name(f.name()) {
            Ok(known) => f.as_ref().clone().with_data_type(known.data_type().clone()),
            Err(_) => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new(fields))
}

pub(crate) fn open(
    path: &Path,
    table: Option<&Schema>,
    batch_rows: usize,
) -> anyhow::Result<Source> {
    let format = format_of(path)?;
    let open = || File::open(path).with_context(|| format!("open {}", path.display()));
    let size = open()?.metadata()?.len();
    let context = || format!("read {}", path.display());
    let source = match format {
        "csv" => {
            let format = arrow::csv::reader::Format::default().with_header(true);
            let (inferred, _) = format
                .infer_schema(BufReader::new(open()?), Some(1000))
                .with_context(context)?;
            let (reader, consumed) = counting(open()?);
            let reader = arrow::csv::ReaderBuilder::new(with_table_types(inferred, table))
                .with_format(format)
                .with_batch_size(batch_rows)
                .build(BufReader::new(reader))
                .with_context(context)?;
            Source {
                batches: Box::new(reader),
                consumed,
            }
        }
        "ndjson" => {
            let (inferred, _) = arrow::json::reader::infer_json_schema_from_seekable(
                BufReader::new(open()?),
                Some(1000),
            )
            .with_context(context)?;
            let (reader, consumed) = counting(open()?);
            let reader = arrow::json::ReaderBuilder::new(with_table_types(inferred, table))
                .with_batch_size(batch_rows)
                .build(BufReader::new(reader))
                .with_context(context)?;
            Source {
                batches: Box::new(reader),
                consumed,
            }
        }
        "parquet" => {
            let builder =
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(open()?)
                    .with_context(context)?;
            let total_rows = builder.metadata().file_metadata().num_rows() as u64;
            let reader = builder
                .with_batch_size(batch_rows)
                .build()
                .with_context(context)?;
            Source {
                batches: Box::new(reader),
                consumed: Consumed::Rows { total_rows, size },
            }
        }
        "arrow" => {
            let (reader, consumed) = counting(open()?);
            let reader = arrow::ipc::reader::FileReader::try_new(BufReader::new(reader), None)
                .with_context(context)?;
            Source {
                batches: Box::new(reader),
                consumed,
            }
        }
        _ => {
            let (reader, consumed) = counting(open()?);
            let reader = arrow::ipc::reader::StreamReader::try_new(BufReader::new(reader), None)
                .with_context(context)?;
            Source {
                batches: Box::new(reader),
                consumed,
            }
        }
    };
    Ok(source)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{DataType, Field, TimeUnit};

    #[test]
    fn csv_takes_the_tables_types_and_infers_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.csv");
        std::fs::write(
            &path,
            "app_id,collector_tstamp,n\n123,2024-05-01T10:20:30Z,1\n",
        )
        .unwrap();
        let table = Schema::new(vec![Field::new("app_id", DataType::Utf8, true)]);
        let mut source = open(&path, Some(&table), 10).unwrap();
        let batch = source.batches.next().unwrap().unwrap();
        let schema = batch.schema();
        assert_eq!(schema.field(0).data_type(), &DataType::Utf8);
        assert!(matches!(
            schema.field(1).data_type(),
            DataType::Timestamp(TimeUnit::Second | TimeUnit::Nanosecond, _)
        ));
        assert_eq!(schema.field(2).data_type(), &DataType::Int64);
        assert_eq!(
            source.consumed.bytes(1),
            std::fs::metadata(&path).unwrap().len()
        );
    }

    #[test]
    fn unknown_extensions_are_refused_by_name() {
        let err = open(Path::new("x.xlsx"), None, 10).err().unwrap();
        assert!(err.to_string().contains("unknown file type"), "{err}");
    }
}
