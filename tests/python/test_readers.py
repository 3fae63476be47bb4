"""The lake read back by third-party readers (the deltalake package, DuckDB, polars), from its checkpoints too, with the reader snippets of docs/reading.md run as written."""

import json
import pathlib
import re
import shutil
import time

import duckdb
import pyarrow as pa
import pyarrow.dataset  # noqa: F401 (pa.dataset.Dataset)
import pyarrow.flight as flight
from deltalake import DeltaTable

from conftest import ACME, Server, bearer, eventually, put_table, snowplow_table


def put(server, table):
    client = flight.FlightClient(server.uri)
    options = bearer(ACME)
    writer, reader = client.do_put(flight.FlightDescriptor.for_path("snowplow"), table.schema, options=options)
    writer.write_table(table, max_chunksize=100)
    writer.close()


def test_deltalake_and_duckdb_read_exact_rows(server, lake):
    web = snowplow_table(3_000, app="web")  # 50 minutes: hours 10 and 11
    ios = snowplow_table(700, app="ios", prefix="i")
    put(server, web)
    put(server, ios)
    root = lake / "tenant_id=acme" / "snowplow"

    dt = DeltaTable(str(root))
    assert dt.metadata().partition_columns == ["app_id", "year", "month", "day", "hour"]
    delta_rows = dt.to_pyarrow_table()
    assert delta_rows.num_rows == 3_700
    assert delta_rows.schema.field("collector_tstamp").type == pa.timestamp("us", tz="UTC")
    by_app = dict(duckdb.sql("SELECT app_id, count(*) FROM delta_rows GROUP BY app_id").fetchall())
    assert by_app == {"web": 3_000, "ios": 700}

    glob = str(root / "**" / "*.parquet")
    con = duckdb.connect()
    total = con.execute(f"SELECT count(*) FROM read_parquet('{glob}', hive_partitioning=true)").fetchone()[0]
    assert total == 3_700
    rows = con.execute(
        f"SELECT app_id, year, month, day, hour, count(*) FROM read_parquet('{glob}', hive_partitioning=true) "
        "GROUP BY ALL ORDER BY ALL").fetchall()
    assert [(r[0],) + tuple(int(v) for v in r[1:5]) + (r[5],) for r in rows] == [
        ("ios", 2024, 5, 1, 10, 700),
        ("web", 2024, 5, 1, 10, 2_370),
        ("web", 2024, 5, 1, 11, 630),
    ]


def last_checkpoint(log):
    try:
        return json.loads((log / "_last_checkpoint").read_text())["version"]
    except (FileNotFoundError, ValueError):
        return None


def test_deltalake_reads_a_lakeport_checkpoint_without_the_commits_before_it(tmp_path, lake):
    server = Server(tmp_path, lake, extra_args=["--checkpoint-interval", "3"]).start()
    try:
        acked = 0
        for i in range(7):  # versions 0..6: checkpoints close versions 2 and 5
            acks = put_table(server, snowplow_table(100 + i, prefix=f"c{i}-"))
            acked += sum(a["rows_committed"] for a in acks)
        # Checkpoints are written in the background, after the acks.
        log = lake / "tenant_id=acme" / "snowplow" / "_delta_log"
        eventually("the checkpoint of version 5", lambda: last_checkpoint(log) == 5, timeout=60)
    finally:
        server.stop()
    assert acked == sum(100 + i for i in range(7))
    assert last_checkpoint(log) == 5

    # A reader that finds only the checkpoint and the commits after it.
    copy = tmp_path / "copy"
    shutil.copytree(lake / "tenant_id=acme" / "snowplow", copy)
    for version in range(6):
        (copy / "_delta_log" / f"{version:020}.json").unlink()
    dt = DeltaTable(str(copy))
    assert dt.version() == 6
    assert dt.to_pyarrow_table().num_rows == acked


def readme_reader_snippets() -> list:
    page = (pathlib.Path(__file__).resolve().parents[2] / "docs" / "reading.md").read_text()
    return re.findall(r"```python\n(.*?)```", page, re.S)


def test_readme_reader_snippets_read_every_acknowledged_row(server, lake):
    put(server, snowplow_table(3_000, app="web"))
    put(server, snowplow_table(700, app="ios", prefix="i"))
    snippets = readme_reader_snippets()
    assert len(snippets) == 3, "deltalake, DuckDB and polars"
    for code in snippets:
        scope = {"TABLE": str(lake / "tenant_id=acme" / "snowplow")}
        exec(code, scope)
        events = scope["events"]
        if isinstance(events, pa.Table):
            assert events.num_rows == 3_700, code
        elif isinstance(events, pa.dataset.Dataset):
            assert events.count_rows() == 3_700, code
            per_app = dict(zip(*scope["per_app"].to_pydict().values()))
            assert per_app == {"web": 3_000, "ios": 700}, code
        else:
            assert events.height == 3_700, code
            assert str(events.schema["collector_tstamp"]) == "Datetime(time_unit='us', time_zone='UTC')"
