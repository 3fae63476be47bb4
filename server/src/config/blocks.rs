//! Setting blocks, one per concern. Each field is declared once: its doc is the flag's help,
//! its `id` is its path in the TOML file, and `Default` holds its default.

use std::time::Duration;

use parquet::basic::{Compression as ParquetCompression, ZstdLevel};
use serde::Deserialize;

use super::values::{self, Compression};

/// `[ingest]`: how DoPut streams are buffered, written and committed.
#[derive(Debug, Clone, clap::Args, Deserialize)]
#[group(skip)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Longest a unit waits for other streams' units to share its commit, e.g. `1s`,
    /// `200ms`; a busy table commits at most once per interval. A unit commits at once when
    /// no other stream writing the table could join it.
    #[arg(id = "ingest.commit_interval", long = "commit-interval", env = "LAKEPORT_COMMIT_INTERVAL", value_parser = values::parse_duration)]
    #[serde(deserialize_with = "values::duration")]
    pub commit_interval: Duration,
    /// Largest gRPC message accepted, e.g. `64MiB`; bigger ones get RESOURCE_EXHAUSTED.
    #[arg(id = "ingest.max_message_size", long = "max-message-size", env = "LAKEPORT_MAX_MESSAGE_SIZE", value_parser = values::parse_size)]
    #[serde(deserialize_with = "values::size")]
    pub max_message_size: usize,
    /// Arrow data one DoPut buffers before it writes files and commits, e.g. `64MiB`.
    #[arg(id = "ingest.flush_size", long = "flush-size", env = "LAKEPORT_FLUSH_SIZE", value_parser = values::parse_size)]
    #[serde(deserialize_with = "values::size")]
    pub flush_size: usize,
    /// Longest time rows of a long-lived DoPut wait in the buffer before a commit, e.g. `10s`.
    #[arg(id = "ingest.flush_interval", long = "flush-interval", env = "LAKEPORT_FLUSH_INTERVAL", value_parser = values::parse_duration)]
    #[serde(deserialize_with = "values::duration")]
    pub flush_interval: Duration,
    /// A flushed unit smaller than this, e.g. `8MiB`, writes no files of its own: the
    /// committer writes its rows into one file per partition shared with the other units of
    /// its commit. `0` turns sharing off.
    #[arg(id = "ingest.share_files_below", long = "share-files-below", env = "LAKEPORT_SHARE_FILES_BELOW", value_parser = values::parse_size)]
    #[serde(deserialize_with = "values::size")]
    pub share_files_below: usize,
    /// Memory all DoPuts together may hold in buffers; producers wait when it is used up.
    #[arg(id = "ingest.memory_limit", long = "memory-limit", env = "LAKEPORT_MEMORY_LIMIT", value_parser = values::parse_size)]
    #[serde(deserialize_with = "values::size")]
    pub memory_limit: usize,
    /// Parquet compression: `zstd` (default, level 1), `zstd(N)`, `snappy`, `lz4`, `none`.
    #[arg(id = "ingest.compression", long = "compression", env = "LAKEPORT_COMPRESSION", value_parser = |s: &str| s.parse::<Compression>())]
    #[serde(deserialize_with = "values::compression")]
    pub compression: Compression,
    /// Rows per Parquet row group.
    #[arg(
        id = "ingest.row_group_rows",
        long = "row-group-rows",
        env = "LAKEPORT_ROW_GROUP_ROWS"
    )]
    #[serde(deserialize_with = "values::number")]
    pub row_group_rows: usize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            commit_interval: Duration::from_secs(1),
            max_message_size: 64 << 20,
            flush_size: 64 << 20,
            flush_interval: Duration::from_secs(10),
            share_files_below: 8 << 20,
            memory_limit: 1 << 30,
            compression: Compression::Zstd(values::DEFAULT_ZSTD_LEVEL),
            row_group_rows: 1 << 20,
        }
    }
}

impl IngestConfig {
    /// Parquet compression as the writer takes it.
    pub fn parquet_compression(&self) -> ParquetCompression {
        match self.compression {
            Compression::None => ParquetCompression::UNCOMPRESSED,
            Compression::Snappy => ParquetCompression::SNAPPY,
            Compression::Lz4 => ParquetCompression::LZ4_RAW,
            Compression::Zstd(level) => {
                ParquetCompression::ZSTD(ZstdLevel::try_new(level).unwrap_or_default())
            }
        }
    }
}

/// `[query]`: limits and tickets of Flight SQL queries.
#[derive(Debug, Clone, clap::Args, Deserialize)]
#[group(skip)]
#[serde(default, deny_unknown_fields)]
pub struct QueryConfig {
    /// Memory one query may use for sorts, joins and aggregations (it spills to disk
    /// where DataFusion can, and fails with RESOURCE_EXHAUSTED otherwise), e.g. `1GiB`.
    #[arg(id = "query.memory_limit", long = "query-memory-limit", env = "LAKEPORT_QUERY_MEMORY_LIMIT", value_parser = values::parse_size)]
    #[serde(deserialize_with = "values::size")]
    pub memory_limit: usize,
    /// Longest a query may run, from DoGet to its last batch, e.g. `5m`.
    #[arg(id = "query.timeout", long = "query-timeout", env = "LAKEPORT_QUERY_TIMEOUT", value_parser = values::parse_duration)]
    #[serde(deserialize_with = "values::duration")]
    pub timeout: Duration,
    /// Queries one tenant (or the admin) may run at once; more wait in that tenant's queue.
    #[arg(
        id = "query.max_concurrent",
        long = "query-max-concurrent",
        env = "LAKEPORT_QUERY_MAX_CONCURRENT"
    )]
    #[serde(deserialize_with = "values::number")]
    pub max_concurrent: usize,
    /// Longest a query waits in its tenant's queue for a place before RESOURCE_EXHAUSTED,
    /// e.g. `30s`; `0s` refuses at once.
    #[arg(id = "query.queue_timeout", long = "query-queue-timeout", env = "LAKEPORT_QUERY_QUEUE_TIMEOUT", value_parser = values::parse_duration)]
    #[serde(deserialize_with = "values::duration")]
    pub queue_timeout: Duration,
    /// Secret that signs query tickets; give every replica the same one. Default: random
    /// per process (tickets then only work on the server that issued them).
    #[arg(
        id = "query.ticket_secret",
        long = "ticket-secret",
        env = "LAKEPORT_TICKET_SECRET",
        hide_env_values = true
    )]
    pub ticket_secret: Option<String>,
    /// How long a query ticket from GetFlightInfo may be redeemed with DoGet, e.g. `1h`.
    #[arg(id = "query.ticket_ttl", long = "ticket-ttl", env = "LAKEPORT_TICKET_TTL", value_parser = values::parse_duration)]
    #[serde(deserialize_with = "values::duration")]
    pub ticket_ttl: Duration,
}

impl Default for QueryConfig {
    fn default() -> Self {
        Self {
            memory_limit: 1 << 30,
            timeout: Duration::from_secs(300),
            max_concurrent: 4,
            queue_timeout: Duration::from_secs(30),
            ticket_secret: None,
            ticket_ttl: Duration::from_secs(3600),
        }
    }
}

/// `[maintenance]`: keeping each table cheap to open for every reader.
#[derive(Debug, Clone, clap::Args, Deserialize)]
#[group(skip)]
#[serde(default, deny_unknown_fields)]
pub struct MaintenanceConfig {
    /// Commits between Delta checkpoints: after every Nth commit of a table (versions N-1,
    /// 2N-1, …) lakeport writes a checkpoint and `_last_checkpoint`, so readers (Snowflake,
    /// Spark, DuckDB, lakeport itself) replay at most N JSON commits instead of the whole log.
    #[arg(
        id = "maintenance.checkpoint_interval",
        long = "checkpoint-interval",
        env = "LAKEPORT_CHECKPOINT_INTERVAL"
    )]
    #[serde(deserialize_with = "values::number")]
    pub checkpoint_interval: usize,
    /// How often each server runs maintenance over every table (compaction, checkpoint,
    /// log cleanup, vacuum), e.g. `10m`; `0s` turns the schedule off (`lakeport
    /// maintenance run` still works).
    #[arg(id = "maintenance.interval", long = "maintenance-interval", env = "LAKEPORT_MAINTENANCE_INTERVAL", value_parser = values::parse_duration)]
    #[serde(deserialize_with = "values::duration")]
    pub interval: Duration,
    /// How long after an hour ends its partition is compacted, e.g. `30m`: late events
    /// arriving within it land before the rewrite (later ones are compacted next run).
    #[arg(id = "maintenance.grace_period", long = "compaction-grace-period", env = "LAKEPORT_COMPACTION_GRACE_PERIOD", value_parser = values::parse_duration)]
    #[serde(deserialize_with = "values::duration")]
    pub grace_period: Duration,
    /// Size compaction packs small files toward, e.g. `256MiB` (Snowflake reads 100–512 MB
    /// files best); `[datasets.NAME] target_file_size` overrides it per dataset.
    #[arg(id = "maintenance.target_file_size", long = "target-file-size", env = "LAKEPORT_TARGET_FILE_SIZE", value_parser = values::parse_size)]
    #[serde(deserialize_with = "values::size")]
    pub target_file_size: usize,
    /// Memory one compaction may use: half for sorting (it spills to disk beyond), a
    /// quarter (at most 128MiB) for the row group being encoded, e.g. `1GiB`.
    #[arg(id = "maintenance.memory_limit", long = "maintenance-memory-limit", env = "LAKEPORT_MAINTENANCE_MEMORY_LIMIT", value_parser = values::parse_size)]
    #[serde(deserialize_with = "values::size")]
    pub memory_limit: usize,
}

impl Default for MaintenanceConfig {
    fn default() -> Self {
        Self {
            checkpoint_interval: 50,
            interval: Duration::from_secs(600),
            grace_period: Duration::from_secs(1800),
            target_file_size: 256 << 20,
            memory_limit: 1 << 30,
        }
    }
}

/// `[auth]`: the admin credential (tenants' are `[[tenants]]`).
#[derive(Debug, Clone, Default, clap::Args, Deserialize)]
#[group(skip)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// Admin token (acts for any tenant).
    #[arg(
        id = "auth.admin_token",
        long = "admin-token",
        env = "LAKEPORT_ADMIN_TOKEN",
        hide_env_values = true
    )]
    pub admin_token: Option<String>,
    /// Hex SHA-256 of the admin token, instead of the token itself.
    #[arg(
        id = "auth.admin_token_sha256",
        long = "admin-token-sha256",
        env = "LAKEPORT_ADMIN_TOKEN_SHA256"
    )]
    pub admin_token_sha256: Option<String>,
}

/// `[operations]`: metrics, health probes, logs, shutdown and data-quality checks.
#[derive(Debug, Clone, clap::Args, Deserialize)]
#[group(skip)]
#[serde(default, deny_unknown_fields)]
pub struct OperationsConfig {
    /// Side HTTP port serving `/metrics`, `/healthz` and `/readyz`, e.g. `127.0.0.1:9090`
    /// (off unless set; a bare port such as `9090` binds loopback).
    #[arg(
        id = "operations.metrics_listen",
        long = "metrics-listen",
        env = "LAKEPORT_METRICS_LISTEN"
    )]
    pub metrics_listen: Option<String>,
    /// Log lines as `text` (colour only on a terminal) or `json` (one object per line).
    #[arg(
        id = "operations.log_format",
        long = "log-format",
        env = "LAKEPORT_LOG_FORMAT",
        value_enum
    )]
    pub log_format: crate::ops::LogFormat,
    /// How often each store is probed for `/readyz` and the gRPC health service, e.g. `10s`.
    #[arg(id = "operations.store_probe_interval", long = "store-probe-interval", env = "LAKEPORT_STORE_PROBE_INTERVAL", value_parser = values::parse_duration)]
    #[serde(deserialize_with = "values::duration")]
    pub store_probe_interval: Duration,
    /// After SIGTERM, how long to keep serving while not ready (so load balancers stop
    /// sending first) before in-flight calls drain, e.g. `5s`.
    #[arg(id = "operations.shutdown_delay", long = "shutdown-delay", env = "LAKEPORT_SHUTDOWN_DELAY", value_parser = values::parse_duration)]
    #[serde(deserialize_with = "values::duration")]
    pub shutdown_delay: Duration,
    /// How often the data-quality expectations of every table are evaluated, e.g. `1h`;
    /// `0s` turns the schedule off (`lakeport quality` still evaluates on demand).
    #[arg(id = "operations.quality_interval", long = "quality-interval", env = "LAKEPORT_QUALITY_INTERVAL", value_parser = values::parse_duration)]
    #[serde(deserialize_with = "values::duration")]
    pub quality_interval: Duration,
}

impl Default for OperationsConfig {
    fn default() -> Self {
        Self {
            metrics_listen: None,
            log_format: crate::ops::LogFormat::Text,
            store_probe_interval: Duration::from_secs(10),
            shutdown_delay: Duration::ZERO,
            quality_interval: Duration::from_secs(3600),
        }
    }
}

impl OperationsConfig {
    /// `metrics_listen` as an address: a bare port binds loopback.
    pub fn metrics_address(&self) -> Option<String> {
        self.metrics_listen.as_ref().map(|listen| {
            if listen.parse::<u16>().is_ok() {
                format!("127.0.0.1:{listen}")
            } else {
                listen.clone()
            }
        })
    }
}

/// `[collector]`: the HTTP doors (OTLP/HTTP, Snowplow, CloudEvents). The OTLP gRPC services
/// are on the Flight port whether or not this is set.
#[derive(Debug, Clone, clap::Args, Deserialize)]
#[group(skip)]
#[serde(default, deny_unknown_fields)]
pub struct CollectorConfig {
    /// Address of the HTTP doors, e.g. `0.0.0.0:4318` (off unless set; a bare port binds
    /// loopback). HTTP/1.1 and h2c.
    #[arg(
        id = "collector.listen",
        long = "collector-listen",
        env = "LAKEPORT_COLLECTOR_LISTEN"
    )]
    pub listen: Option<String>,
    /// Largest request body, after decompression, e.g. `16MiB`; larger ones get 413.
    #[arg(id = "collector.max_body", long = "collector-max-body", env = "LAKEPORT_COLLECTOR_MAX_BODY", value_parser = values::parse_size)]
    #[serde(deserialize_with = "values::size")]
    pub max_body: usize,
    /// Largest single event, e.g. `1MiB`: a larger CloudEvent is 413; a larger Snowplow
    /// event goes to `_rejected` (its start only) and the rest of its batch lands.
    #[arg(id = "collector.max_event", long = "collector-max-event", env = "LAKEPORT_COLLECTOR_MAX_EVENT", value_parser = values::parse_size)]
    #[serde(deserialize_with = "values::size")]
    pub max_event: usize,
    /// Longest a client may take to send a request body, e.g. `30s`; slower ones get 408.
    #[arg(id = "collector.body_timeout", long = "collector-body-timeout", env = "LAKEPORT_COLLECTOR_BODY_TIMEOUT", value_parser = values::parse_duration)]
    #[serde(deserialize_with = "values::duration")]
    pub body_timeout: Duration,
    /// Connections served at once; further ones wait to be accepted.
    #[arg(
        id = "collector.max_connections",
        long = "collector-max-connections",
        env = "LAKEPORT_COLLECTOR_MAX_CONNECTIONS"
    )]
    #[serde(deserialize_with = "values::number")]
    pub max_connections: usize,
    /// Proxies and load balancers whose `X-Forwarded-For` is believed, e.g.
    /// `10.0.0.0/8,192.168.1.7`; from anyone else the peer address is the client's.
    #[arg(id = "collector.trusted_proxies", long = "collector-trusted-proxies", env = "LAKEPORT_COLLECTOR_TRUSTED_PROXIES", value_parser = values::parse_networks)]
    #[serde(deserialize_with = "values::networks")]
    pub trusted_proxies: values::Networks,
    /// Set a first-party `network_userid` cookie on Snowplow requests (`true`/`false`;
    /// default false). A request with `SP-Anonymous` gets none.
    #[arg(id = "collector.cookie", long = "collector-cookie", env = "LAKEPORT_COLLECTOR_COOKIE", action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    #[serde(deserialize_with = "values::flag")]
    pub cookie: bool,
    /// The cookie's name.
    #[arg(
        id = "collector.cookie_name",
        long = "collector-cookie-name",
        env = "LAKEPORT_COLLECTOR_COOKIE_NAME"
    )]
    pub cookie_name: String,
    /// The cookie's domain, e.g. `.shop.example` (default: the collector's host only).
    #[arg(
        id = "collector.cookie_domain",
        long = "collector-cookie-domain",
        env = "LAKEPORT_COLLECTOR_COOKIE_DOMAIN"
    )]
    pub cookie_domain: Option<String>,
    /// How long the cookie lives, e.g. `365d`.
    #[arg(id = "collector.cookie_lifetime", long = "collector-cookie-lifetime", env = "LAKEPORT_COLLECTOR_COOKIE_LIFETIME", value_parser = values::parse_duration)]
    #[serde(deserialize_with = "values::duration")]
    pub cookie_lifetime: Duration,
    /// How long a Snowplow event id (`eid`) is remembered, e.g. `10m`: a resend within it
    /// (a tracker that got no answer) lands the event once. `0` turns it off. In this
    /// process only: a resend to another replica or after a restart is not recognised.
    #[arg(id = "collector.dedupe_window", long = "collector-dedupe-window", env = "LAKEPORT_COLLECTOR_DEDUPE_WINDOW", value_parser = values::parse_duration)]
    #[serde(deserialize_with = "values::duration")]
    pub dedupe_window: Duration,
    /// Most event ids remembered at once (about 100 bytes each); beyond it the oldest are
    /// forgotten before their window ends.
    #[arg(
        id = "collector.dedupe_max_events",
        long = "collector-dedupe-max-events",
        env = "LAKEPORT_COLLECTOR_DEDUPE_MAX_EVENTS"
    )]
    #[serde(deserialize_with = "values::number")]
    pub dedupe_max_events: usize,
}

impl Default for CollectorConfig {
    fn default() -> Self {
        Self {
            listen: None,
            max_body: 16 << 20,
            max_event: 1 << 20,
            body_timeout: Duration::from_secs(30),
            max_connections: 4096,
            trusted_proxies: values::Networks::default(),
            cookie: false,
            cookie_name: "sp".into(),
            cookie_domain: None,
            cookie_lifetime: Duration::from_secs(365 * 24 * 3600),
            dedupe_window: Duration::from_secs(600),
            dedupe_max_events: 1_000_000,
        }
    }
}

impl CollectorConfig {
    /// `listen` as an address: a bare port binds loopback.
    pub fn address(&self) -> Option<String> {
        self.listen.as_ref().map(|listen| {
            if listen.parse::<u16>().is_ok() {
                format!("127.0.0.1:{listen}")
            } else {
                listen.clone()
            }
        })
    }
}
