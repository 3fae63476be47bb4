//! `retention.run`: removes the expired hour partitions now (a tenant for its own tables,
//! an admin for any tenant's or all), and with `purge` deletes their files at once.

use lakeport_proto::{MaintenanceRunResult, RetentionRunRequest};
use prost::Message;
use tonic::Status;

use super::action_body::decode;
use super::steps::step_message;
use crate::auth::Principal;
use crate::error::Error;
use crate::maintenance::{Maintenance, RunScope};

pub(super) const RETENTION_RUN: &str = "retention.run";

pub(super) async fn retention_run(
    maintenance: &Maintenance,
    who: &Principal,
    body: bytes::Bytes,
) -> Result<Vec<u8>, Status> {
    let request: RetentionRunRequest = decode(RETENTION_RUN, body)?;
    let tenant = match (who, request.tenant.as_str()) {
        (Principal::Admin, "") => None,
        (who, tenant) => Some(
            who.resolve_tenant((!tenant.is_empty()).then_some(tenant))
                .map_err(Error::from)?,
        ),
    };
    let scope = RunScope {
        tenant,
        dataset: (!request.dataset.is_empty()).then_some(request.dataset),
        dry_run: request.dry_run,
        scheduled: false,
        purge: request.purge,
    };
    let records = maintenance
        .run_retention(&scope)
        .await
        .map_err(Error::from)?;
    let result = MaintenanceRunResult {
        steps: records.iter().map(step_message).collect(),
    };
    Ok(result.encode_to_vec())
}
