//! Small units of one table that meet in a group commit share their files. A unit small
//! enough to share hands its rows to the committer instead of writing its own files; the
//! committer writes the rows of every unit it includes in a commit, partition by partition,
//! into one file each, just before the commit that references them. Eight producers of
//! 2,000 rows over 18 partitions then write 18 files per commit, not 144, and each is still
//! acknowledged only once that commit is durable.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use chrono::{DateTime, Utc};
use deltalake::kernel::Add;
use deltalake::ObjectStore;
use futures::{StreamExt, TryStreamExt};
use parquet::file::properties::WriterProperties;

use super::files::write_data_file;
use super::{LakeError, PartitionKey};

/// The rows of one unit for one table, waiting to be written with its neighbours'.
pub struct UnitRows {
    pub parts: BTreeMap<PartitionKey, Vec<RecordBatch>>,
    /// The schema of the files (the table's columns minus the derived partition columns).
    pub file_schema: SchemaRef,
    pub rows: u64,
    pub props: WriterProperties,
    /// The time the unit was flushed; a shared file is named after its earliest unit's.
    pub flushed_at: DateTime<Utc>,
    /// Kept until the rows are written: the door's memory reservation for them.
    pub hold: Box<dyn Any + Send + Sync>,
}

impl std::fmt::Debug for UnitRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnitRows")
            .field("partitions", &self.parts.len())
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

/// One file to write: a schema, a partition and the rows of every unit sharing it.
struct SharedFile {
    schema: SchemaRef,
    key: PartitionKey,
    batches: Vec<RecordBatch>,
}

/// Groups the units' rows by file schema and partition (units of a stream whose schema
/// grew cannot share a file with the older columns).
fn group(units: &[&UnitRows]) -> Vec<SharedFile> {
    let mut files: Vec<SharedFile> = Vec::new();
    let mut index: Vec<(&SchemaRef, BTreeMap<&PartitionKey, usize>)> = Vec::new();
    for unit in units {
        let at = match index
            .iter()
            .position(|(s, _)| Arc::ptr_eq(s, &unit.file_schema) || s == &&unit.file_schema)
        {
            Some(at) => at,
            None => {
                index.push((&unit.file_schema, BTreeMap::new()));
                index.len() - 1
            }
        };
        let (schema, by_key) = &mut index[at];
        for (key, batches) in &unit.parts {
            let file = *by_key.entry(key).or_insert_with(|| {
                files.push(SharedFile {
                    schema: (*schema).clone(),
                    key: key.clone(),
                    batches: Vec::new(),
                });
                files.len() - 1
            });
            files[file].batches.extend(batches.iter().cloned());
        }
    }
    files
}

/// Writes the shared files of `units`, as many at once as there are cores; their `add`
/// actions for the commit.
pub(super) async fn write_shared(
    store: Arc<dyn ObjectStore>,
    units: &[&UnitRows],
) -> Result<Vec<Add>, LakeError> {
    let Some(first) = units.first() else {
        return Ok(vec![]);
    };
    let props = first.props.clone();
    let now = units
        .iter()
        .map(|u| u.flushed_at)
        .min()
        .unwrap_or(first.flushed_at);
    let parallelism = std::thread::available_parallelism().map_or(2, |n| n.get());
    let writes = group(units).into_iter().map(|file| {
        let store = store.clone();
        let props = props.clone();
        async move {
            write_data_file(store, &file.key, file.schema, file.batches, props, now).await
        }
    });
    futures::stream::iter(writes)
        .buffer_unordered(parallelism)
        .try_collect()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};

    fn unit(schema: &SchemaRef, hours: &[i64]) -> UnitRows {
        let mut parts = BTreeMap::new();
        for hour in hours {
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![Arc::new(Int64Array::from(vec![*hour]))],
            )
            .unwrap();
            parts.insert(
                PartitionKey {
                    app: None,
                    hour: *hour,
                },
                vec![batch],
            );
        }
        UnitRows {
            parts,
            file_schema: schema.clone(),
            rows: hours.len() as u64,
            props: WriterProperties::default(),
            flushed_at: Utc::now(),
            hold: Box::new(()),
        }
    }

    #[test]
    fn units_share_one_file_per_partition_and_schema() {
        let a: SchemaRef = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, true)]));
        let same = Arc::new(a.as_ref().clone());
        let grown: SchemaRef = Arc::new(Schema::new(vec![Field::new("w", DataType::Int64, true)]));
        let units = [unit(&a, &[1, 2]), unit(&same, &[2, 3]), unit(&grown, &[2])];
        let refs: Vec<&UnitRows> = units.iter().collect();
        let files = group(&refs);
        let shape: Vec<(String, i64, usize)> = files
            .iter()
            .map(|f| {
                (
                    f.schema.field(0).name().clone(),
                    f.key.hour,
                    f.batches.len(),
                )
            })
            .collect();
        assert_eq!(
            shape,
            vec![
                ("v".to_string(), 1, 1),
                ("v".to_string(), 2, 2),
                ("v".to_string(), 3, 1),
                ("w".to_string(), 2, 1),
            ]
        );
    }
}
