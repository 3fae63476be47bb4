"""The Snowplow collector door, driven by the Snowplow Python tracker unmodified (POST and
GET emitters, with a collector key in the endpoint's path), by browser-like requests
(CORS preflight, an image pixel, cookies) and by hand-made bodies for what a tracker never
sends. Rows are read back with the `deltalake` package and through Flight SQL."""

import base64
import json

import pyarrow.flight as flight
import pytest
import requests
from deltalake import DeltaTable
from snowplow_tracker import Emitter, SelfDescribingJson, Subject, Tracker
from snowplow_tracker.events import PageView, SelfDescribing, StructuredEvent

from conftest import ACME, ADMIN, Server, put_table, snowplow_table, sql
from peers import free_port
from test_cli import lakeport

TP2 = "/com.snowplowanalytics.snowplow/tp2"
PAYLOAD = "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4"
AUTH = {"authorization": f"Bearer {ACME}"}
SHOP = "https://shop.example"


@pytest.fixture
def collector(tmp_path, lake):
    port = free_port()
    s = Server(tmp_path, lake, extra_args=[
        "--collector-listen", f"127.0.0.1:{port}",
        "--collector-cookie", "true",
        "--collector-trusted-proxies", "127.0.0.1",
        "--collector-max-event", "64KiB",
    ]).start()
    s.http = f"http://127.0.0.1:{port}"
    s.hostport = f"127.0.0.1:{port}"
    yield s
    s.stop()


def issue_key(server, *args):
    """Issues a key as the tenant itself; returns the key and its id (told on stderr)."""
    issued = lakeport(server, "key", "issue", "acme", *args)
    key = issued.stdout.strip()
    assert key.startswith("lpk_") and "\n" not in key, issued.stdout
    issue_key.last_id = issued.stderr.split()[2]
    return key


def landed(lake, dataset="snowplow"):
    path = lake / "tenant_id=acme" / dataset
    if not path.exists():
        return []
    return DeltaTable(str(path)).to_pyarrow_table().to_pylist()


def tracker(endpoint, method, sent, encode_base64=True):
    emitter = Emitter(endpoint, protocol="http", method=method, batch_size=1 if method == "get" else 10,
                      on_success=lambda events: sent.extend(events),
                      on_failure=lambda ok, failed: pytest.fail(f"tracker failed to send {failed}"))
    subject = (Subject().set_user_id("u-7").set_screen_resolution(1920, 1080)
               .set_viewport(800, 600).set_lang("en-GB").set_timezone("Europe/London")
               .set_domain_user_id("d-1").set_domain_session_index(3))
    return Tracker("shop-py", emitter, subject=subject, app_id="shop", encode_base64=encode_base64)


def test_tracker_events_land_through_post_and_get(collector, lake):
    key = issue_key(collector, "--datasets", "snowplow", "--description", "python tracker")
    endpoint = f"{collector.hostport}/k/{key}"
    sent = []
    post = tracker(endpoint, "post", sent)
    context = SelfDescribingJson("iglu:com.acme/user/jsonschema/1-0-0", {"tier": "gold"})
    ids = {
        "pv": post.track(PageView("https://shop.example/cart?utm_source=mail#top", "Cart",
                                  referrer="https://search.example/q")),
        "se": post.track(StructuredEvent("checkout", "click", label="pay", property_="btn",
                                         value=2.5, context=[context])),
        "ue": post.track(SelfDescribing(
            SelfDescribingJson("iglu:com.acme/signup/jsonschema/2-0-1", {"plan": "pro"}),
            context=[context])),
    }
    post.flush()
    get = tracker(endpoint, "get", sent, encode_base64=False)
    ids["get_ue"] = get.track(SelfDescribing(
        SelfDescribingJson("iglu:com.acme/search/jsonschema/1-0-0", {"terms": ["a", "b"]})))
    ids["get_pv"] = get.track(PageView("https://shop.example/", "Home"))
    get.flush()
    assert len(sent) == 5

    rows = {r["event_id"]: r for r in landed(lake)}
    assert sorted(rows) == sorted(ids.values())
    by_eid = {e["eid"]: e for e in sent}
    for eid, row in rows.items():
        event = by_eid[eid]
        assert row["app_id"] == "shop" and row["platform"] == "pc"
        assert row["v_tracker"] == event["tv"] and row["name_tracker"] == "shop-py"
        assert row["user_id"] == "u-7" and row["domain_userid"] == "d-1"
        assert row["domain_sessionidx"] == 3
        assert (row["dvce_screenwidth"], row["dvce_screenheight"]) == (1920, 1080)
        assert (row["br_viewwidth"], row["br_viewheight"]) == (800, 600)
        assert row["br_lang"] == "en-GB" and row["os_timezone"] == "Europe/London"
        assert round(row["dvce_created_tstamp"].timestamp() * 1000) == int(event["dtm"])
        assert row["user_ipaddress"] == "127.0.0.1"
        assert row["useragent"].startswith("python-requests")
        assert row["collector_tstamp"] is not None and row["derived_tstamp"] is not None

    pv = rows[ids["pv"]]
    assert (pv["event"], pv["event_name"], pv["event_vendor"]) == (
        "page_view", "page_view", "com.snowplowanalytics.snowplow")
    assert pv["page_url"] == "https://shop.example/cart?utm_source=mail#top"
    assert (pv["page_urlscheme"], pv["page_urlhost"], pv["page_urlport"]) == ("https", "shop.example", 443)
    assert (pv["page_urlpath"], pv["page_urlquery"], pv["page_urlfragment"]) == ("/cart", "utm_source=mail", "top")
    assert pv["mkt_source"] == "mail" and pv["page_title"] == "Cart"
    assert pv["page_referrer"] == "https://search.example/q" and pv["refr_urlhost"] == "search.example"

    se = rows[ids["se"]]
    assert (se["event"], se["se_category"], se["se_action"], se["se_label"], se["se_property"],
            se["se_value"]) == ("struct", "checkout", "click", "pay", "btn", 2.5)
    contexts = json.loads(se["contexts"])
    assert contexts["data"] == [{"schema": "iglu:com.acme/user/jsonschema/1-0-0", "data": {"tier": "gold"}}]

    ue = rows[ids["ue"]]  # sent base64url-encoded (ue_px, cx)
    assert (ue["event"], ue["event_vendor"], ue["event_name"], ue["event_format"], ue["event_version"]) == (
        "unstruct", "com.acme", "signup", "jsonschema", "2-0-1")
    assert json.loads(ue["unstruct_event"])["data"] == {
        "schema": "iglu:com.acme/signup/jsonschema/2-0-1", "data": {"plan": "pro"}}
    assert json.loads(ue["contexts"])["data"][0]["data"] == {"tier": "gold"}

    get_ue = rows[ids["get_ue"]]  # sent as plain JSON in the query string (ue_pr)
    assert json.loads(get_ue["unstruct_event"])["data"]["data"] == {"terms": ["a", "b"]}
    assert rows[ids["get_pv"]]["page_title"] == "Home"

    counted = sql(collector, "SELECT event, count(*) AS n FROM snowplow GROUP BY event ORDER BY event")
    assert dict(zip(counted["event"].to_pylist(), counted["n"].to_pylist())) == {
        "page_view": 2, "struct": 1, "unstruct": 2}


def test_a_browser_pixel_with_cors_and_a_key_kept_to_its_origins(collector, lake):
    key = issue_key(collector, "--datasets", "snowplow", "--origins", SHOP)
    url = f"{collector.http}/k/{key}"

    preflight = requests.options(f"{url}{TP2}", headers={
        "Origin": SHOP, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == SHOP
    assert preflight.headers["access-control-allow-credentials"] == "true"
    assert "content-type" in preflight.headers["access-control-allow-headers"].lower()
    assert "POST" in preflight.headers["access-control-allow-methods"]

    # An <img> pixel: no Origin, the page as Referer.
    pixel = requests.get(f"{url}/i", params={"e": "pv", "aid": "web", "url": f"{SHOP}/p",
                                             "eid": "0b8f7c2e-6a55-4c1e-9a3b-1f1f2f3f4f5f"},
                         headers={"Referer": f"{SHOP}/p"})
    assert pixel.status_code == 200
    assert pixel.headers["content-type"] == "image/gif" and pixel.content.startswith(b"GIF89a")
    assert pixel.cookies.get("sp")

    event = {"schema": PAYLOAD, "data": [{"e": "pv", "aid": "web", "url": f"{SHOP}/x"}]}
    from_shop = requests.post(f"{url}{TP2}", json=event, headers={"Origin": SHOP})
    assert from_shop.status_code == 200, from_shop.text
    assert from_shop.headers["access-control-allow-origin"] == SHOP
    assert len(landed(lake)) == 2

    elsewhere = requests.post(f"{url}{TP2}", json=event, headers={"Origin": "https://evil.example"})
    assert elsewhere.status_code == 403 and "origin" in elsewhere.text
    assert elsewhere.headers["access-control-allow-origin"] == "https://evil.example"
    other_dataset = requests.post(f"{url}/cloudevents", headers={
        "Origin": SHOP, "ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "t"})
    assert other_dataset.status_code == 403 and "cloudevents" in other_dataset.text
    unknown = requests.post(f"{collector.http}/k/lpk_{'0' * 64}{TP2}", json=event)
    assert unknown.status_code == 401
    assert len(landed(lake)) == 2
    assert not (lake / "tenant_id=acme" / "cloudevents").exists()

    # A key is no token: Flight refuses it.
    with pytest.raises(flight.FlightUnauthorizedError):
        put_table(collector, snowplow_table(1), token=key)

    listed = json.loads(lakeport(collector, "tenant", "get", "acme", "--format", "json", token=ADMIN).stdout)
    assert listed[0]["tokens"] == issue_key.last_id
    lakeport(collector, "key", "revoke", "acme", issue_key.last_id)  # by the tenant itself
    revoked = requests.post(f"{url}{TP2}", json=event, headers={"Origin": SHOP})
    assert revoked.status_code == 401
    assert len(landed(lake)) == 2


def test_malformed_events_go_to_rejected_and_the_rest_of_the_batch_lands(collector, lake):
    body = {"schema": PAYLOAD, "data": [
        {"e": "pv", "aid": "web", "url": "https://a.example/"},
        {"e": "zz", "aid": "web"},
        {"e": "se", "aid": "web", "se_ca": "c", "se_ac": "a", "se_va": "lots"},
        {"e": "ue", "aid": "web", "ue_px": base64.urlsafe_b64encode(b"{not json").decode()},
        {"e": "pv", "aid": "web", "eid": "55555555-5555-4555-8555-555555555555", "page": "x" * 70_000},
    ]}
    r = requests.post(f"{collector.http}{TP2}", json=body, headers=AUTH)
    assert r.status_code == 200, r.text
    assert [row["event"] for row in landed(lake)] == ["page_view"]
    rejected = sorted(landed(lake, "_rejected"), key=lambda row: row["reason"])
    assert [row["dataset"] for row in rejected] == ["snowplow"] * 4
    reasons = [row["reason"] for row in rejected]
    oversized = [row for row in rejected if "collector.max_event" in row["reason"]]
    assert len(oversized) == 1 and json.loads(oversized[0]["row"])["eid"].startswith("5555")
    assert len(oversized[0]["row"]) < 1000
    assert any("se_va" in reason for reason in reasons)
    assert any("unknown event type" in reason for reason in reasons)
    assert any("ue_pr/ue_px is not JSON" in reason for reason in reasons)
    assert any(json.loads(row["row"]).get("e") == "zz" for row in rejected)

    for bad in (b"not json", json.dumps({"schema": "iglu:x/y/jsonschema/1-0-0", "data": []}).encode()):
        r = requests.post(f"{collector.http}{TP2}", data=bad, headers=AUTH)
        assert r.status_code == 400, r.text
    assert requests.post(f"{collector.http}{TP2}", json=body).status_code == 401
    assert len(landed(lake)) == 1


def test_client_address_cookie_anonymity_and_idempotent_retries(collector, lake):
    def send(eid, headers, **extra):
        event = {"e": "pv", "aid": "web", "eid": eid, **extra}
        return requests.post(f"{collector.http}{TP2}", json={"schema": PAYLOAD, "data": [event]},
                             headers={**AUTH, **headers})

    first = send("11111111-1111-4111-8111-111111111111", {"X-Forwarded-For": "198.51.100.7"})
    assert first.status_code == 200
    cookie = first.cookies.get("sp")
    assert cookie and "SameSite=None" in first.headers["set-cookie"]
    again = send("22222222-2222-4222-8222-222222222222", {"Cookie": f"sp={cookie}"})
    assert again.cookies.get("sp") == cookie
    anonymous = send("33333333-3333-4333-8333-333333333333",
                     {"SP-Anonymous": "*", "X-Forwarded-For": "198.51.100.8", "Cookie": f"sp={cookie}"})
    assert anonymous.status_code == 200 and "set-cookie" not in anonymous.headers

    retried = [send("44444444-4444-4444-8444-444444444444", {"Idempotency-Key": "batch-9"}) for _ in range(3)]
    assert [r.status_code for r in retried] == [200, 200, 200]

    rows = {r["event_id"][:1]: r for r in landed(lake)}
    assert sorted(rows) == ["1", "2", "3", "4"]
    assert rows["1"]["user_ipaddress"] == "198.51.100.7"
    assert rows["1"]["network_userid"] == cookie and rows["2"]["network_userid"] == cookie
    assert rows["3"]["user_ipaddress"] is None
    assert rows["3"]["network_userid"] == "00000000-0000-0000-0000-000000000000"
    assert rows["4"]["user_ipaddress"] == "127.0.0.1"


def test_a_resent_batch_lands_each_event_once_within_the_dedupe_window(collector, lake):
    """A tracker that got no answer resends the same events, with no Idempotency-Key."""
    def post(*eids):
        events = [{"e": "pv", "aid": "web", "eid": eid, "url": "https://a.example/"} for eid in eids]
        return requests.post(f"{collector.http}{TP2}", json={"schema": PAYLOAD, "data": events},
                             headers=AUTH)

    a, b, c = (f"a0000000-0000-4000-8000-00000000000{i}" for i in (1, 2, 3))
    assert post(a, b).status_code == 200
    assert post(a, b).status_code == 200
    assert post(b, c).status_code == 200
    assert sorted(row["event_id"] for row in landed(lake)) == [a, b, c]
    # Another tenant's events with the same ids are its own.
    beta = requests.post(f"{collector.http}{TP2}",
                         headers={"authorization": f"Bearer {ADMIN}", "x-lakeport-tenant": "beta"},
                         json={"schema": PAYLOAD, "data": [{"e": "pv", "aid": "web", "eid": a}]})
    assert beta.status_code == 200, beta.text
    beta_rows = DeltaTable(str(lake / "tenant_id=beta" / "snowplow")).to_pyarrow_table().to_pylist()
    assert [row["event_id"] for row in beta_rows] == [a]
