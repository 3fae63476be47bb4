//! What starts an archive or a restore besides an admin: a write or query for an archived
//! tenant (`wake`, which waits up to `restore_wait`), a tenant idle for its
//! `archive_after`, and a run the registry shows under way that nobody moves on.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tracing::{info, warn};

use super::archival::{Goal, TAKE_OVER_AFTER};
use super::archive_record::{idle_for, parse_archive_after, ArchivePhase};
use super::record::TenantState;
use super::{Tenants, TenantsError};

/// How often a call waiting for a restore looks at the record this replica holds (a
/// restore run here updates it as it goes).
const WAIT_STEP: Duration = Duration::from_millis(20);

/// How often the record is read from the registry while a restore runs on another replica.
const LOOK_EVERY: Duration = Duration::from_millis(200);

/// When a waiting call last read each tenant's record.
pub(super) type Looked = std::sync::Mutex<std::collections::HashMap<String, Instant>>;

impl Tenants {
    /// Makes sure the tenant's tables are live before a write or query: calls off an
    /// archive still copying, restores an archived tenant, and waits up to `restore_wait`
    /// for that; after that the caller is told to come back (the restore goes on).
    pub async fn wake(self: &Arc<Self>, id: &str) -> Result<(), TenantsError> {
        if self.archive_of(id).is_none() {
            return Ok(());
        }
        let deadline = Instant::now() + self.config.restore_wait;
        loop {
            match self.archive_of(id).map(|a| (a.phase, a.phase_at)) {
                None | Some((ArchivePhase::RemovingArchive, _)) => return Ok(()),
                Some((ArchivePhase::Copying, _)) => {
                    self.call_off(id).await?;
                    // Called off, or moved on elsewhere: either way, the record as it is.
                    self.reread(id).await?;
                    continue;
                }
                Some((ArchivePhase::Archived, _)) => self.in_background(id, Goal::Live),
                // A run that has not moved for as long as a caller waits is taken over
                // (its replica may be gone); taking over a live one only repeats its work.
                Some((_, phase_at)) => {
                    if self.unmoved_for(phase_at, self.config.restore_wait) {
                        self.in_background(id, Goal::Live);
                    }
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(TenantsError::Restoring {
                    tenant: id.to_string(),
                    retry_after: self.config.restore_wait.as_secs().max(1),
                });
            }
            tokio::time::sleep(WAIT_STEP.min(deadline - now)).await;
            if !self.runs(id) && self.due_for_a_look(id) {
                // Another replica runs the restore: see how far it got.
                let _ = self.reread(id).await;
            }
        }
    }

    /// Archives, in the background, each tenant idle for its `archive_after`; judged from
    /// the last write and query every replica noted, read again from the registry first.
    pub(super) fn archive_idle(self: &Arc<Self>) {
        if !*self.activity_loaded.borrow() {
            return;
        }
        let now = self.clock.now();
        for view in self.views() {
            let Some(after) = view
                .settings
                .archive_after
                .as_deref()
                .and_then(|text| parse_archive_after(text).ok().flatten())
            else {
                continue;
            };
            let id = view.record.id.clone();
            if view.record.archive.is_some()
                || view.settings.state == Some(TenantState::Deleting)
                || self.runs(&id)
            {
                continue;
            }
            let updated_at = view.record.updated_at;
            let last_active = move |seen: super::Activity| {
                seen.last_active()
                    .map_or(updated_at, |at| at.max(updated_at))
            };
            if !idle_for(last_active(self.noted_activity(&id)), after, now) {
                continue;
            }
            let tenants = self.clone();
            tokio::spawn(async move {
                let stored = match tenants.store.read_activity(&id).await {
                    Ok(stored) => stored,
                    Err(e) => {
                        warn!(tenant = %id, error = %e, "activity unreadable; not archiving");
                        return;
                    }
                };
                let seen = tenants.noted_activity(&id).merge(stored);
                if !idle_for(last_active(seen), after, tenants.clock.now()) {
                    return;
                }
                info!(tenant = %id, archive_after = ?after, "tenant idle; archiving");
                if let Err(e) = tenants.archive(&id).await {
                    warn!(tenant = %id, error = %e, "archive of an idle tenant not done");
                }
            });
        }
    }

    /// Finishes, in the background, each archive or restore the registry shows under way
    /// that no replica moved on lately (at a start: every one).
    pub(super) fn resume_archival(self: &Arc<Self>, at_start: bool) {
        let pending: Vec<(String, ArchivePhase)> = self
            .read_records()
            .iter()
            .filter_map(|(id, c)| c.record.archive.as_ref().map(|a| (id, a)))
            .filter(|(_, a)| a.phase != ArchivePhase::Archived)
            .filter(|(_, a)| at_start || self.unmoved_for(a.phase_at, TAKE_OVER_AFTER))
            .map(|(id, a)| (id.clone(), a.phase))
            .collect();
        for (id, phase) in pending {
            let goal = match phase {
                ArchivePhase::Copying | ArchivePhase::RemovingLive => Goal::Archived,
                _ => Goal::Live,
            };
            info!(tenant = %id, phase = ?phase, "finishing an archive or restore left under way");
            self.in_background(&id, goal);
        }
    }

    /// Runs the tenant's archive or restore in a task of its own, unless this replica
    /// runs one already (the lock is taken here, so two calls never start two).
    fn in_background(self: &Arc<Self>, id: &str, goal: Goal) {
        let Ok(running) = self.run_lock(id).try_lock_owned() else {
            return;
        };
        let (tenants, id) = (self.clone(), id.to_string());
        tokio::spawn(async move {
            let _running = running;
            let done = match goal {
                Goal::Live => tenants.restore_held(&id).await,
                Goal::Archived => tenants.run_held(&id, goal).await.map(|_| ()),
            };
            if let Err(e) = done {
                warn!(tenant = %id, error = %e, "archive or restore not finished; taken up again later");
            }
        });
    }

    /// True when no caller waiting for the tenant's restore read its record in the last
    /// `LOOK_EVERY`: however many calls wait, the registry is read a few times a second.
    fn due_for_a_look(&self, id: &str) -> bool {
        let now = Instant::now();
        let mut looked = self.looked.lock().unwrap_or_else(|p| p.into_inner());
        looked.retain(|_, at| now.duration_since(*at) < LOOK_EVERY * 50);
        match looked.get(id) {
            Some(at) if now.duration_since(*at) < LOOK_EVERY => false,
            _ => {
                looked.insert(id.to_string(), now);
                true
            }
        }
    }
}
