"""Maintenance as a user runs it: `lakeport maintenance run` compacts closed partitions, the
deltalake package, DuckDB and polars then read exactly the acknowledged rows; a SIGKILL in
the middle of a compaction loses and duplicates nothing."""

import json
import threading
import time

import duckdb
import polars as pl
from deltalake import DeltaTable

from conftest import ACME, ADMIN, Server, produce_concurrently, put_table, snowplow_table
from test_cli import lakeport

HOUR_US = 3_600_000_000


def table_dir(lake):
    return lake / "tenant_id=acme" / "snowplow"


def put_small_files(server, puts, rows, prefix):
    """`puts` puts of `rows` events each over hours 10 and 11 of 2024-05-01: one file per
    partition per put. Returns the rows acknowledged."""
    acked = 0
    for i in range(puts):
        table = snowplow_table(rows, prefix=f"{prefix}{i}", start_us=1_714_557_600_000_000 + i * 7_000_000)
        acked += sum(a["rows_committed"] for a in put_table(server, table))
    return acked


def read_counts(lake):
    """(rows, distinct event ids) as the deltalake package, DuckDB and polars each see them."""
    dt = DeltaTable(str(table_dir(lake)))
    arrow = dt.to_pyarrow_table(columns=["event_id"])
    delta = (arrow.num_rows, len(set(arrow.column("event_id").to_pylist())))
    con = duckdb.connect()
    con.register("events", dt.to_pyarrow_dataset())
    duck = con.execute("SELECT count(*), count(DISTINCT event_id) FROM events").fetchone()
    frame = pl.read_delta(str(table_dir(lake)), use_pyarrow=True, columns=["event_id"])
    polars = (frame.height, frame["event_id"].n_unique())
    return {"deltalake": delta, "duckdb": tuple(duck), "polars": polars}


def files_per_partition(lake):
    counts = {}
    for path in DeltaTable(str(table_dir(lake))).file_uris():
        partition = path.rsplit("/", 1)[0].split("snowplow/", 1)[1]
        counts[partition] = counts.get(partition, 0) + 1
    return counts


def test_cli_compacts_closed_partitions_and_every_reader_counts_each_row_once(server, lake):
    acked = put_small_files(server, puts=6, rows=3_000, prefix="m")  # 50 minutes from 10:00
    assert files_per_partition(lake) == {
        "app_id=web/year=2024/month=05/day=01/hour=10": 6,
    }

    refused = lakeport(server, "maintenance", "run", token=ACME, check=False)
    assert refused.returncode != 0
    assert "does not have permission" in refused.stderr and "is for admins" in refused.stderr, refused.stderr

    planned = json.loads(lakeport(server, "maintenance", "run", "--dry-run", "--format", "json", token=ADMIN).stdout)
    assert [(s["kind"], s["outcome"], s["files_in"]) for s in planned if s["kind"] == "compaction"] == [
        ("compaction", "planned", 6)]
    assert files_per_partition(lake) == {"app_id=web/year=2024/month=05/day=01/hour=10": 6}

    steps = json.loads(lakeport(server, "maintenance", "run", "--tenant", "acme", "--format", "json",
                                token=ADMIN).stdout)
    compactions = [s for s in steps if s["kind"] == "compaction"]
    assert [(s["outcome"], s["files_in"], s["files_out"]) for s in compactions] == [("done", 6, 1)]
    assert any(s["kind"] == "checkpoint" and s["outcome"] == "done" for s in steps)
    assert files_per_partition(lake) == {"app_id=web/year=2024/month=05/day=01/hour=10": 1}
    assert read_counts(lake) == {r: (acked, acked) for r in ("deltalake", "duckdb", "polars")}

    table = lakeport(server, "sql", "SELECT partition, files, small_files FROM system.partitions",
                     "--format", "json", token=ACME).stdout
    assert json.loads(table) == [
        {"partition": "app_id=web/year=2024/month=05/day=01/hour=10", "files": 1, "small_files": 1}]


def test_sigkill_during_compaction_loses_and_duplicates_nothing(tmp_path, lake):
    server = Server(tmp_path, lake, ["--maintenance-interval", "0s"]).start()
    try:
        acked = put_small_files(server, puts=30, rows=4_000, prefix="k")
        before = set(p.name for p in table_dir(lake).rglob("*.parquet"))

        def run():
            lakeport(server, "maintenance", "run", token=ADMIN, check=False)

        runner = threading.Thread(target=run)
        runner.start()
        # Kill as soon as the first compacted file is being written (a local store stages
        # an upload as `NAME.parquet#N` until it completes).
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if set(p.name for p in table_dir(lake).rglob("*.parquet*")) - before:
                break
            time.sleep(0.002)
        assert runner.is_alive(), "the maintenance run ended before the kill"
        server.kill()
        runner.join()

        # Every acknowledged row is there exactly once before anything else happens.
        server.start()
        assert read_counts(lake) == {r: (acked, acked) for r in ("deltalake", "duckdb", "polars")}

        steps = json.loads(lakeport(server, "maintenance", "run", "--format", "json", token=ADMIN).stdout)
        assert not [s for s in steps if s["outcome"] == "failed"], steps
        assert read_counts(lake) == {r: (acked, acked) for r in ("deltalake", "duckdb", "polars")}
        assert set(files_per_partition(lake).values()) == {1}
    finally:
        server.stop()


def test_maintenance_running_over_and_over_while_producers_stream_keeps_every_row_once(tmp_path, lake):
    first = Server(tmp_path, lake, ["--maintenance-interval", "0s"]).start()
    second = Server(tmp_path, lake, ["--maintenance-interval", "0s"]).start()
    try:
        outcomes = []
        done = threading.Event()

        def maintain():
            servers = [first, second]
            i = 0
            while not done.is_set():
                result = lakeport(servers[i % 2], "maintenance", "run", "--format", "json", token=ADMIN, check=False)
                if result.returncode != 0:  # asserted below: a thread's assertion would be lost
                    outcomes.append(f"failed: {result.stderr}")
                    return
                outcomes.extend(s["outcome"] for s in json.loads(result.stdout))
                i += 1

        maintainers = [threading.Thread(target=maintain) for _ in range(2)]
        for m in maintainers:
            m.start()
        # Four producers (two per server), eight sequenced puts each, over closed hours.
        errors = produce_concurrently([first, second, first, second], puts=8, rows=300)
        done.set()
        for m in maintainers:
            m.join()
        assert errors == []
        assert "done" in outcomes, outcomes
        assert not [o for o in outcomes if o.startswith("failed")], outcomes
        expected = 4 * 8 * 300
        assert read_counts(lake) == {r: (expected, expected) for r in ("deltalake", "duckdb", "polars")}
        lakeport(first, "maintenance", "run", token=ADMIN)
        assert read_counts(lake) == {r: (expected, expected) for r in ("deltalake", "duckdb", "polars")}
        # Every closed partition ends as one file (each holds far less than the target).
        assert set(files_per_partition(lake).values()) == {1}
    finally:
        first.stop()
        second.stop()
