"""Store benchmark: a workspace with 50,000 jobs against one with 10, in the same run.

Each data directory gets an endpoint with one deployment through the HTTP API, then its jobs straight through the
store (one transaction). Then the server starts on it and these are timed:

- server start-up: what a server does at start (open the store, defaults, role assignments, resume), in this
  process, best of a few; how long ``batchpoint serve`` takes until it answers is printed too, interpreter start
  and imports included;
- the endpoint's job list (``batch_endpoints.list_jobs``: the first page of the data-plane route);
- the web page's job list (the endpoint's page, signed in): its first page, and the jobs of a status none has
  (every job completed), which its status index finds without reading the others (docs/decisions.md, 18);
- ``jobs.list()`` (the first page of ``GET {workspace}/jobs``);
- a GET of one job;
- the role-assignment reload every server process does every 2 s (in this process, on the same database).

Requests are timed one at a time on one keep-alive connection, the median of many. Targets: with 50,000 jobs the
job list and ``jobs.list()`` within 50 ms, the web page's job list within 100 ms either way, a GET within 10 ms,
start-up within 1 s, and the role reload no slower than with 10 jobs (within noise: at most 1.5 times, or 1 ms
more). Ratios 50,000 ÷ 10 are printed for each figure.

Usage: python benchmarks/store_bench.py [--no-fail] [--jobs N] [--requests N]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from api_bench import batchpoint_command, free_port, running
from batchpoint.access.issuer import ensure_issuer
from batchpoint.access.rbac import RoleAssignments
from batchpoint.app.wiring import Services
from batchpoint.config import Settings
from batchpoint.jobs.invoke import DataInput, Routing, job_document, model_job_io
from batchpoint.jobs.wire import InvokeProperties
from batchpoint.store import Store, open_store
from batchpoint.store.entities import Resource, utcnow
from batchpoint.store.indexes import JOB_TYPE
from targets import arguments, exit_status

API = {"api-version": "2025-12-01"}
DATA_PLANE = {"api-version": "2020-09-01-dataplanepreview"}
WORKSPACE = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/local"
    "/providers/Microsoft.MachineLearningServices/workspaces/default"
)
ENDPOINT = f"{WORKSPACE}/batchEndpoints/bench"
USER = "bench@example.com"
SMALL, LARGE = 10, 50_000
STARTS = 3
RELOADS = 20
INSERT_BATCH = 1000
REQUEST = InvokeProperties.model_validate(
    {
        "inputData": {
            "UriFolder": {"jobInputType": "UriFolder", "uri": "azureml://datastores/workspaceblobstore/paths/in/"}
        }
    }
)
DATA = DataInput.of(REQUEST.inputData)


WEB_LIST, WEB_LIST_BY_STATUS = "web page job list", "web page, by status"
ENDPOINT_PAGE = "/workspaces/00000000-0000-0000-0000-000000000000/local/default/endpoints/bench"


@dataclass(frozen=True)
class Target:
    name: str
    limit_ms: float


TARGETS = (
    Target("endpoint job list", 50),
    Target("jobs.list()", 50),
    Target(WEB_LIST, 100),
    Target(WEB_LIST_BY_STATUS, 100),
    Target("GET job", 10),
    Target("server start-up", 1000),
)
ROLE_RELOAD = "role reload"
PROCESS_START = "process ready"


@contextmanager
def serving(home: Path) -> Iterator[tuple[str, float]]:
    """``batchpoint serve`` on ``home``: its base URL, and how many seconds it took to answer."""
    port = free_port()
    command = [*batchpoint_command(port, home), "--owner", USER]
    started = time.perf_counter()
    with running(command, port, home / f"server-{port}.log"):
        yield f"http://127.0.0.1:{port}", time.perf_counter() - started


def client(home: Path, base_url: str) -> httpx.Client:
    token = ensure_issuer(home).mint(audience=base_url, user=USER, minutes=60)
    return httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=60)


@contextmanager
def signed_in(http: httpx.Client, base_url: str) -> Iterator[httpx.Client]:
    """A client signed in to the web page (its session cookie), as a browser is after the sign-in link."""
    with httpx.Client(base_url=base_url, timeout=60) as page:
        checked(page.get(checked(http.post("/signin/links")).json()["url"], follow_redirects=True))
        yield page


def deploy(home: Path) -> None:
    """The endpoint ``bench`` with the deployment ``blue``, through the API as a user makes them."""
    with serving(home) as (base_url, _), client(home, base_url) as http:
        body = {"location": "local", "properties": {"authMode": "AADToken"}}
        http.put(ENDPOINT, params=API, json=body).raise_for_status()
        http.put(
            f"{ENDPOINT}/deployments/blue", params=API, json={"location": "local", "properties": {}}
        ).raise_for_status()
        deadline = time.monotonic() + 60
        while (
            http.get(f"{ENDPOINT}/deployments/blue", params=API).json()["properties"]["provisioningState"]
            != "Succeeded"
        ):
            if time.monotonic() > deadline:
                raise RuntimeError("the deployment did not provision")
            time.sleep(0.1)


def insert_jobs(store: Store, count: int) -> float:
    """``count`` finished jobs of the endpoint, as invokes store them; returns the seconds it took."""
    endpoint, deployment = store.get(ENDPOINT), store.get(f"{ENDPOINT}/deployments/blue")
    assert endpoint is not None and deployment is not None
    routing = Routing(deployment, "endpoint default deployment")
    started = time.perf_counter()
    with store.transaction():
        for first in range(0, count, INSERT_BATCH):
            store.insert_many([finished_job(endpoint, routing) for _ in range(first, min(count, first + INSERT_BATCH))])
    return time.perf_counter() - started


def finished_job(endpoint: Resource, routing: Routing) -> Resource:
    name = f"batchjob-{uuid.uuid4()}"
    document = job_document(name, endpoint, routing, REQUEST, model_job_io(name, REQUEST, DATA))
    document["properties"]["status"] = "Completed"
    body = {"id": f"{WORKSPACE}/jobs/{name}", "name": name, "type": JOB_TYPE, **document}
    now = utcnow()
    return Resource(id=body["id"], type=JOB_TYPE, body=body, created_at=now, updated_at=now)


def median_ms(call: Callable[[], object], repeats: int) -> float:
    call()  # warm caches and the connection
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1000


def checked(response: httpx.Response) -> httpx.Response:
    response.raise_for_status()
    return response


def start_up_ms(home: Path) -> float:
    """What a server does at start, in this process: open the store (migrations checked), make sure of the defaults,
    load the role assignments, resume unfinished work. Best of a few starts."""
    timings = []
    for _ in range(STARTS):
        started = time.perf_counter()
        services = Services.open(Settings(home=home))
        services.start()
        timings.append(time.perf_counter() - started)
        services.close()
    return min(timings) * 1000


def measure(home: Path, requests: int) -> dict[str, float]:
    figures = {"server start-up": start_up_ms(home)}
    with serving(home) as (base_url, elapsed), client(home, base_url) as http:
        figures[PROCESS_START] = elapsed * 1000
        first_job = http.get(f"{WORKSPACE}/jobs", params={**API, "$top": "1"}).json()["value"][0]["id"]
        mfe = f"/mferp/managementfrontend{ENDPOINT}/jobs"
        figures["endpoint job list"] = median_ms(lambda: checked(http.get(mfe, params=DATA_PLANE)), requests)
        figures["jobs.list()"] = median_ms(lambda: checked(http.get(f"{WORKSPACE}/jobs", params=API)), requests)
        figures["GET job"] = median_ms(lambda: checked(http.get(first_job, params=API)), requests)
        with signed_in(http, base_url) as page:
            figures[WEB_LIST] = median_ms(lambda: checked(page.get(ENDPOINT_PAGE)), requests)
            failed = {"status": "Failed"}
            figures[WEB_LIST_BY_STATUS] = median_ms(lambda: checked(page.get(ENDPOINT_PAGE, params=failed)), requests)
    store = open_store(f"sqlite:///{home / 'batchpoint.db'}")
    try:
        figures[ROLE_RELOAD] = median_ms(RoleAssignments(store).start_refreshing, RELOADS)
    finally:
        store.close()
    return figures


def prepare(root: Path, count: int) -> Path:
    home = root / f"jobs-{count}"
    home.mkdir()
    deploy(home)
    store = open_store(f"sqlite:///{home / 'batchpoint.db'}")
    try:
        seconds = insert_jobs(store, count)
    finally:
        store.close()
    print(f"{count:>6} jobs inserted through the store in {seconds:.1f} s ({count / seconds:,.0f} jobs/s)")
    return home


def report(counts: tuple[int, int], small: dict[str, float], large: dict[str, float]) -> bool:
    print(f"\n{'figure':<22} {counts[0]:>8} jobs {counts[1]:>8} jobs {'ratio':>7}  target")

    def line(name: str, verdict: str) -> None:
        ratio = large[name] / small[name]
        print(f"{name:<22} {small[name]:>10.2f} ms {large[name]:>10.2f} ms {ratio:>7.2f}  {verdict}")

    passed = True
    for target in TARGETS:
        ok = large[target.name] <= target.limit_ms
        passed &= ok
        line(target.name, f"<= {target.limit_ms:g} ms {'PASS' if ok else 'FAIL'}")
    ok = large[ROLE_RELOAD] <= 1.5 * small[ROLE_RELOAD] or large[ROLE_RELOAD] - small[ROLE_RELOAD] <= 1.0
    passed &= ok
    line(ROLE_RELOAD, f"no slower than with {counts[0]} jobs {'PASS' if ok else 'FAIL'}")
    line(PROCESS_START, "(information: interpreter and imports included)")
    return passed


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__)
    parser.add_argument("--jobs", type=int, default=LARGE, help="jobs in the large workspace")
    parser.add_argument("--requests", type=int, default=200, help="timed requests per figure")
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="store-bench-") as folder:
        small_home, large_home = prepare(Path(folder), SMALL), prepare(Path(folder), options.jobs)
        small, large = measure(small_home, options.requests), measure(large_home, options.requests)
    passed = report((SMALL, options.jobs), small, large)
    return exit_status(passed, options.no_fail)


if __name__ == "__main__":
    sys.exit(main())
