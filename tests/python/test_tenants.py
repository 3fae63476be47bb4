"""Tenants as managed objects, as a platform team drives them: the `lakeport` CLI against
two server processes on one lake, producers with pyarrow, usage checked against a listing
of the lake directory."""

import json
import os
import time

import pyarrow as pa
import pyarrow.flight as flight
import pytest

from conftest import ADMIN, CONFIG, Server, billed_bytes, eventually, put_table, snowplow_table
from test_cli import lakeport


def config(extra=""):
    # Top-level keys must come before the first table of the file.
    return f'registry_refresh = "100ms"\n{extra}\n' + CONFIG


def test_token_lifecycle_across_two_servers_with_the_cli(tmp_path, lake):
    first = Server(tmp_path, lake, config=config()).start()
    second = Server(tmp_path, lake, config=config()).start()
    try:
        created = lakeport(first, "tenant", "create", "gamma", "--display-name", "Gamma",
                           "--quota-soft", "1GiB", "--format", "json", token=ADMIN)
        assert json.loads(created.stdout)[0]["quota_soft_bytes"] == 1 << 30
        issued = lakeport(first, "token", "issue", "gamma", "--expires-in", "30d", token=ADMIN)
        token = issued.stdout.strip()
        assert token.startswith("lpt_") and token not in issued.stderr
        put_table(first, snowplow_table(5), token=token)
        eventually("the second server knows the token",
                   lambda: put_table(second, snowplow_table(3, prefix="b"), token=token) is not None,
                   not_yet=(flight.FlightUnauthenticatedError,))

        listed = json.loads(lakeport(second, "tenant", "list", "--format", "json", token=ADMIN).stdout)
        assert [t["id"] for t in listed] == ["acme", "beta", "gamma"]
        token_id = listed[2]["tokens"]
        lakeport(second, "token", "revoke", "gamma", token_id, token=ADMIN)
        for server in (second, first):
            def refused(server=server):
                try:
                    put_table(server, snowplow_table(1, prefix="c"), token=token)
                except flight.FlightUnauthenticatedError:
                    return True
                return False
            eventually("the revoked token is refused", refused)

        denied = lakeport(first, "tenant", "list", check=False)  # acme's token
        assert denied.returncode != 0 and "for admins" in denied.stderr, denied.stderr
    finally:
        second.stop()
        first.stop()


def test_quota_report_matches_the_lake_and_the_hard_limit_refuses(tmp_path, lake):
    server = Server(tmp_path, lake, config=config()).start()
    try:
        for i in range(3):
            put_table(server, snowplow_table(50, prefix=f"p{i}"))
        table_dir = lake / "tenant_id=acme" / "snowplow"
        report = json.loads(lakeport(server, "quota", "--datasets", "--format", "json", token=ADMIN).stdout)
        assert report == [{
            "tenant": "acme", "dataset": "snowplow", "bytes": billed_bytes(table_dir),
            "objects": sum(len(f) for _, _, f in os.walk(table_dir)), "rows": 150, "drift_bytes": 0,
        }]
        used = billed_bytes(table_dir)
        lakeport(server, "tenant", "update", "acme", "--quota-hard", str(used), token=ADMIN)
        files = sorted(p for p in table_dir.rglob("*") if p.is_file())
        with pytest.raises(pa.ArrowException) as refused:  # pyarrow: RESOURCE_EXHAUSTED is ArrowInvalid
            put_table(server, snowplow_table(10, prefix="over"))
        assert "RESOURCE_EXHAUSTED" in str(refused.value) and "hard storage quota" in str(refused.value)
        assert sorted(p for p in table_dir.rglob("*") if p.is_file()) == files, "nothing written"
        quota = json.loads(lakeport(server, "quota", "--format", "json").stdout)
        assert [(q["tenant"], q["quota_state"], q["usage_bytes"]) for q in quota] == [("acme", "hard_exceeded", used)]
        rows = json.loads(lakeport(server, "sql", "SELECT tenant, quota_state, rows FROM system.tenants", "--format", "json").stdout)
        assert rows == [{"tenant": "acme", "quota_state": "hard_exceeded", "rows": 150}]
        put_table(server, snowplow_table(10, prefix="beta"), token="beta-secret")
    finally:
        server.stop()
    # After a restart the server counts the same bytes (from its first listing).
    restarted = Server(tmp_path, lake, config=config()).start()
    try:
        report = json.loads(lakeport(restarted, "quota", "--format", "json", token=ADMIN).stdout)
        usage = {q["tenant"]: q["usage_bytes"] for q in report}
        assert usage["acme"] == billed_bytes(lake / "tenant_id=acme")
        assert usage["beta"] == billed_bytes(lake / "tenant_id=beta")
    finally:
        restarted.stop()
