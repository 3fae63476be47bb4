//! Data-quality expectations (dbt-style tests) per dataset: evaluated on a schedule and on
//! demand (`quality.run`, `lakeport quality`), the latest result of each kept for
//! `system.quality`.

mod evaluate;
mod system_table;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use crate::datasets::{Check, Expectations, Freshness};
pub use system_table::QualityTable;

use crate::clock::Clock;
use crate::lake::{LakeError, LakeTables};
use crate::query::QueryEngine;
use crate::tenants::Tenants;
use evaluate::Evaluator;

#[derive(Debug, thiserror::Error)]
pub enum QualityError {
    #[error("tenant {0:?} has no tables; nothing to check")]
    UnknownTenant(String),
    #[error(transparent)]
    Lake(#[from] LakeError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum QualityState {
    Pass,
    Warn,
    Error,
}

impl QualityState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Warn => "warn",
            Self::Error => "error",
        }
    }
}

/// One expectation's latest evaluation on one tenant table.
#[derive(Debug, Clone, PartialEq)]
pub struct QualityResult {
    pub tenant: String,
    pub dataset: String,
    pub expectation: &'static str,
    pub column: Option<String>,
    pub state: QualityState,
    /// Rows (not_null, accepted_values) or repeated keys (unique) that fail.
    pub failing: u64,
    /// Up to five keys of failing rows, repeated values, unexpected values, or the newest
    /// event time (freshness).
    pub samples: Vec<String>,
    pub detail: String,
    pub checked_at: DateTime<Utc>,
}

/// The latest results per table, for `system.quality`.
#[derive(Debug, Default)]
pub struct QualityLog {
    results: Mutex<BTreeMap<(String, String), Vec<QualityResult>>>,
}

impl QualityLog {
    fn record(&self, tenant: &str, dataset: &str, results: Vec<QualityResult>) {
        let mut all = self.results.lock().unwrap_or_else(|p| p.into_inner());
        all.insert((tenant.to_string(), dataset.to_string()), results);
    }

    pub fn of_tenants(&self, tenants: &[String]) -> Vec<QualityResult> {
        let all = self.results.lock().unwrap_or_else(|p| p.into_inner());
        all.iter()
            .filter(|((tenant, _), _)| tenants.contains(tenant))
            .flat_map(|(_, results)| results.iter().cloned())
            .collect()
    }
}

#[derive(Debug)]
pub struct Quality {
    evaluator: Evaluator,
    tables: Arc<LakeTables>,
    tenants: Arc<Tenants>,
    log: Arc<QualityLog>,
    /// Dataset name → its expectations (datasets without any are absent).
    expectations: BTreeMap<String, Expectations>,
    clock: Arc<dyn Clock>,
    /// One evaluation at a time (a scheduled one and `lakeport quality` queue up).
    running: tokio::sync::Mutex<()>,
}

impl Quality {
    pub fn new(
        engine: Arc<QueryEngine>,
        tables: Arc<LakeTables>,
        tenants: Arc<Tenants>,
        expectations: BTreeMap<String, Expectations>,
        log: Arc<QualityLog>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            evaluator: Evaluator { engine },
            tables,
            tenants,
            log,
            expectations: expectations
                .into_iter()
                .filter(|(_, e)| !e.is_empty())
                .collect(),
            clock,
            running: tokio::sync::Mutex::new(()),
        }
    }

    /// Evaluates every expectation on every table of `tenant` (or of every tenant) that
    /// exists, records the results, and returns them.
    pub async fn run(&self, tenant: Option<&str>) -> Result<Vec<QualityResult>, QualityError> {
        let tenants = self.tables.tenants().await?;
        let tenants: Vec<String> = match tenant {
            Some(one) if tenants.iter().any(|t| t == one) => vec![one.to_string()],
            Some(one) if self.tenants.is_known(one) => Vec::new(),
            Some(one) => return Err(QualityError::UnknownTenant(one.to_string())),
            None => tenants,
        };
        let _turn = self.running.lock().await;
        let mut all = Vec::new();
        for tenant in &tenants {
            for (name, expectations) in self.expectations_of(tenant) {
                let Some(dataset) = self.tables.dataset(&name) else {
                    continue;
                };
                if self.tables.load(tenant, &dataset, None).await?.is_none() {
                    continue;
                }
                let now = self.clock.now();
                let mut results = Vec::new();
                for check in expectations.checks() {
                    let key = sample_key(&expectations, &check, &dataset.time_column);
                    results.push(
                        self.evaluator
                            .evaluate(tenant, &dataset, &check, key, now)
                            .await,
                    );
                }
                self.log.record(tenant, &dataset.name, results.clone());
                all.extend(results);
            }
        }
        let failed = all
            .iter()
            .filter(|r| r.state == QualityState::Error)
            .count();
        let warned = all.iter().filter(|r| r.state == QualityState::Warn).count();
        info!(
            checks = all.len(),
            failed, warned, "quality expectations evaluated"
        );
        Ok(all)
    }

    /// The config's expectations per dataset, each replaced by the tenant's own where its
    /// settings name that dataset.
    fn expectations_of(&self, tenant: &str) -> BTreeMap<String, Expectations> {
        let mut all = self.expectations.clone();
        let own = self
            .tenants
            .view(tenant)
            .and_then(|view| view.settings.quality);
        for (dataset, expectations) in own.into_iter().flatten() {
            all.insert(dataset, expectations);
        }
        all.retain(|_, e| !e.is_empty());
        all
    }

    /// Evaluates everything at once and then every `every`, until `shutdown` (tenants may
    /// add expectations later, so the schedule runs even when the config declares none).
    pub fn spawn_schedule(self: &Arc<Self>, every: Duration, shutdown: CancellationToken) {
        if every.is_zero() {
            return;
        }
        let quality = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tick.tick() => {}
                }
                if let Err(e) = quality.run(None).await {
                    warn!(error = %e, "scheduled quality evaluation failed; retrying next interval");
                }
            }
        });
    }
}

/// The column whose value names a failing row: the first unique key other than the column
/// checked (an id, usually), else the event time.
fn sample_key<'a>(expectations: &'a Expectations, check: &Check, time_column: &'a str) -> &'a str {
    expectations
        .unique
        .iter()
        .find(|c| Some(c.as_str()) != check.column())
        .map_or(time_column, String::as_str)
}
