"""Azure ML code runs unmodified after ``eval "$(batchpoint env)"``: a notebook of ours in the style of the official
batch notebooks (``MLClient.from_config(DefaultAzureCredential())``, a compute through
``ml_client.begin_create_or_update``, model and data registration, a deployment, invoke, ``jobs.stream``, the
scoring child job's download, pandas on its output), executed with nbclient in a kernel whose only help is that
environment; then, in the same folder, a plain script (``MLClient(DefaultAzureCredential(), ...)``, a
``{datastore id}/paths/...`` output) that goes on with the management client as far as it can (``base_url`` is the
one thing it needs, docs/azure-sdk.md)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from tests.azure_env import run_in_env
from tests.server import Server

UNMODIFIED = Path(__file__).parent / "unmodified"
NOTEBOOK = "batch_scoring.ipynb"
SCRIPT = "batch_scoring.py"
EXECUTE = str(Path(sys.executable).parent / "jupyter-execute")
"""nbclient's command: runs every cell in a fresh kernel of this interpreter and stops at the first error."""


def printed(notebook: Path) -> str:
    """What the executed notebook's cells printed."""
    cells = json.loads(notebook.read_text())["cells"]
    return "".join(
        "".join(output.get("text", "")) for cell in cells for output in cell.get("outputs", []) if "text" in output
    )


def test_a_notebook_and_a_script_run_unmodified(tls_server: Server, tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(UNMODIFIED, project)
    (project / "code").mkdir()  # the notebook writes its scoring script there (%%writefile)

    executed = run_in_env(
        tls_server, [EXECUTE, "--inplace", "--timeout=300", NOTEBOOK], project, env_options=("--write-config",)
    )
    assert executed.returncode == 0, executed.stderr[-4000:]
    output = printed(project / NOTEBOOK)
    assert "Job status: Completed" in output and "Job duration: 0:00:" in output
    assert "20 rows scored, 9 above the threshold" in output
    assert (project / "named-outputs" / "score" / "predictions.csv").read_text().count("\n") == 20

    ran = run_in_env(tls_server, [sys.executable, SCRIPT], project)
    assert ran.returncode == 0, ran.stderr[-4000:]
    assert "script: 20 rows scored, 9 above the threshold" in ran.stdout
    assert "management client: endpoint threshold-script" in ran.stdout
    assert "management client: deployments ['Succeeded']" in ran.stdout
    assert "management client, a newer api-version: threshold-script" in ran.stdout
    assert "management client: deleted threshold-script" in ran.stdout
