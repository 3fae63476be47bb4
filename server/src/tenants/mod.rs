//! Tenants as managed objects: the registry every replica shares (config tenants seeded
//! into it), the tokens it issues, each tenant's usage against its quota, and its ingest
//! rate. Sits beside ingest and query and calls down into the lake.

mod activity;
mod admin;
mod archival;
pub mod archive_record;
mod archive_triggers;
mod generation;
pub mod metrics;
mod offboard;
mod quota;
pub mod rate;
pub mod record;
mod retention;
mod store;
mod system_tables;
mod tasks;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use tokio::sync::watch;
use tracing::warn;

use crate::auth::{Authenticator, IssuedToken, TokenHash};
use crate::clock::Clock;
use crate::lake::{Lake, LakeError, Sealed, TenantDirectory, TenantPlacement};
pub use activity::Activity;
use generation::Generations;
pub use quota::{QuotaState, TenantReport, WriteAdmission};
use rate::RateLimiter;
pub use record::{TenantRecord, TenantSettings, TenantState, TokenRecord};
use store::{Head, RegistryStore};
pub use system_tables::{StorageTable, TenantsTable};

#[derive(Debug, thiserror::Error)]
pub enum TenantsError {
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error("tenant {0:?} is not registered: create it with `lakeport tenant create {0}` (or set auto_provision = true to create tenants on an admin's first write)")]
    Unknown(String),
    #[error("tenant {0:?} already exists; change it with `lakeport tenant update {0}`")]
    Exists(String),
    #[error("invalid tenant settings: {0}")]
    Invalid(String),
    #[error("tenant {tenant:?} has no token {token_id:?} (`lakeport tenant get {tenant}` lists its tokens)")]
    UnknownToken { tenant: String, token_id: String },
    #[error("tenant {0:?} is suspended: its writes are refused until `lakeport tenant update {0} --state active`")]
    Suspended(String),
    #[error("tenant {0:?} is set in the config file ([[tenants]]); remove it there and restart every replica before deleting it")]
    Configured(String),
    #[error("tenant {tenant:?} has reached its hard storage quota: it uses {usage} of {hard}; writes are refused until usage drops (vacuum, retention) or the quota is raised (`lakeport tenant update {tenant} --quota-hard SIZE`)")]
    OverQuota {
        tenant: String,
        usage: bytesize::ByteSize,
        hard: bytesize::ByteSize,
    },
    #[error("tenant {tenant:?} already holds data; its encryption cannot change (objects written with the old key would become unreadable)")]
    EncryptionInUse { tenant: String },
    #[error("tenant {tenant:?} cannot be written to: {reason}")]
    Unusable { tenant: String, reason: String },
    #[error("tenant {0:?} changed on another replica {1} times while this one tried to change it; try again")]
    Contended(String, usize),
    #[error("the tenant registry object {location} is unreadable: {message}")]
    Corrupt { location: String, message: String },
    #[error("tenant {tenant:?}: {}", archival_refusal(.refused))]
    Archival {
        tenant: String,
        refused: archive_record::StepRefused,
    },
    #[error("tenant {tenant:?} is being restored from its archive and is not back yet; retry in {retry_after}s (the restore goes on, and a retried write lands once)")]
    Restoring { tenant: String, retry_after: u64 },
}

fn archival_refusal(refused: &archive_record::StepRefused) -> String {
    use archive_record::{ArchivePhase, StepRefused};
    match refused {
        StepRefused::Busy(ArchivePhase::Archived) => "it is archived already (`lakeport tenant restore` brings it back)".into(),
        StepRefused::Busy(phase) => format!("an archive or restore is under way (phase {phase:?}); try again once it is done"),
        StepRefused::NotArchived => "it is not archived".into(),
        StepRefused::Lost => "the archive was called off (the tenant was used meanwhile) or finished by another replica".into(),
    }
}

/// The registry's settings, as plain values.
#[derive(Debug, Clone)]
pub struct TenantsConfig {
    /// Settings the config file gives each configured tenant (they win over the registry).
    pub configured: BTreeMap<String, TenantSettings>,
    /// `[tenant_defaults]`: what a field falls back to when neither the config nor the
    /// registry sets it.
    pub defaults: TenantSettings,
    /// `[datasets.NAME] retention`: below a tenant's own retention, above the defaults'.
    pub dataset_retention: BTreeMap<String, String>,
    /// An admin's write to an unknown tenant creates it.
    pub auto_provision: bool,
    pub registry_refresh: Duration,
    pub usage_reconcile_interval: Duration,
    /// How often this replica writes its tenants' activity to the registry.
    pub activity_flush: Duration,
    /// How long a write or query for an archived tenant waits for its restore.
    pub restore_wait: Duration,
}

/// A registry record with the revision it was read at.
#[derive(Debug, Clone)]
struct Cached {
    revision: u64,
    record: TenantRecord,
}

/// A tenant as it is in force: its record (or a configured tenant's stand-in) and the
/// effective settings.
#[derive(Debug, Clone)]
pub struct TenantView {
    pub record: TenantRecord,
    pub settings: TenantSettings,
    /// Fields the config file pins (a `tenant.update` of them is refused).
    pub config_fields: Vec<&'static str>,
}

#[derive(Debug)]
pub struct Tenants {
    lake: Arc<Lake>,
    store: RegistryStore,
    config: TenantsConfig,
    auth: Arc<Authenticator>,
    clock: Arc<dyn Clock>,
    records: RwLock<BTreeMap<String, Cached>>,
    /// Tenants whose key cannot be used on this replica, with the reason.
    unusable: RwLock<HashMap<String, String>>,
    limiters: Mutex<HashMap<String, Arc<RateLimiter>>>,
    activity: Mutex<activity::ActivityBook>,
    /// Deletions this replica is finishing now.
    deletions: Mutex<std::collections::HashSet<String>>,
    /// Archives and restores this replica runs now.
    runs: archival::Runs,
    looked: archive_triggers::Looked,
    /// True once the stored activity was read (idleness is judged only after).
    activity_loaded: watch::Sender<bool>,
    /// Tenants warned about their soft quota (once per crossing).
    soft_warned: Mutex<std::collections::HashSet<String>>,
    /// True once the first usage listing finished.
    listed: watch::Sender<bool>,
    /// True once the registry was read in full.
    loaded: watch::Sender<bool>,
    /// The registry generation the last listing saw.
    generations: Mutex<Generations>,
}

const MAX_WRITE_ATTEMPTS: usize = 8;

/// Registry objects read at once (a start reads every tenant's).
const READS_AT_ONCE: usize = 16;

impl Tenants {
    /// Loads the registry, seeds the configured tenants that have no record yet, and puts
    /// every tenant's tokens and placement in force.
    pub async fn open(
        lake: Arc<Lake>,
        auth: Arc<Authenticator>,
        config: TenantsConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Self>, TenantsError> {
        let store = RegistryStore::new(lake.default_store())?;
        let tenants = Arc::new(Self {
            lake,
            store,
            config,
            auth,
            clock,
            records: RwLock::default(),
            unusable: RwLock::default(),
            limiters: Mutex::default(),
            activity: Mutex::default(),
            deletions: Mutex::default(),
            runs: Default::default(),
            looked: Default::default(),
            activity_loaded: watch::Sender::new(false),
            soft_warned: Mutex::default(),
            listed: watch::Sender::new(false),
            loaded: watch::Sender::new(false),
            generations: Mutex::default(),
        });
        // Configured tenants work without their record (see `views`), so a default store
        // that cannot be reached now only delays the registry's own tenants.
        if let Err(e) = tenants.load_and_seed().await {
            warn!(error = %e, "tenant registry unavailable; configured tenants work, registered ones once it can be read");
            tenants.put_in_force();
        }
        Ok(tenants)
    }

    async fn load_and_seed(&self) -> Result<(), TenantsError> {
        self.refresh().await?;
        let missing: Vec<String> = {
            let records = self.read_records();
            self.config
                .configured
                .keys()
                .filter(|id| !records.contains_key(*id))
                .cloned()
                .collect()
        };
        for id in &missing {
            // Another replica seeding the same tenant at once is fine: either record will do.
            self.store.write(&self.stand_in(id), 0).await?;
        }
        if !missing.is_empty() {
            self.refresh().await?;
        }
        Ok(())
    }

    /// The record a configured tenant has before the registry holds one.
    fn stand_in(&self, id: &str) -> TenantRecord {
        TenantRecord::new(id, TenantSettings::default(), self.clock.now())
    }

    /// Waits until the first usage listing finished (reports before it would undercount
    /// tables this process has not written to).
    pub async fn usage_listed(&self) {
        let mut listed = self.listed.subscribe();
        let _ = listed.wait_for(|done| *done).await;
    }

    fn read_records(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Cached>> {
        self.records.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads the records that changed since the last refresh and puts them in force; when
    /// the registry's generation is the one the last listing saw, nothing changed and
    /// nothing is listed (`generation.rs`).
    pub async fn refresh(&self) -> Result<(), TenantsError> {
        let generation = self.store.generation().await?;
        let must_list = self
            .generations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .must_list(&generation);
        if !must_list {
            return Ok(());
        }
        let heads = self.store.heads().await?;
        let known: HashMap<String, u64> = self
            .read_records()
            .iter()
            .map(|(id, c)| (id.clone(), c.revision))
            .collect();
        let stale: Vec<Head> = heads
            .iter()
            .filter(|(id, head)| known.get(*id) != Some(&head.revision))
            .map(|(_, head)| head.clone())
            .collect();
        let read: Vec<Option<(Head, TenantRecord)>> = futures::stream::iter(stale)
            .map(|head| self.read_head(head))
            .buffer_unordered(READS_AT_ONCE)
            .try_collect()
            .await?;
        let changed = read.into_iter().flatten();
        {
            let mut records = self.records.write().unwrap_or_else(|p| p.into_inner());
            records.retain(|id, _| heads.contains_key(id));
            for (head, record) in changed {
                records.insert(
                    record.id.clone(),
                    Cached {
                        revision: head.revision,
                        record,
                    },
                );
            }
        }
        self.put_in_force();
        self.loaded.send_replace(true);
        self.generations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .listed(generation);
        Ok(())
    }

    /// Turns true once the registry was read in full (readiness waits for it).
    pub fn loaded(&self) -> watch::Receiver<bool> {
        self.loaded.subscribe()
    }

    /// A revision's record; `None` when it was pruned between the listing and the read
    /// (the next refresh reads the newer one), or when it cannot be parsed: one record a
    /// newer server wrote (a field or state this one does not know) must not stop every
    /// other tenant's changes; the tenant keeps the revision last read until it is fixed.
    async fn read_head(&self, head: Head) -> Result<Option<(Head, TenantRecord)>, TenantsError> {
        match self.store.read(&head).await {
            Ok(record) => Ok(record.map(|record| (head, record))),
            Err(e @ TenantsError::Corrupt { .. }) => {
                warn!(error = %e, "tenant record unreadable; keeping the revision read before");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Hands the registry's live tokens to the authenticator and each tenant's region and
    /// key to the lake; rebuilds rate limiters whose settings changed.
    fn put_in_force(&self) {
        let now = self.clock.now();
        let views = self.views();
        let mut issued = HashMap::new();
        for view in &views {
            for token in view.record.tokens.iter().filter(|t| t.is_live(now)) {
                if let Ok(TokenHash(hash)) = TokenHash::from_hex(&token.sha256) {
                    issued.insert(
                        hash,
                        IssuedToken {
                            tenant: view.record.id.clone(),
                            expires_at: token.expires_at,
                            scope: token.scope.clone(),
                        },
                    );
                }
            }
        }
        self.auth.set_issued(issued);
        let mut unusable = HashMap::new();
        for view in &views {
            if let Err(reason) = self.place(&view.record.id, &view.settings) {
                unusable.insert(view.record.id.clone(), reason);
            }
        }
        *self.unusable.write().unwrap_or_else(|p| p.into_inner()) = unusable;
        let mut limiters = self.limiters.lock().unwrap_or_else(|p| p.into_inner());
        limiters.retain(|id, limiter| {
            views.iter().any(|v| {
                v.record.id == *id
                    && v.settings.rows_per_second.is_some_and(|rate| {
                        limiter.settings() == (rate, v.settings.burst_rows.unwrap_or(rate))
                    })
            })
        });
    }

    /// Gives the lake a tenant's region and key; the reason when the key cannot be used.
    fn place(&self, tenant: &str, settings: &TenantSettings) -> Result<(), String> {
        let key = match &settings.encryption {
            Some(spec) => Some(spec.resolve().map_err(|e| e.to_string())?),
            None => None,
        };
        let sealed = match settings.state {
            Some(TenantState::Deleting) => Some(Sealed::Deleting),
            _ => self
                .read_records()
                .get(tenant)
                .and_then(|c| c.record.archive.as_ref())
                .and_then(|a| a.phase.sealed()),
        };
        let placement = TenantPlacement {
            region: settings.region.clone(),
            key,
            sealed,
        };
        self.lake
            .set_tenant(tenant, placement)
            .map_err(|e| e.to_string())
    }

    fn view_of(&self, record: &TenantRecord) -> TenantView {
        let config = self
            .config
            .configured
            .get(&record.id)
            .cloned()
            .unwrap_or_default();
        TenantView {
            settings: config.over(&record.settings.over(&self.config.defaults)),
            config_fields: config.set_fields(),
            record: record.clone(),
        }
    }

    /// Every registered tenant (configured ones included), in id order.
    /// True for a registered or configured tenant.
    pub fn is_known(&self, id: &str) -> bool {
        self.config.configured.contains_key(id) || self.read_records().contains_key(id)
    }

    pub fn views(&self) -> Vec<TenantView> {
        let records = self.read_records();
        let mut views: BTreeMap<&str, TenantView> = records
            .iter()
            .map(|(id, c)| (id.as_str(), self.view_of(&c.record)))
            .collect();
        for id in self.config.configured.keys() {
            views
                .entry(id.as_str())
                .or_insert_with(|| self.view_of(&self.stand_in(id)));
        }
        views.into_values().collect()
    }

    pub fn view(&self, id: &str) -> Option<TenantView> {
        match self.read_records().get(id) {
            Some(c) => Some(self.view_of(&c.record)),
            None if self.config.configured.contains_key(id) => {
                Some(self.view_of(&self.stand_in(id)))
            }
            None => None,
        }
    }
}

/// The lake counts registered tenants among those that exist, with or without tables.
impl TenantDirectory for Tenants {
    fn registered(&self) -> Vec<String> {
        self.views().into_iter().map(|v| v.record.id).collect()
    }
}
