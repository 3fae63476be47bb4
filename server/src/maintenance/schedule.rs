//! The schedule: every replica maintains every table once per interval.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::{Maintenance, RunScope};

impl Maintenance {
    /// Runs every `interval` until `stop` fires (not at all for a zero interval).
    pub fn spawn_schedule(self: &Arc<Self>, stop: CancellationToken) {
        if self.settings.interval.is_zero() {
            return;
        }
        let this = Arc::downgrade(self);
        let interval = self.settings.interval;
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(interval) => {}
                }
                let Some(this) = this.upgrade() else { break };
                let scope = RunScope {
                    scheduled: true,
                    ..RunScope::default()
                };
                if let Err(e) = this.run(&scope).await {
                    warn!(error = %e, "scheduled maintenance failed; next try in one interval");
                }
            }
        });
    }
}
