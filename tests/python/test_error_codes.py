"""Error categories as a client sees them, through pyarrow Flight: a lost race between two
schema changes of one custom table is ABORTED (retry), not INTERNAL."""

import threading

import pyarrow as pa
import pyarrow.flight as flight

from conftest import Server, put_table


def clicks(n, extra_name, extra_type, values):
    return pa.table({
        "ts": pa.array([1_714_558_830_000_000 + i for i in range(n)], pa.timestamp("us", tz="UTC")),
        "app": pa.array(["web"] * n),
        extra_name: pa.array(values, extra_type),
    })


def test_concurrent_conflicting_schema_changes_are_aborted(tmp_path, lake):
    # A long commit interval makes both units wait for the same group commit (3 s was not
    # always enough for both producers to arrive on a loaded 2-core machine).
    server = Server(tmp_path, lake, ["--commit-interval", "10s"]).start()
    try:
        put_table(server, clicks(1, "first", pa.int64(), [1]), dataset="clicks")  # creates the table
        outcomes = {}

        def put(name, table):
            try:
                put_table(server, table, dataset="clicks")
                outcomes[name] = "ok"
            except (flight.FlightError, pa.ArrowException) as e:
                outcomes[name] = str(e)

        a = threading.Thread(target=put, args=("int", clicks(2, "x", pa.int64(), [1, 2])))
        b = threading.Thread(target=put, args=("text", clicks(2, "x", pa.string(), ["a", "b"])))
        a.start()
        b.start()
        a.join()
        b.join()
        assert sorted(outcomes) == ["int", "text"]
        failed = [message for message in outcomes.values() if message != "ok"]
        assert len(failed) == 1, outcomes
        assert "ABORTED" in failed[0] and '"x"' in failed[0], failed[0]
    finally:
        server.stop()
