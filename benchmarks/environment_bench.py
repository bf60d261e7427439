"""Environment reuse benchmark: provisioning a deployment whose environment spec is already built.

Target (issue 7): the second deployment of an already-built spec becomes Succeeded without building, in under
1 s. In one run, in-process on the service layer (the HTTP layer is the API benchmark's concern):

- baseline: a deployment with no environment (it runs in the server's interpreter; nothing to build);
- first build: a deployment whose environment (one small package, `six`) is built;
- reuse: deployments of other environment versions with the same conda file (same spec hash).

Reuse must take under 1 s and must not build (the environment cache holds one environment); the ratio
reuse/baseline shows what finding a cached environment adds to provisioning.

Usage: python benchmarks/environment_bench.py [--no-fail] [--rounds N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from batchpoint.config import Settings
from batchpoint.services.container import SYSTEM, Services
from batchpoint.services.ids import workspace_id
from batchpoint.store.entities import OperationStatus

WORKSPACE = workspace_id("00000000-0000-0000-0000-000000000000", "local", "default")
CONDA_FILE = "dependencies:\n- pip:\n  - six==1.16.0\n"
REUSE_TARGET_SECONDS = 1.0


def provision_seconds(services: Services, name: str, properties: dict[str, object]) -> float:
    """Seconds from the deployment PUT to its provisioning operation's end; raises if it did not succeed."""
    started = time.perf_counter()
    accepted = services.deployments.put(
        SYSTEM, f"{WORKSPACE}/batchEndpoints/bench/deployments/{name}", {"location": "local", "properties": properties}
    )
    assert accepted.operation is not None
    while (operation := services.store.get_operation(accepted.operation.id)) and not operation.status.terminal:
        time.sleep(0.002)
    elapsed = time.perf_counter() - started
    if operation is None or operation.status is not OperationStatus.SUCCEEDED:
        raise SystemExit(f"deployment {name} did not provision: {operation and operation.error_message}")
    return elapsed


def environment(services: Services, name: str) -> str:
    version = f"{WORKSPACE}/environments/{name}/versions/1"
    services.assets.put_version(SYSTEM, "environments", version, {"properties": {"condaFile": CONDA_FILE}})
    return version


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--no-fail", action="store_true")
    parser.add_argument("--rounds", type=int, default=5)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        services = Services.open(Settings(home=Path(home)))
        services.start()
        try:
            endpoint = {"location": "local", "properties": {"authMode": "AADToken"}}
            services.endpoints.put(SYSTEM, f"{WORKSPACE}/batchEndpoints/bench", endpoint)
            provision_seconds(services, "warmup", {})
            first = provision_seconds(services, "first", {"environmentId": environment(services, "env0")})
            baseline, reuse = [], []
            for round_number in range(1, arguments.rounds + 1):
                baseline.append(provision_seconds(services, f"plain{round_number}", {}))
                reuse.append(provision_seconds(services, f"reuse{round_number}", {"environmentId": environment(services, f"env{round_number}")}))
            built = [path for path in services.environments.cache.root.iterdir() if path.name not in ("logs", "locks")]
        finally:
            services.close()
    reuse_median, baseline_median = statistics.median(reuse), statistics.median(baseline)
    print(f"first build           {first:8.3f} s")
    print(f"no environment        {baseline_median:8.3f} s (median of {arguments.rounds})")
    print(f"reuse of a built spec {reuse_median:8.3f} s (median of {arguments.rounds}; worst {max(reuse):.3f} s)")
    print(f"ratio reuse/baseline  {reuse_median / baseline_median:8.2f}")
    print(f"environments built    {len(built):8d}")
    ok = max(reuse) < REUSE_TARGET_SECONDS and len(built) == 1
    print("environment reuse:", "met" if ok else "NOT met", f"(target: every reuse under {REUSE_TARGET_SECONDS:.0f} s, one build)")
    return 0 if ok or arguments.no_fail else 1


if __name__ == "__main__":
    sys.exit(main())
