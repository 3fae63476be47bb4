//! The data lifecycle's `DoAction`s: `retention.run` removes the expired hour partitions now
//! (a tenant for its own tables, an admin for any tenant's or all), and with `purge` deletes
//! their files at once; `tenant.delete` (admin) offboards a tenant.

use lakeport_proto::{
    MaintenanceRunResult, RetentionRunRequest, StoreRemoval, TenantDeleteRequest,
    TenantDeleteResult,
};
use prost::Message;
use tonic::Status;

use super::action_body::{admin_only, decode};
use super::steps::step_message;
use super::CallError;
use crate::auth::Principal;
use crate::error::Error;
use crate::maintenance::{Maintenance, RunScope};
use crate::tenants::Tenants;

pub(super) const RETENTION_RUN: &str = "retention.run";
pub(super) const TENANT_DELETE: &str = "tenant.delete";

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

pub(super) async fn tenant_delete(
    tenants: &Tenants,
    who: &Principal,
    body: bytes::Bytes,
) -> Result<Vec<u8>, Status> {
    admin_only(who, TENANT_DELETE)?;
    let request: TenantDeleteRequest = decode(TENANT_DELETE, body)?;
    if request.id.is_empty() || request.confirm != request.id {
        return Err(Error::from(CallError::BadParameters(format!(
            "{TENANT_DELETE} deletes every object of the tenant and cannot be undone: give its id in both `id` and `confirm` (`lakeport tenant delete ID --confirm ID`)"
        )))
        .into());
    }
    let erased = tenants.delete(&request.id).await.map_err(Error::from)?;
    let result = TenantDeleteResult {
        id: request.id,
        stores: erased
            .into_iter()
            .map(|e| StoreRemoval {
                store: e.store,
                objects: e.objects,
                bytes: e.bytes,
            })
            .collect(),
    };
    Ok(result.encode_to_vec())
}
