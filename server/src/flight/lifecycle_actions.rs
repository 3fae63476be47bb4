//! The data lifecycle's `DoAction`s: `retention.run` removes the expired hour partitions now
//! (a tenant for its own tables, an admin for any tenant's or all), and with `purge` deletes
//! their files at once; `tenant.delete` (admin) offboards a tenant; `tenant.export` hands a
//! range of a tenant's table over as a standalone Delta table; `tenant.archive` and
//! `tenant.restore` (admin) move a tenant to its archive stores and back.

use lakeport_proto::{
    MaintenanceRunResult, RetentionRunRequest, StoreRemoval, TenantArchiveRequest,
    TenantDeleteRequest, TenantDeleteResult, TenantExportRequest, TenantExportResult,
};
use std::sync::Arc;

use prost::Message;
use tonic::Status;

use super::action_body::{admin_only, decode, tenant_scope};
use super::steps::step_message;
use super::tenant_actions::tenant_message;
use super::CallError;
use crate::auth::Principal;
use crate::error::Error;
use crate::lake::StoreSpec;
use crate::lifecycle::{parse_time, ExportRequest, ExportTarget, Lifecycle};
use crate::maintenance::{Maintenance, RunScope};
use crate::tenants::{Tenants, TenantsError};

pub(super) const RETENTION_RUN: &str = "retention.run";
pub(super) const TENANT_DELETE: &str = "tenant.delete";
pub(super) const TENANT_EXPORT: &str = "tenant.export";
pub(super) const TENANT_ARCHIVE: &str = "tenant.archive";
pub(super) const TENANT_RESTORE: &str = "tenant.restore";

pub(super) async fn retention_run(
    maintenance: &Maintenance,
    who: &Principal,
    body: bytes::Bytes,
) -> Result<Vec<u8>, Status> {
    let request: RetentionRunRequest = decode(RETENTION_RUN, body)?;
    let tenant = tenant_scope(who, &request.tenant)?;
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
        return Err(bad(format!(
            "{TENANT_DELETE} deletes every object of the tenant and cannot be undone: give its id in both `id` and `confirm` (`lakeport tenant delete ID --confirm ID`)"
        )));
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

/// `tenant.archive` or `tenant.restore` (`action`): the tenant once it is done.
pub(super) async fn tenant_archival(
    tenants: &Arc<Tenants>,
    action: &'static str,
    who: &Principal,
    body: bytes::Bytes,
) -> Result<Vec<u8>, Status> {
    admin_only(who, action)?;
    let request: TenantArchiveRequest = decode(action, body)?;
    if request.id.is_empty() {
        return Err(bad(format!("{action} needs the tenant's id")));
    }
    if action == TENANT_ARCHIVE {
        tenants.archive(&request.id).await.map_err(Error::from)?;
    } else {
        tenants.restore(&request.id).await.map_err(Error::from)?;
    }
    let view = tenants
        .view(&request.id)
        .ok_or_else(|| Error::from(TenantsError::Unknown(request.id.clone())))?;
    Ok(tenant_message(tenants, &view).encode_to_vec())
}

pub(super) async fn tenant_export(
    lifecycle: &Lifecycle,
    who: &Principal,
    body: bytes::Bytes,
) -> Result<Vec<u8>, Status> {
    let request: TenantExportRequest = decode(TENANT_EXPORT, body)?;
    let tenant = who
        .resolve_tenant((!request.tenant.is_empty()).then_some(request.tenant.as_str()))
        .map_err(Error::from)?;
    let target = match (request.to_url.is_empty(), request.to_store.is_empty()) {
        (false, true) => ExportTarget::Url(StoreSpec {
            url: request.to_url.clone(),
            options: request.options.into_iter().collect(),
            ..Default::default()
        }),
        (true, false) => {
            admin_only(who, "tenant.export to a configured store")?;
            ExportTarget::Store {
                name: request.to_store,
                path: request.path,
            }
        }
        _ => {
            let needs =
                "needs a target: to_url (with options for its credentials) or to_store and path";
            return Err(bad(format!("{TENANT_EXPORT} {needs}")));
        }
    };
    let time = |text: &str, field: &str| parse_time(text).map_err(|e| bad(format!("{field}: {e}")));
    let export = ExportRequest {
        tenant,
        dataset: request.dataset,
        from: time(&request.from, "from")?,
        to: time(&request.to, "to")?,
        target,
        by_tenant: !matches!(who, Principal::Admin),
    };
    let report = lifecycle.export(export).await.map_err(Error::from)?;
    let result = TenantExportResult {
        url: report.url,
        files: report.files,
        files_copied: report.files_copied,
        bytes: report.bytes,
        rows: report.rows,
        version: report.version,
    };
    Ok(result.encode_to_vec())
}

fn bad(message: String) -> Status {
    Error::from(CallError::BadParameters(message)).into()
}
