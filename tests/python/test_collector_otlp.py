"""OTLP into lakeport with the OpenTelemetry Python SDK and its exporters, unmodified:
OTLP/HTTP (protobuf) on the collector port, OTLP/gRPC on the Flight port, and the OTLP
JSON mapping by hand. Rows are read back with the `deltalake` package."""

import gzip
import json
import logging

import pytest
import requests
from deltalake import DeltaTable

from conftest import ACME, ADMIN, Server
from peers import free_port

from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

AUTH = {"authorization": f"Bearer {ACME}"}


@pytest.fixture
def collector(tmp_path, lake):
    port = free_port()
    s = Server(tmp_path, lake, extra_args=["--collector-listen", f"127.0.0.1:{port}"]).start()
    s.http = f"http://127.0.0.1:{port}"
    yield s
    s.stop()


def rows(lake, dataset, tenant="acme"):
    return DeltaTable(str(lake / f"tenant_id={tenant}" / dataset)).to_pyarrow_table().to_pylist()


def resource(name):
    return Resource.create({"service.name": name, "deployment.environment": "test"})


def test_sdk_logs_over_otlp_http_land_with_ids_and_attributes(collector, lake):
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    provider = LoggerProvider(resource=resource("checkout"))
    provider.add_log_record_processor(SimpleLogRecordProcessor(
        OTLPLogExporter(endpoint=f"{collector.http}/v1/logs", headers=AUTH)))
    tracer = TracerProvider().get_tracer("t")
    log = logging.getLogger("otlp-http-test")
    log.propagate = False
    log.setLevel(logging.INFO)
    log.addHandler(LoggingHandler(logger_provider=provider))
    with tracer.start_as_current_span("work") as span:
        for i in range(5):
            log.warning("order %d placed", i, extra={"order.id": i, "order.total": 9.5})
        trace_id = format(span.get_span_context().trace_id, "032x")
        span_id = format(span.get_span_context().span_id, "016x")
    provider.shutdown()
    landed = sorted(rows(lake, "otel_logs"), key=lambda r: r["body"])
    assert [r["body"] for r in landed] == [f"order {i} placed" for i in range(5)]
    first = landed[0]
    assert first["service_name"] == "checkout"
    assert first["severity_text"] == "WARN" and first["severity_number"] == 13
    assert first["trace_id"] == trace_id and first["span_id"] == span_id
    attributes = json.loads(first["attributes"])
    assert attributes["order.id"] == 0 and attributes["order.total"] == 9.5
    assert json.loads(first["resource_attributes"])["deployment.environment"] == "test"
    assert first["time"] is not None


def test_sdk_spans_over_otlp_grpc_land_with_parents_events_and_status(collector, lake):
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.trace import SpanKind, Status, StatusCode
    exporter = OTLPSpanExporter(endpoint=collector.addr, insecure=True,
                                headers=(("authorization", f"Bearer {ACME}"),))
    provider = TracerProvider(resource=resource("api"))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("shop", "1.2.3")
    with tracer.start_as_current_span("GET /cart", kind=SpanKind.SERVER,
                                      attributes={"http.status_code": 500}) as parent:
        with tracer.start_as_current_span("db.query") as child:
            child.add_event("retry", {"attempt": 2})
        parent.set_status(Status(StatusCode.ERROR, "boom"))
    provider.shutdown()
    landed = {r["name"]: r for r in rows(lake, "otel_spans")}
    assert set(landed) == {"GET /cart", "db.query"}
    parent_row, child_row = landed["GET /cart"], landed["db.query"]
    assert parent_row["trace_id"] == format(parent.get_span_context().trace_id, "032x")
    assert child_row["parent_span_id"] == format(parent.get_span_context().span_id, "016x")
    assert parent_row["kind"] == "SPAN_KIND_SERVER"
    assert parent_row["status_code"] == "STATUS_CODE_ERROR" and parent_row["status_message"] == "boom"
    assert json.loads(parent_row["attributes"]) == {"http.status_code": 500}
    assert json.loads(child_row["events"])[0]["attributes"] == {"attempt": 2}
    assert parent_row["scope_name"] == "shop" and parent_row["scope_version"] == "1.2.3"
    assert parent_row["duration_us"] >= child_row["duration_us"] >= 0


def test_sdk_metrics_of_every_kind_land_one_row_per_point(collector, lake):
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.metrics import Observation
    exporter = OTLPMetricExporter(endpoint=f"{collector.http}/v1/metrics", headers=AUTH)
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(resource=resource("worker"), metric_readers=[reader], views=[
        View(instrument_name="latency.exp", aggregation=ExponentialBucketHistogramAggregation())])
    meter = provider.get_meter("jobs")
    meter.create_counter("jobs.done").add(3, {"queue": "a"})
    meter.create_counter("jobs.done").add(4, {"queue": "b"})
    meter.create_up_down_counter("jobs.queued").add(-2)
    meter.create_histogram("latency").record(12.5)
    meter.create_histogram("latency.exp").record(3.0)
    meter.create_observable_gauge("temperature", callbacks=[lambda _: [Observation(21.5)]])
    provider.shutdown()
    landed = rows(lake, "otel_metrics")
    by_name = {}
    for r in landed:
        by_name.setdefault(r["metric_name"], []).append(r)
    assert sorted(r["value_int"] for r in by_name["jobs.done"]) == [3, 4]
    assert by_name["jobs.done"][0]["metric_type"] == "sum" and by_name["jobs.done"][0]["is_monotonic"]
    assert by_name["jobs.queued"][0]["value_int"] == -2 and not by_name["jobs.queued"][0]["is_monotonic"]
    hist = by_name["latency"][0]
    assert hist["metric_type"] == "histogram" and hist["count"] == 1 and hist["sum"] == 12.5
    assert sum(json.loads(hist["bucket_counts"])) == 1 and json.loads(hist["explicit_bounds"])
    exp = by_name["latency.exp"][0]
    assert exp["metric_type"] == "exponential_histogram" and exp["count"] == 1
    assert exp["scale"] is not None and sum(json.loads(exp["positive_bucket_counts"])) == 1
    assert by_name["temperature"][0]["metric_type"] == "gauge"
    assert by_name["temperature"][0]["value_double"] == 21.5
    assert by_name["jobs.done"][0]["service_name"] == "worker"


SUMMARY_JSON = {
    "resourceMetrics": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "legacy"}}]},
        "scopeMetrics": [{"metrics": [{
            "name": "rpc.latency",
            "summary": {"dataPoints": [{
                "timeUnixNano": "1714558830000000000",
                "count": "10", "sum": 55.5,
                "quantileValues": [{"quantile": 0.5, "value": 5.0}, {"quantile": 0.99, "value": 9.9}],
                "attributes": [{"key": "big", "value": {"intValue": "9007199254740993"}}],
            }]},
        }]}],
    }],
}


def test_otlp_json_mapping_with_gzip_lands_a_summary(collector, lake):
    body = gzip.compress(json.dumps(SUMMARY_JSON).encode())
    r = requests.post(f"{collector.http}/v1/metrics", data=body, headers={
        **AUTH, "content-type": "application/json", "content-encoding": "gzip"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    [row] = rows(lake, "otel_metrics")
    assert row["metric_type"] == "summary" and row["count"] == 10 and row["sum"] == 55.5
    assert json.loads(row["quantile_values"]) == [[0.5, 5.0], [0.99, 9.9]]
    # int64 as a string in OTLP JSON keeps its precision.
    assert row["attributes"] == '{"big":9007199254740993}'
    assert row["time"].isoformat().startswith("2024-05-01T10:20:30")


LOG_JSON = {"resourceLogs": [{"scopeLogs": [{"logRecords": [
    {"timeUnixNano": "1714558830000000000", "body": {"stringValue": "timed"},
     "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174"},
    {"body": {"stringValue": "no time at all"}},
]}]}]}


def test_a_record_without_any_time_is_a_partial_success_and_a_dead_letter(collector, lake):
    r = requests.post(f"{collector.http}/v1/logs", json=LOG_JSON, headers=AUTH)
    assert r.status_code == 200, r.text
    partial = r.json()["partialSuccess"]
    assert partial["rejectedLogRecords"] == "1" or partial["rejectedLogRecords"] == 1
    assert "_rejected" in partial["errorMessage"]
    [row] = rows(lake, "otel_logs")
    assert row["body"] == "timed" and row["trace_id"] == "5b8efff798038103d269b633813fc60c"
    assert len(rows(lake, "_rejected")) == 1


def test_an_idempotency_key_lands_a_retried_request_once(collector, lake):
    headers = {**AUTH, "idempotency-key": "batch-0001"}
    for _ in range(3):
        r = requests.post(f"{collector.http}/v1/logs", json=LOG_JSON, headers=headers)
        assert r.status_code == 200, r.text
    assert len(rows(lake, "otel_logs")) == 1
    r = requests.post(f"{collector.http}/v1/logs", json=LOG_JSON,
                      headers={**AUTH, "idempotency-key": "batch-0002"})
    assert r.status_code == 200
    assert len(rows(lake, "otel_logs")) == 2


def test_refusals_carry_the_status_a_client_acts_on(collector, lake):
    url = f"{collector.http}/v1/logs"
    assert requests.post(url, json=LOG_JSON).status_code == 401
    assert requests.post(url, json=LOG_JSON, headers={"authorization": "Bearer nope"}).status_code == 401
    # An admin names the tenant; without it the request is malformed.
    admin = {"authorization": f"Bearer {ADMIN}"}
    assert requests.post(url, json=LOG_JSON, headers=admin).status_code == 400
    r = requests.post(url, json=LOG_JSON, headers={**admin, "x-lakeport-tenant": "beta"})
    assert r.status_code == 200, r.text
    assert len(rows(lake, "otel_logs", tenant="beta")) == 1
    # A tenant token cannot write for another tenant.
    assert requests.post(url, json=LOG_JSON, headers={**AUTH, "x-lakeport-tenant": "beta"}).status_code == 403
    r = requests.post(url, data=b"x", headers={**AUTH, "content-type": "text/plain"})
    assert r.status_code == 415 and "application/x-protobuf" in r.text
    r = requests.post(url, data=b"{not json", headers={**AUTH, "content-type": "application/json"})
    assert r.status_code == 400 and "OTLP JSON" in r.json()["message"]
    r = requests.post(url, data=b"\x0a\xff", headers={**AUTH, "content-type": "application/x-protobuf"})
    assert r.status_code == 400
    r = requests.post(url, data=b"x" * (17 << 20), headers={**AUTH, "content-type": "application/x-protobuf"})
    assert r.status_code == 413
    r = requests.post(url, data=b"x", headers={**AUTH, "content-type": "application/json",
                                               "content-encoding": "br"})
    assert r.status_code == 415
    assert not (lake / "tenant_id=acme" / "otel_logs").exists()


def test_an_over_quota_tenant_gets_429_with_retry_after_and_others_are_unaffected(tmp_path, lake):
    from conftest import CONFIG
    config = CONFIG.replace('id = "acme"\n', 'id = "acme"\nquota = { hard = "1B" }\n', 1)
    port = free_port()
    s = Server(tmp_path, lake, config=config,
               extra_args=["--collector-listen", f"127.0.0.1:{port}"]).start()
    try:
        url = f"http://127.0.0.1:{port}/v1/logs"
        first = requests.post(url, json=LOG_JSON, headers=AUTH)
        assert first.status_code == 200, first.text

        def refused():
            r = requests.post(url, json=LOG_JSON, headers=AUTH)
            return r if r.status_code == 429 else None
        import time
        deadline = time.monotonic() + 30
        answer = refused()
        while answer is None and time.monotonic() < deadline:
            time.sleep(0.2)
            answer = refused()
        assert answer is not None, "the tenant over its hard quota was never refused"
        assert int(answer.headers["retry-after"]) > 0
        beta = requests.post(url, json=LOG_JSON, headers={"authorization": "Bearer beta-secret"})
        assert beta.status_code == 200, beta.text
    finally:
        s.stop()
