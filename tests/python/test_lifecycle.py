"""Retention on S3 (moto), judged by the server's real clock: a tenant update hides the
expired hours from ADBC at once, ingest refuses their rows, a dry run changes nothing, and
`lakeport retention run --purge` removes them so that the `deltalake` package reads only
the kept rows and the bucket holds no file of an expired hour."""

import json
import time

from deltalake import DeltaTable

from conftest import ADMIN, Server, auth_toml, put_table, snowplow_table, sql, toml_table
from test_cli import lakeport
from test_s3 import deltalake_options

HOUR_US = 3_600_000_000


def hour_dir(us: int) -> str:
    return time.strftime("year=%Y/month=%m/day=%d/hour=%H", time.gmtime(us // 1_000_000))


def test_retention_hides_refuses_and_purges_on_s3(tmp_path, moto, unique):
    bucket = moto.bucket(unique("retention"))
    config = auth_toml() + f"""
[stores.default]
url = "s3://{bucket}/lake"
options = {toml_table(moto.store_options())}

[ingest]
commit_interval = "10ms"
"""
    server = Server(tmp_path, None, config=config).start()
    try:
        now_us = int(time.time() * 1_000_000)
        # Whole hours well inside and well outside a five-day retention.
        old_us = (now_us - 10 * 24 * HOUR_US) // HOUR_US * HOUR_US
        new_us = (now_us - 2 * HOUR_US) // HOUR_US * HOUR_US
        put_table(server, snowplow_table(40, start_us=old_us, prefix="old"))
        put_table(server, snowplow_table(25, start_us=new_us, prefix="new"))
        assert sql(server, "SELECT count(*) AS n FROM snowplow").column("n")[0].as_py() == 65

        lakeport(server, "tenant", "update", "acme", "--retention", "5d", token=ADMIN)
        assert sql(server, "SELECT count(*) AS n FROM snowplow").column("n")[0].as_py() == 25

        acks = put_table(server, snowplow_table(7, start_us=old_us + 60_000_000, prefix="late"))
        assert sum(a.get("rows_expired", 0) for a in acks) == 7
        assert sum(a["rows_committed"] for a in acks) == 0
        assert "retention of 5days" in next(a["expired_reason"] for a in acks if a.get("rows_expired"))

        table_uri = f"s3://{bucket}/lake/tenant_id=acme/snowplow"
        version = DeltaTable(table_uri, storage_options=deltalake_options(moto)).version()
        planned = json.loads(lakeport(server, "retention", "run", "--dry-run", "--format", "json").stdout)
        assert [(s["kind"], s["outcome"], s["rows_in"]) for s in planned] == [("retention", "planned", 40)]
        assert planned[0]["partition"] == f"app_id=web/{hour_dir(old_us)}"
        assert DeltaTable(table_uri, storage_options=deltalake_options(moto)).version() == version

        done = json.loads(lakeport(server, "retention", "run", "--purge", "--format", "json").stdout)
        kinds = {s["kind"]: s for s in done}
        assert kinds["retention"]["outcome"] == "done" and kinds["retention"]["rows_in"] == 40
        assert kinds["purge"]["outcome"] == "done" and kinds["purge"]["files_in"] == 1

        dt = DeltaTable(table_uri, storage_options=deltalake_options(moto))
        ids = sorted(dt.to_pyarrow_table(columns=["event_id"]).column("event_id").to_pylist())
        assert ids == sorted(f"new-{i}" for i in range(25))
        keys = moto.keys(bucket, "lake/tenant_id=acme/snowplow/")
        assert not [k for k in keys if hour_dir(old_us) in k], keys
        assert [k for k in keys if hour_dir(new_us) in k and k.endswith(".parquet")]
    finally:
        server.stop()
