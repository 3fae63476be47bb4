"""Store faults: a proxy in front of moto answers 503, stalls past the client timeout, or
drops the connection on chosen requests (data PUT, commit PUT, list). While it misbehaves a
producer gets UNAVAILABLE and no ack for rows that are not committed, the server keeps
serving its other store, and after the store recovers a resend from the last acknowledged
sequence ends with exactly the rows sent."""

import pyarrow.flight as flight
import pytest
from deltalake import DeltaTable

from conftest import ACME, Server, auth_toml, bearer, decode_ack, metadata, put_table, snowplow_table, toml_table

ROWS = 40


def data_put(method, path):
    return method == "PUT" and ".parquet" in path


def commit_put(method, path):
    return method == "PUT" and "/_delta_log/" in path and path.split("?")[0].endswith(".json")


def listing(method, path):
    return method == "GET" and "list-type=2" in path


def config(bucket, proxy, moto, datasets="snowplow", top=""):
    """A local default store and an S3 store behind `proxy` for `datasets` (a glob), with
    short timeouts and one retry; `top` goes before the first TOML table."""
    options = dict(moto.store_options(endpoint=proxy.endpoint), timeout="2s", connect_timeout="2s")
    return top + auth_toml() + f"""
[stores.s3]
url = "s3://{bucket}/lake"
options = {toml_table(options)}
max_retries = 1
retry_timeout = "3s"

[[routes]]
datasets = ["{datasets}"]
store = "s3"

[ingest]
commit_interval = "10ms"
"""


def send(server, batches, first_seq, producer="p"):
    """Sends batches with sequences from `first_seq`; returns (acks, error or None)."""
    client = flight.FlightClient(server.uri)
    acks = []
    try:
        writer, reader = client.do_put(flight.FlightDescriptor.for_path("snowplow"), batches[0].schema,
                                       options=bearer(ACME))
        for i, batch in enumerate(batches):
            writer.write_with_metadata(batch, metadata(producer, first_seq + i))
        writer.done_writing()
        while (buf := reader.read()) is not None:
            acks.append(decode_ack(buf))
        writer.close()
        return acks, None
    except flight.FlightError as e:
        return acks, e


def batches_for(n, offset):
    table = snowplow_table(n * ROWS, prefix=f"b{offset}", start_us=1_714_558_830_000_000 + offset * ROWS * 1_000_000)
    return table.to_batches(max_chunksize=ROWS)


@pytest.mark.parametrize("kind,match", [("503", data_put), ("stall", commit_put), ("drop", listing),
                                        ("503", commit_put), ("drop", data_put)],
                         ids=["503-data", "stall-commit", "drop-list", "503-commit", "drop-data"])
def test_store_fault_then_resend_from_last_ack(tmp_path, lake, moto, unique, kind, match):
    from peers import FaultProxy
    bucket = moto.bucket(unique("faults"))
    proxy = FaultProxy(moto.port)
    server = Server(tmp_path, lake, config=config(bucket, proxy, moto)).start()
    try:
        sent = batches_for(4, 0)
        acks, error = send(server, sent, 0)
        assert error is None and sum(a["rows_committed"] for a in acks) == 4 * ROWS
        last_acked = max(a["last_sequence"] for a in acks)

        proxy.fail(kind, match, stall_seconds=6)
        during = batches_for(3, 4)
        acks, error = send(server, during, last_acked + 1)
        assert isinstance(error, flight.FlightUnavailableError), repr(error)
        assert "store s3" in str(error)
        assert proxy.hits > 0
        assert all(a["rows_committed"] == 0 for a in acks), acks
        # The other store (local, the default) keeps serving meanwhile.
        assert sum(a["rows_committed"] for a in put_table(server, _logs(10), dataset="otel_logs")) == 10

        # Nothing acknowledged was lost: the table holds exactly what was acked so far.
        table = DeltaTable(f"s3://{bucket}/lake/tenant_id=acme/snowplow", storage_options=_direct(moto))
        assert table.to_pyarrow_table().num_rows == 4 * ROWS

        proxy.heal()
        acks, error = send(server, during, last_acked + 1)
        assert error is None, repr(error)
        table = DeltaTable(f"s3://{bucket}/lake/tenant_id=acme/snowplow", storage_options=_direct(moto))
        rows = table.to_pyarrow_table()
        assert rows.num_rows == 7 * ROWS
        assert len(set(rows.column("event_id").to_pylist())) == 7 * ROWS
    finally:
        proxy.heal()
        server.stop()
        proxy.stop()


def _direct(moto):
    return {"AWS_ENDPOINT_URL": moto.endpoint, "AWS_ALLOW_HTTP": "true", "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1"}


def _logs(n):
    import pyarrow as pa
    return pa.table({
        "time": pa.array([1_714_558_830_000_000 + i for i in range(n)], pa.timestamp("us", tz="UTC")),
        "service_name": pa.array(["svc"] * n),
    })
