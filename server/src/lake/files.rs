//! Step 3 of ingest: encode one partition's rows as a Parquet file named
//! `data_YYYY_MM_DD_HH_MM_SS_<unique>.parquet`, put it in the store and describe it as a
//! Delta `add` action. Until that action is committed the file is invisible to readers.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use deltalake::kernel::Add;
use deltalake::ObjectStore;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use std::io::Write;
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, Semaphore};

use super::stats::StatsBuilder;
use super::LakeError;
use super::PartitionKey;

/// A file name unique across servers: the write time, then a UUIDv7.
pub fn data_file_name(now: DateTime<Utc>) -> String {
    format!(
        "data_{}_{}.parquet",
        now.format("%Y_%m_%d_%H_%M_%S"),
        uuid::Uuid::now_v7().simple()
    )
}

/// Encoded bytes are handed to the uploader in chunks of this size; above it the upload
/// turns multipart, so a file is never held whole in memory.
const UPLOAD_CHUNK: usize = 8 << 20;

/// Files encoded at once in this process: encoding is CPU-bound, so more encoders than cores
/// only add memory (each holds its rows and its encoded row group); a unit waiting for a slot
/// keeps its rows reserved in the ingest budget, which is what slows producers down.
fn encode_slots() -> &'static Semaphore {
    static SLOTS: OnceLock<Semaphore> = OnceLock::new();
    SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Semaphore::new(cores)
    })
}

/// Where a new data file goes and what its `add` action says about it.
#[derive(Debug, Clone)]
pub struct FileTarget {
    /// Partition directory relative to the table root, Hive-escaped.
    pub dir: String,
    pub partition_values: HashMap<String, Option<String>>,
    /// False for a file that only rewrites rows already in the table (compaction).
    pub data_change: bool,
}

impl From<&PartitionKey> for FileTarget {
    fn from(key: &PartitionKey) -> Self {
        Self {
            dir: key.path(),
            partition_values: key.values(),
            data_change: true,
        }
    }
}

/// Encodes the batches of one partition and streams them to the store as one file.
pub async fn write_data_file(
    store: Arc<dyn ObjectStore>,
    key: &PartitionKey,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    props: WriterProperties,
    now: DateTime<Utc>,
) -> Result<Add, LakeError> {
    let _slot = encode_slots()
        .acquire()
        .await
        .map_err(|_| LakeError::ShuttingDown)?;
    let props = super::dictionary::adapt(props, &schema, &batches);
    let source = batches.into_iter().map(Ok);
    write_file(store, key.into(), schema, source, props, now).await
}

/// Encodes batches as they arrive on `batches` (a sorted stream far larger than memory,
/// say) into one file. Dictionary encoding is chosen from the first batch.
pub async fn write_streamed_file(
    store: Arc<dyn ObjectStore>,
    target: FileTarget,
    schema: SchemaRef,
    mut batches: mpsc::Receiver<Result<RecordBatch, LakeError>>,
    props: WriterProperties,
    now: DateTime<Utc>,
) -> Result<Add, LakeError> {
    let first = batches.recv().await.transpose()?;
    let props = super::dictionary::adapt(props, &schema, first.as_slice());
    let source = first
        .into_iter()
        .map(Ok)
        .chain(std::iter::from_fn(move || batches.blocking_recv()));
    write_file(store, target, schema, source, props, now).await
}

/// Encodes `source` on a blocking thread while its bytes are uploaded; the object is
/// completed only when every batch was encoded and sent, and aborted otherwise.
async fn write_file(
    store: Arc<dyn ObjectStore>,
    target: FileTarget,
    schema: SchemaRef,
    source: impl Iterator<Item = Result<RecordBatch, LakeError>> + Send + 'static,
    props: WriterProperties,
    now: DateTime<Utc>,
) -> Result<Add, LakeError> {
    let relative = format!("{}/{}", target.dir, data_file_name(now));
    // `parse` keeps Hive escapes such as `%2F` literal in the object name, as Spark does.
    let location = Path::parse(&relative)
        .map_err(|e| LakeError::Internal(format!("bad file path {relative}: {e}")))?;
    let (chunks_tx, chunks) = mpsc::channel::<Bytes>(2);
    let encoder = tokio::task::spawn_blocking(move || {
        let sink = ChunkSink {
            buffer: Vec::with_capacity(UPLOAD_CHUNK),
            chunks: chunks_tx,
            written: 0,
        };
        encode(sink, schema, source, props)
    });
    let mut writer = BufWriter::with_capacity(store, location, UPLOAD_CHUNK);
    let sent = send_chunks(&mut writer, chunks).await;
    let encoded = encoder
        .await
        .map_err(|e| LakeError::Internal(format!("encoder task failed: {e}")))
        .and_then(|r| r);
    let (size, stats) = match (sent, encoded) {
        (Ok(()), Ok(encoded)) => {
            // A failed completion has nothing left to abort: the writer is spent.
            writer.shutdown().await.map_err(io_store_error)?;
            encoded
        }
        (Err(e), _) | (Ok(()), Err(e)) => {
            let _ = writer.abort().await;
            return Err(e);
        }
    };
    Ok(Add {
        path: relative,
        partition_values: target.partition_values,
        size: size as i64,
        modification_time: now.timestamp_millis(),
        data_change: target.data_change,
        stats: Some(stats),
        ..Default::default()
    })
}

/// Passes the encoder's chunks on to the store as they come.
async fn send_chunks(
    writer: &mut BufWriter,
    mut chunks: mpsc::Receiver<Bytes>,
) -> Result<(), LakeError> {
    while let Some(chunk) = chunks.recv().await {
        writer.put(chunk).await?;
    }
    Ok(())
}

/// Encodes on a blocking thread into `sink`; returns the file size and the stats JSON.
fn encode(
    sink: ChunkSink,
    schema: SchemaRef,
    batches: impl Iterator<Item = Result<RecordBatch, LakeError>>,
    props: WriterProperties,
) -> Result<(usize, String), LakeError> {
    let mut stats = StatsBuilder::new(&schema);
    let mut writer = ArrowWriter::try_new(sink, schema, Some(props))?;
    for batch in batches {
        let batch = batch?;
        stats.add(&batch);
        writer.write(&batch)?;
    }
    let mut sink = writer.into_inner()?;
    sink.flush()
        .map_err(|e| LakeError::Internal(format!("upload ended early: {e}")))?;
    Ok((sink.written, stats.to_json()))
}

/// A `Write` that hands full chunks to the async uploader (blocking when it lags behind).
struct ChunkSink {
    buffer: Vec<u8>,
    chunks: mpsc::Sender<Bytes>,
    written: usize,
}

impl ChunkSink {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(UPLOAD_CHUNK));
        self.chunks
            .blocking_send(Bytes::from(chunk))
            .map_err(|_| std::io::Error::other("the upload failed"))
    }
}

impl Write for ChunkSink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(data);
        self.written += data.len();
        if self.buffer.len() >= UPLOAD_CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// An object_store failure surfaced through `AsyncWrite` keeps its category.
fn io_store_error(e: std::io::Error) -> LakeError {
    match e
        .into_inner()
        .map(|inner| inner.downcast::<object_store::Error>())
    {
        Some(Ok(store)) => LakeError::from(*store),
        Some(Err(other)) => LakeError::Internal(format!("upload failed: {other}")),
        None => LakeError::Internal("upload failed".into()),
    }
}
