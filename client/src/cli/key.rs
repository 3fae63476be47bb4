//! `lakeport key issue|revoke`: write-only collector keys for browsers and apps, which
//! cannot keep a secret. A tenant issues its own; an admin names the tenant.

use std::time::Duration;

use lakeport_client::{Client, TokenIssueRequest};

#[derive(clap::Subcommand)]
pub(crate) enum KeyCommand {
    /// Issue a collector key: it appends to the named datasets through the collector
    /// doors and nothing else. It is public by design (it goes into web pages and apps);
    /// printed once, the server keeps only its SHA-256.
    Issue {
        tenant: String,
        /// Datasets the key may append to, e.g. `snowplow`.
        #[arg(long, value_delimiter = ',', required = true)]
        datasets: Vec<String>,
        /// Browser origins the key may be used from, e.g. `https://shop.example`
        /// (default: any origin).
        #[arg(long, value_delimiter = ',')]
        origins: Vec<String>,
        /// Lifetime, e.g. 365d (default: no expiry).
        #[arg(long, value_parser = humantime::parse_duration)]
        expires_in: Option<Duration>,
        /// What the key is for.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Revoke a collector key by its id (`lakeport tenant get` lists them); every replica
    /// refuses it within `tenants.registry_refresh`.
    Revoke { tenant: String, key_id: String },
}

pub(crate) async fn run_key(client: &mut Client, command: KeyCommand) -> anyhow::Result<()> {
    match command {
        KeyCommand::Issue {
            tenant,
            datasets,
            origins,
            expires_in,
            description,
        } => {
            let expires_at_ms = super::tenant::expiry_ms(expires_in)?;
            let issued = client
                .token_issue(TokenIssueRequest {
                    tenant,
                    expires_at_ms,
                    description,
                    key_datasets: datasets,
                    key_origins: origins,
                })
                .await?;
            super::tenant::print_issued("collector key", &issued);
            Ok(())
        }
        KeyCommand::Revoke { tenant, key_id } => {
            client.token_revoke(&tenant, &key_id).await?;
            eprintln!("collector key {key_id} of tenant {tenant} revoked");
            Ok(())
        }
    }
}
