"""Tokens with the audience each SDK call asks for: the credential the server's banner prints (pasted into a
Python process of its own, as a user does) serves azure-ai-ml's calls that insist on the Azure ML scope."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import jwt
import pytest
from azure.ai.ml import MLClient, command
from azure.ai.ml.entities import (
    BatchEndpoint,
    CodeConfiguration,
    Model,
    ModelBatchDeployment,
    UserIdentityConfiguration,
)
from azure.ai.ml.exceptions import ValidationException

from batchpoint.access.issuer import IssuerCredential, ensure_issuer
from tests.server import API, WORKSPACE_ID, Server, batchpoint_command

AML_SCOPE_REFUSAL = "AAD token with aml scope could not be fetched"
CALLS = """
from azure.ai.ml import Input, command
from azure.ai.ml.entities import UserIdentityConfiguration
from azure.core.exceptions import HttpResponseError

job = ml_client.batch_endpoints.invoke(endpoint_name="tokens-ep", deployment_name="main", input=Input(type="uri_folder", path={inputs!r}))
print("invoked", job.name)
print("listed", len(list(ml_client.batch_endpoints.list_jobs(endpoint_name="tokens-ep"))))
user_job = command(command="echo hi", environment="azureml:tokens-env:1", identity=UserIdentityConfiguration())
try:
    ml_client.jobs.create_or_update(user_job)
    print("job sent")
except HttpResponseError as error:
    print("job sent, the server answered", error.status_code)
"""


@pytest.fixture(scope="module")
def ml_client(ml_client_with_cluster: MLClient) -> MLClient:
    return ml_client_with_cluster


def banner_snippet(server: Server) -> str:
    log = (server.home / f"server-{server.port}.log").read_text()
    snippet = log.split("Connect the official clients (paste into Python):\n", 1)[1]
    return snippet.split("# The management client:", 1)[0]


def batchpoint_on_path(folder: Path) -> dict[str, str]:
    """A fresh process's variables, with a `batchpoint` command for the snippet to run: this checkout's, forked
    warm (the test process's MLClient set AZUREML_CURRENT_CLOUD, which a user's has not)."""
    folder.mkdir()
    shim = folder / "batchpoint"
    shim.write_text(f'#!/bin/sh\nexec {shlex.join(batchpoint_command())} "$@"\n')
    shim.chmod(0o755)
    variables = {name: value for name, value in os.environ.items() if name != "AZUREML_CURRENT_CLOUD"}
    return {**variables, "PATH": f"{folder}{os.pathsep}{os.environ['PATH']}"}


def user_identity_job() -> object:
    return command(command="echo hi", environment="azureml:tokens-env:1", identity=UserIdentityConfiguration())


def test_each_scope_gets_its_own_audience(tls_server: Server) -> None:
    credential = IssuerCredential(ensure_issuer(tls_server.home))
    for scope, audience in (
        (f"{tls_server.base_url}/.default", tls_server.base_url),
        ("https://management.azure.com//.default", "https://management.azure.com/"),
        ("https://ml.azure.com/.default", "https://ml.azure.com"),
    ):
        claims = jwt.decode(credential.get_token(scope).token, options={"verify_signature": False})
        assert claims["aud"] == audience


def test_the_token_command_takes_scopes_as_the_sdks_ask_for_them(tls_server: Server) -> None:
    command = [*batchpoint_command(), "token", "--home", str(tls_server.home)]
    scopes = ["--audience", f"{tls_server.base_url}/.default", "--audience", "https://ml.azure.com/.default"]
    token = subprocess.run([*command, *scopes], capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    assert jwt.decode(token, options={"verify_signature": False})["aud"] == [
        tls_server.base_url,
        "https://ml.azure.com",
    ]
    with tls_server.client(token=token) as client:
        assert client.get(WORKSPACE_ID, params={"api-version": API}).status_code == 200


def test_a_fixed_default_audience_token_is_refused_by_the_sdk_for_the_aml_scope(ml_client: MLClient) -> None:
    with pytest.raises(ValidationException, match=AML_SCOPE_REFUSAL):
        ml_client.jobs.create_or_update(user_identity_job())


def test_the_banner_credential_serves_calls_that_need_the_aml_scope(
    ml_client: MLClient, tls_server: Server, tmp_path: Path
) -> None:
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "score.py").write_text("def init():\n    pass\n\ndef run(batch):\n    return batch\n")
    (tmp_path / "inputs").mkdir()
    (tmp_path / "inputs" / "a.txt").write_text("a")
    (tmp_path / "model.bin").write_bytes(b"m")
    model = ml_client.models.create_or_update(Model(name="tokens-model", path=str(tmp_path / "model.bin")))
    ml_client.batch_endpoints.begin_create_or_update(BatchEndpoint(name="tokens-ep")).result()
    deployment = ModelBatchDeployment(
        name="main",
        endpoint_name="tokens-ep",
        model=model,
        compute="cpu-cluster",
        code_configuration=CodeConfiguration(code=str(tmp_path / "code"), scoring_script="score.py"),
    )
    ml_client.batch_deployments.begin_create_or_update(deployment).result()
    script = banner_snippet(tls_server) + CALLS.format(inputs=str(tmp_path / "inputs"))

    ran = subprocess.run(
        [sys.executable, "-c", script],
        env=batchpoint_on_path(tmp_path / "bin"),
        capture_output=True,
        text=True,
        timeout=240,
    )

    assert ran.returncode == 0, ran.stderr[-3000:]
    assert AML_SCOPE_REFUSAL not in ran.stdout + ran.stderr
    assert "invoked " in ran.stdout and "listed 1" in ran.stdout and "job sent" in ran.stdout
