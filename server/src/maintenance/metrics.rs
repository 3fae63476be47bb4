//! Maintenance metrics: each step run on a table (compaction, checkpoint, log cleanup,
//! vacuum) by outcome, and the bytes compaction rewrote.

use metrics::{counter, describe_counter, Unit};

use super::{StepKind, StepRecord};

pub const STEPS: &str = "lakeport_maintenance_steps_total";
pub const RUNS: &str = "lakeport_maintenance_runs_total";
pub const BYTES_REWRITTEN: &str = "lakeport_maintenance_bytes_rewritten_total";

pub fn describe() {
    describe_counter!(
        STEPS,
        "Maintenance steps per table by step and outcome (done, lost_race, failed)."
    );
    describe_counter!(
        RUNS,
        "Maintenance runs (scheduled or on demand): ok, or failed when any step failed."
    );
    describe_counter!(
        BYTES_REWRITTEN,
        Unit::Bytes,
        "Bytes compaction read and rewrote into larger files."
    );
}

/// A finished run (dry runs are not recorded).
pub fn run_finished(records: &[StepRecord]) {
    let mut failed = false;
    for record in records {
        let outcome = record.outcome.as_str();
        failed |= outcome == "failed";
        let (tenant, dataset) = (record.tenant.clone(), record.dataset.clone());
        counter!(
            STEPS,
            "tenant" => tenant.clone(),
            "dataset" => dataset.clone(),
            "step" => record.kind.as_str(),
            "outcome" => outcome
        )
        .increment(1);
        if outcome == "done" && record.kind == StepKind::Compaction {
            counter!(BYTES_REWRITTEN, "tenant" => tenant, "dataset" => dataset)
                .increment(record.bytes_in);
        }
    }
    let outcome = if failed { "failed" } else { "ok" };
    counter!(RUNS, "outcome" => outcome).increment(1);
}
