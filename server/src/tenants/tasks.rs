//! The registry's background work, each on its own interval until shutdown: rereading the
//! registry (and finishing deletions it shows under way), writing tenants' activity, and
//! reconciling usage with a listing of the stores.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::Tenants;

impl Tenants {
    /// Refreshes the registry every `registry_refresh`, writes activity every
    /// `activity_flush` (and once more at shutdown), and reconciles usage every
    /// `usage_reconcile_interval` (the first time at once), until `shutdown`.
    pub fn spawn(self: &Arc<Self>, shutdown: CancellationToken) {
        self.resume_deletions();
        self.resume_archival(true);
        let (tenants, stop) = (self.clone(), shutdown.clone());
        tokio::spawn(async move {
            tenants.load_activity().await;
            let period = tenants.config.activity_flush;
            every(period, false, &stop, || tenants.flush_activity()).await;
            // What the last interval saw, before the process ends.
            tenants.flush_activity().await;
        });
        let (tenants, stop) = (self.clone(), shutdown.clone());
        tokio::spawn(async move {
            let period = tenants.config.registry_refresh;
            every(period, false, &stop, || async {
                match tenants.refresh().await {
                    Ok(()) => {
                        tenants.resume_deletions();
                        tenants.resume_archival(false);
                        tenants.archive_idle();
                    }
                    Err(e) => {
                        warn!(error = %e, "tenant registry refresh failed; keeping the last one read")
                    }
                }
            })
            .await;
        });
        let tenants = self.clone();
        tokio::spawn(async move {
            let period = tenants.config.usage_reconcile_interval;
            every(period, true, &shutdown, || tenants.reconcile()).await;
        });
    }

    /// Lists the stores and lays the listing over the running counts, then recounts the
    /// rows of the tables whose log moved.
    pub async fn reconcile(&self) {
        let changes = match self.lake.reconcile_usage(self.clock.now()).await {
            Ok(changes) => {
                info!(
                    tables = changes.len(),
                    "usage reconciled with a listing of the stores"
                );
                changes
            }
            Err(e) => {
                warn!(error = %e, "usage listing failed; the running counts stand");
                Vec::new()
            }
        };
        self.listed.send_replace(true);
        self.lake.recount_rows(changes).await;
    }
}

/// Runs `step` every `period` until `stop` fires, the first time at once when `at_once`.
async fn every<F, Fut>(period: Duration, at_once: bool, stop: &CancellationToken, mut step: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut tick = tokio::time::interval(period);
    if !at_once {
        tick.tick().await;
    }
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        step().await;
    }
}
