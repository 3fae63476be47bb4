"""Operations as a platform team sees them: Prometheus metrics after a scripted workload,
/healthz and /readyz on the side port (a store going away, SIGTERM), JSON logs a log
pipeline can parse, and no secret in any output."""

import base64
import json
import os
import pathlib
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request

import pyarrow as pa
import pyarrow.flight as flight
import pytest

from conftest import ACME, ADMIN, BETA, CONFIG, Server, ServerExited, bearer, billed_bytes, decode_ack, eventually, metadata, put_table, server_binary, snowplow_table, sql, toml_table
from peers import Moto, free_port
from test_cli import lakeport

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')


def scrape(port) -> dict:
    """`/metrics` as {(name, frozenset(labels)): value}."""
    text = http_get(port, "/metrics")[1]
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, f"not a Prometheus sample: {line!r}"
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        samples[(m.group(1), labels)] = float(m.group(3))
    return samples


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


def http_get(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def clicks(ts, ids):
    return pa.table({"ts": ts, "app": ["shop"] * len(ts), "id": ids})


def put_clicks(server, table, producer, seq, token=ACME):
    client = flight.FlightClient(server.uri)
    writer, reader = client.do_put(flight.FlightDescriptor.for_path("clicks"), table.schema, options=bearer(token))
    writer.write_with_metadata(table.to_batches()[0], metadata(producer, seq))
    writer.done_writing()
    acks = []
    while (buf := reader.read()) is not None:
        acks.append(decode_ack(buf))
    writer.close()
    return acks


def test_every_metric_family_after_a_scripted_workload(tmp_path, lake):
    port = free_port()
    server = Server(tmp_path, lake, extra_args=["--metrics-listen", str(port)]).start()
    try:
        ts = [f"2024-05-01T10:0{i}:00Z" for i in range(9)] + ["not a time"]
        table = clicks(ts, [f"c{i}" for i in range(10)])
        first = put_clicks(server, table, "p", 0)
        assert sum(a["rows_committed"] for a in first) == 9
        assert sum(a["rows_rejected"] for a in first) == 1
        again = put_clicks(server, table, "p", 0)
        assert sum(a["duplicates_skipped"] for a in again) == 10
        assert sql(server, "SELECT count(*) AS n FROM clicks")["n"][0].as_py() == 9
        with pytest.raises(Exception, match="nope"):
            sql(server, "SELECT nope FROM clicks")
        lakeport(server, "maintenance", "run", token=ADMIN)

        m = scrape(port)
        table_labels = {"tenant": "acme", "dataset": "clicks"}
        assert value(m, "lakeport_ingest_rows_total", **table_labels) == 9
        assert value(m, "lakeport_ingest_rows_rejected_total", **table_labels) == 1
        assert value(m, "lakeport_ingest_duplicates_skipped_total", **table_labels) == 10
        assert value(m, "lakeport_ingest_bytes_total", **table_labels) > 0
        assert value(m, "lakeport_ingest_streams_total", outcome="ok", **table_labels) == 2
        assert value(m, "lakeport_ingest_streams_in_flight", **table_labels) == 0
        assert value(m, "lakeport_ingest_buffer_memory_bytes") == 0
        # One commit for the first put (main + dead letters), none for the duplicate.
        assert value(m, "lakeport_commits_total", outcome="committed", **table_labels) == 1
        assert value(m, "lakeport_commit_duration_seconds_count", **table_labels) == 1
        assert value(m, "lakeport_commit_conflicts_retried_total", **table_labels) == 0
        files = len([f for d, _, fs in os.walk(lake / "tenant_id=acme" / "clicks") for f in fs
                     if f.endswith(".parquet") and "_delta_log" not in d])
        assert value(m, "lakeport_files_written_total", **table_labels) == files >= 1
        assert value(m, "lakeport_file_size_bytes_count", **table_labels) == files
        assert value(m, "lakeport_queries_total", tenant="acme", outcome="ok") >= 1
        assert value(m, "lakeport_queries_total", tenant="acme", outcome="error") >= 1
        assert value(m, "lakeport_query_duration_seconds_count", tenant="acme") >= 2
        assert value(m, "lakeport_query_rows_returned_total", tenant="acme") >= 1
        assert value(m, "lakeport_query_bytes_returned_total", tenant="acme") > 0
        assert value(m, "lakeport_storage_bytes", **table_labels) == billed_bytes(lake / "tenant_id=acme" / "clicks")
        assert value(m, "lakeport_quota_state", tenant="acme", state="ok") == 1
        assert value(m, "lakeport_quota_state", tenant="acme", state="hard_exceeded") == 0
        assert value(m, "lakeport_maintenance_runs_total", outcome="ok") == 1
        assert value(m, "lakeport_store_request_errors_total", store="default", operation="probe") == 0
        # Bounded cardinality: no producer id and no SQL text in any label.
        assert not any("p" == v or "SELECT" in v for (_, labels) in m for (_, v) in labels)
    finally:
        server.stop()


def snowplow_routed_to(store, url, options):
    """CONFIG with a store that gives up at once (no retries) and the snowplow dataset on it."""
    return CONFIG + f"""
[stores.{store}]
url = "{url}"
options = {toml_table(options)}
max_retries = 0
retry_timeout = "1s"

[[routes]]
datasets = ["snowplow"]
store = "{store}"
"""


def test_readyz_turns_not_ready_when_a_store_goes_away(tmp_path, lake):
    moto = Moto(tmp_path)
    try:
        bucket = moto.bucket("ops")
        config = snowplow_routed_to("s3", f"s3://{bucket}/lake", moto.store_options())
        port = free_port()
        server = Server(tmp_path, lake, config=config,
                        extra_args=["--metrics-listen", f"127.0.0.1:{port}", "--store-probe-interval", "200ms"]).start()
        try:
            eventually("ready", lambda: http_get(port, "/readyz")[0] == 200)
            put_table(server, snowplow_table(5))
            moto.stop()
            eventually("not ready", lambda: http_get(port, "/readyz")[0] == 503)
            status, body = http_get(port, "/readyz")
            assert "store s3 unreachable" in body, body
            # Alive all the same: the local store and the process still work.
            assert http_get(port, "/healthz") == (200, "ok\n")
            failed = value(scrape(port), "lakeport_store_request_errors_total", store="s3", operation="probe")
            assert failed >= 1
        finally:
            server.stop()
    finally:
        if moto.proc.poll() is None:
            moto.stop()


def test_readyz_names_a_store_unreachable_since_startup(tmp_path, lake):
    dead = {"aws_endpoint": f"http://127.0.0.1:{free_port()}", "aws_allow_http": "true",
            "aws_access_key_id": "k", "aws_secret_access_key": "s", "aws_region": "us-east-1"}
    config = snowplow_routed_to("dead", "s3://nowhere/lake", dead)
    port = free_port()
    server = Server(tmp_path, lake, config=config,
                    extra_args=["--metrics-listen", str(port), "--allow-unreachable-stores"]).start()
    try:
        eventually("probed", lambda: "store dead unreachable" in http_get(port, "/readyz")[1])
        status, body = http_get(port, "/readyz")
        assert status == 503 and "restart to serve its tables" in body, body
        # The other store's tables still take writes.
        acks = put_clicks(server, clicks(["2024-05-01T10:00:00Z"], ["c1"]), "p", 0)
        assert sum(a["rows_committed"] for a in acks) == 1
    finally:
        server.stop()


def test_sigterm_turns_readyz_not_ready_while_draining(tmp_path, lake):
    port = free_port()
    server = Server(tmp_path, lake, extra_args=["--metrics-listen", str(port), "--shutdown-delay", "3s"]).start()
    eventually("ready", lambda: http_get(port, "/readyz")[0] == 200)
    server.proc.send_signal(signal.SIGTERM)
    eventually("draining", lambda: http_get(port, "/readyz") == (503, "not ready\ndraining: the server is shutting down\n"))
    assert http_get(port, "/healthz")[0] == 200
    assert server.proc.wait(timeout=60) == 0
    log = server.log_path.read_text()
    # Text logs to a file or pipe carry no colour codes.
    assert "\x1b[" not in log
    assert re.search(r"(WARN|ERROR)", log) is None, log


def test_json_logs_parse_and_no_secret_appears_in_any_output(tmp_path, lake, moto):
    bucket = moto.bucket(f"secrets-{os.getpid()}")
    store_secret = "s3-SECRET-Zq8uVw2x"
    ticket_secret = "ticket-SECRET-4f9c2b7d1e"
    sse_key = bytes(range(32))
    key_file = tmp_path / "acme.key"
    key_file.write_bytes(base64.b64encode(sse_key))
    options = dict(moto.store_options(), aws_secret_access_key=store_secret)
    config = f"""
[auth]
admin_token = "{ADMIN}"

[[tenants]]
id = "acme"
token = "{ACME}"
encryption = {{ kind = "sse-c", key_file = "{key_file}" }}

[[tenants]]
id = "beta"
token = "{BETA}"

[datasets.clicks]
time_column = "ts"
app_column = "app"

[datasets.clicks.quality]
not_null = ["id"]

[stores.default]
url = "s3://{bucket}/lake"
options = {toml_table(options)}

[query]
ticket_secret = "{ticket_secret}"

[ingest]
commit_interval = "10ms"
"""
    port = free_port()
    server = Server(tmp_path, None, config=config,
                    extra_args=["--metrics-listen", str(port), "--log-format", "json"],
                    env={"LAKEPORT_LOG": "info"}).start()
    outputs = []
    try:
        put_table(server, snowplow_table(20))
        put_clicks(server, clicks(["2024-05-01T10:00:00Z"], ["c1"]), "p", 0)
        outputs.append(str(sql(server, "SELECT count(*) FROM snowplow")))
        with pytest.raises(flight.FlightUnauthenticatedError) as bad:
            put_table(server, snowplow_table(1), token="wrong-" + ACME)
        outputs.append(str(bad.value))
        for args in (["quality"], ["quota", "--datasets"], ["tables"], ["readiness"]):
            r = lakeport(server, *args, check=False)
            outputs += [r.stdout, r.stderr]
        for args in (["tenant", "list"], ["maintenance", "run"], ["quality"]):
            r = lakeport(server, *args, token=ADMIN, check=False)
            outputs += [r.stdout, r.stderr]
        outputs.append(http_get(port, "/metrics")[1])
        outputs.append(http_get(port, "/readyz")[1])
    finally:
        server.stop()
    log = server.log_path.read_text()
    outputs.append(log)

    secrets = [ADMIN, ACME, BETA, store_secret, ticket_secret,
               base64.b64encode(sse_key).decode(), sse_key.hex()]
    for secret in secrets:
        for text in outputs:
            assert secret not in text, f"secret {secret!r} leaked into: {text[:2000]}"

    lines = [json.loads(line) for line in log.splitlines() if line.strip()]
    assert all({"timestamp", "level", "target"} <= line.keys() for line in lines)
    ingests = [l for l in lines if l.get("message") == "ingest stream finished"]
    assert {(l["span"]["tenant"], l["span"]["dataset"]) for l in ingests} >= {("acme", "snowplow"), ("acme", "clicks")}
    assert all(l["status"] == "Ok" for l in ingests)
    queries = [l for l in lines if l.get("message") == "query finished"]
    assert any(q["tenant"] == "acme" and q["status"] == "Ok" and q["rows"] == 1 for q in queries)
    actions = {(l["action"], l["caller"], l["status"]) for l in lines if l.get("message") == "action finished"}
    assert {("quality.run", "acme", "Ok"), ("maintenance.run", "admin", "Ok")} <= actions, actions
        # Normal operation (a refused token included) logs no warning and no error.
    assert [l for l in lines if l["level"] in ("WARN", "ERROR")] == []


def test_a_taken_metrics_port_fails_the_start_with_what_to_do(tmp_path, lake):
    import socket
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ServerExited) as refused:
            Server(tmp_path, lake, extra_args=["--metrics-listen", f"127.0.0.1:{port}"]).start()
    assert refused.value.code != 0
    assert f"cannot bind metrics_listen 127.0.0.1:{port}" in refused.value.output
    assert "--metrics-listen" in refused.value.output


def dockerfile_runtime():
    """The runtime stage of the Dockerfile: its ENV values, EXPOSEd ports and HEALTHCHECK
    command, read from the file itself so this test follows what the image really does (no
    Docker engine runs on the test machines)."""
    text = (pathlib.Path(__file__).resolve().parents[2] / "Dockerfile").read_text()
    runtime = text[text.rindex("\nFROM "):].replace("\\\n", " ")
    env, exposed, healthcheck = {}, [], None
    for line in runtime.splitlines():
        words = line.split()
        if words[:1] == ["ENV"]:
            env.update(w.split("=", 1) for w in words[1:])
        elif words[:1] == ["EXPOSE"]:
            exposed += words[1:]
        elif words[:1] == ["HEALTHCHECK"]:
            healthcheck = line[line.index(" CMD ") + 5:].strip()
    return env, exposed, healthcheck


def test_the_dockerfile_runtime_starts_healthy_and_refuses_to_run_open(tmp_path):
    env, exposed, healthcheck = dockerfile_runtime()
    assert set(exposed) == {"50051", "9090"} and healthcheck
    # The image's ports, moved to free ones so the test runs beside anything else.
    ports = {p: str(free_port()) for p in exposed}
    def on_free_ports(value):
        for fixed, free in ports.items():
            value = re.sub(rf"(?<=:){fixed}\b", free, value)
        return value
    env = {k: on_free_ports(v) for k, v in env.items()}
    env["LAKEPORT_LAKE"] = str(tmp_path / "lake")
    healthcheck = on_free_ports(healthcheck)
    base = {k: v for k, v in os.environ.items() if not k.startswith("LAKEPORT_")}

    # As documented: without credentials the image's 0.0.0.0 listener refuses to start.
    refused = subprocess.run([server_binary()], env=dict(base, **env), capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0
    assert "LAKEPORT_ADMIN_TOKEN" in refused.stdout + refused.stderr

    with open(tmp_path / "server.log", "w") as log:
        proc = subprocess.Popen([server_binary()], env=dict(base, **env, LAKEPORT_ADMIN_TOKEN=ADMIN), stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while subprocess.run(healthcheck, shell=True, capture_output=True).returncode != 0:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            assert time.monotonic() < deadline, "the HEALTHCHECK command never passed"
            time.sleep(0.1)
        client = flight.FlightClient(f"grpc://127.0.0.1:{ports['50051']}")
        assert [a.type for a in client.list_actions(options=bearer(ADMIN))]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    lines = (tmp_path / "server.log").read_text().splitlines()
    assert lines and all(json.loads(line)["level"] for line in lines)
