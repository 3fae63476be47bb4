//! Archival of inactive tenants and their restore on first touch. An archive copies the
//! tenant's live objects to each store's archive store, records the archive copy as the
//! tenant's, and only then deletes the live copy; a restore does the same the other way.
//! Each step is taken through a conditional write of the registry record
//! (`archive_record`), so replicas agree on which copy is the tenant's, any replica can
//! finish a run cut short, and two replicas running one run at once only repeat each
//! other's idempotent work. Between steps the run waits until every replica has read the
//! new phase (`registry_refresh`, twice over): none still writes to the copy being deleted.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use super::archive_record::{
    add_stores, advance, begin_archive, begin_restore, call_off, finish_restore, ArchivePhase,
    ArchiveRecord, StepRefused,
};
use super::record::{TenantRecord, TenantState};
use super::{metrics, Tenants, TenantsError};

/// A run no replica has moved on for this long is taken over by the next replica that
/// looks (its runner died); a run still alive meanwhile only repeats idempotent work.
pub(super) const TAKE_OVER_AFTER: Duration = Duration::from_secs(300);

/// Where a run stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Goal {
    Archived,
    Live,
}

/// Per-tenant runs of this replica: a run holds its tenant's lock.
pub(super) type Runs = std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>;

impl Tenants {
    /// Archives the tenant now and returns its archive once the live copy is gone.
    pub async fn archive(self: &Arc<Self>, id: &str) -> Result<ArchiveRecord, TenantsError> {
        let job = uuid::Uuid::new_v4().to_string();
        let now = self.clock.now();
        self.mutate(id, |record| {
            check_state(record)?;
            begin_archive(&mut record.archive, &job, now).map_err(|r| refused(id, r))
        })
        .await?;
        info!(tenant = id, job, "archive started");
        // What an earlier archive called off left in the archive stores is nobody's.
        let archived = match self.lake.remove_archive_copy(id).await {
            Ok(()) => self.run(id, Goal::Archived).await,
            Err(e) => Err(e.into()),
        };
        metrics::archive_finished(archived.is_ok());
        match archived {
            Ok(archive) => archive.ok_or_else(|| refused(id, StepRefused::Lost)),
            Err(e) => {
                // While it is copying, the live copy is whole: calling it off loses nothing,
                // and the tenant is not left half-way until someone touches it.
                if self.archive_of(id).is_some_and(|a| a.job == job) {
                    if let Err(off) = self.call_off(id).await {
                        warn!(tenant = id, error = %off, "failed archive not called off");
                    }
                }
                Err(e)
            }
        }
    }

    /// Restores an archived tenant now (or joins the restore under way) and returns once
    /// its tables are live again.
    pub async fn restore(self: &Arc<Self>, id: &str) -> Result<(), TenantsError> {
        let _running = self.run_lock(id).lock_owned().await;
        self.restore_held(id).await
    }

    /// `restore`, with the tenant's run lock held by the caller.
    pub(super) async fn restore_held(self: &Arc<Self>, id: &str) -> Result<(), TenantsError> {
        let record = self.reread(id).await?;
        let record = record.ok_or_else(|| TenantsError::Unknown(id.to_string()))?;
        if record.archive.is_none() {
            return Err(refused(id, StepRefused::NotArchived));
        }
        let restored = self.run_held(id, Goal::Live).await.map(|_| ());
        metrics::restore_finished(restored.is_ok());
        restored
    }

    /// Moves an archived tenant to `restoring` (a restore another replica began is fine).
    async fn begin_restore(&self, id: &str) -> Result<(), TenantsError> {
        let job = uuid::Uuid::new_v4().to_string();
        let now = self.clock.now();
        let began = self
            .mutate(id, |record| {
                begin_restore(&mut record.archive, &job, now).map_err(|r| refused(id, r))
            })
            .await;
        match began {
            Ok(_) => info!(tenant = id, job, "restore started"),
            Err(TenantsError::Archival {
                refused: StepRefused::Busy(ArchivePhase::Restoring | ArchivePhase::RemovingArchive),
                ..
            }) => {}
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// Takes the run the record shows from step to step until `goal`; the archive when it
    /// stops at one.
    async fn run(
        self: &Arc<Self>,
        id: &str,
        goal: Goal,
    ) -> Result<Option<ArchiveRecord>, TenantsError> {
        let _running = self.run_lock(id).lock_owned().await;
        self.run_held(id, goal).await
    }

    /// `run`, with the tenant's run lock held by the caller.
    pub(super) async fn run_held(
        self: &Arc<Self>,
        id: &str,
        goal: Goal,
    ) -> Result<Option<ArchiveRecord>, TenantsError> {
        loop {
            let Some(record) = self.reread(id).await? else {
                return Err(TenantsError::Unknown(id.to_string()));
            };
            check_state(&record)?;
            let Some(archive) = record.archive else {
                return match goal {
                    Goal::Live => Ok(None),
                    Goal::Archived => Err(refused(id, StepRefused::Lost)),
                };
            };
            match archive.phase {
                ArchivePhase::Copying => self.copy_out(id, &archive).await?,
                ArchivePhase::RemovingLive => self.remove_live(id, &archive).await?,
                ArchivePhase::Archived if goal == Goal::Archived => return Ok(Some(archive)),
                ArchivePhase::Archived => self.begin_restore(id).await?,
                ArchivePhase::Restoring => self.copy_back(id, &archive).await?,
                ArchivePhase::RemovingArchive => self.remove_archive(id, &archive).await?,
            }
        }
    }

    async fn copy_out(&self, id: &str, archive: &ArchiveRecord) -> Result<(), TenantsError> {
        let (stores, copied) = self.lake.copy_to_archive(id).await?;
        metrics::bytes_moved("to_archive", copied.bytes);
        self.let_replicas_see(archive).await;
        self.step(id, archive, ArchivePhase::RemovingLive, |record| {
            add_stores(&mut record.stores, stores.clone())
        })
        .await
    }

    async fn remove_live(&self, id: &str, archive: &ArchiveRecord) -> Result<(), TenantsError> {
        self.let_replicas_see(archive).await;
        // A commit that was under way when the phase began is in the archive too.
        let (stores, copied) = self.lake.copy_to_archive(id).await?;
        metrics::bytes_moved("to_archive", copied.bytes);
        let mut all = archive.stores.clone();
        add_stores(&mut all, stores);
        if all != archive.stores {
            self.mutate(id, |record| {
                let current = record.archive.as_mut().filter(|a| a.job == archive.job);
                let current = current.ok_or_else(|| refused(id, StepRefused::Lost))?;
                current.stores = all.clone();
                Ok(())
            })
            .await?;
        }
        self.lake.remove_hot_copy(id, &all).await?;
        self.step(id, archive, ArchivePhase::Archived, |_| {})
            .await?;
        info!(tenant = id, bytes = archive.bytes(), location = %archive.location(), "tenant archived");
        Ok(())
    }

    async fn copy_back(&self, id: &str, archive: &ArchiveRecord) -> Result<(), TenantsError> {
        let copied = self.lake.copy_from_archive(id, &archive.stores).await?;
        metrics::bytes_moved("from_archive", copied.bytes);
        self.step(id, archive, ArchivePhase::RemovingArchive, |_| {})
            .await?;
        info!(tenant = id, bytes = archive.bytes(), "tenant restored");
        // Its usage was forgotten with the live copy; quotas count it again from now.
        if let Err(e) = self.lake.reconcile_tenant(id, self.clock.now()).await {
            warn!(tenant = id, error = %e, "restored tenant's usage not listed; the next usage reconcile counts it");
        }
        Ok(())
    }

    async fn remove_archive(&self, id: &str, archive: &ArchiveRecord) -> Result<(), TenantsError> {
        self.lake.remove_archive_copy(id).await?;
        self.mutate(id, |record| {
            finish_restore(&mut record.archive, &archive.job).map_err(|r| refused(id, r))
        })
        .await?;
        Ok(())
    }

    /// Moves the run on to `to`, applying `also` to the record's archive.
    async fn step(
        &self,
        id: &str,
        archive: &ArchiveRecord,
        to: ArchivePhase,
        also: impl Fn(&mut ArchiveRecord),
    ) -> Result<(), TenantsError> {
        let now = self.clock.now();
        self.mutate(id, |record| {
            advance(&mut record.archive, &archive.job, archive.phase, to, now)
                .map_err(|r| refused(id, r))?;
            if let Some(current) = record.archive.as_mut() {
                also(current);
            }
            Ok(())
        })
        .await?;
        Ok(())
    }

    /// Calls off an archive still copying; a later phase is left to run.
    pub(super) async fn call_off(&self, id: &str) -> Result<(), TenantsError> {
        let called_off = self
            .mutate(id, |record| {
                if call_off(&mut record.archive) {
                    Ok(())
                } else {
                    Err(refused(id, StepRefused::Lost))
                }
            })
            .await;
        match called_off {
            Ok(_) => {
                info!(tenant = id, "archive called off: the tenant was used");
                Ok(())
            }
            Err(TenantsError::Archival {
                refused: StepRefused::Lost,
                ..
            }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Waits until every replica has read the phase `archive` is in: two registry
    /// refreshes after it began.
    async fn let_replicas_see(&self, archive: &ArchiveRecord) {
        let grace = self.config.registry_refresh * 2;
        let since = (self.clock.now() - archive.phase_at)
            .to_std()
            .unwrap_or_default();
        tokio::time::sleep(grace.saturating_sub(since)).await;
    }

    pub(super) fn unmoved_for(
        &self,
        phase_at: chrono::DateTime<chrono::Utc>,
        long: Duration,
    ) -> bool {
        (self.clock.now() - phase_at)
            .to_std()
            .is_ok_and(|age| age >= long)
    }

    pub(super) fn archive_of(&self, id: &str) -> Option<ArchiveRecord> {
        self.read_records()
            .get(id)
            .and_then(|c| c.record.archive.clone())
    }

    pub(super) fn run_lock(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        runs.retain(|_, lock| Arc::strong_count(lock) > 1);
        runs.entry(id.to_string()).or_default().clone()
    }

    /// True while this replica runs an archive or restore of the tenant.
    pub(super) fn runs(&self, id: &str) -> bool {
        let runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        runs.get(id).is_some_and(|lock| lock.try_lock().is_err())
    }

    /// Reads the tenant's newest record from the registry and takes it.
    pub(super) async fn reread(&self, id: &str) -> Result<Option<TenantRecord>, TenantsError> {
        let Some(head) = self.store.head(id).await? else {
            return Ok(None);
        };
        let Some(record) = self.store.read(&head).await? else {
            return Ok(self.read_records().get(id).map(|c| c.record.clone()));
        };
        self.cache(head.revision, record.clone());
        Ok(Some(record))
    }
}

fn check_state(record: &TenantRecord) -> Result<(), TenantsError> {
    if record.settings.state == Some(TenantState::Deleting) {
        return Err(crate::lake::LakeError::TenantDeleting(record.id.clone()).into());
    }
    Ok(())
}

fn refused(id: &str, refused: StepRefused) -> TenantsError {
    TenantsError::Archival {
        tenant: id.to_string(),
        refused,
    }
}
