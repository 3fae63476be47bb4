"""pyarrow.flight as a producer: DoPut with bearer and Basic-handshake auth."""

import pyarrow as pa
import pyarrow.flight as flight
import pytest

from conftest import ACME, bearer, decode_ack, metadata, snowplow_table


def put(server, table, options, path=("snowplow",), meta=None):
    client = flight.FlightClient(server.uri)
    writer, reader = client.do_put(flight.FlightDescriptor.for_path(*path), table.schema, options=options)
    for i, batch in enumerate(table.to_batches(max_chunksize=10)):
        if meta:
            writer.write_with_metadata(batch, metadata(meta, i))
        else:
            writer.write_batch(batch)
    writer.done_writing()
    acks = []
    while True:
        buf = reader.read()
        if buf is None:
            break
        acks.append(decode_ack(buf))
    writer.close()
    return acks


def test_do_put_with_bearer_commits_and_acks(server):
    acks = put(server, snowplow_table(35), bearer(ACME))
    assert sum(a["rows_committed"] for a in acks) == 35
    assert acks[-1]["tenant"] == "acme" and acks[-1]["dataset"] == "snowplow"


def test_basic_handshake_then_sequenced_retry_is_idempotent(server):
    client = flight.FlightClient(server.uri)
    header = client.authenticate_basic_token("acme", ACME)
    options = flight.FlightCallOptions(headers=[header])
    first = put(server, snowplow_table(40), options, meta="py-producer")
    again = put(server, snowplow_table(40), options, meta="py-producer")
    assert sum(a["rows_committed"] for a in first) == 40
    assert sum(a["rows_committed"] for a in again) == 0
    assert sum(a["duplicates_skipped"] for a in again) == 40


def test_errors_carry_grpc_codes(server):
    with pytest.raises(flight.FlightUnauthenticatedError):
        put(server, snowplow_table(1), bearer("wrong"))
    with pytest.raises(flight.FlightUnauthorizedError, match="may not access"):
        put(server, snowplow_table(1), bearer(ACME), path=("beta", "snowplow"))
    bad = pa.table({"app_id": ["web"], "collector_tstamp": pa.array([0], pa.timestamp("us", tz="UTC")),
                    "event_id": pa.array([1], pa.int64())})
    with pytest.raises(pa.ArrowInvalid, match="event_id"):
        put(server, bad, bearer(ACME))


def test_zstd_compressed_ipc_is_accepted(server):
    options = flight.FlightCallOptions(
        headers=[(b"authorization", f"Bearer {ACME}".encode())],
        write_options=pa.ipc.IpcWriteOptions(compression="zstd"))
    acks = put(server, snowplow_table(20), options)
    assert sum(a["rows_committed"] for a in acks) == 20
