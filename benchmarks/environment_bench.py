"""Environment benchmarks: building an environment with uv against pip, and reusing a built one.

Builds (issue 16): one spec (default: pandas 2.3 on the server's Python) built by pip and by uv into fresh
environment caches, each with an empty installer cache (cold: everything downloaded) and then with the cache
the first build filled (warm). Targets, as ratios to pip in the same run: uv cold at most 0.5x pip cold, uv warm
at most 0.25x pip warm. The installer caches are temporary folders (`PIP_CACHE_DIR`, `UV_CACHE_DIR`), so the
user's own caches are neither used nor touched.

Reuse (issue 7): the second deployment of an already-built spec becomes Succeeded without building, in under
1 s. In one run, in-process on the service layer (the HTTP layer is the API benchmark's concern):

- baseline: a deployment with no environment (it runs in the server's interpreter; nothing to build);
- first build: a deployment whose environment (one small package, `six`) is built;
- reuse: deployments of other environment versions with the same conda file (same spec hash).

Reuse must take under 1 s and must not build (the environment cache holds one environment); the ratio
reuse/baseline shows what finding a cached environment adds to provisioning.

Usage: python benchmarks/environment_bench.py [--no-fail] [--rounds N] [--requirement LINE ...] [--no-builds]
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from batchpoint.app.wiring import SYSTEM, Services
from batchpoint.arm.ids import workspace_id
from batchpoint.arm.tracked import Accepted
from batchpoint.config import Settings
from batchpoint.ml.assets.resource_types import ENVIRONMENT_VERSIONS
from batchpoint.ml.endpoints.resource_types import BATCH_DEPLOYMENTS, BATCH_ENDPOINTS
from batchpoint.runtime.environments.cache import EnvironmentCache
from batchpoint.runtime.environments.installers import choose_installer
from batchpoint.runtime.environments.interpreters import PythonFinder
from batchpoint.runtime.environments.spec import EnvironmentSpec
from batchpoint.store.entities import OperationStatus
from targets import arguments, exit_status

WORKSPACE = workspace_id("00000000-0000-0000-0000-000000000000", "local", "default")
CONDA_FILE = "dependencies:\n- pip:\n  - six==1.16.0\n"
REUSE_TARGET_SECONDS = 1.0
BUILD_REQUIREMENTS = ("pandas==2.3.*", "numpy<3")
INSTALLER_CACHES = {"pip": "PIP_CACHE_DIR", "uv": "UV_CACHE_DIR"}
BUILD_TARGETS = {"cold": 0.5, "warm": 0.25}
"""The most uv's build time may be, as a fraction of pip's, with the installer cache empty and filled."""


def provision_seconds(services: Services, name: str, properties: dict[str, object]) -> float:
    """Seconds from the deployment PUT to its provisioning operation's end; raises if it did not succeed."""
    started = time.perf_counter()
    accepted = services.resource_service(BATCH_DEPLOYMENTS).put(
        SYSTEM, f"{WORKSPACE}/batchEndpoints/bench/deployments/{name}", {"location": "local", "properties": properties}
    )
    assert isinstance(accepted, Accepted) and accepted.operation is not None
    while (operation := services.store.get_operation(accepted.operation.id)) and not operation.status.terminal:
        time.sleep(0.002)
    elapsed = time.perf_counter() - started
    if operation is None or operation.status is not OperationStatus.SUCCEEDED:
        raise SystemExit(f"deployment {name} did not provision: {operation and operation.error_message}")
    return elapsed


def environment(services: Services, name: str) -> str:
    version = f"{WORKSPACE}/environments/{name}/versions/1"
    services.resource_service(ENVIRONMENT_VERSIONS).put(SYSTEM, version, {"properties": {"condaFile": CONDA_FILE}})
    return version


def build_seconds(installer: str, requirements: list[str], installer_cache: Path, root: Path) -> float:
    """Seconds to build `requirements` on the server's Python into a new environment cache under `root`."""
    spec = EnvironmentSpec(tuple(requirements), source="the benchmark").built_with(PythonFinder().host)
    cache = EnvironmentCache(root, installer=choose_installer(installer))
    previous = os.environ.get(INSTALLER_CACHES[installer])
    os.environ[INSTALLER_CACHES[installer]] = str(installer_cache)
    try:
        started = time.perf_counter()
        cache.ensure(spec)
        return time.perf_counter() - started
    finally:
        if previous is None:
            del os.environ[INSTALLER_CACHES[installer]]
        else:
            os.environ[INSTALLER_CACHES[installer]] = previous


def compare_builds(requirements: list[str]) -> bool:
    """Build `requirements` with pip and uv, cold and warm; print the times and ratios; True if the targets hold."""
    seconds: dict[tuple[str, str], float] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for installer in INSTALLER_CACHES:
            installer_cache = Path(scratch, f"{installer}-cache")
            for state in BUILD_TARGETS:
                seconds[installer, state] = build_seconds(
                    installer, requirements, installer_cache, Path(scratch, f"{installer}-{state}")
                )
    print(f"building {' '.join(requirements)} on Python {PythonFinder().host.version}")
    met = True
    for state, target in BUILD_TARGETS.items():
        ratio = seconds["uv", state] / seconds["pip", state]
        met = met and ratio <= target
        print(
            f"  {state:5} cache: pip {seconds['pip', state]:7.1f} s, uv {seconds['uv', state]:6.1f} s, "
            f"uv/pip {ratio:5.2f} (target <= {target})"
        )
    print("environment builds:", "met" if met else "NOT met")
    return met


def main() -> int:
    parser = arguments(__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--requirement", action="append", help=f"a requirement line to build (default: {' '.join(BUILD_REQUIREMENTS)})"
    )
    parser.add_argument("--no-builds", action="store_true", help="measure only the reuse of a built environment")
    options = parser.parse_args()
    builds_met = options.no_builds or compare_builds(options.requirement or list(BUILD_REQUIREMENTS))
    with tempfile.TemporaryDirectory() as home:
        services = Services.open(Settings(home=Path(home)))
        services.start()
        try:
            endpoint = {"location": "local", "properties": {"authMode": "AADToken"}}
            services.resource_service(BATCH_ENDPOINTS).put(SYSTEM, f"{WORKSPACE}/batchEndpoints/bench", endpoint)
            provision_seconds(services, "warmup", {})
            first = provision_seconds(services, "first", {"environmentId": environment(services, "env0")})
            baseline, reuse = [], []
            for round_number in range(1, options.rounds + 1):
                baseline.append(provision_seconds(services, f"plain{round_number}", {}))
                reuse.append(
                    provision_seconds(
                        services, f"reuse{round_number}", {"environmentId": environment(services, f"env{round_number}")}
                    )
                )
            built = [path for path in services.environments.cache.root.iterdir() if path.name not in ("logs", "locks")]
        finally:
            services.close()
    reuse_median, baseline_median = statistics.median(reuse), statistics.median(baseline)
    print(f"first build           {first:8.3f} s")
    print(f"no environment        {baseline_median:8.3f} s (median of {options.rounds})")
    print(f"reuse of a built spec {reuse_median:8.3f} s (median of {options.rounds}; worst {max(reuse):.3f} s)")
    print(f"ratio reuse/baseline  {reuse_median / baseline_median:8.2f}")
    print(f"environments built    {len(built):8d}")
    ok = max(reuse) < REUSE_TARGET_SECONDS and len(built) == 1
    print(
        "environment reuse:",
        "met" if ok else "NOT met",
        f"(target: every reuse under {REUSE_TARGET_SECONDS:.0f} s, one build)",
    )
    return exit_status((ok and builds_met), options.no_fail)


if __name__ == "__main__":
    sys.exit(main())
