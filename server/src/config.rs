//! Server configuration: a TOML file layered under command-line flags and `LAKEPORT_*`
//! environment variables (flag > env > file > default).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytesize::ByteSize;
use clap::Parser;
use serde::Deserialize;

use crate::lake::{KeySpec, LakeSettings, RouteSpec, StoreSpec, TenantPlacement, DEFAULT_STORE};

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
}

fn invalid(setting: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting: setting.to_string(),
        message: message.into(),
    }
}

/// Command-line flags; each also readable from its `LAKEPORT_*` environment variable.
#[derive(Debug, Clone, Default, Parser)]
#[command(
    name = "lakeport-server",
    version,
    about = "Flight server landing multi-tenant events into Delta Lake"
)]
pub struct Args {
    /// TOML configuration file; flags and environment variables override its values.
    #[arg(long, env = "LAKEPORT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on (`HOST:PORT`, port 0 picks a free port). Default 127.0.0.1:50051.
    #[arg(long, env = "LAKEPORT_LISTEN")]
    pub listen: Option<String>,
    /// Write the bound address to this file once the server accepts connections.
    #[arg(long, env = "LAKEPORT_ADDR_FILE")]
    pub addr_file: Option<PathBuf>,
    /// Default store for tables: a local path or URL (`file:///...`, `s3://bucket/prefix`,
    /// `gs://...`, `az://...`). Default `./lake`. Shorthand for `[stores.default] url`.
    #[arg(long, env = "LAKEPORT_LAKE")]
    pub lake: Option<String>,
    /// Start even when a store cannot be listed at startup; its tables answer UNAVAILABLE.
    #[arg(long, env = "LAKEPORT_ALLOW_UNREACHABLE_STORES")]
    pub allow_unreachable_stores: bool,
    /// How long a table stays in memory after its last use, e.g. `5m`.
    #[arg(long, env = "LAKEPORT_TABLE_IDLE_TIMEOUT")]
    pub table_idle_timeout: Option<humantime::Duration>,
    /// Admin token (acts for any tenant).
    #[arg(long, env = "LAKEPORT_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Hex SHA-256 of the admin token, instead of the token itself.
    #[arg(long, env = "LAKEPORT_ADMIN_TOKEN_SHA256")]
    pub admin_token_sha256: Option<String>,
    /// Tenant credential `ID=TOKEN` (repeatable; env: comma-separated). Added to the file's tenants.
    #[arg(
        long = "tenant",
        env = "LAKEPORT_TENANTS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub tenants: Vec<String>,
    /// Custom dataset `NAME:TIME_COLUMN[:APP_COLUMN]` (repeatable; env: comma-separated).
    #[arg(long = "dataset", env = "LAKEPORT_DATASETS", value_delimiter = ',')]
    pub datasets: Vec<String>,
    /// Longest wait between two commits of one table (group commit), e.g. `1s`, `200ms`.
    #[arg(long, env = "LAKEPORT_COMMIT_INTERVAL")]
    pub commit_interval: Option<humantime::Duration>,
    /// Largest gRPC message accepted, e.g. `64MiB`; bigger ones get RESOURCE_EXHAUSTED.
    #[arg(long, env = "LAKEPORT_MAX_MESSAGE_SIZE")]
    pub max_message_size: Option<ByteSize>,
    /// Arrow data one DoPut buffers before it writes files and commits, e.g. `64MiB`.
    #[arg(long, env = "LAKEPORT_FLUSH_SIZE")]
    pub flush_size: Option<ByteSize>,
    /// Longest time rows of a long-lived DoPut wait in the buffer before a commit, e.g. `10s`.
    #[arg(long, env = "LAKEPORT_FLUSH_INTERVAL")]
    pub flush_interval: Option<humantime::Duration>,
    /// Memory all DoPuts together may hold in buffers; producers wait when it is used up.
    #[arg(long, env = "LAKEPORT_MEMORY_LIMIT")]
    pub memory_limit: Option<ByteSize>,
    /// Parquet compression: `zstd` (default, level 3), `zstd(N)`, `snappy`, `lz4`, `none`.
    #[arg(long, env = "LAKEPORT_COMPRESSION")]
    pub compression: Option<String>,
    /// Rows per Parquet row group.
    #[arg(long, env = "LAKEPORT_ROW_GROUP_ROWS")]
    pub row_group_rows: Option<usize>,
    /// Memory one query may use for sorts, joins and aggregations (it spills to disk
    /// where DataFusion can, and fails with RESOURCE_EXHAUSTED otherwise), e.g. `1GiB`.
    #[arg(long, env = "LAKEPORT_QUERY_MEMORY_LIMIT")]
    pub query_memory_limit: Option<ByteSize>,
    /// Longest a query may run, from DoGet to its last batch, e.g. `5m`.
    #[arg(long, env = "LAKEPORT_QUERY_TIMEOUT")]
    pub query_timeout: Option<humantime::Duration>,
    /// Queries one tenant (or the admin) may run at once; more get RESOURCE_EXHAUSTED.
    #[arg(long, env = "LAKEPORT_QUERY_MAX_CONCURRENT")]
    pub query_max_concurrent: Option<usize>,
    /// Secret that signs query tickets; give every replica the same one. Default: random
    /// per process (tickets then only work on the server that issued them).
    #[arg(long, env = "LAKEPORT_TICKET_SECRET", hide_env_values = true)]
    pub ticket_secret: Option<String>,
    /// How long a query ticket from GetFlightInfo may be redeemed with DoGet, e.g. `1h`.
    #[arg(long, env = "LAKEPORT_TICKET_TTL")]
    pub ticket_ttl: Option<humantime::Duration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    addr_file: Option<PathBuf>,
    lake: Option<String>,
    #[serde(default)]
    allow_unreachable_stores: bool,
    #[serde(default, with = "humantime_serde_opt")]
    table_idle_timeout: Option<Duration>,
    #[serde(default)]
    stores: BTreeMap<String, StoreSpec>,
    #[serde(default)]
    routes: Vec<RouteSpec>,
    #[serde(default)]
    auth: FileAuth,
    #[serde(default)]
    tenants: Vec<FileTenant>,
    #[serde(default)]
    datasets: BTreeMap<String, FileDataset>,
    #[serde(default)]
    ingest: FileIngest,
    #[serde(default)]
    query: FileQuery,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAuth {
    admin_token: Option<String>,
    admin_token_sha256: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTenant {
    id: String,
    token: Option<String>,
    token_sha256: Option<String>,
    #[serde(default)]
    tokens: Vec<String>,
    #[serde(default)]
    tokens_sha256: Vec<String>,
    region: Option<String>,
    encryption: Option<KeySpec>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDataset {
    time_column: Option<String>,
    app_column: Option<String>,
    store: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileIngest {
    #[serde(default, with = "humantime_serde_opt")]
    commit_interval: Option<Duration>,
    max_message_size: Option<ByteSize>,
    flush_size: Option<ByteSize>,
    #[serde(default, with = "humantime_serde_opt")]
    flush_interval: Option<Duration>,
    memory_limit: Option<ByteSize>,
    compression: Option<String>,
    row_group_rows: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileQuery {
    memory_limit: Option<ByteSize>,
    #[serde(default, with = "humantime_serde_opt")]
    timeout: Option<Duration>,
    max_concurrent: Option<usize>,
    ticket_secret: Option<String>,
    #[serde(default, with = "humantime_serde_opt")]
    ticket_ttl: Option<Duration>,
}

mod humantime_serde_opt {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|t| humantime::parse_duration(&t).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// A credential as configured: the token itself is never kept, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    pub fn of_token(token: &str) -> Self {
        use sha2::Digest;
        Self(sha2::Sha256::digest(token.as_bytes()).into())
    }

    pub fn from_hex(setting: &str, text: &str) -> Result<Self, ConfigError> {
        let bytes = hex::decode(text.trim())
            .map_err(|e| invalid(setting, format!("not hex SHA-256: {e}")))?;
        let array: [u8; 32] = bytes
            .try_into()
            .map_err(|_| invalid(setting, "a SHA-256 is 64 hex characters"))?;
        Ok(Self(array))
    }
}

#[derive(Debug, Clone, Default)]
pub struct TenantConfig {
    pub id: String,
    pub tokens: Vec<TokenHash>,
    /// Residency: the tenant's tables only land in stores of this region.
    pub region: Option<String>,
    pub encryption: Option<KeySpec>,
}

#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    pub admin_tokens: Vec<TokenHash>,
    pub tenants: Vec<TenantConfig>,
}

impl AuthConfig {
    /// True when no credential at all is configured (open mode, loopback only).
    pub fn is_open(&self) -> bool {
        self.admin_tokens.is_empty() && self.tenants.iter().all(|t| t.tokens.is_empty())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomDatasetConfig {
    pub time_column: String,
    pub app_column: Option<String>,
}

/// Per-dataset settings: custom datasets carry their columns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatasetConfig {
    pub custom: Option<CustomDatasetConfig>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Snappy,
    Lz4,
    Zstd(i32),
}

impl std::str::FromStr for Compression {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let lower = text.trim().to_ascii_lowercase();
        match lower.as_str() {
            "none" | "uncompressed" => Ok(Self::None),
            "snappy" => Ok(Self::Snappy),
            "lz4" => Ok(Self::Lz4),
            "zstd" => Ok(Self::Zstd(3)),
            _ => {
                let level = lower
                    .strip_prefix("zstd(")
                    .and_then(|rest| rest.strip_suffix(')'))
                    .and_then(|n| n.parse::<i32>().ok())
                    .filter(|n| (1..=22).contains(n))
                    .ok_or_else(|| {
                        format!("unknown compression {text:?}: use zstd, zstd(1..22), snappy, lz4 or none")
                    })?;
                Ok(Self::Zstd(level))
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct IngestConfig {
    pub commit_interval: Duration,
    pub max_message_size: usize,
    pub flush_size: usize,
    pub flush_interval: Duration,
    pub memory_limit: usize,
    pub compression: Compression,
    pub row_group_rows: usize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            commit_interval: Duration::from_secs(1),
            max_message_size: 64 << 20,
            flush_size: 64 << 20,
            flush_interval: Duration::from_secs(10),
            memory_limit: 1 << 30,
            compression: Compression::Zstd(3),
            row_group_rows: 1 << 20,
        }
    }
}

#[derive(Debug, Clone)]
pub struct QueryConfig {
    pub memory_limit: usize,
    pub timeout: Duration,
    pub max_concurrent: usize,
    /// `None`: a random secret is drawn at startup.
    pub ticket_secret: Option<String>,
    pub ticket_ttl: Duration,
}

impl Default for QueryConfig {
    fn default() -> Self {
        Self {
            memory_limit: 1 << 30,
            timeout: Duration::from_secs(300),
            max_concurrent: 4,
            ticket_secret: None,
            ticket_ttl: Duration::from_secs(3600),
        }
    }
}

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
    pub datasets: BTreeMap<String, DatasetConfig>,
    pub ingest: IngestConfig,
    pub query: QueryConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:50051".into(),
            addr_file: None,
            stores: BTreeMap::from([(
                DEFAULT_STORE.to_string(),
                StoreSpec {
                    url: "./lake".into(),
                    ..Default::default()
                },
            )]),
            routes: Vec::new(),
            allow_unreachable_stores: false,
            table_idle_timeout: Duration::from_secs(300),
            auth: AuthConfig::default(),
            datasets: BTreeMap::new(),
            ingest: IngestConfig::default(),
            query: QueryConfig::default(),
        }
    }
}

impl Config {
    /// Resolves flags over the TOML file named by `--config` (if any) over defaults.
    pub fn load(args: Args) -> Result<Self, ConfigError> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        Self::layer(args, file)
    }

    fn layer(args: Args, file: FileConfig) -> Result<Self, ConfigError> {
        let defaults = Config::default();
        let mut auth = AuthConfig::default();
        if let Some(token) = args.admin_token.or(file.auth.admin_token) {
            auth.admin_tokens.push(TokenHash::of_token(&token));
        }
        if let Some(hash) = args.admin_token_sha256.or(file.auth.admin_token_sha256) {
            auth.admin_tokens
                .push(TokenHash::from_hex("auth.admin_token_sha256", &hash)?);
        }
        for tenant in file.tenants {
            let mut tokens: Vec<TokenHash> = tenant
                .token
                .iter()
                .chain(tenant.tokens.iter())
                .map(|t| TokenHash::of_token(t))
                .collect();
            for hash in tenant
                .token_sha256
                .iter()
                .chain(tenant.tokens_sha256.iter())
            {
                tokens.push(TokenHash::from_hex("tenants.token_sha256", hash)?);
            }
            add_tenant(&mut auth, &tenant.id, tokens)?;
            if let Some(t) = auth.tenants.iter_mut().find(|t| t.id == tenant.id) {
                t.region = tenant.region.or(t.region.take());
                t.encryption = tenant.encryption.or(t.encryption.take());
            }
        }
        for spec in &args.tenants {
            let (id, token) = spec
                .split_once('=')
                .ok_or_else(|| invalid("--tenant", format!("{spec:?} is not ID=TOKEN")))?;
            add_tenant(&mut auth, id, vec![TokenHash::of_token(token)])?;
        }

        let mut stores = file.stores;
        let mut routes = Vec::new();
        let mut datasets = BTreeMap::new();
        for (name, d) in file.datasets {
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
                Some(time_column) => Some(CustomDatasetConfig {
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
            datasets.insert(name, DatasetConfig { custom });
        }
        for spec in &args.datasets {
            let mut parts = spec.split(':');
            let (Some(name), Some(time)) = (parts.next(), parts.next()) else {
                return Err(invalid(
                    "--dataset",
                    format!("{spec:?} is not NAME:TIME_COLUMN[:APP_COLUMN]"),
                ));
            };
            let app = parts.next().map(str::to_string);
            let entry: &mut DatasetConfig = datasets.entry(name.to_string()).or_default();
            entry.custom = Some(CustomDatasetConfig {
                time_column: time.to_string(),
                app_column: app,
            });
        }

        let fi = file.ingest;
        let d = defaults.ingest;
        let compression = match args.compression.or(fi.compression) {
            Some(text) => text.parse().map_err(|m| invalid("compression", m))?,
            None => d.compression,
        };
        let ingest = IngestConfig {
            commit_interval: args
                .commit_interval
                .map(Into::into)
                .or(fi.commit_interval)
                .unwrap_or(d.commit_interval),
            max_message_size: size(
                args.max_message_size.or(fi.max_message_size),
                d.max_message_size,
            ),
            flush_size: size(args.flush_size.or(fi.flush_size), d.flush_size),
            flush_interval: args
                .flush_interval
                .map(Into::into)
                .or(fi.flush_interval)
                .unwrap_or(d.flush_interval),
            memory_limit: size(args.memory_limit.or(fi.memory_limit), d.memory_limit),
            compression,
            row_group_rows: args
                .row_group_rows
                .or(fi.row_group_rows)
                .unwrap_or(d.row_group_rows),
        };
        let fq = file.query;
        let dq = defaults.query;
        let query = QueryConfig {
            memory_limit: size(args.query_memory_limit.or(fq.memory_limit), dq.memory_limit),
            timeout: args
                .query_timeout
                .map(Into::into)
                .or(fq.timeout)
                .unwrap_or(dq.timeout),
            max_concurrent: args
                .query_max_concurrent
                .or(fq.max_concurrent)
                .unwrap_or(dq.max_concurrent),
            ticket_secret: args.ticket_secret.or(fq.ticket_secret),
            ticket_ttl: args
                .ticket_ttl
                .map(Into::into)
                .or(fq.ticket_ttl)
                .unwrap_or(dq.ticket_ttl),
        };
        routes.extend(file.routes);
        let default_url = match (args.lake, file.lake, stores.get(DEFAULT_STORE)) {
            (Some(flag), _, _) => Some(flag),
            (None, Some(_), Some(_)) => {
                return Err(invalid(
                    "lake",
                    "set either lake = URL or [stores.default], not both",
                ))
            }
            (None, Some(lake), None) => Some(lake),
            (None, None, Some(_)) => None,
            (None, None, None) => Some(defaults.stores[DEFAULT_STORE].url.clone()),
        };
        if let Some(url) = default_url {
            stores.entry(DEFAULT_STORE.to_string()).or_default().url = url;
        }
        let config = Config {
            listen: args.listen.or(file.listen).unwrap_or(defaults.listen),
            addr_file: args.addr_file.or(file.addr_file),
            stores,
            routes,
            allow_unreachable_stores: args.allow_unreachable_stores
                || file.allow_unreachable_stores,
            table_idle_timeout: args
                .table_idle_timeout
                .map(Into::into)
                .or(file.table_idle_timeout)
                .unwrap_or(defaults.table_idle_timeout),
            auth,
            datasets,
            ingest,
            query,
        };
        config.validate()?;
        Ok(config)
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

    /// What the lake is built from; reads SSE-C keys from their references.
    pub fn lake_settings(&self) -> Result<LakeSettings, ConfigError> {
        let mut tenants = BTreeMap::new();
        for t in &self.auth.tenants {
            let key = match &t.encryption {
                Some(spec) => Some(spec.resolve().map_err(|e| {
                    invalid(&format!("tenants.{}.encryption", t.id), e.to_string())
                })?),
                None => None,
            };
            tenants.insert(
                t.id.clone(),
                TenantPlacement {
                    region: t.region.clone(),
                    key,
                },
            );
        }
        Ok(LakeSettings {
            stores: self.stores.clone(),
            routes: self.routes.clone(),
            tenants,
            commit_interval: self.ingest.commit_interval,
            table_idle_timeout: self.table_idle_timeout,
            allow_unreachable_stores: self.allow_unreachable_stores,
        })
    }

    /// Checks the settings that do not depend on the network or the store.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let i = &self.ingest;
        if i.row_group_rows == 0 {
            return Err(invalid("row_group_rows", "must be at least 1"));
        }
        if i.max_message_size < 1024 {
            return Err(invalid("max_message_size", "must be at least 1KiB"));
        }
        if i.flush_size == 0 || i.memory_limit < i.flush_size {
            return Err(invalid(
                "memory_limit",
                format!(
                    "must be at least flush_size ({} < {})",
                    ByteSize(i.memory_limit as u64),
                    ByteSize(i.flush_size as u64)
                ),
            ));
        }
        let q = &self.query;
        if q.max_concurrent == 0 {
            return Err(invalid("query.max_concurrent", "must be at least 1"));
        }
        if q.memory_limit < (1 << 20) {
            return Err(invalid("query.memory_limit", "must be at least 1MiB"));
        }
        if q.ticket_secret.as_deref().is_some_and(|s| s.len() < 16) {
            return Err(invalid(
                "query.ticket_secret",
                "use at least 16 characters (32 random bytes, hex or base64, is good)",
            ));
        }
        for tenant in &self.auth.tenants {
            crate::names::check_name("tenant id", &tenant.id)
                .map_err(|e| invalid("tenants.id", e.to_string()))?;
        }
        Ok(())
    }
}

fn add_tenant(auth: &mut AuthConfig, id: &str, tokens: Vec<TokenHash>) -> Result<(), ConfigError> {
    if tokens.is_empty() {
        return Err(invalid(
            &format!("tenants.{id}"),
            "needs token, token_sha256, tokens or tokens_sha256",
        ));
    }
    match auth.tenants.iter_mut().find(|t| t.id == id) {
        Some(existing) => existing.tokens.extend(tokens),
        None => auth.tenants.push(TenantConfig {
            id: id.to_string(),
            tokens,
            ..Default::default()
        }),
    }
    Ok(())
}

fn size(value: Option<ByteSize>, default: usize) -> usize {
    value.map(|b| b.as_u64() as usize).unwrap_or(default)
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
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
mod tests {
    use super::*;

    fn parse(toml_text: &str, flags: &[&str]) -> Result<Config, ConfigError> {
        let mut argv = vec!["lakeport-server"];
        argv.extend_from_slice(flags);
        let args = Args::try_parse_from(argv).expect("flags parse");
        Config::layer(args, toml::from_str(toml_text).expect("toml parses"))
    }

    #[test]
    fn flags_override_file_and_defaults_fill_the_rest() {
        let config = parse(
            r#"
            listen = "0.0.0.0:1"
            lake = "file:///tmp/x"
            [auth]
            admin_token = "root"
            [[tenants]]
            id = "acme"
            tokens = ["a", "b"]
            [datasets.my_events]
            time_column = "ts"
            app_column = "app"
            [ingest]
            commit_interval = "250ms"
            flush_size = "8MiB"
            "#,
            &["--listen", "127.0.0.1:0", "--tenant", "beta=t"],
        )
        .unwrap();
        assert_eq!(config.listen, "127.0.0.1:0");
        assert_eq!(config.lake(), "file:///tmp/x");
        assert_eq!(config.auth.admin_tokens, vec![TokenHash::of_token("root")]);
        assert_eq!(config.auth.tenants.len(), 2);
        assert_eq!(config.auth.tenants[0].tokens.len(), 2);
        assert_eq!(config.ingest.commit_interval, Duration::from_millis(250));
        assert_eq!(config.ingest.flush_size, 8 << 20);
        assert_eq!(config.ingest.compression, Compression::Zstd(3));
        let custom = config.datasets["my_events"].custom.clone().unwrap();
        assert_eq!(custom.app_column.as_deref(), Some("app"));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        assert!(toml::from_str::<FileConfig>("listn = \"x\"").is_err());
        assert!(parse("", &["--compression", "gzip"]).is_err());
        assert!(parse("[[tenants]]\nid = \"Bad Name\"\ntoken = \"x\"", &[]).is_err());
        assert!(parse("[[tenants]]\nid = \"acme\"", &[]).is_err());
        assert!(parse("[auth]\nadmin_token_sha256 = \"abc\"", &[]).is_err());
    }

    #[test]
    fn compression_levels_parse() {
        assert_eq!("zstd(9)".parse::<Compression>(), Ok(Compression::Zstd(9)));
        assert!("zstd(99)".parse::<Compression>().is_err());
        assert_eq!("none".parse::<Compression>(), Ok(Compression::None));
    }
}
