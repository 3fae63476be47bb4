use arrow::datatypes::{DataType, Field};

use super::*;

const MIB: u64 = 1 << 20;

fn healthy() -> TableFacts {
    let columns: Vec<String> = ["app_id", "year", "month", "day", "hour"]
        .map(String::from)
        .to_vec();
    let values: HashMap<String, Option<String>> = [
        ("app_id", "web"),
        ("year", "2024"),
        ("month", "05"),
        ("day", "01"),
        ("hour", "10"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), Some(v.to_string())))
    .collect();
    TableFacts {
        version: 10,
        last_checkpoint: Some(10),
        min_reader_version: 1,
        reader_features: vec![],
        configuration: HashMap::new(),
        partition_columns: columns.clone(),
        expected_partition_columns: columns,
        schema: Schema::new(vec![
            Field::new("event_id", DataType::Utf8, true),
            Field::new("app_id", DataType::Utf8, true),
        ]),
        files: vec![LiveFile {
            path: "app_id=web/year=2024/month=05/day=01/hour=10/data_x.parquet".into(),
            size: 3 * MIB,
            partition_values: values,
            modification_time: 0,
            rows: None,
        }],
        footers: vec![],
        unreadable_footers: vec![],
        sse_c: false,
        store_kind: StoreKind::S3,
    }
}

fn limits() -> Limits {
    Limits {
        checkpoint_interval: 50,
        target_file_size: 256 * MIB,
    }
}

/// The states of every check, by name.
fn states(facts: &TableFacts) -> BTreeMap<&'static str, State> {
    run(facts, limits())
        .into_iter()
        .map(|c| (c.name, c.state))
        .collect()
}

/// Asserts that `facts` break exactly `broken` (with `state`) and pass everything else.
fn breaks_only(facts: TableFacts, broken: &str, state: State) {
    let found = states(&facts);
    for (name, s) in &found {
        let expected = if *name == broken { state } else { State::Pass };
        assert_eq!(*s, expected, "{name}: {:?}", run(&facts, limits()));
    }
    let fix = run(&facts, limits())
        .into_iter()
        .find(|c| c.name == broken)
        .unwrap()
        .fix;
    assert!(!fix.is_empty());
}

#[test]
fn a_healthy_table_passes_every_check() {
    let found = states(&healthy());
    assert_eq!(found.len(), CHECKS.len());
    assert!(found.values().all(|s| *s == State::Pass), "{found:?}");
}

#[test]
fn each_fault_breaks_its_own_check() {
    let mut f = healthy();
    f.reader_features = vec!["deletionVectors".into()];
    f.min_reader_version = 3;
    breaks_only(f, "protocol", State::Fail);

    let mut f = healthy();
    f.configuration
        .insert("delta.enableChangeDataFeed".into(), "true".into());
    breaks_only(f, "protocol", State::Warn);

    let mut f = healthy();
    f.partition_columns = vec![];
    breaks_only(f, "partition_columns", State::Fail);

    let mut f = healthy();
    f.last_checkpoint = None;
    f.version = 50;
    breaks_only(f, "checkpoint", State::Warn);

    let mut f = healthy();
    f.last_checkpoint = Some(5);
    f.version = 5 + 51;
    breaks_only(f, "checkpoint", State::Warn);

    let mut f = healthy();
    f.last_checkpoint = Some(5);
    f.version = 5 + 1001;
    breaks_only(f, "checkpoint", State::Fail);

    let mut f = healthy();
    let small = f.files[0].clone();
    f.files = (0..40)
        .map(|i| LiveFile {
            path: format!("{}{i}", small.path),
            ..small.clone()
        })
        .collect();
    breaks_only(f, "file_sizes", State::Warn);

    let mut f = healthy();
    f.schema = Schema::new(vec![
        Field::new("Event", DataType::Utf8, true),
        Field::new("event", DataType::Utf8, true),
    ]);
    breaks_only(f, "column_names", State::Fail);

    let mut f = healthy();
    f.sse_c = true;
    breaks_only(f, "encryption", State::Fail);

    let mut f = healthy();
    f.store_kind = StoreKind::Local;
    breaks_only(f, "stage", State::Warn);
}

#[test]
fn one_partition_of_large_files_is_not_crowded() {
    let mut f = healthy();
    let file = f.files[0].clone();
    f.files = (0..3)
        .map(|i| LiveFile {
            path: format!("{}{i}", file.path),
            size: 200 * MIB,
            ..file.clone()
        })
        .collect();
    assert_eq!(states(&f)["file_sizes"], State::Pass);
}
