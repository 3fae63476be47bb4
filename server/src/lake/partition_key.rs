//! One Hive partition of a table (`app_id=…/year=YYYY/month=MM/day=DD/hour=HH`, UTC): the
//! lake names files and their Delta `partitionValues` by it; ingest computes it per row.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, Timelike, Utc};

use crate::datasets::APP_PARTITION_COLUMN;

pub const MICROS_PER_HOUR: i64 = 3_600_000_000;
/// Hive's name for the partition of null values.
pub const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// One Hive partition of a table.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitionKey {
    /// `None` when the dataset has no app column; `Some(None)` for a null app id.
    pub app: Option<Option<String>>,
    /// Hours since the Unix epoch, UTC.
    pub hour: i64,
}

impl PartitionKey {
    pub fn hour_start(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.hour * MICROS_PER_HOUR).unwrap_or_default()
    }

    /// Delta `partitionValues`.
    pub fn values(&self) -> HashMap<String, Option<String>> {
        let t = self.hour_start();
        let mut values = HashMap::new();
        if let Some(app) = &self.app {
            values.insert(APP_PARTITION_COLUMN.to_string(), app.clone());
        }
        values.insert("year".into(), Some(format!("{:04}", t.year())));
        values.insert("month".into(), Some(format!("{:02}", t.month())));
        values.insert("day".into(), Some(format!("{:02}", t.day())));
        values.insert("hour".into(), Some(format!("{:02}", t.hour())));
        values
    }

    /// Directory of the partition relative to the table root, Hive-escaped.
    pub fn path(&self) -> String {
        let t = self.hour_start();
        let time = format!(
            "year={:04}/month={:02}/day={:02}/hour={:02}",
            t.year(),
            t.month(),
            t.day(),
            t.hour()
        );
        match &self.app {
            None => time,
            Some(None) => format!("{APP_PARTITION_COLUMN}={NULL_PARTITION}/{time}"),
            Some(Some(app)) => format!("{APP_PARTITION_COLUMN}={}/{time}", escape_path_value(app)),
        }
    }
}

/// Escapes a partition value the way Hive and Spark do, so it is one path segment.
pub fn escape_path_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        let needs = c.is_control()
            || matches!(
                c,
                '"' | '#'
                    | '%'
                    | '\''
                    | '*'
                    | '/'
                    | ':'
                    | '='
                    | '?'
                    | '\\'
                    | '\x7f'
                    | '{'
                    | '['
                    | ']'
                    | '^'
            );
        if needs {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    if out.is_empty() {
        return NULL_PARTITION.to_string();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_zero_padded_and_escaped() {
        let key = PartitionKey {
            app: Some(Some("web/shop".into())),
            hour: 473_352 + 5, // 2024-01-01T05:00Z
        };
        assert_eq!(
            key.path(),
            "app_id=web%2Fshop/year=2024/month=01/day=01/hour=05"
        );
        assert_eq!(key.values()["month"].as_deref(), Some("01"));
        let no_app = PartitionKey { app: None, hour: 0 };
        assert_eq!(no_app.path(), "year=1970/month=01/day=01/hour=00");
        let null_app = PartitionKey {
            app: Some(None),
            hour: 0,
        };
        assert!(null_app
            .path()
            .starts_with("app_id=__HIVE_DEFAULT_PARTITION__/"));
        assert_eq!(null_app.values()["app_id"], None);
    }
}
