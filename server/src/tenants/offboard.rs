//! Offboarding: `tenant.delete` marks the record `deleting` (writes and queries are refused
//! from then on), deletes every object of the tenant in every store, then its record and
//! with it its tokens. A crash midway leaves the mark; whichever replica reads it next
//! (after a restart, or at its next registry refresh) finishes the job. Each step can run
//! twice without harm, so two replicas finishing one deletion at once is fine.

use std::sync::Arc;

use tracing::{info, warn};

use super::record::TenantState;
use super::{Tenants, TenantsError};
use crate::lake::StoreErased;

impl Tenants {
    /// Deletes the tenant and all its data; what was deleted, per store. Asking again for a
    /// tenant already being deleted finishes that deletion.
    pub async fn delete(&self, id: &str) -> Result<Vec<StoreErased>, TenantsError> {
        if self.config.configured.contains_key(id) {
            return Err(TenantsError::Configured(id.to_string()));
        }
        let deleting = self
            .view(id)
            .is_some_and(|v| v.record.settings.state == Some(TenantState::Deleting));
        if !deleting {
            self.mutate(id, |record| {
                record.settings.state = Some(TenantState::Deleting);
                Ok(())
            })
            .await?;
            info!(tenant = id, "tenant marked for deletion");
        }
        self.running(id, true);
        let finished = self.finish_deletion(id).await;
        self.running(id, false);
        finished
    }

    /// Notes whether this replica is running the deletion of `id` now; false when it was
    /// already (or, when `now` is false, was not) running.
    fn running(&self, id: &str, now: bool) -> bool {
        let mut running = self.deletions.lock().unwrap_or_else(|p| p.into_inner());
        if now {
            running.insert(id.to_string())
        } else {
            running.remove(id)
        }
    }

    async fn finish_deletion(&self, id: &str) -> Result<Vec<StoreErased>, TenantsError> {
        let erased = self.lake.erase_tenant(id).await?;
        self.store.delete_all(id).await?;
        self.forget(id);
        let objects: u64 = erased.iter().map(|e| e.objects).sum();
        let bytes: u64 = erased.iter().map(|e| e.bytes).sum();
        info!(tenant = id, objects, bytes, "tenant deleted");
        Ok(erased)
    }

    /// Drops what this replica holds of a deleted tenant.
    fn forget(&self, id: &str) {
        self.records
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        self.limiters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        self.activity
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .forget(id);
        self.put_in_force();
    }

    /// Finishes, in the background, each deletion the registry shows under way that this
    /// replica is not already running.
    pub(super) fn resume_deletions(self: &Arc<Self>) {
        let pending: Vec<String> = self
            .read_records()
            .iter()
            .filter(|(_, c)| c.record.settings.state == Some(TenantState::Deleting))
            .map(|(id, _)| id.clone())
            .collect();
        for id in pending {
            if !self.running(&id, true) {
                continue;
            }
            let tenants = self.clone();
            tokio::spawn(async move {
                info!(tenant = %id, "finishing a deletion left under way");
                if let Err(e) = tenants.finish_deletion(&id).await {
                    warn!(tenant = %id, error = %e, "deletion not finished; tried again after the next registry refresh");
                }
                tenants.running(&id, false);
            });
        }
    }
}
