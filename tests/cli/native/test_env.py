"""``eval "$(batchpoint env)"``: after it, and with nothing else, unmodified code connects (``DefaultAzureCredential``,
``MLClient``, ``MLClient.from_config``), and the exported CA bundle still trusts the other roots."""

from __future__ import annotations

import contextlib
import http.server
import json
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import certifi
import pytest

from batchpoint.app.tls import ensure_certificates
from tests.azure_env import clean_environment, env_command, run_in_env
from tests.server import SUBSCRIPTION, WORKSPACE_ID, Server, batchpoint_command

CONNECT = """
import asyncio, json, os, sys, urllib.request
import requests
from azure.ai.ml import MLClient
from azure.identity import DefaultAzureCredential
from azure.identity.aio import DefaultAzureCredential as AsyncCredential

async def async_token():
    async with AsyncCredential() as credential:
        return (await credential.get_token("https://ml.azure.com/.default")).token

ml_client = MLClient(DefaultAzureCredential(), "{subscription}", "local", "default")
from_config = MLClient.from_config(DefaultAzureCredential())
print(json.dumps({{
    "workspace": ml_client.workspaces.get("default").id,
    "from_config": from_config.workspaces.get(from_config.workspace_name).id,
    "datastore": from_config.datastores.get_default().name,
    "async_token": bool(asyncio.run(async_token())),
    "requests": requests.get(sys.argv[1]).text,
    "urllib": urllib.request.urlopen(sys.argv[1]).read().decode(),
}}))
"""


@contextlib.contextmanager
def https_server_of_another_ca(folder: Path) -> Iterator[tuple[str, Path]]:
    """A local HTTPS server whose certificate another CA signed; yields its URL and that CA's certificate."""
    files = ensure_certificates(folder)

    class Hello(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # the standard library's name
            self.send_response(200)
            self.send_header("Content-Length", "5")
            self.end_headers()
            self.wfile.write(b"hello")

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(files.cert, files.key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{httpd.server_address[1]}/", files.ca_cert
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_unmodified_code_connects_with_the_environment_alone(tls_server: Server, tmp_path: Path) -> None:
    """The other CA stands for the roots a user's other HTTPS calls need (``BATCHPOINT_CA_ROOTS``: the roots the
    bundle is built from; by default those in force)."""
    script = tmp_path / "connect.py"
    script.write_text(CONNECT.format(subscription=SUBSCRIPTION))
    with https_server_of_another_ca(tmp_path / "other") as (url, other_ca):
        done = run_in_env(
            tls_server,
            [sys.executable, "connect.py", url],
            tmp_path,
            extra={"BATCHPOINT_CA_ROOTS": str(other_ca)},
            env_options=("--write-config",),
        )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {
        "workspace": WORKSPACE_ID,
        "from_config": WORKSPACE_ID,
        "datastore": "workspaceblobstore",
        "async_token": True,
        "requests": "hello",
        "urllib": "hello",
    }
    assert json.loads((tmp_path / ".azureml" / "config.json").read_text())["workspace_name"] == "default"


def test_the_bundle_is_the_server_ca_and_the_roots_in_force(tls_server: Server, tmp_path: Path) -> None:
    exports = shell_exports(env_command(tls_server), clean_environment(tmp_path))
    bundle = Path(exports["REQUESTS_CA_BUNDLE"]).read_text()
    assert exports["SSL_CERT_FILE"] == exports["REQUESTS_CA_BUNDLE"]
    assert bundle.startswith(tls_server.ca_cert.read_text().strip())
    public = Path(certifi.where()).read_text().count("BEGIN CERTIFICATE")
    assert bundle.count("BEGIN CERTIFICATE") == public + 1
    again = shell_exports(env_command(tls_server), clean_environment(tmp_path) | exports)  # made from itself
    assert Path(again["REQUESTS_CA_BUNDLE"]).read_text() == bundle


def shell_exports(command: str, environment: dict[str, str]) -> dict[str, str]:
    """What ``eval "$(command)"`` leaves in a shell's environment (the quoting included)."""
    shell = f'eval "$({command})" && env -0'
    done = subprocess.run(["bash", "-c", shell], env=environment, capture_output=True, timeout=60, check=True)
    return dict(item.split("=", 1) for item in done.stdout.decode().split("\0") if "=" in item)


def test_the_exports_name_the_server_and_clear_what_would_beat_them(tls_server: Server, tmp_path: Path) -> None:
    stale = {"AZUREML_CURRENT_CLOUD": "AzureCloud", "IDENTITY_SERVER_THUMBPRINT": "x"}
    exports = shell_exports(env_command(tls_server), clean_environment(tmp_path) | stale)
    assert exports["ARM_CLOUD_METADATA_URL"] == f"{tls_server.base_url}/metadata/endpoints?api-version=2019-05-01"
    assert exports["IDENTITY_ENDPOINT"] == f"{tls_server.base_url}/identity/oauth2/token"
    assert exports["AZURE_TOKEN_CREDENTIALS"] == "ManagedIdentityCredential" and exports["IDENTITY_HEADER"]
    assert exports["BATCHPOINT_URL"] == tls_server.base_url and exports["BATCHPOINT_HOME"] == str(tls_server.home)
    assert not set(stale) & set(exports)


@pytest.mark.parametrize("url", ["http://127.0.0.1:1"], ids=["plain-http"])
def test_refuses_a_plain_http_server(tls_server: Server, tmp_path: Path, url: str) -> None:
    command = [*batchpoint_command(), "env", "--url", url, "--home", str(tls_server.home)]
    done = subprocess.run(command, env=clean_environment(tmp_path), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "https" in done.stderr and not done.stdout


def test_write_config_keeps_a_config_of_another_workspace(tls_server: Server, tmp_path: Path) -> None:
    config = tmp_path / ".azureml" / "config.json"
    config.parent.mkdir()
    config.write_text('{"subscription_id": "s", "resource_group": "g", "workspace_name": "mine"}')
    command = [*batchpoint_command(), "env", *tls_server.cli_options(), "--write-config"]
    kept = subprocess.run(command, cwd=tmp_path, env=clean_environment(tmp_path), capture_output=True, text=True)
    assert kept.returncode == 2 and "--force" in kept.stderr and "mine" in config.read_text()
    forced = subprocess.run([*command, "--force"], cwd=tmp_path, env=clean_environment(tmp_path), capture_output=True)
    assert forced.returncode == 0 and json.loads(config.read_text())["workspace_name"] == "default"
