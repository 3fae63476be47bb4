//! A tenant's archival as the registry records it, and the rule for each step: which
//! phase may follow which, for which run (`job`). Every step is a conditional write of the
//! record that applies one of these functions, so two replicas never disagree about which
//! copy is the tenant's: the live one until the phase is `removing_live`, the archive copy
//! from then until `removing_archive`. Pure: no I/O.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::lake::{ArchivedStore, Sealed};

/// Where an archive or a restore is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArchivePhase {
    /// The live copy is being copied to the archive store; the tenant is still live, and
    /// a write or query calls the archive off.
    Copying,
    /// The archive copy is complete and the tenant's: the live copy is being deleted.
    RemovingLive,
    /// Only the archive copy exists.
    Archived,
    /// The archive copy is being copied back.
    Restoring,
    /// The live copy is back and the tenant's: the archive copy is being deleted.
    RemovingArchive,
}

impl ArchivePhase {
    /// Whether the tenant's live tables are closed in this phase.
    pub fn sealed(self) -> Option<Sealed> {
        match self {
            Self::Copying | Self::RemovingArchive => None,
            Self::RemovingLive | Self::Archived | Self::Restoring => Some(Sealed::Archived),
        }
    }

    /// The tenant's state as `system.tenants` shows it (`None`: its own state).
    pub fn shown_state(self) -> Option<&'static str> {
        match self {
            Self::Copying | Self::RemovingLive => Some("archiving"),
            Self::Archived => Some("archived"),
            Self::Restoring => Some("restoring"),
            Self::RemovingArchive => None,
        }
    }
}

/// The registry's note of a tenant's archive or restore under way, or of its archive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveRecord {
    /// The run (a new one for each archive and each restore).
    pub job: String,
    pub phase: ArchivePhase,
    /// When the phase began.
    pub phase_at: DateTime<Utc>,
    /// When the live copy was gone (the phase reached `archived`).
    pub archived_at: Option<DateTime<Utc>>,
    /// Where each store's share went.
    #[serde(default)]
    pub stores: Vec<ArchivedStore>,
}

impl ArchiveRecord {
    pub fn bytes(&self) -> u64 {
        self.stores.iter().map(|s| s.bytes).sum()
    }

    /// `archive:name` of each archive store, as `system.tenants` shows the location.
    pub fn location(&self) -> String {
        let mut names: Vec<&str> = self.stores.iter().map(|s| s.archive.as_str()).collect();
        names.dedup();
        names.join(",")
    }
}

/// Why a step may not be taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepRefused {
    /// Another archive or restore is under way (or the tenant is archived): its phase.
    Busy(ArchivePhase),
    /// The tenant is not archived (nothing to restore).
    NotArchived,
    /// The run was overtaken: called off, or finished by another replica.
    Lost,
}

/// Starts an archive: only a tenant with none under way.
pub fn begin_archive(
    archive: &mut Option<ArchiveRecord>,
    job: &str,
    now: DateTime<Utc>,
) -> Result<(), StepRefused> {
    if let Some(current) = archive {
        return Err(StepRefused::Busy(current.phase));
    }
    *archive = Some(ArchiveRecord {
        job: job.to_string(),
        phase: ArchivePhase::Copying,
        phase_at: now,
        archived_at: None,
        stores: Vec::new(),
    });
    Ok(())
}

/// Starts a restore: only an archived tenant.
pub fn begin_restore(
    archive: &mut Option<ArchiveRecord>,
    job: &str,
    now: DateTime<Utc>,
) -> Result<(), StepRefused> {
    match archive {
        Some(current) if current.phase == ArchivePhase::Archived => {
            current.job = job.to_string();
            current.phase = ArchivePhase::Restoring;
            current.phase_at = now;
            Ok(())
        }
        Some(current) => Err(StepRefused::Busy(current.phase)),
        None => Err(StepRefused::NotArchived),
    }
}

/// Moves run `job` from `from` to `to`. Already at `to` (another replica running the
/// same run got there first) is fine; anything else means the run was overtaken.
pub fn advance(
    archive: &mut Option<ArchiveRecord>,
    job: &str,
    from: ArchivePhase,
    to: ArchivePhase,
    now: DateTime<Utc>,
) -> Result<(), StepRefused> {
    let Some(current) = archive.as_mut().filter(|a| a.job == job) else {
        return Err(StepRefused::Lost);
    };
    if current.phase == to {
        return Ok(());
    }
    if current.phase != from {
        return Err(StepRefused::Lost);
    }
    current.phase = to;
    current.phase_at = now;
    if to == ArchivePhase::Archived {
        current.archived_at = Some(now);
    }
    Ok(())
}

/// Ends run `job` once the archive copy is gone: the tenant is as if never archived.
pub fn finish_restore(archive: &mut Option<ArchiveRecord>, job: &str) -> Result<(), StepRefused> {
    match archive {
        Some(current) if current.job == job && current.phase == ArchivePhase::RemovingArchive => {
            *archive = None;
            Ok(())
        }
        // Finished by another replica running the same restore.
        None => Ok(()),
        Some(_) => Err(StepRefused::Lost),
    }
}

/// Calls off an archive still copying (the tenant was used meanwhile); true when it did.
pub fn call_off(archive: &mut Option<ArchiveRecord>) -> bool {
    if archive
        .as_ref()
        .is_some_and(|a| a.phase == ArchivePhase::Copying)
    {
        *archive = None;
        return true;
    }
    false
}

/// Adds the stores a later listing found to those recorded (a late write to a store the
/// first copy found empty); the counts of the first copy stay.
pub fn add_stores(recorded: &mut Vec<ArchivedStore>, found: Vec<ArchivedStore>) {
    for store in found {
        if !recorded.iter().any(|r| r.store == store.store) {
            recorded.push(store);
        }
    }
}

/// Whether a tenant last active at `last_active` is due for archiving at `now`.
pub fn idle_for(last_active: DateTime<Utc>, after: Duration, now: DateTime<Utc>) -> bool {
    chrono::Duration::from_std(after).is_ok_and(|after| now - last_active >= after)
}

/// `archive_after` as written: a duration of at least an hour, or `never`.
pub fn parse_archive_after(text: &str) -> Result<Option<Duration>, String> {
    if matches!(text.trim(), "never" | "off") {
        return Ok(None);
    }
    let after = humantime::parse_duration(text.trim())
        .map_err(|e| format!("archive_after {text:?}: {e} (write e.g. 90d, or never)"))?;
    if after < Duration::from_secs(3600) {
        return Err(format!("archive_after {text:?} is under an hour"));
    }
    Ok(Some(after))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ArchivePhase::*;

    fn at(minute: u32) -> DateTime<Utc> {
        use chrono::TimeZone;
        Utc.with_ymd_and_hms(2026, 1, 1, 0, minute, 0).unwrap()
    }

    #[test]
    fn an_archive_and_its_restore_go_through_every_phase_once() {
        let mut archive = None;
        begin_archive(&mut archive, "a", at(0)).unwrap();
        assert_eq!(
            begin_archive(&mut archive, "b", at(0)),
            Err(StepRefused::Busy(Copying))
        );
        advance(&mut archive, "a", Copying, RemovingLive, at(1)).unwrap();
        // The same run, on a second replica, finds the step taken: fine.
        advance(&mut archive, "a", Copying, RemovingLive, at(1)).unwrap();
        assert!(
            !call_off(&mut archive),
            "past copying, a touch waits instead"
        );
        advance(&mut archive, "a", RemovingLive, Archived, at(2)).unwrap();
        assert_eq!(archive.as_ref().unwrap().archived_at, Some(at(2)));
        begin_restore(&mut archive, "r", at(3)).unwrap();
        assert_eq!(
            advance(&mut archive, "a", RemovingLive, Archived, at(3)),
            Err(StepRefused::Lost),
            "the archive run is over"
        );
        advance(&mut archive, "r", Restoring, RemovingArchive, at(4)).unwrap();
        finish_restore(&mut archive, "r").unwrap();
        assert_eq!(archive, None);
        assert_eq!(
            begin_restore(&mut archive, "r2", at(5)),
            Err(StepRefused::NotArchived)
        );
    }

    #[test]
    fn a_touch_calls_off_a_copy_and_its_run_is_lost() {
        let mut archive = None;
        begin_archive(&mut archive, "a", at(0)).unwrap();
        assert!(call_off(&mut archive));
        assert_eq!(
            advance(&mut archive, "a", Copying, RemovingLive, at(1)),
            Err(StepRefused::Lost)
        );
        begin_archive(&mut archive, "b", at(2)).unwrap();
        assert_eq!(
            advance(&mut archive, "a", Copying, RemovingLive, at(3)),
            Err(StepRefused::Lost),
            "an old run never moves a new one"
        );
    }

    #[test]
    fn sealed_exactly_while_the_archive_copy_is_the_tenants_or_being_restored() {
        let sealed: Vec<_> = [Copying, RemovingLive, Archived, Restoring, RemovingArchive]
            .map(|p| p.sealed().is_some())
            .to_vec();
        assert_eq!(sealed, [false, true, true, true, false]);
    }

    #[test]
    fn archive_after_and_idleness() {
        assert_eq!(parse_archive_after("never"), Ok(None));
        assert_eq!(
            parse_archive_after("90d"),
            Ok(Some(Duration::from_secs(90 * 86400)))
        );
        assert!(parse_archive_after("5m")
            .unwrap_err()
            .contains("under an hour"));
        assert!(parse_archive_after("soon").is_err());
        let day = Duration::from_secs(86400);
        assert!(!idle_for(at(0), day, at(59)));
        assert!(idle_for(at(0), day, at(0) + chrono::Duration::days(1)));
    }
}
