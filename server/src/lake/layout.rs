//! What a table's data files are: the live files of a loaded version, the partition each
//! is named by, and the file sizes compaction aims at (which health is judged by).

use std::collections::{BTreeMap, HashMap, HashSet};

use super::{LakeError, NULL_PARTITION};

/// One live data file of a table, as its `add` action describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveFile {
    pub path: String,
    pub size: u64,
    pub partition_values: HashMap<String, Option<String>>,
    /// Milliseconds since the Unix epoch, as the `add` says.
    pub modification_time: i64,
    /// `numRecords` of the `add`'s statistics, when it has them.
    pub rows: Option<u64>,
}

impl LiveFile {
    /// The `remove` action that takes this file out of the table at `deleted_at` (ms;
    /// vacuum counts the deleted-file retention from it). `data_change` is false when the
    /// rows stay in the table in another file (compaction).
    pub fn removal(&self, deleted_at: i64, data_change: bool) -> deltalake::kernel::Action {
        deltalake::kernel::Action::Remove(deltalake::kernel::Remove {
            path: self.path.clone(),
            data_change,
            deletion_timestamp: Some(deleted_at),
            extended_file_metadata: Some(true),
            partition_values: Some(self.partition_values.clone()),
            size: Some(self.size as i64),
            tags: None,
            deletion_vector: None,
            base_row_id: None,
            default_row_commit_version: None,
        })
    }
}

/// The data files of a table's loaded version.
pub fn live_files(table: &deltalake::DeltaTable) -> Result<Vec<LiveFile>, LakeError> {
    Ok(table
        .snapshot()?
        .log_data()
        .iter()
        .map(|f| LiveFile {
            path: f.path().into_owned(),
            size: f.size().max(0) as u64,
            partition_values: f.partition_values_map(),
            modification_time: f.modification_time(),
            rows: f.num_records().map(|n| n as u64),
        })
        .collect())
}

/// The paths of the data files of a table's loaded version.
pub fn live_paths(table: &deltalake::DeltaTable) -> Result<HashSet<String>, LakeError> {
    Ok(table
        .snapshot()?
        .log_data()
        .iter()
        .map(|f| f.path().into_owned())
        .collect())
}

/// The partition name of a file: `col=value` for each partition column, in order.
pub fn partition_name(columns: &[String], values: &HashMap<String, Option<String>>) -> String {
    columns
        .iter()
        .map(|c| {
            let value = values.get(c).cloned().flatten();
            format!("{c}={}", value.as_deref().unwrap_or(NULL_PARTITION))
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The size compaction packs each dataset's files toward.
#[derive(Debug, Clone)]
pub struct FileTargets {
    pub default: u64,
    /// Datasets that set their own `target_file_size`.
    pub per_dataset: BTreeMap<String, u64>,
}

impl Default for FileTargets {
    fn default() -> Self {
        Self {
            default: 256 << 20,
            per_dataset: BTreeMap::new(),
        }
    }
}

impl FileTargets {
    pub fn of(&self, dataset: &str) -> u64 {
        self.per_dataset
            .get(dataset)
            .copied()
            .unwrap_or(self.default)
    }
}

/// Per Hive partition of one table: files, bytes, rows, event-time bounds (µs).
#[derive(Debug, Default)]
pub struct PartitionUsage {
    pub files: i64,
    /// Files under the size they were counted against (see `partition_usage`).
    pub small_files: i64,
    pub bytes: i64,
    pub rows: i64,
    pub min_time: Option<i64>,
    pub max_time: Option<i64>,
}

/// The live files of a loaded table by partition name; files under `small_below` bytes
/// count as small.
pub fn partition_usage(
    table: &deltalake::DeltaTable,
    partition_columns: &[String],
    time_column: &str,
    small_below: i64,
) -> Result<BTreeMap<String, PartitionUsage>, LakeError> {
    let snapshot = table.snapshot()?;
    let mut usage: BTreeMap<String, PartitionUsage> = BTreeMap::new();
    for file in snapshot.log_data().iter() {
        let values = file.partition_values_map();
        let entry = usage
            .entry(partition_name(partition_columns, &values))
            .or_default();
        entry.files += 1;
        entry.small_files += i64::from(file.size() < small_below);
        entry.bytes += file.size();
        entry.rows += file.num_records().unwrap_or(0) as i64;
        if let Some((min, max)) = file
            .stats()
            .and_then(|stats| time_bounds(&stats, time_column))
        {
            entry.min_time = Some(entry.min_time.map_or(min, |m| m.min(min)));
            entry.max_time = Some(entry.max_time.map_or(max, |m| m.max(max)));
        }
    }
    Ok(usage)
}

/// Min and max of the event-time column from a file's JSON statistics, in µs.
fn time_bounds(stats: &str, column: &str) -> Option<(i64, i64)> {
    let stats: serde_json::Value = serde_json::from_str(stats).ok()?;
    let parse = |bound: &str| -> Option<i64> {
        let text = stats.get(bound)?.get(column)?.as_str()?;
        Some(
            chrono::DateTime::parse_from_rfc3339(text)
                .ok()?
                .timestamp_micros(),
        )
    };
    Some((parse("minValues")?, parse("maxValues")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_bounds_read_the_event_time_column() {
        let stats = r#"{"numRecords":2,"minValues":{"ts":"2024-01-01T00:00:00.000Z"},"maxValues":{"ts":"2024-01-01T01:00:00.000Z"}}"#;
        assert_eq!(
            time_bounds(stats, "ts"),
            Some((1_704_067_200_000_000, 1_704_070_800_000_000))
        );
        assert_eq!(time_bounds(stats, "other"), None);
    }
}
