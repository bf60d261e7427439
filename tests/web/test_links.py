"""Every link to a job's page that the clients print or open leads to that page, followed as each client builds
it: the job's ``services.Studio.endpoint``, azure-ai-ml's ``studio_url`` (which appends ``&tid=<tenant>``), the
"Web View" line ``jobs.stream`` prints, the SDK's own link for a job without services (Azure's
``/runs/NAME?wsid=...``), and the page ``batchpoint job show --web`` (``az ml job show --web``) opens."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from azure.ai.ml import MLClient
from azure.ai.ml.entities._job._studio_url_from_job_id import studio_url_from_job_id

from tests.api.jobs import V
from tests.jobs.pipelines.test_pipelines import component, node, put_job, wait_for_status
from tests.sdk.mlclient import connect
from tests.server import COLD_BATCHPOINT, WORKSPACE_ID, Server

JOB = "linked-job"


@pytest.fixture(scope="module")
def ml_client(tls_server: Server) -> Iterator[MLClient]:
    with pytest.MonkeyPatch.context() as patch:
        yield connect(tls_server, patch)


@pytest.fixture(scope="module")
def job(tls_server: Server) -> str:
    """An ended pipeline job (any job has a page; this one needs no data)."""
    with tls_server.client() as client:
        hello = component(client, "linked-hello", {"type": "command", "command": "echo hello"})
        spec = {"type": "pipeline", "jobs": {"hello": node(hello)}}
        properties = {"jobType": "Pipeline", "componentId": component(client, "linked-pipeline", spec), "jobs": {}}
        assert put_job(client, JOB, properties).status_code == 201
        wait_for_status(client, f"{WORKSPACE_ID}/jobs/{JOB}", "Completed")
    return JOB


@pytest.fixture(scope="module")
def browser(tls_server: Server) -> Iterator[httpx.Client]:
    """An HTTP client signed in to the web page, as a browser is after opening a sign-in link."""
    with tls_server.client() as client:
        link = client.post(f"{tls_server.base_url}/signin/links").json()["url"]
    with tls_server.client(token=None) as signed_in:
        assert signed_in.get(link).is_redirect
        yield signed_in


def opens_the_page(browser: httpx.Client, url: str, name: str) -> None:
    page = browser.get(url)
    assert page.status_code == 200, url
    assert f"<h1>Job {name}</h1>" in page.text


def test_the_studio_endpoint_and_studio_url_open_the_job_page(
    tls_server: Server, ml_client: MLClient, job: str, browser: httpx.Client
) -> None:
    with tls_server.client() as client:
        endpoint = client.get(f"{WORKSPACE_ID}/jobs/{job}", params=V).json()["properties"]["services"]["Studio"]
    assert endpoint["endpoint"].startswith(f"{tls_server.base_url}/jobs/{job}?wsid=/subscriptions/")
    studio_url = ml_client.jobs.get(job).studio_url
    assert studio_url is not None and "&tid=" in studio_url  # azure-ai-ml appends the tenant
    without_services = studio_url_from_job_id(f"{WORKSPACE_ID}/jobs/{job}")
    assert without_services is not None and "/runs/" in without_services
    stored_before = f"{tls_server.base_url}/jobs/{job}&tid=t"  # a job's link before it had a query string
    for url in (endpoint["endpoint"], studio_url, without_services, stored_before):
        opens_the_page(browser, url, job)


def test_the_web_view_line_of_jobs_stream_opens_the_job_page(
    ml_client: MLClient, job: str, browser: httpx.Client, capsys: pytest.CaptureFixture[str]
) -> None:
    ml_client.jobs.stream(job)
    web_view = re.search(r"Web View: (\S+)", capsys.readouterr().out)
    assert web_view is not None
    opens_the_page(browser, web_view.group(1), job)


def test_job_show_web_opens_the_job_page(tls_server: Server, job: str, browser: httpx.Client, tmp_path: Path) -> None:
    opened = tmp_path / "opened.txt"
    fake_browser = tmp_path / "browser"
    fake_browser.write_text(f'#!/bin/sh\nprintf %s "$1" > {opened}\n')
    fake_browser.chmod(0o755)
    env = {**os.environ, "AZUREML_CURRENT_CLOUD": "batchpoint-elsewhere", "BROWSER": str(fake_browser)}
    command = [*COLD_BATCHPOINT, "job", "show", "-n", job, "--web", *tls_server.cli_options()]
    shown = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert shown.returncode == 0, shown.stderr
    assert "&tid=" in opened.read_text()
    opens_the_page(browser, opened.read_text(), job)
