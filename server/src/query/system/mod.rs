//! `system.*`: tables about lakeport's own state, each holding only the rows of the
//! caller's tenants. The wing's own (`commits`, `partitions`, `tables`) are computed from
//! the Delta log here; the others are served by the subsystems that hold their state and
//! handed in by the wiring as `SystemTable`s.

mod commits;
mod partitions;
mod tables;

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use datafusion::catalog::{MemTable, SchemaProvider, TableProvider};
use datafusion::error::Result as DfResult;

use super::{QueryError, QueryRetention};
use crate::lake::{LakeTables, SystemTable};

/// Every system table the catalog serves, by name.
#[derive(Debug, Clone)]
pub struct SystemTables(Arc<Vec<Arc<dyn SystemTable>>>);

impl SystemTables {
    /// The query wing's own tables over `lake`, plus the `others` other subsystems serve.
    pub fn new(
        lake: &Arc<LakeTables>,
        others: Vec<Arc<dyn SystemTable>>,
        retention: QueryRetention,
    ) -> Self {
        let mut all: Vec<Arc<dyn SystemTable>> = vec![
            Arc::new(commits::CommitsTable::new(lake.clone())),
            Arc::new(partitions::PartitionsTable::new(lake.clone(), retention)),
            Arc::new(tables::TablesTable::new(lake.clone())),
        ];
        all.extend(others);
        all.sort_by_key(|t| t.name());
        Self(Arc::new(all))
    }

    /// Names in the order they are listed.
    pub fn names(&self) -> Vec<String> {
        self.0.iter().map(|t| t.name().to_string()).collect()
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn SystemTable>> {
        self.0.iter().find(|t| t.name() == name)
    }

    pub fn schema_of(&self, name: &str) -> Option<SchemaRef> {
        self.get(name).map(|t| t.schema())
    }
}

/// The `system` schema as one caller sees it.
#[derive(Debug)]
pub struct SystemSchema {
    tenants: Vec<String>,
    tables: SystemTables,
}

impl SystemSchema {
    pub fn new(tenants: Vec<String>, tables: SystemTables) -> Self {
        Self { tenants, tables }
    }
}

#[tonic::async_trait]
impl SchemaProvider for SystemSchema {
    fn table_names(&self) -> Vec<String> {
        self.tables.names()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        let Some(table) = self.tables.get(name) else {
            return Err(QueryError::UnknownTable {
                schema: "system".into(),
                table: name.into(),
                available: self.tables.names().join(", "),
            }
            .into_datafusion());
        };
        let batch = table
            .rows(&self.tenants)
            .await
            .map_err(|e| QueryError::Lake(e).into_datafusion())?;
        Ok(Some(Arc::new(MemTable::try_new(
            table.schema(),
            vec![vec![batch]],
        )?)))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.tables.get(name).is_some()
    }
}

fn utc(unit: arrow::datatypes::TimeUnit) -> arrow::datatypes::DataType {
    arrow::datatypes::DataType::Timestamp(unit, Some("UTC".into()))
}
