//! Offboarding at the floor: every object under a tenant's `tenant_id=<t>/` prefix, in
//! every store (routes change, so an old store may still hold tables), is deleted, and the
//! lake forgets the tenant's open tables and usage.

use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStore;

use super::{Lake, LakeError, Store, StoreKind};
use crate::names::check_name;

/// Listings of a prefix until it is empty: a commit already under way when deletion began
/// may land one more object after the first listing.
const PASSES: usize = 3;

/// What was deleted from one store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreErased {
    pub store: String,
    pub objects: u64,
    pub bytes: u64,
}

impl Lake {
    /// Deletes every object of `tenant` in every store; what went, per store. Fails (and
    /// can be run again) when a store cannot be reached.
    pub async fn erase_tenant(&self, tenant: &str) -> Result<Vec<StoreErased>, LakeError> {
        check_name("tenant", tenant).map_err(|e| LakeError::BadLocation(e.to_string()))?;
        self.registry.forget_tenant(tenant);
        let mut erased = Vec::new();
        for store in self.placement.stores() {
            self.check_reachable(store)?;
            erased.push(store.erase_tenant(tenant).await?);
        }
        self.registry.forget_tenant(tenant);
        self.usage.forget_tenant(tenant);
        Ok(erased)
    }
}

impl Store {
    pub(super) async fn erase_tenant(&self, tenant: &str) -> Result<StoreErased, LakeError> {
        let client = self.client(None)?;
        let prefix = self.root_path().join(format!("tenant_id={tenant}"));
        let mut erased = StoreErased {
            store: self.name.clone(),
            ..Default::default()
        };
        for _ in 0..PASSES {
            let (objects, bytes) = self.delete_under(client.as_ref(), &prefix).await?;
            if objects == 0 {
                break;
            }
            erased.objects += objects;
            erased.bytes += bytes;
        }
        if self.kind == StoreKind::Local {
            // A file system keeps the emptied directories, which would still list the tenant.
            let dir = self.root.join(&format!("tenant_id={tenant}/")).ok();
            if let Some(dir) = dir.and_then(|url| url.to_file_path().ok()) {
                match std::fs::remove_dir_all(&dir) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(LakeError::BadLocation(format!("{}: {e}", dir.display())))
                    }
                }
            }
        }
        Ok(erased)
    }

    /// Lists `prefix` and deletes what it holds: how many objects and bytes.
    async fn delete_under(
        &self,
        client: &dyn ObjectStore,
        prefix: &object_store::path::Path,
    ) -> Result<(u64, u64), LakeError> {
        let objects: Vec<_> = client
            .list(Some(prefix))
            .try_collect()
            .await
            .map_err(|e| LakeError::from(e).in_store(&self.name))?;
        let bytes = objects.iter().map(|o| o.size).sum();
        let locations: Vec<_> = objects.iter().map(|o| Ok(o.location.clone())).collect();
        let locations = futures::stream::iter(locations);
        let results: Vec<_> = client.delete_stream(locations.boxed()).collect().await;
        for result in results {
            match result {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(LakeError::from(e).in_store(&self.name)),
            }
        }
        Ok((objects.len() as u64, bytes))
    }
}
