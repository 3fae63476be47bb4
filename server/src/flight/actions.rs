//! lakeport's own `DoAction`s: `maintenance.run` (admin), `retention.run` and
//! `snowflake.readiness` (a tenant for its own tables, an admin for any). Bodies and results
//! are the protobuf messages of `proto/lakeport.proto`.

use std::pin::Pin;
use std::sync::Arc;

use arrow_flight::{Action, ActionType};
use futures::Stream;
use lakeport_proto::{
    MaintenanceRunRequest, MaintenanceRunResult, ReadinessCheck, ReadinessRequest, ReadinessResult,
    TableReadiness,
};
use prost::Message;
use tonic::{Request, Status};

use super::action_body::{admin_only, decode};
use super::ingest::principal;
use super::lifecycle_actions::{
    retention_run, tenant_archival, tenant_delete, tenant_export, RETENTION_RUN, TENANT_ARCHIVE,
    TENANT_DELETE, TENANT_EXPORT, TENANT_RESTORE,
};
use super::quality_action::{quality_run, QUALITY_RUN};
use super::steps::step_message;
use super::tenant_actions::{self, TENANT_ACTIONS};
use super::CallError;
use crate::auth::Principal;
use crate::error::Error;
use crate::lifecycle::Lifecycle;
use crate::maintenance::{Maintenance, RunScope};
use crate::quality::Quality;
use crate::readiness::Readiness;
use crate::tenants::Tenants;

pub(super) const MAINTENANCE_RUN: &str = "maintenance.run";
pub(super) const SNOWFLAKE_READINESS: &str = "snowflake.readiness";

/// What lakeport's actions run on.
#[derive(Debug)]
pub struct Actions {
    pub maintenance: Arc<Maintenance>,
    pub readiness: Readiness,
    pub tenants: Arc<Tenants>,
    pub quality: Arc<Quality>,
    pub lifecycle: Arc<Lifecycle>,
}

pub(super) type ActionStream =
    Pin<Box<dyn Stream<Item = Result<arrow_flight::Result, Status>> + Send + 'static>>;

/// The actions `ListActions` shows next to Flight SQL's.
pub(super) fn action_types() -> Vec<ActionType> {
    vec![
        ActionType {
            r#type: MAINTENANCE_RUN.into(),
            description: "Compact closed partitions, checkpoint, clean the log and vacuum (admin; body: lakeport.v1.MaintenanceRunRequest, result: MaintenanceRunResult)".into(),
        },
        ActionType {
            r#type: SNOWFLAKE_READINESS.into(),
            description: "Check that Snowflake can read each table and give the SQL to do so (body: lakeport.v1.ReadinessRequest, result: ReadinessResult)".into(),
        },
        ActionType {
            r#type: RETENTION_RUN.into(),
            description: "Remove the expired hour partitions now, or with purge delete their files at once (body: lakeport.v1.RetentionRunRequest, result: MaintenanceRunResult)".into(),
        },
        ActionType {
            r#type: TENANT_DELETE.into(),
            description: "Delete a tenant: every object in every store, then its record and tokens (admin; body: lakeport.v1.TenantDeleteRequest, result: TenantDeleteResult)".into(),
        },
        ActionType {
            r#type: TENANT_ARCHIVE.into(),
            description: "Archive a tenant now: copy its tables to the archive stores, verify, then delete the live copy (admin; body: lakeport.v1.TenantArchiveRequest, result: Tenant)".into(),
        },
        ActionType {
            r#type: TENANT_RESTORE.into(),
            description: "Restore an archived tenant now (admin; body: lakeport.v1.TenantArchiveRequest, result: Tenant)".into(),
        },
        ActionType {
            r#type: TENANT_EXPORT.into(),
            description: "Copy a tenant's partitions of a time range into a new standalone Delta table in another store (body: lakeport.v1.TenantExportRequest, result: TenantExportResult)".into(),
        },
        ActionType {
            r#type: QUALITY_RUN.into(),
            description: "Evaluate the data-quality expectations now (body: lakeport.v1.QualityRunRequest, result: QualityReport)".into(),
        },
    ]
    .into_iter()
    .chain(TENANT_ACTIONS.iter().map(|(kind, description)| ActionType {
        r#type: kind.to_string(),
        description: description.to_string(),
    }))
    .collect()
}

/// Runs one of lakeport's actions (an unknown type is UNIMPLEMENTED) and logs it: one line
/// per action with its caller, status and duration.
pub(super) async fn do_action(
    actions: &Actions,
    request: Request<Action>,
) -> Result<ActionStream, Status> {
    let principal = principal(&request)?;
    let action = request.into_inner();
    let kind = action.r#type.clone();
    let started = std::time::Instant::now();
    let result = run_action(actions, &principal, action).await;
    let status = match &result {
        Ok(_) => tonic::Code::Ok,
        Err(status) => status.code(),
    };
    let caller = match &principal {
        Principal::Admin => "admin",
        Principal::Tenant(tenant) => tenant.as_str(),
    };
    tracing::info!(
        action = %kind,
        caller,
        status = ?status,
        duration_ms = started.elapsed().as_millis() as u64,
        "action finished"
    );
    result
}

async fn run_action(
    actions: &Actions,
    principal: &Principal,
    action: Action,
) -> Result<ActionStream, Status> {
    if let Some(result) = tenant_actions::run(
        &actions.tenants,
        principal,
        &action.r#type,
        action.body.clone(),
    )
    .await
    {
        return result.map(single);
    }
    let non_empty = |s: String| (!s.is_empty()).then_some(s);
    match action.r#type.as_str() {
        QUALITY_RUN => quality_run(&actions.quality, principal, action.body)
            .await
            .map(single),
        RETENTION_RUN => retention_run(&actions.maintenance, principal, action.body)
            .await
            .map(single),
        TENANT_DELETE => tenant_delete(&actions.tenants, principal, action.body)
            .await
            .map(single),
        TENANT_ARCHIVE => tenant_archival(&actions.tenants, TENANT_ARCHIVE, principal, action.body)
            .await
            .map(single),
        TENANT_RESTORE => tenant_archival(&actions.tenants, TENANT_RESTORE, principal, action.body)
            .await
            .map(single),
        TENANT_EXPORT => tenant_export(&actions.lifecycle, principal, action.body)
            .await
            .map(single),
        MAINTENANCE_RUN => {
            admin_only(principal, MAINTENANCE_RUN)?;
            let body: MaintenanceRunRequest = decode(MAINTENANCE_RUN, action.body)?;
            let scope = RunScope {
                tenant: non_empty(body.tenant),
                dataset: non_empty(body.dataset),
                dry_run: body.dry_run,
                scheduled: false,
                purge: false,
            };
            let records = actions.maintenance.run(&scope).await.map_err(Error::from)?;
            let result = MaintenanceRunResult {
                steps: records.iter().map(step_message).collect(),
            };
            Ok(single(result.encode_to_vec()))
        }
        SNOWFLAKE_READINESS => {
            let body: ReadinessRequest = decode(SNOWFLAKE_READINESS, action.body)?;
            let tenants = match (principal, non_empty(body.tenant)) {
                (Principal::Admin, None) => actions.readiness.tenants().await.map_err(Error::from)?,
                (principal, tenant) => vec![principal
                    .resolve_tenant(tenant.as_deref())
                    .map_err(Error::from)?],
            };
            let dataset = non_empty(body.dataset);
            let reports = actions
                .readiness
                .report(&tenants, dataset.as_deref())
                .await
                .map_err(Error::from)?;
            let result = ReadinessResult {
                tables: reports
                    .into_iter()
                    .map(|r| TableReadiness {
                        state: r.state().as_str().into(),
                        checks: r
                            .checks
                            .into_iter()
                            .map(|c| ReadinessCheck {
                                name: c.name.into(),
                                state: c.state.as_str().into(),
                                evidence: c.evidence,
                                fix: c.fix,
                            })
                            .collect(),
                        tenant: r.tenant,
                        dataset: r.dataset,
                        location: r.location,
                        ddl: r.ddl,
                    })
                    .collect(),
            };
            Ok(single(result.encode_to_vec()))
        }
        other => Err(Error::from(CallError::Unimplemented {
            command: format!("DoAction {other:?}"),
            why: format!(
                "lakeport's actions are {MAINTENANCE_RUN}, {RETENTION_RUN}, {SNOWFLAKE_READINESS}, {QUALITY_RUN}, tenant.create|update|get|list|delete|export, token.issue|revoke, quota.report and the Flight SQL ones (ListActions lists them)"
            ),
        })
        .into()),
    }
}

fn single(body: Vec<u8>) -> ActionStream {
    let result = arrow_flight::Result { body: body.into() };
    Box::pin(futures::stream::iter([Ok(result)]))
}
