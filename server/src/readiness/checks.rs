//! The checks of DESIGN.md over what was read of one table. Pure: every rule is
//! unit-tested on made-up facts; `mod.rs` gathers the facts from the store.

use std::collections::{BTreeMap, HashMap};

use arrow::datatypes::Schema;
use parquet::file::metadata::ParquetMetaData;

use super::footers::{row_group_misfits, unreadable_columns};
use crate::lake::{partition_name, LiveFile, StoreKind};

/// Commits a Snowflake refresh reads at most.
pub const SNOWFLAKE_MAX_COMMITS: i64 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    Pass,
    Warn,
    Fail,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pass => "pass",
            State::Warn => "warn",
            State::Fail => "fail",
        }
    }
}

/// One check of one table: its state, what it saw, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub state: State,
    pub evidence: String,
    /// Empty when the check passes.
    pub fix: String,
}

impl Check {
    fn pass(name: &'static str, evidence: impl Into<String>) -> Self {
        Self {
            name,
            state: State::Pass,
            evidence: evidence.into(),
            fix: String::new(),
        }
    }

    fn not(
        name: &'static str,
        state: State,
        evidence: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            name,
            state,
            evidence: evidence.into(),
            fix: fix.into(),
        }
    }
}

/// The names of every check, in report order.
pub const CHECKS: [&str; 9] = [
    "protocol",
    "parquet_types",
    "partition_columns",
    "checkpoint",
    "file_sizes",
    "row_group_sizes",
    "column_names",
    "encryption",
    "stage",
];

/// What was read of one table.
#[derive(Debug, Clone)]
pub struct TableFacts {
    pub version: i64,
    /// The version `_last_checkpoint` names.
    pub last_checkpoint: Option<i64>,
    pub min_reader_version: i32,
    pub reader_features: Vec<String>,
    pub configuration: HashMap<String, String>,
    /// Delta `partitionColumns`.
    pub partition_columns: Vec<String>,
    /// The partition columns lakeport lays the dataset out by.
    pub expected_partition_columns: Vec<String>,
    /// The table's full schema (data and partition columns).
    pub schema: Schema,
    pub files: Vec<LiveFile>,
    /// Footers read, newest files first, with their paths.
    pub footers: Vec<(String, ParquetMetaData)>,
    /// Files whose footer could not be parsed, with the reason.
    pub unreadable_footers: Vec<(String, String)>,
    pub sse_c: bool,
    pub store_kind: StoreKind,
}

/// Settings the checks compare against.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub checkpoint_interval: i64,
    pub target_file_size: u64,
}

pub fn run(facts: &TableFacts, limits: Limits) -> Vec<Check> {
    vec![
        protocol(facts),
        parquet_types(facts),
        partition_columns(facts),
        checkpoint(facts, limits),
        file_sizes(facts, limits),
        row_group_sizes(facts),
        column_names(facts),
        encryption(facts),
        stage(facts),
    ]
}

fn protocol(f: &TableFacts) -> Check {
    const NAME: &str = "protocol";
    let config = |key: &str| f.configuration.get(key).map(|v| v.to_ascii_lowercase());
    let mut fails = Vec::new();
    let mut warns = Vec::new();
    if f.min_reader_version > 3 {
        fails.push(format!(
            "reader version {} (Snowflake reads up to 3)",
            f.min_reader_version
        ));
    }
    for feature in &f.reader_features {
        match feature.as_str() {
            "deletionVectors" => fails.push("deletion vectors (external tables cannot read them; Delta Direct needs a refresh per change)".into()),
            "columnMapping" => fails.push("column mapping (files name columns by id or physical name)".into()),
            "timestampNtz" | "v2Checkpoint" | "vacuumProtocolCheck" | "typeWidening" | "typeWidening-preview" => {
                warns.push(format!("reader feature {feature}"))
            }
            other => warns.push(format!("reader feature {other}")),
        }
    }
    if config("delta.columnMapping.mode").is_some_and(|m| m != "none")
        && !f.reader_features.iter().any(|x| x == "columnMapping")
    {
        fails.push("column mapping (delta.columnMapping.mode)".into());
    }
    if config("delta.enableRowTracking").as_deref() == Some("true") {
        warns.push("row tracking (Snowflake ignores row ids)".into());
    }
    if config("delta.enableChangeDataFeed").as_deref() == Some("true") {
        warns.push("change data feed (Snowflake does not read _change_data)".into());
    }
    let evidence = format!(
        "minReaderVersion {}, reader features [{}]",
        f.min_reader_version,
        f.reader_features.join(", ")
    );
    if !fails.is_empty() {
        Check::not(NAME, State::Fail, format!("{evidence}: {}", fails.join("; ")), "rewrite the table without these features (lakeport writes reader version 1, no features): copy its rows into a new lakeport dataset")
    } else if !warns.is_empty() {
        Check::not(NAME, State::Warn, format!("{evidence}: {}", warns.join("; ")), "check that your Snowflake account supports these features, or turn them off in the table properties")
    } else {
        Check::pass(NAME, evidence)
    }
}

fn parquet_types(f: &TableFacts) -> Check {
    const NAME: &str = "parquet_types";
    let mut problems: BTreeMap<String, (String, String)> = BTreeMap::new();
    for (path, footer) in &f.footers {
        for (column, problem) in unreadable_columns(footer) {
            problems.entry(column).or_insert((problem, path.clone()));
        }
    }
    for (path, reason) in &f.unreadable_footers {
        problems.insert(
            format!("(footer of {path})"),
            (
                format!("not a readable Parquet footer: {reason}"),
                path.clone(),
            ),
        );
    }
    let read = format!(
        "{} of {} files' footers read",
        f.footers.len(),
        f.files.len()
    );
    if problems.is_empty() {
        return Check::pass(NAME, read);
    }
    let list: Vec<String> = problems
        .iter()
        .map(|(column, (problem, file))| format!("{column}: {problem} (in {file})"))
        .collect();
    Check::not(NAME, State::Fail, format!("{}; {read}", list.join("; ")), "send these columns as signed ints, FLOAT32/64, DECIMAL(<=38), microsecond timestamps and 3-level lists (lakeport's ingest casts what it can; rewrite files written by other tools)")
}

fn partition_columns(f: &TableFacts) -> Check {
    const NAME: &str = "partition_columns";
    let declared = f.partition_columns.join(", ");
    if f.partition_columns == f.expected_partition_columns {
        return Check::pass(NAME, format!("partitionColumns [{declared}]"));
    }
    // Hive folders the log does not declare: Snowflake would see no such columns.
    let undeclared: Vec<String> = f
        .files
        .iter()
        .flat_map(|file| {
            let dirs: Vec<&str> = file.path.split('/').collect();
            dirs[..dirs.len().saturating_sub(1)]
                .iter()
                .filter_map(|d| d.split_once('=').map(|(k, _)| k.to_string()))
                .collect::<Vec<_>>()
        })
        .filter(|k| !f.partition_columns.contains(k))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let state = if undeclared.is_empty() {
        State::Warn
    } else {
        State::Fail
    };
    Check::not(
        NAME,
        state,
        format!(
            "partitionColumns [{declared}], lakeport lays this dataset out by [{}]{}",
            f.expected_partition_columns.join(", "),
            if undeclared.is_empty() { String::new() } else { format!("; folders name undeclared columns [{}]", undeclared.join(", ")) }
        ),
        "recreate the table with its Hive folders declared as Delta partition columns (lakeport's tables always are)",
    )
}

fn checkpoint(f: &TableFacts, limits: Limits) -> Check {
    const NAME: &str = "checkpoint";
    let since = match f.last_checkpoint {
        Some(v) => f.version - v,
        None => f.version + 1,
    };
    let evidence = match f.last_checkpoint {
        Some(v) => format!(
            "last checkpoint at version {v}, {since} commits since (latest version {})",
            f.version
        ),
        None => format!("no checkpoint; {since} commits since version 0"),
    };
    let fix = "run `lakeport maintenance run` (it checkpoints the latest version); lower maintenance.checkpoint_interval for busier tables";
    if since > SNOWFLAKE_MAX_COMMITS {
        Check::not(
            NAME,
            State::Fail,
            format!(
                "{evidence}: Snowflake reads at most {SNOWFLAKE_MAX_COMMITS} commits per refresh"
            ),
            fix,
        )
    } else if since > limits.checkpoint_interval {
        Check::not(NAME, State::Warn, evidence, fix)
    } else {
        Check::pass(NAME, evidence)
    }
}

fn file_sizes(f: &TableFacts, limits: Limits) -> Check {
    const NAME: &str = "file_sizes";
    let mut partitions: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for file in &f.files {
        let entry = partitions
            .entry(partition_name(&f.partition_columns, &file.partition_values))
            .or_default();
        entry.0 += 1;
        entry.1 += file.size;
    }
    // A partition needs ⌈bytes / target⌉ files; more means small files compaction can merge.
    let target = limits.target_file_size.max(1);
    let crowded: Vec<(&String, u64, u64)> = partitions
        .iter()
        .filter(|(_, (files, bytes))| *files > bytes.div_ceil(target).max(1))
        .map(|(p, (files, bytes))| (p, *files, bytes.div_ceil(target).max(1)))
        .collect();
    let total: u64 = f.files.iter().map(|x| x.size).sum();
    let evidence = format!(
        "{} files, {} in {} partitions (target {} per file)",
        f.files.len(),
        bytesize::ByteSize(total),
        partitions.len(),
        bytesize::ByteSize(target)
    );
    if crowded.is_empty() {
        return Check::pass(NAME, evidence);
    }
    let worst: Vec<String> = crowded
        .iter()
        .take(3)
        .map(|(p, files, needed)| format!("{p}: {files} files where {needed} would do"))
        .collect();
    Check::not(
        NAME,
        State::Warn,
        format!("{evidence}; {} partitions hold small files, e.g. {}", crowded.len(), worst.join("; ")),
        "run `lakeport maintenance run` (compaction merges the small files of closed hours; Snowflake reads 100-250 MB files best)",
    )
}

fn row_group_sizes(f: &TableFacts) -> Check {
    const NAME: &str = "row_group_sizes";
    let mut small = 0;
    let mut large = 0;
    let mut example = None;
    for (path, footer) in &f.footers {
        let (s, l) = row_group_misfits(footer);
        if (s > 0 || l > 0) && example.is_none() {
            example = Some(path.clone());
        }
        small += s;
        large += l;
    }
    let evidence = format!("{} files' footers read", f.footers.len());
    match example {
        None => Check::pass(NAME, evidence),
        Some(file) => Check::not(
            NAME,
            State::Warn,
            format!("{evidence}: {small} row groups under 16 MiB and {large} over 256 MiB in files of 16 MiB or more (e.g. {file})"),
            "compaction writes row groups of up to 128 MiB: run `lakeport maintenance run`",
        ),
    }
}

fn column_names(f: &TableFacts) -> Check {
    const NAME: &str = "column_names";
    let mut seen: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for field in f.schema.fields() {
        seen.entry(field.name().to_lowercase())
            .or_default()
            .push(field.name());
    }
    let collisions: Vec<String> = seen
        .values()
        .filter(|names| names.len() > 1)
        .map(|names| names.join(" / "))
        .collect();
    if collisions.is_empty() {
        Check::pass(
            NAME,
            format!("{} columns, unique ignoring case", f.schema.fields().len()),
        )
    } else {
        Check::not(
            NAME,
            State::Fail,
            format!(
                "columns that differ only in case: {}",
                collisions.join("; ")
            ),
            "rename one column of each pair (Snowflake resolves names case-insensitively)",
        )
    }
}

fn encryption(f: &TableFacts) -> Check {
    const NAME: &str = "encryption";
    if f.sse_c {
        Check::not(NAME, State::Fail, "the tenant's objects are encrypted with SSE-C, a key only the writer holds", "use SSE-KMS (`encryption = { kind = \"sse-kms\", key_id = ... }`) and grant Snowflake's role the key; SSE-C objects must be rewritten")
    } else {
        Check::pass(NAME, "no customer-provided key")
    }
}

fn stage(f: &TableFacts) -> Check {
    const NAME: &str = "stage";
    match f.store_kind {
        StoreKind::Local => Check::not(NAME, State::Warn, "the table is on local disk", "Snowflake reads external stages on S3, GCS or Azure: set `lake` (or a route's store) to an s3://, gs:// or az:// URL"),
        kind => Check::pass(NAME, format!("{} store", match kind { StoreKind::S3 => "S3", StoreKind::Gcs => "GCS", _ => "Azure" })),
    }
}

#[cfg(test)]
#[path = "checks_tests.rs"]
mod tests;
