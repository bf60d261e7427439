"""``batchpoint invoke`` and ``batchpoint jobs`` against a real server over HTTPS, as a user runs them."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.api.jobs import deploy_script, write_inputs
from tests.server import Server

ECHO = "def init():\n    pass\n\ndef run(mini_batch):\n    return [p.rsplit('/', 1)[1] for p in mini_batch]\n"
SLOW = (
    "import time\n\ndef init():\n    pass\n\n"
    "def run(mini_batch):\n    time.sleep(0.5)\n    print('scoring', len(mini_batch), 'files')\n    return mini_batch\n"
)
BROKEN = "def init():\n    raise RuntimeError('model file missing')\n\ndef run(mini_batch):\n    return mini_batch\n"


Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="module")
def cli_server(tmp_path_factory: pytest.TempPathFactory, data: Path) -> Iterator[Server]:
    server = Server(home=tmp_path_factory.mktemp("home"), tls=True, args=["--allow-local-path", str(data)]).start()
    with server.client() as client:
        deploy_script(client, data, "cli-ep", "main", ECHO, miniBatchSize=3)
        deploy_script(client, data, "cli-slow", "main", SLOW, miniBatchSize=3)
        deploy_script(
            client,
            data,
            "cli-broken",
            "main",
            BROKEN,
            errorThreshold=0,
            retrySettings={"maxRetries": 0, "timeout": "PT30S"},
        )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def batchpoint(cli_server: Server, warm_batchpoint: list[str]) -> Cli:
    """Runs a ``batchpoint`` command against the module's server (in a process forked from a warm one)."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [*warm_batchpoint, *args, *cli_server.cli_options()]
        return subprocess.run(command, capture_output=True, text=True, timeout=120)

    return run


def test_invoke_wait_shows_the_output(batchpoint: Cli, data: Path) -> None:
    inputs = write_inputs(data / "cli-in", 10)
    result = batchpoint("invoke", "cli-ep", "--input", str(inputs), "--wait")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Completed" in result.stdout and "azureml://datastores/workspaceblobstore/paths/azureml/" in result.stdout
    name = result.stdout.split()[1]
    listed = batchpoint("jobs", "list", "--endpoint", "cli-ep")
    logs = batchpoint("jobs", "logs", name)
    assert name[:20] in listed.stdout
    assert "job_result.txt" in logs.stdout and "Completed" in logs.stdout


def test_logs_follow_prints_the_job_as_it_runs(batchpoint: Cli, data: Path) -> None:
    inputs = write_inputs(data / "cli-in-follow", 12)
    name = batchpoint("invoke", "cli-slow", "--input", str(inputs)).stdout.split()[1]
    result = batchpoint("jobs", "logs", name, "--follow")
    assert result.returncode == 0, result.stdout + result.stderr
    progress = [line for line in result.stdout.splitlines() if "Progress: Mini-batches: 4 total" in line]
    assert len(progress) >= 2 and "] scoring 3 files" in result.stdout
    assert "Job Completed: 12 of 12 items succeeded" in result.stdout


def test_a_failed_job_exits_non_zero_and_says_why(batchpoint: Cli, data: Path) -> None:
    inputs = write_inputs(data / "cli-in-2", 4)
    result = batchpoint("invoke", "cli-broken", "--input", str(inputs), "--wait")
    assert result.returncode == 1
    assert "Failed" in result.stdout and "model file missing" in result.stdout


def test_server_errors_are_shown_plainly(batchpoint: Cli) -> None:
    result = batchpoint("invoke", "no-such-endpoint", "--input", "/nowhere")
    assert result.returncode == 2
    assert "ResourceNotFound" in result.stdout
