//! The top-level settings: the TOML file and the command line in one struct, each field
//! a TOML key and (unless skipped) a flag with its `LAKEPORT_*` variable. `Config` is
//! resolved from it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use serde::Deserialize;

use super::blocks::{
    AuthSettings, CollectorConfig, IngestConfig, MaintenanceConfig, OperationsConfig, QueryConfig,
};
use super::tenants::{FileDataset, FileTenant, FileTenantDefaults};
use super::values;
use crate::lake::{RouteSpec, StoreSpec};

/// The file and the command line in one: each field is a TOML key and (unless skipped) a
/// flag with its `LAKEPORT_*` variable.
#[derive(Debug, Clone, Parser, Deserialize)]
#[group(skip)]
#[command(
    name = "lakeport-server",
    version,
    about = "Flight server landing multi-tenant events into Delta Lake"
)]
#[serde(default, deny_unknown_fields)]
pub(super) struct Settings {
    /// TOML configuration file; flags and environment variables override its values.
    #[arg(id = "config", long = "config", env = "LAKEPORT_CONFIG")]
    #[serde(skip)]
    pub(super) config: Option<PathBuf>,
    /// Address to listen on (`HOST:PORT`, port 0 picks a free port). Default 127.0.0.1:50051.
    #[arg(id = "listen", long = "listen", env = "LAKEPORT_LISTEN")]
    pub(super) listen: String,
    /// Write the bound address to this file once the server accepts connections.
    #[arg(id = "addr_file", long = "addr-file", env = "LAKEPORT_ADDR_FILE")]
    pub(super) addr_file: Option<PathBuf>,
    /// Default store for tables: a local path or URL (`file:///...`, `s3://bucket/prefix`,
    /// `gs://...`, `az://...`). Default `./lake`. Shorthand for `[stores.default] url`.
    #[arg(id = "lake", long = "lake", env = "LAKEPORT_LAKE")]
    pub(super) lake: Option<String>,
    /// Start even when a store cannot be listed at startup; its tables answer UNAVAILABLE.
    #[arg(id = "allow_unreachable_stores", long = "allow-unreachable-stores", env = "LAKEPORT_ALLOW_UNREACHABLE_STORES", action = clap::ArgAction::SetTrue)]
    #[serde(deserialize_with = "values::flag")]
    pub(super) allow_unreachable_stores: bool,
    /// How long a table stays in memory (snapshot, committer) after its last use, e.g. `5m`.
    #[arg(id = "table_idle_timeout", long = "table-idle-timeout", env = "LAKEPORT_TABLE_IDLE_TIMEOUT", value_parser = values::parse_duration)]
    #[serde(deserialize_with = "values::duration")]
    pub(super) table_idle_timeout: Duration,
    /// An admin's write to an unknown tenant creates it with `[tenant_defaults]`
    /// (`true`/`false`; default false, true on an open server with no credentials).
    #[arg(id = "auto_provision", long = "auto-provision", env = "LAKEPORT_AUTO_PROVISION", value_parser = clap::builder::BoolishValueParser::new())]
    #[serde(deserialize_with = "values::optional_flag")]
    pub(super) auto_provision: Option<bool>,
    /// How soon a registry change made on another replica is in force here, e.g. `10s`.
    #[arg(id = "registry_refresh", long = "registry-refresh", env = "LAKEPORT_REGISTRY_REFRESH", value_parser = values::parse_duration)]
    #[serde(deserialize_with = "values::duration")]
    pub(super) registry_refresh: Duration,
    /// How often the stores are listed to check the running usage counts, e.g. `1h`.
    #[arg(id = "usage_reconcile_interval", long = "usage-reconcile-interval", env = "LAKEPORT_USAGE_RECONCILE_INTERVAL", value_parser = values::parse_duration)]
    #[serde(deserialize_with = "values::duration")]
    pub(super) usage_reconcile_interval: Duration,
    /// How often each replica writes its tenants' last write and query to the registry
    /// (at most once per tenant per interval), e.g. `1m`.
    #[arg(id = "activity_flush", long = "activity-flush", env = "LAKEPORT_ACTIVITY_FLUSH", value_parser = values::parse_duration)]
    #[serde(deserialize_with = "values::duration")]
    pub(super) activity_flush: Duration,
    /// How long a write or query for an archived tenant waits for its restore before it
    /// is answered UNAVAILABLE (the restore goes on), e.g. `30s`.
    #[arg(id = "restore_wait", long = "restore-wait", env = "LAKEPORT_RESTORE_WAIT", value_parser = values::parse_duration)]
    #[serde(deserialize_with = "values::duration")]
    pub(super) restore_wait: Duration,
    #[arg(skip)]
    pub(super) tenant_defaults: FileTenantDefaults,
    #[command(flatten)]
    pub(super) auth: AuthSettings,
    #[command(flatten)]
    pub(super) ingest: IngestConfig,
    #[command(flatten)]
    pub(super) query: QueryConfig,
    #[command(flatten)]
    pub(super) maintenance: MaintenanceConfig,
    #[command(flatten)]
    pub(super) operations: OperationsConfig,
    #[command(flatten)]
    pub(super) collector: CollectorConfig,
    #[arg(skip)]
    pub(super) stores: BTreeMap<String, StoreSpec>,
    #[arg(skip)]
    pub(super) routes: Vec<RouteSpec>,
    #[arg(skip)]
    pub(super) tenants: Vec<FileTenant>,
    #[arg(skip)]
    pub(super) datasets: BTreeMap<String, FileDataset>,
    /// Tenant credential `ID=TOKEN` (repeatable; env: comma-separated). Added to the file's tenants.
    #[arg(
        id = "tenant_flags",
        long = "tenant",
        env = "LAKEPORT_TENANTS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    #[serde(skip)]
    pub(super) tenant_flags: Vec<String>,
    /// Custom dataset `NAME:TIME_COLUMN[:APP_COLUMN]` (repeatable; env: comma-separated).
    #[arg(
        id = "dataset_flags",
        long = "dataset",
        env = "LAKEPORT_DATASETS",
        value_delimiter = ','
    )]
    #[serde(skip)]
    pub(super) dataset_flags: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            config: None,
            listen: "127.0.0.1:50051".into(),
            addr_file: None,
            lake: None,
            allow_unreachable_stores: false,
            table_idle_timeout: Duration::from_secs(300),
            auto_provision: None,
            registry_refresh: Duration::from_secs(10),
            usage_reconcile_interval: Duration::from_secs(3600),
            activity_flush: Duration::from_secs(60),
            restore_wait: Duration::from_secs(30),
            tenant_defaults: FileTenantDefaults::default(),
            auth: AuthSettings::default(),
            ingest: IngestConfig::default(),
            query: QueryConfig::default(),
            maintenance: MaintenanceConfig::default(),
            operations: OperationsConfig::default(),
            collector: CollectorConfig::default(),
            stores: BTreeMap::new(),
            routes: Vec::new(),
            tenants: Vec::new(),
            datasets: BTreeMap::new(),
            tenant_flags: Vec::new(),
            dataset_flags: Vec::new(),
        }
    }
}
