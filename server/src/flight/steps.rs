//! A maintenance or retention step as the `MaintenanceRunResult` of `maintenance.run` and
//! `retention.run` reports it.

use lakeport_proto::MaintenanceStep;

use crate::maintenance::StepRecord;

pub(super) fn step_message(r: &StepRecord) -> MaintenanceStep {
    MaintenanceStep {
        tenant: r.tenant.clone(),
        dataset: r.dataset.clone(),
        kind: r.kind.as_str().into(),
        partition: r.partition.clone(),
        files_in: r.files_in,
        files_out: r.files_out,
        bytes_in: r.bytes_in,
        bytes_out: r.bytes_out,
        version: r.version.unwrap_or(-1),
        started_at_ms: r.started_at.timestamp_millis(),
        duration_ms: r.duration.as_millis() as u64,
        outcome: r.outcome.as_str().into(),
        message: r.message().into(),
        rows_in: r.rows_in,
    }
}
