"""A collector door under SIGKILL: concurrent webhook senders post CloudEvents batches, each
with its own Idempotency-Key, while the server is killed mid-request. After the restart,
and before anything is resent, every request that was answered 200 is in the table; then
every sender retries everything it sent with the same keys and each event is there once."""

import json
import threading
import time

import requests
from deltalake import DeltaTable

from conftest import ACME, Server
from peers import free_port

AUTH = {"authorization": f"Bearer {ACME}", "content-type": "application/cloudevents-batch+json"}
SENDERS = 6
EVENTS = 5


def batch(key):
    return json.dumps([{"specversion": "1.0", "id": f"{key}-{i}", "source": "/hooks", "type": "paid",
                        "time": "2024-05-01T10:00:00Z", "data": {"i": i}} for i in range(EVENTS)])


def landed(lake):
    path = lake / "tenant_id=acme" / "cloudevents"
    return DeltaTable(str(path)).to_pyarrow_table().column("id").to_pylist() if path.exists() else []


def test_sigkill_mid_request_keeps_every_200_and_retries_land_once(tmp_path, lake):
    port = free_port()
    server = Server(tmp_path, lake, ["--collector-listen", f"127.0.0.1:{port}"]).start()
    url = f"http://127.0.0.1:{port}/cloudevents"
    acked, lock, stop = set(), threading.Lock(), threading.Event()
    attempted = [0] * SENDERS

    def sender(s):
        n = 0
        while not stop.is_set():
            key = f"s{s}-r{n}"
            n += 1
            attempted[s] = n
            try:
                r = requests.post(url, data=batch(key), headers={**AUTH, "Idempotency-Key": key}, timeout=30)
            except requests.RequestException:
                continue
            if r.status_code == 200:
                with lock:
                    acked.add(key)

    threads = [threading.Thread(target=sender, args=(s,)) for s in range(SENDERS)]
    try:
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while len(acked) < 30 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(acked) >= 30, "the senders made no progress"
        server.kill()
        stop.set()
        for t in threads:
            t.join()
        answered = set(acked)

        server.start()
        # Before any resend: each answered request's events are all there.
        ids = set(landed(lake))
        missing = [key for key in answered if any(f"{key}-{i}" not in ids for i in range(EVENTS))]
        assert not missing, f"answered 200 but not in the table: {missing}"

        for s in range(SENDERS):
            for n in range(attempted[s]):
                key = f"s{s}-r{n}"
                r = requests.post(url, data=batch(key), headers={**AUTH, "Idempotency-Key": key}, timeout=30)
                assert r.status_code == 200, r.text
    finally:
        stop.set()
        server.stop()

    ids = landed(lake)
    expected = {f"s{s}-r{n}-{i}" for s in range(SENDERS) for n in range(attempted[s]) for i in range(EVENTS)}
    assert len(ids) == len(set(ids)), "an event landed twice"
    assert set(ids) == expected
