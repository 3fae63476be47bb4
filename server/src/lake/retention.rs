//! How long a table's rows are kept, and which hour partitions that leaves. Ingest refuses
//! rows of expired hours, queries never read them, and maintenance removes them; all three
//! judge by the same rule: an hour partition is expired once its whole hour is older than
//! the retention, by the server's clock.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};

use super::MICROS_PER_HOUR;

/// Written in settings for "keep forever", over a retention set in a layer below.
pub const FOREVER: &str = "forever";

/// How long each tenant's tables keep their rows; the wiring hands one in, so the layers
/// that act on retention need no knowledge of where it is set.
pub trait RetentionPolicy: Send + Sync + std::fmt::Debug {
    /// How long `tenant`'s `dataset` keeps its rows; `None` keeps them forever.
    fn retention(&self, tenant: &str, dataset: &str) -> Option<Duration>;
}

/// Keeps everything (tests, tools).
#[derive(Debug, Default)]
pub struct KeepForever;

impl RetentionPolicy for KeepForever {
    fn retention(&self, _tenant: &str, _dataset: &str) -> Option<Duration> {
        None
    }
}

/// Parses a retention as written in settings: a duration (`400d`, `36h`) or `forever`.
pub fn parse_retention(text: &str) -> Result<Option<Duration>, String> {
    if text.trim() == FOREVER {
        return Ok(None);
    }
    let duration = humantime::parse_duration(text.trim()).map_err(|e| {
        format!("retention {text:?} is not a duration (like 400d) or {FOREVER:?}: {e}")
    })?;
    if duration < Duration::from_secs(3600) {
        return Err(format!(
            "retention {text:?} is shorter than the one-hour partitions it is judged by; give at least 1h"
        ));
    }
    Ok(Some(duration))
}

/// The first hour a table with this retention keeps at `now`: hours before it are expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cutoff {
    /// Hours since the Unix epoch, UTC.
    pub first_kept_hour: i64,
}

impl Cutoff {
    /// `None` when nothing expires. An hour is expired once it ended at least `retention`
    /// ago, so the first kept hour is the one `now - retention` falls in.
    pub fn at(retention: Option<Duration>, now: DateTime<Utc>) -> Option<Self> {
        let retention = chrono::Duration::from_std(retention?).ok()?;
        let edge = now.checked_sub_signed(retention)?;
        Some(Self {
            first_kept_hour: edge.timestamp_micros().div_euclid(MICROS_PER_HOUR),
        })
    }

    pub fn first_kept(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.first_kept_hour * MICROS_PER_HOUR).unwrap_or_default()
    }

    /// True for an hour (since the epoch) this cutoff expires.
    pub fn expires_hour(&self, hour: i64) -> bool {
        hour < self.first_kept_hour
    }

    /// True for a partition whose `year`/`month`/`day`/`hour` values this cutoff expires;
    /// a partition without a readable hour is never expired.
    pub fn expires(&self, values: &HashMap<String, Option<String>>) -> bool {
        partition_hour(values).is_some_and(|start| self.expires_hour(hour_index(start)))
    }

    /// True for a data file path under an hour partition this cutoff expires.
    pub fn expires_path(&self, path: &str) -> bool {
        self.expires(&values_in_path(path))
    }
}

/// The `col=value` segments of a partition name or a data file's path.
pub fn values_in_path(path: &str) -> HashMap<String, Option<String>> {
    path.split('/')
        .filter_map(|segment| segment.split_once('='))
        .map(|(k, v)| (k.to_string(), Some(v.to_string())))
        .collect()
}

/// When a partition of hour `start` expires under `retention` (`None`: never).
pub fn expires_at(start: DateTime<Utc>, retention: Option<Duration>) -> Option<DateTime<Utc>> {
    let retention = chrono::Duration::from_std(retention?).ok()?;
    (start + chrono::Duration::hours(1)).checked_add_signed(retention)
}

/// The start of a partition's hour from its `year`/`month`/`day`/`hour` values.
pub fn partition_hour(values: &HashMap<String, Option<String>>) -> Option<DateTime<Utc>> {
    let number = |c: &str| -> Option<u32> { values.get(c)?.as_deref()?.parse().ok() };
    let year = i32::try_from(number("year")?).ok()?;
    NaiveDate::from_ymd_opt(year, number("month")?, number("day")?)?
        .and_hms_opt(number("hour")?, 0, 0)
        .map(|t| t.and_utc())
}

fn hour_index(start: DateTime<Utc>) -> i64 {
    start.timestamp_micros().div_euclid(MICROS_PER_HOUR)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }

    fn hour(t: DateTime<Utc>) -> HashMap<String, Option<String>> {
        let key = crate::lake::PartitionKey {
            app: None,
            hour: hour_index(t),
        };
        key.values()
    }

    #[test]
    fn an_hour_expires_once_all_of_it_is_older_than_the_retention() {
        let day = Some(Duration::from_secs(24 * 3600));
        let cutoff = Cutoff::at(day, at(2026, 3, 10, 12, 30)).unwrap();
        assert_eq!(cutoff.first_kept(), at(2026, 3, 9, 12, 0));
        // 11:00–12:00 ended 24h30m ago: gone. 12:00–13:00 still holds rows younger than 24h.
        assert!(cutoff.expires(&hour(at(2026, 3, 9, 11, 0))));
        assert!(!cutoff.expires(&hour(at(2026, 3, 9, 12, 0))));
        assert!(!cutoff.expires(&hour(at(2026, 3, 10, 12, 0))));
        assert_eq!(
            expires_at(at(2026, 3, 9, 12, 0), day),
            Some(at(2026, 3, 10, 13, 0))
        );
    }

    #[test]
    fn forever_and_unreadable_partitions_never_expire() {
        assert_eq!(Cutoff::at(None, Utc::now()), None);
        let cutoff = Cutoff::at(Some(Duration::from_secs(3600)), Utc::now()).unwrap();
        assert!(!cutoff.expires(&HashMap::new()));
        assert!(cutoff.expires_path("app_id=web/year=2001/month=02/day=03/hour=04/data_x.parquet"));
        assert!(!cutoff.expires_path("data_x.parquet"));
    }

    #[test]
    fn retention_is_a_duration_of_an_hour_or_more_or_forever() {
        assert_eq!(
            parse_retention("400d").unwrap(),
            Some(Duration::from_secs(400 * 86400))
        );
        assert_eq!(parse_retention("forever").unwrap(), None);
        assert!(parse_retention("sometimes").unwrap_err().contains("400d"));
        assert!(parse_retention("10m").unwrap_err().contains("1h"));
    }
}
