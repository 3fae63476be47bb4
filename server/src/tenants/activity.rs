//! When each tenant last wrote and queried, shared by every replica and kept across
//! restarts: each replica notes the writes it admits and the queries it runs, and every
//! `activity_flush` writes what moved into the tenant's `activity.json` in the registry,
//! merged with what is stored there (the later of each time wins, so replicas writing at
//! once lose nothing that matters: a time lost to a race is at most one interval old and
//! is written again by the next flush). A start reads every tenant's stored activity in
//! the background.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tracing::warn;

use super::Tenants;

/// Stored activity read at once at a start.
const READS_AT_ONCE: usize = 16;

/// A tenant's last write and last query, as far as anyone has written them down.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Activity {
    pub last_write: Option<DateTime<Utc>>,
    pub last_query: Option<DateTime<Utc>>,
}

impl Activity {
    /// The later of each time.
    pub fn merge(self, other: Activity) -> Activity {
        Activity {
            last_write: self.last_write.max(other.last_write),
            last_query: self.last_query.max(other.last_query),
        }
    }

    /// The later of the two times: when the tenant was last active.
    pub fn last_active(&self) -> Option<DateTime<Utc>> {
        self.last_write.max(self.last_query)
    }
}

/// What this replica knows of each tenant's activity, and which tenants it has news of.
#[derive(Debug, Default)]
pub(super) struct ActivityBook {
    known: HashMap<String, Activity>,
    unsaved: HashSet<String>,
}

impl ActivityBook {
    fn note(&mut self, tenant: &str, seen: Activity) {
        let known = self.known.entry(tenant.to_string()).or_default();
        let merged = known.merge(seen);
        if merged != *known {
            *known = merged;
            self.unsaved.insert(tenant.to_string());
        }
    }

    pub(super) fn forget(&mut self, tenant: &str) {
        self.known.remove(tenant);
        self.unsaved.remove(tenant);
    }
}

impl Tenants {
    fn book(&self) -> std::sync::MutexGuard<'_, ActivityBook> {
        self.activity.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Notes a write admitted for the tenant (archival judges idleness by it: the
    /// listings' last write counts maintenance's rewrites too).
    pub fn record_write(&self, tenant: &str) {
        let seen = Activity {
            last_write: Some(self.clock.now()),
            ..Default::default()
        };
        self.book().note(tenant, seen);
    }

    /// What this replica noted and read of the tenant's writes and queries.
    pub(super) fn noted_activity(&self, tenant: &str) -> Activity {
        self.book().known.get(tenant).copied().unwrap_or_default()
    }

    /// Notes a query by the tenant (for `system.tenants.last_query` and archival).
    pub fn record_query(&self, tenant: &str) {
        let seen = Activity {
            last_query: Some(self.clock.now()),
            ..Default::default()
        };
        self.book().note(tenant, seen);
    }

    /// The tenant's activity as this replica knows it: what it saw and read, and the
    /// commits it counted.
    pub fn activity_of(&self, tenant: &str) -> Activity {
        let known = self.book().known.get(tenant).copied().unwrap_or_default();
        known.merge(self.writes_counted(tenant))
    }

    fn writes_counted(&self, tenant: &str) -> Activity {
        let tables = self.lake.usage().of_tenant(tenant);
        Activity {
            last_write: tables.iter().filter_map(|(_, u)| u.last_write).max(),
            last_query: None,
        }
    }

    /// Writes the activity that moved since the last flush; a tenant whose write fails
    /// is tried again at the next one.
    pub(super) async fn flush_activity(&self) {
        let unsaved: Vec<(String, Activity)> = {
            let mut book = self.book();
            let ids: Vec<String> = book.unsaved.drain().collect();
            ids.into_iter()
                .map(|id| {
                    let known = book.known.get(&id).copied().unwrap_or_default();
                    (id, known)
                })
                .collect()
        };
        for (id, known) in unsaved {
            if !self.is_known(&id) {
                continue;
            }
            let saved = match self.store.read_activity(&id).await {
                Ok(stored) => {
                    let merged = stored.merge(known);
                    self.store
                        .write_activity(&id, &merged)
                        .await
                        .map(|()| merged)
                }
                Err(e) => Err(e),
            };
            match saved {
                Ok(merged) => self.book().note_stored(&id, merged),
                Err(e) => {
                    warn!(tenant = %id, error = %e, "tenant activity not written; tried again at the next flush");
                    self.book().unsaved.insert(id);
                }
            }
        }
    }

    /// Reads every tenant's stored activity (after a start), a few at once.
    pub(super) async fn load_activity(self: &Arc<Self>) {
        let ids: Vec<String> = self.views().into_iter().map(|v| v.record.id).collect();
        let mut reads = futures::stream::iter(ids)
            .map(|id| async move {
                let stored = self.store.read_activity(&id).await;
                (id, stored)
            })
            .buffer_unordered(READS_AT_ONCE);
        while let Some((id, stored)) = reads.next().await {
            match stored {
                Ok(stored) => self.book().note_stored(&id, stored),
                Err(e) => warn!(tenant = %id, error = %e, "stored tenant activity unreadable"),
            }
        }
        self.activity_loaded.send_replace(true);
    }
}

impl ActivityBook {
    /// Takes what the registry holds without marking it as news.
    fn note_stored(&mut self, tenant: &str, stored: Activity) {
        let known = self.known.entry(tenant.to_string()).or_default();
        *known = known.merge(stored);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_later_time_wins_and_only_news_is_unsaved() {
        let at = |h| Some(Utc.with_ymd_and_hms(2026, 1, 1, h, 0, 0).unwrap());
        let mut book = ActivityBook::default();
        book.note_stored(
            "acme",
            Activity {
                last_write: at(5),
                last_query: at(1),
            },
        );
        assert!(book.unsaved.is_empty());
        book.note(
            "acme",
            Activity {
                last_write: at(3),
                last_query: None,
            },
        );
        assert!(book.unsaved.is_empty(), "an older write is no news");
        book.note(
            "acme",
            Activity {
                last_write: None,
                last_query: at(2),
            },
        );
        assert!(book.unsaved.contains("acme"));
        let known = book.known["acme"];
        assert_eq!((known.last_write, known.last_query), (at(5), at(2)));
        assert_eq!(known.last_active(), at(5));
    }
}
