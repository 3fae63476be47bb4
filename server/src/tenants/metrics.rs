//! Tenant metrics: storage per table and each tenant's quota state, set at scrape time from
//! the usage ledger (they are read, not counted), and the writes a quota refused.

use metrics::{counter, describe_counter, describe_gauge, gauge, Unit};

pub const STORAGE_BYTES: &str = "lakeport_storage_bytes";
pub const QUOTA_STATE: &str = "lakeport_quota_state";
pub const QUOTA_LIMIT: &str = "lakeport_quota_limit_bytes";
pub const QUOTA_REFUSED: &str = "lakeport_quota_refused_writes_total";
pub const ARCHIVES: &str = "lakeport_archives_total";
pub const RESTORES: &str = "lakeport_restores_total";
pub const ARCHIVE_BYTES_MOVED: &str = "lakeport_archive_bytes_moved_total";

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
    describe_counter!(
        ARCHIVES,
        "Tenant archives run by this replica, by outcome (ok, error)."
    );
    describe_counter!(
        RESTORES,
        "Tenant restores run by this replica, by outcome (ok, error)."
    );
    describe_counter!(
        ARCHIVE_BYTES_MOVED,
        Unit::Bytes,
        "Bytes copied by archives (to_archive) and restores (from_archive)."
    );
}

fn outcome(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "error"
    }
}

pub fn archive_finished(ok: bool) {
    counter!(ARCHIVES, "outcome" => outcome(ok)).increment(1);
}

pub fn restore_finished(ok: bool) {
    counter!(RESTORES, "outcome" => outcome(ok)).increment(1);
}

pub fn bytes_moved(direction: &'static str, bytes: u64) {
    counter!(ARCHIVE_BYTES_MOVED, "direction" => direction).increment(bytes);
}

pub fn write_refused(tenant: &str) {
    counter!(QUOTA_REFUSED, "tenant" => tenant.to_string()).increment(1);
}

/// The bytes one table holds (billed).
pub fn storage_bytes(tenant: &str, dataset: &str, bytes: i64) {
    gauge!(STORAGE_BYTES, "tenant" => tenant.to_string(), "dataset" => dataset.to_string())
        .set(bytes as f64);
}

/// 1 for the tenant's `current` quota state, 0 for the other states of `all`.
pub fn quota_state(tenant: &str, current: &'static str, all: &[&'static str]) {
    for &state in all {
        let value = if state == current { 1.0 } else { 0.0 };
        gauge!(QUOTA_STATE, "tenant" => tenant.to_string(), "state" => state).set(value);
    }
}

/// A soft or hard limit of the tenant.
pub fn quota_limit(tenant: &str, kind: &'static str, limit: u64) {
    gauge!(QUOTA_LIMIT, "tenant" => tenant.to_string(), "kind" => kind).set(limit as f64);
}
