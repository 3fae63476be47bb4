//! Checks of the resolved settings that need neither the network nor a store.

use super::{invalid, Config, ConfigError};

impl Config {
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
                    bytesize::ByteSize(i.memory_limit as u64),
                    bytesize::ByteSize(i.flush_size as u64)
                ),
            ));
        }
        let m = &self.maintenance;
        if m.checkpoint_interval == 0 {
            return Err(invalid(
                "maintenance.checkpoint_interval",
                "must be at least 1",
            ));
        }
        if m.memory_limit < (64 << 20) {
            return Err(invalid(
                "maintenance.memory_limit",
                "must be at least 64MiB",
            ));
        }
        let targets = std::iter::once((
            "maintenance.target_file_size".to_string(),
            m.target_file_size,
        ))
        .chain(self.datasets.iter().filter_map(|(name, d)| {
            d.target_file_size
                .map(|t| (format!("datasets.{name}.target_file_size"), t))
        }));
        for (setting, target) in targets {
            if target < (1 << 20) {
                return Err(invalid(&setting, "must be at least 1MiB"));
            }
        }
        for (name, d) in &self.datasets {
            if let Some(problem) = d.quality.problem() {
                return Err(invalid(&format!("datasets.{name}.quality"), problem));
            }
            if let Some(retention) = &d.retention {
                crate::lake::retention::parse_retention(retention)
                    .map_err(|e| invalid(&format!("datasets.{name}.retention"), e))?;
            }
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
        for tenant in &self.auth.tenants {
            tenant
                .settings
                .check()
                .map_err(|e| invalid(&format!("tenants.{}", tenant.id), e))?;
        }
        self.tenancy
            .defaults
            .check()
            .map_err(|e| invalid("tenant_defaults", e))?;
        if self.tenancy.registry_refresh.is_zero() {
            return Err(invalid("registry_refresh", "must be more than 0s"));
        }
        if self.tenancy.activity_flush.is_zero() {
            return Err(invalid("activity_flush", "must be more than 0s"));
        }
        if self.tenancy.usage_reconcile_interval.is_zero() {
            return Err(invalid("usage_reconcile_interval", "must be more than 0s"));
        }
        Ok(())
    }
}
