//! Which retention a tenant's table has: the most specific setting wins, the tenant's for
//! that dataset, then the tenant's own, then `[datasets.NAME] retention`, then
//! `[tenant_defaults]`. A tenant's own settings are its config fields over its registry
//! record, so an update is in force here as soon as this replica has read it.

use std::collections::BTreeMap;
use std::time::Duration;

use super::record::TenantSettings;
use super::Tenants;
use crate::lake::retention::parse_retention;
use crate::lake::RetentionPolicy;

impl RetentionPolicy for Tenants {
    fn retention(&self, tenant: &str, dataset: &str) -> Option<Duration> {
        let records = self.read_records();
        let layers = [
            self.config.configured.get(tenant),
            records.get(tenant).map(|c| &c.record.settings),
        ];
        let written = written_retention(
            &layers,
            &self.config.dataset_retention,
            &self.config.defaults,
            dataset,
        )?;
        // Settings are checked when written; one that still does not parse keeps the data.
        parse_retention(written).ok().flatten()
    }
}

/// The retention as written that applies to `dataset`, from the tenant's layers (upper
/// first), the datasets' settings and the defaults; `None` when none sets one.
fn written_retention<'a>(
    tenant_layers: &[Option<&'a TenantSettings>],
    per_dataset: &'a BTreeMap<String, String>,
    defaults: &'a TenantSettings,
    dataset: &str,
) -> Option<&'a str> {
    let own = tenant_layers.iter().flatten();
    let for_dataset = own.clone().find_map(|layer| {
        layer
            .dataset_retention
            .as_ref()
            .and_then(|m| m.get(dataset))
    });
    for_dataset
        .or_else(|| own.clone().find_map(|layer| layer.retention.as_ref()))
        .or_else(|| per_dataset.get(dataset))
        .or(defaults.retention.as_ref())
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retention(value: &str) -> TenantSettings {
        TenantSettings {
            retention: Some(value.into()),
            ..Default::default()
        }
    }

    #[test]
    fn the_most_specific_setting_wins() {
        let defaults = retention("400d");
        let per_dataset = BTreeMap::from([("otel_logs".to_string(), "30d".to_string())]);
        let pick = |layers: &[Option<&TenantSettings>], dataset: &str| -> Option<String> {
            written_retention(layers, &per_dataset, &defaults, dataset).map(str::to_string)
        };
        assert_eq!(pick(&[None, None], "snowplow"), Some("400d".into()));
        assert_eq!(pick(&[None, None], "otel_logs"), Some("30d".into()));
        let tenant = retention("90d");
        assert_eq!(
            pick(&[None, Some(&tenant)], "otel_logs"),
            Some("90d".into())
        );
        let mut per_table = retention("forever");
        per_table.dataset_retention = Some(BTreeMap::from([(
            "otel_logs".to_string(),
            "7d".to_string(),
        )]));
        // The registry's per-dataset entry beats the config's tenant-wide retention.
        let config = retention("60d");
        assert_eq!(
            pick(&[Some(&config), Some(&per_table)], "otel_logs"),
            Some("7d".into())
        );
        assert_eq!(
            pick(&[Some(&config), Some(&per_table)], "snowplow"),
            Some("60d".into())
        );
        assert_eq!(
            pick(&[None, Some(&per_table)], "snowplow"),
            Some("forever".into())
        );
    }

    #[test]
    fn nothing_set_keeps_forever() {
        let none = TenantSettings::default();
        assert_eq!(
            written_retention(&[None], &BTreeMap::new(), &none, "snowplow"),
            None
        );
    }
}
