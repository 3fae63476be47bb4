//! `QueryEngine`: plans a caller's SQL against its scoped catalog (pinning table versions
//! into a signed ticket) and runs a planned query as a limited, cancellable stream.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use bytesize::ByteSize;
use datafusion::dataframe::DataFrame;
use datafusion::error::DataFusionError;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::prelude::{SessionConfig, SessionContext};
use lakeport_proto::{QueryTicket, TableVersion};

use super::catalog::{LakeCatalog, Versions};
use super::limits::{ConcurrencyLimit, LimitedStream};
use super::plan_cache::PlanCache;
use super::retention::QueryRetention;
use super::system::SystemTables;
use super::ticket::TicketSigner;
use super::{guard, utc, QueryError, Scope, CATALOG};
use crate::lake::{LakeTables, SystemTable};

/// Limits and tickets of queries (from `[query]`).
#[derive(Debug, Clone)]
pub struct QuerySettings {
    /// Memory one query may use for sorts, joins and aggregations.
    pub memory_limit: usize,
    /// Longest a query may run, from DoGet to its last batch.
    pub timeout: std::time::Duration,
    /// Queries one tenant (or the admin) may run at once.
    pub max_concurrent: usize,
    /// Longest a query waits in its tenant's queue for a place.
    pub queue_timeout: std::time::Duration,
    /// Signs tickets; `None`: random per process.
    pub ticket_secret: Option<String>,
    pub ticket_ttl: std::time::Duration,
}

#[derive(Debug)]
pub struct QueryEngine {
    tables: Arc<LakeTables>,
    system: SystemTables,
    /// Shared by every query's runtime: Parquet metadata cache, spill files, object stores.
    /// Each query only gets its own memory pool.
    base_runtime: Arc<RuntimeEnv>,
    signer: TicketSigner,
    concurrency: ConcurrencyLimit,
    plans: PlanCache,
    config: QuerySettings,
    retention: QueryRetention,
}

/// A planned query: ready to run, its result schema as Flight clients will see it, and the
/// table versions it reads.
pub struct Planned {
    pub frame: DataFrame,
    pub schema: SchemaRef,
    pub versions: Vec<TableVersion>,
}

impl QueryEngine {
    /// `system` holds the system tables other subsystems serve (maintenance, quality,
    /// readiness, tenants, storage); the query wing adds its own.
    pub fn new(
        tables: Arc<LakeTables>,
        config: QuerySettings,
        system: Vec<Arc<dyn SystemTable>>,
        retention: QueryRetention,
    ) -> Self {
        Self {
            system: SystemTables::new(&tables, system, retention.clone()),
            retention,
            base_runtime: Arc::new(RuntimeEnv::default()),
            signer: TicketSigner::new(config.ticket_secret.as_deref(), config.ticket_ttl),
            concurrency: ConcurrencyLimit::new(config.max_concurrent, config.queue_timeout),
            plans: PlanCache::default(),
            tables,
            config,
        }
    }

    /// The catalog `scope` sees (for the Flight SQL metadata calls).
    pub async fn catalog(&self, scope: &Scope) -> Result<LakeCatalog, QueryError> {
        let versions = Arc::new(Versions::default());
        LakeCatalog::new(
            scope,
            self.tables.clone(),
            self.system.clone(),
            versions,
            self.retention.clone(),
        )
        .await
    }

    /// Parses, checks and plans `sql`; tables load at the `pins` versions, or the latest.
    pub async fn plan(
        &self,
        scope: &Scope,
        sql: &str,
        pins: &[TableVersion],
    ) -> Result<Planned, QueryError> {
        let versions = Arc::new(Versions::pinned(
            pins.iter()
                .map(|p| (p.tenant.clone(), p.dataset.clone(), p.version)),
        ));
        let catalog = Arc::new(
            LakeCatalog::new(
                scope,
                self.tables.clone(),
                self.system.clone(),
                versions.clone(),
                self.retention.clone(),
            )
            .await?,
        );
        let ctx = self.session(&scope.default_schema)?;
        ctx.register_catalog(CATALOG, catalog.clone());
        let state = ctx.state();
        let dialect = state.config().options().sql_parser.dialect;
        let statement = state
            .sql_to_statement(sql, &dialect)
            .map_err(|e| self.error(e))?;
        guard::check_statement(&statement)?;
        let references = state
            .resolve_table_references(&statement)
            .map_err(|e| self.error(e))?;
        guard::check_references(&references, scope, &catalog)?;
        let plan = state
            .statement_to_plan(statement)
            .await
            .map_err(|e| self.error(e))?;
        guard::check_plan(&plan)?;
        let frame = ctx
            .execute_logical_plan(plan)
            .await
            .map_err(|e| self.error(e))?;
        let schema = flight_schema(frame.schema().as_arrow());
        let versions = versions
            .read()
            .into_iter()
            .map(|(tenant, dataset, version)| TableVersion {
                tenant,
                dataset,
                version,
            })
            .collect();
        Ok(Planned {
            frame,
            schema,
            versions,
        })
    }

    /// Keeps the plan `ticket` was signed for, for the `DoGet` that redeems it.
    pub fn keep_plan(&self, ticket: Vec<u8>, planned: Planned) {
        self.plans.put(ticket, planned);
    }

    /// The plan kept for `ticket` (a verified ticket's handle), or `None` to plan again.
    pub fn kept_plan(&self, ticket: &[u8]) -> Option<Planned> {
        self.plans.take(ticket)
    }

    /// A session of its own per query, so its memory pool is the query's limit.
    fn session(&self, default_schema: &str) -> Result<SessionContext, QueryError> {
        let runtime = RuntimeEnvBuilder::from_runtime_env(&self.base_runtime)
            .with_memory_limit(self.config.memory_limit, 1.0)
            .build_arc()
            .map_err(|e| self.error(e))?;
        let config = SessionConfig::new()
            .with_information_schema(true)
            .with_create_default_catalog_and_schema(false)
            .with_default_catalog_and_schema(CATALOG, default_schema);
        let ctx = SessionContext::new_with_config_rt(config, runtime);
        utc::install(&ctx);
        Ok(ctx)
    }

    /// A tenant table's schema at its latest version, exactly as `SELECT *` returns it,
    /// read from its table provider without planning a query.
    pub async fn table_schema(&self, tenant: &str, table: &str) -> Result<SchemaRef, QueryError> {
        let unknown = || QueryError::UnknownTable {
            schema: tenant.to_string(),
            table: table.to_string(),
            available: "see GetTables".into(),
        };
        let dataset = self.tables.dataset(table).ok_or_else(unknown)?;
        let loaded = self
            .tables
            .load(tenant, &dataset, None)
            .await?
            .ok_or_else(unknown)?;
        let provider = loaded
            .table
            .table_provider()
            .await
            .map_err(|e| self.error(e))?;
        Ok(flight_schema(&provider.schema()))
    }

    /// Starts a planned query, holding one of the caller's concurrency slots until the
    /// stream ends or is dropped; waits in the caller's queue while its slots are taken.
    pub async fn execute(
        &self,
        scope: &Scope,
        planned: Planned,
    ) -> Result<LimitedStream, QueryError> {
        let slot = self.concurrency.acquire(&scope.principal_tag()).await?;
        let stream = planned
            .frame
            .execute_stream()
            .await
            .map_err(|e| self.error(e))?;
        Ok(LimitedStream::new(stream, self.config.timeout, slot))
    }

    /// A signed ticket (or prepared-statement handle) for `sql` planned in `scope`.
    pub fn ticket(
        &self,
        scope: &Scope,
        sql: &str,
        versions: Vec<TableVersion>,
        prepared: bool,
    ) -> Vec<u8> {
        self.signer.sign(&QueryTicket {
            principal: scope.principal_tag(),
            default_schema: scope.default_schema.clone(),
            sql: sql.to_string(),
            versions,
            issued_at_ms: chrono::Utc::now().timestamp_millis(),
            prepared,
        })
    }

    /// A ticket (`prepared` false) or prepared-statement handle (`prepared` true), once it
    /// verifies for the caller: the scope it was planned in and its content.
    pub fn redeem(
        &self,
        bytes: &[u8],
        caller: Scope,
        prepared: bool,
    ) -> Result<(Scope, QueryTicket), QueryError> {
        let mut ticket =
            self.signer
                .verify(bytes, &caller, chrono::Utc::now().timestamp_millis())?;
        match (prepared, ticket.prepared) {
            (false, true) => Err(QueryError::BadTicket(
                "a prepared-statement handle is not a DoGet ticket; call GetFlightInfo with it"
                    .into(),
            )),
            (true, false) => Err(QueryError::BadTicket(
                "not a prepared-statement handle".into(),
            )),
            _ => {
                let scope = Scope {
                    principal: caller.principal,
                    default_schema: std::mem::take(&mut ticket.default_schema),
                };
                Ok((scope, ticket))
            }
        }
    }

    /// A DataFusion error as the client should see it, with the memory limit filled in.
    pub fn error(&self, e: DataFusionError) -> QueryError {
        match QueryError::from(e) {
            QueryError::MemoryExceeded { detail, .. } => QueryError::MemoryExceeded {
                limit: ByteSize(self.config.memory_limit as u64).to_string_as(true),
                detail,
            },
            other => other,
        }
    }
}

/// The schema Flight clients receive: the Flight encoder sends dictionary columns as
/// their plain values, so the advertised schema must too.
fn flight_schema(schema: &Schema) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Dictionary(_, value) => {
                f.as_ref().clone().with_data_type(value.as_ref().clone())
            }
            _ => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}
