//! `lakeport tenant create|list|get|update|delete|archive|restore` and `lakeport token issue|revoke` (admin): the
//! tenant registry every server replica shares.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use arrow::array::{ArrayRef, RecordBatch, StringArray, UInt64Array};
use lakeport_client::{
    Client, Tenant, TenantDeleteResult, TenantEncryption, TokenIssueRequest, TokenIssueResult,
};

use super::OutputArgs;

#[derive(clap::Subcommand)]
pub(crate) enum TenantCommand {
    /// Register a tenant; unset settings follow the server's [tenant_defaults].
    Create {
        id: String,
        #[command(flatten)]
        settings: SettingsArgs,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Every registered tenant.
    List {
        #[command(flatten)]
        out: OutputArgs,
    },
    /// One tenant's settings in force and its tokens.
    Get {
        id: String,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Delete a tenant: every object it has in every store, its `_rejected` table, then its
    /// record and tokens. Cannot be undone. Writes and queries are refused from the start;
    /// a deletion cut short finishes on restart or on any replica (or run this again).
    Delete {
        id: String,
        /// The tenant's id again, to confirm.
        #[arg(long)]
        confirm: String,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Archive a tenant now: its tables are copied to each store's archive store
    /// (`archive_for`) and verified, the archive is recorded, then the live copy is
    /// deleted. Answers once it is done. Its next write or query restores it.
    Archive {
        id: String,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Restore an archived tenant now; answers once its tables are live.
    Restore {
        id: String,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Change the settings given (and clear those named by --clear).
    Update {
        id: String,
        #[command(flatten)]
        settings: SettingsArgs,
        /// Unset a field so it follows [tenant_defaults] again (repeatable): display_name,
        /// region, encryption, quota_soft, quota_hard, rows_per_second, burst_rows,
        /// retention, dataset_retention (or dataset_retention.DATASET), archive_after,
        /// state, quality.
        #[arg(long)]
        clear: Vec<String>,
        #[command(flatten)]
        out: OutputArgs,
    },
}

#[derive(clap::Subcommand)]
pub(crate) enum TokenCommand {
    /// Issue a token for a tenant. It is printed once; the server keeps only its SHA-256.
    Issue {
        tenant: String,
        /// Lifetime, e.g. 90d (default: no expiry).
        #[arg(long, value_parser = humantime::parse_duration)]
        expires_in: Option<Duration>,
        /// What the token is for.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Revoke a tenant's token by its id (`lakeport tenant get` lists them).
    Revoke { tenant: String, token_id: String },
}

#[derive(clap::Args, Default)]
pub(crate) struct SettingsArgs {
    #[arg(long)]
    display_name: Option<String>,
    /// Residency: the tenant's tables only land in stores of this region.
    #[arg(long)]
    region: Option<String>,
    /// The tenant's key: sse-kms:KEY_ID, sse-c:env:VAR, sse-c:file:PATH,
    /// azure-scope:SCOPE or gcs-cmek:KEY_NAME (allowed while the tenant holds no data).
    #[arg(long)]
    encryption: Option<String>,
    /// Warn above this usage, e.g. 50GiB.
    #[arg(long, value_parser = parse_size)]
    quota_soft: Option<u64>,
    /// Refuse writes at this usage, e.g. 60GiB.
    #[arg(long, value_parser = parse_size)]
    quota_hard: Option<u64>,
    /// Sustained ingest rate; faster streams are slowed.
    #[arg(long)]
    rows_per_second: Option<u64>,
    /// Rows that may pass at once above the rate (default one second's worth).
    #[arg(long)]
    burst_rows: Option<u64>,
    /// How long the tenant's tables keep their rows, e.g. 400d, or `forever` (over a
    /// dataset's or the defaults' retention).
    #[arg(long)]
    retention: Option<String>,
    /// A retention for one dataset's table, over --retention: DATASET=DURATION, e.g.
    /// otel_logs=30d (repeatable; each changes that dataset's alone; clear one with
    /// --clear dataset_retention.DATASET).
    #[arg(long, value_parser = parse_dataset_retention)]
    dataset_retention: Vec<(String, String)>,
    /// Archive the tenant once it has had no write and no query for this long, e.g. 90d,
    /// or `never` (the default).
    #[arg(long)]
    archive_after: Option<String>,
    /// active or suspended (suspended: writes are refused).
    #[arg(long)]
    state: Option<String>,
    /// Data-quality expectations per dataset as JSON, replacing the config's for this
    /// tenant, e.g. '{"snowplow": {"not_null": ["event_id"], "freshness": {"warn_after": "2h"}}}'.
    #[arg(long)]
    quality: Option<String>,
}

fn parse_dataset_retention(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(d, r)| (d.trim().to_string(), r.trim().to_string()))
        .filter(|(d, r)| !d.is_empty() && !r.is_empty())
        .ok_or_else(|| format!("{text:?} is not DATASET=DURATION, e.g. otel_logs=30d"))
}

fn parse_size(text: &str) -> Result<u64, String> {
    text.trim()
        .parse::<bytesize::ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|e| format!("{text:?} is not a size like 50GiB: {e}"))
}

impl SettingsArgs {
    /// The tenant message and the names of the fields given.
    fn tenant(self, id: String) -> anyhow::Result<(Tenant, Vec<String>)> {
        let mut fields = Vec::new();
        let mut given = |set: bool, name: &str| {
            if set {
                fields.push(name.to_string())
            }
        };
        given(self.display_name.is_some(), "display_name");
        given(self.region.is_some(), "region");
        given(self.encryption.is_some(), "encryption");
        given(self.quota_soft.is_some(), "quota_soft");
        given(self.quota_hard.is_some(), "quota_hard");
        given(self.rows_per_second.is_some(), "rows_per_second");
        given(self.burst_rows.is_some(), "burst_rows");
        given(self.retention.is_some(), "retention");
        given(self.archive_after.is_some(), "archive_after");
        given(self.state.is_some(), "state");
        given(self.quality.is_some(), "quality");
        for (dataset, _) in &self.dataset_retention {
            fields.push(format!("dataset_retention.{dataset}"));
        }
        let tenant = Tenant {
            id,
            display_name: self.display_name,
            region: self.region,
            encryption: self.encryption.as_deref().map(encryption).transpose()?,
            quota_soft_bytes: self.quota_soft,
            quota_hard_bytes: self.quota_hard,
            rows_per_second: self.rows_per_second,
            burst_rows: self.burst_rows,
            retention: self.retention,
            archive_after: self.archive_after,
            state: self.state,
            quality: self.quality,
            dataset_retention: self.dataset_retention.into_iter().collect(),
            ..Default::default()
        };
        Ok((tenant, fields))
    }
}

fn encryption(text: &str) -> anyhow::Result<TenantEncryption> {
    let mut e = TenantEncryption::default();
    let (kind, rest) = text
        .split_once(':')
        .context("--encryption is KIND:VALUE, e.g. sse-kms:KEY_ID")?;
    e.kind = kind.to_string();
    match kind {
        "sse-kms" => e.key_id = rest.to_string(),
        "sse-c" => match rest.split_once(':') {
            Some(("env", var)) => e.key_env = var.to_string(),
            Some(("file", path)) => e.key_file = path.to_string(),
            _ => bail!("sse-c keys are given by reference: sse-c:env:VAR or sse-c:file:PATH"),
        },
        "azure-scope" => e.scope = rest.to_string(),
        "gcs-cmek" => e.key_name = rest.to_string(),
        other => bail!("unknown key kind {other:?}: sse-kms, sse-c, azure-scope or gcs-cmek"),
    }
    Ok(e)
}

pub(crate) async fn run_tenant(client: &mut Client, command: TenantCommand) -> anyhow::Result<()> {
    let (tenants, out) = match command {
        TenantCommand::Create { id, settings, out } => {
            let (tenant, _) = settings.tenant(id)?;
            (vec![client.tenant_create(tenant).await?], out)
        }
        TenantCommand::List { out } => (client.tenant_list().await?, out),
        TenantCommand::Get { id, out } => (vec![client.tenant_get(&id).await?], out),
        TenantCommand::Archive { id, out } => (vec![client.tenant_archive(&id).await?], out),
        TenantCommand::Restore { id, out } => (vec![client.tenant_restore(&id).await?], out),
        TenantCommand::Delete { id, confirm, out } => {
            if confirm != id {
                bail!("--confirm must repeat the tenant id ({id}): deleting cannot be undone");
            }
            let result = client.tenant_delete(&id, &confirm).await?;
            return print_removals(&result, out).await;
        }
        TenantCommand::Update {
            id,
            settings,
            clear,
            out,
        } => {
            let (tenant, mut fields) = settings.tenant(id)?;
            fields.extend(clear);
            if fields.is_empty() {
                bail!("nothing to change: give a setting (see --help) or --clear FIELD");
            }
            (vec![client.tenant_update(tenant, fields).await?], out)
        }
    };
    let batch = tenants_batch(&tenants)?;
    super::output::write_batch(&out, batch).await
}

/// One row per store: what the deletion removed there.
async fn print_removals(result: &TenantDeleteResult, out: OutputArgs) -> anyhow::Result<()> {
    let stores = &result.stores;
    let batch = RecordBatch::try_from_iter([
        (
            "tenant",
            Arc::new(StringArray::from_iter_values(
                stores.iter().map(|_| result.id.as_str()),
            )) as ArrayRef,
        ),
        (
            "store",
            Arc::new(StringArray::from_iter_values(
                stores.iter().map(|s| s.store.as_str()),
            )),
        ),
        (
            "objects",
            Arc::new(UInt64Array::from_iter_values(
                stores.iter().map(|s| s.objects),
            )),
        ),
        (
            "bytes",
            Arc::new(UInt64Array::from_iter_values(
                stores.iter().map(|s| s.bytes),
            )),
        ),
    ])?;
    super::output::write_batch(&out, batch).await
}

/// A newly issued token or key: what it is on stderr, the secret alone on stdout (for a
/// script to capture).
pub(crate) fn print_issued(what: &str, issued: &TokenIssueResult) {
    eprintln!(
        "{what} {} for tenant {} (shown once; the server keeps only its SHA-256):",
        issued.token_id, issued.tenant
    );
    println!("{}", issued.token);
}

/// Milliseconds since 1970 of `expires_in` from now; 0 (never) without one.
pub(crate) fn expiry_ms(expires_in: Option<Duration>) -> anyhow::Result<i64> {
    Ok(match expires_in {
        None => 0,
        Some(d) => (SystemTime::now() + d)
            .duration_since(UNIX_EPOCH)?
            .as_millis() as i64,
    })
}

pub(crate) async fn run_token(client: &mut Client, command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Issue {
            tenant,
            expires_in,
            description,
        } => {
            let expires_at_ms = expiry_ms(expires_in)?;
            let issued = client
                .token_issue(TokenIssueRequest {
                    tenant,
                    expires_at_ms,
                    description,
                    ..Default::default()
                })
                .await?;
            print_issued("token", &issued);
            Ok(())
        }
        TokenCommand::Revoke { tenant, token_id } => {
            client.token_revoke(&tenant, &token_id).await?;
            eprintln!("token {token_id} of tenant {tenant} revoked");
            Ok(())
        }
    }
}

fn tenants_batch(tenants: &[Tenant]) -> anyhow::Result<RecordBatch> {
    let text = |f: &dyn Fn(&Tenant) -> Option<String>| -> ArrayRef {
        Arc::new(tenants.iter().map(f).collect::<StringArray>())
    };
    let number = |f: &dyn Fn(&Tenant) -> Option<u64>| -> ArrayRef {
        Arc::new(tenants.iter().map(f).collect::<UInt64Array>())
    };
    let live_tokens = |t: &Tenant| {
        let ids: Vec<&str> = t
            .tokens
            .iter()
            .filter(|k| k.revoked_at_ms == 0)
            .map(|k| k.id.as_str())
            .collect();
        Some(ids.join(","))
    };
    Ok(RecordBatch::try_from_iter([
        ("id", text(&|t| Some(t.id.clone()))),
        ("display_name", text(&|t| t.display_name.clone())),
        ("region", text(&|t| t.region.clone())),
        ("state", text(&|t| t.state.clone())),
        (
            "encryption",
            text(&|t| t.encryption.as_ref().map(|e| e.kind.clone())),
        ),
        ("quota_soft_bytes", number(&|t| t.quota_soft_bytes)),
        ("quota_hard_bytes", number(&|t| t.quota_hard_bytes)),
        ("rows_per_second", number(&|t| t.rows_per_second)),
        ("burst_rows", number(&|t| t.burst_rows)),
        ("retention", text(&|t| t.retention.clone())),
        (
            "dataset_retention",
            text(&|t| {
                let mut entries: Vec<String> = t
                    .dataset_retention
                    .iter()
                    .map(|(d, r)| format!("{d}={r}"))
                    .collect();
                entries.sort();
                (!entries.is_empty()).then(|| entries.join(","))
            }),
        ),
        ("archive_after", text(&|t| t.archive_after.clone())),
        (
            "archive_state",
            text(&|t| Some(t.archive_state.clone()).filter(|s| !s.is_empty())),
        ),
        (
            "archived_at",
            text(&|t| (t.archived_at_ms > 0).then(|| rfc3339(t.archived_at_ms))),
        ),
        (
            "archive_location",
            text(&|t| Some(t.archive_location.clone()).filter(|s| !s.is_empty())),
        ),
        (
            "archived_bytes",
            number(&|t| (t.archived_at_ms > 0).then_some(t.archived_bytes)),
        ),
        ("tokens", text(&live_tokens)),
        ("config_fields", text(&|t| Some(t.config_fields.join(",")))),
    ])?)
}

/// Milliseconds since the epoch as an RFC 3339 UTC time.
fn rfc3339(ms: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(at).to_string()
}
