//! Credentials and per-tenant settings: `[[tenants]]` in the file, `--tenant ID=TOKEN` as
//! flags; custom datasets likewise.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{invalid, ConfigError};
use crate::auth::{Credentials, TokenHash};
use crate::datasets::{CustomColumns, Expectations};
use crate::lake::KeySpec;
use crate::tenants::{TenantSettings, TenantState};

#[derive(Debug, Clone, Default)]
pub struct TenantConfig {
    pub id: String,
    pub tokens: Vec<TokenHash>,
    /// What the file sets for the tenant (region, key, quota, rate, ...); these fields
    /// win over the registry's.
    pub settings: TenantSettings,
}

#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    pub admin_tokens: Vec<TokenHash>,
    pub tenants: Vec<TenantConfig>,
}

impl AuthConfig {
    /// The credentials the authenticator checks callers against.
    pub fn credentials(&self) -> Credentials {
        Credentials {
            admin_tokens: self.admin_tokens.clone(),
            tenant_tokens: self
                .tenants
                .iter()
                .map(|t| (t.id.clone(), t.tokens.clone()))
                .collect(),
        }
    }

    /// Adds a tenant (and its credentials), or more credentials to a tenant already known.
    /// A tenant without tokens gets them from `lakeport token issue`.
    pub(super) fn add_tenant(
        &mut self,
        id: &str,
        tokens: Vec<TokenHash>,
    ) -> Result<&mut TenantConfig, ConfigError> {
        let index = match self.tenants.iter().position(|t| t.id == id) {
            Some(index) => index,
            None => {
                self.tenants.push(TenantConfig {
                    id: id.to_string(),
                    ..Default::default()
                });
                self.tenants.len() - 1
            }
        };
        let tenant = &mut self.tenants[index];
        tenant.tokens.extend(tokens);
        Ok(tenant)
    }
}

/// `[[tenants]]` as written in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileTenant {
    id: String,
    token: Option<String>,
    token_sha256: Option<String>,
    #[serde(default)]
    tokens: Vec<String>,
    #[serde(default)]
    tokens_sha256: Vec<String>,
    display_name: Option<String>,
    region: Option<String>,
    encryption: Option<KeySpec>,
    quota: Option<FileQuota>,
    rows_per_second: Option<u64>,
    burst_rows: Option<u64>,
    retention: Option<String>,
    /// Per dataset: a retention over the tenant's own for that dataset.
    dataset_retention: Option<BTreeMap<String, String>>,
    archive_after: Option<String>,
    state: Option<TenantState>,
    /// Per dataset: expectations replacing `[datasets.NAME.quality]` for this tenant.
    quality: Option<BTreeMap<String, Expectations>>,
}

/// `quota = { soft = "50GiB", hard = "60GiB" }`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileQuota {
    #[serde(default, deserialize_with = "super::values::optional_size")]
    soft: Option<usize>,
    #[serde(default, deserialize_with = "super::values::optional_size")]
    hard: Option<usize>,
}

impl FileQuota {
    /// (soft, hard) in bytes, each unset when not written.
    fn limits(quota: Option<FileQuota>) -> (Option<u64>, Option<u64>) {
        let quota = quota.unwrap_or_default();
        (quota.soft.map(|b| b as u64), quota.hard.map(|b| b as u64))
    }
}

/// `[tenant_defaults]`: what every tenant gets unless its own settings say otherwise.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct FileTenantDefaults {
    region: Option<String>,
    quota: Option<FileQuota>,
    rows_per_second: Option<u64>,
    burst_rows: Option<u64>,
    retention: Option<String>,
    archive_after: Option<String>,
}

impl FileTenantDefaults {
    pub(super) fn settings(self) -> TenantSettings {
        let (quota_soft, quota_hard) = FileQuota::limits(self.quota);
        TenantSettings {
            region: self.region,
            quota_soft,
            quota_hard,
            rows_per_second: self.rows_per_second,
            burst_rows: self.burst_rows,
            retention: self.retention,
            archive_after: self.archive_after,
            ..Default::default()
        }
    }
}

impl FileTenant {
    pub(super) fn add_to(self, auth: &mut AuthConfig) -> Result<(), ConfigError> {
        let mut tokens: Vec<TokenHash> = self
            .token
            .iter()
            .chain(self.tokens.iter())
            .map(|t| TokenHash::of_token(t))
            .collect();
        for hash in self.token_sha256.iter().chain(self.tokens_sha256.iter()) {
            tokens.push(TokenHash::from_hex(hash).map_err(|e| invalid("tenants.token_sha256", e))?);
        }
        let (quota_soft, quota_hard) = FileQuota::limits(self.quota);
        let settings = TenantSettings {
            display_name: self.display_name,
            region: self.region,
            encryption: self.encryption,
            quota_soft,
            quota_hard,
            rows_per_second: self.rows_per_second,
            burst_rows: self.burst_rows,
            retention: self.retention,
            dataset_retention: self.dataset_retention,
            archive_after: self.archive_after,
            state: self.state,
            quality: self.quality,
        };
        let tenant = auth.add_tenant(&self.id, tokens)?;
        tenant.settings = settings.over(&tenant.settings);
        Ok(())
    }
}

/// Per-dataset settings: custom datasets carry their columns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatasetConfig {
    pub custom: Option<CustomColumns>,
    /// Compaction's target for this dataset, instead of `maintenance.target_file_size`.
    pub target_file_size: Option<usize>,
    /// `[datasets.NAME.quality]`: the data-quality expectations of every tenant's table.
    pub quality: Expectations,
    /// How long every tenant's table keeps its rows, unless the tenant says otherwise.
    pub retention: Option<String>,
}

/// `[datasets.NAME]` as written in the file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileDataset {
    pub(super) time_column: Option<String>,
    pub(super) app_column: Option<String>,
    /// Shorthand for a store of this URL and a route of this dataset alone.
    pub(super) store: Option<String>,
    #[serde(default, deserialize_with = "super::values::optional_size")]
    pub(super) target_file_size: Option<usize>,
    #[serde(default)]
    pub(super) quality: Expectations,
    pub(super) retention: Option<String>,
}
