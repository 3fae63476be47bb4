//! Usage against quota: whether a tenant may write now (refused at the hard quota before
//! any file is written, warned at the soft one), its rate limiter, and the usage report
//! behind `quota.report` and `system.tenants`.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use super::metrics;
use super::rate::RateLimiter;
use super::{TenantSettings, TenantState, TenantView, Tenants, TenantsError};
use crate::auth::Principal;
use crate::lake::{LakeError, TableUsage};
use crate::names::check_name;

/// Longest a write waits for the first usage listing after a start.
const FIRST_LISTING_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaState {
    Ok,
    SoftExceeded,
    HardExceeded,
}

impl QuotaState {
    pub fn of(usage: i64, settings: &TenantSettings) -> Self {
        let reached = |limit: Option<u64>| limit.is_some_and(|l| usage >= l as i64);
        if reached(settings.quota_hard) {
            Self::HardExceeded
        } else if reached(settings.quota_soft) {
            Self::SoftExceeded
        } else {
            Self::Ok
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::SoftExceeded => "soft_exceeded",
            Self::HardExceeded => "hard_exceeded",
        }
    }
}

/// What a write may go ahead with.
#[derive(Debug, Default)]
pub struct WriteAdmission {
    /// The tenant's ingest rate, when it has one.
    pub limiter: Option<Arc<RateLimiter>>,
}

/// One tenant's usage and limits.
#[derive(Debug, Clone)]
pub struct TenantReport {
    pub tenant: String,
    pub display_name: Option<String>,
    pub region: Option<String>,
    /// `active`, `suspended`, `archiving`, `archived`, `restoring`, `deleting`, or
    /// `unregistered` (data in a store, no registry record).
    pub state: &'static str,
    pub usage_bytes: i64,
    pub soft: Option<u64>,
    pub hard: Option<u64>,
    pub quota_state: QuotaState,
    pub rows: Option<i64>,
    pub last_write: Option<DateTime<Utc>>,
    pub last_query: Option<DateTime<Utc>>,
    /// Sum of the tables' drift at their last listing.
    pub drift_bytes: Option<i64>,
    pub reconciled_at: Option<DateTime<Utc>>,
    pub datasets: Vec<(String, TableUsage)>,
    /// Its archive, or the archive or restore under way.
    pub archive: Option<super::archive_record::ArchiveRecord>,
}

impl Tenants {
    /// Whether `principal` may write to `tenant` now. An admin's write to an unknown
    /// tenant creates it when `auto_provision` is on; a tenant token never creates anything.
    pub async fn admit_write(
        self: &Arc<Self>,
        principal: &Principal,
        tenant: &str,
    ) -> Result<WriteAdmission, TenantsError> {
        check_name("tenant", tenant).map_err(|e| TenantsError::Invalid(e.to_string()))?;
        let view = match self.view(tenant) {
            Some(view) => view,
            None => self.provision(principal, tenant).await?,
        };
        if let Some(reason) = self
            .unusable
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(tenant)
        {
            return Err(TenantsError::Unusable {
                tenant: tenant.to_string(),
                reason: reason.clone(),
            });
        }
        match view.settings.state {
            Some(TenantState::Suspended) => {
                return Err(TenantsError::Suspended(tenant.to_string()))
            }
            Some(TenantState::Deleting) => {
                return Err(LakeError::TenantDeleting(tenant.to_string()).into())
            }
            Some(TenantState::Active) | None => {}
        }
        self.record_write(tenant);
        self.wake(tenant).await?;
        // Right after a start the counts hold only this server's writes until the first
        // listing ends; wait for it a while, then go by what is counted so far rather than
        // hold every write back behind a slow listing of a large store.
        let _ = tokio::time::timeout(FIRST_LISTING_WAIT, self.usage_listed()).await;
        let usage = self.lake.usage().tenant_bytes(tenant);
        let state = QuotaState::of(usage, &view.settings);
        self.note_soft_quota(tenant, state, usage, &view.settings);
        if state == QuotaState::HardExceeded {
            metrics::write_refused(tenant);
            return Err(TenantsError::OverQuota {
                tenant: tenant.to_string(),
                usage: bytesize::ByteSize(usage.max(0) as u64),
                hard: bytesize::ByteSize(view.settings.quota_hard.unwrap_or(0)),
            });
        }
        Ok(WriteAdmission {
            limiter: self.limiter(tenant, &view.settings),
        })
    }

    async fn provision(
        &self,
        principal: &Principal,
        tenant: &str,
    ) -> Result<TenantView, TenantsError> {
        if *principal != Principal::Admin || !self.config.auto_provision {
            return Err(TenantsError::Unknown(tenant.to_string()));
        }
        match self.create(tenant, TenantSettings::default()).await {
            Ok(view) => {
                info!(tenant, "tenant auto-provisioned on its first write");
                Ok(view)
            }
            // Another replica provisioned it first.
            Err(TenantsError::Exists(_)) => {
                self.refresh().await?;
                self.view(tenant)
                    .ok_or_else(|| TenantsError::Unknown(tenant.to_string()))
            }
            Err(e) => Err(e),
        }
    }

    /// Logs once each time a tenant crosses its soft quota.
    fn note_soft_quota(&self, tenant: &str, state: QuotaState, usage: i64, s: &TenantSettings) {
        let mut warned = self.soft_warned.lock().unwrap_or_else(|p| p.into_inner());
        if state == QuotaState::Ok {
            warned.remove(tenant);
        } else if warned.insert(tenant.to_string()) {
            warn!(
                tenant,
                usage_bytes = usage,
                soft_bytes = s.quota_soft,
                hard_bytes = s.quota_hard,
                "tenant is over its soft storage quota"
            );
        }
    }

    fn limiter(&self, tenant: &str, settings: &TenantSettings) -> Option<Arc<RateLimiter>> {
        let rate = settings.rows_per_second?;
        let mut limiters = self.limiters.lock().unwrap_or_else(|p| p.into_inner());
        Some(
            limiters
                .entry(tenant.to_string())
                .or_insert_with(|| Arc::new(RateLimiter::new(rate, settings.burst_rows)))
                .clone(),
        )
    }

    /// The tenant's last write and last query this server knows of.
    pub fn activity(&self, tenant: &str) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
        let activity = self.activity_of(tenant);
        (activity.last_write, activity.last_query)
    }

    /// Usage and limits of `only` (or of every tenant: registered ones and any with data
    /// in a store), after the first usage listing.
    pub async fn report(&self, only: Option<&str>) -> Vec<TenantReport> {
        self.usage_listed().await;
        let mut reports = self.report_now();
        reports.retain(|r| only.is_none_or(|o| o == r.tenant));
        reports
    }

    /// Every tenant's usage and limits as counted now (before the first listing, what
    /// this server wrote since its start).
    pub(super) fn report_now(&self) -> Vec<TenantReport> {
        let usage = self.lake.usage().all();
        let mut by_tenant: BTreeMap<String, Vec<(String, TableUsage)>> = BTreeMap::new();
        for ((tenant, dataset), u) in usage {
            by_tenant.entry(tenant).or_default().push((dataset, u));
        }
        let views: BTreeMap<String, TenantView> = self
            .views()
            .into_iter()
            .map(|v| (v.record.id.clone(), v))
            .collect();
        let mut ids: Vec<String> = views.keys().chain(by_tenant.keys()).cloned().collect();
        ids.sort();
        ids.dedup();
        ids.into_iter()
            .map(|id| {
                let datasets = by_tenant.remove(&id).unwrap_or_default();
                let view = views.get(&id);
                self.report_of(id.clone(), view, datasets)
            })
            .collect()
    }

    fn report_of(
        &self,
        tenant: String,
        view: Option<&TenantView>,
        datasets: Vec<(String, TableUsage)>,
    ) -> TenantReport {
        let settings = view
            .map(|v| v.settings.clone())
            .unwrap_or_else(|| self.config.defaults.clone());
        let usage_bytes = datasets.iter().map(|(_, u)| u.bytes).sum();
        let sum_known = |f: fn(&TableUsage) -> Option<i64>| -> Option<i64> {
            datasets.iter().map(|(_, u)| f(u)).sum()
        };
        let activity = self.activity_of(&tenant);
        TenantReport {
            state: match view {
                None => "unregistered",
                Some(v) => v
                    .record
                    .archive
                    .as_ref()
                    .and_then(|a| a.phase.shown_state())
                    .unwrap_or(settings.state.unwrap_or_default().as_str()),
            },
            archive: view.and_then(|v| v.record.archive.clone()),
            display_name: settings.display_name.clone(),
            region: settings.region.clone(),
            usage_bytes,
            soft: settings.quota_soft,
            hard: settings.quota_hard,
            quota_state: QuotaState::of(usage_bytes, &settings),
            rows: sum_known(|u| u.rows),
            last_write: activity.last_write,
            last_query: activity.last_query,
            drift_bytes: sum_known(|u| u.drift),
            reconciled_at: datasets.iter().filter_map(|(_, u)| u.reconciled_at).min(),
            datasets,
            tenant,
        }
    }
}

impl Tenants {
    /// Sets the storage and quota gauges from the running usage counts.
    pub fn publish_metrics(&self) {
        let states = [
            QuotaState::Ok,
            QuotaState::SoftExceeded,
            QuotaState::HardExceeded,
        ]
        .map(QuotaState::as_str);
        for report in self.report_now() {
            for (dataset, usage) in &report.datasets {
                metrics::storage_bytes(&report.tenant, dataset, usage.bytes);
            }
            metrics::quota_state(&report.tenant, report.quota_state.as_str(), &states);
            for (kind, limit) in [("soft", report.soft), ("hard", report.hard)] {
                if let Some(limit) = limit {
                    metrics::quota_limit(&report.tenant, kind, limit);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_states_follow_the_limits() {
        let s = TenantSettings {
            quota_soft: Some(50),
            quota_hard: Some(60),
            ..Default::default()
        };
        assert_eq!(QuotaState::of(49, &s), QuotaState::Ok);
        assert_eq!(QuotaState::of(50, &s), QuotaState::SoftExceeded);
        assert_eq!(QuotaState::of(60, &s), QuotaState::HardExceeded);
        assert_eq!(
            QuotaState::of(i64::MAX, &TenantSettings::default()),
            QuotaState::Ok
        );
    }
}
