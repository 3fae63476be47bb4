//! Each layer's own settings type, built from the configuration: the one place where
//! `Config` meets the layers below it, so none of them imports `config`.

use std::collections::BTreeMap;

use super::{invalid, Config, ConfigError};
use crate::collector::{CollectorSettings, CookieSettings};
use crate::datasets::{DatasetSpec, Expectations};
use crate::ingest::IngestSettings;
use crate::lake::{CommitPolicy, FileTargets, LakeSettings, TenantPlacement};
use crate::maintenance::{CompactionWriter, MaintenanceSettings};
use crate::query::QuerySettings;
use crate::tenants::TenantsConfig;

impl Config {
    /// How ingest streams buffer and write.
    pub fn ingest_settings(&self) -> IngestSettings {
        IngestSettings {
            flush_size: self.ingest.flush_size,
            flush_interval: self.ingest.flush_interval,
            share_files_below: self.ingest.share_files_below,
            compression: self.ingest.parquet_compression(),
            row_group_rows: self.ingest.row_group_rows,
        }
    }

    /// The HTTP doors' limits.
    pub fn collector_settings(&self) -> CollectorSettings {
        CollectorSettings {
            max_body: self.collector.max_body,
            max_event: self.collector.max_event,
            body_timeout: self.collector.body_timeout,
            max_connections: self.collector.max_connections,
            trusted_proxies: self.collector.trusted_proxies.0.clone(),
            cookie: self.collector.cookie.then(|| CookieSettings {
                name: self.collector.cookie_name.clone(),
                domain: self.collector.cookie_domain.clone(),
                lifetime: self.collector.cookie_lifetime,
            }),
            dedupe_window: self.collector.dedupe_window,
            dedupe_max_events: self.collector.dedupe_max_events,
        }
    }

    /// The query engine's limits and tickets.
    pub fn query_settings(&self) -> QuerySettings {
        let q = &self.query;
        QuerySettings {
            memory_limit: q.memory_limit,
            timeout: q.timeout,
            max_concurrent: q.max_concurrent,
            queue_timeout: q.queue_timeout,
            ticket_secret: q.ticket_secret.clone(),
            ticket_ttl: q.ticket_ttl,
        }
    }

    /// What the datasets are built from: each `[datasets.NAME]`'s custom columns.
    pub fn dataset_specs(&self) -> BTreeMap<String, DatasetSpec> {
        self.datasets
            .iter()
            .map(|(name, d)| {
                let spec = DatasetSpec {
                    custom: d.custom.clone(),
                };
                (name.clone(), spec)
            })
            .collect()
    }

    /// Each dataset's data-quality expectations (`[datasets.NAME.quality]`).
    pub fn quality_expectations(&self) -> BTreeMap<String, Expectations> {
        self.datasets
            .iter()
            .map(|(name, d)| (name.clone(), d.quality.clone()))
            .collect()
    }

    /// What the lake is built from; reads SSE-C keys from their references.
    pub fn lake_settings(&self) -> Result<LakeSettings, ConfigError> {
        let mut tenants = BTreeMap::new();
        for t in &self.auth.tenants {
            let key = match &t.settings.encryption {
                Some(spec) => Some(spec.resolve().map_err(|e| {
                    invalid(&format!("tenants.{}.encryption", t.id), e.to_string())
                })?),
                None => None,
            };
            tenants.insert(
                t.id.clone(),
                TenantPlacement {
                    region: t.settings.region.clone(),
                    key,
                    sealed: None,
                },
            );
        }
        Ok(LakeSettings {
            stores: self.stores.clone(),
            routes: self.routes.clone(),
            tenants,
            commit: CommitPolicy {
                interval: self.ingest.commit_interval,
                checkpoint_every: self.maintenance.checkpoint_interval as u64,
            },
            table_idle_timeout: self.table_idle_timeout,
            allow_unreachable_stores: self.allow_unreachable_stores,
        })
    }

    /// What maintenance runs with: the schedule, compaction's rules and its writer, which
    /// shares ingest's Parquet settings.
    pub fn maintenance_settings(&self) -> MaintenanceSettings {
        let m = &self.maintenance;
        MaintenanceSettings {
            interval: m.interval,
            grace_period: m.grace_period,
            targets: FileTargets {
                default: m.target_file_size as u64,
                per_dataset: self
                    .datasets
                    .iter()
                    .filter_map(|(name, d)| d.target_file_size.map(|t| (name.clone(), t as u64)))
                    .collect(),
            },
            writer: CompactionWriter {
                props: self.ingest_settings().writer_properties(),
                memory_limit: m.memory_limit,
            },
        }
    }

    /// What the tenant registry runs with.
    pub fn tenants_config(&self) -> TenantsConfig {
        TenantsConfig {
            configured: self
                .auth
                .tenants
                .iter()
                .map(|t| (t.id.clone(), t.settings.clone()))
                .collect(),
            defaults: self.tenancy.defaults.clone(),
            dataset_retention: self
                .datasets
                .iter()
                .filter_map(|(name, d)| d.retention.clone().map(|r| (name.clone(), r)))
                .collect(),
            auto_provision: self
                .tenancy
                .auto_provision
                .unwrap_or_else(|| self.auth.credentials().is_open()),
            registry_refresh: self.tenancy.registry_refresh,
            usage_reconcile_interval: self.tenancy.usage_reconcile_interval,
            activity_flush: self.tenancy.activity_flush,
            restore_wait: self.tenancy.restore_wait,
        }
    }
}
