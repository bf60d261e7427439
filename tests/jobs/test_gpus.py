"""`serve --gpus` names the machine's GPUs (so this runs on a machine without any): each local worker of a job sees
one of its own (docs/runtime.md, "GPUs"; the executor's rules in tests/runtime/test_gpus.py)."""

from __future__ import annotations

from pathlib import Path

from tests.api.jobs import deploy_script, invoke, predictions, wait_for_job, write_inputs
from tests.runtime.conftest import REPORTS_ITS_GPU
from tests.server import running


def test_serve_gpus_gives_each_of_two_workers_its_own_gpu(tmp_path: Path) -> None:
    data = tmp_path / "data"
    inputs = write_inputs(data / "inputs", 6)
    script = REPORTS_ITS_GPU.replace("\n    ", "\n")
    with running(tmp_path / "home", "--gpus", "0,1", "--allow-local-path", str(data)) as server:
        with server.client() as client:
            deploy_script(client, data, "gpus", "two-workers", script, miniBatchSize=1, maxConcurrencyPerInstance=2)
            name = invoke(client, "gpus", str(inputs)).json()["name"]
            assert wait_for_job(client, name)["properties"]["status"] == "Completed"
        rows = [row.split() for row in predictions(server.home, name)]
    assert "GPUs: 0, 1, one per local worker (CUDA_VISIBLE_DEVICES)" in Path(server.log.name).read_text()
    gpu_of = {pid: gpu for _, pid, gpu, _ in rows}
    assert sorted(gpu_of.values()) == ["0", "1"]
    assert {count for *_, count in rows} == {"2"}
