"""Crash safety: SIGKILL the server while a producer streams sequenced batches, restart it,
resend from the start; the lake must end with exactly the rows sent. Then two servers on one
lake writing the same table concurrently lose nothing."""

import threading

import pyarrow as pa
import pyarrow.flight as flight
from deltalake import DeltaTable

from conftest import ACME, Server, bearer, decode_ack, metadata, snowplow_table

BATCHES = 40
ROWS = 50


def stream(server, producer, table, kill_after_acks=None):
    """Streams every batch with its sequence; returns True when the put completed."""
    client = flight.FlightClient(server.uri)
    options = bearer(ACME)
    batches = table.to_batches(max_chunksize=ROWS)
    acks = 0
    try:
        writer, reader = client.do_put(flight.FlightDescriptor.for_path("snowplow"), table.schema, options=options)
        for seq, batch in enumerate(batches):
            writer.write_with_metadata(batch, metadata(producer, seq))
            if kill_after_acks is not None and seq >= kill_after_acks:
                # Wait for the server to acknowledge a unit, then kill it mid-stream.
                buf = reader.read()
                if buf is not None:
                    acks += 1
                if acks >= 1:
                    server.kill()
                    return False
        writer.done_writing()
        while reader.read() is not None:
            pass
        writer.close()
        return True
    except (flight.FlightError, pa.ArrowException, OSError):
        return False


def test_sigkill_restart_and_resend_gives_exactly_the_rows_sent(tmp_path, lake):
    # flush-size 1 byte: every batch is its own unit, so kills land between and during commits.
    server = Server(tmp_path, lake, ["--flush-size", "1B"]).start()
    table = snowplow_table(BATCHES * ROWS, prefix="crash")
    try:
        for kill_after in (3, 11, 24, 33):
            assert not stream(server, "crash-producer", table, kill_after_acks=kill_after)
            server.start()
        assert stream(server, "crash-producer", table)
    finally:
        server.stop()
    result = DeltaTable(str(lake / "tenant_id=acme" / "snowplow")).to_pyarrow_table()
    assert result.num_rows == BATCHES * ROWS
    assert len(set(result.column("event_id").to_pylist())) == BATCHES * ROWS


def test_two_servers_on_one_lake_lose_nothing(tmp_path, lake):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = Server(tmp_path / "a", lake, ["--flush-size", "4KiB"]).start()
    b = Server(tmp_path / "b", lake, ["--flush-size", "4KiB"]).start()
    results = {}

    def produce(name, server):
        results[name] = stream(server, name, snowplow_table(2_000, prefix=name))

    try:
        threads = [threading.Thread(target=produce, args=(n, s)) for n, s in (("pa", a), ("pb", b), ("pc", a))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        a.stop()
        b.stop()
    assert results == {"pa": True, "pb": True, "pc": True}
    result = DeltaTable(str(lake / "tenant_id=acme" / "snowplow")).to_pyarrow_table()
    assert result.num_rows == 6_000
    assert len(set(result.column("event_id").to_pylist())) == 6_000


def test_sigterm_drains_a_put_in_flight(tmp_path, lake):
    # flush-size 1 byte: the first batch is acknowledged on its own, which proves the put is
    # open on the server before the signal arrives.
    server = Server(tmp_path, lake, ["--flush-size", "1B"]).start()
    table = snowplow_table(300, prefix="term")
    client = flight.FlightClient(server.uri)
    options = bearer(ACME)
    writer, reader = client.do_put(flight.FlightDescriptor.for_path("snowplow"), table.schema, options=options)
    batches = table.to_batches(max_chunksize=100)
    writer.write_batch(batches[0])
    acks = [decode_ack(reader.read())]
    server.proc.terminate()  # SIGTERM while the put is open
    for batch in batches[1:]:
        writer.write_batch(batch)
    writer.done_writing()
    while (buf := reader.read()) is not None:
        acks.append(decode_ack(buf))
    writer.close()
    assert server.proc.wait(timeout=60) == 0
    assert sum(a["rows_committed"] for a in acks) == 300
    assert DeltaTable(str(lake / "tenant_id=acme" / "snowplow")).to_pyarrow_table().num_rows == 300
