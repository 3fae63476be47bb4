//! The datasets a tenant can write: the built-ins with fixed schemas and custom ones from
//! config whose schema evolves with what producers send.

mod builtin;
pub mod expectations;

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;

use crate::names::check_name;
pub use expectations::{Check, Expectations, Freshness};

/// Name of each tenant's dead-letter table.
pub const REJECTED_DATASET: &str = "_rejected";
/// Partition columns derived from the event time, in path order.
pub const TIME_PARTITION_COLUMNS: [&str; 4] = ["year", "month", "day", "hour"];
/// Partition column derived from the app column.
pub const APP_PARTITION_COLUMN: &str = "app_id";

#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("unknown dataset {0:?}: built-ins are snowplow, otel_logs, otel_spans, otel_metrics, cloudevents; declare custom ones under [datasets.NAME] in the config")]
    Unknown(String),
    #[error("dataset {name:?}: {message}")]
    BadConfig { name: String, message: String },
}

/// `[datasets.NAME]` as the datasets see it: the columns of a custom dataset, or none for
/// a built-in that the config only routes or tunes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatasetSpec {
    pub custom: Option<CustomColumns>,
}

/// The columns a custom dataset partitions by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomColumns {
    pub time_column: String,
    pub app_column: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Dataset {
    pub name: String,
    /// Fixed schema of a built-in; `None` for custom datasets, whose table schema evolves.
    pub schema: Option<SchemaRef>,
    /// Columns every batch must carry.
    pub required: Vec<String>,
    /// Column whose UTC hour partitions the table.
    pub time_column: String,
    /// Column whose value becomes the `app_id=` partition.
    pub app_column: Option<String>,
}

impl Dataset {
    /// Partition columns as recorded in Delta's `partitionColumns`.
    pub fn partition_columns(&self) -> Vec<String> {
        self.app_column
            .iter()
            .map(|_| APP_PARTITION_COLUMN.to_string())
            .chain(TIME_PARTITION_COLUMNS.iter().map(|c| c.to_string()))
            .collect()
    }

    /// True when the app column is itself named `app_id` and so lives only in the path.
    pub fn app_column_is_partition(&self) -> bool {
        self.app_column.as_deref() == Some(APP_PARTITION_COLUMN)
    }

    pub fn is_custom(&self) -> bool {
        self.schema.is_none()
    }
}

/// All datasets known to the server.
#[derive(Debug, Clone)]
pub struct Datasets {
    by_name: BTreeMap<String, Arc<Dataset>>,
    rejected: Arc<Dataset>,
}

fn builtin(
    name: &str,
    schema: SchemaRef,
    required: &[&str],
    time: &str,
    app: Option<&str>,
) -> Dataset {
    Dataset {
        name: name.into(),
        schema: Some(schema),
        required: required.iter().map(|c| c.to_string()).collect(),
        time_column: time.into(),
        app_column: app.map(str::to_string),
    }
}

impl Datasets {
    pub fn new(config: &BTreeMap<String, DatasetSpec>) -> Result<Self, DatasetError> {
        use builtin::*;
        let mut by_name: BTreeMap<String, Dataset> = [
            builtin(
                "snowplow",
                snowplow(),
                SNOWPLOW_REQUIRED,
                "collector_tstamp",
                Some("app_id"),
            ),
            builtin(
                "otel_logs",
                otel_logs(),
                OTEL_LOGS_REQUIRED,
                "time",
                Some("service_name"),
            ),
            builtin(
                "otel_spans",
                otel_spans(),
                OTEL_SPANS_REQUIRED,
                "start_time",
                Some("service_name"),
            ),
            builtin(
                "otel_metrics",
                otel_metrics(),
                OTEL_METRICS_REQUIRED,
                "time",
                Some("service_name"),
            ),
            builtin(
                "cloudevents",
                cloudevents(),
                CLOUDEVENTS_REQUIRED,
                "time",
                None,
            ),
        ]
        .into_iter()
        .map(|d| (d.name.clone(), d))
        .collect();

        for (name, settings) in config {
            let bad = |message: String| DatasetError::BadConfig {
                name: name.clone(),
                message,
            };
            check_name("dataset name", name).map_err(|e| bad(e.to_string()))?;
            match (&settings.custom, by_name.get_mut(name)) {
                (Some(_), Some(_)) => {
                    return Err(bad("is built in; only `store` may be set for it".into()))
                }
                (None, Some(_)) => {}
                (None, None) => return Err(bad("a custom dataset needs time_column".into())),
                (Some(custom), None) => {
                    let reserved = TIME_PARTITION_COLUMNS.iter().chain([&APP_PARTITION_COLUMN]);
                    for column in reserved {
                        if custom.time_column == *column
                            || (custom.app_column.as_deref() == Some(column)
                                && *column != APP_PARTITION_COLUMN)
                        {
                            return Err(bad(format!("{column:?} is a partition column name and cannot be the time or app column")));
                        }
                    }
                    let mut required = vec![custom.time_column.clone()];
                    required.extend(custom.app_column.clone());
                    by_name.insert(
                        name.clone(),
                        Dataset {
                            name: name.clone(),
                            schema: None,
                            required,
                            time_column: custom.time_column.clone(),
                            app_column: custom.app_column.clone(),
                        },
                    );
                }
            }
        }
        let rejected = Arc::new(builtin(
            REJECTED_DATASET,
            rejected(),
            &[],
            "rejected_at",
            None,
        ));
        let by_name = by_name.into_iter().map(|(k, v)| (k, Arc::new(v))).collect();
        Ok(Self { by_name, rejected })
    }

    /// A dataset producers may write to.
    pub fn get(&self, name: &str) -> Result<Arc<Dataset>, DatasetError> {
        self.by_name
            .get(name)
            .cloned()
            .ok_or_else(|| DatasetError::Unknown(name.to_string()))
    }

    pub fn rejected(&self) -> Arc<Dataset> {
        self.rejected.clone()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Dataset>> {
        self.by_name.values()
    }
}
