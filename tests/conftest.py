from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from batchpoint.cli.native.env import EXPORTED, UNSET
from tests import processes
from tests.server import Server, create_postgres_database, postgres_available
from tests.warm import SERVER_MODULES, Warm

pytest_plugins = ["tests.scheduling", "tests.no_skips", "tests.databases"]

for _name in (*EXPORTED, *UNSET):  # a shell set up with `eval "$(batchpoint env)"` points the SDKs at its server
    os.environ.pop(_name, None)

ALL_BACKENDS = ["sqlite", "postgresql"]
BACKENDS = os.environ.get("BATCHPOINT_TEST_BACKENDS", "sqlite").split(",")
"""The databases the HTTP suites run on. PostgreSQL is covered by the store and ledger contract tests and the
multi-replica tests; `make test-postgres` runs every HTTP suite on it too."""


def database_url_for(backend: str) -> str | None:
    if backend == "sqlite":
        return None
    if not postgres_available():
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432 (set BATCHPOINT_TEST_POSTGRES to point elsewhere)")
    return create_postgres_database()


def pytest_collection_finish(session: pytest.Session) -> None:
    """What collecting imported (azure-ai-ml, mlflow, ray, ...) stays until the end: from now on the garbage
    collector skips it, in each full collection during the tests and in pytest's collections at the end."""
    gc.collect()
    gc.freeze()


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="session")
def local_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder under which ``server``'s jobs may read inputs and write outputs by local path
    (``serve --allow-local-path``); each module works in a folder of its own inside."""
    return tmp_path_factory.mktemp("local-data")


@pytest.fixture(scope="session", autouse=True)
def warm_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Servers are forked from one warm process per test process (tests/warm.py), started at the first server start:
    each start then skips the 2 s of importing FastAPI, SQLAlchemy and the routes. ``Server(cold=True)`` starts
    ``python -m batchpoint serve`` itself."""
    Server.warm = Warm(tmp_path_factory.mktemp("warm-server"), SERVER_MODULES)
    yield
    Server.warm.stop()
    Server.warm = None


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, backend: str, local_data: Path) -> Iterator[Server]:
    """The real server on a free port, over plain HTTP, on the parametrized database backend.

    Shared by every module a test process runs, whose tests use names of their own; a test that needs a server of
    its own (other options, a restart, counting what it holds) starts one."""
    running = Server(
        home=tmp_path_factory.mktemp("home"),
        database_url=database_url_for(backend),
        args=["--allow-local-path", str(local_data)],
    ).start()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The real server as users start it: HTTPS with its own certificate authority, SQLite; shared as ``server``."""
    running = Server(home=tmp_path_factory.mktemp("home"), tls=True).start()
    yield running
    running.stop()


RAY_NODE = {"num_cpus": 2, "object_store_memory": 78 * 1024**2, "include_log_monitor": False}
"""Each node of the test cluster declares two logical CPUs (the machine has two cores). No log monitor: it streams the
workers' output to drivers, which batchpoint does not ask for (``log_to_driver=False``), and polled the session's
log files for 6-11 s of CPU per run."""
RAY_HEALTH_CHECKS = {"health_check_period_ms": 500, "health_check_timeout_ms": 500, "health_check_failure_threshold": 3}
"""A lost node is declared dead after about 1.5 s instead of Ray's default of about 15 s: what the tests check is
what batchpoint does once Ray has, not how long Ray waits (an operator tunes the same settings on a real head)."""


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Any]:
    """A real three-node Ray cluster on this machine (``ray.cluster_utils.Cluster``), started once for the Ray
    modules, which tests/scheduling.py keeps in one test process."""
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={**RAY_NODE, "_system_config": RAY_HEALTH_CHECKS})
    cluster.add_node(**RAY_NODE)
    cluster.add_node(**RAY_NODE)
    cluster.wait_for_nodes()
    yield cluster
    ray.shutdown()
    cluster.shutdown()


@pytest.fixture
def subreaper() -> Iterator[None]:
    with processes.child_subreaper():
        yield


@pytest.fixture
def kill_seed() -> int:
    return processes.kill_seed()
