//! Small units of one table that meet in a group commit share their files. A unit small
//! enough to share hands its rows to the committer instead of writing its own files; the
//! committer writes the rows of every unit it includes in a commit, partition by partition,
//! into one file each, just before the commit that references them. Eight producers of
//! 2,000 rows over 18 partitions then write 18 files per commit, not 144, and each is still
//! acknowledged only once that commit is durable.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{new_null_array, RecordBatch};
use arrow::datatypes::{Field, Schema, SchemaRef};
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

/// Units whose columns can go in one file, and their rows by partition.
#[derive(Default)]
struct Group<'a> {
    schemas: Vec<&'a SchemaRef>,
    parts: BTreeMap<&'a PartitionKey, Vec<&'a RecordBatch>>,
}

impl Group<'_> {
    /// False when a column of `schema` has another type here.
    fn takes(&self, schema: &Schema) -> bool {
        schema.fields().iter().all(|field| {
            self.schemas
                .iter()
                .all(|s| match s.field_with_name(field.name()) {
                    Ok(ours) => ours.data_type() == field.data_type(),
                    Err(_) => true,
                })
        })
    }

    /// Every column of the group's units, in order of first appearance; nullable unless
    /// every unit has it and none allows null.
    fn schema(&self) -> SchemaRef {
        let mut fields: Vec<Field> = Vec::new();
        for schema in &self.schemas {
            for field in schema.fields() {
                if !fields.iter().any(|f| f.name() == field.name()) {
                    let everywhere = self.schemas.iter().all(|s| {
                        s.field_with_name(field.name())
                            .is_ok_and(|f| !f.is_nullable())
                    });
                    fields.push(field.as_ref().clone().with_nullable(!everywhere));
                }
            }
        }
        Arc::new(Schema::new(fields))
    }
}

/// Groups the units' rows by partition. Units with different columns (a stream whose
/// schema grew, requests that leave different columns null) share a file whose columns are
/// all of theirs, a column a unit lacks written as null there (as a reader reads a column
/// missing from a file); only a column of two types keeps them apart.
fn group(units: &[&UnitRows]) -> Result<Vec<SharedFile>, LakeError> {
    let mut groups: Vec<Group> = Vec::new();
    for unit in units {
        let at = match groups.iter().position(|g| g.takes(&unit.file_schema)) {
            Some(at) => at,
            None => {
                groups.push(Group::default());
                groups.len() - 1
            }
        };
        let group = &mut groups[at];
        if !group
            .schemas
            .iter()
            .any(|s| Arc::ptr_eq(s, &unit.file_schema) || *s == &unit.file_schema)
        {
            group.schemas.push(&unit.file_schema);
        }
        for (key, batches) in &unit.parts {
            group.parts.entry(key).or_default().extend(batches);
        }
    }
    let mut files = Vec::new();
    for group in groups {
        let schema = group.schema();
        for (key, batches) in group.parts {
            let batches = batches
                .into_iter()
                .map(|b| widen(b, &schema))
                .collect::<Result<_, _>>()?;
            files.push(SharedFile {
                schema: schema.clone(),
                key: key.clone(),
                batches,
            });
        }
    }
    Ok(files)
}

/// `batch` with the columns of `schema`, null where it has none.
fn widen(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, LakeError> {
    if batch.schema().fields() == schema.fields() {
        return Ok(batch.clone());
    }
    let columns = schema
        .fields()
        .iter()
        .map(|field| match batch.column_by_name(field.name()) {
            Some(column) => column.clone(),
            None => new_null_array(field.data_type(), batch.num_rows()),
        })
        .collect();
    RecordBatch::try_new(schema.clone(), columns)
        .map_err(|e| LakeError::Internal(format!("shared file rows do not fit its columns: {e}")))
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
    let writes = group(units)?.into_iter().map(|file| {
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
    fn units_with_other_columns_share_one_file_per_partition() {
        let v = Field::new("v", DataType::Int64, true);
        let a: SchemaRef = Arc::new(Schema::new(vec![v.clone()]));
        let same = Arc::new(a.as_ref().clone());
        let other: SchemaRef = Arc::new(Schema::new(vec![Field::new("w", DataType::Int64, true)]));
        let clash: SchemaRef = Arc::new(Schema::new(vec![Field::new("v", DataType::Utf8, true)]));
        let mut units = vec![unit(&a, &[1, 2]), unit(&same, &[2, 3]), unit(&other, &[2])];
        units.push(UnitRows {
            parts: BTreeMap::from([(
                PartitionKey { app: None, hour: 2 },
                vec![RecordBatch::try_new(
                    clash.clone(),
                    vec![Arc::new(arrow::array::StringArray::from(vec!["x"]))],
                )
                .unwrap()],
            )]),
            ..unit(&clash, &[])
        });
        let refs: Vec<&UnitRows> = units.iter().collect();
        let files = group(&refs).unwrap();
        let shape: Vec<(Vec<String>, i64, usize)> = files
            .iter()
            .map(|f| {
                let names = f.schema.fields().iter().map(|c| c.name().clone()).collect();
                (
                    names,
                    f.key.hour,
                    f.batches.iter().map(|b| b.num_rows()).sum(),
                )
            })
            .collect();
        let vw = || vec!["v".to_string(), "w".to_string()];
        assert_eq!(
            shape,
            vec![
                (vw(), 1, 1),
                (vw(), 2, 3),
                (vw(), 3, 1),
                (vec!["v".to_string()], 2, 1),
            ],
            "one file per partition for v and w; the Utf8 v apart"
        );
        let hour_two = &files[1].batches;
        let w = hour_two[2].column_by_name("w").unwrap();
        assert_eq!(w.null_count(), 0, "the w unit's own value");
        assert_eq!(hour_two[0].column_by_name("w").unwrap().null_count(), 1);
    }
}
