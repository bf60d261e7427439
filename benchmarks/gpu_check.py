"""GPU check: on a machine with 2 or more NVIDIA GPUs, a torch scoring job shows that each local worker uses a GPU
of its own and that throughput scales with the workers (docs/runtime.md, "GPUs").

The server (``batchpoint serve --http``, SQLite, the machine's GPUs found as ``serve`` finds them) runs one job with
a single worker, then one with a worker per GPU. Each ``run()`` multiplies matrices on ``cuda:0`` (the worker's GPU:
``CUDA_VISIBLE_DEVICES`` names one) and reports the process, ``CUDA_VISIBLE_DEVICES`` and the device's UUID.

Checks: every worker of the second job saw a different GPU (UUID) and ``AZ_BATCHAI_GPU_COUNT_FOUND`` equal to the
number of GPUs; its throughput is at least ``0.8 x workers`` the single worker's. Exits 1 when one is missed, 0
with a message on a machine with fewer than 2 GPUs.

Needs torch with CUDA in the interpreter that runs it (``make bench-deps`` installs the ``bench`` extra) and the
GPUs' device files readable by the workers' sandbox (``/dev/nvidia*`` are allowed for the GPU a worker holds; pass
``--worker-read`` for a CUDA toolkit outside ``/usr``).

Usage: python benchmarks/gpu_check.py [--files N] [--size N] [--worker-read PATH ...] [--unsandboxed] [--keep]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import httpx

from api_bench import batchpoint_command, free_port, mint_token, running
from batchpoint.runtime.gpus import discover
from served_bench import WORKSPACE, V, put_and_wait

SCALING_TARGET = 0.8
"""Throughput with N workers over the single worker's, per worker."""
SCRIPT = """
import os

import torch

SIZE = int(os.environ["GPU_CHECK_SIZE"])
device = None


def init():
    global device
    device = torch.device("cuda", 0)
    torch.ones(1, device=device)


def run(mini_batch):
    properties = torch.cuda.get_device_properties(device)
    uuid = str(getattr(properties, "uuid", properties.name)).replace(" ", "_")
    for _ in mini_batch:
        matrix = torch.rand(SIZE, SIZE, device=device)
        for _ in range(8):
            matrix = torch.tanh(matrix @ matrix / SIZE)
        torch.cuda.synchronize(device)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    found = os.environ.get("AZ_BATCHAI_GPU_COUNT_FOUND")
    return [f"{os.path.basename(path)} {os.getpid()} {visible} {uuid} {found}" for path in mini_batch]
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--size", type=int, default=4096, help="the matrices' side")
    parser.add_argument("--worker-read", action="append", default=[], help="passed to batchpoint serve")
    parser.add_argument("--unsandboxed", action="store_true", help="workers outside their sandbox (serve's flag)")
    parser.add_argument("--keep", action="store_true", help="keep the server's folder (its log, the jobs' logs)")
    args = parser.parse_args()
    gpus = discover()
    if len(gpus) < 2:
        print(f"gpu_check needs 2 or more GPUs; this machine has {len(gpus)} (nvidia-smi -L, CUDA_VISIBLE_DEVICES).")
        return 0
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as folder:
        work = Path(tempfile.mkdtemp(prefix="gpu-check-")) if args.keep else Path(folder)
        if args.keep:
            print(f"The server's folder, kept: {work} (server.log; the jobs' logs under server/storage)")
        inputs = work / "inputs"
        inputs.mkdir()
        for index in range(args.files):
            (inputs / f"f{index:05d}.txt").write_text(str(index))
        (work / "code").mkdir()
        (work / "code" / "score.py").write_text(SCRIPT)
        home, port = work / "server", free_port()
        command = [*batchpoint_command(port, home), "--allow-local-path", str(work)]
        command += [option for path in args.worker_read for option in ("--worker-read", path)]
        command += ["--unsandboxed-workers"] if args.unsandboxed else []
        with running(command, port, work / "server.log"):
            headers = {"Authorization": f"Bearer {mint_token(home)}"}
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=600) as client:
                one = score(client, work, inputs, 1, args.size)
                many = score(client, work, inputs, len(gpus), args.size)
    return report(gpus, one, many)


def score(client: httpx.Client, work: Path, inputs: Path, workers: int, size: int) -> tuple[float, list[list[str]]]:
    """A job of `workers` workers over `inputs`: its throughput (files per second) and its rows."""
    name = f"gpu-check-{workers}"
    code_id = f"{WORKSPACE}/codes/{name}/versions/1"
    client.put(code_id, params=V, json={"properties": {"codeUri": str(work / "code")}}).raise_for_status()
    endpoint = f"{WORKSPACE}/batchEndpoints/{name}"
    put_and_wait(client, endpoint, {"location": "local", "properties": {"authMode": "AADToken"}})
    settings = {
        "codeConfiguration": {"codeId": code_id, "scoringScript": "score.py"},
        "miniBatchSize": 1,
        "maxConcurrencyPerInstance": workers,
        "errorThreshold": 0,
        "retrySettings": {"maxRetries": 0, "timeout": "PT600S"},
        "environmentVariables": {"GPU_CHECK_SIZE": str(size)},
    }
    put_and_wait(client, f"{endpoint}/deployments/main", {"location": "local", "properties": settings}, 600)
    scoring_uri = client.get(endpoint, params=V).json()["properties"]["scoringUri"]
    body = {"properties": {"name": name, "inputData": {"in": {"jobInputType": "UriFolder", "uri": str(inputs)}}}}
    headers = {"azureml-model-deployment": "main"}
    clock = time.perf_counter()
    client.post(scoring_uri, json=body, headers=headers).raise_for_status()
    while (job := client.get(f"{WORKSPACE}/jobs/{name}", params=V).json()["properties"])["status"] not in (
        "Completed",
        "Failed",
        "Canceled",
    ):
        time.sleep(0.1)
    seconds = time.perf_counter() - clock
    if job["status"] != "Completed":
        raise RuntimeError(f"the job {name} ended {job['status']}: {job.get('error') or job.get('statusMessage')}")
    output = next((work / "server" / "storage").glob(f"*/azureml-blobstore-*/azureml/{name}/score/predictions.csv"))
    rows = [line.split() for line in output.read_text().splitlines()]
    return len(rows) / seconds, rows


def report(gpus: tuple[str, ...], one: tuple[float, list[list[str]]], many: tuple[float, list[list[str]]]) -> int:
    (single, _), (parallel, rows) = one, many
    devices = {pid: (visible, uuid) for _, pid, visible, uuid, _ in rows}
    counts = {found for *_, found in rows}
    scaling = parallel / single
    print(f"GPUs: {', '.join(gpus)}")
    print(f"1 worker: {single:.2f} files/s; {len(gpus)} workers: {parallel:.2f} files/s ({scaling:.2f}x)")
    for pid, (visible, uuid) in sorted(devices.items()):
        print(f"  worker pid {pid}: CUDA_VISIBLE_DEVICES={visible} device {uuid}")
    problems = []
    if len({uuid for _, uuid in devices.values()}) != len(devices):
        problems.append("two workers used the same GPU")
    if counts != {str(len(gpus))}:
        problems.append(f"AZ_BATCHAI_GPU_COUNT_FOUND was {sorted(counts)}, not {len(gpus)}")
    if scaling < SCALING_TARGET * len(gpus):
        problems.append(f"throughput scaled {scaling:.2f}x, under {SCALING_TARGET * len(gpus):.2f}x")
    for problem in problems:
        print(f"MISSED: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
