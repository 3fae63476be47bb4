//! The log subscriber: text (colour only on a terminal) or one JSON object per line, with
//! the level set by `LAKEPORT_LOG` (`RUST_LOG` syntax).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// `--log-format`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// delta-kernel logs every snapshot it loads at INFO and delta-rs every commit; neither
/// tells an operator anything. delta-rs also WARNs on every commit that lost a race to
/// another writer, which lakeport expects, rebuilds and counts
/// (`lakeport_commit_conflicts_retried_total`). `LAKEPORT_LOG` replaces these defaults.
const DEFAULT_FILTER: &str =
    "info,deltalake_core=warn,deltalake_core::kernel::transaction=error,buoyant_kernel=warn";

/// Installs the subscriber for the process; a second call (tests) keeps the first.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_env("LAKEPORT_LOG").unwrap_or_else(|_| DEFAULT_FILTER.into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stdout().is_terminal())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}
