"""Fixtures for the Python interop tests: real lakeport-server processes on loopback."""

import json
import os
import pathlib
import signal
import subprocess
import time

import pyarrow as pa
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
ADMIN = "admin-secret"
ACME = "acme-secret"
BETA = "beta-secret"


def server_binary() -> str:
    path = os.environ.get("LAKEPORT_SERVER_BIN") or str(ROOT / "target" / "debug" / "lakeport-server")
    if not os.path.exists(path):
        raise RuntimeError(f"{path} not found: run `cargo build -p lakeport-server` first (tests/run does)")
    return path


CONFIG = f"""
[auth]
admin_token = "{ADMIN}"

[[tenants]]
id = "acme"
token = "{ACME}"

[[tenants]]
id = "beta"
token = "{BETA}"

[datasets.clicks]
time_column = "ts"
app_column = "app"

[ingest]
commit_interval = "10ms"
"""


class ServerExited(RuntimeError):
    """The server refused to start; `output` is what it printed."""

    def __init__(self, code, output):
        super().__init__(f"server exited with {code}: {output[-2000:]}")
        self.code = code
        self.output = output


class Server:
    """A lakeport-server process over `lake`; restartable on the same lake."""

    def __init__(self, workdir: pathlib.Path, lake, extra_args=(), config: str = CONFIG, env=None):
        self.workdir = workdir
        self.lake = lake
        self.extra_args = list(extra_args)
        self.env = env
        self.proc = None
        self.addr = None
        self.config = workdir / f"lakeport-{id(self)}.toml"
        self.config.write_text(config)
        self.starts = 0
        self.log_path = None

    def start(self):
        self.starts += 1
        addr_file = self.workdir / f"addr-{id(self)}-{self.starts}"
        self.log_path = self.workdir / f"server-{id(self)}-{self.starts}.log"
        log = open(self.log_path, "w")
        lake_args = ["--lake", str(self.lake)] if self.lake is not None else []
        env = dict(os.environ, **(self.env or {}))
        self.proc = subprocess.Popen(
            [server_binary(), "--config", str(self.config), "--listen", "127.0.0.1:0",
             "--addr-file", str(addr_file), *lake_args, *self.extra_args],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )
        deadline = time.monotonic() + 60
        while not addr_file.exists():
            if self.proc.poll() is not None:
                raise ServerExited(self.proc.returncode, self.log_path.read_text())
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start within 60 s")
            time.sleep(0.01)
        self.addr = addr_file.read_text().strip()
        return self

    @property
    def uri(self) -> str:
        return f"grpc://{self.addr}"

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                raise


@pytest.fixture
def lake(tmp_path):
    path = tmp_path / "lake"
    path.mkdir()
    return path


@pytest.fixture
def server(tmp_path, lake):
    s = Server(tmp_path, lake).start()
    yield s
    s.stop()


def snowplow_table(n: int, app: str = "web", start_us: int = 1_714_558_830_000_000, prefix: str = "e") -> pa.Table:
    """`n` Snowplow events one second apart from 2024-05-01T10:20:30Z."""
    return pa.table({
        "app_id": pa.array([app] * n, pa.string()),
        "collector_tstamp": pa.array([start_us + i * 1_000_000 for i in range(n)], pa.timestamp("us", tz="UTC")),
        "event_id": pa.array([f"{prefix}-{i}" for i in range(n)], pa.string()),
        "event": pa.array(["page_view"] * n, pa.string()),
        "page_urlpath": pa.array([f"/p/{i % 7}" for i in range(n)], pa.string()),
    })


def decode_ack(buf) -> dict:
    """Decodes an IngestAck protobuf (see proto/lakeport.proto) without generated code."""
    data = buf.to_pybytes() if hasattr(buf, "to_pybytes") else bytes(buf)
    names = {1: "tenant", 2: "dataset", 3: "rows_committed", 4: "duplicates_skipped",
             5: "rows_rejected", 6: "table_version", 7: "last_sequence", 8: "rows_expired",
             9: "expired_reason"}
    out = {"rows_committed": 0, "duplicates_skipped": 0, "rows_rejected": 0, "table_version": 0}
    i = 0

    def varint():
        nonlocal i
        shift = value = 0
        while True:
            b = data[i]
            i += 1
            value |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return value

    while i < len(data):
        key = varint()
        field, wire = key >> 3, key & 7
        if wire == 0:
            value = varint()
            if field == 6 and value >= 1 << 63:
                value -= 1 << 64
            out[names.get(field, str(field))] = value
        elif wire == 2:
            length = varint()
            out[names.get(field, str(field))] = data[i:i + length].decode()
            i += length
        else:
            raise ValueError(f"unexpected wire type {wire}")
    return out


def metadata(producer: str, sequence: int) -> pa.Buffer:
    return pa.py_buffer(json.dumps({"producer_id": producer, "sequence": sequence}).encode())


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def proto_bytes_field(number: int, value: bytes) -> bytes:
    """One length-delimited protobuf field (enough to build Flight SQL commands by hand)."""
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def flight_sql_command(name: str, fields: bytes) -> bytes:
    """A Flight SQL command wrapped in google.protobuf.Any, as GetFlightInfo expects it."""
    type_url = f"type.googleapis.com/arrow.flight.protocol.sql.{name}".encode()
    return proto_bytes_field(1, type_url) + proto_bytes_field(2, fields)


def statement_query(sql: str) -> bytes:
    return flight_sql_command("CommandStatementQuery", proto_bytes_field(1, sql.encode()))


def bearer(token: str):
    import pyarrow.flight as flight
    return flight.FlightCallOptions(headers=[(b"authorization", f"Bearer {token}".encode())])


def eventually(what, check, timeout=30, not_yet=()):
    """Polls `check` until it returns true, for up to `timeout` seconds. An exception of a
    type in `not_yet` counts as "not yet" (a refusal the awaited change will lift); any
    other exception fails the test at once."""
    import time
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except not_yet:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out: {what}")
        time.sleep(0.05)


def billed_bytes(path):
    """Bytes of every file under `path`, as a listing of the store bills them."""
    import os
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


@pytest.fixture(scope="session")
def moto(tmp_path_factory):
    from peers import Moto
    server = Moto(tmp_path_factory.mktemp("moto"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def azurite(tmp_path_factory):
    from peers import Azurite
    server = Azurite(tmp_path_factory.mktemp("azurite"))
    yield server
    server.stop()


_names = iter(range(1_000_000))


@pytest.fixture
def unique():
    """A fresh bucket/container name suffix per call."""
    return lambda prefix: f"{prefix}-{os.getpid()}-{next(_names)}"


def toml_table(options: dict) -> str:
    """An inline TOML table of strings (JSON string escapes are valid TOML)."""
    return "{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in options.items()) + " }"


def put_table(server, table, dataset="snowplow", token=ACME, producer=None, chunk=None, first_sequence=0):
    """DoPut of `table` (with `producer`, its batches numbered from `first_sequence`);
    returns the decoded acks. Raises the FlightError a client sees."""
    import pyarrow.flight as flight
    client = flight.FlightClient(server.uri)
    writer, reader = client.do_put(flight.FlightDescriptor.for_path(dataset), table.schema,
                                   options=bearer(token))
    acks = []
    for seq, batch in enumerate(table.to_batches(max_chunksize=chunk or table.num_rows or 1), first_sequence):
        if producer is None:
            writer.write_batch(batch)
        else:
            writer.write_with_metadata(batch, metadata(producer, seq))
    writer.done_writing()
    while True:
        buf = reader.read()
        if buf is None:
            break
        acks.append(decode_ack(buf))
    writer.close()
    return acks


def sql(server, query, token=ACME):
    """Runs `query` through ADBC Flight SQL and returns a pyarrow table."""
    import adbc_driver_flightsql.dbapi as dbapi
    with dbapi.connect(server.uri, db_kwargs={"adbc.flight.sql.authorization_header": f"Bearer {token}"}) as conn:
        with conn.cursor() as cur:
            cur.execute(query)
            return cur.fetch_arrow_table()


@pytest.fixture(scope="session")
def garage(tmp_path_factory):
    from peers import Garage
    server = Garage(tmp_path_factory.mktemp("garage"))
    yield server
    server.stop()


def auth_toml(acme: str = "", beta: str = None) -> str:
    """The [auth] and [[tenants]] part of a test config; `acme`/`beta` add lines to a tenant
    (beta is only configured when given)."""
    text = f'[auth]\nadmin_token = "{ADMIN}"\n\n[[tenants]]\nid = "acme"\ntoken = "{ACME}"\n{acme}\n'
    if beta is not None:
        text += f'\n[[tenants]]\nid = "beta"\ntoken = "{BETA}"\n{beta}\n'
    return text


def produce_concurrently(servers, puts=4, rows=100):
    """One producer per server entry, all at once, each making `puts` sequenced puts of
    `rows` distinct events into snowplow; returns the errors they met (as repr)."""
    import threading
    errors = []

    def produce(server, producer, offset):
        try:
            for i in range(puts):
                table = snowplow_table(rows, prefix=f"{producer}-{i}",
                                       start_us=1_714_558_830_000_000 + offset + i * 3_600_000_000)
                put_table(server, table, producer=f"{producer}-{i}", chunk=rows // 2 or 1)
        except Exception as e:  # returned and asserted by the caller
            errors.append(repr(e))

    threads = [threading.Thread(target=produce, args=(s, f"w{i}", i * 1_000_000)) for i, s in enumerate(servers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors
