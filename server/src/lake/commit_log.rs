//! What a table's Delta log says commit by commit: which commit files remain, and what
//! each one did (when, which operation, the rows and files it added), and which version
//! the last checkpoint is of.

use deltalake::kernel::Action;
use deltalake::DeltaTable;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::ObjectStoreExt;

use super::stats::rows_of;
use super::LakeError;

/// The commit files (`_delta_log/NNN.json`) still in the log, oldest first.
pub async fn commit_files(table: &DeltaTable) -> Result<Vec<(u64, Path)>, LakeError> {
    let store = table.log_store().object_store(None);
    let log = Path::from("_delta_log");
    let objects: Vec<_> = store.list(Some(&log)).try_collect().await?;
    let mut commits: Vec<(u64, Path)> = objects
        .into_iter()
        .filter_map(|meta| {
            let name = meta.location.filename()?;
            let version = name.strip_suffix(".json")?.parse::<u64>().ok()?;
            Some((version, meta.location))
        })
        .collect();
    commits.sort_by_key(|(v, _)| *v);
    Ok(commits)
}

/// What one commit file says: when, what operation, how many rows and files it added.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CommitSummary {
    pub time: Option<i64>,
    pub operation: String,
    pub rows_added: i64,
    pub files_added: i64,
}

/// Reads one commit file of `table`'s log.
pub async fn read_commit(table: &DeltaTable, path: &Path) -> Result<CommitSummary, LakeError> {
    let store = table.log_store().object_store(None);
    let bytes = store.get(path).await?.bytes().await?;
    Ok(summarize(&String::from_utf8_lossy(&bytes)))
}

/// The actions of a commit file, line by line; `None` for a line that is no action this
/// version of delta-rs knows.
pub(crate) fn actions(text: &str) -> impl Iterator<Item = Option<Action>> + '_ {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| serde_json::from_str::<Action>(line).ok())
}

/// Lines that are no action this version of delta-rs knows are skipped.
fn summarize(text: &str) -> CommitSummary {
    let mut summary = CommitSummary::default();
    let mut adds = Vec::new();
    for action in actions(text) {
        match action {
            Some(Action::CommitInfo(info)) => {
                summary.time = info.timestamp;
                summary.operation = info.operation.unwrap_or_default();
            }
            Some(Action::Add(add)) => adds.push(add),
            _ => {}
        }
    }
    summary.files_added = adds.len() as i64;
    summary.rows_added = rows_of(&adds);
    summary
}

/// The version `_delta_log/_last_checkpoint` names; `None` when the table has none.
pub async fn last_checkpoint(
    store: &dyn object_store::ObjectStore,
) -> Result<Option<i64>, LakeError> {
    let location = Path::from("_delta_log/_last_checkpoint");
    let bytes = match store.get(&location).await {
        Ok(found) => found.bytes().await?,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    #[derive(serde::Deserialize)]
    struct LastCheckpoint {
        version: i64,
    }
    // A malformed pointer is as good as none: readers fall back to listing the log.
    Ok(serde_json::from_slice::<LastCheckpoint>(&bytes)
        .ok()
        .map(|c| c.version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_summary_counts_added_rows_and_files() {
        let text = r#"{"commitInfo":{"timestamp":1700000000000,"operation":"WRITE"}}
{"add":{"path":"a.parquet","partitionValues":{},"size":1,"modificationTime":0,"dataChange":true,"stats":"{\"numRecords\":3}"}}
{"add":{"path":"b.parquet","partitionValues":{},"size":1,"modificationTime":0,"dataChange":true,"stats":"{\"numRecords\":4}"}}
{"txn":{"appId":"p","version":2}}"#;
        let s = summarize(text);
        assert_eq!(s.time, Some(1_700_000_000_000));
        assert_eq!(s.operation, "WRITE");
        assert_eq!((s.rows_added, s.files_added), (7, 2));
    }
}
