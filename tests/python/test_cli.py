"""The `lakeport` CLI end to end: put files, query them back in every format."""

import csv
import json
import os
import subprocess

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from conftest import ACME, ADMIN, ROOT


def cli_binary() -> str:
    return os.environ.get("LAKEPORT_CLI_BIN") or str(ROOT / "target" / "debug" / "lakeport")


def lakeport(server, *args, token=ACME, check=True):
    env = {**os.environ, "LAKEPORT_ENDPOINT": f"http://{server.addr}", "LAKEPORT_TOKEN": token}
    result = subprocess.run([cli_binary(), *args], env=env, capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"lakeport {args} failed: {result.stderr}")
    return result


def write_events_csv(path, n):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["app_id", "collector_tstamp", "event_id", "event", "page_urlpath"])
        for i in range(n):
            w.writerow(["web", f"2024-05-01T10:{i // 60:02d}:{i % 60:02d}Z", f"c-{i}", "page_view", f"/p/{i % 3}"])


def test_put_csv_then_query_in_every_format(server, tmp_path):
    events = tmp_path / "events.csv"
    write_events_csv(events, 150)
    out = lakeport(server, "put", "--dataset", "snowplow", "--batch-rows", "40", str(events)).stdout
    assert "150 rows read, 150 committed, 0 already committed" in out

    # Rerunning the same upload resumes: everything is already committed.
    again = lakeport(server, "put", "--dataset", "snowplow", "--batch-rows", "40", str(events)).stdout
    assert "150 rows read, 0 committed, 150 already committed" in again

    sql = "SELECT page_urlpath, count(*) AS n FROM snowplow GROUP BY page_urlpath ORDER BY page_urlpath"
    expected = [{"page_urlpath": f"/p/{i}", "n": 50} for i in range(3)]

    table = lakeport(server, "sql", sql).stdout
    assert "| /p/0         | 50 |" in table

    lakeport(server, "sql", sql, "--format", "csv", "--output", str(tmp_path / "r.csv"))
    assert pacsv.read_csv(tmp_path / "r.csv").to_pylist() == expected

    assert json.loads(lakeport(server, "sql", sql, "--format", "json").stdout) == expected

    lakeport(server, "sql", sql, "--format", "parquet", "--output", str(tmp_path / "r.parquet"))
    assert pq.read_table(tmp_path / "r.parquet").to_pylist() == expected

    lakeport(server, "sql", sql, "--format", "arrow", "--output", str(tmp_path / "r.arrow"))
    assert ipc.open_file(tmp_path / "r.arrow").read_all().to_pylist() == expected


def test_put_every_file_type(server, tmp_path):
    rows = [{"app_id": "app", "collector_tstamp": f"2024-05-02T00:00:0{i}Z", "event_id": f"x-{i}"} for i in range(4)]
    (tmp_path / "a.ndjson").write_text("\n".join(json.dumps(r) for r in rows[:2]) + "\n")
    table = pa.table({
        "app_id": ["app", "app"],
        "collector_tstamp": pa.array([1_714_608_000_000_000, 1_714_608_001_000_000], pa.timestamp("us", tz="UTC")),
        "event_id": ["p-0", "p-1"],
    })
    pq.write_table(table, tmp_path / "b.parquet")
    with ipc.new_file(tmp_path / "c.arrow", table.schema) as w:
        w.write_table(table)
    with ipc.new_stream(tmp_path / "d.arrows", table.schema) as w:
        w.write_table(table)
    write_events_csv(tmp_path / "first.csv", 2)
    # The CSV creates the table; the NDJSON's string times then parse as its timestamp type.
    lakeport(server, "put", "--dataset", "snowplow", str(tmp_path / "first.csv"))
    out = lakeport(server, "put", "--dataset", "snowplow", *(str(tmp_path / f) for f in
                   ["a.ndjson", "b.parquet", "c.arrow", "d.arrows"])).stdout
    assert "8 rows read, 8 committed" in out
    assert json.loads(lakeport(server, "sql", "SELECT count(*) AS n FROM snowplow", "--format", "json").stdout) == [{"n": 10}]


def test_tables_usage_and_errors(server, tmp_path):
    write_events_csv(tmp_path / "e.csv", 10)
    lakeport(server, "put", "--dataset", "snowplow", str(tmp_path / "e.csv"))
    tables = lakeport(server, "tables").stdout
    assert "snowplow" in tables and "storage" in tables
    usage = json.loads(lakeport(server, "usage", "--format", "json").stdout)
    assert [(u["tenant"], u["dataset"], u["rows"]) for u in usage] == [("acme", "snowplow", 10)]
    admin_usage = json.loads(lakeport(server, "usage", "--format", "json", token=ADMIN).stdout)
    assert [u["tenant"] for u in admin_usage] == ["acme"]
    # Admin with --tenant: unqualified names resolve in that tenant.
    counted = lakeport(server, "--tenant", "acme", "sql", "SELECT count(*) AS n FROM snowplow", "--format", "json", token=ADMIN)
    assert json.loads(counted.stdout) == [{"n": 10}]

    failed = lakeport(server, "sql", "DROP TABLE snowplow", check=False)
    assert failed.returncode != 0
    assert "read-only: DROP TABLE" in failed.stderr
    failed = lakeport(server, "sql", "SELECT 1", token="wrong", check=False)
    assert failed.returncode != 0 and "invalid credentials" in failed.stderr
