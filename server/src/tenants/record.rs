//! What the registry holds per tenant, and how a tenant's effective settings are found:
//! the config's fields over the registry's over `[tenant_defaults]`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::archive_record::{parse_archive_after, ArchiveRecord};
use crate::auth::KeyScope;
use crate::datasets::Expectations;
use crate::lake::retention::parse_retention;
use crate::lake::KeySpec;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TenantState {
    #[default]
    Active,
    /// Writes are refused; queries still read what is there.
    Suspended,
    /// `tenant.delete` began: writes and queries are refused until its data and record are
    /// gone (any replica finishes the job).
    Deleting,
}

impl TenantState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Deleting => "deleting",
        }
    }

    /// A state an admin may set (`deleting` is only entered through `tenant.delete`).
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "active" => Some(Self::Active),
            "suspended" => Some(Self::Suspended),
            _ => None,
        }
    }
}

/// One layer of tenant settings; unset fields fall through to the layer below.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TenantSettings {
    pub display_name: Option<String>,
    /// Residency: the tenant's tables only land in stores of this region.
    pub region: Option<String>,
    pub encryption: Option<KeySpec>,
    /// Bytes above which the tenant is warned about.
    pub quota_soft: Option<u64>,
    /// Bytes at which the tenant's writes are refused.
    pub quota_hard: Option<u64>,
    /// Sustained ingest rate; a stream above it is slowed, not failed.
    pub rows_per_second: Option<u64>,
    /// Rows a tenant may send at once above the rate (default: one second's worth).
    pub burst_rows: Option<u64>,
    /// How long the tenant's data is kept, as written (`400d`, or `forever`).
    pub retention: Option<String>,
    /// Per dataset, a retention over `retention` for that dataset's table.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dataset_retention: Option<BTreeMap<String, String>>,
    /// Idle this long (no write, no query), the tenant is archived: `90d`, or `never`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archive_after: Option<String>,
    pub state: Option<TenantState>,
    /// Data-quality expectations per dataset; a dataset named here replaces the config's
    /// `[datasets.NAME.quality]` for this tenant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality: Option<BTreeMap<String, Expectations>>,
}

impl TenantSettings {
    /// This layer over `below`: each field set here wins.
    pub fn over(&self, below: &TenantSettings) -> TenantSettings {
        TenantSettings {
            display_name: self.display_name.clone().or(below.display_name.clone()),
            region: self.region.clone().or(below.region.clone()),
            encryption: self.encryption.clone().or(below.encryption.clone()),
            quota_soft: self.quota_soft.or(below.quota_soft),
            quota_hard: self.quota_hard.or(below.quota_hard),
            rows_per_second: self.rows_per_second.or(below.rows_per_second),
            burst_rows: self.burst_rows.or(below.burst_rows),
            retention: self.retention.clone().or(below.retention.clone()),
            dataset_retention: self
                .dataset_retention
                .clone()
                .or(below.dataset_retention.clone()),
            archive_after: self.archive_after.clone().or(below.archive_after.clone()),
            state: self.state.or(below.state),
            quality: self.quality.clone().or(below.quality.clone()),
        }
    }

    /// Names of the fields this layer sets (what the config pins).
    pub fn set_fields(&self) -> Vec<&'static str> {
        let mut fields = Vec::new();
        let mut add = |set: bool, name| {
            if set {
                fields.push(name)
            }
        };
        add(self.display_name.is_some(), "display_name");
        add(self.region.is_some(), "region");
        add(self.encryption.is_some(), "encryption");
        add(self.quota_soft.is_some(), "quota_soft");
        add(self.quota_hard.is_some(), "quota_hard");
        add(self.rows_per_second.is_some(), "rows_per_second");
        add(self.burst_rows.is_some(), "burst_rows");
        add(self.retention.is_some(), "retention");
        add(self.dataset_retention.is_some(), "dataset_retention");
        add(self.archive_after.is_some(), "archive_after");
        add(self.state.is_some(), "state");
        add(self.quality.is_some(), "quality");
        fields
    }

    /// Checks values that do not depend on the store: quotas in order, a positive rate,
    /// a retention that parses.
    pub fn check(&self) -> Result<(), String> {
        if let (Some(soft), Some(hard)) = (self.quota_soft, self.quota_hard) {
            if soft > hard {
                return Err(format!(
                    "quota soft ({}) is above hard ({})",
                    bytesize::ByteSize(soft),
                    bytesize::ByteSize(hard)
                ));
            }
        }
        if self.state == Some(TenantState::Deleting) {
            return Err(
                "state \"deleting\" is entered only through `lakeport tenant delete`".into(),
            );
        }
        if self.rows_per_second == Some(0) {
            return Err("rows_per_second must be at least 1 (leave it unset for no limit)".into());
        }
        if self.burst_rows == Some(0) {
            return Err("burst_rows must be at least 1".into());
        }
        for (dataset, expectations) in self.quality.iter().flatten() {
            if let Some(problem) = expectations.problem() {
                return Err(format!("quality of {dataset}: {problem}"));
            }
        }
        if let Some(retention) = &self.retention {
            parse_retention(retention)?;
        }
        for (dataset, retention) in self.dataset_retention.iter().flatten() {
            parse_retention(retention).map_err(|e| format!("{dataset}: {e}"))?;
        }
        if let Some(after) = &self.archive_after {
            parse_archive_after(after)?;
        }
        Ok(())
    }
}

/// An issued token: only its SHA-256 is kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRecord {
    pub id: String,
    /// Hex SHA-256 of the token.
    pub sha256: String,
    #[serde(default)]
    pub description: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// Set for a write-only collector key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<KeyScope>,
}

impl TokenRecord {
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| at > now)
    }
}

/// A tenant as the registry stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantRecord {
    pub id: String,
    #[serde(default)]
    pub settings: TenantSettings,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default)]
    pub tokens: Vec<TokenRecord>,
    /// Its archive, or the archive or restore under way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<ArchiveRecord>,
}

impl TenantRecord {
    pub fn new(id: &str, settings: TenantSettings, now: DateTime<Utc>) -> Self {
        Self {
            id: id.to_string(),
            settings,
            created_at: now,
            updated_at: now,
            tokens: Vec::new(),
            archive: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_layers_win_field_by_field() {
        let config = TenantSettings {
            quota_hard: Some(60),
            ..Default::default()
        };
        let registry = TenantSettings {
            quota_hard: Some(100),
            quota_soft: Some(50),
            ..Default::default()
        };
        let defaults = TenantSettings {
            quota_soft: Some(1),
            rows_per_second: Some(10),
            ..Default::default()
        };
        let effective = config.over(&registry.over(&defaults));
        assert_eq!(effective.quota_hard, Some(60));
        assert_eq!(effective.quota_soft, Some(50));
        assert_eq!(effective.rows_per_second, Some(10));
        assert_eq!(config.set_fields(), vec!["quota_hard"]);
    }

    #[test]
    fn bad_values_are_named() {
        let soft_above_hard = TenantSettings {
            quota_soft: Some(10),
            quota_hard: Some(5),
            ..Default::default()
        };
        assert!(soft_above_hard.check().unwrap_err().contains("above hard"));
        let retention = TenantSettings {
            retention: Some("sometimes".into()),
            ..Default::default()
        };
        assert!(retention.check().unwrap_err().contains("retention"));
    }

    #[test]
    fn a_record_round_trips_through_json() {
        let record = TenantRecord::new(
            "acme",
            TenantSettings {
                encryption: Some(KeySpec::SseKms {
                    key_id: "k".into(),
                    bucket_key: None,
                }),
                state: Some(TenantState::Suspended),
                ..Default::default()
            },
            Utc::now(),
        );
        let text = serde_json::to_string(&record).unwrap();
        assert_eq!(serde_json::from_str::<TenantRecord>(&text).unwrap(), record);
    }
}
