"""Archival on S3 (moto) with real clients, cut short by SIGKILL.

Both buckets sit behind one fault proxy, so a step of the archive or the restore can be
held at a chosen request while the server is killed. After a restart the run finishes on
its own; then the `deltalake` package, ADBC and a producer resending its sequences find
every acknowledged row exactly once, and the other tenant's objects are untouched."""

import json
import os
import subprocess

import pytest
from deltalake import DeltaTable

from conftest import ADMIN, BETA, Server, auth_toml, eventually, put_table, snowplow_table, sql, toml_table
from test_cli import cli_binary, lakeport

ROWS = 300


def config(hot, cold, options):
    return 'registry_refresh = "200ms"\nrestore_wait = "60s"\n' + auth_toml(beta="") + f"""
[stores.default]
url = "s3://{hot}/lake"
options = {toml_table(options)}

[stores.archive]
url = "s3://{cold}/lake"
options = {toml_table(options)}
archive_for = "default"
storage_class = "STANDARD_IA"

[ingest]
commit_interval = "10ms"
"""


class Setup:
    """moto behind a proxy, a hot and a cold bucket, a server, and acme and beta loaded
    (acme by producer p1, 10 sequences of 30 rows)."""

    def __init__(self, tmp_path, moto, unique):
        from peers import FaultProxy
        self.moto = moto
        self.hot = moto.bucket(unique("hot"))
        self.cold = moto.bucket(unique("cold"))
        self.proxy = FaultProxy(moto.port)
        options = moto.store_options(endpoint=self.proxy.endpoint)
        self.server = Server(tmp_path, None, config=config(self.hot, self.cold, options)).start()
        put_table(self.server, snowplow_table(ROWS, prefix="a"), producer="p1", chunk=ROWS // 10)
        put_table(self.server, snowplow_table(20, prefix="b"), token=BETA)
        self.beta_keys = self.keys(self.hot, "beta")

    def keys(self, bucket, tenant="acme"):
        return sorted(k for k in self.moto.keys(bucket) if f"tenant_id={tenant}/" in k)

    def phase(self):
        """The archive phase of acme's newest registry record (None: none under way)."""
        revisions = [k for k in self.moto.keys(self.hot, "lake/_lakeport/tenants/acme/") if k[-5:] == ".json"
                     and k.split("/")[-1][0].isdigit()]
        body = self.moto.client().get_object(Bucket=self.hot, Key=max(revisions))["Body"].read()
        archive = json.loads(body).get("archive")
        return archive and archive["phase"]

    def shown(self):
        return json.loads(lakeport(self.server, "tenant", "get", "acme", "--format", "json", token=ADMIN).stdout)[0]

    def in_background(self, *args):
        env = {**os.environ, "LAKEPORT_ENDPOINT": f"http://{self.server.addr}", "LAKEPORT_TOKEN": ADMIN}
        return subprocess.Popen([cli_binary(), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def kill_when(self, what, ready):
        eventually(what, ready)
        self.server.kill()
        self.proxy.heal()
        self.server.start()

    def assert_every_row_once(self):
        ids = sql(self.server, "SELECT event_id FROM snowplow").column("event_id").to_pylist()
        assert len(ids) == ROWS and len(set(ids)) == ROWS
        assert self.keys(self.hot, "beta") == self.beta_keys

    def stop(self):
        self.proxy.heal()
        self.server.stop()
        self.proxy.stop()


@pytest.fixture
def setup(tmp_path, moto, unique):
    s = Setup(tmp_path, moto, unique)
    yield s
    s.stop()


def of_acme(path):
    """True for a request path under acme's prefix (object_store percent-encodes `=`)."""
    return "tenant_id=acme" in path or "tenant_id%3Dacme" in path


def in_bucket(setup, bucket):
    return lambda method, path: path.startswith(f"/{bucket}/") and of_acme(path)


@pytest.mark.parametrize("cut", ["while_copying", "before_the_live_copy_goes"])
def test_an_archive_cut_short_by_sigkill_finishes_after_a_restart(setup, cut):
    live = setup.keys(setup.hot)
    if cut == "while_copying":
        # The data files reach the archive; the first log file never does.
        hold = in_bucket(setup, setup.cold)
        setup.proxy.fail("stall", lambda m, p: m == "PUT" and hold(m, p) and "_delta_log" in p, 60)
        ready = lambda: setup.proxy.hits > 0 and setup.keys(setup.cold)
    else:
        # Verified and recorded: the deletion of the live copy is held.
        hot = f"/{setup.hot}"
        bulk = lambda m, p: m == "POST" and p.startswith(f"{hot}?") and "delete" in p
        single = lambda m, p: m == "DELETE" and p.startswith(f"{hot}/") and of_acme(p)
        setup.proxy.fail("stall", lambda m, p: bulk(m, p) or single(m, p), 60)
        ready = lambda: setup.proxy.hits > 0 and setup.phase() == "removing_live"
    archiving = setup.in_background("tenant", "archive", "acme")
    setup.kill_when(f"the archive is held ({cut})", ready)
    archiving.wait(timeout=60)
    assert archiving.returncode != 0, "the archive's server was killed under it"

    eventually("the restarted server finishes the archive", lambda: setup.shown().get("archive_state") == "archived")
    assert setup.keys(setup.hot) == []
    kept = setup.keys(setup.cold)
    assert [k.replace(setup.cold, "") for k in kept] == [k.replace(setup.hot, "") for k in live]
    head = setup.moto.client().head_object(Bucket=setup.cold, Key=next(k for k in kept if k.endswith(".parquet")))
    assert head.get("StorageClass") == "STANDARD_IA"
    # The archive copy is a Delta table the deltalake package reads in place.
    from test_s3 import deltalake_options
    in_place = DeltaTable(f"s3://{setup.cold}/lake/tenant_id=acme/snowplow", storage_options=deltalake_options(setup.moto))
    assert in_place.to_pyarrow_table().num_rows == ROWS

    setup.assert_every_row_once()
    assert setup.shown().get("archive_state") is None
    eventually("the archive copy is deleted", lambda: setup.keys(setup.cold) == [])


def test_a_restore_cut_short_by_sigkill_finishes_and_a_resent_sequence_lands_once(setup):
    lakeport(setup.server, "tenant", "archive", "acme", token=ADMIN)
    assert setup.keys(setup.hot) == []
    # The data files come back; the log is held.
    hold = in_bucket(setup, setup.hot)
    setup.proxy.fail("stall", lambda m, p: m == "PUT" and hold(m, p) and "_delta_log" in p, 60)
    restoring = setup.in_background("tenant", "restore", "acme")
    setup.kill_when("the restore is held", lambda: setup.proxy.hits > 0 and setup.phase() == "restoring")
    restoring.wait(timeout=60)

    eventually("the restarted server finishes the restore", lambda: setup.phase() is None)
    setup.assert_every_row_once()
    # The producer resends its last two sequences and one more: only the new one lands.
    tail = snowplow_table(ROWS, prefix="a").slice(ROWS - 2 * (ROWS // 10))
    more = snowplow_table(ROWS // 10, prefix="c")
    import pyarrow as pa
    resend = pa.concat_tables([tail, more])
    acks = put_table(setup.server, resend, producer="p1", chunk=ROWS // 10, first_sequence=8)
    assert sum(a["rows_committed"] for a in acks) == ROWS // 10
    assert sum(a.get("duplicates_skipped", 0) for a in acks) == 2 * (ROWS // 10)
    count = sql(setup.server, "SELECT count(*) AS n FROM snowplow").column("n")[0].as_py()
    assert count == ROWS + ROWS // 10


def test_a_query_on_an_archived_tenant_waits_for_its_restore(setup):
    lakeport(setup.server, "tenant", "archive", "acme", token=ADMIN)
    shown = setup.shown()
    assert shown["archive_state"] == "archived" and shown["archive_location"] == "archive"
    tenants = sql(setup.server, "SELECT tenant, state, archive_location, archived_bytes FROM system.tenants",
                  token=ADMIN).to_pylist()
    acme = next(t for t in tenants if t["tenant"] == "acme")
    assert acme["state"] == "archived" and acme["archived_bytes"] > 0
    setup.assert_every_row_once()

