//! Which files compaction rewrites: the small files of each closed hour partition,
//! bin-packed toward the target size. Pure, so every rule is unit-tested.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::lake::{partition_hour, partition_name, LiveFile};

/// Files of one partition that become one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bin {
    /// `col=value/...` in partition-column order, as `system.partitions` names it.
    pub partition: String,
    /// Directory of the new file relative to the table root.
    pub dir: String,
    pub partition_values: HashMap<String, Option<String>>,
    pub files: Vec<LiveFile>,
}

impl Bin {
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// When a partition counts as closed and how big compacted files grow.
#[derive(Debug, Clone, Copy)]
pub struct CompactionRules {
    pub target_file_size: u64,
    /// An hour partition is compacted once this long has passed since the hour ended.
    pub grace_period: Duration,
}

/// The bins to compact now. Files at or above the target stay as they are; the others of
/// each closed partition are packed first-fit by decreasing size into bins of at most the
/// target, and every bin of two files or more is rewritten.
pub fn plan(
    files: Vec<LiveFile>,
    columns: &[String],
    rules: CompactionRules,
    now: DateTime<Utc>,
) -> Vec<Bin> {
    let mut partitions: BTreeMap<String, Vec<LiveFile>> = BTreeMap::new();
    for file in files {
        if file.size >= rules.target_file_size {
            continue;
        }
        let name = partition_name(columns, &file.partition_values);
        partitions.entry(name).or_default().push(file);
    }
    let mut bins = Vec::new();
    for (partition, mut small) in partitions {
        if small.len() < 2 || !is_closed(&small[0].partition_values, rules.grace_period, now) {
            continue;
        }
        small.sort_by(|a, b| b.size.cmp(&a.size).then_with(|| a.path.cmp(&b.path)));
        let mut packed: Vec<(u64, Vec<LiveFile>)> = Vec::new();
        for file in small {
            match packed
                .iter_mut()
                .find(|(bytes, _)| bytes + file.size <= rules.target_file_size)
            {
                Some((bytes, members)) => {
                    *bytes += file.size;
                    members.push(file);
                }
                None => packed.push((file.size, vec![file])),
            }
        }
        for (_, files) in packed.into_iter().filter(|(_, f)| f.len() > 1) {
            let dir = files[0]
                .path
                .rsplit_once('/')
                .map_or(String::new(), |(dir, _)| dir.to_string());
            bins.push(Bin {
                partition: partition.clone(),
                dir,
                partition_values: files[0].partition_values.clone(),
                files,
            });
        }
    }
    bins
}

/// The bins grouped by hour (all apps of one hour), which compaction commits together:
/// fewer commits for readers to replay, one snapshot update per hour.
pub fn by_hour(bins: Vec<Bin>) -> Vec<Vec<Bin>> {
    let mut groups: BTreeMap<Vec<Option<String>>, Vec<Bin>> = BTreeMap::new();
    for bin in bins {
        let hour = ["year", "month", "day", "hour"]
            .iter()
            .map(|c| bin.partition_values.get(*c).cloned().flatten())
            .collect();
        groups.entry(hour).or_default().push(bin);
    }
    groups.into_values().collect()
}

/// True once the partition's hour ended more than `grace` ago. A partition without a
/// readable hour (a table lakeport did not lay out) is never compacted.
pub fn is_closed(
    values: &HashMap<String, Option<String>>,
    grace: Duration,
    now: DateTime<Utc>,
) -> bool {
    let Some(start) = partition_hour(values) else {
        return false;
    };
    let closes = start + chrono::Duration::hours(1);
    let grace = chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
    closes.checked_add_signed(grace).is_some_and(|at| at <= now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const MIB: u64 = 1 << 20;

    fn columns() -> Vec<String> {
        ["app_id", "year", "month", "day", "hour"]
            .map(String::from)
            .to_vec()
    }

    fn file(app: &str, hour: u32, name: &str, size: u64) -> LiveFile {
        let values = HashMap::from([
            ("app_id".to_string(), Some(app.to_string())),
            ("year".to_string(), Some("2026".to_string())),
            ("month".to_string(), Some("11".to_string())),
            ("day".to_string(), Some("30".to_string())),
            ("hour".to_string(), Some(format!("{hour:02}"))),
        ]);
        LiveFile {
            path: format!("app_id={app}/year=2026/month=11/day=30/hour={hour:02}/{name}"),
            size,
            partition_values: values,
            modification_time: 0,
            rows: None,
        }
    }

    fn rules(target: u64) -> CompactionRules {
        CompactionRules {
            target_file_size: target,
            grace_period: Duration::from_secs(600),
        }
    }

    fn at(hour: u32, minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 30, hour, minute, 0).unwrap()
    }

    #[test]
    fn a_partition_closes_a_grace_period_after_its_hour_ends() {
        let files = vec![file("web", 5, "a", MIB), file("web", 5, "b", MIB)];
        assert!(plan(files.clone(), &columns(), rules(256 * MIB), at(6, 9)).is_empty());
        let bins = plan(files, &columns(), rules(256 * MIB), at(6, 10));
        assert_eq!(bins.len(), 1);
        assert_eq!(bins[0].files.len(), 2);
        assert_eq!(bins[0].dir, "app_id=web/year=2026/month=11/day=30/hour=05");
        assert_eq!(
            bins[0].partition,
            "app_id=web/year=2026/month=11/day=30/hour=05"
        );
    }

    #[test]
    fn large_files_stay_and_a_lone_small_file_is_not_rewritten() {
        let files = vec![
            file("web", 1, "big", 300 * MIB),
            file("web", 1, "small", MIB),
            file("mob", 1, "x", 256 * MIB),
            file("mob", 1, "y", 2 * MIB),
        ];
        assert!(plan(files, &columns(), rules(256 * MIB), at(12, 0)).is_empty());
    }

    #[test]
    fn partitions_are_packed_apart_and_bins_stay_under_the_target() {
        let mut files: Vec<LiveFile> = (0..10)
            .map(|i| file("web", 2, &format!("w{i}"), 30 * MIB))
            .collect();
        files.extend((0..3).map(|i| file("web", 3, &format!("h{i}"), MIB)));
        files.extend((0..2).map(|i| file("mob", 2, &format!("m{i}"), MIB)));
        let bins = plan(files, &columns(), rules(100 * MIB), at(12, 0));
        let by_partition =
            |p: &str| -> Vec<&Bin> { bins.iter().filter(|b| b.partition.starts_with(p)).collect() };
        // 300 MiB in files of 30 MiB: three bins of three files, the tenth left alone.
        let web2 = by_partition("app_id=web/year=2026/month=11/day=30/hour=02");
        assert_eq!(web2.len(), 3);
        assert!(web2
            .iter()
            .all(|b| b.files.len() == 3 && b.bytes() <= 100 * MIB));
        assert_eq!(
            by_partition("app_id=web/year=2026/month=11/day=30/hour=03")[0]
                .files
                .len(),
            3
        );
        assert_eq!(by_partition("app_id=mob")[0].files.len(), 2);
        assert!(bins.iter().all(|b| b
            .files
            .iter()
            .all(|f| f.partition_values == b.partition_values)));
    }

    #[test]
    fn bins_of_one_hour_commit_together() {
        let files: Vec<LiveFile> = ["web", "mob", "ios"]
            .iter()
            .flat_map(|app| {
                (0..2).flat_map(move |i| {
                    [
                        file(app, 1, &format!("a{i}"), MIB),
                        file(app, 2, &format!("b{i}"), MIB),
                    ]
                })
            })
            .collect();
        let groups = by_hour(plan(files, &columns(), rules(256 * MIB), at(12, 0)));
        assert_eq!(groups.len(), 2);
        for group in &groups {
            assert_eq!(group.len(), 3);
            let hours: std::collections::HashSet<_> = group
                .iter()
                .map(|b| b.partition_values["hour"].clone())
                .collect();
            assert_eq!(hours.len(), 1);
        }
    }

    #[test]
    fn a_partition_without_an_hour_is_never_closed() {
        let mut values = file("web", 1, "a", MIB).partition_values;
        values.insert("hour".into(), None);
        assert!(!is_closed(&values, Duration::ZERO, at(23, 0)));
        values.remove("hour");
        assert!(!is_closed(&values, Duration::ZERO, at(23, 0)));
    }
}
