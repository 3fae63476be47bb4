use super::*;

fn parse(toml_text: &str, flags: &[&str]) -> Result<Config, ConfigError> {
    let mut argv = vec!["lakeport-server"];
    argv.extend_from_slice(flags);
    let matches = Config::command()
        .try_get_matches_from(argv)
        .map_err(|e| ConfigError::Flags(Box::new(e)))?;
    let file = toml::from_str(toml_text).expect("toml parses");
    Config::resolve(&matches, "test.toml".into(), file)
}

#[test]
fn flags_override_file_and_defaults_fill_the_rest() {
    let config = parse(
        r#"
        listen = "0.0.0.0:1"
        lake = "file:///tmp/x"
        [auth]
        admin_token = "root"
        [[tenants]]
        id = "acme"
        tokens = ["a", "b"]
        [datasets.my_events]
        time_column = "ts"
        app_column = "app"
        [ingest]
        commit_interval = "250ms"
        flush_size = "8MiB"
        row_group_rows = 5000
        [query]
        queue_timeout = "5s"
        [maintenance]
        checkpoint_interval = 7
        "#,
        &[
            "--listen",
            "127.0.0.1:0",
            "--tenant",
            "beta=t",
            "--flush-size",
            "16MiB",
            "--query-max-concurrent",
            "9",
        ],
    )
    .unwrap();
    assert_eq!(config.listen, "127.0.0.1:0");
    assert_eq!(config.lake(), "file:///tmp/x");
    assert_eq!(config.auth.admin_tokens, vec![TokenHash::of_token("root")]);
    assert_eq!(config.auth.tenants.len(), 2);
    assert_eq!(config.auth.tenants[0].tokens.len(), 2);
    assert_eq!(config.ingest.commit_interval, Duration::from_millis(250));
    assert_eq!(config.ingest.flush_size, 16 << 20);
    assert_eq!(config.ingest.row_group_rows, 5000);
    assert_eq!(config.ingest.compression, Compression::Zstd(1));
    assert_eq!(config.query.max_concurrent, 9);
    assert_eq!(config.query.queue_timeout, Duration::from_secs(5));
    assert_eq!(config.query.timeout, Duration::from_secs(300));
    assert_eq!(config.maintenance.checkpoint_interval, 7);
    let custom = config.datasets["my_events"].custom.clone().unwrap();
    assert_eq!(custom.app_column.as_deref(), Some("app"));
}

#[test]
fn stores_routes_and_tenant_placement_parse() {
    let config = parse(
        r#"
        [stores.default]
        url = "s3://events/lake"
        region = "eu"
        options = { aws_region = "eu-west-1" }
        [stores.otel]
        url = "az://otel/lake"
        region = "eu"
        [[routes]]
        datasets = ["otel_*"]
        store = "otel"
        [[tenants]]
        id = "acme"
        token = "t"
        region = "eu"
        encryption = { kind = "sse-kms", key_id = "arn:aws:kms:eu-west-1:1:key/k" }
        [datasets.clicks]
        time_column = "ts"
        store = "/tmp/clicks"
        "#,
        &["--lake", "s3://other/lake", "--allow-unreachable-stores"],
    )
    .unwrap();
    assert_eq!(config.lake(), "s3://other/lake", "--lake overrides the url");
    assert_eq!(config.stores["default"].region.as_deref(), Some("eu"));
    assert_eq!(config.stores["dataset_clicks"].url, "/tmp/clicks");
    assert_eq!(config.routes.len(), 2);
    assert_eq!(config.routes[0].store, "dataset_clicks");
    assert_eq!(config.routes[1].datasets, vec!["otel_*".to_string()]);
    assert!(config.allow_unreachable_stores);
    let acme = &config.auth.tenants[0];
    assert_eq!(acme.settings.region.as_deref(), Some("eu"));
    assert!(matches!(
        acme.settings.encryption,
        Some(crate::lake::KeySpec::SseKms { .. })
    ));
}

#[test]
fn unknown_keys_and_bad_values_are_errors() {
    assert!(parse("listn = \"x\"", &[]).is_err());
    assert!(parse("[ingest]\ncommit_intervall = \"1s\"", &[]).is_err());
    assert!(parse("[stores.x]\nurl = \"s3://b\"\nregoin = \"eu\"", &[]).is_err());
    assert!(parse("", &["--compression", "gzip"]).is_err());
    assert!(parse("[ingest]\ncompression = \"gzip\"", &[]).is_err());
    assert!(parse("[maintenance]\ncheckpoint_interval = 0", &[]).is_err());
    assert!(parse("", &["--checkpoint-interval", "0"]).is_err());
    assert!(parse("[[tenants]]\nid = \"Bad Name\"\ntoken = \"x\"", &[]).is_err());
    assert!(parse(
        "[[tenants]]\nid = \"a\"\nquota = { soft = \"2GiB\", hard = \"1GiB\" }",
        &[]
    )
    .is_err());
    assert!(parse("[tenant_defaults]\nretention = \"sometimes\"", &[]).is_err());
    assert!(parse("[datasets.otel_logs]\nretention = \"5m\"", &[]).is_err());
    assert!(parse("[tenant_defaults]\nretention = \"forever\"", &[]).is_ok());
    assert!(parse("[tenant_defaults]\nquota = { soft = \"lots\" }", &[]).is_err());
    assert!(parse("auto_provision = \"maybe\"", &[]).is_err());
    assert!(parse("[auth]\nadmin_token_sha256 = \"abc\"", &[]).is_err());
    assert!(parse("lake = \"/x\"\n[stores.default]\nurl = \"/y\"", &[]).is_err());
    let encryption_inline_key =
        "[[tenants]]\nid = \"a\"\ntoken = \"t\"\nencryption = { kind = \"sse-c\", key = \"abc\" }";
    assert!(parse(encryption_inline_key, &[]).is_err());
}

#[test]
fn tenant_settings_defaults_and_registry_knobs_parse() {
    let text = "auto_provision = true\nregistry_refresh = \"2s\"\n\
                [tenant_defaults]\nquota = { soft = \"50GiB\", hard = \"60GiB\" }\nrows_per_second = 1000\n\
                [[tenants]]\nid = \"acme\"\ndisplay_name = \"Acme\"\nquota = { hard = \"1GiB\" }\nstate = \"suspended\"";
    let config = parse(text, &["--usage-reconcile-interval", "5m"]).unwrap();
    let tenants = config.tenants_config();
    assert!(tenants.auto_provision);
    assert_eq!(tenants.registry_refresh, Duration::from_secs(2));
    assert_eq!(tenants.usage_reconcile_interval, Duration::from_secs(300));
    assert_eq!(tenants.defaults.quota_soft, Some(50 << 30));
    assert_eq!(tenants.defaults.rows_per_second, Some(1000));
    let acme = &tenants.configured["acme"];
    assert_eq!(acme.quota_hard, Some(1 << 30));
    assert_eq!(acme.state, Some(crate::tenants::TenantState::Suspended));
    // Unset, auto-provisioning follows whether the server is open.
    assert!(parse("", &[]).unwrap().tenants_config().auto_provision);
    let closed = parse("[auth]\nadmin_token = \"x\"", &[]).unwrap();
    assert!(!closed.tenants_config().auto_provision);
}

#[test]
fn compression_levels_parse() {
    assert_eq!("zstd(9)".parse::<Compression>(), Ok(Compression::Zstd(9)));
    assert!("zstd(99)".parse::<Compression>().is_err());
    assert_eq!("none".parse::<Compression>(), Ok(Compression::None));
}
