//! What lakeport's SQL may do: one read-only statement over the caller's own tables.
//! Checked on the parsed statement (so the refusal names the statement) before planning,
//! and again on the plan with DataFusion's `SQLOptions`.

use datafusion::common::TableReference;
use datafusion::execution::context::SQLOptions;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::parser::Statement;
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;

use super::catalog::LakeCatalog;
use super::{QueryError, Scope, CATALOG};

/// Statements that would change data, tables or files.
const WRITES: &[&str] = &[
    "CREATE", "DROP", "ALTER", "INSERT", "UPDATE", "DELETE", "MERGE", "TRUNCATE", "COPY",
    "REPLACE", "GRANT", "REVOKE", "VACUUM", "OPTIMIZE", "UNLOAD", "LOAD", "ATTACH", "DETACH",
];

pub fn check_statement(statement: &Statement) -> Result<(), QueryError> {
    match statement {
        Statement::Statement(inner) => check_sql_statement(inner),
        Statement::Explain(explain) => check_statement(&explain.statement),
        Statement::CreateExternalTable(_) => {
            Err(QueryError::ReadOnly("CREATE EXTERNAL TABLE".into()))
        }
        Statement::CopyTo(_) => Err(QueryError::ReadOnly("COPY".into())),
        Statement::Reset(_) => Err(settings_fixed("RESET")),
    }
}

fn check_sql_statement(statement: &SqlStatement) -> Result<(), QueryError> {
    match statement {
        SqlStatement::Query(_)
        | SqlStatement::ShowTables { .. }
        | SqlStatement::ShowColumns { .. }
        | SqlStatement::ShowVariable { .. } => Ok(()),
        SqlStatement::Explain { statement, .. } => check_sql_statement(statement),
        other => {
            let kind = statement_kind(&other.to_string());
            let first = kind.split(' ').next().unwrap_or_default();
            if WRITES.contains(&first) {
                Err(QueryError::ReadOnly(kind))
            } else if first == "SET" {
                Err(settings_fixed("SET"))
            } else {
                Err(QueryError::Unsupported(format!(
                    "{kind} statements are not supported; send one SELECT (or EXPLAIN, SHOW TABLES) per request"
                )))
            }
        }
    }
}

fn settings_fixed(kind: &str) -> QueryError {
    QueryError::Unsupported(format!(
        "{kind} is not supported: session settings are fixed by the server (query.memory_limit, query.timeout)"
    ))
}

/// "CREATE TABLE", "INSERT INTO", "SET": the leading keywords of a statement's SQL.
fn statement_kind(sql: &str) -> String {
    let mut words = sql.split_whitespace();
    let first = words.next().unwrap_or("statement").to_ascii_uppercase();
    match words.next() {
        Some(second) if second.chars().all(|c| c.is_ascii_uppercase()) && !second.is_empty() => {
            format!("{first} {second}")
        }
        _ => first,
    }
}

/// Table names that are really paths or URLs (`FROM '/etc/passwd'`, `FROM 's3://b/k'`).
fn looks_like_path(name: &str) -> bool {
    name.contains('/') || name.contains('\\') || name.contains(':')
}

/// Every table the statement names (each reference DataFusion will resolve) must be one of the caller's tables or a system table.
pub fn check_references(
    references: &[TableReference],
    scope: &Scope,
    catalog: &LakeCatalog,
) -> Result<(), QueryError> {
    let default_schema = scope.default_schema.as_str();
    for reference in references {
        if looks_like_path(reference.table()) {
            return Err(QueryError::PathTable(reference.table().to_string()));
        }
        if let Some(name) = reference.catalog() {
            if name != CATALOG {
                return Err(QueryError::OtherSchema {
                    schema: format!("{name}.{}", reference.schema().unwrap_or_default()),
                    visible: catalog.visible_list(),
                });
            }
        }
        let schema = reference.schema().unwrap_or(default_schema);
        if schema == "information_schema" {
            continue;
        }
        if !catalog.has_schema(schema) && scope.tenant().is_none() {
            // An admin sees every tenant: this one has no tables (yet).
            return Err(QueryError::UnknownTable {
                schema: schema.to_string(),
                table: reference.table().to_string(),
                available: "none (no tables for this tenant)".into(),
            });
        }
        if !catalog.has_schema(schema) {
            return Err(QueryError::OtherSchema {
                schema: schema.to_string(),
                visible: catalog.visible_list(),
            });
        }
    }
    Ok(())
}

/// Defence in depth: whatever got past the statement check must still plan read-only.
pub fn check_plan(plan: &LogicalPlan) -> Result<(), QueryError> {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
        .verify_plan(plan)
        .map_err(|e| QueryError::ReadOnly(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::parser::DFParser;

    fn check(sql: &str) -> Result<(), QueryError> {
        let mut statements = DFParser::parse_sql(sql).expect("parses");
        check_statement(&statements.pop_front().expect("one statement"))
    }

    #[test]
    fn reads_pass() {
        for sql in [
            "SELECT 1",
            "WITH x AS (SELECT 1) SELECT * FROM x",
            "EXPLAIN SELECT 1",
            "EXPLAIN ANALYZE SELECT 1",
            "SHOW TABLES",
        ] {
            check(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    }

    #[test]
    fn writes_and_settings_are_refused_by_name() {
        for (sql, kind) in [
            ("CREATE TABLE t (a INT)", "CREATE TABLE"),
            (
                "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '/etc'",
                "CREATE EXTERNAL TABLE",
            ),
            ("CREATE VIEW v AS SELECT 1", "CREATE VIEW"),
            ("DROP TABLE snowplow", "DROP TABLE"),
            ("INSERT INTO snowplow VALUES (1)", "INSERT INTO"),
            ("DELETE FROM snowplow", "DELETE FROM"),
            ("UPDATE snowplow SET a = 1", "UPDATE"),
            ("COPY snowplow TO '/tmp/x.parquet'", "COPY"),
            ("EXPLAIN INSERT INTO snowplow VALUES (1)", "INSERT INTO"),
        ] {
            match check(sql) {
                Err(QueryError::ReadOnly(k)) => assert!(k.starts_with(kind), "{sql}: {k}"),
                other => panic!("{sql}: {other:?}"),
            }
        }
        assert!(
            matches!(check("SET datafusion.execution.batch_size = 1"), Err(QueryError::Unsupported(m)) if m.starts_with("SET"))
        );
    }
}
