"""The lake on Azure Blob (Azurite on loopback): ingest, query, two writers on one table,
read back by the deltalake package; wrong credentials refuse to start without echoing them."""

import pyarrow.flight as flight
import pytest
from deltalake import DeltaTable

from conftest import Server, ServerExited, auth_toml, produce_concurrently, put_table, snowplow_table, sql, toml_table


def azure_config(container, options):
    return auth_toml() + f"""
[stores.default]
url = "az://{container}/lake"
options = {toml_table(options)}

[ingest]
commit_interval = "10ms"
"""


@pytest.fixture
def container(azurite, unique):
    return azurite.container(unique("lake"))


def test_ingest_query_and_read_back_on_azure(tmp_path, azurite, container):
    server = Server(tmp_path, None, config=azure_config(container, azurite.store_options()),
                    env=azurite.env()).start()
    try:
        acks = put_table(server, snowplow_table(1_200), producer="az-1", chunk=300)
        assert sum(a["rows_committed"] for a in acks) == 1_200
        assert sql(server, "SELECT count(DISTINCT event_id) AS n FROM snowplow").column("n").to_pylist() == [1_200]
        blobs = azurite.blobs(container)
        assert any(b.startswith("lake/tenant_id=acme/snowplow/_delta_log/") for b in blobs)
        assert any("app_id=web/year=2024/month=05/day=01/hour=10/data_2" in b for b in blobs)
        table = DeltaTable(f"az://{container}/lake/tenant_id=acme/snowplow",
                           storage_options=azurite.deltalake_options())
        assert table.to_pyarrow_table().num_rows == 1_200
    finally:
        server.stop()


def test_two_writers_on_one_azure_table(tmp_path, azurite, container):
    config = azure_config(container, azurite.store_options())
    a = Server(tmp_path, None, config=config, env=azurite.env()).start()
    b = Server(tmp_path, None, config=config, env=azurite.env()).start()
    try:
        assert produce_concurrently([a, b, a, b]) == []
        table = DeltaTable(f"az://{container}/lake/tenant_id=acme/snowplow",
                           storage_options=azurite.deltalake_options()).to_pyarrow_table()
        assert table.num_rows == 4 * 4 * 100
        assert len(set(table.column("event_id").to_pylist())) == 4 * 4 * 100
    finally:
        a.stop()
        b.stop()


def test_wrong_credentials_refuse_to_start_naming_the_store_not_the_secret(tmp_path, azurite, container):
    secret = "d3JvbmcgYnV0IHdlbGwtZm9ybWVkIGtleSBmb3IgdGhlIHRlc3Qh"
    options = {
        "azure_storage_account_name": "devstoreaccount1",
        "azure_storage_account_key": secret,
        "azure_storage_endpoint": f"{azurite.url}/devstoreaccount1",
        "azure_allow_http": "true",
    }
    with pytest.raises(ServerExited) as exited:
        Server(tmp_path, None, config=azure_config(container, options)).start()
    output = exited.value.output
    assert "store default" in output
    assert secret not in output

    # Allowed to start anyway, it answers UNAVAILABLE naming the store, still not the secret.
    server = Server(tmp_path, None, config=azure_config(container, options),
                    extra_args=["--allow-unreachable-stores"]).start()
    try:
        with pytest.raises(flight.FlightUnavailableError) as refused:
            put_table(server, snowplow_table(3))
        assert "store default" in str(refused.value)
        assert secret not in str(refused.value)
    finally:
        server.stop()
    assert secret not in server.log_path.read_text()


def test_encryption_scope_header_on_every_request_of_a_keyed_tenant(tmp_path, azurite, container):
    """object_store has no key for Azure encryption scopes; lakeport sends the header as a
    default header of the tenant's client, with SAS (or token) auth. A recording proxy in
    front of Azurite shows it on every request made for the tenant."""
    from urllib.parse import unquote

    from peers import FaultProxy
    proxy = FaultProxy(azurite.port)
    scope = 'encryption = { kind = "azure-scope", scope = "acme-scope" }\n\n[stores.default]'
    options = dict(azurite.store_options(), azure_storage_sas_key=azurite.sas())
    config = azure_config(container, options).replace("[stores.default]", scope, 1)
    server = Server(tmp_path, None, config=config, env={"AZURITE_BLOB_STORAGE_URL": proxy.endpoint}).start()
    try:
        acks = put_table(server, snowplow_table(50))
        assert sum(a["rows_committed"] for a in acks) == 50
    finally:
        server.stop()
        proxy.stop()
    acme = [(m, unquote(p), h) for m, p, h in proxy.requests if "tenant_id=acme" in unquote(p)]
    assert any(m == "PUT" and ".parquet" in p for m, p, _ in acme)
    assert any(m == "PUT" and "_delta_log" in p for m, p, _ in acme)
    assert all(h.get("x-ms-encryption-scope") == "acme-scope" for _, _, h in acme), acme[:3]


def test_encryption_scope_with_account_key_auth_refuses_to_start(tmp_path, azurite, container):
    scope = 'encryption = { kind = "azure-scope", scope = "acme-scope" }\n\n[stores.default]'
    config = azure_config(container, azurite.store_options()).replace("[stores.default]", scope, 1)
    with pytest.raises(ServerExited) as exited:
        Server(tmp_path, None, config=config, env=azurite.env()).start()
    assert "encryption scope needs token or SAS auth" in exited.value.output
