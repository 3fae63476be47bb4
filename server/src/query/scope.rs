//! Who a query runs for: the schemas (tenants) it may read and where unqualified names
//! resolve. Always derived from the authenticated caller, never from the SQL.

use crate::auth::Principal;
use crate::names::check_name;

use super::{QueryError, SYSTEM_SCHEMA};

/// Request header an admin sets to query one tenant's tables unqualified.
pub const TENANT_HEADER: &str = "lakeport-tenant";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub principal: Principal,
    /// Schema of unqualified table names: the tenant, or `system` for an admin that named none.
    pub default_schema: String,
}

impl Scope {
    /// A tenant's scope is its own schema; an admin may name a default tenant.
    pub fn new(principal: Principal, requested_tenant: Option<&str>) -> Result<Self, QueryError> {
        let default_schema = match (&principal, requested_tenant) {
            (Principal::Tenant(own), None) => own.clone(),
            (Principal::Tenant(own), Some(t)) if t == own => own.clone(),
            (Principal::Tenant(own), Some(t)) => {
                return Err(QueryError::OtherSchema {
                    schema: t.to_string(),
                    visible: own.clone(),
                })
            }
            (Principal::Admin, Some(t)) => {
                check_name("tenant", t).map_err(|e| QueryError::Sql(e.to_string()))?;
                t.to_string()
            }
            (Principal::Admin, None) => SYSTEM_SCHEMA.to_string(),
        };
        Ok(Self {
            principal,
            default_schema,
        })
    }

    /// The one tenant this scope may read, or `None` for an admin (every tenant).
    pub fn tenant(&self) -> Option<&str> {
        match &self.principal {
            Principal::Tenant(own) => Some(own),
            Principal::Admin => None,
        }
    }

    /// How a ticket names the principal it was issued to.
    pub fn principal_tag(&self) -> String {
        match &self.principal {
            Principal::Admin => "admin".to_string(),
            Principal::Tenant(t) => format!("tenant:{t}"),
        }
    }
}
