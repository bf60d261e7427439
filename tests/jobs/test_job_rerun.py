"""Re-running only what failed: ``batchpoint jobs rerun JOB --failed`` starts a job of the same deployment over
the items that failed (or never ran), and its output has their rows."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.jobs import V, deploy_script, invoke, predictions, wait_for_job, write_inputs
from tests.server import WORKSPACE_ID, Server, batchpoint_command

BAD = ("f00017.txt", "f00099.txt", "f00150.txt")
SCRIPT = """
import os

def init():
    pass

def run(mini_batch):
    names = [os.path.basename(path) for path in mini_batch]
    if {broken} and set(names) & {bad}:
        raise ValueError(f"cannot score {{names}}")
    return names
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the module (2 s a start): its tests' endpoints have names of their own, and their inputs are
    in their own temporary folders, which it may read by path."""
    allowed = str(tmp_path_factory.getbasetemp())
    home = tmp_path_factory.mktemp("rerun-server") / "home"
    running = Server(home=home, tls=True, args=["--allow-local-path", allowed]).start()
    yield running
    running.stop()


def batchpoint(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    command = [*batchpoint_command(), *args, *server.cli_options()]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def deploy(server: Server, folder: Path, broken: bool) -> None:
    with server.client() as http:
        script = SCRIPT.format(broken=broken, bad=set(BAD))
        deploy_script(http, folder, "rerun-ep", "main", script, miniBatchSize=1, retrySettings={"maxRetries": 0})


def test_rerun_failed_runs_exactly_the_failed_files_and_outputs_their_rows(server: Server, tmp_path: Path) -> None:
    deploy(server, tmp_path, broken=True)
    with server.client() as http:
        first = wait_for_job(http, invoke(http, "rerun-ep", str(write_inputs(tmp_path / "in", 200))).json()["name"])
    assert first["properties"]["status"] == "Completed", first["properties"]
    assert first["properties"]["progress"]["items"]["failed"] == 3
    deploy(server, tmp_path, broken=False)  # the script is fixed

    result = batchpoint(server, "jobs", "rerun", first["name"], "--failed", "--wait")

    assert result.returncode == 0, result.stdout + result.stderr
    name = result.stdout.split()[1]
    with server.client() as http:
        rerun = http.get(f"{WORKSPACE_ID}/jobs/{name}", params=V).json()["properties"]
        again = http.post(f"{WORKSPACE_ID}/jobs/{name}/rerunFailed", params=V)
    assert rerun["status"] == "Completed" and rerun["progress"]["items"] == {"total": 3, "succeeded": 3, "failed": 0}
    assert rerun["properties"]["batchpoint.rerunOf"] == first["name"]
    assert rerun["properties"]["azureml.deploymentname"] == "main"
    assert predictions(server.home, name) == list(BAD)
    assert len(predictions(server.home, first["name"])) == 197
    assert again.status_code == 400 and "no failed or unprocessed items" in again.json()["error"]["message"]


def test_a_canceled_job_reruns_what_never_ran(server: Server, tmp_path: Path) -> None:
    slow = (
        "import os, time\n\ndef init():\n    pass\n\ndef run(mini_batch):\n    time.sleep(0.2)\n    return mini_batch\n"
    )
    with server.client() as http:
        deploy_script(http, tmp_path, "rerun-cancel", "main", slow, miniBatchSize=1)
        name = invoke(http, "rerun-cancel", str(write_inputs(tmp_path / "in", 40))).json()["name"]
        deadline = time.monotonic() + 60
        while (
            http.get(f"{WORKSPACE_ID}/jobs/{name}", params=V).json()["properties"]["progress"]["items"]["succeeded"] < 2
        ):
            assert time.monotonic() < deadline, "the job made no progress"
            time.sleep(0.05)
        http.post(f"{WORKSPACE_ID}/jobs/{name}/cancel", params=V)
        canceled = wait_for_job(http, name)
        answer = http.post(f"{WORKSPACE_ID}/jobs/{name}/rerunFailed", params=V)
        assert answer.status_code == 200, answer.text
        rerun = wait_for_job(http, answer.json()["name"])
    done = canceled["properties"]["progress"]["items"]["succeeded"]
    assert canceled["properties"]["status"] == "Canceled"
    assert rerun["properties"]["status"] == "Completed"
    assert rerun["properties"]["progress"]["items"]["total"] == 40 - done


LINE_BREAKING = ("x\ny.txt", "x\nz.txt", "win\rfile.txt", "a\u2028b.txt", "v\x0bf\x0cg\x1ch\x85i\u2029.txt")
"""File names holding each character str.splitlines() splits on, which once made a rerun fail or lose files."""
ODD_SCRIPT = """
import os

def run(mini_batch):
    names = [os.path.basename(path) for path in mini_batch]
    if {broken} and names != ["plain.txt"]:
        raise ValueError("cannot score these")
    return [name.encode("unicode_escape").decode() for name in names]
"""


def test_rerun_failed_runs_every_failed_file_whatever_line_breaks_its_name_holds(
    server: Server, tmp_path: Path
) -> None:
    inputs = tmp_path / "in"
    (inputs / "sub\ndir").mkdir(parents=True)
    names = ["plain.txt", '"quoted.txt', *LINE_BREAKING]
    for name in names:
        (inputs / name).write_text("1\n")
    (inputs / "sub\ndir" / "x\ny.txt").write_text("1\n")  # the same name again, in a folder with a line break
    with server.client() as http:
        script = ODD_SCRIPT.format(broken=True)
        deploy_script(http, tmp_path, "odd-ep", "main", script, miniBatchSize=1, retrySettings={"maxRetries": 0})
        first = wait_for_job(http, invoke(http, "odd-ep", str(inputs)).json()["name"])
        assert first["properties"]["progress"]["items"] == {"total": 8, "succeeded": 1, "failed": 7}
        deploy_script(http, tmp_path, "odd-ep", "main", ODD_SCRIPT.format(broken=False), miniBatchSize=1)

        answer = http.post(f"{WORKSPACE_ID}/jobs/{first['name']}/rerunFailed", params=V)

        assert answer.status_code == 200, answer.text
        rerun = wait_for_job(http, answer.json()["name"])["properties"]
    assert rerun["status"] == "Completed" and rerun["progress"]["items"] == {"total": 7, "succeeded": 7, "failed": 0}
    rerun_names = [*names[1:], "x\ny.txt"]  # the folder's file comes after the top level's, in input order
    escaped = [name.encode("unicode_escape").decode() for name in rerun_names]
    assert sorted(predictions(server.home, answer.json()["name"])) == sorted(escaped)


def test_a_rerun_that_cannot_link_its_input_answers_why_and_leaves_no_folder(server: Server, tmp_path: Path) -> None:
    """A failed file whose path fits the system's limit where it is, but not under the rerun's input folder (a
    longer path): the rerun fails after linking the files before it, and removes what it made."""
    inputs, length = tmp_path / "in", 4080  # at most 4095 (PATH_MAX), and over it under <home>/jobs/<job>/input
    deep = inputs / "b"
    while len(str(deep)) + 251 < length:
        deep /= "d" * 200
    deep.mkdir(parents=True)
    long_name = "f" * (length - len(str(deep)) - 1)
    (inputs / "a.txt").write_text("1\n")
    (deep / long_name).write_text("1\n")
    with server.client() as http:
        script = SCRIPT.format(broken=True, bad={"a.txt", long_name})
        deploy_script(http, tmp_path, "deep-ep", "main", script, miniBatchSize=1, retrySettings={"maxRetries": 0})
        first = wait_for_job(http, invoke(http, "deep-ep", str(inputs)).json()["name"])
        assert first["properties"]["progress"]["items"] == {"total": 2, "succeeded": 0, "failed": 2}

        message = refused_rerun(server, http, first["name"])

    assert "File name too long" in message


def refused_rerun(server: Server, http: httpx.Client, name: str) -> str:
    """The message of a rerunFailed of job `name` that answers 400 and leaves no job and no folder behind (the
    earlier tests' jobs may still be tidying theirs away)."""
    folders_before = set((server.home / "jobs").glob("*"))
    jobs_before = {job["name"] for job in http.get(f"{WORKSPACE_ID}/jobs", params=V).json()["value"]}
    answer = http.post(f"{WORKSPACE_ID}/jobs/{name}/rerunFailed", params=V)
    assert answer.status_code == 400, answer.text
    assert not set((server.home / "jobs").glob("*")) - folders_before
    assert not {job["name"] for job in http.get(f"{WORKSPACE_ID}/jobs", params=V).json()["value"]} - jobs_before
    return str(answer.json()["error"]["message"])


PLANTING_SCRIPT = """
import os

def run(mini_batch):
    logs = os.path.join(os.environ["AZUREML_BI_OUTPUT_PATH"], "logs")
    os.makedirs(logs, exist_ok=True)
    with open(os.path.join(logs, "failed_items.txt"), "w") as listing:
        listing.write({listing!r})
    return [open(path).read().strip() for path in mini_batch]
"""


@pytest.mark.parametrize("outside", ["absolute", "climbing", "through-a-link"])
def test_a_rerun_never_links_a_file_outside_the_jobs_input_that_its_script_listed(
    server: Server, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, outside: str
) -> None:
    """A script running as the server's user can write failed_items.txt, which the server writes only when
    something failed: a rerun of what it lists would link the server's files and let the rerun's script read them."""
    secret = tmp_path_factory.mktemp("elsewhere") / "signing.key"
    secret.write_text("the server's secret\n")
    inputs = write_inputs(tmp_path / "in", 2)
    (inputs / "sub").symlink_to(secret.parent)  # a link a user placed in the input, which listing does not follow
    planted = {
        "absolute": str(secret),
        "climbing": f"{inputs}/{'../' * len(inputs.parts)}{str(secret)[1:]}",
        "through-a-link": str(inputs / "sub" / secret.name),
    }[outside]
    with server.client() as http:
        script = PLANTING_SCRIPT.format(listing=f"{inputs / 'f00000.txt'}\n{planted}\n")
        deploy_script(http, tmp_path, f"plant-{outside}", "main", script, miniBatchSize=1)
        first = wait_for_job(http, invoke(http, f"plant-{outside}", str(inputs)).json()["name"])
        assert first["properties"]["progress"]["items"] == {"total": 2, "succeeded": 2, "failed": 0}

        message = refused_rerun(server, http, first["name"])

    assert f"names {planted!r}, which is not" in message


def test_a_rerun_never_hands_its_script_a_file_its_job_could_not_read(
    server: Server, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A link a user placed in the input to a file elsewhere: the job's sandbox let it not read it, and it failed.
    Before, its rerun linked it, and the rerun's sandbox followed the link to the file."""
    secret = tmp_path_factory.mktemp("elsewhere") / "signing.key"
    secret.write_text("the server's secret\n")
    inputs = write_inputs(tmp_path / "in", 1)
    (inputs / "leak.txt").symlink_to(secret)
    with server.client() as http:
        script = "def run(mini_batch):\n    return [open(path).read().strip() for path in mini_batch]\n"
        deploy_script(http, tmp_path, "leak-ep", "main", script, miniBatchSize=1, retrySettings={"maxRetries": 0})
        first = wait_for_job(http, invoke(http, "leak-ep", str(inputs)).json()["name"])
        assert first["properties"]["progress"]["items"] == {"total": 2, "succeeded": 1, "failed": 1}

        message = refused_rerun(server, http, first["name"])

    assert f"names {str(inputs / 'leak.txt')!r}, which is not inside its input" in message


READING_SCRIPT = """
def run(mini_batch):
    if {broken} and any(path.endswith("f00001.txt") for path in mini_batch):
        raise ValueError("not yet")
    return [open(path).read().strip() for path in mini_batch]
"""


def test_a_rerun_of_a_rerun_reads_its_first_jobs_files(server: Server, tmp_path: Path) -> None:
    """Through the links of each rerun of the chain: a rerun's sandbox names its first job's inputs (it does not
    follow the links, which a user could have changed since), and so does a rerun of it."""
    inputs = write_inputs(tmp_path / "in", 3)
    with server.client() as http:
        settings = {"miniBatchSize": 1, "retrySettings": {"maxRetries": 0}}
        deploy_script(http, tmp_path, "chain-ep", "main", READING_SCRIPT.format(broken=True), **settings)
        first = wait_for_job(http, invoke(http, "chain-ep", str(inputs)).json()["name"])
        second = wait_for_job(
            http, http.post(f"{WORKSPACE_ID}/jobs/{first['name']}/rerunFailed", params=V).json()["name"]
        )
        deploy_script(http, tmp_path, "chain-ep", "main", READING_SCRIPT.format(broken=False), **settings)
        third = wait_for_job(
            http, http.post(f"{WORKSPACE_ID}/jobs/{second['name']}/rerunFailed", params=V).json()["name"]
        )

    assert first["properties"]["progress"]["items"] == {"total": 3, "succeeded": 2, "failed": 1}
    assert second["properties"]["progress"]["items"] == {"total": 1, "succeeded": 0, "failed": 1}
    assert third["properties"]["progress"]["items"] == {"total": 1, "succeeded": 1, "failed": 0}
    assert predictions(server.home, third["name"]) == ["1"]


def test_a_rerun_stored_before_reruns_recorded_their_first_inputs_can_be_rerun(server: Server, tmp_path: Path) -> None:
    """Its first job's inputs are found through its `batchpoint.rerunOf`: before, every failed file of it led
    outside its own folder of links, and its rerun was refused."""
    inputs = write_inputs(tmp_path / "in", 2)
    settings = {"miniBatchSize": 1, "retrySettings": {"maxRetries": 0}}
    with server.client() as http:
        deploy_script(http, tmp_path, "old-ep", "main", READING_SCRIPT.format(broken=True), **settings)
        first = wait_for_job(http, invoke(http, "old-ep", str(inputs)).json()["name"])
        rerun = http.post(f"{WORKSPACE_ID}/jobs/{first['name']}/rerunFailed", params=V)
        second = wait_for_job(http, rerun.json()["name"])
    with sqlite3.connect(server.home / "batchpoint.db") as database:  # as an earlier server stored it
        key = f"{WORKSPACE_ID}/jobs/{second['name']}".lower()
        (private,) = database.execute("SELECT private FROM resources WHERE key = ?", (key,)).fetchone()
        record = json.loads(private)
        assert record["spec"].pop("input_roots")
        database.execute("UPDATE resources SET private = ? WHERE key = ?", (json.dumps(record), key))
    with server.client() as http:
        deploy_script(http, tmp_path, "old-ep", "main", READING_SCRIPT.format(broken=False), **settings)
        answer = http.post(f"{WORKSPACE_ID}/jobs/{second['name']}/rerunFailed", params=V)
        assert answer.status_code == 200, answer.text
        third = wait_for_job(http, answer.json()["name"])

    assert third["properties"]["progress"]["items"] == {"total": 1, "succeeded": 1, "failed": 0}


def test_a_rerun_of_an_unreadable_failed_items_list_answers_400(server: Server, tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path / "in", 1)
    with server.client() as http:
        script = PLANTING_SCRIPT.format(listing=f'{inputs / "f00000.txt"}\n"/not/a/json/string\n')
        deploy_script(http, tmp_path, "bad-list-ep", "main", script, miniBatchSize=1)
        first = wait_for_job(http, invoke(http, "bad-list-ep", str(inputs)).json()["name"])

        message = refused_rerun(server, http, first["name"])

    assert "line 2 of" in message and "failed_items.txt' is not a JSON string" in message
