"""Invoking batch endpoints over HTTP: routing, repeatability, outputs, failures and cancellation."""

from __future__ import annotations

import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import psutil
import pytest

from tests.api.jobs import V, deploy_script, invoke, predictions, status_of, wait_for_job, write_inputs
from tests.cluster.replicas import wait_until
from tests.server import WORKSPACE_ID, Server

ECHO = """
import os

def init():
    global greeting
    greeting = "seen"

def run(mini_batch):
    return [f"{greeting} {os.path.basename(path)}" for path in mini_batch]
"""
FAIL_ON_SEVEN = """
import os

def init():
    pass

def run(mini_batch):
    if any(path.endswith("f00007.txt") for path in mini_batch):
        raise ValueError("cannot score file seven")
    return [os.path.basename(path) for path in mini_batch]
"""
HANG = """
import time

def init():
    pass

def run(mini_batch):
    time.sleep(60)
    return mini_batch
"""


@pytest.fixture(scope="module")
def data_root(local_data: Path) -> Path:
    return Path(tempfile.mkdtemp(dir=local_data))


@pytest.fixture(scope="module")
def job_server(server: Server, data_root: Path) -> Server:
    with server.client() as client:
        deploy_script(client, data_root, "echo", "blue", ECHO, miniBatchSize=4, maxConcurrencyPerInstance=2)
    return server


@pytest.fixture(scope="module")
def inputs(data_root: Path) -> Path:
    return write_inputs(data_root / "inputs", 23)


def test_invoke_runs_the_scoring_script_over_every_file_in_order(job_server: Server, inputs: Path) -> None:
    with job_server.client() as client:
        started = invoke(client, "echo", str(inputs))
        assert started.status_code == 200
        answer = started.json()
        assert answer["type"] == "Microsoft.MachineLearningServices/workspaces/jobs"
        assert answer["properties"]["status"] in ("NotStarted", "Running")
        job = wait_for_job(client, answer["name"])
    properties = job["properties"]
    assert properties["status"] == "Completed", properties
    assert properties["jobType"] == "Pipeline" and properties["properties"]["azureml.batchrun"] == "true"
    assert properties["properties"]["azureml.deploymentname"] == "blue"
    assert properties["properties"]["batchpoint.routing"] == "endpoint default deployment"
    assert properties["progress"]["miniBatches"] == {
        "total": 6,
        "succeeded": 6,
        "failed": 0,
        "running": 0,
        "retried": 0,
    }
    assert properties["progress"]["items"]["succeeded"] == 23
    assert predictions(job_server.home, answer["name"]) == [f"seen f{index:05d}.txt" for index in range(23)]


def test_a_job_reads_running_from_its_first_report_once_its_workers_have_started(
    job_server: Server, inputs: Path
) -> None:
    """Nothing is written between a job's start and its workers' (docs/runtime.md, "Jobs"): while its first worker
    cannot be forked (its warm template frozen), it reads NotStarted; it ends with its start time."""
    with job_server.client() as client:
        wait_for_job(client, invoke(client, "echo", str(inputs)).json()["name"])  # the template learns its imports
        template = warm_template(job_server)
        template.suspend()
        try:
            name = invoke(client, "echo", str(inputs)).json()["name"]
            seen = set()
            for _ in range(10):
                seen.add(status_of(client, name))
                time.sleep(0.1)
        finally:
            template.send_signal(signal.SIGCONT)
        job = wait_for_job(client, name)
    assert seen == {"NotStarted"}
    properties = job["properties"]
    assert properties["status"] == "Completed"
    assert properties["startTime"] <= properties["endTime"]


def test_a_job_reads_running_while_its_input_is_fetched(job_server: Server, held_file: HeldFile) -> None:
    """What comes before the workers may take long: a job whose input is copied first reads Running meanwhile."""
    with job_server.client() as client:
        name = invoke(client, "echo", held_file.url, {"azureml-model-deployment": "blue"}).json()["name"]
        try:
            assert held_file.asked.wait(30), "the input was never fetched"
            status = status_of(client, name)
        finally:
            held_file.release.set()
        job = wait_for_job(client, name)
    assert status == "Running"
    assert job["properties"]["status"] == "Completed", job["properties"].get("error")


@dataclass
class HeldFile:
    url: str
    asked: threading.Event
    """Someone asked for the file."""
    release: threading.Event
    """The file may be sent."""


@pytest.fixture
def held_file() -> Iterator[HeldFile]:
    """A file served over HTTP on 127.0.0.1 once the test releases it."""
    asked, release = threading.Event(), threading.Event()

    body = b"a,b\n1,2\n"

    class Handler(BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:
            asked.set()
            release.wait(30)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()

        def do_GET(self) -> None:
            self.do_HEAD()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield HeldFile(f"http://127.0.0.1:{server.server_port}/data/held.csv", asked, release)
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def warm_template(server: Server) -> psutil.Process:
    """The server's warm template, once it has forked a spare worker for the next job."""
    assert server.process is not None
    server_process = psutil.Process(server.process.pid)

    def ready() -> list[psutil.Process]:
        return [child for child in server_process.children() if "template" in child.cmdline() and child.children()]

    wait_until(lambda: bool(ready()), 30, "a warm template with a spare worker")
    return ready()[0]


def test_the_same_repeatability_id_creates_one_job(job_server: Server, inputs: Path) -> None:
    with job_server.client() as client:
        first = invoke(client, "echo", str(inputs), {"repeatability_request-id": "same-request"}).json()
        again = invoke(client, "echo", str(inputs), {"repeatability_request-id": "same-request"}).json()
        other = invoke(client, "echo", str(inputs), {"repeatability_request-id": "another-request"}).json()
        listed = client.get(f"{WORKSPACE_ID}/jobs", params=V).json()["value"]
        for job in (first, other):
            wait_for_job(client, job["name"])
    assert first["name"] == again["name"] != other["name"]
    assert sum(1 for job in listed if job["name"] == first["name"]) == 1


def test_per_job_overrides_apply(job_server: Server, inputs: Path) -> None:
    with job_server.client() as client:
        answer = invoke(client, "echo", str(inputs), miniBatchSize=10, outputFileName="scores.txt").json()
        job = wait_for_job(client, answer["name"])
    assert job["properties"]["progress"]["miniBatches"]["total"] == 3
    assert len(predictions(job_server.home, answer["name"], "scores.txt")) == 23


@pytest.mark.parametrize("name", ["logs", ".batchpoint"])
def test_an_output_file_name_the_job_keeps_its_own_files_under_is_refused(
    job_server: Server, inputs: Path, name: str
) -> None:
    """Named `logs`, the job took its own logs folder for an output committed before: Completed, and every row lost."""
    with job_server.client() as client:
        answer = invoke(client, "echo", str(inputs), outputFileName=name)
    assert answer.status_code == 400, answer.text
    assert f"output_file_name cannot be '{name}'" in answer.json()["error"]["message"]


@pytest.mark.parametrize(
    ("timeout", "message"),
    [
        ("P99999999999D", "is not a valid duration: it is too long (at most 999999999 days)."),
        ("P1000000000D", "is not a valid duration: it is too long (at most 999999999 days)."),
        ("PT99999999999999999999S", "is not a valid duration: it is too long (at most 999999999 days)."),
        ("soon", "is not an ISO-8601 duration (e.g. 'PT30S')."),
        ("P1M", "must be a positive duration in days, hours, minutes or seconds."),
    ],
)
def test_an_invoke_timeout_that_is_no_usable_duration_is_a_400_naming_it(
    job_server: Server, inputs: Path, timeout: str, message: str
) -> None:
    """Before, a duration too long for isodate was a 500 (OverflowError)."""
    with job_server.client() as client:
        response = invoke(client, "echo", str(inputs), retrySettings={"timeout": timeout})
    assert response.status_code == 400, response.text
    assert response.json() == {
        "error": {"code": "BadRequest", "message": f"retrySettings.timeout '{timeout}' {message}"}
    }


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"miniBatchSize": 2**63}, "miniBatchSize"),
        ({"miniBatchSize": 2**70}, "miniBatchSize"),
        ({"errorThreshold": 2**31}, "errorThreshold"),
        ({"errorThreshold": 2**70}, "errorThreshold"),
    ],
)
def test_an_invoke_setting_beyond_its_deployment_fields_range_is_a_400_naming_it(
    job_server: Server, inputs: Path, override: dict[str, int], field: str
) -> None:
    """The deployment's miniBatchSize is an int64 and its errorThreshold an int32. Before, a larger miniBatchSize was
    accepted (200) and the job failed ("Stop argument for islice() must be None or an integer: 0 <= x <=
    sys.maxsize")."""
    with job_server.client() as client:
        response = invoke(client, "echo", str(inputs), **override)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "InvalidRequestContent"
    assert f"properties.{field}: " in response.json()["error"]["message"]


def test_the_largest_mini_batch_size_runs(job_server: Server, inputs: Path) -> None:
    with job_server.client() as client:
        answer = invoke(client, "echo", str(inputs), miniBatchSize=2**63 - 1, errorThreshold=2**31 - 1).json()
        job = wait_for_job(client, answer["name"])
    assert job["properties"]["status"] == "Completed", job
    assert job["properties"]["progress"]["miniBatches"]["total"] == 1


def test_a_chosen_output_folder_is_used_and_never_overwritten(
    job_server: Server, inputs: Path, data_root: Path
) -> None:
    target = data_root / "chosen-output"
    outputs = {"outputData": {"score": {"jobOutputType": "UriFolder", "uri": str(target)}}}
    with job_server.client() as client:
        first = invoke(client, "echo", str(inputs), **outputs).json()
        assert wait_for_job(client, first["name"])["properties"]["status"] == "Completed"
        second = invoke(client, "echo", str(inputs), **outputs)
    assert len((target / "predictions.csv").read_text().splitlines()) == 23
    assert second.status_code == 400 and "already exists" in second.json()["error"]["message"]


def test_failures_name_the_file_and_the_exception(job_server: Server, data_root: Path, inputs: Path) -> None:
    with job_server.client() as client:
        deploy_script(
            client,
            data_root,
            "failing",
            "red",
            FAIL_ON_SEVEN,
            miniBatchSize=5,
            errorThreshold=0,
            retrySettings={"maxRetries": 1, "timeout": "PT30S"},
        )
        answer = invoke(client, "failing", str(inputs)).json()
        job = wait_for_job(client, answer["name"])
    properties = job["properties"]
    assert properties["status"] == "Failed"
    assert (
        "f00007.txt" in properties["error"]["message"] and "cannot score file seven" in properties["error"]["message"]
    )
    assert "Traceback" in properties["error"]["message"]


def test_cancel_stops_a_running_job(job_server: Server, data_root: Path, inputs: Path) -> None:
    with job_server.client() as client:
        deploy_script(client, data_root, "hanging", "slow", HANG, retrySettings={"maxRetries": 0, "timeout": "PT5M"})
        answer = invoke(client, "hanging", str(inputs)).json()
        assert client.post(f"{WORKSPACE_ID}/jobs/{answer['name']}/cancel", params=V).status_code == 200
        job = wait_for_job(client, answer["name"], timeout=30)
    assert job["properties"]["status"] == "Canceled"


@pytest.mark.parametrize(
    ("input_data", "fragment"),
    [
        ({}, "exactly one data input"),
        (
            {"a": {"jobInputType": "UriFolder", "uri": "/x"}, "b": {"jobInputType": "UriFolder", "uri": "/y"}},
            "exactly one",
        ),
        ({"n": {"jobInputType": "Literal", "value": "3"}}, "exactly one data input"),
        ({"UriFolder": {"jobInputType": "MLTable", "uri": "/x"}}, "not supported"),
        ({"UriFolder": {"jobInputType": "UriFolder", "uri": "/etc"}}, "allow-local-path"),
        ({"UriFolder": {"jobInputType": "UriFolder", "uri": "azureml://datastores/nope/paths/x"}}, "nope"),
    ],
)
def test_bad_inputs_are_refused_with_a_reason(job_server: Server, input_data: dict, fragment: str) -> None:
    with job_server.client() as client:
        scoring_uri = client.get(f"{WORKSPACE_ID}/batchEndpoints/echo", params=V).json()["properties"]["scoringUri"]
        response = client.post(scoring_uri, json={"properties": {"inputData": input_data}})
    assert response.status_code in (400, 404), response.text
    assert fragment in response.json()["error"]["message"]


def test_routing_needs_a_deployment(job_server: Server, inputs: Path) -> None:
    with job_server.client() as client:
        unknown = invoke(client, "echo", str(inputs), {"azureml-model-deployment": "green"})
        client.put(
            f"{WORKSPACE_ID}/batchEndpoints/empty",
            params=V,
            json={"location": "local", "properties": {"authMode": "AADToken"}},
        )
        scoring_uri = client.get(f"{WORKSPACE_ID}/batchEndpoints/empty", params=V).json()["properties"]["scoringUri"]
        no_default = client.post(
            scoring_uri,
            json={"properties": {"inputData": {"UriFolder": {"jobInputType": "UriFolder", "uri": str(inputs)}}}},
        )
    assert unknown.status_code == 400 and "green" in unknown.json()["error"]["message"]
    assert no_default.status_code == 400 and "No valid deployments" in no_default.json()["error"]["message"]


def test_invoke_needs_a_token(job_server: Server, inputs: Path) -> None:
    with job_server.client(token=None) as client:
        response = client.post(
            job_server.base_url + f"/inference{WORKSPACE_ID}/batchEndpoints/echo/jobs", json={"properties": {}}
        )
    assert response.status_code == 401


def test_run_details_link_every_log_file(job_server: Server, inputs: Path) -> None:
    with job_server.client() as client:
        name = invoke(client, "echo", str(inputs)).json()["name"]
        wait_for_job(client, name)
        details = client.get(f"{job_server.base_url}/history/v1.0{WORKSPACE_ID}/runs/{name}/details").json()
        result = client.get(details["logFiles"]["job_result.txt"])
        tampered = client.get(details["logFiles"]["job_result.txt"].replace("job_result.txt?", "readme.txt?"))
        streamed = client.get(details["logFiles"]["user_logs/std_log.txt"], headers={"Authorization": ""})
    assert details["status"] == "Completed" and details["runId"] == name and details["endTimeUtc"]
    for name in ("readme.txt", "sys/job_report/processed_mini-batches.csv", "user/stdout/0/process000.stdout.txt"):
        assert name in details["logFiles"]
    assert any(name.startswith("job_progress_overview.") for name in details["logFiles"])
    assert result.status_code == 200 and "Completed" in result.text
    assert tampered.status_code == 403
    assert (
        streamed.status_code == 200 and "Job Completed" in streamed.text and "Progress: Mini-batches" in streamed.text
    )


def test_a_workers_last_line_without_a_newline_reaches_the_streamed_log(job_server: Server, data_root: Path) -> None:
    """What `jobs.stream` prints: before, `last words without newline` stayed in the worker's stdout file only."""
    script = (
        "import sys\n\ndef init():\n    pass\n\ndef run(mini_batch):\n    print('line one')\n"
        "    sys.stdout.write('last words without newline')\n    return mini_batch\n"
    )
    with job_server.client() as client:
        deploy_script(client, data_root, "unended", "main", script)
        name = invoke(client, "unended", str(write_inputs(data_root / "one", 1))).json()["name"]
        assert wait_for_job(client, name)["properties"]["status"] == "Completed"
        details = client.get(f"{job_server.base_url}/history/v1.0{WORKSPACE_ID}/runs/{name}/details").json()
        stdout = client.get(details["logFiles"]["user/stdout/0/process000.stdout.txt"]).text
        streamed = client.get(details["logFiles"]["user_logs/std_log.txt"]).text.splitlines()
    assert stdout == "line one\nlast words without newline"
    printed = [line for line in streamed if line.startswith("[0/process000.stdout] ")]
    assert printed == ["[0/process000.stdout] line one", "[0/process000.stdout] last words without newline"]


def test_jobs_are_listed_per_endpoint_and_per_deployment(job_server: Server, inputs: Path) -> None:
    mfe = f"{job_server.base_url}/mferp/managementfrontend{WORKSPACE_ID}/batchEndpoints"
    dataplane = {"api-version": "2020-09-01-dataplanepreview"}
    with job_server.client() as client:
        name = invoke(client, "echo", str(inputs)).json()["name"]
        wait_for_job(client, name)
        of_endpoint = client.get(f"{mfe}/echo/jobs", params=dataplane).json()["value"]
        of_deployment = client.get(f"{mfe}/echo/deployments/blue/jobs", params=dataplane).json()["value"]
        of_other = client.get(f"{mfe}/echo/deployments/green/jobs", params=dataplane).json()["value"]
    assert name in [job["name"] for job in of_endpoint]
    assert name in [job["name"] for job in of_deployment]
    assert of_other == []


def test_endpoint_job_lists_are_paged(job_server: Server, inputs: Path) -> None:
    mfe = f"{job_server.base_url}/mferp/managementfrontend{WORKSPACE_ID}/batchEndpoints/echo"
    with job_server.client() as client:
        started = [invoke(client, "echo", str(inputs)).json()["name"] for _ in range(3)]
        for name in started:
            wait_for_job(client, name)
        pages = [
            client.get(
                f"{mfe}/deployments/blue/jobs", params={"api-version": "2020-09-01-dataplanepreview", "$top": "2"}
            ).json()
        ]
        while pages[-1].get("nextLink"):
            assert "api-version=2020-09-01-dataplanepreview" in pages[-1]["nextLink"]
            pages.append(client.get(pages[-1]["nextLink"]).json())
        newest = client.get(f"{mfe}/jobs", params={"$top": "1", "$orderBy": "CreatedAtDesc"}).json()
    listed = [job["name"] for page in pages for job in page["value"]]
    assert all(len(page["value"]) <= 2 for page in pages)
    assert listed[-3:] == started and len(listed) == len(set(listed))
    assert [job["name"] for job in newest["value"]] == started[-1:] and newest["nextLink"]


def test_an_unreachable_input_url_fails_the_job_and_names_it(job_server: Server) -> None:
    url = "http://127.0.0.1:9/nothing-listens-here/data.csv"
    with job_server.client() as client:
        answer = invoke(client, "echo", url, {"azureml-model-deployment": "blue"})
        assert answer.status_code == 200, answer.text
        job = wait_for_job(client, answer.json()["name"])
    assert job["properties"]["status"] == "Failed"
    assert "nothing-listens-here" in job["properties"]["error"]["message"]


def test_a_job_names_the_deployments_settings_batchpoint_does_not_act_on(
    job_server: Server, data_root: Path, inputs: Path
) -> None:
    """The deployment's provisioning warned of them (tests/ml/endpoints/test_validation.py); each job says so too."""
    with job_server.client() as client:
        deploy_script(client, data_root, "sized", "gpu-size", ECHO, resources={"instanceType": "Standard_NC6s_v3"})
        name = invoke(client, "sized", str(inputs)).json()["name"]
        wait_for_job(client, name)
        details = client.get(f"{job_server.base_url}/history/v1.0{WORKSPACE_ID}/runs/{name}/details").json()
        role = client.get(details["logFiles"]["sys/master_role.txt"]).text
    assert "resources.instanceType 'Standard_NC6s_v3' is recorded, not acted on" in role


def test_the_job_list_filters_by_property_job_type_tag_and_archived_view(job_server: Server, inputs: Path) -> None:
    """`Jobs_List`'s `properties`, `jobType`, `tag` and `listViewType` (`ml_client.jobs.list(tag=...)`): before, each
    was ignored and every job of the workspace listed."""
    with job_server.client() as client:
        names = [invoke(client, "echo", str(inputs), properties={"batch": f"b{n}"}).json()["name"] for n in range(2)]
        for name in names:
            wait_for_job(client, name)

        def listed(**query: str) -> list[str]:
            answer = client.get(f"{WORKSPACE_ID}/jobs", params={**V, **query})
            assert answer.status_code == 200, answer.text
            return sorted(job["name"] for job in answer.json()["value"])

        assert listed(properties="batch") == sorted(names)
        assert listed(properties="batch=b1") == [names[1]]
        assert listed(properties="batch=b1,azureml.batchrun=true") == [names[1]]
        assert listed(properties="batch=b1,azureml.deploymentname=green") == []
        assert listed(properties="batch", jobType="Command") == []  # the children have the step properties only
        assert listed(properties="batch", jobType="pipeline") == sorted(names)
        assert listed(jobType="Command", properties="azureml.pipelinerunid=" + names[0]) == [f"{names[0]}-batchscoring"]
        assert listed(tag="no-job-has-this-tag") == []
        assert listed(listViewType="ArchivedOnly") == [] == listed(scheduled="true") == listed(scheduleId="daily")
        assert set(names) <= set(listed(scheduled="false"))
        assert set(names) <= set(listed(listViewType="All")) and set(names) <= set(listed(listViewType="ActiveOnly"))
        filters = {"properties": "batch", "jobType": "Pipeline"}
        first = client.get(f"{WORKSPACE_ID}/jobs", params={**V, **filters, "$top": "1"}).json()
        carried = dict(parse_qsl(urlsplit(first["nextLink"]).query))
        assert len(first["value"]) == 1 and filters.items() <= carried.items()  # paged, the filters kept
        second = client.get(first["nextLink"]).json()
        assert sorted(job["name"] for job in first["value"] + second["value"]) == sorted(names)
        missing = client.get(WORKSPACE_ID.replace("/default", "/nope") + "/jobs", params={**V, "tag": "x"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "ResourceNotFound"


def test_a_job_whose_input_cannot_be_fetched_fails_and_its_logs_say_why(job_server: Server) -> None:
    """Before, such a job (like one whose environment could not be built) had no logs at all: `jobs.download`
    found nothing and `logs/job_result.txt` was missing."""
    with job_server.client() as client:
        scoring_uri = client.get(f"{WORKSPACE_ID}/batchEndpoints/echo", params=V).json()["properties"]["scoringUri"]
        body = {"properties": {"inputData": {"one": {"jobInputType": "UriFile", "uri": "https://127.0.0.1:9/a.csv"}}}}
        job = wait_for_job(client, client.post(scoring_uri, json=body).json()["name"])
    message = job["properties"]["error"]["message"]
    assert job["properties"]["status"] == "Failed" and message.startswith(
        "Could not fetch the input 'https://127.0.0.1:9/"
    )
    logs = next((job_server.home / "storage").glob(f"*/azureml-blobstore-*/azureml/{job['name']}/score/logs"))
    assert (logs / "job_result.txt").read_text().startswith(f"Status: Failed\n{message}")
    assert message in (logs / "job_error.txt").read_text() and message in (logs / "user_logs/std_log.txt").read_text()
    assert not list(logs.parent.glob(".batchpoint/*"))  # no private folder left behind
