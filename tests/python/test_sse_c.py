"""SSE-C for real, against Garage (which enforces it): every object written for a tenant
with a customer key cannot be read without that key and can with it; lakeport reads its
own tables back with the key; the key never appears in the server's output."""

import base64
import secrets

import botocore.exceptions
import pytest

from conftest import Server, auth_toml, put_table, snowplow_table, sql, toml_table


def test_objects_of_an_sse_c_tenant_need_its_key(tmp_path, garage, unique):
    bucket = garage.bucket(unique("ssec"))
    key = secrets.token_bytes(32)
    key_file = tmp_path / "acme.key"
    key_file.write_text(base64.b64encode(key).decode() + "\n")
    config = auth_toml(acme=f'encryption = {{ kind = "sse-c", key_file = "{key_file}" }}') + f"""
[stores.default]
url = "s3://{bucket}/lake"
options = {toml_table(garage.store_options())}
single_writer = true

[ingest]
commit_interval = "10ms"
"""
    server = Server(tmp_path, None, config=config, extra_args=["--table-idle-timeout", "50ms"]).start()
    try:
        acks = put_table(server, snowplow_table(400), producer="ssec", chunk=100)
        assert sum(a["rows_committed"] for a in acks) == 400
        assert sql(server, "SELECT count(*) AS n FROM snowplow").column("n").to_pylist() == [400]
    finally:
        server.stop()
    output = server.log_path.read_text()
    assert base64.b64encode(key).decode() not in output

    s3 = garage.client()
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="lake/tenant_id=acme/").get("Contents", [])]
    assert any(k.endswith(".parquet") for k in keys) and any("_delta_log/" in k for k in keys)
    for k in keys:
        with pytest.raises(botocore.exceptions.ClientError) as refused:
            s3.get_object(Bucket=bucket, Key=k)
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400, k
        body = s3.get_object(Bucket=bucket, Key=k, SSECustomerAlgorithm="AES256", SSECustomerKey=key)["Body"].read()
        assert len(body) > 0
