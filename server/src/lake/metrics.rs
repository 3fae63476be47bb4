//! Lake metrics: commits, the data files behind them, and failed store requests.

use std::time::Duration;

use metrics::{counter, describe_counter, describe_histogram, histogram, Unit};

pub const COMMITS: &str = "lakeport_commits_total";
pub const COMMIT_DURATION: &str = "lakeport_commit_duration_seconds";
pub const COMMIT_RETRIES: &str = "lakeport_commit_conflicts_retried_total";
pub const FILES_WRITTEN: &str = "lakeport_files_written_total";
pub const FILE_SIZE: &str = "lakeport_file_size_bytes";
pub const STORE_ERRORS: &str = "lakeport_store_request_errors_total";

pub fn describe() {
    describe_counter!(
        COMMITS,
        "Group commits to a table, by outcome (committed, failed)."
    );
    describe_histogram!(
        COMMIT_DURATION,
        Unit::Seconds,
        "Time from a group commit's start to its outcome, retries included."
    );
    describe_counter!(
        COMMIT_RETRIES,
        "Commit attempts that lost a race with another writer and were rebuilt."
    );
    describe_counter!(
        FILES_WRITTEN,
        "Parquet data files completed in the store (ingest and compaction)."
    );
    describe_histogram!(FILE_SIZE, Unit::Bytes, "Size of each data file written.");
    describe_counter!(
        STORE_ERRORS,
        "Object store requests that failed (not counting not-found and lost conditional creates)."
    );
}

fn labels(tenant: &str, dataset: &str) -> [(&'static str, String); 2] {
    [
        ("tenant", tenant.to_string()),
        ("dataset", dataset.to_string()),
    ]
}

pub fn commit_finished(tenant: &str, dataset: &str, committed: bool, took: Duration) {
    let [t, d] = labels(tenant, dataset);
    let outcome = if committed { "committed" } else { "failed" };
    histogram!(COMMIT_DURATION, &[t.clone(), d.clone()]).record(took.as_secs_f64());
    counter!(COMMITS, &[t, d, ("outcome", outcome.to_string())]).increment(1);
}

pub fn commit_retried(tenant: &str, dataset: &str) {
    counter!(COMMIT_RETRIES, &labels(tenant, dataset)).increment(1);
}

/// A table's committer started: its retry series exists (at 0) before any race.
pub fn committer_started(tenant: &str, dataset: &str) {
    counter!(COMMIT_RETRIES, &labels(tenant, dataset)).increment(0);
}

pub fn data_file_written(tenant: &str, dataset: &str, bytes: u64) {
    let labels = labels(tenant, dataset);
    counter!(FILES_WRITTEN, &labels).increment(1);
    histogram!(FILE_SIZE, &labels).record(bytes as f64);
}

/// A readiness probe of `store`; a store that answers still shows its series at 0.
pub fn store_probed(store: &str, answered: bool) {
    counter!(STORE_ERRORS, "store" => store.to_string(), "operation" => "probe")
        .increment(u64::from(!answered));
}

/// A failed request to `store`; expected refusals (absent object, a conditional create
/// that lost) are the protocol working and are not counted.
pub fn store_request_failed(store: &str, operation: &'static str, e: &object_store::Error) {
    if matches!(
        e,
        object_store::Error::NotFound { .. }
            | object_store::Error::AlreadyExists { .. }
            | object_store::Error::Precondition { .. }
            | object_store::Error::NotModified { .. }
    ) {
        return;
    }
    counter!(
        STORE_ERRORS,
        "store" => store.to_string(),
        "operation" => operation
    )
    .increment(1);
}
