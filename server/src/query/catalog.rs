//! The DataFusion catalog a query plans against: one schema per visible tenant (its Delta
//! tables by dataset name) and `system`. Tables load lazily, at the version a ticket pins
//! or the latest one, and every version read is recorded for the ticket.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use datafusion::catalog::{CatalogProvider, SchemaProvider, TableProvider};
use datafusion::error::Result as DfResult;

use super::lake_scan::{LakeScan, ScanRetention};
use super::retention::QueryRetention;
use arrow::datatypes::SchemaRef;

use super::system::{SystemSchema, SystemTables};
use super::{QueryError, Scope, SYSTEM_SCHEMA};
use crate::lake::LakeTables;

type Key = (String, String);

/// Table versions: those a ticket pins, and those the plan actually read.
#[derive(Debug, Default)]
pub struct Versions {
    pinned: HashMap<Key, u64>,
    read: Mutex<BTreeMap<Key, u64>>,
}

impl Versions {
    pub fn pinned(pins: impl IntoIterator<Item = (String, String, u64)>) -> Self {
        Self {
            pinned: pins.into_iter().map(|(t, d, v)| ((t, d), v)).collect(),
            read: Mutex::default(),
        }
    }

    fn pin_of(&self, tenant: &str, dataset: &str) -> Option<u64> {
        self.pinned
            .get(&(tenant.to_string(), dataset.to_string()))
            .copied()
    }

    fn record(&self, tenant: &str, dataset: &str, version: u64) {
        self.read
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((tenant.to_string(), dataset.to_string()), version);
    }

    /// (tenant, dataset, version) of every table the plan read.
    pub fn read(&self) -> Vec<(String, String, u64)> {
        self.read
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|((t, d), v)| (t.clone(), d.clone(), *v))
            .collect()
    }
}

#[derive(Debug)]
pub struct LakeCatalog {
    tenants: BTreeMap<String, Arc<TenantSchema>>,
    system: Arc<SystemSchema>,
    system_tables: SystemTables,
}

impl LakeCatalog {
    /// The catalog of `scope`: the tenant's own schema, or every tenant's for an admin.
    pub async fn new(
        scope: &Scope,
        tables: Arc<LakeTables>,
        system_tables: SystemTables,
        versions: Arc<Versions>,
        retention: QueryRetention,
    ) -> Result<Self, QueryError> {
        let visible = match scope.tenant() {
            Some(own) => vec![own.to_string()],
            None => tables.tenants().await?,
        };
        let mut tenants = BTreeMap::new();
        for tenant in &visible {
            let names = tables.existing_names(tenant).await?;
            tenants.insert(
                tenant.clone(),
                Arc::new(TenantSchema {
                    tenant: tenant.clone(),
                    names,
                    tables: tables.clone(),
                    versions: versions.clone(),
                    retention: retention.clone(),
                }),
            );
        }
        let system = Arc::new(SystemSchema::new(visible, system_tables.clone()));
        Ok(Self {
            tenants,
            system,
            system_tables,
        })
    }

    /// Names of the schemas a caller can see, `system` last.
    pub fn schema_names_ordered(&self) -> Vec<String> {
        let mut names: Vec<String> = self.tenants.keys().cloned().collect();
        names.push(SYSTEM_SCHEMA.to_string());
        names
    }

    /// `(schema, table)` of every table the caller can see.
    pub fn all_tables(&self) -> Vec<(String, String)> {
        let mut all = Vec::new();
        for (tenant, schema) in &self.tenants {
            all.extend(schema.names.iter().map(|n| (tenant.clone(), n.clone())));
        }
        all.extend(
            self.system_tables
                .names()
                .into_iter()
                .map(|n| (SYSTEM_SCHEMA.to_string(), n)),
        );
        all
    }

    /// The schema of a system table.
    pub fn system_table_schema(&self, name: &str) -> Option<SchemaRef> {
        self.system_tables.schema_of(name)
    }

    pub fn has_schema(&self, name: &str) -> bool {
        name == SYSTEM_SCHEMA || self.tenants.contains_key(name)
    }

    /// A readable list of the caller's schemas, for error messages.
    pub fn visible_list(&self) -> String {
        self.schema_names_ordered().join(", ")
    }
}

impl CatalogProvider for LakeCatalog {
    fn schema_names(&self) -> Vec<String> {
        self.schema_names_ordered()
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        if name == SYSTEM_SCHEMA {
            return Some(self.system.clone());
        }
        self.tenants
            .get(name)
            .map(|s| s.clone() as Arc<dyn SchemaProvider>)
    }
}

/// One tenant's Delta tables, by dataset name.
#[derive(Debug)]
pub struct TenantSchema {
    tenant: String,
    names: Vec<String>,
    tables: Arc<LakeTables>,
    versions: Arc<Versions>,
    retention: QueryRetention,
}

impl TenantSchema {
    fn unknown(&self, name: &str) -> QueryError {
        QueryError::UnknownTable {
            schema: self.tenant.clone(),
            table: name.to_string(),
            available: if self.names.is_empty() {
                "none yet (nothing was ingested)".into()
            } else {
                self.names.join(", ")
            },
        }
    }
}

#[tonic::async_trait]
impl SchemaProvider for TenantSchema {
    fn table_names(&self) -> Vec<String> {
        self.names.clone()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        let dataset = match self.tables.dataset(name) {
            Some(d) if self.names.iter().any(|n| n == name) => d,
            _ => return Err(self.unknown(name).into_datafusion()),
        };
        let pin = self.versions.pin_of(&self.tenant, name);
        let loaded = self
            .tables
            .load(&self.tenant, &dataset, pin)
            .await
            .map_err(|e| QueryError::Lake(e).into_datafusion())?
            .ok_or_else(|| self.unknown(name).into_datafusion())?;
        self.versions.record(&self.tenant, name, loaded.version());
        let provider = loaded.table.table_provider().await?;
        let retention = ScanRetention {
            retention: self.retention.clone(),
            tenant: self.tenant.clone(),
            dataset: name.to_string(),
        };
        Ok(Some(LakeScan::new(provider, retention)))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }
}
