//! Data-quality expectations on fixtures built to pass and to fail each one; freshness
//! judged by the server's (injected) clock.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use futures::TryStreamExt;
use lakeport_client::QualityCheck;
use lakeport_server::quality::{Expectations, Freshness};

use crate::fixture::{eventually, fixed_now, status_of, TestServer, ACME, ADMIN, BETA};

fn expectations() -> Expectations {
    toml::from_str(
        r#"
        freshness = { warn_after = "2h", error_after = "6h" }
        not_null = ["user"]
        unique = ["id"]
        accepted_values = { kind = ["view", "click"] }
        "#,
    )
    .expect("expectations")
}

async fn start() -> TestServer {
    start_with_clicks_quality(expectations()).await
}

/// A server whose `clicks` dataset declares `quality`.
async fn start_with_clicks_quality(quality: Expectations) -> TestServer {
    TestServer::start_with(move |config| {
        config.datasets.get_mut("clicks").expect("clicks").quality = quality;
    })
    .await
}

/// `(ts, id, user, kind)`: one row of the clicks dataset.
type Click<'a> = (&'a str, &'a str, Option<&'a str>, &'a str);

fn clicks(rows: &[Click]) -> RecordBatch {
    let column = |f: &dyn Fn(&Click) -> Option<String>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<StringArray>())
    };
    RecordBatch::try_from_iter([
        ("ts", column(&|r| Some(r.0.to_string()))),
        ("app", column(&|_| Some("shop".to_string()))),
        ("id", column(&|r| Some(r.1.to_string()))),
        ("user", column(&|r| r.2.map(str::to_string))),
        ("kind", column(&|r| Some(r.3.to_string()))),
    ])
    .expect("batch")
}

fn find<'a>(checks: &'a [QualityCheck], expectation: &str) -> &'a QualityCheck {
    checks
        .iter()
        .find(|c| c.expectation == expectation)
        .unwrap_or_else(|| panic!("no {expectation} result in {checks:?}"))
}

#[tokio::test]
async fn clean_data_passes_every_expectation_and_freshness_follows_the_clock() {
    let server = start().await;
    let mut client = server.client(ACME).await;
    // fixed_now() is 2024-05-01T10:20:30Z: the newest event is 20 minutes old.
    let rows = clicks(&[
        ("2024-05-01T09:00:00Z", "a", Some("u1"), "view"),
        ("2024-05-01T10:00:00Z", "b", Some("u2"), "click"),
        // The same id on another day is no duplicate: unique holds within a day.
        ("2024-04-30T10:00:00Z", "a", Some("u1"), "view"),
    ]);
    client.put(None, "clicks", vec![rows]).await.unwrap();

    let checks = client.quality_run(None).await.unwrap().checks;
    assert_eq!(checks.len(), 4, "{checks:?}");
    for check in &checks {
        assert_eq!(check.state, "pass", "{check:?}");
        assert_eq!(check.failing, 0, "{check:?}");
        assert_eq!(
            (check.tenant.as_str(), check.dataset.as_str()),
            ("acme", "clicks")
        );
    }
    assert_eq!(
        find(&checks, "freshness").samples,
        vec!["2024-05-01T10:00:00Z"]
    );

    let newest = chrono::DateTime::parse_from_rfc3339("2024-05-01T10:00:00Z").unwrap();
    for (age_hours, state) in [(3, "warn"), (7, "error"), (1, "pass")] {
        server
            .clock
            .set(newest.to_utc() + Duration::from_secs(age_hours * 3600));
        let checks = client.quality_run(None).await.unwrap().checks;
        let freshness = find(&checks, "freshness");
        assert_eq!(freshness.state, state, "{age_hours}h old: {freshness:?}");
        assert!(
            freshness.detail.contains(&format!("{age_hours}h")),
            "{freshness:?}"
        );
    }
    server.clock.set(fixed_now());
    server.shutdown().await;
}

#[tokio::test]
async fn each_failing_expectation_reports_its_count_and_sample_keys() {
    let server = start().await;
    let mut acme = server.client(ACME).await;
    let rows = clicks(&[
        ("2024-05-01T09:00:00Z", "a", None, "view"),
        ("2024-05-01T09:10:00Z", "b", None, "view"),
        ("2024-05-01T09:20:00Z", "c", Some("u3"), "view"),
        ("2024-05-01T09:30:00Z", "c", Some("u4"), "buy"),
        ("2024-05-01T09:40:00Z", "d", Some("u5"), "refund"),
        ("2024-05-01T09:50:00Z", "e", Some("u6"), "refund"),
    ]);
    acme.put(None, "clicks", vec![rows]).await.unwrap();
    // beta's clean table: its results are its own.
    let mut beta = server.client(BETA).await;
    let clean = clicks(&[("2024-05-01T10:00:00Z", "z", Some("u9"), "view")]);
    beta.put(None, "clicks", vec![clean]).await.unwrap();

    let checks = acme.quality_run(None).await.unwrap().checks;
    assert!(checks.iter().all(|c| c.tenant == "acme"), "{checks:?}");
    let not_null = find(&checks, "not_null");
    assert_eq!((not_null.state.as_str(), not_null.failing), ("error", 2));
    assert_eq!(not_null.column, "user");
    // Failing rows are named by the unique key.
    let mut keys = not_null.samples.clone();
    keys.sort();
    assert_eq!(keys, vec!["a", "b"]);
    let unique = find(&checks, "unique");
    assert_eq!((unique.state.as_str(), unique.failing), ("error", 1));
    assert_eq!(unique.samples, vec!["c"]);
    let accepted = find(&checks, "accepted_values");
    assert_eq!((accepted.state.as_str(), accepted.failing), ("error", 3));
    assert_eq!(accepted.samples, vec!["refund", "buy"]);
    assert_eq!(find(&checks, "freshness").state, "pass");

    // The admin evaluates every tenant; system.quality keeps the latest per table, and a
    // tenant sees only its own rows there.
    let mut admin = server.client(ADMIN).await;
    let all = admin.quality_run(None).await.unwrap().checks;
    assert_eq!(all.iter().filter(|c| c.tenant == "beta").count(), 4);
    assert!(all
        .iter()
        .filter(|c| c.tenant == "beta")
        .all(|c| c.state == "pass"));
    let (_, stream) = acme
        .query("SELECT expectation, state, failing FROM system.quality ORDER BY expectation")
        .await
        .unwrap();
    let rows: Vec<RecordBatch> = stream.try_collect().await.unwrap();
    let text = arrow::util::pretty::pretty_format_batches(&rows)
        .unwrap()
        .to_string();
    for line in [
        "accepted_values | error | 3",
        "not_null        | error | 2",
        "unique          | error | 1",
        "freshness       | pass  | 0",
    ] {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }
    assert!(!text.contains("beta"), "{text}");

    // A tenant cannot evaluate another's tables.
    let err = acme.quality_run(Some("beta")).await.unwrap_err();
    assert_eq!(status_of(&err), tonic::Code::PermissionDenied, "{err}");
    let err = admin.quality_run(Some("nobody")).await.unwrap_err();
    assert_eq!(status_of(&err), tonic::Code::NotFound, "{err}");
    server.shutdown().await;
}

#[tokio::test]
async fn expectations_naming_a_missing_column_are_errors_that_say_so() {
    let server = start_with_clicks_quality(Expectations {
        not_null: vec!["nope".into()],
        freshness: Some(Freshness {
            warn_after: None,
            error_after: Some(Duration::from_secs(3600)),
        }),
        ..Default::default()
    })
    .await;
    let mut client = server.client(ACME).await;
    let rows = clicks(&[("2024-05-01T10:00:00Z", "a", Some("u"), "view")]);
    client.put(None, "clicks", vec![rows]).await.unwrap();
    let checks = client.quality_run(None).await.unwrap().checks;
    let missing = find(&checks, "not_null");
    assert_eq!(missing.state, "error");
    assert!(missing.detail.contains("nope"), "{missing:?}");
    assert_eq!(find(&checks, "freshness").state, "pass");
    server.shutdown().await;
}

#[tokio::test]
async fn a_tenant_update_replaces_the_configs_expectations_for_that_tenant() {
    let server = start().await;
    let mut admin = server.client(ADMIN).await;
    let rows = clicks(&[("2024-05-01T10:00:00Z", "a", None, "buy")]);
    for token in [ACME, BETA] {
        let mut client = server.client(token).await;
        client
            .put(None, "clicks", vec![rows.clone()])
            .await
            .unwrap();
    }
    // acme only requires `kind` to be present: its null user and "buy" are fine for it.
    let own = lakeport_client::Tenant {
        id: "acme".into(),
        quality: Some(r#"{"clicks": {"not_null": ["kind"]}}"#.into()),
        ..Default::default()
    };
    let updated = admin
        .tenant_update(own, vec!["quality".into()])
        .await
        .unwrap();
    let stored: serde_json::Value =
        serde_json::from_str(updated.quality.as_deref().unwrap()).unwrap();
    assert_eq!(
        stored,
        serde_json::json!({"clicks": {"not_null": ["kind"]}})
    );

    let checks = admin.quality_run(None).await.unwrap().checks;
    let acme: Vec<_> = checks.iter().filter(|c| c.tenant == "acme").collect();
    assert_eq!(acme.len(), 1, "{acme:?}");
    assert_eq!(
        (
            acme[0].expectation.as_str(),
            acme[0].column.as_str(),
            acme[0].state.as_str()
        ),
        ("not_null", "kind", "pass")
    );
    // beta still follows the config.
    let beta_errors = checks
        .iter()
        .filter(|c| c.tenant == "beta" && c.state == "error")
        .count();
    assert_eq!(beta_errors, 2, "{checks:?}");

    for bad in [
        r#"{"clicks": {"not_nul": ["kind"]}}"#,
        r#"{"clicks": {"accepted_values": {"kind": []}}}"#,
    ] {
        let bad = lakeport_client::Tenant {
            id: "acme".into(),
            quality: Some(bad.into()),
            ..Default::default()
        };
        let err = admin
            .tenant_update(bad, vec!["quality".into()])
            .await
            .unwrap_err();
        assert_eq!(status_of(&err), tonic::Code::InvalidArgument, "{err}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn unique_over_a_window_counts_repeats_across_days_but_not_older_rows() {
    let server = start_with_clicks_quality(
        toml::from_str(
            r#"unique = ["id"]
unique_window = "3d""#,
        )
        .expect("expectations"),
    )
    .await;
    let mut client = server.client(ACME).await;
    // fixed_now() is 2024-05-01T10:20:30Z; "b" repeats on two days inside the window, "a"
    // once inside and once 10 days before it.
    let rows = clicks(&[
        ("2024-05-01T09:00:00Z", "b", Some("u"), "view"),
        ("2024-04-30T09:00:00Z", "b", Some("u"), "view"),
        ("2024-05-01T08:00:00Z", "a", Some("u"), "view"),
        ("2024-04-21T08:00:00Z", "a", Some("u"), "view"),
    ]);
    client.put(None, "clicks", vec![rows]).await.unwrap();
    let checks = client.quality_run(None).await.unwrap().checks;
    let unique = find(&checks, "unique");
    assert_eq!(
        (unique.state.as_str(), unique.failing),
        ("error", 1),
        "{unique:?}"
    );
    assert_eq!(unique.samples, vec!["b"]);
    assert!(
        unique.detail.contains("within the last 3days"),
        "{unique:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn the_schedule_fills_system_quality_without_being_asked() {
    let server = TestServer::start_with(|config| {
        config.datasets.get_mut("clicks").expect("clicks").quality = expectations();
        config.operations.quality_interval = Duration::from_millis(100);
    })
    .await;
    let mut client = server.client(ACME).await;
    let rows = clicks(&[("2024-05-01T10:00:00Z", "a", None, "view")]);
    client.put(None, "clicks", vec![rows]).await.unwrap();
    eventually("the schedule records a failing not_null", || {
        let server = &server;
        async move {
            let (_, stream) = server
                .client(ACME)
                .await
                .query("SELECT state FROM system.quality WHERE expectation = 'not_null'")
                .await
                .unwrap();
            let rows: Vec<RecordBatch> = stream.try_collect().await.unwrap();
            arrow::util::pretty::pretty_format_batches(&rows)
                .unwrap()
                .to_string()
                .contains("error")
        }
    })
    .await;
    server.shutdown().await;
}
