"""The data lifecycle with real clients and stores.

Retention on S3 (moto), judged by the server's real clock: a tenant update hides the expired
hours from ADBC at once, ingest refuses their rows, a dry run changes nothing, and `lakeport
retention run --purge` removes them so that the `deltalake` package reads only the kept rows
and the bucket holds no file of an expired hour.

Offboarding: a deletion cut short by a failing store refuses the tenant and finishes after a
restart, touching nothing of another tenant in either store.

Export: a range of a tenant's table, copied into a customer's bucket, reads back with the
`deltalake` package; a second run copies nothing again."""

import json
import time

import pytest
from deltalake import DeltaTable

from conftest import ADMIN, Server, auth_toml, eventually, put_table, snowplow_table, sql, toml_table
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


def test_a_deletion_cut_short_refuses_the_tenant_and_finishes_after_a_restart(tmp_path, lake, moto, unique):
    """Two stores (the local default, S3 behind a proxy for OTel). The S3 deletes fail, so the
    deletion stops midway: the tenant is refused from then on, the other tenant keeps every
    object in both stores, and after the store heals a restarted server finishes the job."""
    import pyarrow as pa
    import pyarrow.flight as flight
    from peers import FaultProxy
    from test_store_faults import _logs, config as fault_config

    bucket = moto.bucket(unique("offboard"))
    proxy = FaultProxy(moto.port)
    config = fault_config(bucket, proxy, moto, datasets="otel_*", top='registry_refresh = "100ms"\n')
    server = Server(tmp_path, lake, config=config).start()
    try:
        lakeport(server, "tenant", "create", "gamma", token=ADMIN)
        gamma = lakeport(server, "token", "issue", "gamma", token=ADMIN).stdout.strip()
        for token in (gamma, "acme-secret"):
            put_table(server, snowplow_table(30), token=token)
            put_table(server, _logs(20), dataset="otel_logs", token=token)

        def s3_keys(tenant):
            return sorted(k for k in moto.keys(bucket) if f"tenant_id={tenant}/" in k)

        def local_files(tenant):
            root = lake / f"tenant_id={tenant}"
            return sorted(str(p) for p in root.rglob("*") if p.is_file())

        acme_before = (s3_keys("acme"), local_files("acme"))
        assert s3_keys("gamma") and local_files("gamma")

        proxy.fail("503", lambda method, path: method == "DELETE" or (method == "POST" and "delete" in path))
        cut = lakeport(server, "tenant", "delete", "gamma", "--confirm", "gamma", token=ADMIN, check=False)
        assert cut.returncode != 0 and "UNAVAILABLE" in cut.stderr.upper(), cut.stderr
        assert s3_keys("gamma"), "the S3 objects are still there"

        with pytest.raises(pa.ArrowInvalid) as refused:
            put_table(server, snowplow_table(1, prefix="late"), token=gamma)
        assert "FAILED_PRECONDITION" in str(refused.value) and "being deleted" in str(refused.value)
        import adbc_driver_manager
        with pytest.raises(adbc_driver_manager.OperationalError) as refused:
            sql(server, "SELECT count(*) FROM otel_logs", token=gamma)
        assert "(FailedPrecondition; Prepare)" in str(refused.value) and "being deleted" in str(refused.value)
        shown = json.loads(lakeport(server, "tenant", "get", "gamma", "--format", "json", token=ADMIN).stdout)
        assert shown[0]["state"] == "deleting"

        server.kill()
        proxy.heal()
        server.start()

        def finished():
            listed = json.loads(lakeport(server, "tenant", "list", "--format", "json", token=ADMIN).stdout)
            return "gamma" not in [t["id"] for t in listed]
        eventually("the restarted server finishes the deletion", finished)
        assert s3_keys("gamma") == [] and not (lake / "tenant_id=gamma").exists()
        assert (s3_keys("acme"), local_files("acme")) == acme_before
        assert not list((lake / "_lakeport" / "tenants").glob("gamma/*"))
        with pytest.raises(flight.FlightUnauthenticatedError):
            put_table(server, snowplow_table(1, prefix="gone"), token=gamma)
    finally:
        proxy.heal()
        server.stop()
        proxy.stop()


def test_export_hands_a_range_over_as_a_delta_table_in_the_customers_bucket(server, lake, moto, unique):
    """Two of a tenant's three hours go to another bucket (moto needs an endpoint, which only
    an admin may give); the `deltalake` package reads exactly those rows there, from a
    checkpoint. Asked again, nothing is copied twice. A tenant may give credentials but no
    endpoint, and may not export to a path on the server's disk."""
    hour_us = 3_600_000_000
    start = 1_714_550_400_000_000  # 2024-05-01T08:00:00Z
    for h in range(3):
        put_table(server, snowplow_table(10 + h, start_us=start + h * hour_us, prefix=f"h{h}"))
    source_version = DeltaTable(str(lake / "tenant_id=acme" / "snowplow")).version()
    bucket = moto.bucket(unique("customer"))
    options = [arg for k, v in moto.store_options().items() for arg in ("--option", f"{k}={v}")]
    export = ["export", "acme", "--dataset", "snowplow", "--from", "2024-05-01T09:00:00Z",
              "--to", "2024-05-01T11:00:00Z", "--to-store", f"s3://{bucket}/acme-may", *options,
              "--format", "json"]

    first = json.loads(lakeport(server, *export, token=ADMIN).stdout)[0]
    assert (first["files"], first["files_copied"], first["rows"], first["version"]) == (2, 2, 23, 0)
    table = DeltaTable(f"s3://{bucket}/acme-may", storage_options=deltalake_options(moto))
    ids = sorted(table.to_pyarrow_table(columns=["event_id"]).column("event_id").to_pylist())
    assert ids == sorted([f"h1-{i}" for i in range(11)] + [f"h2-{i}" for i in range(12)])
    uris = table.file_uris()
    assert len(uris) == 2 and all(u.startswith(f"s3://{bucket}/acme-may/app_id=web/year=2024/") for u in uris), uris
    assert "acme-may/_delta_log/00000000000000000000.checkpoint.parquet" in moto.keys(bucket)

    again = json.loads(lakeport(server, *export, token=ADMIN).stdout)[0]
    assert (again["files"], again["files_copied"], again["version"]) == (2, 0, 0)
    assert DeltaTable(str(lake / "tenant_id=acme" / "snowplow")).version() == source_version

    local = lakeport(server, "export", "acme", "--dataset", "snowplow", "--from", "2024-05-01",
                     "--to", "2024-05-02", "--to-store", f"file://{lake.parent}/stolen", check=False)
    assert local.returncode != 0 and "for admins" in local.stderr, local.stderr
    assert not (lake.parent / "stolen").exists()
    aimed = lakeport(server, *export, check=False)  # acme's token, with moto's endpoint option
    assert aimed.returncode != 0 and "does not have permission" in aimed.stderr, aimed.stderr
    assert '"aws_allow_http" is for admins' in aimed.stderr, aimed.stderr
