"""Flight SQL queries as analysts run them: ADBC dbapi and pyarrow.flight against the binary."""

import adbc_driver_flightsql.dbapi as flightsql
import adbc_driver_manager
import pyarrow as pa
import pyarrow.flight as flight
import pytest

from conftest import ACME, ADMIN, BETA, Server, bearer, snowplow_table, statement_query


def connect(server, token, tenant=None):
    kwargs = {"adbc.flight.sql.authorization_header": f"Bearer {token}"}
    if tenant:
        kwargs["adbc.flight.sql.rpc.call_header.lakeport-tenant"] = tenant
    return flightsql.connect(server.uri, db_kwargs=kwargs, autocommit=True)


def ingest(server, token, table, dataset="snowplow", tenant=None):
    with connect(server, token) as conn, conn.cursor() as cur:
        return cur.adbc_ingest(dataset, table, mode="create_append", db_schema_name=tenant)


def fetch(server, token, sql, tenant=None):
    with connect(server, token, tenant) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetch_arrow_table()


@pytest.fixture
def acme_data(server):
    ingest(server, ACME, snowplow_table(30, app="web"))
    ingest(server, ACME, snowplow_table(12, app="mobile", prefix="m"))
    ingest(server, BETA, snowplow_table(5, app="beta-app", prefix="b"))
    return server


def test_queries_see_only_the_callers_tenant(acme_data):
    counts = fetch(acme_data, ACME, "SELECT app_id, count(*) AS n FROM snowplow GROUP BY app_id ORDER BY app_id")
    assert counts.to_pylist() == [{"app_id": "mobile", "n": 12}, {"app_id": "web", "n": 30}]
    assert fetch(acme_data, BETA, "SELECT count(*) AS n FROM snowplow").to_pylist() == [{"n": 5}]
    with pytest.raises(adbc_driver_manager.Error, match="not visible"):
        fetch(acme_data, ACME, "SELECT count(*) FROM beta.snowplow")


def test_admin_sees_every_tenant_qualified_or_one_by_header(acme_data):
    sql = ("SELECT (SELECT count(*) FROM acme.snowplow) AS acme, "
           "(SELECT count(*) FROM beta.snowplow) AS beta")
    assert fetch(acme_data, ADMIN, sql).to_pylist() == [{"acme": 42, "beta": 5}]
    assert fetch(acme_data, ADMIN, "SELECT count(*) AS n FROM snowplow", tenant="beta").to_pylist() == [{"n": 5}]


def test_parameterless_prepared_statement(acme_data):
    with connect(acme_data, ACME) as conn, conn.cursor() as cur:
        parameters = cur.adbc_prepare("SELECT event_id, collector_tstamp FROM snowplow WHERE app_id = 'mobile'")
        assert parameters is None or len(parameters) == 0
        cur.execute("SELECT event_id, collector_tstamp FROM snowplow WHERE app_id = 'mobile'")
        assert [d[0] for d in cur.description] == ["event_id", "collector_tstamp"]
        assert cur.fetch_arrow_table().num_rows == 12
        # A second execution of the same statement plans afresh and sees new commits.
        ingest(acme_data, ACME, snowplow_table(3, app="mobile", prefix="n"))
        cur.execute("SELECT event_id, collector_tstamp FROM snowplow WHERE app_id = 'mobile'")
        assert cur.fetch_arrow_table().num_rows == 15


def test_get_objects_lists_the_tenants_tables(acme_data):
    with connect(acme_data, ACME) as conn:
        objects = conn.adbc_get_objects(depth="tables").read_all().to_pylist()
    assert [c["catalog_name"] for c in objects] == ["lakeport"]
    schemas = {s["db_schema_name"]: sorted(t["table_name"] for t in s["db_schema_tables"])
               for s in objects[0]["catalog_db_schemas"]}
    assert schemas == {"acme": ["snowplow"], "system": ["commits", "maintenance", "partitions", "quality", "readiness", "storage", "tables", "tenants"]}


def test_get_table_schema(acme_data):
    with connect(acme_data, ACME) as conn, conn.cursor() as cur:
        schema = conn.adbc_get_table_schema("snowplow", db_schema_filter="acme")
        cur.execute("SELECT * FROM snowplow LIMIT 0")
        assert schema.equals(cur.fetch_arrow_table().schema)
    assert schema.field("collector_tstamp").type == pa.timestamp("us", tz="UTC")
    assert schema.field("event_id").type in (pa.string(), pa.large_string(), pa.string_view())


def test_system_tables(acme_data):
    storage = fetch(acme_data, ACME, "SELECT tenant, dataset, rows, files, partitions FROM system.storage").to_pylist()
    assert len(storage) == 1
    assert storage[0]["tenant"] == "acme" and storage[0]["rows"] == 42 and storage[0]["partitions"] == 2
    partitions = fetch(acme_data, ACME, "SELECT partition, rows, min_event_time FROM system.partitions ORDER BY partition").to_pylist()
    assert [p["partition"] for p in partitions] == [
        "app_id=mobile/year=2024/month=05/day=01/hour=10", "app_id=web/year=2024/month=05/day=01/hour=10"]
    assert [p["rows"] for p in partitions] == [12, 30]
    assert str(partitions[0]["min_event_time"]).startswith("2024-05-01 10:20:30")
    commits = fetch(acme_data, ACME, "SELECT version, rows_added FROM system.commits ORDER BY version").to_pylist()
    assert sum(c["rows_added"] for c in commits) == 42
    tables = fetch(acme_data, ADMIN, "SELECT tenant, dataset, version FROM system.tables ORDER BY tenant").to_pylist()
    assert [(t["tenant"], t["dataset"]) for t in tables] == [("acme", "snowplow"), ("beta", "snowplow")]


def flight_client(server):
    return flight.FlightClient(server.uri)


def test_pyarrow_flight_get_flight_info_and_do_get(acme_data):
    client = flight_client(acme_data)
    descriptor = flight.FlightDescriptor.for_command(statement_query("SELECT count(*) AS n FROM snowplow"))
    info = client.get_flight_info(descriptor, bearer(ACME))
    assert info.schema.names == ["n"]
    # The ticket pins the table version planned against: later commits do not change it.
    ingest(acme_data, ACME, snowplow_table(8, prefix="late"))
    table = client.do_get(info.endpoints[0].ticket, bearer(ACME)).read_all()
    assert table.to_pylist() == [{"n": 42}]
    fresh = client.get_flight_info(descriptor, bearer(ACME))
    assert client.do_get(fresh.endpoints[0].ticket, bearer(ACME)).read_all().to_pylist() == [{"n": 50}]


def test_forged_and_cross_tenant_tickets_are_refused(acme_data):
    client = flight_client(acme_data)
    descriptor = flight.FlightDescriptor.for_command(statement_query("SELECT count(*) FROM snowplow"))
    ticket = client.get_flight_info(descriptor, bearer(ACME)).endpoints[0].ticket.ticket
    with pytest.raises(flight.FlightUnauthorizedError, match="not issued to you"):
        client.do_get(flight.Ticket(ticket), bearer(BETA)).read_all()
    # Rewrite the tenant inside the signed payload: the signature no longer verifies.
    forged = ticket.replace(b"tenant:acme", b"tenant:beta")
    assert forged != ticket
    with pytest.raises(flight.FlightUnauthorizedError, match="signature does not verify"):
        client.do_get(flight.Ticket(forged), bearer(BETA)).read_all()
    with pytest.raises(flight.FlightUnauthenticatedError):
        client.do_get(flight.Ticket(ticket)).read_all()


@pytest.mark.parametrize("sql, message", [
    ("CREATE TABLE t (a INT)", "read-only: CREATE TABLE"),
    ("CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '/etc/'", "read-only: CREATE EXTERNAL TABLE"),
    ("CREATE VIEW v AS SELECT 1", "read-only: CREATE VIEW"),
    ("DROP TABLE snowplow", "read-only: DROP TABLE"),
    ("INSERT INTO snowplow (event_id) VALUES ('x')", "read-only: INSERT INTO"),
    ("DELETE FROM snowplow", "read-only: DELETE"),
    ("COPY snowplow TO '/tmp/lakeport-stolen.parquet'", "read-only: COPY"),
    ("SET datafusion.execution.batch_size = 1", "SET is not supported"),
    ("SELECT * FROM '/etc/passwd'", "names a file or URL"),
    ("SELECT * FROM 'file:///etc/hosts'", "names a file or URL"),
    ("SELECT * FROM datafusion.public.x", "not visible"),
    ("SELECT * FROM nosuch", "not found"),
])
def test_refused_statements(acme_data, sql, message):
    with pytest.raises(adbc_driver_manager.Error, match=message):
        fetch(acme_data, ACME, sql)
    client = flight_client(acme_data)
    with pytest.raises(pa.ArrowException, match=message):
        client.get_flight_info(flight.FlightDescriptor.for_command(statement_query(sql)), bearer(ACME))


def test_refusal_codes(acme_data):
    client = flight_client(acme_data)

    def info(sql):
        return client.get_flight_info(flight.FlightDescriptor.for_command(statement_query(sql)), bearer(ACME))

    with pytest.raises(flight.FlightUnauthorizedError):  # PERMISSION_DENIED
        info("DROP TABLE snowplow")
    with pytest.raises(flight.FlightUnauthorizedError):
        info("SELECT * FROM '/etc/passwd'")
    with pytest.raises(pa.ArrowInvalid):  # INVALID_ARGUMENT
        info("SELEC 1")
    with pytest.raises(pa.ArrowException, match="not found"):  # NOT_FOUND
        info("SELECT * FROM otel_logs")


def test_query_over_memory_limit_fails_cleanly(tmp_path, lake):
    server = Server(tmp_path, lake, ["--query-memory-limit", "2MiB"]).start()
    try:
        ingest(server, ACME, snowplow_table(60_000))
        with pytest.raises(adbc_driver_manager.Error, match="memory limit of 2.0 MiB"):
            fetch(server, ACME, "SELECT count(*) FROM snowplow a JOIN snowplow b ON a.event_id = b.event_id")
        # The server keeps serving.
        assert fetch(server, ACME, "SELECT count(*) AS n FROM snowplow").to_pylist() == [{"n": 60_000}]
    finally:
        server.stop()


def test_sql_mistakes_are_invalid_argument_through_adbc(acme_data):
    """What a new user types first: a column that does not exist. Not INTERNAL."""
    for sql in ["SELECT nope FROM snowplow", "SELECT app_id FROM snowplow GROUP BY nope",
                "SELECT CAST(app_id AS INT) + FROM snowplow"]:
        with pytest.raises(adbc_driver_manager.ProgrammingError) as refused:
            fetch(acme_data, ACME, sql)
        assert refused.value.status_code == adbc_driver_manager.AdbcStatusCode.INVALID_ARGUMENT, sql
        assert "InvalidArgument" in str(refused.value), str(refused.value)
    with pytest.raises(adbc_driver_manager.ProgrammingError, match="nope"):
        fetch(acme_data, ACME, "SELECT nope FROM snowplow")
