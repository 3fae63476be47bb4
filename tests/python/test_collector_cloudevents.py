"""CloudEvents over HTTP into lakeport, built and encoded by the CloudEvents Python SDK
(structured and binary mode; a batch of its JSON-format events) and sent with `requests`."""

import json
from datetime import datetime, timezone

import pytest
import requests
from cloudevents.core.bindings.http import to_binary, to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from deltalake import DeltaTable

from conftest import ACME, Server
from peers import free_port

AUTH = {"authorization": f"Bearer {ACME}"}
WHEN = datetime(2024, 5, 1, 10, 20, 30, tzinfo=timezone.utc)


@pytest.fixture
def collector(tmp_path, lake):
    port = free_port()
    s = Server(tmp_path, lake, extra_args=["--collector-listen", f"127.0.0.1:{port}",
                                           "--collector-max-event", "64KiB"]).start()
    s.url = f"http://127.0.0.1:{port}/cloudevents"
    yield s
    s.stop()


def landed(lake):
    table = DeltaTable(str(lake / "tenant_id=acme" / "cloudevents")).to_pyarrow_table()
    return {r["id"]: r for r in table.to_pylist()}


def event(i, **extra):
    attributes = {"id": f"ev-{i}", "source": "/orders", "type": "order.placed", "time": WHEN,
                  "subject": f"order/{i}", **extra}
    return CloudEvent(attributes, data={"order": i, "total": 9.5})


def test_structured_binary_and_batched_events_land_with_their_attributes(collector, lake):
    structured = to_structured(event(1, partitionkey="eu"), JSONFormat())
    r = requests.post(collector.url, data=structured.body, headers={**AUTH, **structured.headers})
    assert r.status_code == 200, r.text

    binary = to_binary(event(2, datacontenttype="application/json"), JSONFormat())
    assert any(h.lower() == "ce-id" for h in binary.headers)
    r = requests.post(collector.url, data=binary.body, headers={**AUTH, **binary.headers})
    assert r.status_code == 200, r.text

    items = [json.loads(JSONFormat().write(event(i))) for i in (3, 4, 5)]
    r = requests.post(collector.url, data=json.dumps(items), headers={
        **AUTH, "content-type": "application/cloudevents-batch+json"})
    assert r.status_code == 200, r.text

    rows = landed(lake)
    assert sorted(rows) == [f"ev-{i}" for i in range(1, 6)]
    for row in rows.values():
        assert row["source"] == "/orders" and row["type"] == "order.placed"
        assert row["specversion"] == "1.0"
        assert row["time"] == WHEN
        assert json.loads(row["data"]) == {"order": int(row["id"][3:]), "total": 9.5}
    assert rows["ev-1"]["subject"] == "order/1"
    assert json.loads(rows["ev-1"]["extensions"]) == {"partitionkey": "eu"}
    assert rows["ev-2"]["datacontenttype"].startswith("application/json")
    assert rows["ev-2"]["subject"] == "order/2"


def test_a_batch_with_one_invalid_event_is_refused_whole(collector, lake):
    good = json.loads(JSONFormat().write(event(1)))
    bad = {"specversion": "1.0", "id": "x", "type": "t"}  # no source
    r = requests.post(collector.url, data=json.dumps([good, bad]), headers={
        **AUTH, "content-type": "application/cloudevents-batch+json"})
    assert r.status_code == 400
    assert "event 1 of the batch" in r.text and "source" in r.text
    assert not (lake / "tenant_id=acme" / "cloudevents").exists()
    # Plain JSON without ce-* headers is neither mode.
    r = requests.post(collector.url, json={"id": "1"}, headers=AUTH)
    assert r.status_code == 415
    assert requests.post(collector.url, data=JSONFormat().write(event(1)), headers={
        "content-type": "application/cloudevents+json"}).status_code == 401


def test_an_event_over_max_event_is_413_and_nothing_of_its_request_is_written(collector, lake):
    big = CloudEvent({"id": "big", "source": "/s", "type": "t"}, data={"blob": "x" * 70_000})
    items = [json.loads(JSONFormat().write(event(1))), json.loads(JSONFormat().write(big))]
    r = requests.post(collector.url, data=json.dumps(items), headers={
        **AUTH, "content-type": "application/cloudevents-batch+json"})
    assert r.status_code == 413 and "event 1 of the batch" in r.text and "collector.max_event" in r.text
    binary = to_binary(big, JSONFormat())
    assert requests.post(collector.url, data=binary.body, headers={**AUTH, **binary.headers}).status_code == 413
    assert not (lake / "tenant_id=acme" / "cloudevents").exists()


def test_the_webhook_handshake_allows_the_origin_that_asks(collector):
    r = requests.options(collector.url, headers={"WebHook-Request-Origin": "eventemitter.example.com"})
    assert r.status_code == 200
    assert r.headers["WebHook-Allowed-Origin"] == "eventemitter.example.com"
    assert r.headers["WebHook-Allowed-Rate"] == "*"
    assert requests.options(collector.url).status_code == 400
