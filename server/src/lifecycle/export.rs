//! Sharing: a tenant's partitions of a time range become a new, standalone Delta table in
//! another store (a customer's bucket): the data files are copied under the same relative
//! paths, then one commit (version 0) adds them all, then a checkpoint, so any Delta reader
//! reads it. The source is untouched. Run again after a failure, it skips the files already
//! copied, and finds its own commit if that landed.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use deltalake::kernel::{Action, Add, StructField};
use deltalake::protocol::SaveMode;
use deltalake::DeltaTable;
use object_store::path::Path;
use tracing::info;

use super::{Lifecycle, LifecycleError};
use crate::lake::copy::{copy_all, CopyEnds, CopyItem};
use crate::lake::delta::ensure_local_dir;
use crate::lake::{partition_hour, LakeError, Store, StoreSpec};

/// What to export, and where to.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    pub tenant: String,
    pub dataset: String,
    /// Hour partitions from this time (inclusive) ...
    pub from: DateTime<Utc>,
    /// ... to this one (exclusive).
    pub to: DateTime<Utc>,
    pub target: ExportTarget,
    /// Asked by the tenant itself: the target must be outside the lake's buckets, written
    /// with the credentials given alone (never the server's), and name no endpoint.
    pub by_tenant: bool,
}

/// The object_store options a tenant may give for its target: credentials and region.
/// Endpoints and transport settings would let a tenant aim the server's requests anywhere.
const TENANT_OPTIONS: [&str; 11] = [
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "aws_region",
    "azure_storage_account_name",
    "azure_storage_account_key",
    "azure_storage_sas_key",
    "azure_storage_token",
    "azure_storage_client_id",
    "azure_storage_client_secret",
    "google_service_account_key",
];

/// Where the new table goes.
#[derive(Debug, Clone)]
pub enum ExportTarget {
    /// Its root URL and the options (credentials) to write there.
    Url(StoreSpec),
    /// A directory of a configured store, with the server's credentials for it.
    Store { name: String, path: String },
}

/// What an export did.
#[derive(Debug, Clone)]
pub struct ExportReport {
    pub url: String,
    pub files: u64,
    /// Files copied by this call (the others were there from an earlier try).
    pub files_copied: u64,
    pub bytes: u64,
    pub rows: u64,
    pub version: i64,
}

/// A data file of the source's latest version that is in the range.
struct Picked {
    add: Add,
    rows: u64,
}

/// A time as `2026-01-01` (midnight UTC) or RFC 3339.
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, LifecycleError> {
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            LifecycleError::BadRequest(format!(
                "{text:?} is not a date (2026-01-01) or an RFC 3339 time: {e}"
            ))
        })
}

impl Lifecycle {
    pub async fn export(&self, request: ExportRequest) -> Result<ExportReport, LifecycleError> {
        if request.from >= request.to {
            return Err(LifecycleError::BadRequest(format!(
                "the range is empty: from {} is not before to {}",
                request.from, request.to
            )));
        }
        let dataset = self
            .tables
            .dataset(&request.dataset)
            .ok_or_else(|| LifecycleError::UnknownDataset(request.dataset.clone()))?;
        let source = self
            .tables
            .load(&request.tenant, &dataset, None)
            .await?
            .ok_or_else(|| LifecycleError::NoTable {
                tenant: request.tenant.clone(),
                dataset: request.dataset.clone(),
            })?
            .table;
        let picked = picked_files(&source, request.from, request.to)?;
        if picked.is_empty() {
            return Err(LifecycleError::BadRequest(format!(
                "{}.{} has no partition from {} to {}",
                request.tenant, request.dataset, request.from, request.to
            )));
        }
        let target = match &request.target {
            ExportTarget::Url(spec) if request.by_tenant => {
                self.check_tenant_target(spec)?;
                let spec = StoreSpec {
                    without_environment: true,
                    ..spec.clone()
                };
                Store::new("export", &spec)?
            }
            ExportTarget::Url(spec) => Store::new("export", spec)?,
            ExportTarget::Store { name, path } => self.tables.lake().store_beneath(name, path)?,
        };
        let root = target.root_path();
        let items: Vec<CopyItem> = picked
            .iter()
            .map(|p| CopyItem {
                from: Path::parse(&p.add.path).unwrap_or_else(|_| Path::from(p.add.path.as_str())),
                to: Path::parse(format!("{root}/{}", p.add.path))
                    .unwrap_or_else(|_| root.clone().join(p.add.path.as_str())),
                size: p.add.size.max(0) as u64,
                always: false,
            })
            .collect();
        let ends = CopyEnds {
            source: source.object_store(),
            target: target.client(None)?,
            attributes: Default::default(),
            server_side: false,
        };
        let bytes = items.iter().map(|i| i.size).sum();
        let copied = copy_all(&ends, &[items], &root).await?.objects;
        let version = commit_once(&source, &target, &picked, &request).await?;
        let report = ExportReport {
            url: target.root.to_string(),
            files: picked.len() as u64,
            files_copied: copied,
            bytes,
            rows: picked.iter().map(|p| p.rows).sum(),
            version,
        };
        info!(tenant = %request.tenant, dataset = %request.dataset, url = %report.url, files = report.files, bytes = report.bytes, rows = report.rows, "export finished");
        Ok(report)
    }
}

impl Lifecycle {
    /// A tenant's own export goes to a bucket of its own, with its own credentials.
    fn check_tenant_target(&self, spec: &StoreSpec) -> Result<(), LifecycleError> {
        if !spec.url.contains("://") || spec.url.starts_with("file:") {
            return Err(LifecycleError::Refused(
                "exporting to a local path is for admins; give an s3://, az:// or gs:// URL".into(),
            ));
        }
        if self.tables.lake().holds_url(&spec.url) {
            return Err(LifecycleError::Refused(format!(
                "{} is in a bucket the lake itself uses; export to a bucket of your own",
                spec.url
            )));
        }
        if let Some(key) = spec
            .options
            .keys()
            .find(|k| !TENANT_OPTIONS.contains(&k.to_ascii_lowercase().as_str()))
        {
            return Err(LifecycleError::Refused(format!(
                "option {key:?} is for admins; a tenant gives credentials and region only ({})",
                TENANT_OPTIONS.join(", ")
            )));
        }
        Ok(())
    }
}

/// The live files whose hour partition lies in `[from, to)`, as `add`s for the new table.
fn picked_files(
    table: &DeltaTable,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<Picked>, LifecycleError> {
    let snapshot = table.snapshot().map_err(LakeError::from)?;
    let mut picked = Vec::new();
    for file in snapshot.log_data().iter() {
        let values: HashMap<String, Option<String>> = file.partition_values_map();
        let Some(hour) = partition_hour(&values) else {
            continue;
        };
        if hour < from || hour >= to {
            continue;
        }
        picked.push(Picked {
            rows: file.num_records().unwrap_or(0) as u64,
            add: Add {
                path: file.path().into_owned(),
                partition_values: values,
                size: file.size(),
                modification_time: file.modification_time(),
                data_change: true,
                stats: file.stats(),
                ..Default::default()
            },
        });
    }
    Ok(picked)
}

/// Commits the new table's version 0 with every picked file, unless an earlier try did;
/// then checkpoints it. The version of the commit.
async fn commit_once(
    source: &DeltaTable,
    target: &Store,
    picked: &[Picked],
    request: &ExportRequest,
) -> Result<i64, LifecycleError> {
    let url = target.root.clone();
    let mut table = target
        .table_builder(url.clone(), None)?
        .build()
        .map_err(LakeError::from)?;
    let wanted: BTreeSet<&str> = picked.iter().map(|p| p.add.path.as_str()).collect();
    if table.load().await.is_ok() {
        let snapshot = table.snapshot().map_err(LakeError::from)?;
        let found: Vec<String> = snapshot
            .log_data()
            .iter()
            .map(|f| f.path().into_owned())
            .collect();
        let same = found.len() == wanted.len() && found.iter().all(|p| wanted.contains(p.as_str()));
        if !same {
            return Err(LifecycleError::TargetHoldsTable {
                url: url.to_string(),
            });
        }
    } else {
        ensure_local_dir(&url)?;
        let snapshot = source.snapshot().map_err(LakeError::from)?;
        let columns: Vec<StructField> = snapshot.schema().fields().cloned().collect();
        let partition_columns = snapshot.metadata().partition_columns().to_vec();
        let adds = picked
            .iter()
            .map(|p| Action::Add(p.add.clone()))
            .collect::<Vec<_>>();
        table = table
            .create()
            .with_table_name(format!("{}_{}", request.tenant, request.dataset))
            .with_comment(format!(
                "lakeport export of {}.{} from {} to {}",
                request.tenant, request.dataset, request.from, request.to
            ))
            .with_columns(columns)
            .with_partition_columns(partition_columns)
            .with_actions(adds)
            .with_save_mode(SaveMode::ErrorIfExists)
            .await
            .map_err(LakeError::from)?;
    }
    deltalake::checkpoints::create_checkpoint(&table, None)
        .await
        .map_err(LakeError::from)?;
    Ok(table.version().unwrap_or_default() as i64)
}
