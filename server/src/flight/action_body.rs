//! What every `DoAction` checks first: that its body decodes as the message it takes, and
//! for the admin's actions that the caller is the admin.

use prost::Message;
use tonic::Status;

use super::CallError;
use crate::auth::{AuthError, Principal};
use crate::error::Error;

pub(super) fn decode<M: Message + Default>(action: &str, body: bytes::Bytes) -> Result<M, Status> {
    M::decode(body).map_err(|e| {
        let expected = std::any::type_name::<M>()
            .rsplit("::")
            .next()
            .unwrap_or("message");
        Error::from(CallError::BadParameters(format!(
            "{action} body is not a lakeport.v1.{expected}: {e}"
        )))
        .into()
    })
}

pub(super) fn admin_only(principal: &Principal, action: &'static str) -> Result<(), Status> {
    match principal {
        Principal::Admin => Ok(()),
        Principal::Tenant(tenant) => Err(Error::from(AuthError::AdminOnly {
            action,
            caller: tenant.clone(),
        })
        .into()),
    }
}

/// The one tenant an action that reads or changes tenants' tables is limited to: the
/// caller's own for a tenant (naming another is refused), the one an admin names, or
/// `None` for an admin that names none (every tenant).
pub(super) fn tenant_scope(who: &Principal, requested: &str) -> Result<Option<String>, Status> {
    match (who, requested) {
        (Principal::Admin, "") => Ok(None),
        (who, tenant) => Ok(Some(
            who.resolve_tenant((!tenant.is_empty()).then_some(tenant))
                .map_err(Error::from)?,
        )),
    }
}
