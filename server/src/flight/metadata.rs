//! Flight SQL metadata: catalogs, schemas, tables (with their Arrow schemas), table types
//! and SqlInfo, each listing only what the caller's scope can see.

use std::sync::{Arc, OnceLock};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::sql::metadata::{SqlInfoData, SqlInfoDataBuilder};
use arrow_flight::sql::{
    CommandGetCatalogs, CommandGetDbSchemas, CommandGetSqlInfo, CommandGetTableTypes,
    CommandGetTables, ProstMessageExt, SqlInfo, SqlNullOrdering, SqlSupportedCaseSensitivity,
    SqlSupportedTransaction,
};
use arrow_flight::{FlightDescriptor, FlightEndpoint, FlightInfo, Ticket};
use futures::TryStreamExt;
use prost::Message;
use tonic::Status;

use super::query::DoGetStream;
use super::CallError;
use crate::error::{flight_status, Error};
use crate::query::{QueryEngine, QueryError, Scope, CATALOG, SYSTEM_SCHEMA};

pub(super) const TABLE: &str = "TABLE";
pub(super) const SYSTEM_TABLE: &str = "SYSTEM TABLE";

/// FlightInfo for a metadata command: its ticket is the command itself, answered in DoGet
/// for whoever redeems it (the listing depends only on the caller's credentials).
pub(super) fn command_info(
    command: &impl ProstMessageExt,
    schema: &arrow::datatypes::Schema,
    descriptor: FlightDescriptor,
) -> Result<FlightInfo, Status> {
    let ticket = Ticket::new(command.as_any().encode_to_vec());
    Ok(FlightInfo::new()
        .try_with_schema(schema)
        .map_err(|e| {
            Error::from(CallError::Encode {
                what: "the schema",
                detail: e.to_string(),
            })
        })?
        .with_endpoint(FlightEndpoint::new().with_ticket(ticket))
        .with_descriptor(descriptor))
}

fn one_batch(schema: SchemaRef, batch: Result<RecordBatch, FlightError>) -> DoGetStream {
    let stream = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .build(futures::stream::once(async move { batch }))
        .map_err(flight_status);
    Box::pin(stream)
}

pub(super) fn catalogs(command: CommandGetCatalogs) -> DoGetStream {
    let mut builder = command.into_builder();
    builder.append(CATALOG);
    one_batch(builder.schema(), builder.build())
}

pub(super) async fn schemas(
    engine: &QueryEngine,
    scope: &Scope,
    command: CommandGetDbSchemas,
) -> Result<DoGetStream, Status> {
    let catalog = engine.catalog(scope).await.map_err(Error::from)?;
    let mut builder = command.into_builder();
    for schema in catalog.schema_names_ordered() {
        builder.append(CATALOG, schema);
    }
    Ok(one_batch(builder.schema(), builder.build()))
}

pub(super) async fn tables(
    engine: &QueryEngine,
    scope: &Scope,
    command: CommandGetTables,
) -> Result<DoGetStream, Status> {
    let catalog = engine.catalog(scope).await.map_err(Error::from)?;
    let mut builder = command.into_builder();
    let include_schema = builder.include_schema();
    let empty = arrow::datatypes::Schema::empty();
    for (schema, table) in catalog.all_tables() {
        let (kind, arrow_schema) = if schema == SYSTEM_SCHEMA {
            (SYSTEM_TABLE, catalog.system_table_schema(&table))
        } else if include_schema {
            let table_schema = engine
                .table_schema(&schema, &table)
                .await
                .map_err(Error::from)?;
            (TABLE, Some(table_schema))
        } else {
            (TABLE, None)
        };
        let arrow_schema = arrow_schema.unwrap_or_else(|| Arc::new(empty.clone()));
        builder
            .append(CATALOG, &schema, &table, kind, &arrow_schema)
            .map_err(|e| {
                Error::from(CallError::Encode {
                    what: "the table list",
                    detail: e.to_string(),
                })
            })?;
    }
    Ok(one_batch(builder.schema(), builder.build()))
}

pub(super) fn table_types(command: CommandGetTableTypes) -> DoGetStream {
    let mut builder = command.into_builder();
    builder.append(TABLE);
    builder.append(SYSTEM_TABLE);
    one_batch(builder.schema(), builder.build())
}

pub(super) fn sql_info(command: CommandGetSqlInfo) -> DoGetStream {
    let builder = command.into_builder(sql_info_data());
    one_batch(builder.schema(), builder.build())
}

pub(super) fn sql_info_data() -> &'static SqlInfoData {
    static DATA: OnceLock<SqlInfoData> = OnceLock::new();
    DATA.get_or_init(|| {
        let mut b = SqlInfoDataBuilder::new();
        b.append(SqlInfo::FlightSqlServerName, "lakeport");
        b.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
        b.append(SqlInfo::FlightSqlServerArrowVersion, "59");
        b.append(SqlInfo::FlightSqlServerReadOnly, true);
        b.append(SqlInfo::FlightSqlServerSql, true);
        b.append(SqlInfo::FlightSqlServerSubstrait, false);
        b.append(
            SqlInfo::FlightSqlServerTransaction,
            SqlSupportedTransaction::None as i32,
        );
        b.append(SqlInfo::FlightSqlServerCancel, false);
        b.append(SqlInfo::SqlDdlCatalog, false);
        b.append(SqlInfo::SqlDdlSchema, false);
        b.append(SqlInfo::SqlDdlTable, false);
        b.append(
            SqlInfo::SqlIdentifierCase,
            SqlSupportedCaseSensitivity::SqlCaseSensitivityLowercase as i32,
        );
        b.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
        b.append(
            SqlInfo::SqlQuotedIdentifierCase,
            SqlSupportedCaseSensitivity::SqlCaseSensitivityUnknown as i32,
        );
        b.append(SqlInfo::SqlAllTablesAreSelectable, true);
        b.append(
            SqlInfo::SqlNullOrdering,
            SqlNullOrdering::SqlNullsSortedHigh as i32,
        );
        b.append(SqlInfo::SqlSchemaTerm, "schema");
        b.append(SqlInfo::SqlCatalogTerm, "catalog");
        b.append(SqlInfo::SqlProcedureTerm, "procedure");
        b.append(SqlInfo::SqlCatalogAtStart, true);
        b.append(SqlInfo::SqlSupportsColumnAliasing, true);
        b.append(SqlInfo::SqlNullPlusNullIsNull, true);
        b.append(SqlInfo::SqlSupportsTableCorrelationNames, true);
        b.append(SqlInfo::SqlSupportsExpressionsInOrderBy, true);
        b.append(SqlInfo::SqlSupportsOrderByUnrelated, true);
        b.append(SqlInfo::SqlSupportsLikeEscapeClause, true);
        b.append(SqlInfo::SqlTransactionsSupported, false);
        b.append(SqlInfo::SqlBatchUpdatesSupported, false);
        b.append(SqlInfo::SqlSavepointsSupported, false);
        b.append(SqlInfo::SqlNamedParametersSupported, false);
        b.append(SqlInfo::SqlStoredProceduresSupported, false);
        b.build().expect("static SqlInfo values build")
    })
}

/// The answer for a Flight SQL command lakeport does not implement.
pub(super) fn unsupported(command: &str, why: &str) -> Status {
    Error::from(CallError::Unimplemented {
        command: command.to_string(),
        why: why.to_string(),
    })
    .into()
}

/// The answer for a command that would write through SQL.
pub(super) fn read_only(command: &str) -> Status {
    Error::from(QueryError::ReadOnly(command.to_string())).into()
}
