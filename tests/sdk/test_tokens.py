"""Tokens with the audience each SDK call asks for: ``DefaultAzureCredential`` after ``eval "$(batchpoint env)"``
(the server's managed identity, in a Python process of its own, as a user runs one) serves azure-ai-ml's calls that
insist on the Azure ML scope, and so does the embedded issuer's credential the CLI uses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import jwt
import pytest
from azure.ai.ml import MLClient, command
from azure.ai.ml.entities import (
    CodeConfiguration,
    Model,
    UserIdentityConfiguration,
)
from azure.ai.ml.exceptions import ValidationException

from batchpoint.access.issuer import IssuerCredential, ensure_issuer
from tests.azure_env import run_in_env
from tests.sdk.mlclient import deploy_model
from tests.server import API, SUBSCRIPTION, WORKSPACE_ID, Server, batchpoint_command

AML_SCOPE_REFUSAL = "AAD token with aml scope could not be fetched"
CALLS = """
from azure.ai.ml import Input, MLClient, command
from azure.identity import DefaultAzureCredential
from azure.ai.ml.entities import UserIdentityConfiguration
from azure.core.exceptions import HttpResponseError

ml_client = MLClient(DefaultAzureCredential(), "{subscription}", "local", "default")
job = ml_client.batch_endpoints.invoke(
    endpoint_name="tokens-ep", deployment_name="main", input=Input(type="uri_folder", path={inputs!r})
)
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


def test_the_managed_identity_serves_calls_that_need_the_aml_scope(
    ml_client: MLClient, tls_server: Server, tmp_path: Path
) -> None:
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "score.py").write_text("def init():\n    pass\n\ndef run(batch):\n    return batch\n")
    (tmp_path / "inputs").mkdir()
    (tmp_path / "inputs" / "a.txt").write_text("a")
    (tmp_path / "model.bin").write_bytes(b"m")
    model = ml_client.models.create_or_update(Model(name="tokens-model", path=str(tmp_path / "model.bin")))
    code = CodeConfiguration(code=str(tmp_path / "code"), scoring_script="score.py")
    deploy_model(ml_client, "tokens-ep", "main", model, code_configuration=code)
    (tmp_path / "calls.py").write_text(CALLS.format(inputs=str(tmp_path / "inputs"), subscription=SUBSCRIPTION))

    ran = run_in_env(tls_server, [sys.executable, "calls.py"], tmp_path)

    assert ran.returncode == 0, ran.stderr[-3000:]
    assert AML_SCOPE_REFUSAL not in ran.stdout + ran.stderr
    assert "invoked " in ran.stdout and "listed 1" in ran.stdout and "job sent" in ran.stdout
