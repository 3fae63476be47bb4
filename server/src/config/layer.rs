//! The one generic merge: flags and `LAKEPORT_*` variables that were actually given are
//! laid over the TOML file's table, then the whole is deserialized once. An argument's id
//! is its path in the file (`ingest.commit_interval`), so no setting is listed twice.

use clap::parser::ValueSource;
use clap::ArgMatches;

/// Writes each explicitly given argument's text into `table` at the path its id names.
/// Arguments without an id path in the file (marked `skip`) are left to the caller.
pub(super) fn lay_flags_over(
    table: &mut toml::Table,
    matches: &ArgMatches,
    skip: &[&str],
) -> Result<(), String> {
    for id in matches.ids() {
        let id = id.as_str();
        if skip.contains(&id) {
            continue;
        }
        let given = matches!(
            matches.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        );
        if !given {
            continue;
        }
        let Some(mut raw) = matches.get_raw(id) else {
            continue;
        };
        let Some(value) = raw.next() else { continue };
        let text = value
            .to_str()
            .ok_or_else(|| format!("the value of {id} is not UTF-8"))?;
        insert(table, id, toml::Value::String(text.to_string()))?;
    }
    Ok(())
}

fn insert(table: &mut toml::Table, path: &str, value: toml::Value) -> Result<(), String> {
    let (section, key) = match path.rsplit_once('.') {
        Some((section, key)) => (Some(section), key),
        None => (None, path),
    };
    let mut target = table;
    if let Some(section) = section {
        for part in section.split('.') {
            let entry = target
                .entry(part.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            target = entry
                .as_table_mut()
                .ok_or_else(|| format!("{part} in the config file is not a table"))?;
        }
    }
    target.insert(key.to_string(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_land_at_their_path_and_keep_siblings() {
        let mut table: toml::Table = toml::from_str("[ingest]\nflush_size = \"8MiB\"").unwrap();
        insert(&mut table, "ingest.commit_interval", "5ms".into()).unwrap();
        insert(&mut table, "listen", "127.0.0.1:0".into()).unwrap();
        assert_eq!(table["ingest"]["flush_size"].as_str(), Some("8MiB"));
        assert_eq!(table["ingest"]["commit_interval"].as_str(), Some("5ms"));
        assert_eq!(table["listen"].as_str(), Some("127.0.0.1:0"));
    }
}
