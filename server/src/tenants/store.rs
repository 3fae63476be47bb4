//! Where the registry lives: one object per revision of each tenant's record,
//! `<default store>/_lakeport/tenants/<id>/<revision>.json`, each written with a
//! conditional create, so two replicas changing one tenant at once cannot both win (the
//! loser rereads and tries again). The newest revision is the record; older ones are
//! pruned after a write. Beside them, `activity.json` holds the tenant's last write and
//! query, which change too often to be revisions of the record.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions};

use super::activity::Activity;
use super::record::TenantRecord;
use super::TenantsError;
use crate::lake::{LakeError, Store};

/// A tenant's last write and query, beside its revisions (a name no revision has).
const ACTIVITY_OBJECT: &str = "activity.json";

/// Rewritten with a fresh id after every change of a record (see `generation.rs`); beside
/// the `tenants/` prefix, so no listing of records meets it.
const GENERATION_OBJECT: &str = "tenants.generation";

/// Revisions kept behind the newest (for a reader that listed just before a write).
const KEEP_REVISIONS: usize = 4;

/// The newest revision of one tenant's record, as a listing found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Head {
    pub revision: u64,
    location: Path,
}

#[derive(Debug)]
pub(super) struct RegistryStore {
    client: Arc<dyn ObjectStore>,
    prefix: Path,
    generation: Path,
    store: String,
}

impl RegistryStore {
    pub(super) fn new(store: &Store) -> Result<Self, LakeError> {
        Ok(Self {
            client: store.client(None)?,
            prefix: store.root_path().join("_lakeport").join("tenants"),
            generation: store.root_path().join("_lakeport").join(GENERATION_OBJECT),
            store: store.name.clone(),
        })
    }

    fn store_error(&self, e: object_store::Error) -> TenantsError {
        TenantsError::Lake(LakeError::from(e).in_store(&self.store))
    }

    fn location(&self, id: &str, revision: u64) -> Path {
        self.prefix
            .clone()
            .join(id)
            .join(format!("{revision:020}.json"))
    }

    /// The registry's generation id; `None` before any server wrote one.
    pub(super) async fn generation(&self) -> Result<Option<String>, TenantsError> {
        let got = match self.client.get(&self.generation).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.store_error(e)),
        };
        let bytes = got.bytes().await.map_err(|e| self.store_error(e))?;
        Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
    }

    /// Tells every replica's next refresh that a record changed.
    async fn next_generation(&self) -> Result<(), TenantsError> {
        let id = uuid::Uuid::now_v7().to_string();
        self.client
            .put(&self.generation, id.into_bytes().into())
            .await
            .map_err(|e| self.store_error(e))?;
        Ok(())
    }

    /// Every revision of every tenant: one listing.
    async fn revisions(&self) -> Result<BTreeMap<String, Vec<Head>>, TenantsError> {
        let objects: Vec<_> = self
            .client
            .list(Some(&self.prefix))
            .try_collect()
            .await
            .map_err(|e| self.store_error(e))?;
        let skip = self.prefix.parts().count();
        let mut found: BTreeMap<String, Vec<Head>> = BTreeMap::new();
        for meta in objects {
            let parts: Vec<_> = meta.location.parts().skip(skip).collect();
            let [id, name] = parts.as_slice() else {
                continue;
            };
            let Some(revision) = name
                .as_ref()
                .strip_suffix(".json")
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            found
                .entry(id.as_ref().to_string())
                .or_default()
                .push(Head {
                    revision,
                    location: meta.location,
                });
        }
        for heads in found.values_mut() {
            heads.sort_by_key(|h| h.revision);
        }
        Ok(found)
    }

    /// The newest revision of each tenant's record.
    pub(super) async fn heads(&self) -> Result<BTreeMap<String, Head>, TenantsError> {
        Ok(self
            .revisions()
            .await?
            .into_iter()
            .filter_map(|(id, mut heads)| heads.pop().map(|h| (id, h)))
            .collect())
    }

    /// The objects of one tenant's record (its revisions), one listing.
    async fn objects_of(&self, id: &str) -> Result<Vec<object_store::ObjectMeta>, TenantsError> {
        let prefix = self.prefix.clone().join(id);
        self.client
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|e| self.store_error(e))
    }

    /// The newest revision of one tenant, without listing everything.
    pub(super) async fn head(&self, id: &str) -> Result<Option<Head>, TenantsError> {
        Ok(self
            .objects_of(id)
            .await?
            .into_iter()
            .filter_map(|meta| {
                let revision = meta
                    .location
                    .filename()?
                    .strip_suffix(".json")?
                    .parse()
                    .ok()?;
                Some(Head {
                    revision,
                    location: meta.location,
                })
            })
            .max_by_key(|h| h.revision))
    }

    /// The record of a revision; `None` when it was pruned since it was listed.
    pub(super) async fn read(&self, head: &Head) -> Result<Option<TenantRecord>, TenantsError> {
        let got = match self.client.get(&head.location).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.store_error(e)),
        };
        let bytes = got.bytes().await.map_err(|e| self.store_error(e))?;
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| TenantsError::Corrupt {
                location: head.location.to_string(),
                message: e.to_string(),
            })
    }

    /// Writes `record` as `revision`; `Ok(false)` when another writer took that revision.
    pub(super) async fn write(
        &self,
        record: &TenantRecord,
        revision: u64,
    ) -> Result<bool, TenantsError> {
        let body = serde_json::to_vec_pretty(record).map_err(|e| TenantsError::Corrupt {
            location: self.location(&record.id, revision).to_string(),
            message: e.to_string(),
        })?;
        let create = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .client
            .put_opts(&self.location(&record.id, revision), body.into(), create)
            .await
        {
            Ok(_) => {}
            Err(object_store::Error::AlreadyExists { .. }) => return Ok(false),
            Err(e) => return Err(self.store_error(e)),
        }
        self.prune(&record.id, revision).await;
        self.next_generation().await?;
        Ok(true)
    }

    fn activity_location(&self, id: &str) -> Path {
        self.prefix.clone().join(id).join(ACTIVITY_OBJECT)
    }

    /// The activity stored for a tenant (none yet: the default).
    pub(super) async fn read_activity(&self, id: &str) -> Result<Activity, TenantsError> {
        let location = self.activity_location(id);
        let got = match self.client.get(&location).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(Activity::default()),
            Err(e) => return Err(self.store_error(e)),
        };
        let bytes = got.bytes().await.map_err(|e| self.store_error(e))?;
        serde_json::from_slice(&bytes).map_err(|e| TenantsError::Corrupt {
            location: location.to_string(),
            message: e.to_string(),
        })
    }

    /// Overwrites a tenant's stored activity (the caller merged it with what was there).
    pub(super) async fn write_activity(
        &self,
        id: &str,
        activity: &Activity,
    ) -> Result<(), TenantsError> {
        let location = self.activity_location(id);
        let body = serde_json::to_vec(activity).map_err(|e| TenantsError::Corrupt {
            location: location.to_string(),
            message: e.to_string(),
        })?;
        self.client
            .put(&location, body.into())
            .await
            .map_err(|e| self.store_error(e))?;
        Ok(())
    }

    /// Deletes every revision of a tenant's record (its deletion's last step).
    pub(super) async fn delete_all(&self, id: &str) -> Result<(), TenantsError> {
        for meta in self.objects_of(id).await? {
            match self.client.delete(&meta.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.store_error(e)),
            }
        }
        self.next_generation().await
    }

    /// Deletes revisions older than the kept ones; failures only leave extra objects.
    async fn prune(&self, id: &str, newest: u64) {
        let Some(oldest_kept) = newest.checked_sub(KEEP_REVISIONS as u64) else {
            return;
        };
        for revision in oldest_kept.saturating_sub(KEEP_REVISIONS as u64)..oldest_kept {
            let _ = self.client.delete(&self.location(id, revision)).await;
        }
    }
}
