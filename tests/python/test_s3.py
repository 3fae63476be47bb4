"""The lake on S3 (moto on loopback): routes send each data kind to its own bucket,
residency refuses rather than misplaces, every object of a keyed tenant carries its KMS
key, two servers commit to one table without losing or duplicating, and third-party
readers and our own queries read the tables back."""

import pyarrow as pa
import pyarrow.flight as flight
import pytest
from deltalake import DeltaTable

from conftest import BETA, Server, ServerExited, auth_toml, produce_concurrently, put_table, snowplow_table, sql, toml_table

KMS_KEY = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def otel_logs(n: int, service: str = "checkout") -> pa.Table:
    start = 1_714_558_830_000_000
    return pa.table({
        "time": pa.array([start + i * 1_000_000 for i in range(n)], pa.timestamp("us", tz="UTC")),
        "service_name": pa.array([service] * n, pa.string()),
        "body": pa.array([f"log {i}" for i in range(n)], pa.string()),
    })


def s3_config(moto, events, otel, acme_key=True, extra="", otel_options=None, otel_settings=""):
    options = toml_table(moto.store_options())
    otel_options = toml_table(otel_options or moto.store_options())
    key = f'encryption = {{ kind = "sse-kms", key_id = "{KMS_KEY}" }}' if acme_key else ""
    return auth_toml(acme=f'region = "eu"\n{key}', beta='region = "us"') + f"""
[stores.default]
url = "s3://{events}/lake"
region = "eu"
options = {options}

[stores.otel]
url = "s3://{otel}/lake"
region = "eu"
options = {otel_options}
{otel_settings}

[[routes]]
datasets = ["otel_*"]
store = "otel"

[ingest]
commit_interval = "10ms"
{extra}
"""


@pytest.fixture
def buckets(moto, unique):
    return moto.bucket(unique("events")), moto.bucket(unique("otel"))


@pytest.fixture
def s3_server(tmp_path, moto, buckets):
    server = Server(tmp_path, None, config=s3_config(moto, *buckets)).start()
    yield server
    server.stop()


def deltalake_options(moto):
    return {"AWS_ENDPOINT_URL": moto.endpoint, "AWS_ALLOW_HTTP": "true", "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1"}


def test_each_data_kind_lands_in_its_own_bucket_and_reads_back(s3_server, moto, buckets):
    events, otel = buckets
    acks = put_table(s3_server, snowplow_table(1_500))
    assert sum(a["rows_committed"] for a in acks) == 1_500
    acks = put_table(s3_server, otel_logs(700), dataset="otel_logs")
    assert sum(a["rows_committed"] for a in acks) == 700

    # The default store (events) also holds the tenant registry.
    registry = [k for k in moto.keys(events) if k.startswith("lake/_lakeport/")]
    assert any(k.startswith("lake/_lakeport/tenants/acme/") for k in registry), registry
    event_keys = [k for k in moto.keys(events) if not k.startswith("lake/_lakeport/")]
    otel_keys = moto.keys(otel)
    assert event_keys and otel_keys
    assert all(k.startswith("lake/tenant_id=acme/snowplow/") for k in event_keys), event_keys[:5]
    assert all(k.startswith("lake/tenant_id=acme/otel_logs/") for k in otel_keys), otel_keys[:5]
    assert any("/_delta_log/00000000000000000000.json" in k for k in event_keys)
    assert any("app_id=web/year=2024/month=05/day=01/hour=10/data_2" in k for k in event_keys)

    snowplow = DeltaTable(f"s3://{events}/lake/tenant_id=acme/snowplow", storage_options=deltalake_options(moto))
    assert snowplow.to_pyarrow_table().num_rows == 1_500
    assert snowplow.metadata().partition_columns == ["app_id", "year", "month", "day", "hour"]
    logs = DeltaTable(f"s3://{otel}/lake/tenant_id=acme/otel_logs", storage_options=deltalake_options(moto))
    assert logs.to_pyarrow_table().num_rows == 700

    # Queries find the tables in both stores.
    assert sql(s3_server, "SELECT count(*) AS n FROM snowplow").column("n").to_pylist() == [1_500]
    assert sql(s3_server, "SELECT count(*) AS n FROM otel_logs").column("n").to_pylist() == [700]
    tables = sql(s3_server, "SELECT dataset, store, configured_store FROM system.tables ORDER BY dataset")
    assert tables.to_pylist() == [
        {"dataset": "otel_logs", "store": "otel", "configured_store": "otel"},
        {"dataset": "snowplow", "store": "default", "configured_store": "default"},
    ]


def test_every_object_of_a_keyed_tenant_carries_its_kms_key(s3_server, moto, buckets):
    events, otel = buckets
    put_table(s3_server, snowplow_table(300))
    put_table(s3_server, snowplow_table(200, prefix="f"))
    put_table(s3_server, otel_logs(50), dataset="otel_logs")
    s3 = moto.client()
    checked = 0
    for bucket in buckets:
        for key in moto.keys(bucket, "lake/tenant_id=acme/"):
            if key.startswith("lake/_lakeport/"):
                continue
            head = s3.head_object(Bucket=bucket, Key=key)
            assert head.get("ServerSideEncryption") == "aws:kms", key
            assert head.get("SSEKMSKeyId") == KMS_KEY, key
            checked += 1
    # data files and commits of both tables (the dead-letter table stays empty here)
    assert checked >= 6


def test_residency_refuses_and_writes_nothing_anywhere(s3_server, moto, buckets):
    with pytest.raises(pa.ArrowInvalid) as refused:
        put_table(s3_server, snowplow_table(10), token=BETA)
    # pyarrow raises FAILED_PRECONDITION as ArrowInvalid; the gRPC code is in the message.
    message = str(refused.value)
    assert "FAILED_PRECONDITION" in message
    assert 'tenant "beta" (region us)' in message and '"snowplow"' in message
    for bucket in buckets:
        assert not [k for k in moto.keys(bucket) if "tenant_id=beta" in k]


def test_two_servers_commit_to_one_s3_table_without_loss_or_duplicates(tmp_path, moto, buckets):
    config = s3_config(moto, *buckets, acme_key=False)
    a = Server(tmp_path, None, config=config).start()
    b = Server(tmp_path, None, config=config).start()
    try:
        assert produce_concurrently([a, b, a, b], puts=6) == []
        table = DeltaTable(f"s3://{buckets[0]}/lake/tenant_id=acme/snowplow",
                           storage_options=deltalake_options(moto)).to_pyarrow_table()
        assert table.num_rows == 4 * 6 * 100
        assert len(set(table.column("event_id").to_pylist())) == 4 * 6 * 100
    finally:
        a.stop()
        b.stop()


def test_unknown_store_in_a_route_refuses_to_start(tmp_path, moto, buckets):
    config = s3_config(moto, *buckets) + '\n[[routes]]\ndatasets = ["cloudevents"]\nstore = "nowhere"\n'
    with pytest.raises(ServerExited) as exited:
        Server(tmp_path, None, config=config).start()
    assert "nowhere" in exited.value.output and "routes[1]" in exited.value.output


def test_malformed_url_and_unknown_option_refuse_to_start(tmp_path, moto, buckets):
    bad_url = s3_config(moto, *buckets).replace(f's3://{buckets[1]}/lake', 's3:///lake')
    with pytest.raises(ServerExited) as exited:
        Server(tmp_path, None, config=bad_url).start()
    assert "s3:///lake" in exited.value.output
    bad_option = s3_config(moto, *buckets).replace("aws_allow_http", "aws_allow_htp", 1)
    with pytest.raises(ServerExited) as exited:
        Server(tmp_path, None, config=bad_option).start()
    assert "aws_allow_htp" in exited.value.output


def test_unreachable_store_refuses_to_start_unless_allowed(tmp_path, moto, buckets, lake):
    from peers import free_port
    dead = f"http://127.0.0.1:{free_port()}"
    config = s3_config(moto, *buckets, acme_key=False,
                       otel_options=dict(moto.store_options(endpoint=dead), timeout="1s"),
                       otel_settings="max_retries = 0")
    with pytest.raises(ServerExited) as exited:
        Server(tmp_path, None, config=config).start()
    assert "store otel" in exited.value.output and "--allow-unreachable-stores" in exited.value.output

    server = Server(tmp_path, None, config=config, extra_args=["--allow-unreachable-stores"]).start()
    try:
        with pytest.raises(flight.FlightUnavailableError) as unavailable:
            put_table(server, otel_logs(5), dataset="otel_logs")
        assert "otel" in str(unavailable.value)
        # The reachable store keeps serving.
        acks = put_table(server, snowplow_table(5))
        assert sum(a["rows_committed"] for a in acks) == 5
    finally:
        server.stop()
