//! Tenant metrics: storage per table and each tenant's quota state, set at scrape time from
//! the usage ledger (they are read, not counted), and the writes a quota refused.

use metrics::{counter, describe_counter, describe_gauge, gauge, Unit};

use super::quota::QuotaState;
use super::Tenants;

pub const STORAGE_BYTES: &str = "lakeport_storage_bytes";
pub const QUOTA_STATE: &str = "lakeport_quota_state";
pub const QUOTA_LIMIT: &str = "lakeport_quota_limit_bytes";
pub const QUOTA_REFUSED: &str = "lakeport_quota_refused_writes_total";

const STATES: [QuotaState; 3] = [
    QuotaState::Ok,
    QuotaState::SoftExceeded,
    QuotaState::HardExceeded,
];

pub fn describe() {
    describe_gauge!(
        STORAGE_BYTES,
        Unit::Bytes,
        "Bytes billed per table: every object under its root (data, log, not yet vacuumed)."
    );
    describe_gauge!(
        QUOTA_STATE,
        "1 for the tenant's current quota state (ok, soft_exceeded, hard_exceeded), 0 for the others."
    );
    describe_gauge!(
        QUOTA_LIMIT,
        Unit::Bytes,
        "The tenant's soft and hard storage limits, when set."
    );
    describe_counter!(
        QUOTA_REFUSED,
        "Write streams refused because the tenant was at its hard quota."
    );
}

pub fn write_refused(tenant: &str) {
    counter!(QUOTA_REFUSED, "tenant" => tenant.to_string()).increment(1);
}

impl Tenants {
    /// Sets the storage and quota gauges from the running usage counts.
    pub fn publish_metrics(&self) {
        for report in self.report_now() {
            for (dataset, usage) in &report.datasets {
                gauge!(
                    STORAGE_BYTES,
                    "tenant" => report.tenant.clone(),
                    "dataset" => dataset.clone()
                )
                .set(usage.bytes as f64);
            }
            for state in STATES {
                let value = if state == report.quota_state {
                    1.0
                } else {
                    0.0
                };
                gauge!(
                    QUOTA_STATE,
                    "tenant" => report.tenant.clone(),
                    "state" => state.as_str()
                )
                .set(value);
            }
            for (kind, limit) in [("soft", report.soft), ("hard", report.hard)] {
                if let Some(limit) = limit {
                    gauge!(QUOTA_LIMIT, "tenant" => report.tenant.clone(), "kind" => kind)
                        .set(limit as f64);
                }
            }
        }
    }
}
