//! Rewrites each bin of small files as one file sorted by event time, then swaps the bins
//! of one partition group (the partitions of one hour) in one commit of `remove`s and
//! `add`s, all with `dataChange = false`.
//!
//! Appends never conflict with it: an ingest commit only adds files, so after losing a
//! race to one the commit is rebuilt on the newer version. Two compactions of the same
//! files must not both land (their rows would be in both new files). delta-rs's conflict
//! checker lets them (it ignores removes with `dataChange = false`), so this commit does
//! not use its rebasing: every attempt is made on a snapshot where all the inputs were
//! seen live, and a lost race reloads the log and checks again. The loser of two
//! compactions finds its inputs gone, deletes the file it wrote and gives up.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use chrono::{DateTime, Utc};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::TaskContext;
use datafusion::physical_expr::{LexOrdering, PhysicalSortExpr};
use datafusion::physical_plan::expressions::col;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::ExecutionPlan;
use deltalake::kernel::{Action, Add};
use deltalake::protocol::DeltaOperation;
use deltalake::{DeltaTable, ObjectStore};
use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStoreExt};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use tokio::sync::mpsc;
use tracing::{debug, info};

use super::plan::Bin;
use super::MaintenanceError;
use crate::lake::delta::commit_on_snapshot;
use crate::lake::files::{write_streamed_file, FileTarget};
use crate::lake::LakeError;
use crate::lake::{live_paths, LiveFile};

/// How often a compaction commit is rebuilt after losing a race to appends (a busy table
/// commits every `ingest.commit_interval`; one attempt takes a log listing and a put).
const MAX_ATTEMPTS: usize = 30;

/// Largest row group of a compacted file (Snowflake's guidance: 16–256 MiB).
const MAX_ROW_GROUP_BYTES: usize = 128 << 20;

/// What became of one bin.
#[derive(Debug)]
pub(super) enum Compacted {
    /// The files were replaced by `add`, committed at `version`.
    Replaced { add: Box<Add>, version: i64 },
    /// Another writer removed some of the files first (another replica compacted them).
    LostRace,
}

/// How a compacted file is written.
#[derive(Debug, Clone)]
pub struct CompactionWriter {
    /// The ingest writer settings (compression) compacted files share.
    pub props: WriterProperties,
    /// Memory the sort may hold before it spills to disk, and the row-group size it leaves.
    pub memory_limit: usize,
}

impl CompactionWriter {
    /// Row groups are sized by bytes, not rows, and carry page statistics (page-index
    /// pruning inside a large file) and the sort order.
    fn props(&self, sort_column: usize) -> WriterProperties {
        let row_group = (self.memory_limit / 4).clamp(16 << 20, MAX_ROW_GROUP_BYTES);
        self.props
            .clone()
            .into_builder()
            .set_max_row_group_row_count(None)
            .set_max_row_group_bytes(Some(row_group))
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_sorting_columns(Some(vec![SortingColumn {
                column_idx: sort_column as i32,
                descending: false,
                nulls_first: true,
            }]))
            .build()
    }
}

/// Compacts `bins` of `table` (whose data columns are `schema`): one new file per bin,
/// then one commit swapping them all in. The outcome of each bin, in order.
pub(super) async fn compact_group(
    table: &mut DeltaTable,
    bins: &[Bin],
    schema: SchemaRef,
    time_column: &str,
    writer: &CompactionWriter,
    now: DateTime<Utc>,
) -> Result<Vec<Compacted>, MaintenanceError> {
    let store = table.object_store();
    let timer = std::time::Instant::now();
    // The bins of a group are written side by side, one per core, each with its share of
    // the memory limit.
    let parallel = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(bins.len())
        .max(1);
    let share = CompactionWriter {
        props: writer.props.clone(),
        memory_limit: writer.memory_limit / parallel,
    };
    // Made up front: a `map` closure over borrowed bins trips rustc's `Send` inference
    // for the spawned run (a higher-ranked lifetime).
    let writes: Vec<_> = bins
        .iter()
        .map(|bin| write_sorted(store.clone(), bin, schema.clone(), time_column, &share, now))
        .collect();
    let written: Vec<Result<Add, MaintenanceError>> = futures::stream::iter(writes)
        .buffered(parallel)
        .collect()
        .await;
    let mut adds = Vec::with_capacity(bins.len());
    let mut failure = None;
    for result in written {
        match result {
            Ok(add) => adds.push(add),
            Err(e) => failure = Some(e),
        }
    }
    if let Some(e) = failure {
        delete_unreferenced(store.as_ref(), &adds).await;
        return Err(e);
    }
    let written = timer.elapsed();
    let committed = commit_swap(table, bins, &adds, now).await;
    debug!(
        bins = bins.len(),
        write_ms = written.as_millis() as u64,
        commit_ms = (timer.elapsed() - written).as_millis() as u64,
        "compaction timings"
    );
    // On an error the commit may still have landed (a store timeout after the write
    // took): the new files stay, and vacuum deletes them if nothing references them.
    let (version, landed) = committed?;
    let mut outcomes = Vec::with_capacity(bins.len());
    let mut lost = Vec::new();
    for ((bin, add), landed) in bins.iter().zip(adds).zip(landed) {
        if landed {
            info!(table = %table.table_url(), partition = %bin.partition, files = bin.files.len(), bytes_in = bin.bytes(), bytes_out = add.size, version, "partition compacted");
            outcomes.push(Compacted::Replaced {
                add: Box::new(add),
                version,
            });
        } else {
            lost.push(add);
            outcomes.push(Compacted::LostRace);
        }
    }
    delete_unreferenced(store.as_ref(), &lost).await;
    Ok(outcomes)
}

/// Deletes files no commit references now rather than leaving them to vacuum.
async fn delete_unreferenced(store: &dyn ObjectStore, adds: &[Add]) {
    for add in adds {
        if let Err(e) = store
            .delete(&Path::parse(&add.path).unwrap_or_default())
            .await
        {
            debug!(path = %add.path, error = %e, "could not delete an uncommitted compacted file; vacuum will");
        }
    }
}

/// Reads the bin's files, sorts their rows by event time (spilling to disk past the memory
/// limit) and streams them into one new file in the partition.
async fn write_sorted(
    store: Arc<dyn ObjectStore>,
    bin: &Bin,
    schema: SchemaRef,
    time_column: &str,
    writer: &CompactionWriter,
    now: DateTime<Utc>,
) -> Result<Add, MaintenanceError> {
    let url = ObjectStoreUrl::parse("lakeport-compaction://table/")?;
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(FairSpillPool::new(writer.memory_limit / 2)))
        .build_arc()?;
    runtime.register_object_store(url.as_ref(), store.clone());
    let files = bin.files.iter().map(partitioned_file).collect();
    let source = ParquetSource::new(schema.clone());
    let scan = FileScanConfigBuilder::new(url, Arc::new(source))
        .with_file_group(FileGroup::new(files))
        .build();
    let scan = DataSourceExec::from_data_source(scan);
    let order = LexOrdering::new([PhysicalSortExpr::new_default(col(time_column, &schema)?)])
        .ok_or_else(|| LakeError::Internal("empty sort order".into()))?;
    let sort = SortExec::new(order, scan);
    let mut rows = sort.execute(0, Arc::new(TaskContext::default().with_runtime(runtime)))?;

    let (tx, rx) = mpsc::channel(2);
    let feeder = tokio::spawn(async move {
        while let Some(batch) = rows.next().await {
            let failed = batch.is_err();
            let batch =
                batch.map_err(|e| LakeError::Internal(format!("reading files to compact: {e}")));
            if tx.send(batch).await.is_err() || failed {
                break;
            }
        }
    });
    let sort_column = schema.index_of(time_column)?;
    let target = FileTarget {
        dir: bin.dir.clone(),
        partition_values: bin.partition_values.clone(),
        data_change: false,
    };
    let written =
        write_streamed_file(store, target, schema, rx, writer.props(sort_column), now).await;
    feeder.abort();
    Ok(written?)
}

fn partitioned_file(file: &LiveFile) -> PartitionedFile {
    PartitionedFile::new_from_meta(ObjectMeta {
        location: Path::parse(&file.path).unwrap_or_else(|_| Path::from(file.path.as_str())),
        last_modified: DateTime::<Utc>::default(),
        size: file.size,
        e_tag: None,
        version: None,
    })
}

/// Commits the swap of every bin whose files are all still live: the version (-1 when
/// none was) and, per bin, whether it landed.
async fn commit_swap(
    table: &mut DeltaTable,
    bins: &[Bin],
    adds: &[Add],
    now: DateTime<Utc>,
) -> Result<(i64, Vec<bool>), MaintenanceError> {
    // Vacuum keeps a removed file for the retention period counted from this time.
    let deleted_at = now.timestamp_millis();
    for attempt in 1..=MAX_ATTEMPTS {
        let live = live_bins(table, bins)?;
        if !live.contains(&true) {
            return Ok((-1, live));
        }
        let mut actions = Vec::new();
        for ((bin, add), _) in bins.iter().zip(adds).zip(&live).filter(|(_, live)| **live) {
            actions.extend(bin.files.iter().map(|f| f.removal(deleted_at, false)));
            actions.push(Action::Add(add.clone()));
        }
        let partitions: Vec<&str> = bins.iter().map(|b| b.partition.as_str()).collect();
        let operation = DeltaOperation::Optimize {
            predicate: Some(partitions.join(" OR ")),
            target_size: adds.iter().map(|a| a.size).max().unwrap_or_default(),
        };
        // No retries inside delta-rs: its rebase would not see a concurrent compaction. On
        // success the next group of this run builds on this commit.
        match commit_on_snapshot(table, actions, operation).await? {
            Some(version) => return Ok((version, live)),
            None => {
                debug!(table = %table.table_url(), attempt, "compaction commit lost a race; checking its files");
            }
        }
    }
    Err(LakeError::CommitContention {
        table: table.table_url().to_string(),
        attempts: MAX_ATTEMPTS,
    }
    .into())
}

/// Per bin, true when every one of its files is in the table's latest loaded snapshot.
fn live_bins(table: &DeltaTable, bins: &[Bin]) -> Result<Vec<bool>, MaintenanceError> {
    let live = live_paths(table)?;
    Ok(bins
        .iter()
        .map(|bin| bin.files.iter().all(|f| live.contains(&f.path)))
        .collect())
}
