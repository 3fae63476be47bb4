//! Retention at query time: a table's scan gets a filter on its hour partition columns that
//! keeps only the hours its retention keeps. It is a partition-only filter, so delta-rs
//! applies it exactly by skipping the files of expired hours (it reads none of them), and
//! it holds from the moment an hour expires, before maintenance removes the files.

use std::sync::Arc;

use chrono::{DateTime, Datelike, Timelike, Utc};
use datafusion::logical_expr::{col, lit, Expr};

use crate::clock::Clock;
use crate::lake::{Cutoff, RetentionPolicy};

/// The tables' retentions and the clock they are judged by.
#[derive(Debug, Clone)]
pub struct QueryRetention {
    pub policy: Arc<dyn RetentionPolicy>,
    pub clock: Arc<dyn Clock>,
}

impl QueryRetention {
    /// The cutoff of `tenant`'s `dataset` now; `None` when it keeps everything.
    pub fn cutoff(&self, tenant: &str, dataset: &str) -> Option<Cutoff> {
        Cutoff::at(self.policy.retention(tenant, dataset), self.clock.now())
    }

    /// The filter that keeps the hours of `tenant`'s `dataset` its retention keeps now.
    pub fn filter(&self, tenant: &str, dataset: &str) -> Option<Expr> {
        self.cutoff(tenant, dataset)
            .map(|cutoff| kept_hours(cutoff.first_kept()))
    }
}

/// `(year, month, day, hour) >= first`, spelled out column by column: the values are
/// zero-padded text, so each compares as its number does, and every term names a partition
/// column alone (what delta-rs can prune files by).
fn kept_hours(first: DateTime<Utc>) -> Expr {
    let parts = [
        ("year", format!("{:04}", first.year())),
        ("month", format!("{:02}", first.month())),
        ("day", format!("{:02}", first.day())),
        ("hour", format!("{:02}", first.hour())),
    ];
    let (last_column, last_value) = &parts[3];
    let mut filter = col(*last_column).gt_eq(lit(last_value.clone()));
    for (column, value) in parts[..3].iter().rev() {
        filter = col(*column)
            .gt(lit(value.clone()))
            .or(col(*column).eq(lit(value.clone())).and(filter));
    }
    filter
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_filter_compares_each_partition_column_in_turn() {
        let filter = kept_hours(Utc.with_ymd_and_hms(2026, 3, 9, 7, 0, 0).unwrap());
        assert_eq!(
            filter.to_string(),
            "year > Utf8(\"2026\") OR year = Utf8(\"2026\") AND (month > Utf8(\"03\") OR month = Utf8(\"03\") AND (day > Utf8(\"09\") OR day = Utf8(\"09\") AND hour >= Utf8(\"07\")))"
        );
    }
}
