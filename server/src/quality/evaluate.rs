//! Evaluates one check on one tenant table with SQL through the query engine (as an admin
//! scoped to the tenant), and judges the answer: pass, warn or error, with evidence.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type, Int64Type};
use chrono::{DateTime, Utc};
use futures::TryStreamExt;

use super::{QualityResult, QualityState};
use crate::auth::Principal;
use crate::datasets::Dataset;
use crate::datasets::{Check, Freshness};
use crate::query::{QueryEngine, QueryError, Scope};

/// Sample keys kept as evidence per failing check.
const MAX_SAMPLES: usize = 5;

#[derive(Debug)]
pub(super) struct Evaluator {
    pub(super) engine: Arc<QueryEngine>,
}

/// What the SQL found for one check.
struct Finding {
    state: QualityState,
    failing: u64,
    samples: Vec<String>,
    detail: String,
}

impl Evaluator {
    pub(super) async fn evaluate(
        &self,
        tenant: &str,
        dataset: &Dataset,
        check: &Check,
        sample_key: &str,
        now: DateTime<Utc>,
    ) -> QualityResult {
        let finding = match self.find(tenant, dataset, check, sample_key, now).await {
            Ok(finding) => finding,
            Err(e) => Finding {
                state: QualityState::Error,
                failing: 0,
                samples: Vec::new(),
                detail: format!("could not be evaluated: {e}"),
            },
        };
        QualityResult {
            tenant: tenant.to_string(),
            dataset: dataset.name.clone(),
            expectation: check.name(),
            column: check.column().map(str::to_string),
            state: finding.state,
            failing: finding.failing,
            samples: finding.samples,
            detail: finding.detail,
            checked_at: now,
        }
    }

    async fn find(
        &self,
        tenant: &str,
        dataset: &Dataset,
        check: &Check,
        sample_key: &str,
        now: DateTime<Utc>,
    ) -> Result<Finding, QueryError> {
        let table = ident(&dataset.name);
        let time = ident(&dataset.time_column);
        match check {
            Check::Freshness(freshness) => {
                let sql = format!("SELECT date_part('epoch', max({time})) FROM {table}");
                let newest = self.float(tenant, &sql).await?;
                Ok(judge_freshness(freshness, newest, now))
            }
            Check::NotNull(column) => {
                let filter = format!("{} IS NULL", ident(column));
                let key = ident(sample_key);
                let (failing, samples) = self
                    .failing(
                        tenant,
                        &format!("SELECT count(*) FROM {table} WHERE {filter}"),
                        &format!("SELECT CAST({key} AS VARCHAR) FROM {table} WHERE {filter} LIMIT {MAX_SAMPLES}"),
                    )
                    .await?;
                Ok(failed_rows(failing, samples, "rows are null"))
            }
            Check::Unique { column, window } => {
                let c = ident(column);
                let (filter, group, scope) = match window {
                    None => (
                        format!("{c} IS NOT NULL"),
                        format!("date_trunc('day', {time}), {c}"),
                        "within a day".to_string(),
                    ),
                    Some(window) => (
                        format!(
                            "{c} IS NOT NULL AND date_part('epoch', {time}) >= {}",
                            now.timestamp() - window.as_secs() as i64
                        ),
                        c.clone(),
                        format!("within the last {}", humantime::format_duration(*window)),
                    ),
                };
                let groups = format!("SELECT CAST({c} AS VARCHAR) AS k, count(*) AS n FROM {table} WHERE {filter} GROUP BY {group} HAVING count(*) > 1");
                let (failing, samples) = self
                    .failing(
                        tenant,
                        &format!("SELECT count(*) FROM ({groups})"),
                        &format!("SELECT k FROM ({groups}) ORDER BY n DESC, k LIMIT {MAX_SAMPLES}"),
                    )
                    .await?;
                Ok(failed_rows(
                    failing,
                    samples,
                    &format!("values repeat {scope}"),
                ))
            }
            Check::AcceptedValues { column, values } => {
                let c = ident(column);
                let list = values
                    .iter()
                    .map(|v| literal(v))
                    .collect::<Vec<_>>()
                    .join(", ");
                let filter = format!("{c} IS NOT NULL AND CAST({c} AS VARCHAR) NOT IN ({list})");
                let (failing, samples) = self
                    .failing(
                        tenant,
                        &format!("SELECT count(*) FROM {table} WHERE {filter}"),
                        &format!("SELECT v FROM (SELECT CAST({c} AS VARCHAR) AS v, count(*) AS n FROM {table} WHERE {filter} GROUP BY 1) ORDER BY n DESC, v LIMIT {MAX_SAMPLES}"),
                    )
                    .await?;
                Ok(failed_rows(
                    failing,
                    samples,
                    "rows hold a value not accepted",
                ))
            }
        }
    }

    /// How many fail (`count_sql`) and, when any do, the sample keys (`samples_sql`).
    async fn failing(
        &self,
        tenant: &str,
        count_sql: &str,
        samples_sql: &str,
    ) -> Result<(u64, Vec<String>), QueryError> {
        let failing = self.count(tenant, count_sql).await?;
        let samples = if failing > 0 {
            self.strings(tenant, samples_sql).await?
        } else {
            Vec::new()
        };
        Ok((failing, samples))
    }

    async fn query(&self, tenant: &str, sql: &str) -> Result<Vec<RecordBatch>, QueryError> {
        let scope = Scope::new(Principal::Admin, Some(tenant))?;
        let planned = self.engine.plan(&scope, sql, &[]).await?;
        let stream = self.engine.execute(&scope, planned).await?;
        stream.try_collect().await.map_err(|e| self.engine.error(e))
    }

    /// The first column of every row, as text.
    async fn strings(&self, tenant: &str, sql: &str) -> Result<Vec<String>, QueryError> {
        let mut out = Vec::new();
        for batch in self.query(tenant, sql).await? {
            let column = cast(batch.column(0), &DataType::Utf8).map_err(arrow_error)?;
            let column = column.as_string::<i32>();
            out.extend((0..column.len()).map(|i| {
                if column.is_null(i) {
                    "NULL".to_string()
                } else {
                    column.value(i).to_string()
                }
            }));
        }
        Ok(out)
    }

    async fn count(&self, tenant: &str, sql: &str) -> Result<u64, QueryError> {
        let batches = self.query(tenant, sql).await?;
        let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) else {
            return Ok(0);
        };
        let column = cast(batch.column(0), &DataType::Int64).map_err(arrow_error)?;
        Ok(column.as_primitive::<Int64Type>().value(0).max(0) as u64)
    }

    async fn float(&self, tenant: &str, sql: &str) -> Result<Option<f64>, QueryError> {
        let batches = self.query(tenant, sql).await?;
        let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) else {
            return Ok(None);
        };
        let column = cast(batch.column(0), &DataType::Float64).map_err(arrow_error)?;
        let column = column.as_primitive::<Float64Type>();
        Ok((!column.is_null(0)).then(|| column.value(0)))
    }
}

fn failed_rows(failing: u64, samples: Vec<String>, what: &str) -> Finding {
    Finding {
        state: if failing == 0 {
            QualityState::Pass
        } else {
            QualityState::Error
        },
        failing,
        detail: if failing == 0 {
            String::new()
        } else {
            format!("{failing} {what}")
        },
        samples,
    }
}

/// Judges the newest event time against the thresholds; an empty table is an error, as
/// in dbt (there is nothing fresh).
fn judge_freshness(freshness: &Freshness, newest: Option<f64>, now: DateTime<Utc>) -> Finding {
    let Some(newest) = newest else {
        return Finding {
            state: QualityState::Error,
            failing: 0,
            samples: Vec::new(),
            detail: "the table has no rows with an event time".into(),
        };
    };
    let newest_ms = (newest * 1000.0) as i64;
    let age = Duration::from_millis((now.timestamp_millis() - newest_ms).max(0) as u64);
    let over = |limit: Option<Duration>| limit.is_some_and(|l| age > l);
    let state = if over(freshness.error_after) {
        QualityState::Error
    } else if over(freshness.warn_after) {
        QualityState::Warn
    } else {
        QualityState::Pass
    };
    let newest = DateTime::<Utc>::from_timestamp_millis(newest_ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default();
    let age_text = humantime::format_duration(Duration::from_secs(age.as_secs()));
    Finding {
        state,
        failing: 0,
        detail: format!("newest event {newest} is {age_text} old"),
        samples: vec![newest],
    }
}

/// A SQL identifier, quoted (case and odd characters kept).
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

fn arrow_error(e: arrow::error::ArrowError) -> QueryError {
    QueryError::Execution(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn freshness(warn: u64, error: u64) -> Freshness {
        Freshness {
            warn_after: Some(Duration::from_secs(warn * 3600)),
            error_after: Some(Duration::from_secs(error * 3600)),
        }
    }

    #[test]
    fn freshness_passes_warns_and_errors_by_age() {
        let now = DateTime::parse_from_rfc3339("2026-12-02T12:00:00Z")
            .unwrap()
            .to_utc();
        let hours_ago = |h: i64| Some((now.timestamp() - h * 3600) as f64);
        let f = freshness(2, 6);
        assert_eq!(
            judge_freshness(&f, hours_ago(1), now).state,
            QualityState::Pass
        );
        assert_eq!(
            judge_freshness(&f, hours_ago(3), now).state,
            QualityState::Warn
        );
        let late = judge_freshness(&f, hours_ago(7), now);
        assert_eq!(late.state, QualityState::Error);
        assert_eq!(late.samples, vec!["2026-12-02T05:00:00Z".to_string()]);
        assert_eq!(judge_freshness(&f, None, now).state, QualityState::Error);
    }

    #[test]
    fn identifiers_and_literals_are_quoted() {
        assert_eq!(ident(r#"we"ird"#), r#""we""ird""#);
        assert_eq!(literal("o'k"), "'o''k'");
    }
}
