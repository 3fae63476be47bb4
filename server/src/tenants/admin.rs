//! The admin's changes to the registry: create, update, tokens. Each change writes the
//! record's next revision with a conditional create; losing to another replica rereads
//! and applies the change again.

use chrono::{DateTime, Utc};

use super::record::{TenantRecord, TenantSettings, TenantState, TokenRecord};
use super::{Cached, TenantView, Tenants, TenantsError, MAX_WRITE_ATTEMPTS};
use crate::auth::{KeyScope, TokenHash};
use crate::lake::{LakeError, TenantPlacement};
use crate::names::check_name;

const DATASET_RETENTION: &str = "dataset_retention";

/// Fields `tenant.update` can change, as its mask names them.
pub(super) const UPDATABLE: [&str; 12] = [
    "display_name",
    "region",
    "encryption",
    "quota_soft",
    "quota_hard",
    "rows_per_second",
    "burst_rows",
    "retention",
    "dataset_retention",
    "archive_after",
    "state",
    "quality",
];

impl Tenants {
    /// Registers a tenant; its unset settings follow `[tenant_defaults]`.
    pub async fn create(
        &self,
        id: &str,
        settings: TenantSettings,
    ) -> Result<TenantView, TenantsError> {
        check_name("tenant id", id).map_err(|e| TenantsError::Invalid(e.to_string()))?;
        self.check_settings(id, &settings.over(&self.config.defaults))?;
        if self.config.configured.contains_key(id) || self.store.head(id).await?.is_some() {
            return Err(TenantsError::Exists(id.to_string()));
        }
        let record = TenantRecord::new(id, settings, self.clock.now());
        if !self.store.write(&record, 0).await? {
            return Err(TenantsError::Exists(id.to_string()));
        }
        self.cache(0, record.clone());
        Ok(self.view_of(&record))
    }

    /// Sets the fields named in `mask` to their value in `changes` (unset clears them).
    pub async fn update(
        &self,
        id: &str,
        changes: TenantSettings,
        mask: &[String],
    ) -> Result<TenantView, TenantsError> {
        if mask.is_empty() {
            return Err(TenantsError::Invalid(format!(
                "name the fields to change (any of: {})",
                UPDATABLE.join(", ")
            )));
        }
        let pinned = self
            .config
            .configured
            .get(id)
            .map(|c| c.set_fields())
            .unwrap_or_default();
        for field in mask {
            // `dataset_retention.NAME` changes one dataset's entry and leaves the others.
            let whole = field.split_once('.').map_or(field.as_str(), |(f, _)| f);
            if !UPDATABLE.contains(&field.as_str()) && whole != DATASET_RETENTION {
                return Err(TenantsError::Invalid(format!(
                    "unknown field {field:?}; fields are: {}, {DATASET_RETENTION}.DATASET",
                    UPDATABLE.join(", ")
                )));
            }
            if pinned.contains(&whole) {
                return Err(TenantsError::Invalid(format!(
                    "{field} of tenant {id:?} is set in the config file, which wins; change it there"
                )));
            }
        }
        if mask.iter().any(|f| f == "encryption") {
            self.usage_listed().await;
            if self.lake.usage().tenant_bytes(id) > 0 {
                return Err(TenantsError::EncryptionInUse {
                    tenant: id.to_string(),
                });
            }
        }
        let record = self
            .mutate(id, |record| {
                apply_mask(&mut record.settings, &changes, mask);
                self.check_settings(id, &self.view_of(record).settings)
            })
            .await?;
        Ok(self.view_of(&record))
    }

    /// Issues a token for the tenant, or a collector key when `scope` is set; the secret
    /// is returned once and only its SHA-256 is stored.
    pub async fn issue_token(
        &self,
        id: &str,
        expires_at: Option<DateTime<Utc>>,
        description: &str,
        scope: Option<KeyScope>,
    ) -> Result<(TokenRecord, String), TenantsError> {
        let now = self.clock.now();
        if expires_at.is_some_and(|at| at <= now) {
            return Err(TenantsError::Invalid(
                "the expiry is in the past; give a future time or a positive duration".into(),
            ));
        }
        if let Some(scope) = &scope {
            self.check_key_scope(scope)?;
        }
        let prefix = if scope.is_some() { "lpk" } else { "lpt" };
        let token = format!("{prefix}_{}", hex::encode(rand::random::<[u8; 32]>()));
        let issued = TokenRecord {
            id: format!("{:016x}", rand::random::<u64>()),
            sha256: hex::encode(TokenHash::of_token(&token).0),
            description: description.to_string(),
            created_at: now,
            expires_at,
            revoked_at: None,
            scope,
        };
        let added = issued.clone();
        self.mutate(id, move |record| {
            record.tokens.push(added.clone());
            Ok(())
        })
        .await?;
        Ok((issued, token))
    }

    /// Revokes one of the tenant's tokens or keys (again is fine); `keys_only` for a
    /// tenant revoking its own collector keys.
    pub async fn revoke_token(
        &self,
        id: &str,
        token_id: &str,
        keys_only: bool,
    ) -> Result<(), TenantsError> {
        let now = self.clock.now();
        self.mutate(id, |record| {
            let token = record
                .tokens
                .iter_mut()
                .find(|t| t.id == token_id && (t.scope.is_some() || !keys_only))
                .ok_or_else(|| TenantsError::UnknownToken {
                    tenant: id.to_string(),
                    token_id: token_id.to_string(),
                })?;
            token.revoked_at.get_or_insert(now);
            Ok(())
        })
        .await?;
        Ok(())
    }

    /// Applies `change` to the newest revision and writes the next one, rereading when
    /// another replica wrote first.
    pub(super) async fn mutate(
        &self,
        id: &str,
        mut change: impl FnMut(&mut TenantRecord) -> Result<(), TenantsError>,
    ) -> Result<TenantRecord, TenantsError> {
        for _ in 0..MAX_WRITE_ATTEMPTS {
            let head = self.store.head(id).await?;
            let (mut record, revision) = match &head {
                Some(head) => match self.store.read(head).await? {
                    Some(record) => (record, head.revision + 1),
                    None => continue,
                },
                None if self.config.configured.contains_key(id) => (self.stand_in(id), 0),
                None => return Err(TenantsError::Unknown(id.to_string())),
            };
            if record.settings.state == Some(TenantState::Deleting) {
                return Err(LakeError::TenantDeleting(id.to_string()).into());
            }
            change(&mut record)?;
            record.updated_at = self.clock.now();
            if self.store.write(&record, revision).await? {
                self.cache(revision, record.clone());
                return Ok(record);
            }
        }
        Err(TenantsError::Contended(id.to_string(), MAX_WRITE_ATTEMPTS))
    }

    /// Takes a record this replica just wrote, without waiting for the next refresh.
    pub(super) fn cache(&self, revision: u64, record: TenantRecord) {
        {
            let mut records = self.records.write().unwrap_or_else(|p| p.into_inner());
            let newer = records
                .get(&record.id)
                .is_some_and(|c| c.revision > revision);
            if !newer {
                records.insert(record.id.clone(), Cached { revision, record });
            }
        }
        self.put_in_force();
    }

    /// A collector key names the datasets it appends to and the browser origins it serves.
    fn check_key_scope(&self, scope: &KeyScope) -> Result<(), TenantsError> {
        if scope.datasets.is_empty() {
            return Err(TenantsError::Invalid(
                "a collector key needs the datasets it may append to (--datasets)".into(),
            ));
        }
        for dataset in &scope.datasets {
            check_name("dataset", dataset).map_err(|e| TenantsError::Invalid(e.to_string()))?;
        }
        for origin in &scope.origins {
            let parsed = url::Url::parse(origin).ok().filter(|u| {
                matches!(u.scheme(), "http" | "https")
                    && u.host_str().is_some()
                    && u.path() == "/"
                    && u.query().is_none()
            });
            if parsed.is_none() {
                return Err(TenantsError::Invalid(format!(
                    "origin {origin:?} is not a web origin like https://shop.example or http://localhost:8080"
                )));
            }
        }
        Ok(())
    }

    /// Checks effective settings: values, a region some store has, a usable key.
    fn check_settings(&self, id: &str, settings: &TenantSettings) -> Result<(), TenantsError> {
        settings.check().map_err(TenantsError::Invalid)?;
        let key = match &settings.encryption {
            Some(spec) => Some(
                spec.resolve()
                    .map_err(|e| TenantsError::Invalid(format!("encryption: {e}")))?,
            ),
            None => None,
        };
        let placement = TenantPlacement {
            region: settings.region.clone(),
            key,
            sealed: None,
        };
        self.lake
            .check_tenant(id, &placement)
            .map_err(|e| TenantsError::Invalid(e.to_string()))
    }
}

fn apply_mask(settings: &mut TenantSettings, changes: &TenantSettings, mask: &[String]) {
    for field in mask {
        match field.as_str() {
            "display_name" => settings.display_name = changes.display_name.clone(),
            "region" => settings.region = changes.region.clone(),
            "encryption" => settings.encryption = changes.encryption.clone(),
            "quota_soft" => settings.quota_soft = changes.quota_soft,
            "quota_hard" => settings.quota_hard = changes.quota_hard,
            "rows_per_second" => settings.rows_per_second = changes.rows_per_second,
            "burst_rows" => settings.burst_rows = changes.burst_rows,
            "retention" => settings.retention = changes.retention.clone(),
            "archive_after" => settings.archive_after = changes.archive_after.clone(),
            "dataset_retention" => settings.dataset_retention = changes.dataset_retention.clone(),
            "state" => settings.state = changes.state,
            "quality" => settings.quality = changes.quality.clone(),
            other => {
                if let Some(dataset) = other.strip_prefix("dataset_retention.") {
                    let given = changes
                        .dataset_retention
                        .as_ref()
                        .and_then(|m| m.get(dataset).cloned());
                    let mut map = settings.dataset_retention.take().unwrap_or_default();
                    match given {
                        Some(retention) => map.insert(dataset.to_string(), retention),
                        None => map.remove(dataset),
                    };
                    settings.dataset_retention = (!map.is_empty()).then_some(map);
                }
            }
        }
    }
}
