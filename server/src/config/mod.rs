//! Server configuration: a TOML file layered under command-line flags and `LAKEPORT_*`
//! environment variables (flag > env > file > default). Every setting is declared once,
//! in a block (`blocks`), and reaches the file and the command line from there.

mod blocks;
mod for_layers;
mod layer;
mod tenants;
mod top_level;
mod validate;
mod values;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgMatches, CommandFactory};

pub use crate::auth::TokenHash;
pub use blocks::{
    AuthSettings, CollectorConfig, IngestConfig, MaintenanceConfig, OperationsConfig, QueryConfig,
};
pub use tenants::{AuthConfig, DatasetConfig, TenantConfig};
pub use values::Compression;

use crate::datasets::CustomColumns;
use crate::lake::{RouteSpec, StoreSpec, DEFAULT_STORE};
use crate::tenants::TenantSettings;
use top_level::Settings;

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
    pub collector: CollectorConfig,
}

/// The tenant registry's settings.
#[derive(Debug, Clone)]
pub struct TenancyConfig {
    /// `None`: off, except on an open server (no credentials), where every caller is admin.
    pub auto_provision: Option<bool>,
    pub registry_refresh: Duration,
    pub usage_reconcile_interval: Duration,
    pub activity_flush: Duration,
    pub restore_wait: Duration,
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
                activity_flush: settings.activity_flush,
                restore_wait: settings.restore_wait,
                defaults: TenantSettings::default(),
            },
            datasets: BTreeMap::new(),
            ingest: settings.ingest,
            query: settings.query,
            maintenance: settings.maintenance,
            operations: settings.operations,
            collector: settings.collector,
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
                    retention: d.retention,
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
                activity_flush: settings.activity_flush,
                restore_wait: settings.restore_wait,
                defaults: settings.tenant_defaults.settings(),
            },
            datasets,
            ingest: settings.ingest,
            query: settings.query,
            maintenance: settings.maintenance,
            operations: settings.operations,
            collector: settings.collector,
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
