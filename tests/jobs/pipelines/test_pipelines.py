"""A pipeline deployment is checked when it provisions (every problem of its graph is named in the failure), and
its jobs resume from their finished steps after a crash of the server."""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from batchpoint.app.sandboxing import TEST_READ_WRITE_VARIABLE
from tests.api.arm import create_endpoint, deployment_body, deployment_url, wait_for_operation
from tests.server import API, WORKSPACE_ID, Server

V = {"api-version": API}
COMMAND = {
    "type": "command",
    "command": "echo ${{inputs.x}} > ${{outputs.y}}/out.txt",
    "inputs": {"x": {"type": "string"}},
    "outputs": {"y": {"type": "uri_folder"}},
}


def component(client: httpx.Client, name: str, spec: dict[str, Any]) -> str:
    component_id = f"{WORKSPACE_ID}/components/{name}/versions/1"
    response = client.put(component_id, params=V, json={"properties": {"componentSpec": spec}})
    assert response.status_code in (200, 201), response.text
    return component_id


def node(component_id: str, **inputs: str) -> dict[str, Any]:
    return {
        "type": "command",
        "componentId": component_id,
        "inputs": {key: {"job_input_type": "literal", "value": value} for key, value in inputs.items()},
    }


@contextlib.contextmanager
def server_reaching(folder: Path) -> Iterator[Server]:
    """A server of the test's own whose steps may read and write ``folder`` (test-only: the files a step shares with
    the test are outside its job), stopped at the end if it still runs."""
    server = Server(home=folder / "home", env={TEST_READ_WRITE_VARIABLE: str(folder)}).start()
    try:
        yield server
    finally:
        if server.process is not None and server.process.poll() is None:
            server.stop()


def invoke_pipeline(client: httpx.Client, endpoint: str, jobs: dict[str, Any]) -> str:
    """Endpoint ``endpoint`` with deployment ``main`` of a pipeline of ``jobs`` (which write its output ``result``),
    provisioned and invoked; the job's name."""
    spec = {"type": "pipeline", "outputs": {"result": {"type": "uri_folder"}}, "jobs": jobs}
    assert provision(client, endpoint, component(client, endpoint, spec))["status"] == "Succeeded"
    scoring = client.get(f"{WORKSPACE_ID}/batchEndpoints/{endpoint}", params=V).json()["properties"]["scoringUri"]
    return client.post(scoring, json={"properties": {}}, headers={"azureml-model-deployment": "main"}).json()["name"]


def provision(client: httpx.Client, endpoint: str, component_id: str) -> dict[str, Any]:
    create_endpoint(client, endpoint)
    configuration = {
        "deploymentConfigurationType": "PipelineComponent",
        "componentId": {"referenceType": "Id", "assetId": component_id},
    }
    response = client.put(
        deployment_url(endpoint, "main"), params=V, json=deployment_body(deploymentConfiguration=configuration)
    )
    assert response.status_code in (200, 201), response.text
    return wait_for_operation(client, response).json()


@pytest.fixture(scope="module")
def client(server: Server) -> httpx.Client:
    with server.client() as opened:
        component(opened, "echo", COMMAND)
        yield opened


def test_cycles_unbound_inputs_and_unknown_references_are_named(client: httpx.Client) -> None:
    echo = f"{WORKSPACE_ID}/components/echo/versions/1"
    spec = {
        "type": "pipeline",
        "inputs": {"word": {"type": "string"}},
        "jobs": {
            "a": node(echo, x="${{parent.jobs.b.outputs.y}}"),
            "b": node(echo, x="${{parent.jobs.a.outputs.y}}"),
            "c": node(echo),
            "d": node(f"{WORKSPACE_ID}/components/missing/versions/1"),
            "e": node(echo, x="${{parent.inputs.colour}}"),
        },
    }
    status = provision(client, "graph-bad", component(client, "bad-graph", spec))
    assert status["status"] == "Failed"
    message = status["error"]["message"]
    assert "step 'c' input 'x' is not bound" in message
    assert "step 'd' references the component" in message and "missing" in message
    assert "pipeline input 'colour', which does not exist" in message


def test_a_cycle_is_named_with_its_steps(client: httpx.Client) -> None:
    echo = f"{WORKSPACE_ID}/components/echo/versions/1"
    spec = {
        "type": "pipeline",
        "jobs": {"a": node(echo, x="${{parent.jobs.b.outputs.y}}"), "b": node(echo, x="${{parent.jobs.a.outputs.y}}")},
    }
    status = provision(client, "graph-cycle", component(client, "cycle", spec))
    assert status["status"] == "Failed"
    assert "cycle: a -> b -> a" in status["error"]["message"]


def test_steps_may_name_their_component_in_every_reference_form(client: httpx.Client) -> None:
    echo = f"{WORKSPACE_ID}/components/echo/versions/1"
    jobs = {
        "plain": node(echo, x="a"),
        "prefixed": node(f"azureml:{echo}", x="b"),
        "short": node("azureml:echo:1", x="c"),
    }
    status = provision(client, "graph-references", component(client, "references", {"type": "pipeline", "jobs": jobs}))
    assert status["status"] == "Succeeded", status


def test_a_malformed_pipeline_component_is_named_as_such(client: httpx.Client) -> None:
    echo = f"{WORKSPACE_ID}/components/echo/versions/1"
    spec = {"type": "pipeline", "inputs": ["x"], "jobs": {"a": "step", "b": {**node(echo, x="1"), "outputs": [1]}}}
    status = provision(client, "graph-malformed", component(client, "malformed", spec))
    assert status["status"] == "Failed"
    message = status["error"]["message"]
    assert "step 'a' must be an object" in message and "step 'b' outputs must be an object" in message
    assert "pipeline inputs must be an object" in message


def test_a_command_component_is_not_a_pipeline(client: httpx.Client) -> None:
    status = provision(client, "graph-command", f"{WORKSPACE_ID}/components/echo/versions/1")
    assert status["status"] == "Failed"
    assert "needs a pipeline component" in status["error"]["message"]


def test_a_pipeline_job_resumes_after_kill_9_from_its_finished_steps(tmp_path: Path) -> None:
    """The first step counts its runs in a file; the second waits for a flag; the server is killed meanwhile."""
    flag, runs = tmp_path / "go", tmp_path / "runs.txt"
    first = {
        "type": "command",
        "command": f"echo run >> {runs} && echo done > ${{{{outputs.y}}}}/first.txt",
        "outputs": {"y": {"type": "uri_folder"}},
    }
    second = {
        "type": "command",
        "command": f"while [ ! -e {flag} ]; do sleep 0.05; done; cp ${{{{inputs.x}}}}/first.txt ${{{{outputs.z}}}}/",
        "inputs": {"x": {"type": "uri_folder"}},
        "outputs": {"z": {"type": "uri_folder"}},
    }
    with server_reaching(tmp_path) as server:
        with server.client() as client:
            jobs = {
                "first": {**node(component(client, "first", first)), "outputs": {}},
                "second": {
                    **node(component(client, "second", second), x="${{parent.jobs.first.outputs.y}}"),
                    "outputs": {"z": {"value": "${{parent.outputs.result}}", "type": "literal"}},
                },
            }
            name = invoke_pipeline(client, "durable-pipe", jobs)
            wait_for_status(client, f"{WORKSPACE_ID}/jobs/{name}-second", "Running")
        server.stop(signal.SIGKILL)
        flag.touch()
        server.start()
        with server.client() as client:
            job = wait_for_status(client, f"{WORKSPACE_ID}/jobs/{name}", "Completed")
    assert runs.read_text().splitlines() == ["run"], "the finished step must not run again"
    assert job["properties"]["outputs"]["result"]["uri"].endswith(f"azureml/{name}/result/")
    outputs = list((tmp_path / "home" / "storage").glob(f"*/azureml-blobstore-*/azureml/{name}/result/first.txt"))
    assert len(outputs) == 1 and outputs[0].read_text() == "done\n"


def wait_for_status(client: httpx.Client, job_id: str, status: str, timeout: float = 60) -> dict[str, Any]:
    """The job once its status is `status`; polled every 0.05 s at first, every 0.3 s after about 1.5 s."""
    deadline = time.monotonic() + timeout
    pause = 0.05
    while time.monotonic() < deadline:
        job = client.get(job_id, params=V).json()
        if job["properties"]["status"] == status:
            return job
        time.sleep(pause)
        pause = min(pause * 1.2, 0.3)
    raise AssertionError(f"{job_id} did not reach {status}: {job['properties']['status']}")


def put_job(client: httpx.Client, name: str, properties: dict[str, Any]) -> httpx.Response:
    return client.put(f"{WORKSPACE_ID}/jobs/{name}", params=V, json={"properties": properties})


def test_a_pipeline_job_naming_a_pipeline_component_runs_it_with_the_jobs_inputs(client: httpx.Client) -> None:
    """`az ml job create -f job.yml` with `component: pipeline.yml` sends the component's id and no steps."""
    echo = f"{WORKSPACE_ID}/components/echo/versions/1"
    spec = {
        "type": "pipeline",
        "inputs": {"word": {"type": "string", "default": "unused"}},
        "outputs": {"said": {"type": "uri_folder"}},
        "jobs": {
            "say": {**node(echo, x="${{parent.inputs.word}}"), "outputs": {"y": {"value": "${{parent.outputs.said}}"}}}
        },
    }
    properties = {
        "jobType": "Pipeline",
        "componentId": component(client, "say-word", spec),
        "jobs": {},
        "inputs": {"word": {"jobInputType": "literal", "value": "hello"}},
        "outputs": {"said": {"jobOutputType": "uri_folder"}},
    }
    response = put_job(client, "said-hello", properties)
    assert response.status_code == 201, response.text
    assert response.json()["properties"]["experimentName"] == "Default"
    job = wait_for_status(client, f"{WORKSPACE_ID}/jobs/said-hello", "Completed")
    assert job["properties"]["outputs"]["said"]["uri"].endswith("azureml/said-hello/said/")
    assert client.get(f"{WORKSPACE_ID}/jobs/said-hello-say", params=V).json()["properties"]["status"] == "Completed"


def test_a_pipeline_job_is_checked_before_it_is_accepted(client: httpx.Client) -> None:
    missing = f"{WORKSPACE_ID}/components/missing/versions/1"
    response = put_job(client, "bad-steps", {"jobType": "Pipeline", "jobs": {"a": node(missing)}})
    assert response.status_code == 400
    assert "The pipeline job 'bad-steps' is not valid" in response.json()["error"]["message"]
    assert "step 'a' references the component" in response.json()["error"]["message"]
    assert client.get(f"{WORKSPACE_ID}/jobs/bad-steps", params=V).status_code == 404

    for malformed in (
        {"jobs": [1]},
        {"jobs": {"a": "x"}},
        {"jobs": {"a": {"componentId": "azureml:echo:1", "inputs": [1]}}},
        {"componentId": "azureml:echo:1", "outputs": {"o": {"uri": 5}}},
        {"settings": "s", "jobs": {}},
    ):
        response = put_job(client, "malformed", {"jobType": "Pipeline", **malformed})
        assert response.status_code == 400, (malformed, response.text)
    elsewhere = client.put(
        WORKSPACE_ID.replace("/default", "/nowhere") + "/jobs/lost",
        params=V,
        json={"properties": {"jobType": "Pipeline", "jobs": {}}},
    )
    assert elsewhere.status_code == 404 and "nowhere" in elsewhere.json()["error"]["message"]
    to_nowhere = {
        **node(f"{WORKSPACE_ID}/components/echo/versions/1", x="1"),
        "outputs": {"y": "${{parent.outputs.z}}"},
    }
    response = put_job(client, "to-nowhere", {"jobType": "Pipeline", "jobs": {"a": to_nowhere}})
    assert response.status_code == 400  # not a 500: the job declares no output 'z'
    assert "output 'y' is bound to the pipeline output 'z', which does not exist" in response.json()["error"]["message"]
    response = put_job(client, "a-command", {"jobType": "Command", "command": "echo hi"})
    assert response.status_code == 400 and "'Command' job cannot be submitted" in response.json()["error"]["message"]

    echo = f"{WORKSPACE_ID}/components/echo/versions/1"
    assert put_job(client, "twice", {"jobType": "Pipeline", "jobs": {"a": node(echo, x="1")}}).status_code == 201
    again = put_job(client, "twice", {"jobType": "Pipeline", "jobs": {"a": node(echo, x="1")}})
    assert again.status_code == 409 and "already exists" in again.json()["error"]["message"]


def test_a_component_from_a_job_that_does_not_exist_is_refused(client: httpx.Client) -> None:
    spec = {"type": "pipeline", "jobs": {}, "sourceJobId": "azureml:no-such-job"}
    response = client.put(
        f"{WORKSPACE_ID}/components/azureml_anonymous/versions/1",
        params=V,
        json={"properties": {"componentSpec": spec, "isAnonymous": True}},
    )
    assert response.status_code == 400
    assert "'azureml:no-such-job' does not exist or is not a pipeline job" in response.json()["error"]["message"]
