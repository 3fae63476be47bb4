//! arrow-flight's `FlightSqlService`, overriding what lakeport supports: ingest (DoPut),
//! read-only queries and prepared statements, and the metadata calls clients browse with.

use std::sync::Arc;

use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::server::{DoPutError, FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionBeginSavepointRequest, ActionBeginSavepointResult, ActionBeginTransactionRequest,
    ActionBeginTransactionResult, ActionClosePreparedStatementRequest,
    ActionCreatePreparedStatementRequest, ActionCreatePreparedStatementResult,
    ActionEndSavepointRequest, ActionEndTransactionRequest, Any, Command, CommandGetCatalogs,
    CommandGetCrossReference, CommandGetDbSchemas, CommandGetExportedKeys, CommandGetImportedKeys,
    CommandGetPrimaryKeys, CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables,
    CommandGetXdbcTypeInfo, CommandPreparedStatementQuery, CommandPreparedStatementUpdate,
    CommandStatementIngest, CommandStatementQuery, CommandStatementSubstraitPlan,
    CommandStatementUpdate, DoPutPreparedStatementResult, SqlInfo, TicketStatementQuery,
};
use arrow_flight::{Action, ActionType, FlightDescriptor, FlightInfo, HandshakeRequest, Ticket};
use tonic::{Request, Response, Status, Streaming};

use super::actions::{self, Actions};
use super::handshake::{handshake, HandshakeStream};
use super::ingest::{put_path, put_statement_ingest};
use super::metadata::{self, command_info, read_only, unsupported};
use super::query::{self, scope, DoGetStream};
use crate::auth::Authenticator;
use crate::error::Error;
use crate::ingest::IngestError;
use crate::ingest::Ingestor;
use crate::query::{QueryEngine, Scope};

pub struct SqlService {
    ingestor: Arc<Ingestor>,
    engine: Arc<QueryEngine>,
    actions: Arc<Actions>,
    auth: Arc<Authenticator>,
}

impl SqlService {
    pub fn new(
        ingestor: Arc<Ingestor>,
        engine: Arc<QueryEngine>,
        actions: Arc<Actions>,
        auth: Arc<Authenticator>,
    ) -> Self {
        Self {
            ingestor,
            engine,
            actions,
            auth,
        }
    }
}

impl SqlService {
    /// The caller's scope, with the tenant it reads restored first if it is archived (a
    /// query is a touch, like a write). An admin's query wakes the tenant it names by
    /// header; one across every tenant reads the live ones.
    async fn woken_scope<T>(&self, request: &Request<T>) -> Result<Scope, Status> {
        let scope = scope(request)?;
        let tenants = &self.actions.tenants;
        let tenant = match scope.tenant() {
            Some(tenant) => Some(tenant),
            None => Some(scope.default_schema.as_str()).filter(|t| tenants.is_known(t)),
        };
        if let Some(tenant) = tenant {
            tenants.wake(tenant).await.map_err(Error::from)?;
        }
        Ok(scope)
    }
}

const NO_KEYS: &str = "lakeport tables have no primary or foreign keys";
const NO_TRANSACTIONS: &str = "every ingest commits on its own and queries are read-only";

#[tonic::async_trait]
impl FlightSqlService for SqlService {
    type FlightService = SqlService;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<HandshakeStream>, Status> {
        handshake(&self.auth, request.metadata())
    }

    // ---- queries ----

    async fn get_flight_info_statement(
        &self,
        command: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let scope = self.woken_scope(&request).await?;
        let info =
            query::flight_info(&self.engine, &scope, &command.query, request.into_inner()).await?;
        Ok(Response::new(info))
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let scope = scope(&request)?;
        if let Some(tenant) = scope.tenant() {
            self.actions.tenants.record_query(tenant);
        }
        Ok(Response::new(
            query::do_get(&self.engine, ticket, scope).await?,
        ))
    }

    async fn do_action_create_prepared_statement(
        &self,
        command: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        if command.transaction_id.is_some() {
            return Err(unsupported("transactions", NO_TRANSACTIONS));
        }
        let scope = self.woken_scope(&request).await?;
        query::create_prepared(&self.engine, &scope, &command.query).await
    }

    async fn get_flight_info_prepared_statement(
        &self,
        command: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let caller = self.woken_scope(&request).await?;
        let (scope, sql) =
            query::prepared(&self.engine, &command.prepared_statement_handle, caller)?;
        let info = query::flight_info(&self.engine, &scope, &sql, request.into_inner()).await?;
        Ok(Response::new(info))
    }

    async fn do_put_prepared_statement_query(
        &self,
        command: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        let caller = scope(&request)?;
        query::prepared(&self.engine, &command.prepared_statement_handle, caller)?;
        query::check_no_parameters(request).await?;
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(command.prepared_statement_handle),
        })
    }

    async fn do_action_close_prepared_statement(
        &self,
        command: ActionClosePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        let caller = scope(&request)?;
        query::prepared(&self.engine, &command.prepared_statement_handle, caller)?;
        Ok(())
    }

    // ---- metadata ----

    async fn get_flight_info_catalogs(
        &self,
        command: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = command.into_builder().schema();
        Ok(Response::new(command_info(
            &command,
            &schema,
            request.into_inner(),
        )?))
    }

    async fn do_get_catalogs(
        &self,
        command: CommandGetCatalogs,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        Ok(Response::new(metadata::catalogs(command)))
    }

    async fn get_flight_info_schemas(
        &self,
        command: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = command.clone().into_builder().schema();
        Ok(Response::new(command_info(
            &command,
            &schema,
            request.into_inner(),
        )?))
    }

    async fn do_get_schemas(
        &self,
        command: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let scope = scope(&request)?;
        Ok(Response::new(
            metadata::schemas(&self.engine, &scope, command).await?,
        ))
    }

    async fn get_flight_info_tables(
        &self,
        command: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = command.clone().into_builder().schema();
        Ok(Response::new(command_info(
            &command,
            &schema,
            request.into_inner(),
        )?))
    }

    async fn do_get_tables(
        &self,
        command: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let scope = scope(&request)?;
        Ok(Response::new(
            metadata::tables(&self.engine, &scope, command).await?,
        ))
    }

    async fn get_flight_info_table_types(
        &self,
        command: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = command.into_builder().schema();
        Ok(Response::new(command_info(
            &command,
            &schema,
            request.into_inner(),
        )?))
    }

    async fn do_get_table_types(
        &self,
        command: CommandGetTableTypes,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        Ok(Response::new(metadata::table_types(command)))
    }

    async fn get_flight_info_sql_info(
        &self,
        command: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = command
            .clone()
            .into_builder(metadata::sql_info_data())
            .schema();
        Ok(Response::new(command_info(
            &command,
            &schema,
            request.into_inner(),
        )?))
    }

    async fn do_get_sql_info(
        &self,
        command: CommandGetSqlInfo,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        Ok(Response::new(metadata::sql_info(command)))
    }

    // ---- ingest ----

    async fn do_put_fallback(
        &self,
        request: Request<PeekableFlightDataStream>,
        _message: Any,
    ) -> Result<Response<<Self as FlightService>::DoPutStream>, Status> {
        let stream = put_path(&self.ingestor, &self.actions.tenants, request).await?;
        Ok(Response::new(stream))
    }

    async fn do_put_statement_ingest(
        &self,
        command: CommandStatementIngest,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        Ok(put_statement_ingest(&self.ingestor, &self.actions.tenants, command, request).await?)
    }

    async fn do_put_error_callback(
        &self,
        _request: Request<PeekableFlightDataStream>,
        error: DoPutError,
    ) -> Result<Response<<Self as FlightService>::DoPutStream>, Status> {
        let error = match error {
            DoPutError::MissingCommand => IngestError::EmptyStream,
            DoPutError::MissingFlightDescriptor => IngestError::BadDescriptor(
                "the first message must carry the flight descriptor".into(),
            ),
        };
        Err(Error::from(error).into())
    }

    // ---- refused: writes through SQL, keys, transactions, Substrait ----

    async fn do_put_statement_update(
        &self,
        _command: CommandStatementUpdate,
        _request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        Err(read_only("CommandStatementUpdate (executeUpdate)"))
    }

    async fn do_put_prepared_statement_update(
        &self,
        _command: CommandPreparedStatementUpdate,
        _request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        Err(read_only("CommandPreparedStatementUpdate (executeUpdate)"))
    }

    async fn get_flight_info_substrait_plan(
        &self,
        _command: CommandStatementSubstraitPlan,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        Err(unsupported(
            "CommandStatementSubstraitPlan",
            "send SQL text",
        ))
    }

    async fn get_flight_info_primary_keys(
        &self,
        _command: CommandGetPrimaryKeys,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        Err(unsupported("CommandGetPrimaryKeys", NO_KEYS))
    }

    async fn get_flight_info_exported_keys(
        &self,
        _command: CommandGetExportedKeys,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        Err(unsupported("CommandGetExportedKeys", NO_KEYS))
    }

    async fn get_flight_info_imported_keys(
        &self,
        _command: CommandGetImportedKeys,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        Err(unsupported("CommandGetImportedKeys", NO_KEYS))
    }

    async fn get_flight_info_cross_reference(
        &self,
        _command: CommandGetCrossReference,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        Err(unsupported("CommandGetCrossReference", NO_KEYS))
    }

    async fn get_flight_info_xdbc_type_info(
        &self,
        _command: CommandGetXdbcTypeInfo,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        Err(unsupported(
            "CommandGetXdbcTypeInfo",
            "column types are reported as Arrow schemas by GetTables",
        ))
    }

    async fn get_flight_info_fallback(
        &self,
        command: Command,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        Err(unsupported(
            command.type_url(),
            "not a query or metadata command lakeport knows",
        ))
    }

    async fn do_action_begin_transaction(
        &self,
        _command: ActionBeginTransactionRequest,
        _request: Request<Action>,
    ) -> Result<ActionBeginTransactionResult, Status> {
        Err(unsupported("BeginTransaction", NO_TRANSACTIONS))
    }

    async fn do_action_end_transaction(
        &self,
        _command: ActionEndTransactionRequest,
        _request: Request<Action>,
    ) -> Result<(), Status> {
        Err(unsupported("EndTransaction", NO_TRANSACTIONS))
    }

    async fn do_action_begin_savepoint(
        &self,
        _command: ActionBeginSavepointRequest,
        _request: Request<Action>,
    ) -> Result<ActionBeginSavepointResult, Status> {
        Err(unsupported("BeginSavepoint", NO_TRANSACTIONS))
    }

    async fn do_action_end_savepoint(
        &self,
        _command: ActionEndSavepointRequest,
        _request: Request<Action>,
    ) -> Result<(), Status> {
        Err(unsupported("EndSavepoint", NO_TRANSACTIONS))
    }

    async fn do_action_fallback(
        &self,
        request: Request<Action>,
    ) -> Result<Response<<Self as FlightService>::DoActionStream>, Status> {
        actions::do_action(&self.actions, request)
            .await
            .map(Response::new)
    }

    async fn list_custom_actions(&self) -> Option<Vec<Result<ActionType, Status>>> {
        Some(actions::action_types().into_iter().map(Ok).collect())
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}
