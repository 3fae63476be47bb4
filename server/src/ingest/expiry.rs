//! Rows of an hour past the table's retention are not written (nor kept as dead letters):
//! the parts of a batch are split into what the retention keeps and a count of the rest.

use std::time::Duration;

use arrow::array::RecordBatch;
use chrono::{DateTime, Utc};

use crate::lake::{Cutoff, PartitionKey};

/// Rows dropped because their hour had expired, and why, for the ack.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Expired {
    pub(super) rows: u64,
    pub(super) reason: String,
}

/// The parts `retention` keeps at `now`, and the rows of the others (`None`: none).
pub(super) fn keep_retained(
    parts: Vec<(PartitionKey, RecordBatch)>,
    retention: Option<Duration>,
    now: DateTime<Utc>,
    time_column: &str,
) -> (Vec<(PartitionKey, RecordBatch)>, Option<Expired>) {
    let Some(cutoff) = Cutoff::at(retention, now) else {
        return (parts, None);
    };
    let (kept, expired): (Vec<_>, Vec<_>) = parts
        .into_iter()
        .partition(|(key, _)| !cutoff.expires_hour(key.hour));
    let rows: usize = expired.iter().map(|(_, b)| b.num_rows()).sum();
    let expired = (rows > 0).then(|| Expired {
        rows: rows as u64,
        reason: format!(
            "rows with {time_column} before {} are past the table's retention of {} and were not written",
            cutoff.first_kept().format("%Y-%m-%dT%H:%MZ"),
            humantime::format_duration(retention.unwrap_or_default())
        ),
    });
    (kept, expired)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::Int64Array;
    use chrono::TimeZone;

    use super::*;

    fn part(hour: i64, rows: usize) -> (PartitionKey, RecordBatch) {
        let column = Arc::new(Int64Array::from(vec![0; rows]));
        let batch = RecordBatch::try_from_iter([("x", column as _)]).unwrap();
        (PartitionKey { app: None, hour }, batch)
    }

    #[test]
    fn parts_of_expired_hours_are_counted_and_dropped() {
        let now = Utc.with_ymd_and_hms(1970, 1, 3, 0, 30, 0).unwrap(); // hour 48
        let day = Some(Duration::from_secs(86_400));
        let (kept, expired) = keep_retained(vec![part(23, 4), part(24, 2)], day, now, "ts");
        assert_eq!(kept.iter().map(|(k, _)| k.hour).collect::<Vec<_>>(), [24]);
        let expired = expired.unwrap();
        assert_eq!(expired.rows, 4);
        assert!(
            expired.reason.contains("ts before 1970-01-02T00:00Z"),
            "{}",
            expired.reason
        );
        assert!(
            expired.reason.contains("retention of 1day"),
            "{}",
            expired.reason
        );

        let (kept, expired) = keep_retained(vec![part(0, 1)], None, now, "ts");
        assert_eq!((kept.len(), expired), (1, None));
    }
}
