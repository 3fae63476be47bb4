"""Real storage servers on loopback for the object-store tests: moto (S3), Azurite (Azure
Blob), Garage (S3 that enforces SSE-C), a fault-injecting proxy, and a GCS request recorder.
Each is started by a session fixture in conftest and skipped nowhere: tests/run installs them."""

import http.server
import os
import pathlib
import shutil
import socket
import socketserver
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port} within {timeout} s")


def read_body(handler) -> bytes:
    """The request body, whether sent with Content-Length or chunked."""
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        body = bytearray()
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip(), 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return bytes(body)
            body += handler.rfile.read(size)
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""


class _ThreadingServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def serve(handler):
    """Serves `handler` on a free loopback port in a daemon thread; returns (server, port)."""
    server = _ThreadingServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


class Moto:
    """A moto S3 server (conditional put is atomic there; SSE headers are recorded)."""

    def __init__(self, workdir: pathlib.Path):
        self.port = free_port()
        log = open(workdir / "moto.log", "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=log, stderr=subprocess.STDOUT)
        wait_for_port(self.port, self.proc, "moto")
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def client(self):
        import boto3
        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="test", aws_secret_access_key="test")

    def bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list:
        s3 = self.client()
        out, token = [], None
        while True:
            kwargs = {"Bucket": bucket, "Prefix": prefix}
            if token:
                kwargs["ContinuationToken"] = token
            page = s3.list_objects_v2(**kwargs)
            out.extend(o["Key"] for o in page.get("Contents", []))
            token = page.get("NextContinuationToken")
            if not token:
                return out

    def store_options(self, endpoint=None) -> dict:
        return {
            "aws_endpoint": endpoint or self.endpoint,
            "aws_allow_http": "true",
            "aws_access_key_id": "test",
            "aws_secret_access_key": "test",
            "aws_region": "us-east-1",
        }

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


def azurite_binary() -> str:
    found = os.environ.get("AZURITE_BLOB_BIN") or shutil.which("azurite-blob")
    if not found:
        raise RuntimeError("azurite-blob not found: tests/run installs it and sets AZURITE_BLOB_BIN")
    return found


# Azurite's well-known development account.
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


class Azurite:
    def __init__(self, workdir: pathlib.Path):
        self.port = free_port()
        data = workdir / "azurite"
        data.mkdir(exist_ok=True)
        log = open(workdir / "azurite.log", "w")
        self.proc = subprocess.Popen(
            [azurite_binary(), "--blobHost", "127.0.0.1", "--blobPort", str(self.port),
             "--location", str(data), "--skipApiVersionCheck", "--loose", "--disableTelemetry"],
            stdout=log, stderr=subprocess.STDOUT)
        wait_for_port(self.port, self.proc, "azurite")
        self.url = f"http://127.0.0.1:{self.port}"

    def env(self) -> dict:
        return {"AZURITE_BLOB_STORAGE_URL": self.url}

    def store_options(self) -> dict:
        return {"azure_storage_use_emulator": "true"}

    def container(self, name: str) -> str:
        from azure.storage.blob import BlobServiceClient
        self.service().create_container(name)
        return name

    def service(self):
        from azure.storage.blob import BlobServiceClient
        conn = (f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
                f"BlobEndpoint={self.url}/{AZURITE_ACCOUNT};")
        return BlobServiceClient.from_connection_string(conn)

    def sas(self) -> str:
        """An account SAS (read, write, list, delete) for token-style auth, valid one hour."""
        import datetime
        from azure.storage.blob import AccountSasPermissions, ResourceTypes, generate_account_sas
        return generate_account_sas(
            AZURITE_ACCOUNT, AZURITE_KEY,
            resource_types=ResourceTypes(service=True, container=True, object=True),
            permission=AccountSasPermissions(read=True, write=True, delete=True, list=True, add=True, create=True),
            expiry=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1))

    def blobs(self, container: str, prefix: str = "") -> list:
        return [b.name for b in self.service().get_container_client(container).list_blobs(name_starts_with=prefix)]

    def deltalake_options(self) -> dict:
        return {"azure_storage_account_name": AZURITE_ACCOUNT, "azure_storage_account_key": AZURITE_KEY,
                "azure_storage_endpoint": f"{self.url}/{AZURITE_ACCOUNT}", "allow_http": "true"}

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


class FaultProxy:
    """An HTTP proxy on loopback in front of a store that records every request and
    misbehaves on chosen ones.

    `fail(kind, match)`: kind is "503", "stall" (hold the request past the client's
    timeout) or "drop" (close the connection without answering); match(method, path)
    picks the requests. `heal()` forwards everything again."""

    def __init__(self, upstream_port: int):
        self.upstream = upstream_port
        self.rule = None
        self.hits = 0
        self.requests = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def handle_one(self):
                body = read_body(self)
                proxy.requests.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))
                rule = proxy.rule
                if rule and rule[1](self.command, self.path):
                    proxy.hits += 1
                    kind = rule[0]
                    if kind == "503":
                        payload = b"<Error><Code>SlowDown</Code><Message>injected</Message></Error>"
                        self.send_response(503)
                        self.send_header("Content-Length", str(len(payload)))
                        self.end_headers()
                        self.wfile.write(payload)
                        return
                    if kind == "stall":
                        time.sleep(rule[2])
                        self.close_connection = True
                        return
                    if kind == "drop":
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
                status, headers, payload = proxy.forward(self, body)
                self.send_response(status)
                upstream_length = None
                for k, v in headers:
                    if k.lower() == "content-length":
                        upstream_length = v
                    elif k.lower() not in ("transfer-encoding", "connection"):
                        self.send_header(k, v)
                # A HEAD answer has no body but keeps the object's length.
                length = upstream_length if self.command == "HEAD" else str(len(payload))
                self.send_header("Content-Length", length or "0")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_one

        self.server, self.port = serve(Handler)
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def forward(self, handler, body):
        """Sends the request upstream with exactly the client's headers (signatures cover
        some of them), the body re-framed with a Content-Length."""
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.upstream, timeout=60)
        try:
            conn.putrequest(handler.command, handler.path, skip_host=True, skip_accept_encoding=True)
            for k, v in handler.headers.items():
                if k.lower() not in ("content-length", "transfer-encoding"):
                    conn.putheader(k, v)
            if body or handler.headers.get("Content-Length") is not None \
                    or handler.headers.get("Transfer-Encoding"):
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body or None)
            resp = conn.getresponse()
            payload = resp.read()
            return resp.status, resp.getheaders(), payload
        finally:
            conn.close()

    def fail(self, kind, match, stall_seconds=5.0):
        self.hits = 0
        self.rule = (kind, match, stall_seconds)

    def heal(self):
        self.rule = None

    def stop(self):
        self.server.shutdown()


class GcsRecorder:
    """A loopback stand-in for the GCS XML API that object_store speaks: objects kept in
    memory (PUT with x-goog-if-generation-match: 0, GET with ranges, HEAD, DELETE, list-type=2
    listings), every request recorded with its headers. No GCS emulator installable here
    speaks this API; this is enough to check placement and the headers lakeport sends."""

    def __init__(self):
        self.requests = []
        self.objects = {}
        self.lock = threading.Lock()
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def reply(self, status, payload=b"", headers=None):
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            def handle_one(self):
                body = read_body(self)
                recorder.requests.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))
                url = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qs(url.query)
                _, bucket, *rest = url.path.split("/", 2) + [""]
                key = urllib.parse.unquote(rest[0]) if rest else ""
                with recorder.lock:
                    if self.command == "GET" and query.get("list-type") == ["2"]:
                        return self.reply(200, recorder.listing(query), {"Content-Type": "application/xml"})
                    if self.command == "PUT":
                        if self.headers.get("x-goog-if-generation-match") == "0" and key in recorder.objects:
                            return self.reply(412)
                        recorder.objects[key] = body
                        return self.reply(200, b"", {"ETag": f'"{len(recorder.objects)}"'})
                    if self.command == "DELETE":
                        recorder.objects.pop(key, None)
                        return self.reply(204)
                    data = recorder.objects.get(key)
                    if data is None:
                        return self.reply(404)
                    headers = {"ETag": '"1"', "Last-Modified": "Tue, 24 Nov 2026 10:00:00 GMT",
                               "Content-Type": "application/octet-stream"}
                    wanted = self.headers.get("Range")
                    if self.command == "GET" and wanted:
                        start, end = wanted.removeprefix("bytes=").split("-")
                        if start == "":
                            start, end = len(data) - int(end), len(data) - 1
                        else:
                            start, end = int(start), int(end) if end else len(data) - 1
                        end = min(end, len(data) - 1)
                        headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
                        return self.reply(206, data[start:end + 1], headers)
                    if self.command == "HEAD":
                        self.send_response(200)
                        for k, v in headers.items():
                            self.send_header(k, v)
                        self.send_header("Content-Length", str(len(data)))
                        self.end_headers()
                        return
                    return self.reply(200, data, headers)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_one

        self.server, self.port = serve(Handler)
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def listing(self, query):
        from xml.sax.saxutils import escape
        prefix = query.get("prefix", [""])[0]
        delimiter = query.get("delimiter", [None])[0]
        contents, prefixes = [], set()
        for key in sorted(self.objects):
            if not key.startswith(prefix):
                continue
            rest = key[len(prefix):]
            if delimiter and delimiter in rest:
                prefixes.add(prefix + rest.split(delimiter)[0] + delimiter)
                continue
            contents.append(f"<Contents><Key>{escape(key)}</Key><Size>{len(self.objects[key])}</Size>"
                            "<LastModified>2026-11-24T10:00:00.000Z</LastModified><ETag>\"1\"</ETag></Contents>")
        common = "".join(f"<CommonPrefixes><Prefix>{escape(p)}</Prefix></CommonPrefixes>" for p in sorted(prefixes))
        return ('<?xml version="1.0" encoding="UTF-8"?><ListBucketResult>'
                f"<Prefix>{escape(prefix)}</Prefix><KeyCount>{len(contents)}</KeyCount>"
                f"<IsTruncated>false</IsTruncated>{''.join(contents)}{common}</ListBucketResult>").encode()

    def service_account_key(self) -> str:
        """The key JSON object_store reads: its base URL pointed here, OAuth off."""
        import json
        return json.dumps({"gcs_base_url": self.endpoint, "disable_oauth": True, "client_email": "",
                           "private_key": "", "private_key_id": ""})

    def stop(self):
        self.server.shutdown()


class Garage:
    """A single-node Garage S3 server: it enforces SSE-C (moto ignores it) but has no
    conditional put, so lakeport runs one writer against it (`single_writer = true`)."""

    def __init__(self, workdir: pathlib.Path):
        import re
        import secrets
        self.binary = os.environ.get("GARAGE_BIN") or shutil.which("garage")
        if not self.binary:
            raise RuntimeError("garage not found: tests/run installs it and sets GARAGE_BIN")
        rpc, s3, admin = free_port(), free_port(), free_port()
        self.config = workdir / "garage.toml"
        self.config.write_text(f"""
metadata_dir = "{workdir / 'meta'}"
data_dir = "{workdir / 'data'}"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:{rpc}"
rpc_public_addr = "127.0.0.1:{rpc}"
rpc_secret = "{secrets.token_hex(32)}"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:{s3}"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:{admin}"
""")
        log = open(workdir / "garage.log", "w")
        self.proc = subprocess.Popen([self.binary, "-c", str(self.config), "server"],
                                     stdout=log, stderr=subprocess.STDOUT)
        wait_for_port(s3, self.proc, "garage")
        self.endpoint = f"http://127.0.0.1:{s3}"
        node = self._retry(lambda: self.cli("node", "id", "-q")).strip().split("@")[0]
        self.cli("layout", "assign", "-z", "dc1", "-c", "1G", node)
        self.cli("layout", "apply", "--version", "1")
        out = self.cli("key", "create", "lakeport")
        self.key_id = re.search(r"Key ID:\s*(\S+)", out).group(1)
        self.secret = re.search(r"Secret key:\s*(\S+)", out).group(1)

    def _retry(self, action, attempts=100):
        for _ in range(attempts - 1):
            try:
                return action()
            except subprocess.CalledProcessError:
                time.sleep(0.1)
        return action()

    def cli(self, *args) -> str:
        return subprocess.run([self.binary, "-c", str(self.config), *args], check=True,
                              capture_output=True, text=True).stdout

    def bucket(self, name: str) -> str:
        self.cli("bucket", "create", name)
        self.cli("bucket", "allow", "--read", "--write", "--owner", name, "--key", "lakeport")
        return name

    def client(self):
        import boto3
        return boto3.client("s3", endpoint_url=self.endpoint, region_name="garage",
                            aws_access_key_id=self.key_id, aws_secret_access_key=self.secret)

    def store_options(self) -> dict:
        return {"aws_endpoint": self.endpoint, "aws_allow_http": "true", "aws_access_key_id": self.key_id,
                "aws_secret_access_key": self.secret, "aws_region": "garage"}

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
