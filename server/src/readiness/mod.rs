//! Snowflake readiness: can Snowflake read each table from an external stage, and the SQL
//! to make it do so. Facts come from the Delta log and the footers of the newest files;
//! the rules live in `checks`, the SQL in `ddl`.

pub mod checks;
pub mod ddl;
pub mod footers;
mod system_table;

use std::sync::Arc;

use arrow::datatypes::Schema;
use deltalake::kernel::engine::arrow_conversion::TryIntoArrow;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::errors::ParquetError;
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};

use crate::lake::{last_checkpoint, live_files, LakeError, LakeTables, LiveFile, LoadedTable};
pub use checks::{Check, State, CHECKS};
use checks::{Limits, TableFacts};
use ddl::TableTarget;
pub use system_table::ReadinessTable;

/// Footers read per table: the newest files (what ingest and compaction write now).
const FOOTERS_READ: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum ReadinessError {
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error("cannot read the footer of {path}: {source}")]
    Footer {
        path: String,
        source: parquet::errors::ParquetError,
    },
    #[error("unknown dataset {0:?}")]
    UnknownDataset(String),
}

fn unopenable(tenant: &str, dataset: &str, e: &LakeError) -> TableReadiness {
    let mut reason = e.to_string();
    // Kernel errors may carry a whole backtrace; the first line says what is wrong.
    reason.truncate(reason.find('\n').unwrap_or(reason.len()).min(1000));
    TableReadiness {
        tenant: tenant.to_string(),
        dataset: dataset.to_string(),
        location: String::new(),
        checks: vec![Check {
            name: "protocol",
            state: State::Fail,
            evidence: format!("the table cannot be opened by a Delta reader: {reason}"),
            fix:
                "repair or rewrite the table so that delta-rs opens it (Snowflake will not either)"
                    .into(),
        }],
        ddl: String::new(),
    }
}

/// Bytes first read from a file's end: the footer of a file lakeport writes fits.
const FOOTER_GUESS: u64 = 64 << 10;

/// Reads a Parquet footer with one ranged GET (two when it is larger than the guess).
async fn read_footer(
    store: &dyn ObjectStore,
    file: &LiveFile,
) -> Result<ParquetMetaData, ReadinessError> {
    let location = Path::parse(&file.path).unwrap_or_else(|_| Path::from(file.path.as_str()));
    let bad = |source| ReadinessError::Footer {
        path: file.path.clone(),
        source,
    };
    let mut reader = ParquetMetaDataReader::new();
    let mut tail = FOOTER_GUESS.min(file.size);
    loop {
        let bytes = store
            .get_range(&location, file.size - tail..file.size)
            .await
            .map_err(LakeError::from)?;
        match reader.try_parse_sized(&bytes, file.size) {
            Ok(()) => return reader.finish().map_err(bad),
            Err(ParquetError::NeedMoreData(needed))
                if (needed as u64) > tail && (needed as u64) <= file.size =>
            {
                tail = needed as u64;
            }
            Err(e) => return Err(bad(e)),
        }
    }
}

/// One table's checks and its Snowflake SQL.
#[derive(Debug, Clone)]
pub struct TableReadiness {
    pub tenant: String,
    pub dataset: String,
    pub location: String,
    pub checks: Vec<Check>,
    pub ddl: String,
}

impl TableReadiness {
    /// The worst state of its checks.
    pub fn state(&self) -> State {
        self.checks
            .iter()
            .map(|c| c.state)
            .max()
            .unwrap_or(State::Pass)
    }
}

/// The checks over the tables `LakeTables` sees, by its health settings.
#[derive(Debug, Clone)]
pub struct Readiness {
    tables: Arc<LakeTables>,
}

impl Readiness {
    pub fn new(tables: Arc<LakeTables>) -> Self {
        Self { tables }
    }

    /// Every tenant with a table or a configuration.
    pub async fn tenants(&self) -> Result<Vec<String>, ReadinessError> {
        Ok(self.tables.tenants().await?)
    }

    /// Every existing table of `tenants` (one dataset's when named), in tenant and dataset
    /// order.
    pub async fn report(
        &self,
        tenants: &[String],
        dataset: Option<&str>,
    ) -> Result<Vec<TableReadiness>, ReadinessError> {
        let datasets = match dataset {
            Some(name) => vec![self
                .tables
                .dataset(name)
                .ok_or_else(|| ReadinessError::UnknownDataset(name.to_string()))?],
            None => self.tables.datasets(),
        };
        let mut reports = Vec::new();
        for tenant in tenants {
            for dataset in &datasets {
                match self.tables.load(tenant, dataset, None).await {
                    Ok(Some(loaded)) => reports.push(self.check(loaded).await?),
                    Ok(None) => {}
                    // A table no Delta reader can open (delta-kernel refuses it) is the
                    // first thing to report, not a reason to report nothing.
                    // Store failures (already told apart from Delta's own) stay errors.
                    Err(e @ LakeError::Delta(_)) => {
                        reports.push(unopenable(tenant, &dataset.name, &e))
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        reports.sort_by(|a, b| (&a.tenant, &a.dataset).cmp(&(&b.tenant, &b.dataset)));
        Ok(reports)
    }

    async fn check(&self, loaded: LoadedTable) -> Result<TableReadiness, ReadinessError> {
        let table = &loaded.table;
        let snapshot = table.snapshot().map_err(LakeError::from)?;
        let schema: Schema = snapshot
            .schema()
            .as_ref()
            .try_into_arrow()
            .map_err(|e| LakeError::Internal(format!("table schema has no Arrow form: {e}")))?;
        let protocol = snapshot.protocol();
        let metadata = snapshot.metadata();
        let mut files = live_files(table)?;
        files.sort_by_key(|f| std::cmp::Reverse(f.modification_time));
        let store = table.object_store();
        let read: Vec<(String, Result<ParquetMetaData, ReadinessError>)> =
            futures::stream::iter(files.iter().take(FOOTERS_READ).cloned())
                .map(|file| {
                    let store = store.clone();
                    async move {
                        let footer = read_footer(store.as_ref(), &file).await;
                        (file.path, footer)
                    }
                })
                .buffered(8)
                .collect()
                .await;
        let mut footers = Vec::new();
        let mut unreadable_footers = Vec::new();
        for (path, footer) in read {
            match footer {
                Ok(footer) => footers.push((path, footer)),
                // A file Snowflake cannot open is a finding, not a failure of the check.
                Err(ReadinessError::Footer { source, .. }) => {
                    unreadable_footers.push((path, source.to_string()))
                }
                Err(e) => return Err(e),
            }
        }
        let facts = TableFacts {
            version: loaded.version() as i64,
            last_checkpoint: last_checkpoint(store.as_ref()).await?,
            min_reader_version: protocol.min_reader_version(),
            reader_features: protocol
                .reader_features()
                .map(|f| f.iter().map(|x| x.to_string()).collect())
                .unwrap_or_default(),
            configuration: metadata.configuration().clone(),
            partition_columns: metadata.partition_columns().to_vec(),
            expected_partition_columns: loaded.dataset.partition_columns(),
            schema,
            files,
            footers,
            unreadable_footers,
            sse_c: self.tables.lake().uses_sse_c(&loaded.tenant),
            store_kind: loaded.store_kind,
        };
        let limits = Limits {
            checkpoint_interval: self.tables.checkpoint_interval() as i64,
            target_file_size: self.tables.file_targets().of(&loaded.dataset.name),
        };
        let checks = checks::run(&facts, limits);
        let ddl = ddl::snowflake_ddl(&TableTarget {
            tenant: &loaded.tenant,
            dataset: &loaded.dataset.name,
            store_name: &loaded.store,
            store_kind: loaded.store_kind,
            store_root: &loaded.store_root,
            table_url: table.table_url(),
            schema: &facts.schema,
            partition_columns: &facts.partition_columns,
        });
        Ok(TableReadiness {
            tenant: loaded.tenant.clone(),
            dataset: loaded.dataset.name.clone(),
            location: table.table_url().to_string(),
            checks,
            ddl,
        })
    }
}
