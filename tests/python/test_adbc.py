"""ADBC Flight SQL driver as a producer: adbc_ingest with create/append semantics."""

import adbc_driver_flightsql.dbapi as flightsql
import adbc_driver_manager
import pytest
from deltalake import DeltaTable

from conftest import ACME, ADMIN, CONFIG, Server, snowplow_table


def connect_basic(server, user, password):
    return flightsql.connect(server.uri, db_kwargs={"username": user, "password": password})


def connect_bearer(server, token):
    return flightsql.connect(
        server.uri, db_kwargs={"adbc.flight.sql.authorization_header": f"Bearer {token}"})


def test_adbc_ingest_create_then_append(server, lake):
    with connect_basic(server, "acme", ACME) as conn, conn.cursor() as cur:
        assert cur.adbc_ingest("snowplow", snowplow_table(25), mode="create") == 25
        assert cur.adbc_ingest("snowplow", snowplow_table(5, prefix="x"), mode="append") == 5
        with pytest.raises(adbc_driver_manager.Error, match="already exists"):
            cur.adbc_ingest("snowplow", snowplow_table(1), mode="create")
        with pytest.raises(adbc_driver_manager.Error, match="never drops"):
            cur.adbc_ingest("snowplow", snowplow_table(1), mode="replace")
    assert DeltaTable(str(lake / "tenant_id=acme" / "snowplow")).to_pyarrow_table().num_rows == 30


def test_adbc_admin_names_tenant_with_db_schema(tmp_path, lake):
    # globex is in no config: auto_provision creates it on the admin's first write.
    server = Server(tmp_path, lake, config="auto_provision = true\n" + CONFIG).start()
    try:
        with connect_bearer(server, ADMIN) as conn, conn.cursor() as cur:
            cur.adbc_ingest("snowplow", snowplow_table(7), mode="create_append", db_schema_name="globex")
    finally:
        server.stop()
    assert DeltaTable(str(lake / "tenant_id=globex" / "snowplow")).to_pyarrow_table().num_rows == 7


def test_adbc_append_to_missing_table_is_not_found(server):
    with connect_bearer(server, ACME) as conn, conn.cursor() as cur:
        with pytest.raises(adbc_driver_manager.Error, match="does not exist"):
            cur.adbc_ingest("otel_logs", snowplow_table(1), mode="append")
