//! Step 3 of ingest: encode one partition's rows as a Parquet file named
//! `data_YYYY_MM_DD_HH_MM_SS_<unique>.parquet`, put it in the store and describe it as a
//! Delta `add` action. Until that action is committed the file is invisible to readers.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use chrono::{DateTime, Utc};
use deltalake::kernel::Add;
use deltalake::ObjectStore;
use object_store::path::Path;
use object_store::ObjectStoreExt;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression as ParquetCompression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use super::stats::StatsBuilder;
use super::LakeError;
use crate::config::{Compression, IngestConfig};
use crate::ingest::partition::PartitionKey;

/// Parquet settings shared by every file the server writes.
pub fn writer_properties(config: &IngestConfig) -> WriterProperties {
    let compression = match config.compression {
        Compression::None => ParquetCompression::UNCOMPRESSED,
        Compression::Snappy => ParquetCompression::SNAPPY,
        Compression::Lz4 => ParquetCompression::LZ4_RAW,
        Compression::Zstd(level) => {
            ParquetCompression::ZSTD(ZstdLevel::try_new(level).unwrap_or_default())
        }
    };
    WriterProperties::builder()
        .set_compression(compression)
        .set_max_row_group_row_count(Some(config.row_group_rows))
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_created_by(format!("lakeport {}", env!("CARGO_PKG_VERSION")))
        .build()
}

/// A file name unique across servers: the write time, then a UUIDv7.
pub fn data_file_name(now: DateTime<Utc>) -> String {
    format!(
        "data_{}_{}.parquet",
        now.format("%Y_%m_%d_%H_%M_%S"),
        uuid::Uuid::now_v7().simple()
    )
}

/// Encodes the batches of one partition and uploads them as one file.
pub async fn write_data_file(
    store: Arc<dyn ObjectStore>,
    key: &PartitionKey,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    props: WriterProperties,
    now: DateTime<Utc>,
) -> Result<Add, LakeError> {
    let (bytes, stats) = tokio::task::spawn_blocking(move || encode(schema, &batches, props))
        .await
        .map_err(|e| LakeError::Internal(format!("encoder task failed: {e}")))??;
    let relative = format!("{}/{}", key.path(), data_file_name(now));
    let size = bytes.len() as i64;
    // `parse` keeps Hive escapes such as `%2F` literal in the object name, as Spark does.
    let location = Path::parse(&relative)
        .map_err(|e| LakeError::Internal(format!("bad file path {relative}: {e}")))?;
    store
        .put(&location, bytes.into())
        .await
        .map_err(LakeError::ObjectStore)?;
    Ok(Add {
        path: relative,
        partition_values: key.values(),
        size,
        modification_time: now.timestamp_millis(),
        data_change: true,
        stats: Some(stats),
        ..Default::default()
    })
}

fn encode(
    schema: SchemaRef,
    batches: &[RecordBatch],
    props: WriterProperties,
) -> Result<(Vec<u8>, String), LakeError> {
    let mut stats = StatsBuilder::new(&schema);
    let mut writer =
        ArrowWriter::try_new(Vec::new(), schema, Some(props)).map_err(LakeError::Parquet)?;
    for batch in batches {
        stats.add(batch);
        writer.write(batch).map_err(LakeError::Parquet)?;
    }
    let bytes = writer.into_inner().map_err(LakeError::Parquet)?;
    Ok((bytes, stats.to_json()))
}
