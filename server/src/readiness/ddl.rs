//! Ready-to-paste Snowflake SQL for one table: the storage integration and stage, the
//! Delta Direct path (external volume, catalog integration, Iceberg table) and the
//! external-table path, with its columns typed by `snowflake_type`.

use std::fmt::Write;

use arrow::datatypes::{DataType, Schema, TimeUnit};
use url::Url;

use crate::lake::StoreKind;

/// The Snowflake type Snowflake reads an Arrow column of this type as; `None` for the types
/// it cannot read from Parquet (unsigned ints, FLOAT16, intervals, durations, decimals over
/// 38 digits).
pub fn snowflake_type(data_type: &DataType) -> Option<String> {
    let precision = |unit: &TimeUnit| match unit {
        TimeUnit::Second => 0,
        TimeUnit::Millisecond => 3,
        TimeUnit::Microsecond => 6,
        TimeUnit::Nanosecond => 9,
    };
    Some(match data_type {
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Int8 => "NUMBER(3,0)".into(),
        DataType::Int16 => "NUMBER(5,0)".into(),
        DataType::Int32 => "NUMBER(10,0)".into(),
        DataType::Int64 => "NUMBER(19,0)".into(),
        DataType::Float32 | DataType::Float64 => "FLOAT".into(),
        DataType::Decimal32(p, s)
        | DataType::Decimal64(p, s)
        | DataType::Decimal128(p, s)
        | DataType::Decimal256(p, s)
            if *p <= 38 =>
        {
            format!("NUMBER({p},{s})")
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "VARCHAR".into(),
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => "BINARY".into(),
        DataType::Date32 | DataType::Date64 => "DATE".into(),
        DataType::Time32(unit) | DataType::Time64(unit) => format!("TIME({})", precision(unit)),
        DataType::Timestamp(unit, Some(_)) => format!("TIMESTAMP_LTZ({})", precision(unit)),
        DataType::Timestamp(unit, None) => format!("TIMESTAMP_NTZ({})", precision(unit)),
        DataType::List(_)
        | DataType::LargeList(_)
        | DataType::ListView(_)
        | DataType::LargeListView(_)
        | DataType::FixedSizeList(..) => "ARRAY".into(),
        DataType::Struct(_) | DataType::Map(..) => "OBJECT".into(),
        DataType::Dictionary(_, value) => return snowflake_type(value),
        DataType::Null => "VARCHAR".into(),
        _ => return None,
    })
}

/// One table's place in storage, as the DDL needs it.
#[derive(Debug, Clone)]
pub struct TableTarget<'a> {
    pub tenant: &'a str,
    pub dataset: &'a str,
    pub store_name: &'a str,
    pub store_kind: StoreKind,
    /// The lake's root in the store, ending in `/`.
    pub store_root: &'a Url,
    /// The table directory (holding `_delta_log/`).
    pub table_url: &'a Url,
    /// Data columns and partition columns, as the Delta schema gives them.
    pub schema: &'a Schema,
    pub partition_columns: &'a [String],
}

/// Snowflake spells bucket URLs its own way: `gcs://` and `azure://account.blob.core.windows.net/container/`.
fn snowflake_url(url: &Url, kind: StoreKind) -> String {
    let text = url.as_str().trim_end_matches('/');
    let text = match kind {
        StoreKind::S3 => text.replacen("s3a://", "s3://", 1),
        StoreKind::Gcs => text.replacen("gs://", "gcs://", 1),
        StoreKind::Azure => azure_url(url),
        StoreKind::Local => text.to_string(),
    };
    format!("{}/", text.trim_end_matches('/'))
}

/// `az://container/path` or `abfss://container@account.dfs.core.windows.net/path` →
/// `azure://<account>.blob.core.windows.net/<container>/path`.
fn azure_url(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    let path = url.path().trim_matches('/');
    let (account, container) = match host.split_once('@').or_else(|| {
        let user = url.username();
        (!user.is_empty()).then_some((user, host))
    }) {
        Some((container, account_host)) => (
            account_host
                .split('.')
                .next()
                .unwrap_or("<account>")
                .to_string(),
            container.to_string(),
        ),
        None => ("<account>".to_string(), host.to_string()),
    };
    let tail = if path.is_empty() {
        String::new()
    } else {
        format!("/{path}")
    };
    format!("azure://{account}.blob.core.windows.net/{container}{tail}")
}

fn ident(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The SQL, as one script with comments that say who runs what.
pub fn snowflake_ddl(t: &TableTarget) -> String {
    let root = snowflake_url(t.store_root, t.store_kind);
    let table_dir = snowflake_url(t.table_url, t.store_kind);
    let base_location = table_dir.strip_prefix(&root).unwrap_or(&table_dir);
    let integration = format!("lakeport_{}", ident(t.store_name));
    let table = format!("{}_{}", ident(t.tenant), ident(t.dataset));
    let mut sql = String::new();
    let _ = writeln!(sql, "-- {}.{}: {table_dir}", t.tenant, t.dataset);
    if t.store_kind == StoreKind::Local {
        let _ = writeln!(
            sql,
            "-- This table is on local disk, which Snowflake cannot reach: move the lake to S3, GCS or Azure first."
        );
    }
    let (provider, access) = match t.store_kind {
        StoreKind::S3 | StoreKind::Local => (
            "S3",
            "  STORAGE_AWS_ROLE_ARN = 'arn:aws:iam::<account-id>:role/<snowflake-read-role>'\n",
        ),
        StoreKind::Gcs => ("GCS", ""),
        StoreKind::Azure => ("AZURE", "  AZURE_TENANT_ID = '<azure-tenant-id>'\n"),
    };
    let _ = write!(
        sql,
        "\n-- 1. Once per store (ACCOUNTADMIN), then grant the role/ARN/service account that\n\
         --    DESC STORAGE INTEGRATION {integration} shows read access to the bucket.\n\
         CREATE STORAGE INTEGRATION IF NOT EXISTS {integration}\n  TYPE = EXTERNAL_STAGE\n  \
         STORAGE_PROVIDER = '{provider}'\n  ENABLED = TRUE\n{access}  \
         STORAGE_ALLOWED_LOCATIONS = ({root});\n\n",
        root = literal(&root)
    );
    let _ = write!(
        sql,
        "-- 2a. Delta Direct (recommended): an Iceberg table over the Delta log.\n\
         CREATE EXTERNAL VOLUME IF NOT EXISTS {integration}_volume\n  STORAGE_LOCATIONS = ((\n    \
         NAME = '{integration}'\n    STORAGE_PROVIDER = '{provider}'\n    STORAGE_BASE_URL = {root}\n{access_indented}  ))\n  \
         ALLOW_WRITES = FALSE;\n\
         CREATE CATALOG INTEGRATION IF NOT EXISTS lakeport_delta\n  CATALOG_SOURCE = OBJECT_STORE\n  \
         TABLE_FORMAT = DELTA\n  ENABLED = TRUE;\n\
         CREATE ICEBERG TABLE IF NOT EXISTS {table}\n  EXTERNAL_VOLUME = '{integration}_volume'\n  \
         CATALOG = 'lakeport_delta'\n  BASE_LOCATION = {base};\n\
         -- after new commits: ALTER ICEBERG TABLE {table} REFRESH;\n\n",
        root = literal(&root),
        access_indented = access.replace("  ", "    "),
        base = literal(base_location),
    );
    let _ = write!(
        sql,
        "-- 2b. Or an external table (Snowflake is deprecating these for Delta).\n\
         CREATE STAGE IF NOT EXISTS {table}_stage\n  URL = {url}\n  STORAGE_INTEGRATION = {integration}\n  \
         FILE_FORMAT = (TYPE = PARQUET);\n\
         CREATE EXTERNAL TABLE IF NOT EXISTS {table}_ext (\n",
        url = literal(&table_dir),
    );
    let mut columns = Vec::new();
    for (i, column) in t.partition_columns.iter().enumerate() {
        let marker = if i == 0 {
            format!("{column}=")
        } else {
            format!("/{column}=")
        };
        columns.push(format!(
            "  {} VARCHAR AS (SPLIT_PART(SPLIT_PART(METADATA$FILENAME, {}, 2), '/', 1))",
            quoted(column),
            literal(&marker)
        ));
    }
    for field in t.schema.fields() {
        if t.partition_columns.contains(field.name()) {
            continue;
        }
        match snowflake_type(field.data_type()) {
            Some(ty) => columns.push(format!(
                "  {} {ty} AS (VALUE:{}::{ty})",
                quoted(field.name()),
                quoted(field.name())
            )),
            None => columns.push(format!(
                "  -- {} ({}) has no Snowflake type and is left out",
                quoted(field.name()),
                field.data_type()
            )),
        }
    }
    let mut body = String::new();
    for (i, column) in columns.iter().enumerate() {
        let comma_follows = columns[i + 1..]
            .iter()
            .any(|c| !c.trim_start().starts_with("--"));
        body.push_str(column);
        if comma_follows && !column.trim_start().starts_with("--") {
            body.push(',');
        }
        body.push('\n');
    }
    let partition_by = t
        .partition_columns
        .iter()
        .map(|c| quoted(c))
        .collect::<Vec<_>>()
        .join(", ");
    let _ = write!(
        sql,
        "{body})\n{partition}  LOCATION = @{table}_stage\n  FILE_FORMAT = (TYPE = PARQUET)\n  \
         TABLE_FORMAT = DELTA\n  AUTO_REFRESH = FALSE\n  REFRESH_ON_CREATE = FALSE;\n\
         ALTER EXTERNAL TABLE {table}_ext REFRESH;  -- again after new commits\n",
        partition = if partition_by.is_empty() {
            String::new()
        } else {
            format!("  PARTITION BY ({partition_by})\n")
        },
    );
    sql
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::datatypes::{Field, Fields, IntervalUnit};

    use super::*;

    #[test]
    fn every_arrow_type_maps_to_what_snowflake_reads_or_to_nothing() {
        let item = Arc::new(Field::new("item", DataType::Int32, true));
        let cases: Vec<(DataType, Option<&str>)> = vec![
            (DataType::Boolean, Some("BOOLEAN")),
            (DataType::Int8, Some("NUMBER(3,0)")),
            (DataType::Int16, Some("NUMBER(5,0)")),
            (DataType::Int32, Some("NUMBER(10,0)")),
            (DataType::Int64, Some("NUMBER(19,0)")),
            (DataType::UInt8, None),
            (DataType::UInt16, None),
            (DataType::UInt32, None),
            (DataType::UInt64, None),
            (DataType::Float16, None),
            (DataType::Float32, Some("FLOAT")),
            (DataType::Float64, Some("FLOAT")),
            (DataType::Decimal128(38, 9), Some("NUMBER(38,9)")),
            (DataType::Decimal256(76, 2), None),
            (DataType::Utf8, Some("VARCHAR")),
            (DataType::LargeUtf8, Some("VARCHAR")),
            (DataType::Utf8View, Some("VARCHAR")),
            (DataType::Binary, Some("BINARY")),
            (DataType::FixedSizeBinary(16), Some("BINARY")),
            (DataType::Date32, Some("DATE")),
            (DataType::Time64(TimeUnit::Microsecond), Some("TIME(6)")),
            (
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                Some("TIMESTAMP_LTZ(6)"),
            ),
            (
                DataType::Timestamp(TimeUnit::Microsecond, None),
                Some("TIMESTAMP_NTZ(6)"),
            ),
            (
                DataType::Timestamp(TimeUnit::Nanosecond, None),
                Some("TIMESTAMP_NTZ(9)"),
            ),
            (DataType::List(item.clone()), Some("ARRAY")),
            (DataType::LargeList(item.clone()), Some("ARRAY")),
            (
                DataType::Struct(Fields::from(vec![Field::new("a", DataType::Utf8, true)])),
                Some("OBJECT"),
            ),
            (
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
                Some("VARCHAR"),
            ),
            (DataType::Interval(IntervalUnit::MonthDayNano), None),
            (DataType::Duration(TimeUnit::Second), None),
        ];
        for (arrow, expected) in cases {
            assert_eq!(snowflake_type(&arrow).as_deref(), expected, "{arrow}");
        }
    }

    fn ddl_for(kind: StoreKind, root: &str) -> String {
        let root = Url::parse(root).unwrap();
        let table_url = root.join("tenant_id=acme/snowplow/").unwrap();
        let schema = Schema::new(vec![
            Field::new("event_id", DataType::Utf8, true),
            Field::new(
                "collector_tstamp",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("port", DataType::UInt16, true),
            Field::new("app_id", DataType::Utf8, true),
            Field::new("year", DataType::Utf8, true),
        ]);
        let partitions = vec!["app_id".to_string(), "year".to_string()];
        snowflake_ddl(&TableTarget {
            tenant: "acme",
            dataset: "snowplow",
            store_name: "default",
            store_kind: kind,
            store_root: &root,
            table_url: &table_url,
            schema: &schema,
            partition_columns: &partitions,
        })
    }

    #[test]
    fn s3_ddl_names_the_real_urls_and_both_paths() {
        let sql = ddl_for(StoreKind::S3, "s3://events-bucket/lake/");
        for expected in [
            "STORAGE_PROVIDER = 'S3'",
            "STORAGE_ALLOWED_LOCATIONS = ('s3://events-bucket/lake/')",
            "URL = 's3://events-bucket/lake/tenant_id=acme/snowplow/'",
            "CATALOG_SOURCE = OBJECT_STORE",
            "TABLE_FORMAT = DELTA",
            "BASE_LOCATION = 'tenant_id=acme/snowplow/'",
            "\"app_id\" VARCHAR AS (SPLIT_PART(SPLIT_PART(METADATA$FILENAME, 'app_id=', 2), '/', 1)),",
            "\"year\" VARCHAR AS (SPLIT_PART(SPLIT_PART(METADATA$FILENAME, '/year=', 2), '/', 1)),",
            "\"collector_tstamp\" TIMESTAMP_LTZ(6) AS (VALUE:\"collector_tstamp\"::TIMESTAMP_LTZ(6))\n  -- \"port\"",
            "-- \"port\" (UInt16) has no Snowflake type",
            "PARTITION BY (\"app_id\", \"year\")",
            "AUTO_REFRESH = FALSE",
            "REFRESH_ON_CREATE = FALSE",
            "ALTER EXTERNAL TABLE acme_snowplow_ext REFRESH;",
        ] {
            assert!(sql.contains(expected), "missing {expected:?} in\n{sql}");
        }
        assert!(sql.contains("is left out\n)\n  PARTITION BY"), "{sql}");
    }

    #[test]
    fn gcs_and_azure_urls_are_spelled_the_snowflake_way() {
        let gcs = ddl_for(StoreKind::Gcs, "gs://bucket/lake/");
        assert!(
            gcs.contains("URL = 'gcs://bucket/lake/tenant_id=acme/snowplow/'"),
            "{gcs}"
        );
        assert!(gcs.contains("STORAGE_PROVIDER = 'GCS'"));
        let azure = ddl_for(
            StoreKind::Azure,
            "abfss://events@acct.dfs.core.windows.net/lake/",
        );
        assert!(
            azure.contains(
                "URL = 'azure://acct.blob.core.windows.net/events/lake/tenant_id=acme/snowplow/'"
            ),
            "{azure}"
        );
        assert!(azure.contains("AZURE_TENANT_ID"));
        let local = ddl_for(StoreKind::Local, "file:///data/lake/");
        assert!(local.contains("Snowflake cannot reach"));
    }
}
