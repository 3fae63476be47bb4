//! What a dataset's data must satisfy, dbt-style: freshness of its event time, columns
//! that are never null, keys that are unique (within each day, or over a window), and
//! columns that take only accepted values. Declared under `[datasets.NAME.quality]`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `[datasets.NAME.quality]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Expectations {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub freshness: Option<Freshness>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_null: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unique: Vec<String>,
    /// Duplicates are looked for among the rows of this window back from now (e.g. `7d`);
    /// unset: within each day partition.
    #[serde(
        deserialize_with = "optional_duration",
        serialize_with = "duration_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub unique_window: Option<Duration>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub accepted_values: BTreeMap<String, Vec<String>>,
}

/// `freshness = { warn_after = "2h", error_after = "6h" }`: the newest event time may be
/// at most this old.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Freshness {
    #[serde(
        deserialize_with = "optional_duration",
        serialize_with = "duration_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub warn_after: Option<Duration>,
    #[serde(
        deserialize_with = "optional_duration",
        serialize_with = "duration_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub error_after: Option<Duration>,
}

/// One expectation on one column (or on the table, for freshness).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    Freshness(Freshness),
    NotNull(String),
    Unique {
        column: String,
        window: Option<Duration>,
    },
    AcceptedValues {
        column: String,
        values: Vec<String>,
    },
}

impl Check {
    pub fn name(&self) -> &'static str {
        match self {
            Check::Freshness(_) => "freshness",
            Check::NotNull(_) => "not_null",
            Check::Unique { .. } => "unique",
            Check::AcceptedValues { .. } => "accepted_values",
        }
    }

    pub fn column(&self) -> Option<&str> {
        match self {
            Check::Freshness(_) => None,
            Check::NotNull(column)
            | Check::Unique { column, .. }
            | Check::AcceptedValues { column, .. } => Some(column),
        }
    }
}

impl Expectations {
    pub fn is_empty(&self) -> bool {
        self.checks().is_empty()
    }

    /// Every expectation, one check each, in a stable order.
    pub fn checks(&self) -> Vec<Check> {
        let mut checks = Vec::new();
        if let Some(freshness) = &self.freshness {
            checks.push(Check::Freshness(freshness.clone()));
        }
        checks.extend(self.not_null.iter().cloned().map(Check::NotNull));
        checks.extend(self.unique.iter().map(|column| Check::Unique {
            column: column.clone(),
            window: self.unique_window,
        }));
        checks.extend(
            self.accepted_values
                .iter()
                .map(|(column, values)| Check::AcceptedValues {
                    column: column.clone(),
                    values: values.clone(),
                }),
        );
        checks
    }

    /// A problem a server should refuse to start with (or a `tenant.update` to take).
    pub fn problem(&self) -> Option<String> {
        if let Some(f) = &self.freshness {
            if f.warn_after.is_none() && f.error_after.is_none() {
                return Some("freshness needs warn_after or error_after".into());
            }
            if let (Some(warn), Some(error)) = (f.warn_after, f.error_after) {
                if warn > error {
                    return Some("freshness warn_after is longer than error_after".into());
                }
            }
        }
        if self.unique_window.is_some_and(|w| w.is_zero()) {
            return Some("unique_window must be more than 0s".into());
        }
        let columns = self
            .not_null
            .iter()
            .chain(&self.unique)
            .chain(self.accepted_values.keys());
        for column in columns {
            if column.is_empty() {
                return Some("an expectation names an empty column".into());
            }
        }
        if let Some((column, _)) = self.accepted_values.iter().find(|(_, v)| v.is_empty()) {
            return Some(format!("accepted_values of {column:?} lists no value"));
        }
        None
    }
}

/// Durations are written as read: `2h`, `7days`.
fn duration_text<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_str(&humantime::format_duration(*d).to_string()),
        None => s.serialize_none(),
    }
}

fn optional_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let text: Option<String> = Option::deserialize(d)?;
    text.map(|t| humantime::parse_duration(&t).map_err(serde::de::Error::custom))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectations_read_from_toml_give_one_check_each() {
        let e: Expectations = toml::from_str(
            r#"
            freshness = { warn_after = "2h", error_after = "6h" }
            not_null = ["event_id", "app_id"]
            unique = ["event_id"]
            unique_window = "7d"
            accepted_values = { platform = ["web", "mob"] }
            "#,
        )
        .unwrap();
        let names: Vec<_> = e
            .checks()
            .iter()
            .map(|c| (c.name(), c.column().map(String::from)))
            .collect();
        assert_eq!(
            names,
            vec![
                ("freshness", None),
                ("not_null", Some("event_id".into())),
                ("not_null", Some("app_id".into())),
                ("unique", Some("event_id".into())),
                ("accepted_values", Some("platform".into())),
            ]
        );
        assert_eq!(e.unique_window, Some(Duration::from_secs(7 * 86400)));
        assert_eq!(e.problem(), None);
    }

    #[test]
    fn inconsistent_expectations_are_named() {
        let e: Expectations =
            toml::from_str(r#"freshness = { warn_after = "6h", error_after = "2h" }"#).unwrap();
        assert!(e.problem().unwrap().contains("warn_after"));
        let e: Expectations = toml::from_str(r#"accepted_values = { platform = [] }"#).unwrap();
        assert!(e.problem().unwrap().contains("platform"));
        assert!(toml::from_str::<Expectations>(r#"not_nul = ["x"]"#).is_err());
        assert!(toml::from_str::<Expectations>(r#"freshness = { warn_after = "soon" }"#).is_err());
    }

    #[test]
    fn expectations_survive_a_json_round_trip() {
        let e: Expectations = toml::from_str(
            r#"
            freshness = { error_after = "6h" }
            unique = ["id"]
            unique_window = "7d"
            "#,
        )
        .unwrap();
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(
            json,
            r#"{"freshness":{"error_after":"6h"},"unique":["id"],"unique_window":"7days"}"#
        );
        assert_eq!(serde_json::from_str::<Expectations>(&json).unwrap(), e);
    }
}
