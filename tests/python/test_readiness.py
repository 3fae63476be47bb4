"""Snowflake readiness on S3 (moto): one fixture table per check, each breaking exactly that
check; a table lakeport built and then maintained passes every check; the CLI exits
non-zero on a failing table and prints the Snowflake SQL with --ddl."""

import base64
import io
import json
import secrets
import uuid

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable, write_deltalake

from conftest import ACME, ADMIN, BETA, Server, auth_toml, put_table, snowplow_table, toml_table
from test_cli import lakeport

CHECKS = ["protocol", "parquet_types", "partition_columns", "checkpoint", "file_sizes",
          "row_group_sizes", "column_names", "encryption", "stage"]
FIXTURES = ["f_nanos", "f_unsigned", "f_int96", "f_small", "f_nockpt", "f_commits", "f_dv", "f_collide"]
HOUR = {"year": "2024", "month": "05", "day": "01", "hour": "10"}
TS = 1_714_557_600_000_000  # 2024-05-01T10:00:00Z


@pytest.fixture
def lake_on_s3(tmp_path, moto, unique):
    bucket = moto.bucket(unique("ready"))
    key_file = tmp_path / "beta.key"
    key_file.write_text(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
    datasets = "".join(f'\n[datasets.{name}]\ntime_column = "ts"\n' for name in FIXTURES)
    config = auth_toml(beta=f'encryption = {{ kind = "sse-c", key_file = "{key_file}" }}') + f"""
[stores.default]
url = "s3://{bucket}/lake"
options = {toml_table(moto.store_options())}
{datasets}
[ingest]
commit_interval = "10ms"
"""
    server = Server(tmp_path, None, config=config, extra_args=["--maintenance-interval", "0s"]).start()
    yield server, moto, bucket
    server.stop()


def delta_type(t: pa.DataType) -> str:
    if pa.types.is_timestamp(t):
        return "timestamp"
    if pa.types.is_string(t):
        return "string"
    return {pa.int64(): "long", pa.int32(): "integer", pa.uint16(): "integer"}[t]


def hand_made_table(moto, bucket, dataset, files, versions_after=0, checkpoint=False, **parquet_options):
    """A Delta table written the way another tool might: `files` (pyarrow tables) as Parquet
    written with `parquet_options` in one hour partition, committed at version 0, then
    `versions_after` empty commits."""
    s3 = moto.client()
    root = f"lake/tenant_id=acme/{dataset}"
    schema = files[0].schema
    fields = [{"name": f.name, "type": delta_type(f.type), "nullable": True, "metadata": {}} for f in schema]
    fields += [{"name": c, "type": "string", "nullable": True, "metadata": {}} for c in HOUR]
    actions = [
        {"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}},
        {"metaData": {"id": str(uuid.uuid4()), "format": {"provider": "parquet", "options": {}},
                      "schemaString": json.dumps({"type": "struct", "fields": fields}),
                      "partitionColumns": list(HOUR), "configuration": {}, "createdTime": 0}},
    ]
    for i, table in enumerate(files):
        buffer = io.BytesIO()
        pq.write_table(table, buffer, **parquet_options)
        path = "year=2024/month=05/day=01/hour=10/" + f"part-{i:05}.parquet"
        s3.put_object(Bucket=bucket, Key=f"{root}/{path}", Body=buffer.getvalue())
        actions.append({"add": {"path": path, "partitionValues": HOUR, "size": buffer.tell(),
                                "modificationTime": 0, "dataChange": True,
                                "stats": json.dumps({"numRecords": table.num_rows})}})
    commit = "\n".join(json.dumps(a) for a in actions) + "\n"
    s3.put_object(Bucket=bucket, Key=f"{root}/_delta_log/{0:020}.json", Body=commit.encode())
    for version in range(1, versions_after + 1):
        info = {"commitInfo": {"timestamp": version, "operation": "WRITE", "operationParameters": {}}}
        s3.put_object(Bucket=bucket, Key=f"{root}/_delta_log/{version:020}.json", Body=(json.dumps(info) + "\n").encode())
    if checkpoint:
        DeltaTable(f"s3://{bucket}/{root}", storage_options=moto.store_options(),
                   version=0).create_checkpoint()


def ts_table(n=10, **extra):
    columns = {"ts": pa.array([TS + i * 1_000_000 for i in range(n)], pa.timestamp("us", tz="UTC"))}
    columns.update(extra)
    return pa.table(columns)


def readiness(server, *args, token=ADMIN):
    result = lakeport(server, "readiness", "--format", "json", *args, token=token, check=False)
    return result, json.loads(result.stdout) if result.stdout.strip() else []


def states(table):
    return {c["check"]: c["state"] for c in table["checks"]}


def test_each_fixture_breaks_exactly_its_check(lake_on_s3):
    server, moto, bucket = lake_on_s3
    # pyarrow's default Parquet format keeps nanoseconds as TIMESTAMP(NANOS).
    ns = pa.table({"ts": pa.array([TS * 1000 + i for i in range(10)], pa.timestamp("ns", tz="UTC"))})
    hand_made_table(moto, bucket, "f_nanos", [ns])
    hand_made_table(moto, bucket, "f_unsigned", [ts_table(port=pa.array(range(10), pa.uint16()))])
    hand_made_table(moto, bucket, "f_int96", [ts_table()], use_deprecated_int96_timestamps=True)
    hand_made_table(moto, bucket, "f_small", [ts_table() for _ in range(6)])
    hand_made_table(moto, bucket, "f_nockpt", [ts_table()], versions_after=60)
    hand_made_table(moto, bucket, "f_commits", [ts_table()], versions_after=1_001, checkpoint=True)
    hand_made_table(moto, bucket, "f_collide", [ts_table(Event=["a"] * 10, event=["b"] * 10)])
    dv = ts_table().append_column("year", pa.array(["2024"] * 10)).append_column("month", pa.array(["05"] * 10))
    dv = dv.append_column("day", pa.array(["01"] * 10)).append_column("hour", pa.array(["10"] * 10))
    write_deltalake(f"s3://{bucket}/lake/tenant_id=acme/f_dv", dv, partition_by=list(HOUR),
                    configuration={"delta.enableDeletionVectors": "true"}, storage_options=moto.store_options())
    put_table(server, snowplow_table(50), token=BETA)  # beta's objects use SSE-C

    result, tables = readiness(server)
    assert result.returncode != 0, "a failing table fails the command"
    assert "Snowflake cannot read" in result.stderr, result.stderr
    by_table = {(t["tenant"], t["dataset"]): t for t in tables}
    expected = {
        ("acme", "f_nanos"): ("parquet_types", "fail"),
        ("acme", "f_unsigned"): ("parquet_types", "fail"),
        ("acme", "f_int96"): ("parquet_types", "fail"),
        ("acme", "f_small"): ("file_sizes", "warn"),
        ("acme", "f_nockpt"): ("checkpoint", "warn"),
        ("acme", "f_commits"): ("checkpoint", "fail"),
        ("acme", "f_dv"): ("protocol", "fail"),
        ("beta", "snowplow"): ("encryption", "fail"),
    }
    # Columns that differ only in case: delta-kernel (so delta-rs and lakeport) refuses to
    # open the table at all, which the report says rather than failing the whole request.
    collide = by_table.pop(("acme", "f_collide"))
    assert collide["state"] == "fail"
    assert [c["check"] for c in collide["checks"]] == ["protocol"]
    assert "cannot be opened" in collide["checks"][0]["evidence"]
    assert "Duplicate field name" in collide["checks"][0]["evidence"]
    assert set(by_table) == set(expected)
    for key, (check, state) in expected.items():
        table = by_table[key]
        assert list(states(table)) == CHECKS
        broken = {name: s for name, s in states(table).items() if s != "pass"}
        assert broken == {check: state}, (key, table["checks"])
        found = next(c for c in table["checks"] if c["check"] == check)
        assert found["fix"], found
        assert table["state"] == state
    evidence = {key: next(c for c in by_table[key]["checks"] if c["check"] == check)["evidence"]
                for key, (check, _) in expected.items()}
    assert "nanoseconds" in evidence[("acme", "f_nanos")] and "ts:" in evidence[("acme", "f_nanos")]
    assert "unsigned 16-bit" in evidence[("acme", "f_unsigned")] and "port" in evidence[("acme", "f_unsigned")]
    assert "INT96" in evidence[("acme", "f_int96")]
    assert "deletion vectors" in evidence[("acme", "f_dv")]
    assert "1001 commits since" in evidence[("acme", "f_commits")]
    assert "SSE-C" in evidence[("beta", "snowplow")]

    # A tenant sees its own tables only.
    result, own = readiness(server, token=ACME)
    assert {t["tenant"] for t in own} == {"acme"}
    refused = lakeport(server, "readiness", "--tenant", "beta", token=ACME, check=False)
    assert refused.returncode != 0 and "may not access tenant" in refused.stderr, refused.stderr


def test_a_lakeport_table_maintained_passes_every_check_and_gets_its_ddl(lake_on_s3):
    server, moto, bucket = lake_on_s3
    for i in range(4):
        put_table(server, snowplow_table(500, prefix=f"r{i}"))
    result, tables = readiness(server, "--dataset", "snowplow", "--tenant", "acme")
    assert result.returncode == 0, result.stderr
    assert states(tables[0])["file_sizes"] == "warn", "four puts leave four files in the hour"

    lakeport(server, "maintenance", "run", token=ADMIN)
    result, tables = readiness(server, "--dataset", "snowplow", "--tenant", "acme", "--ddl")
    assert result.returncode == 0, result.stderr
    [table] = tables
    assert table["state"] == "pass", table["checks"]
    assert set(states(table).values()) == {"pass"}
    ddl = table["ddl"]
    for expected in (f"URL = 's3://{bucket}/lake/tenant_id=acme/snowplow/'",
                     f"STORAGE_ALLOWED_LOCATIONS = ('s3://{bucket}/lake/')",
                     "BASE_LOCATION = 'tenant_id=acme/snowplow/'",
                     "TABLE_FORMAT = DELTA", "CATALOG_SOURCE = OBJECT_STORE",
                     "\"collector_tstamp\" TIMESTAMP_LTZ(6) AS (VALUE:\"collector_tstamp\"::TIMESTAMP_LTZ(6))",
                     "AUTO_REFRESH = FALSE", "REFRESH_ON_CREATE = FALSE",
                     "ALTER EXTERNAL TABLE acme_snowplow_ext REFRESH"):
        assert expected in ddl, (expected, ddl)

    text = lakeport(server, "readiness", "--ddl", token=ACME).stdout
    assert "| acme   | snowplow | checkpoint" in text and "CREATE STORAGE INTEGRATION" in text

    rows = lakeport(server, "sql", "SELECT check, state FROM system.readiness WHERE dataset = 'snowplow'",
                    "--format", "json", token=ACME).stdout
    assert {r["check"]: r["state"] for r in json.loads(rows)} == dict.fromkeys(CHECKS, "pass")
