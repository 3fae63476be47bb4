"""GCS, verified at the HTTP level: no GCS emulator installable here speaks the XML API that
object_store uses, so a loopback stand-in (peers.GcsRecorder) keeps objects in memory and
records every request. Placement, the fixed layout, queries, and the CMEK header on every
write of a keyed tenant are checked against what lakeport actually sent."""

from urllib.parse import unquote

import pytest

from conftest import BETA, Server, ServerExited, auth_toml, put_table, snowplow_table, sql, toml_table

CMEK = "projects/p/locations/europe-west1/keyRings/lake/cryptoKeys/acme"


@pytest.fixture
def gcs():
    from peers import GcsRecorder
    recorder = GcsRecorder()
    yield recorder
    recorder.stop()


def gcs_config(gcs, tenant_key=f'encryption = {{ kind = "gcs-cmek", key_name = "{CMEK}" }}'):
    options = {"google_service_account_key": gcs.service_account_key(), "allow_http": "true"}
    return auth_toml(acme=f'region = "eu"\n{tenant_key}', beta='region = "eu"') + f"""
[stores.default]
url = "gs://events-eu/lake"
region = "eu"
options = {toml_table(options)}

[ingest]
commit_interval = "10ms"
"""


def test_gcs_placement_layout_and_cmek_header_on_every_write(tmp_path, gcs):
    server = Server(tmp_path, None, config=gcs_config(gcs)).start()
    try:
        acks = put_table(server, snowplow_table(500))
        assert sum(a["rows_committed"] for a in acks) == 500
        put_table(server, snowplow_table(30, prefix="b"), token=BETA)
        assert sql(server, "SELECT count(*) AS n FROM snowplow").column("n").to_pylist() == [500]
    finally:
        server.stop()

    keys = sorted(gcs.objects)
    assert any(k.startswith("lake/tenant_id=acme/snowplow/_delta_log/") for k in keys)
    assert any(k.startswith("lake/tenant_id=acme/snowplow/app_id=web/year=2024/month=05/day=01/hour=10/data_")
               for k in keys)
    writes = [(unquote(path), headers) for method, path, headers in gcs.requests if method == "PUT"]
    acme = [(p, h) for p, h in writes if "/tenant_id=acme/" in p]
    beta = [(p, h) for p, h in writes if "/tenant_id=beta/" in p]
    assert any(".parquet" in p for p, _ in acme) and any("_delta_log" in p for p, _ in acme)
    assert all(h.get("x-goog-encryption-kms-key-name") == CMEK for _, h in acme), acme
    # A tenant without a key uses the bucket's default encryption: no header.
    assert beta and all("x-goog-encryption-kms-key-name" not in h for _, h in beta)


def test_a_key_the_store_cannot_apply_refuses_to_start(tmp_path, gcs):
    config = gcs_config(gcs, tenant_key='encryption = { kind = "sse-kms", key_id = "k" }')
    with pytest.raises(ServerExited) as exited:
        Server(tmp_path, None, config=config).start()
    assert "sse-kms" in exited.value.output and "acme" in exited.value.output
