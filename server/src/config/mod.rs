//! Server configuration: a TOML file layered under command-line flags and `LAKEPORT_*`
//! environment variables (flag > env > file > default). Every setting is declared once,
//! in a block (`blocks`), and reaches the file and the command line from there.

mod blocks;
mod layer;
mod settings;
mod tenants;
mod validate;
mod values;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgMatches, CommandFactory, Parser};
use serde::Deserialize;

pub use crate::auth::TokenHash;
pub use blocks::{AuthSettings, IngestConfig, MaintenanceConfig, OperationsConfig, QueryConfig};
pub use tenants::{AuthConfig, DatasetConfig, TenantConfig};
pub use values::Compression;

use crate::datasets::CustomColumns;
use crate::lake::{RouteSpec, StoreSpec, DEFAULT_STORE};
use crate::tenants::TenantSettings;
use tenants::{FileDataset, FileTenant, FileTenantDefaults};

/// Errors found while reading or checking the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("invalid setting {setting}: {message}")]
    Invalid { setting: String, message: String },
    #[error(transparent)]
    Flags(#[from] Box<clap::Error>),
}

pub(crate) fn invalid(setting: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting: setting.to_string(),
        message: message.into(),
    }
}

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
struct Settings {
    /// TOML configuration file; flags and environment variables override its values.
    #[arg(id = "config", long = "config", env = "LAKEPORT_CONFIG")]
    #[serde(skip)]
    config: Option<PathBuf>,
    /// Address to listen on (`HOST:PORT`, port 0 picks a free port). Default 127.0.0.1:50051.
    #[arg(id = "listen", long = "listen", env = "LAKEPORT_LISTEN")]
    listen: String,
    /// Write the bound address to this file once the server accepts connections.
    #[arg(id = "addr_file", long = "addr-file", env = "LAKEPORT_ADDR_FILE")]
    addr_file: Option<PathBuf>,
    /// Default store for tables: a local path or URL (`file:///...`, `s3://bucket/prefix`,
    /// `gs://...`, `az://...`). Default `./lake`. Shorthand for `[stores.default] url`.
    #[arg(id = "lake", long = "lake", env = "LAKEPORT_LAKE")]
    lake: Option<String>,
    /// Start even when a store cannot be listed at startup; its tables answer UNAVAILABLE.
    #[arg(id = "allow_unreachable_stores", long = "allow-unreachable-stores", env = "LAKEPORT_ALLOW_UNREACHABLE_STORES", action = clap::ArgAction::SetTrue)]
    #[serde(deserialize_with = "values::flag")]
    allow_unreachable_stores: bool,
    /// How long a table stays in memory (snapshot, committer) after its last use, e.g. `5m`.
    #[arg(id = "table_idle_timeout", long = "table-idle-timeout", env = "LAKEPORT_TABLE_IDLE_TIMEOUT", value_parser = values::parse_duration)]
    #[serde(deserialize_with = "values::duration")]
    table_idle_timeout: Duration,
    /// An admin's write to an unknown tenant creates it with `[tenant_defaults]`
    /// (`true`/`false`; default false, true on an open server with no credentials).
    #[arg(id = "auto_provision", long = "auto-provision", env = "LAKEPORT_AUTO_PROVISION", value_parser = clap::builder::BoolishValueParser::new())]
    #[serde(deserialize_with = "values::optional_flag")]
    auto_provision: Option<bool>,
    /// How soon a registry change made on another replica is in force here, e.g. `10s`.
    #[arg(id = "registry_refresh", long = "registry-refresh", env = "LAKEPORT_REGISTRY_REFRESH", value_parser = values::parse_duration)]
    #[serde(deserialize_with = "values::duration")]
    registry_refresh: Duration,
    /// How often the stores are listed to check the running usage counts, e.g. `1h`.
    #[arg(id = "usage_reconcile_interval", long = "usage-reconcile-interval", env = "LAKEPORT_USAGE_RECONCILE_INTERVAL", value_parser = values::parse_duration)]
    #[serde(deserialize_with = "values::duration")]
    usage_reconcile_interval: Duration,
    #[arg(skip)]
    tenant_defaults: FileTenantDefaults,
    #[command(flatten)]
    auth: AuthSettings,
    #[command(flatten)]
    ingest: IngestConfig,
    #[command(flatten)]
    query: QueryConfig,
    #[command(flatten)]
    maintenance: MaintenanceConfig,
    #[command(flatten)]
    operations: OperationsConfig,
    #[arg(skip)]
    stores: BTreeMap<String, StoreSpec>,
    #[arg(skip)]
    routes: Vec<RouteSpec>,
    #[arg(skip)]
    tenants: Vec<FileTenant>,
    #[arg(skip)]
    datasets: BTreeMap<String, FileDataset>,
    /// Tenant credential `ID=TOKEN` (repeatable; env: comma-separated). Added to the file's tenants.
    #[arg(
        id = "tenant_flags",
        long = "tenant",
        env = "LAKEPORT_TENANTS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    #[serde(skip)]
    tenant_flags: Vec<String>,
    /// Custom dataset `NAME:TIME_COLUMN[:APP_COLUMN]` (repeatable; env: comma-separated).
    #[arg(
        id = "dataset_flags",
        long = "dataset",
        env = "LAKEPORT_DATASETS",
        value_delimiter = ','
    )]
    #[serde(skip)]
    dataset_flags: Vec<String>,
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
            tenant_defaults: FileTenantDefaults::default(),
            auth: AuthSettings::default(),
            ingest: IngestConfig::default(),
            query: QueryConfig::default(),
            maintenance: MaintenanceConfig::default(),
            operations: OperationsConfig::default(),
            stores: BTreeMap::new(),
            routes: Vec::new(),
            tenants: Vec::new(),
            datasets: BTreeMap::new(),
            tenant_flags: Vec::new(),
            dataset_flags: Vec::new(),
        }
    }
}

/// Arguments that are lists added to the file's entries, not values laid over it.
const LIST_FLAGS: [&str; 3] = ["config", "tenant_flags", "dataset_flags"];

/// Where the local lake goes when nothing names a default store.
const DEFAULT_LAKE: &str = "./lake";

/// The resolved configuration the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: String,
    pub addr_file: Option<PathBuf>,
    /// Every store, `default` included (`lake = URL` is its shorthand).
    pub stores: BTreeMap<String, StoreSpec>,
    pub routes: Vec<RouteSpec>,
    pub allow_unreachable_stores: bool,
    pub table_idle_timeout: Duration,
    pub auth: AuthConfig,
    pub tenancy: TenancyConfig,
    pub datasets: BTreeMap<String, DatasetConfig>,
    pub ingest: IngestConfig,
    pub query: QueryConfig,
    pub maintenance: MaintenanceConfig,
    pub operations: OperationsConfig,
}

/// The tenant registry's settings.
#[derive(Debug, Clone)]
pub struct TenancyConfig {
    /// `None`: off, except on an open server (no credentials), where every caller is admin.
    pub auto_provision: Option<bool>,
    pub registry_refresh: Duration,
    pub usage_reconcile_interval: Duration,
    pub defaults: TenantSettings,
}

impl Default for Config {
    fn default() -> Self {
        let settings = Settings::default();
        Self {
            listen: settings.listen,
            addr_file: settings.addr_file,
            stores: BTreeMap::from([(
                DEFAULT_STORE.to_string(),
                StoreSpec {
                    url: DEFAULT_LAKE.into(),
                    ..Default::default()
                },
            )]),
            routes: Vec::new(),
            allow_unreachable_stores: settings.allow_unreachable_stores,
            table_idle_timeout: settings.table_idle_timeout,
            auth: AuthConfig::default(),
            tenancy: TenancyConfig {
                auto_provision: settings.auto_provision,
                registry_refresh: settings.registry_refresh,
                usage_reconcile_interval: settings.usage_reconcile_interval,
                defaults: TenantSettings::default(),
            },
            datasets: BTreeMap::new(),
            ingest: settings.ingest,
            query: settings.query,
            maintenance: settings.maintenance,
            operations: settings.operations,
        }
    }
}

impl Config {
    /// The command line `lakeport-server` accepts (every flag optional: the file and the
    /// defaults fill what is not given).
    pub fn command() -> clap::Command {
        Settings::command().mut_args(|arg| {
            // Ids are file paths (`ingest.flush_size`); show the key, not the path.
            let name = arg
                .get_id()
                .as_str()
                .rsplit('.')
                .next()
                .unwrap_or_default()
                .to_uppercase();
            let arg = arg.required(false);
            if arg.get_action().takes_values() {
                arg.value_name(name)
            } else {
                arg
            }
        })
    }

    /// Resolves parsed flags over the TOML file named by `--config` (if any) over defaults.
    pub fn from_matches(matches: &ArgMatches) -> Result<Self, ConfigError> {
        let (path, file) = match matches.get_one::<PathBuf>("config") {
            Some(path) => (path.clone(), read_file(path)?),
            None => (PathBuf::from("<flags>"), toml::Table::new()),
        };
        Self::resolve(matches, path, file)
    }

    fn resolve(
        matches: &ArgMatches,
        path: PathBuf,
        file: toml::Table,
    ) -> Result<Self, ConfigError> {
        let file_default_store = file
            .get("stores")
            .and_then(|s| s.get(DEFAULT_STORE))
            .is_some();
        if file.contains_key("lake") && file_default_store {
            return Err(invalid(
                "lake",
                "set either lake = URL or [stores.default], not both",
            ));
        }
        let mut table = file;
        layer::lay_flags_over(&mut table, matches, &LIST_FLAGS).map_err(|m| invalid("flags", m))?;
        let settings: Settings =
            toml::Value::Table(table)
                .try_into()
                .map_err(|source| ConfigError::Parse {
                    path,
                    source: Box::new(source),
                })?;
        let list = |id: &str| -> Vec<String> {
            matches
                .get_many::<String>(id)
                .map(|values| values.cloned().collect())
                .unwrap_or_default()
        };
        let config = Self::from_settings(settings, &list("tenant_flags"), &list("dataset_flags"))?;
        config.validate()?;
        Ok(config)
    }

    fn from_settings(
        settings: Settings,
        tenant_flags: &[String],
        dataset_flags: &[String],
    ) -> Result<Self, ConfigError> {
        let mut auth = AuthConfig::default();
        if let Some(token) = &settings.auth.admin_token {
            auth.admin_tokens.push(TokenHash::of_token(token));
        }
        if let Some(hash) = &settings.auth.admin_token_sha256 {
            auth.admin_tokens.push(
                TokenHash::from_hex(hash).map_err(|e| invalid("auth.admin_token_sha256", e))?,
            );
        }
        for tenant in settings.tenants {
            tenant.add_to(&mut auth)?;
        }
        for spec in tenant_flags {
            let (id, token) = spec
                .split_once('=')
                .ok_or_else(|| invalid("--tenant", format!("{spec:?} is not ID=TOKEN")))?;
            auth.add_tenant(id, vec![TokenHash::of_token(token)])?;
        }

        let mut stores = settings.stores;
        let mut routes = Vec::new();
        let mut datasets = BTreeMap::new();
        for (name, d) in settings.datasets {
            if let Some(url) = d.store {
                // `[datasets.X] store = URL` is shorthand for a store and a route of X alone.
                let store = format!("dataset_{name}");
                stores.insert(
                    store.clone(),
                    StoreSpec {
                        url,
                        ..Default::default()
                    },
                );
                routes.push(RouteSpec {
                    datasets: vec![name.clone()],
                    region: None,
                    store,
                });
            }
            let custom = match d.time_column {
                Some(time_column) => Some(CustomColumns {
                    time_column,
                    app_column: d.app_column,
                }),
                None if d.app_column.is_some() => {
                    return Err(invalid(
                        &format!("datasets.{name}"),
                        "app_column needs time_column",
                    ))
                }
                None => None,
            };
            datasets.insert(
                name,
                DatasetConfig {
                    custom,
                    target_file_size: d.target_file_size,
                    quality: d.quality,
                },
            );
        }
        for spec in dataset_flags {
            let mut parts = spec.split(':');
            let (Some(name), Some(time)) = (parts.next(), parts.next()) else {
                return Err(invalid(
                    "--dataset",
                    format!("{spec:?} is not NAME:TIME_COLUMN[:APP_COLUMN]"),
                ));
            };
            let app = parts.next().map(str::to_string);
            let entry: &mut DatasetConfig = datasets.entry(name.to_string()).or_default();
            entry.custom = Some(CustomColumns {
                time_column: time.to_string(),
                app_column: app,
            });
        }
        routes.extend(settings.routes);
        match (settings.lake, stores.get_mut(DEFAULT_STORE)) {
            (Some(url), Some(store)) => store.url = url,
            (lake, None) => {
                stores.insert(
                    DEFAULT_STORE.to_string(),
                    StoreSpec {
                        url: lake.unwrap_or_else(|| DEFAULT_LAKE.into()),
                        ..Default::default()
                    },
                );
            }
            (None, Some(_)) => {}
        }
        Ok(Config {
            listen: settings.listen,
            addr_file: settings.addr_file,
            stores,
            routes,
            allow_unreachable_stores: settings.allow_unreachable_stores,
            table_idle_timeout: settings.table_idle_timeout,
            auth,
            tenancy: TenancyConfig {
                auto_provision: settings.auto_provision,
                registry_refresh: settings.registry_refresh,
                usage_reconcile_interval: settings.usage_reconcile_interval,
                defaults: settings.tenant_defaults.settings(),
            },
            datasets,
            ingest: settings.ingest,
            query: settings.query,
            maintenance: settings.maintenance,
            operations: settings.operations,
        })
    }

    /// The default store's URL (what `--lake` sets).
    pub fn lake(&self) -> &str {
        self.stores
            .get(DEFAULT_STORE)
            .map(|s| s.url.as_str())
            .unwrap_or_default()
    }

    /// Sets the default store's URL, as `--lake` does.
    pub fn set_lake(&mut self, url: impl Into<String>) {
        self.stores
            .entry(DEFAULT_STORE.to_string())
            .or_default()
            .url = url.into();
    }
}

fn read_file(path: &std::path::Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|source| ConfigError::Parse {
        path: path.to_path_buf(),
        source: Box::new(source),
    })
}

#[cfg(test)]
mod tests;
