use super::*;
use crate::datasets::Datasets;
use crate::datasets::{CustomColumns, DatasetSpec};
use arrow::array::{Float64Array, Int32Array, Int64Array, StringArray, TimestampNanosecondArray};
use arrow::datatypes::TimeUnit;
use std::collections::BTreeMap;

fn datasets() -> Datasets {
    let mut config = BTreeMap::new();
    config.insert(
        "clicks".to_string(),
        DatasetSpec {
            custom: Some(CustomColumns {
                time_column: "ts".into(),
                app_column: None,
            }),
        },
    );
    Datasets::new(&config).unwrap()
}

fn snowplow_input() -> RecordBatch {
    RecordBatch::try_from_iter(vec![
        (
            "app_id",
            Arc::new(StringArray::from(vec!["web", "web"])) as ArrayRef,
        ),
        (
            "collector_tstamp",
            Arc::new(TimestampNanosecondArray::from(vec![
                Some(1_700_000_000_123_456_789),
                None,
            ])),
        ),
        ("event_id", Arc::new(StringArray::from(vec!["e1", "e2"]))),
        (
            "txn_id",
            Arc::new(arrow::array::Int16Array::from(vec![1, 2])),
        ),
    ])
    .unwrap()
}

#[test]
fn builtin_batches_get_the_full_schema_and_null_times_are_set_aside() {
    let ds = datasets();
    let snowplow = ds.get("snowplow").unwrap();
    let input = snowplow_input();
    let n = Normalizer::new(&snowplow, None, &input.schema()).unwrap();
    let out = n.apply(&input).unwrap();
    assert_eq!(out.batch.num_rows(), 1);
    assert_eq!(n.target_schema(), snowplow.schema.as_ref().unwrap());
    let names: Vec<_> = out
        .batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(names, ["app_id", "collector_tstamp", "event_id", "txn_id"]);
    assert_eq!(
        out.rejected,
        vec![(1, "null event time in column collector_tstamp".to_string())]
    );
    let ts = out.batch.column_by_name("collector_tstamp").unwrap();
    assert_eq!(
        ts.data_type(),
        &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    );
}

#[test]
fn builtin_rejects_unknown_missing_and_narrowing_columns() {
    let ds = datasets();
    let snowplow = ds.get("snowplow").unwrap();
    let schema = |fields: Vec<Field>| Schema::new(fields);
    let base = || {
        vec![
            Field::new("app_id", DataType::Utf8, true),
            Field::new("collector_tstamp", timestamp_us_utc(), true),
            Field::new("event_id", DataType::Utf8, true),
        ]
    };
    let mut unknown = base();
    unknown.push(Field::new("bogus", DataType::Utf8, true));
    assert!(
        matches!(Normalizer::new(&snowplow, None, &schema(unknown)), Err(IngestError::UnknownColumn { column, .. }) if column == "bogus")
    );
    assert!(
        matches!(Normalizer::new(&snowplow, None, &schema(base()[..2].to_vec())), Err(IngestError::MissingColumn { column, .. }) if column == "event_id")
    );
    let mut lossy = base();
    lossy.push(Field::new("txn_id", DataType::Float64, true));
    assert!(
        matches!(Normalizer::new(&snowplow, None, &schema(lossy)), Err(IngestError::WrongType { column, .. }) if column == "txn_id")
    );
}

#[test]
fn narrowing_columns_pass_when_every_value_fits() {
    let ds = datasets();
    let snowplow = ds.get("snowplow").unwrap();
    let batch = |width: Vec<Option<i64>>| {
        let times = vec![Some(1_700_000_000_000_000_000); width.len()];
        RecordBatch::try_from_iter(vec![
            (
                "collector_tstamp",
                Arc::new(TimestampNanosecondArray::from(times)) as ArrayRef,
            ),
            (
                "event_id",
                Arc::new(StringArray::from(vec!["e"; width.len()])),
            ),
            ("dvce_screenwidth", Arc::new(Int64Array::from(width))),
            ("app_id", Arc::new(StringArray::from(vec!["web"; 3]))),
        ])
        .unwrap()
    };
    let fits = batch(vec![Some(1920), None, Some(-5)]);
    let n = Normalizer::new(&snowplow, None, &fits.schema()).unwrap();
    let out = n.apply(&fits).unwrap();
    let width = out.batch.column_by_name("dvce_screenwidth").unwrap();
    assert_eq!(width.data_type(), &DataType::Int32);
    assert_eq!(width.null_count(), 1);

    let too_wide = batch(vec![Some(1), Some(1 << 40), Some(2)]);
    match n.apply(&too_wide) {
        Err(IngestError::ValueOutOfRange {
            column, row, value, ..
        }) => {
            assert_eq!(
                (column.as_str(), row, value.as_str()),
                ("dvce_screenwidth", 1, "1099511627776")
            );
        }
        other => panic!("expected ValueOutOfRange, got {other:?}"),
    }
}

#[test]
fn float64_narrows_to_float32_only_when_exact() {
    let target = DataType::Float32;
    let exact: ArrayRef = Arc::new(Float64Array::from(vec![Some(0.5), None, Some(f64::NAN)]));
    assert_eq!(narrow(&exact, &target, "x").unwrap().null_count(), 1);
    let inexact: ArrayRef = Arc::new(Float64Array::from(vec![0.5, 0.1]));
    assert!(matches!(
        narrow(&inexact, &target, "x"),
        Err(IngestError::ValueOutOfRange { row: 1, .. })
    ));
}

#[test]
fn custom_datasets_parse_text_times_and_grow_new_columns() {
    let ds = datasets();
    let clicks = ds.get("clicks").unwrap();
    let input = RecordBatch::try_from_iter(vec![
        (
            "ts",
            Arc::new(StringArray::from(vec!["2024-05-01T10:00:00Z", "yesterday"])) as ArrayRef,
        ),
        ("n", Arc::new(Int32Array::from(vec![1, 2]))),
    ])
    .unwrap();
    let table = Schema::new(vec![Field::new("ts", timestamp_us_utc(), true)]);
    let n = Normalizer::new(&clicks, Some(&table), &input.schema()).unwrap();
    assert_eq!(
        n.target_schema().fields().len(),
        2,
        "the table gains column n"
    );
    let out = n.apply(&input).unwrap();
    assert_eq!(out.batch.num_rows(), 1);
    assert_eq!(out.rejected[0].0, 1);
    assert!(
        out.rejected[0].1.contains("unparseable"),
        "{}",
        out.rejected[0].1
    );
    let reserved = Schema::new(vec![
        Field::new("ts", DataType::Utf8, true),
        Field::new("hour", DataType::Utf8, true),
    ]);
    assert!(matches!(
        Normalizer::new(&clicks, None, &reserved),
        Err(IngestError::ReservedColumn(_))
    ));
    let ambiguous = Schema::new(vec![
        Field::new("ts", DataType::Utf8, true),
        Field::new("A", DataType::Utf8, true),
        Field::new("a", DataType::Utf8, true),
    ]);
    assert!(matches!(
        Normalizer::new(&clicks, None, &ambiguous),
        Err(IngestError::AmbiguousColumns(..))
    ));
}
