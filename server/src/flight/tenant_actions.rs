//! The registry's `DoAction`s (admin only): `tenant.create|update|get|list`,
//! `token.issue|revoke`; and `quota.report` (a tenant for itself, an admin for any).
//! Bodies and results are `proto/lakeport.proto` messages.

use std::path::PathBuf;

use chrono::{DateTime, TimeZone, Utc};
use lakeport_proto::{
    DatasetUsage, QuotaReport, QuotaReportRequest, Tenant, TenantCreateRequest, TenantEncryption,
    TenantGetRequest, TenantList, TenantListRequest, TenantToken, TenantUpdateRequest, TenantUsage,
    TokenIssueRequest, TokenIssueResult, TokenRevokeRequest,
};
use prost::Message;
use tonic::Status;

use super::action_body::{admin_only, decode, tenant_scope};
use super::CallError;
use crate::auth::{KeyScope, Principal};
use crate::error::Error;
use crate::lake::KeySpec;
use crate::tenants::{TenantReport, TenantSettings, TenantState, TenantView, Tenants};

pub(super) const TENANT_CREATE: &str = "tenant.create";
pub(super) const TENANT_UPDATE: &str = "tenant.update";
pub(super) const TENANT_GET: &str = "tenant.get";
pub(super) const TENANT_LIST: &str = "tenant.list";
pub(super) const TOKEN_ISSUE: &str = "token.issue";
pub(super) const TOKEN_REVOKE: &str = "token.revoke";
pub(super) const QUOTA_REPORT: &str = "quota.report";

/// Action types and what they do, for `ListActions`.
pub(super) const TENANT_ACTIONS: [(&str, &str); 7] = [
    (TENANT_CREATE, "Register a tenant (admin; body: lakeport.v1.TenantCreateRequest, result: Tenant)"),
    (TENANT_UPDATE, "Change a tenant's settings (admin; body: TenantUpdateRequest, result: Tenant)"),
    (TENANT_GET, "A tenant's settings and tokens (admin; body: TenantGetRequest, result: Tenant)"),
    (TENANT_LIST, "Every registered tenant (admin; body: TenantListRequest, result: TenantList)"),
    (TOKEN_ISSUE, "Issue a token for a tenant, shown once (admin; body: TokenIssueRequest, result: TokenIssueResult)"),
    (TOKEN_REVOKE, "Revoke a tenant's token (admin; body: TokenRevokeRequest)"),
    (QUOTA_REPORT, "Storage usage against quota per tenant and dataset (body: QuotaReportRequest, result: QuotaReport)"),
];

/// Runs a tenant action; `None` when `kind` is not one.
pub(super) async fn run(
    tenants: &Tenants,
    principal: &Principal,
    kind: &str,
    body: bytes::Bytes,
) -> Option<Result<Vec<u8>, Status>> {
    let result = match kind {
        TENANT_CREATE => create(tenants, principal, body).await,
        TENANT_UPDATE => update(tenants, principal, body).await,
        TENANT_GET => get(tenants, principal, body),
        TENANT_LIST => list(tenants, principal, body),
        TOKEN_ISSUE => issue(tenants, principal, body).await,
        TOKEN_REVOKE => revoke(tenants, principal, body).await,
        QUOTA_REPORT => report(tenants, principal, body).await,
        _ => return None,
    };
    Some(result)
}

async fn create(tenants: &Tenants, who: &Principal, body: bytes::Bytes) -> Result<Vec<u8>, Status> {
    admin_only(who, TENANT_CREATE)?;
    let request: TenantCreateRequest = decode(TENANT_CREATE, body)?;
    let tenant = request.tenant.ok_or_else(|| {
        bad(format!(
            "{TENANT_CREATE} needs `tenant` with at least an id"
        ))
    })?;
    let settings = settings_of(&tenant)?;
    let view = tenants
        .create(&tenant.id, settings)
        .await
        .map_err(Error::from)?;
    Ok(tenant_message(tenants, &view).encode_to_vec())
}

async fn update(tenants: &Tenants, who: &Principal, body: bytes::Bytes) -> Result<Vec<u8>, Status> {
    admin_only(who, TENANT_UPDATE)?;
    let request: TenantUpdateRequest = decode(TENANT_UPDATE, body)?;
    let tenant = request
        .tenant
        .ok_or_else(|| bad(format!("{TENANT_UPDATE} needs `tenant` with its id")))?;
    let settings = settings_of(&tenant)?;
    let view = tenants
        .update(&tenant.id, settings, &request.fields)
        .await
        .map_err(Error::from)?;
    Ok(tenant_message(tenants, &view).encode_to_vec())
}

fn get(tenants: &Tenants, who: &Principal, body: bytes::Bytes) -> Result<Vec<u8>, Status> {
    admin_only(who, TENANT_GET)?;
    let request: TenantGetRequest = decode(TENANT_GET, body)?;
    let view = tenants
        .view(&request.id)
        .ok_or_else(|| Error::from(crate::tenants::TenantsError::Unknown(request.id.clone())))?;
    Ok(tenant_message(tenants, &view).encode_to_vec())
}

fn list(tenants: &Tenants, who: &Principal, body: bytes::Bytes) -> Result<Vec<u8>, Status> {
    admin_only(who, TENANT_LIST)?;
    let _: TenantListRequest = decode(TENANT_LIST, body)?;
    let list = TenantList {
        tenants: tenants
            .views()
            .iter()
            .map(|v| tenant_message(tenants, v))
            .collect(),
    };
    Ok(list.encode_to_vec())
}

/// An admin issues tokens and keys; a tenant issues collector keys for itself.
async fn issue(tenants: &Tenants, who: &Principal, body: bytes::Bytes) -> Result<Vec<u8>, Status> {
    let mut request: TokenIssueRequest = decode(TOKEN_ISSUE, body)?;
    if request.key_datasets.is_empty() {
        admin_only(who, TOKEN_ISSUE)?;
    } else if let Some(own) = tenant_scope(who, &request.tenant)? {
        request.tenant = own;
    }
    let expires_at = match request.expires_at_ms {
        0 => None,
        ms => Some(time_of(ms, "expires_at_ms")?),
    };
    let scope = (!request.key_datasets.is_empty()).then(|| KeyScope {
        datasets: request.key_datasets.clone(),
        origins: request.key_origins.clone(),
    });
    if scope.is_none() && !request.key_origins.is_empty() {
        return Err(bad(
            "key_origins is for collector keys: name their key_datasets too".into(),
        ));
    }
    let (token, secret) = tenants
        .issue_token(&request.tenant, expires_at, &request.description, scope)
        .await
        .map_err(Error::from)?;
    let result = TokenIssueResult {
        tenant: request.tenant,
        token_id: token.id,
        token: secret,
        expires_at_ms: millis(token.expires_at),
    };
    Ok(result.encode_to_vec())
}

/// An admin revokes any token or key; a tenant its own collector keys.
async fn revoke(tenants: &Tenants, who: &Principal, body: bytes::Bytes) -> Result<Vec<u8>, Status> {
    let mut request: TokenRevokeRequest = decode(TOKEN_REVOKE, body)?;
    if request.token_id.is_empty() {
        return Err(bad(format!("{TOKEN_REVOKE} needs token_id")));
    }
    let keys_only = !matches!(who, Principal::Admin);
    if let Some(own) = tenant_scope(who, &request.tenant)? {
        request.tenant = own;
    }
    tenants
        .revoke_token(&request.tenant, &request.token_id, keys_only)
        .await
        .map_err(Error::from)?;
    Ok(Vec::new())
}

async fn report(tenants: &Tenants, who: &Principal, body: bytes::Bytes) -> Result<Vec<u8>, Status> {
    let request: QuotaReportRequest = decode(QUOTA_REPORT, body)?;
    let only = tenant_scope(who, &request.tenant)?;
    let reports = tenants.report(only.as_deref()).await;
    let report = QuotaReport {
        tenants: reports.iter().map(usage_message).collect(),
    };
    Ok(report.encode_to_vec())
}

fn bad(message: String) -> Status {
    Error::from(CallError::BadParameters(message)).into()
}

fn time_of(ms: i64, field: &str) -> Result<DateTime<Utc>, Status> {
    Utc.timestamp_millis_opt(ms).single().ok_or_else(|| {
        bad(format!(
            "{field} {ms} is not a time in milliseconds since 1970"
        ))
    })
}

fn millis(at: Option<DateTime<Utc>>) -> i64 {
    at.map_or(0, |t| t.timestamp_millis())
}

/// The settings a request's `Tenant` gives.
fn settings_of(t: &Tenant) -> Result<TenantSettings, Status> {
    let state = match t.state.as_deref() {
        None | Some("") => None,
        Some(text) => Some(
            TenantState::parse(text)
                .ok_or_else(|| bad(format!("state {text:?} is not one of: active, suspended")))?,
        ),
    };
    Ok(TenantSettings {
        display_name: t.display_name.clone().filter(|s| !s.is_empty()),
        region: t.region.clone().filter(|s| !s.is_empty()),
        encryption: t.encryption.as_ref().map(key_spec_of).transpose()?,
        quota_soft: t.quota_soft_bytes,
        quota_hard: t.quota_hard_bytes,
        rows_per_second: t.rows_per_second,
        burst_rows: t.burst_rows,
        retention: t.retention.clone().filter(|s| !s.is_empty()),
        dataset_retention: (!t.dataset_retention.is_empty())
            .then(|| t.dataset_retention.clone().into_iter().collect()),
        archive_after: t.archive_after.clone().filter(|s| !s.is_empty()),
        state,
        quality: match t.quality.as_deref() {
            None | Some("") => None,
            Some(json) => Some(serde_json::from_str(json).map_err(|e| {
                bad(format!(
                    "quality is not a JSON object of dataset → expectations (not_null, unique, unique_window, accepted_values, freshness): {e}"
                ))
            })?),
        },
    })
}

fn key_spec_of(e: &TenantEncryption) -> Result<KeySpec, Status> {
    let given = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let need = |s: &str, field: &str| {
        given(s).ok_or_else(|| bad(format!("encryption kind {:?} needs {field}", e.kind)))
    };
    Ok(match e.kind.as_str() {
        "sse-kms" => KeySpec::SseKms {
            key_id: need(&e.key_id, "key_id")?,
            bucket_key: e.bucket_key,
        },
        "sse-c" => KeySpec::SseC {
            key_env: given(&e.key_env),
            key_file: given(&e.key_file).map(PathBuf::from),
        },
        "azure-scope" => KeySpec::AzureScope {
            scope: need(&e.scope, "scope")?,
        },
        "gcs-cmek" => KeySpec::GcsCmek {
            key_name: need(&e.key_name, "key_name")?,
        },
        other => {
            return Err(bad(format!(
                "encryption kind {other:?} is not one of: sse-kms, sse-c, azure-scope, gcs-cmek"
            )))
        }
    })
}

fn encryption_message(spec: &KeySpec) -> TenantEncryption {
    let mut e = TenantEncryption::default();
    match spec {
        KeySpec::SseKms { key_id, bucket_key } => {
            e.kind = "sse-kms".into();
            e.key_id = key_id.clone();
            e.bucket_key = *bucket_key;
        }
        KeySpec::SseC { key_env, key_file } => {
            e.kind = "sse-c".into();
            e.key_env = key_env.clone().unwrap_or_default();
            e.key_file = key_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
        }
        KeySpec::AzureScope { scope } => {
            e.kind = "azure-scope".into();
            e.scope = scope.clone();
        }
        KeySpec::GcsCmek { key_name } => {
            e.kind = "gcs-cmek".into();
            e.key_name = key_name.clone();
        }
    }
    e
}

pub(super) fn tenant_message(tenants: &Tenants, view: &TenantView) -> Tenant {
    let s = &view.settings;
    let report = tenants.activity(&view.record.id);
    let archive = view.record.archive.as_ref();
    Tenant {
        id: view.record.id.clone(),
        display_name: s.display_name.clone(),
        region: s.region.clone(),
        encryption: s.encryption.as_ref().map(encryption_message),
        quota_soft_bytes: s.quota_soft,
        quota_hard_bytes: s.quota_hard,
        rows_per_second: s.rows_per_second,
        burst_rows: s.burst_rows,
        retention: s.retention.clone(),
        dataset_retention: s
            .dataset_retention
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        state: Some(s.state.unwrap_or_default().as_str().into()),
        created_at_ms: view.record.created_at.timestamp_millis(),
        updated_at_ms: view.record.updated_at.timestamp_millis(),
        tokens: view
            .record
            .tokens
            .iter()
            .map(|t| TenantToken {
                id: t.id.clone(),
                description: t.description.clone(),
                created_at_ms: t.created_at.timestamp_millis(),
                expires_at_ms: millis(t.expires_at),
                revoked_at_ms: millis(t.revoked_at),
                key_datasets: t
                    .scope
                    .as_ref()
                    .map(|s| s.datasets.clone())
                    .unwrap_or_default(),
                key_origins: t
                    .scope
                    .as_ref()
                    .map(|s| s.origins.clone())
                    .unwrap_or_default(),
            })
            .collect(),
        config_fields: view.config_fields.iter().map(|f| f.to_string()).collect(),
        last_write_ms: millis(report.0),
        last_query_ms: millis(report.1),
        quality: s
            .quality
            .as_ref()
            .and_then(|q| serde_json::to_string(q).ok()),
        archive_after: s.archive_after.clone(),
        archive_state: archive
            .and_then(|a| a.phase.shown_state())
            .unwrap_or_default()
            .into(),
        archived_at_ms: millis(archive.and_then(|a| a.archived_at)),
        archive_location: archive.map(|a| a.location()).unwrap_or_default(),
        archived_bytes: archive.map(|a| a.bytes()).unwrap_or_default(),
    }
}

fn usage_message(r: &TenantReport) -> TenantUsage {
    TenantUsage {
        tenant: r.tenant.clone(),
        display_name: r.display_name.clone().unwrap_or_default(),
        region: r.region.clone().unwrap_or_default(),
        state: r.state.into(),
        usage_bytes: r.usage_bytes,
        soft_bytes: r.soft.unwrap_or(0),
        hard_bytes: r.hard.unwrap_or(0),
        quota_state: r.quota_state.as_str().into(),
        rows: r.rows.unwrap_or(-1),
        last_write_ms: millis(r.last_write),
        last_query_ms: millis(r.last_query),
        drift_bytes: r.drift_bytes.unwrap_or(0),
        datasets: r
            .datasets
            .iter()
            .map(|(dataset, u)| DatasetUsage {
                dataset: dataset.clone(),
                bytes: u.bytes,
                objects: u.objects,
                rows: u.rows.unwrap_or(-1),
                drift_bytes: u.drift.unwrap_or(0),
                reconciled_at_ms: millis(u.reconciled_at),
            })
            .collect(),
    }
}
