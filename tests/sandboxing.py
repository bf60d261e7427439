"""Helpers for the sandbox's acceptance tests: the hostile scoring script (tests/hostile_score.py) and its reports."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

from batchpoint.runtime.spec import JobSpec
from tests.hostile_score import REPORTED

HOSTILE_SCORE = Path(__file__).with_name("hostile_score.py")
PROBES = 18
"""How many probes the hostile script makes (3 more on a Ray node)."""
RAY_PROBES = 3


def reports(folder: Path) -> list[dict[str, Any]]:
    """The hostile script's reports in `folder` (one per process that probed)."""
    return [json.loads(path.read_text()) for path in sorted(folder.glob("probes-*.json"))]


def printed_reports(logs: Path) -> list[dict[str, Any]]:
    """The reports the hostile script printed, from a job's logs (its workers' stdout files)."""
    lines = (line for path in sorted(logs.glob("user/stdout/*/*.txt")) for line in path.read_text().splitlines())
    return [json.loads(line.split(REPORTED, 1)[1]) for line in lines if REPORTED in line]


def assert_contained(found: list[dict[str, Any]], processes: int = 1, probes: int = PROBES) -> list[dict[str, Any]]:
    """`processes` processes made `probes` probes each, and every one was refused; returns their reports."""
    assert len(found) == processes, f"{len(found)} reports, not {processes}"
    for report in found:
        assert len(report["results"]) == probes
        leaked = [f"{name}: {detail}" for verdict, name, detail in report["results"] if verdict != "refused"]
        assert not leaked, f"the sandbox let through ({report['python']}, uid {report['uid']}):\n" + "\n".join(leaked)
    return found


def lay_out(root: Path) -> dict[str, Any]:
    """A data directory as a server keeps it, under `root`, with secrets readable by all (so that only the sandbox
    keeps them from a worker), the job's inputs in its workspace's storage and an allowed local folder; returns the
    hostile script's targets, and where the job's inputs and output are ("inputs", "output")."""
    home = root / "home"
    files = {
        "signing_key": home / "issuer" / "signing-key.pem",
        "tls_key": home / "tls" / "server-key.pem",
        "other_workspace_file": home / "storage" / "bp-other" / "uploads" / "ssn.csv",
        "other_job_file": home / "storage" / "bp-own" / "azureml" / "busy" / "score" / "secret-predictions.txt",
        "unnamed_local_file": root / "local" / "someone-else" / "data.csv",
    }
    for path in files.values():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("secret\n")
    with sqlite3.connect(home / "batchpoint.db") as database:
        database.execute("create table resources (id text)")
    inputs = home / "storage" / "bp-own" / "in"
    inputs.mkdir(parents=True)
    for index in range(4):
        (inputs / f"f{index}.txt").write_text("x" * (index + 1))
    return {
        **{name: str(path) for name, path in files.items()},
        "data_dir": str(home),
        "database": str(home / "batchpoint.db"),
        "other_job_output": str(files["other_job_file"].parent),
        "input_file": str(inputs / "f0.txt"),
        "inputs": str(inputs),
        "output": str(home / "storage" / "bp-own" / "azureml" / "hostile" / "score"),
    }


def hostile_job(targets: dict[str, Any], code: Path, mini_batch_size: int = 2) -> JobSpec:
    """A job of the hostile script over the inputs `lay_out` made, told where its targets are."""
    return JobSpec(
        job_id="hostile",
        input_paths=[Path(targets["inputs"])],
        output_dir=Path(targets["output"]),
        code_dir=code,
        scoring_script=HOSTILE_SCORE.name,
        mini_batch_size=mini_batch_size,
        environment_variables={"TARGETS": json.dumps(targets)},
    )


def laid_out(root: Path) -> tuple[dict[str, Any], Path]:
    """`lay_out`'s targets, and a code folder holding the hostile script."""
    targets = lay_out(root)
    code = root / "code"
    code.mkdir()
    shutil.copy(HOSTILE_SCORE, code)
    return targets, code
