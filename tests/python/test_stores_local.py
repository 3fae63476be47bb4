"""Placement across local stores: a table keeps the store it was created in when a later
config routes its dataset elsewhere (the server says so at startup and in system.tables),
and `[datasets.X] store = PATH` is a route of that dataset alone."""

from conftest import Server, auth_toml, put_table, snowplow_table, sql


def config(first, second, route_snowplow_to_second):
    route = '[[routes]]\ndatasets = ["snow*"]\nstore = "second"\n' if route_snowplow_to_second else ""
    return auth_toml() + f"""
[stores.default]
url = "{first}"

[stores.second]
url = "{second}"

{route}
[ingest]
commit_interval = "10ms"
"""


def test_a_table_stays_in_the_store_it_was_created_in(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    server = Server(tmp_path, None, config=config(first, second, False)).start()
    try:
        put_table(server, snowplow_table(20))
    finally:
        server.stop()

    server = Server(tmp_path, None, config=config(first, second, True)).start()
    try:
        put_table(server, snowplow_table(5, prefix="later"))
        rows = sql(server, "SELECT store, configured_store FROM system.tables WHERE dataset = 'snowplow'")
        assert rows.to_pylist() == [{"store": "default", "configured_store": "second"}]
        assert sql(server, "SELECT count(*) AS n FROM snowplow").column("n").to_pylist() == [25]
    finally:
        server.stop()
    assert "lives in another store than the routes name now" in server.log_path.read_text()
    assert not (second / "tenant_id=acme" / "snowplow").exists()
    assert (first / "tenant_id=acme" / "snowplow" / "_delta_log").is_dir()


def test_dataset_store_shorthand_routes_that_dataset_alone(tmp_path):
    lake, clicks = tmp_path / "lake", tmp_path / "clicks"
    text = auth_toml() + f"""
[datasets.snowplow]
store = "{clicks}"

[ingest]
commit_interval = "10ms"
"""
    server = Server(tmp_path, lake, config=text).start()
    try:
        put_table(server, snowplow_table(7))
        assert sql(server, "SELECT store FROM system.tables").to_pylist() == [{"store": "dataset_snowplow"}]
    finally:
        server.stop()
    assert (clicks / "tenant_id=acme" / "snowplow" / "_delta_log").is_dir()
    assert not (lake / "tenant_id=acme").exists()
