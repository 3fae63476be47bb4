//! Moving a tenant's objects between each store and its archive store (`archive_for`):
//! the copies (each checked in a listing of the target), and the deletions of the copy
//! that is no longer the tenant's. Which copy is the tenant's, and when each step may run,
//! is the registry's business (`tenants::archival`); each step can run again after a crash.

use futures::TryStreamExt;
use object_store::path::Path;
use serde::{Deserialize, Serialize};

use super::copy::{copy_all, Copied, CopyEnds, CopyItem};
use super::{Lake, LakeError, Store};
use crate::names::check_name;

/// Where one store's share of an archived tenant went, and how much it was.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchivedStore {
    /// The store its tables live in.
    pub store: String,
    /// The archive store holding them meanwhile.
    pub archive: String,
    pub objects: u64,
    pub bytes: u64,
}

/// Which way a copy goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    ToArchive,
    FromArchive,
}

impl Lake {
    /// Copies the tenant's objects in every store that holds any into that store's
    /// archive store, and checks each copy; where they went and how much, and what was
    /// written now. Run again, it copies only what is missing or differs in size.
    pub async fn copy_to_archive(
        &self,
        tenant: &str,
    ) -> Result<(Vec<ArchivedStore>, Copied), LakeError> {
        check_name("tenant", tenant).map_err(|e| LakeError::BadLocation(e.to_string()))?;
        let mut archived = Vec::new();
        let mut copied = Copied::default();
        for hot in self.placement.hot_stores() {
            self.check_reachable(hot)?;
            let objects = list_tenant(hot, tenant).await?;
            if objects.is_empty() {
                continue;
            }
            let archive =
                self.placement
                    .archive_of(&hot.name)
                    .ok_or_else(|| LakeError::NoArchiveStore {
                        store: hot.name.clone(),
                        tenant: tenant.to_string(),
                    })?;
            self.check_reachable(archive)?;
            let now = self
                .copy_between(tenant, hot, archive, &objects, Direction::ToArchive)
                .await?;
            copied.objects += now.objects;
            copied.bytes += now.bytes;
            archived.push(ArchivedStore {
                store: hot.name.clone(),
                archive: archive.name.clone(),
                objects: objects.len() as u64,
                bytes: objects.iter().map(|o| o.size).sum(),
            });
        }
        Ok((archived, copied))
    }

    /// Copies the tenant's archived objects back to the stores they came from, and checks
    /// each copy; what was written now.
    pub async fn copy_from_archive(
        &self,
        tenant: &str,
        archived: &[ArchivedStore],
    ) -> Result<Copied, LakeError> {
        check_name("tenant", tenant).map_err(|e| LakeError::BadLocation(e.to_string()))?;
        let mut copied = Copied::default();
        for entry in archived {
            let (hot, archive) = self.pair(entry)?;
            let objects = list_tenant(archive, tenant).await?;
            if objects.is_empty() && entry.objects > 0 {
                // Never record a restore of nothing: the tenant stays archived, and says so.
                return Err(LakeError::Internal(format!(
                    "the archive copy of tenant {tenant:?} in store {} is gone ({} objects were recorded); it stays archived",
                    archive.name, entry.objects
                )));
            }
            let now = self
                .copy_between(tenant, archive, hot, &objects, Direction::FromArchive)
                .await?;
            copied.objects += now.objects;
            copied.bytes += now.bytes;
        }
        Ok(copied)
    }

    /// Deletes the tenant's objects from the stores it was archived out of (once the
    /// archive copy is the tenant's).
    pub async fn remove_hot_copy(
        &self,
        tenant: &str,
        archived: &[ArchivedStore],
    ) -> Result<(), LakeError> {
        self.registry.forget_tenant(tenant);
        for entry in archived {
            let (hot, _) = self.pair(entry)?;
            hot.erase_tenant(tenant).await?;
        }
        self.usage.forget_tenant(tenant);
        Ok(())
    }

    /// Deletes the tenant's objects from every archive store (once the live copy is the
    /// tenant's again, or before a new archive copy is made).
    pub async fn remove_archive_copy(&self, tenant: &str) -> Result<(), LakeError> {
        check_name("tenant", tenant).map_err(|e| LakeError::BadLocation(e.to_string()))?;
        for archive in self.placement.stores().filter(|s| s.archive_for.is_some()) {
            self.check_reachable(archive)?;
            archive.erase_tenant(tenant).await?;
        }
        Ok(())
    }

    fn pair(
        &self,
        entry: &ArchivedStore,
    ) -> Result<(&std::sync::Arc<Store>, &std::sync::Arc<Store>), LakeError> {
        let find = |name: &str| {
            self.placement.store(name).ok_or_else(|| LakeError::StoreConfig {
                store: name.to_string(),
                message: "an archived tenant's data is recorded in this store, which is no longer configured; configure it again to restore the tenant".into(),
            })
        };
        let (hot, archive) = (find(&entry.store)?, find(&entry.archive)?);
        self.check_reachable(hot)?;
        self.check_reachable(archive)?;
        Ok((hot, archive))
    }

    /// Refuses a store unreachable at startup: a tenant's data cannot be moved or deleted
    /// there until a restart reaches it (the job then finishes on its own).
    pub(super) fn check_reachable(&self, store: &Store) -> Result<(), LakeError> {
        match self.unreachable.get(&store.name) {
            Some(reason) => Err(LakeError::StoreUnreachable {
                store: store.name.clone(),
                reason: format!(
                    "{reason} (at startup; after a restart that reaches it, the job finishes)"
                ),
            }),
            None => Ok(()),
        }
    }

    /// Copies `objects` (listed under the tenant's prefix in `from`) to the same relative
    /// paths in `to`: the data first, then each table's log, so a copy cut short never has
    /// a log naming a file it lacks.
    async fn copy_between(
        &self,
        tenant: &str,
        from: &Store,
        to: &Store,
        objects: &[object_store::ObjectMeta],
        direction: Direction,
    ) -> Result<Copied, LakeError> {
        let key = self.tenant(tenant).key;
        let attributes = match direction {
            Direction::ToArchive => to.copy_attributes(),
            Direction::FromArchive => Default::default(),
        };
        let ends = CopyEnds {
            source: from.client(key.as_ref())?,
            target: to.client(key.as_ref())?,
            server_side: attributes.is_empty() && from.shares_client_with(to),
            attributes,
        };
        let (from_root, to_root) = (from.root_path(), to.root_path());
        let target_prefix = to_root.clone().join(format!("tenant_id={tenant}"));
        let skip = from_root.parts().count();
        let items: Vec<(bool, CopyItem)> = objects
            .iter()
            .map(|meta| {
                let relative: Vec<_> = meta.location.parts().skip(skip).collect();
                let is_log = relative.iter().any(|p| p.as_ref() == "_delta_log");
                let to = relative
                    .into_iter()
                    .fold(to_root.clone(), |path, part| path.join(part));
                let item = CopyItem {
                    from: meta.location.clone(),
                    to,
                    size: meta.size,
                    always: meta.location.filename() == Some("_last_checkpoint"),
                };
                (is_log, item)
            })
            .collect();
        let (logs, data): (Vec<_>, Vec<_>) = items.into_iter().partition(|(is_log, _)| *is_log);
        let wave = |items: Vec<(bool, CopyItem)>| items.into_iter().map(|(_, item)| item).collect();
        copy_all(&ends, &[wave(data), wave(logs)], &target_prefix)
            .await
            .map_err(|e| e.in_store(&to.name))
    }
}

/// Every object under `<root>/tenant_id=<tenant>/` of a store.
async fn list_tenant(
    store: &Store,
    tenant: &str,
) -> Result<Vec<object_store::ObjectMeta>, LakeError> {
    let prefix: Path = store.root_path().join(format!("tenant_id={tenant}"));
    store
        .client(None)?
        .list(Some(&prefix))
        .try_collect()
        .await
        .map_err(|e| LakeError::from(e).in_store(&store.name))
}
