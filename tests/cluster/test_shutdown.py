"""SIGTERM stops a server within 10 s even while a pipeline step runs, and the work resumes at the next start."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import psutil

from tests.cluster.replicas import job_of, wait_for_end, wait_until
from tests.jobs.pipelines.test_pipelines import component, invoke_pipeline, node, server_reaching


def test_sigterm_stops_a_running_pipeline_step_and_the_job_resumes_after_restart(tmp_path: Path) -> None:
    flag, pid_file = tmp_path / "go", tmp_path / "step.pid"
    waiting = {
        "type": "command",
        "command": f"echo $$ > {pid_file}; while [ ! -e {flag} ]; do sleep 0.05; done; "
        "echo done > ${{outputs.y}}/x.txt",
        "outputs": {"y": {"type": "uri_folder"}},
    }
    with server_reaching(tmp_path) as server:
        with server.client() as client:
            wait_step = {
                **node(component(client, "wait", waiting)),
                "outputs": {"y": {"value": "${{parent.outputs.result}}", "type": "literal"}},
            }
            name = invoke_pipeline(client, "stopping", {"wait": wait_step})
        wait_until(lambda: pid_file.exists() and pid_file.read_text().strip() != "", 60, "the step to run")
        step = psutil.Process(int(pid_file.read_text()))

        asked = time.monotonic()
        server.stop(signal.SIGTERM)
        stopped_in = time.monotonic() - asked
        assert not step.is_running() or step.status() == psutil.STATUS_ZOMBIE

        flag.touch()
        server.start()
        job = wait_for_end(server, name, timeout=60)
        step_job = job_of(server, f"{name}-wait")
    assert stopped_in < 10, f"the server took {stopped_in:.1f} s to stop"
    assert job["status"] == "Completed", job
    assert step_job["status"] == "Completed"
