"""Chaos soak: three replicas on one PostgreSQL database, steady invokes through random replicas, and every few
seconds one fault, as an operator's worst hour would bring them; then the invariants.

What runs (all on this machine, all real):

- a private PostgreSQL server (the system's `postgres`, run as the `postgres` user when this runs as root) on a
  free port in a temporary folder, so that it can be restarted without touching anyone else's database;
- a small Ray cluster (`ray.cluster_utils.Cluster`: a head and one more node, Ray's node health checks at about
  1.5 s) behind a compute;
- three `batchpoint serve` replicas (5-second leases, one shared storage root, the Ray cluster's address);
- two deployments: one on the built-in compute (local worker processes), one on a compute that runs on Ray.

The load: an invoke every 2 to 6 s through a random replica, of 40 to 160 files; a request that meets a fault
(a dead or frozen replica, a 503) is sent again through another replica with the same repeatability id, as a
client behind a balancer does.

The faults, one every 3 to 8 s, each picked at random: kill -9 of a replica (restarted at once), SIGTERM of a
replica (restarted once it stopped), SIGSTOP of a replica for 1.3 to 2.2 leases then SIGCONT,
`pg_terminate_backend` of every connection, kill -9 of a job worker, a restart of PostgreSQL (`pg_ctl restart -m
fast`), and the loss of the Ray node (killed without grace, added back 3 s later).

The invariants, checked once the faults and the load have stopped and every job has ended:

- every job (and each one's scoring child) is Completed;
- each output holds its input's rows exactly once and in input order, and nothing else is left in its folder;
- no job ever left a terminal state (every job's status is polled from the database 5 times a second, on the
  `jobs` index and in the body clients read, and every transition is recorded);
- no request was answered 500;
- no job worker outlives the jobs, and no process of the soak outlives it;
- the recovery time: from the end of the last fault to every job ended.

Usage: python benchmarks/soak.py --minutes N --seed S [--keep]   (`make soak`; exits 1 on a violation)
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg

from api_bench import free_port
from served_bench import put_and_wait

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.server: waiting for a server
from tests.server import wait_for_port

API = "2025-12-01"
V = {"api-version": API}
WORKSPACE = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/local"
    "/providers/Microsoft.MachineLearningServices/workspaces/default"
)
LEASE_SECONDS = 5.0
REPLICAS = 3
USER = "soak@example.com"
"""The soak's caller: an owner of every replica (`serve --owner`), its tokens minted by each replica's issuer."""
TERMINAL = ("Completed", "Failed", "Canceled")
INPUT_SIZES = (40, 80, 120, 160)
DATABASE = "soak"
LOCAL, ON_RAY = "soak-local", "soak-ray"
"""The two endpoints: the built-in compute's worker processes, and the Ray cluster."""
SCRIPT = """
import os
import time

def run(mini_batch):
    time.sleep(0.25)
    return [os.path.basename(path) for path in mini_batch]
"""
"""Each row is its file's name, so the rows of an output say which inputs they came from, and in which order."""
WORKER_MARK = "sandbox/boot.py"
"""In the command line of every job worker and pipeline step (`runtime/spawn.py`)."""
RAY_NODE = {"num_cpus": 4, "object_store_memory": 78 * 1024**2}
"""Logical CPUs: room for the Ray jobs of three replicas at once on one node, when the other is lost."""
RAY_HEALTH_CHECKS = {"health_check_period_ms": 500, "health_check_timeout_ms": 500, "health_check_failure_threshold": 3}


# --- PostgreSQL ---------------------------------------------------------------------------------------------


@dataclass
class Postgres:
    """A private PostgreSQL server in `folder`, on its own port: restarting it touches no one else's database."""

    folder: Path
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{DATABASE}"

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{DATABASE}"

    def start(self) -> Postgres:
        self.folder.mkdir()
        if os.geteuid() == 0:  # postgres refuses to run as root
            shutil.chown(self.folder, "postgres", "postgres")
        self._run("initdb", "-D", str(self.folder / "data"), "-A", "trust", "-U", "postgres", "--no-sync")
        self._ctl("start")
        with psycopg.connect(self.admin_url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{DATABASE}"')
        return self

    def restart(self) -> None:
        self._ctl("restart", "-m", "fast")

    def stop(self) -> None:
        self._ctl("stop", "-m", "fast")

    def terminate_connections(self) -> int:
        """End every session on the soak's database (the replicas' and anyone's): how many."""
        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            ended = connection.execute(
                "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()) AS ended",
                (DATABASE,),
            ).fetchone()
        return int(ended[0]) if ended else 0

    def _ctl(self, *action: str) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c max_connections=300"
        data, log = str(self.folder / "data"), str(self.folder / "postgres.log")
        self._run("pg_ctl", "-D", data, "-l", log, "-w", "-t", "60", "-o", options, *action)

    def _run(self, program: str, *args: str) -> None:
        as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*as_postgres, str(postgres_bin() / program), *args], check=True, capture_output=True)


def postgres_bin() -> Path:
    """The newest PostgreSQL of the system (Debian's layout), else the one `pg_config` names."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda path: int(path.parent.name))
    if found:
        return found[-1]
    return Path(subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True).stdout.strip())


# --- replicas -----------------------------------------------------------------------------------------------


@dataclass
class Replica:
    number: int
    home: Path
    arguments: list[str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    token: str = ""

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.home.mkdir(exist_ok=True)
        serve = ["serve", "--http", "--port", str(self.port), "--home", str(self.home), *self.arguments]
        with open(self.home / "server.log", "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "batchpoint", *serve], stdout=log, stderr=subprocess.STDOUT
            )
        # a loaded machine starts slowly
        wait_for_port(self.process, self.port, "server", str(self.home / "server.log"), 180)
        if not self.token:
            mint = ["token", "--home", str(self.home), "--user", USER, "--minutes", "600"]
            minted = subprocess.run(
                [sys.executable, "-m", "batchpoint", *mint], capture_output=True, text=True, check=True
            )
            self.token = minted.stdout.strip()

    def signal(self, number: int) -> None:
        assert self.process is not None
        self.process.send_signal(number)

    def wait(self, timeout: float) -> None:
        """Wait for the process to exit; kill it if it takes longer."""
        assert self.process is not None
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def client(self, timeout: float = 30) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)


def deploy(client: httpx.Client, code: Path) -> None:
    """The two endpoints, each with its default deployment of SCRIPT; the Ray one on a compute of its own."""
    code.mkdir()
    (code / "score.py").write_text(SCRIPT)
    code_id = f"{WORKSPACE}/codes/soak/versions/1"
    client.put(code_id, params=V, json={"properties": {"codeUri": str(code)}}).raise_for_status()
    compute = f"{WORKSPACE}/computes/soak-ray"
    scale = {"maxNodeCount": 3, "minNodeCount": 0, "nodeIdleTimeBeforeScaleDown": "PT2M"}
    put_and_wait(client, compute, {"location": "local", "properties": {"computeType": "AmlCompute", "properties": {
        "scaleSettings": scale}}})  # fmt: skip
    settings: dict[str, Any] = {
        "codeConfiguration": {"codeId": code_id, "scoringScript": "score.py"},
        "miniBatchSize": 5,
        "maxConcurrencyPerInstance": 2,
    }
    ray_settings = {**settings, "compute": compute, "resources": {"instanceCount": 1}}
    for endpoint, deployment in ((LOCAL, settings), (ON_RAY, ray_settings)):
        url = f"{WORKSPACE}/batchEndpoints/{endpoint}"
        put_and_wait(client, url, {"location": "local", "properties": {"authMode": "AADToken"}})
        put_and_wait(client, f"{url}/deployments/main", {"location": "local", "properties": deployment})
        body = client.get(url, params=V).json()
        body["properties"]["defaults"] = {"deploymentName": "main"}
        put_and_wait(client, url, body)


# --- the soak's world ---------------------------------------------------------------------------------------


@dataclass
class Findings:
    """What the soak saw: counted as it runs, checked at the end."""

    accepted: dict[str, tuple[Path, float]] = field(default_factory=dict)
    """Accepted invokes: job name -> its input folder, and when it was accepted (monotonic)."""
    refused: list[str] = field(default_factory=list)
    """Invokes no replica accepted: answered 4xx, or nothing but faults for a minute."""
    errors_500: list[str] = field(default_factory=list)
    transitions: dict[str, list[tuple[float, str]]] = field(default_factory=dict)
    """Per job, every status it was read in (from the body clients read, and from the jobs index), with when."""
    regressions: list[str] = field(default_factory=list)
    faults: list[tuple[float, float, str]] = field(default_factory=list)
    """Each fault: when it started and ended (monotonic), and what it was."""
    lock: threading.Lock = field(default_factory=threading.Lock)


class World:
    def __init__(self, root: Path, seed: int) -> None:
        self.root = root
        self.shared = root / "shared"
        self.shared.mkdir()
        self.findings = Findings()
        self.stop_load = threading.Event()
        self.stop_watch = threading.Event()
        self.load_random = random.Random(f"{seed}-load")
        self.fault_random = random.Random(f"{seed}-faults")
        self.postgres = Postgres(root / "postgres")
        self.ray: Any = None
        self.ray_node: Any = None
        self.replicas: list[Replica] = []
        self.inputs = [self._write_inputs(count) for count in INPUT_SIZES]

    def _write_inputs(self, count: int) -> Path:
        folder = self.shared / f"in-{count}"
        folder.mkdir()
        for index in range(count):
            (folder / f"f{index:05d}.txt").write_text(f"{index}\n")
        return folder

    # --- setup and teardown ---

    def start(self) -> None:
        self.postgres.start()
        self._start_ray()
        arguments = [
            *("--database-url", self.postgres.url, "--lease-seconds", str(LEASE_SECONDS)),
            *("--storage-root", str(self.shared), "--allow-local-path", str(self.shared)),
            *("--ray-address", self.ray.address, "--ray-shared-path", str(self.shared)),
            *("--worker-user", str(os.geteuid()), "--owner", USER),
        ]
        for number in range(REPLICAS):
            replica = Replica(number, self.root / f"replica-{number}", arguments)
            replica.start()
            self.replicas.append(replica)
        with self.replicas[0].client(timeout=60) as client:
            deploy(client, self.shared / "code")

    def _start_ray(self) -> None:
        from ray.cluster_utils import Cluster

        head = {**RAY_NODE, "_system_config": RAY_HEALTH_CHECKS}
        self.ray = Cluster(initialize_head=True, head_node_args=head)
        self.ray_node = self.ray.add_node(**RAY_NODE)
        self.ray.wait_for_nodes()

    def stop(self) -> None:
        for replica in self.replicas:
            if replica.process is not None and replica.process.poll() is None:
                replica.signal(signal.SIGCONT)
                replica.signal(signal.SIGTERM)
        for replica in self.replicas:
            if replica.process is not None:
                replica.wait(30)
        if self.ray is not None:
            self.ray.shutdown()
        if (self.postgres.folder / "data" / "postmaster.pid").exists():
            self.postgres.stop()

    # --- load ---

    def load(self) -> None:
        """Invoke every 2 to 6 s until told to stop, then wait for the invokes in flight."""
        number, invokes = 0, []
        while not self.stop_load.wait(self.load_random.uniform(2, 6)):
            number += 1
            endpoint = ON_RAY if self.load_random.random() < 0.25 else LOCAL
            folder = self.load_random.choice(self.inputs)
            invokes.append(threading.Thread(target=self._invoke, args=(f"soak-{number:05d}", endpoint, folder)))
            invokes[-1].start()
        for invoke in invokes:
            invoke.join()

    def _invoke(self, name: str, endpoint: str, folder: Path) -> None:
        """Invoke until a replica accepts it, as a client behind a balancer would: a transport error or a 5xx is
        tried again, through another replica, with the same repeatability id."""
        body = {"properties": {"name": name, "inputData": {"in": {"jobInputType": "UriFolder", "uri": str(folder)}}}}
        headers = {"repeatability-request-id": str(uuid.uuid4())}
        choose = random.Random(name)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            replica = choose.choice(self.replicas)
            url = f"{replica.base_url}{WORKSPACE}/batchEndpoints/{endpoint}"
            try:
                with replica.client(timeout=5) as client:
                    scoring = client.get(url, params=V)
                    if scoring.status_code == 200:
                        answer = client.post(scoring.json()["properties"]["scoringUri"], json=body, headers=headers)
                        if answer.status_code == 200:
                            with self.findings.lock:
                                self.findings.accepted[answer.json()["name"]] = (folder, time.monotonic())
                            return
                        scoring = answer
                    if scoring.status_code == 500:
                        with self.findings.lock:
                            self.findings.errors_500.append(f"{name} via {replica.number}: {scoring.text[:300]}")
                    elif scoring.status_code < 500:
                        self._refused(f"{name}: {scoring.status_code} {scoring.text[:300]}")
                        return
            except httpx.HTTPError:
                pass  # a replica down, frozen or restarting
            time.sleep(0.5)
        self._refused(f"{name}: no replica answered it but with a fault for 60 s")

    def _refused(self, why: str) -> None:
        with self.findings.lock:
            self.findings.refused.append(why)

    # --- watching states ---

    def watch(self) -> None:
        """Every job's status, 5 times a second, straight from the database; a read that meets a fault (the
        database restarting) is tried at the next tick."""
        query = (
            "SELECT resources.id, jobs.status, resources.body::json #>> '{properties,status}'"
            " FROM jobs JOIN resources ON resources.key = jobs.key"
        )
        connection: psycopg.Connection[Any] | None = None
        while not self.stop_watch.wait(0.2):
            try:
                if connection is None or connection.closed:
                    connection = psycopg.connect(self.postgres.admin_url, autocommit=True, connect_timeout=2)
                rows = connection.execute(query).fetchall()
            except psycopg.Error:
                connection = None
                continue
            now = time.monotonic()
            for job_id, indexed, read in rows:
                self._saw(job_id.rsplit("/", 1)[-1], now, (read, indexed))
        if connection is not None:
            connection.close()

    def _saw(self, name: str, now: float, statuses: tuple[str, str]) -> None:
        """Record a job's status as read (`transitions`) and as indexed; a change after a terminal one, in either,
        is a regression."""
        for where, status in zip(("read", "indexed"), statuses, strict=True):
            history = self.findings.transitions.setdefault(name if where == "read" else f"{name} (indexed)", [])
            if history and history[-1][1] == status:
                continue
            if history and history[-1][1] in TERMINAL:
                seen = " -> ".join(earlier for _, earlier in history)
                self.findings.regressions.append(f"{name} ({where}): {seen} -> {status}")
            history.append((now, status))

    def statuses(self) -> dict[str, str]:
        """Each job's status as clients read it (the last one seen)."""
        transitions = self.findings.transitions.items()
        return {name: history[-1][1] for name, history in transitions if not name.endswith("(indexed)")}

    # --- faults ---

    def faults(self, until: float) -> None:
        kinds: list[tuple[str, Callable[[], str]]] = [
            ("kill -9", functools.partial(self._restart_replica, signal.SIGKILL)),
            ("SIGTERM", functools.partial(self._restart_replica, signal.SIGTERM)),
            ("SIGSTOP", self._freeze_replica),
            ("pg_terminate_backend", self._terminate_connections),
            ("worker kill -9", self._kill_worker),
            ("PostgreSQL restart", self._restart_postgres),
            ("Ray node loss", self._lose_ray_node),
        ]
        while time.monotonic() < until:
            time.sleep(self.fault_random.uniform(3, 8))
            kind, inject = self.fault_random.choice(kinds)
            started = time.monotonic()
            detail = inject()
            self.findings.faults.append((started, time.monotonic(), kind))
            print(f"  {time.strftime('%H:%M:%S')} {kind}: {detail}", flush=True)

    def _replica(self) -> Replica:
        return self.fault_random.choice(self.replicas)

    def _restart_replica(self, number: int) -> str:
        """Kill or stop a replica with the signal `number`, then start it again on its data directory."""
        replica = self._replica()
        replica.signal(number)
        replica.wait(60)
        replica.start()
        return f"replica {replica.number}, restarted"

    def _freeze_replica(self) -> str:
        replica = self._replica()
        seconds = LEASE_SECONDS * self.fault_random.uniform(1.3, 2.2)
        replica.signal(signal.SIGSTOP)
        time.sleep(seconds)
        replica.signal(signal.SIGCONT)
        return f"replica {replica.number} for {seconds:.1f} s"

    def _terminate_connections(self) -> str:
        return f"{self.postgres.terminate_connections()} sessions ended"

    def _kill_worker(self) -> str:
        """kill -9 of a job worker, the first to run within 10 s."""
        deadline = time.monotonic() + 10
        while not (workers := sorted(self.workers(), key=lambda process: process.pid)):
            if time.monotonic() > deadline:
                return "no worker ran within 10 s"
            time.sleep(0.2)
        victim = self.fault_random.choice(workers)
        with contextlib.suppress(psutil.Error):  # it may have ended meanwhile
            victim.kill()
        return f"pid {victim.pid}"

    def _restart_postgres(self) -> str:
        started = time.monotonic()
        self.postgres.restart()
        return f"down and up in {time.monotonic() - started:.1f} s"

    def _lose_ray_node(self) -> str:
        self.ray.remove_node(self.ray_node, allow_graceful=False)
        time.sleep(3)
        self.ray_node, tries = self._add_ray_node()
        return "killed, and a new node added 3 s later" + (f" (started {tries} times)" if tries > 1 else "")

    def _add_ray_node(self, tries: int = 3) -> tuple[Any, int]:
        """A new Ray node, and at which try it started. Ray gives a node 30 s to register (`ray._private.node`);
        on a machine loaded past that, the node that did not is killed (the processes this one started meanwhile)
        and another started, rather than the soak ending there."""
        for attempt in range(1, tries + 1):
            before = {child.pid for child in psutil.Process().children()}
            try:
                return self.ray.add_node(**RAY_NODE), attempt
            except Exception as error:
                if attempt == tries:
                    raise
                print(f"  {time.strftime('%H:%M:%S')} a new Ray node did not start ({error}); again", flush=True)
                started = [child for child in psutil.Process().children() if child.pid not in before]
                _kill_trees(started)
        raise AssertionError("unreachable")

    # --- processes ---

    def workers(self) -> list[psutil.Process]:
        """Live job workers and pipeline steps of this soak (their HOME or TMPDIR is in its folder)."""
        return [process for process in self.processes() if WORKER_MARK in " ".join(_cmdline(process))]

    def processes(self) -> list[psutil.Process]:
        """Live processes of this soak other than this one: started with its folder in their command line, HOME
        or TMPDIR."""
        mark, found = str(self.root), []
        for process in psutil.process_iter():
            if process.pid == os.getpid():
                continue
            with contextlib.suppress(psutil.Error):  # it may end while it is looked at
                if process.status() == psutil.STATUS_ZOMBIE:
                    continue
                environment = process.environ()
                places = [environment.get("HOME", ""), environment.get("TMPDIR", ""), *_cmdline(process)]
                if any(mark in place for place in places):
                    found.append(process)
        return found


def _kill_trees(processes: list[psutil.Process]) -> None:
    """kill -9 of the processes and of all their descendants."""
    every = []
    for process in processes:
        with contextlib.suppress(psutil.Error):  # it may have ended meanwhile
            every += [process, *process.children(recursive=True)]
    for process in every:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(every, timeout=10)


def _cmdline(process: psutil.Process) -> list[str]:
    with contextlib.suppress(psutil.Error):  # it may end while it is looked at
        return process.cmdline()
    return []


# --- the run ------------------------------------------------------------------------------------------------


def wait_for(condition: Callable[[], bool], timeout: float) -> float | None:
    """Seconds until `condition` held; None if it did not within `timeout`."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            return None
        time.sleep(0.2)
    return time.monotonic() - started


def outputs_problems(world: World, name: str, folder: Path) -> list[str]:
    """The output's rows against its input's files (exactly once, in order), and nothing else in its folder."""
    found = list((world.shared / "storage").glob(f"*/azureml-blobstore-*/azureml/{name}/score"))
    if len(found) != 1 or not (found[0] / "predictions.csv").exists():
        return [f"{name}: no output"]
    rows = (found[0] / "predictions.csv").read_text().splitlines()
    expected = sorted(path.name for path in folder.iterdir())
    problems = []
    if rows != expected:
        lost, twice = set(expected) - set(rows), [row for row, count in Counter(rows).items() if count > 1]
        problems.append(f"{name}: {len(rows)} rows for {len(expected)} inputs ({len(lost)} lost, {len(twice)} twice)")
    leftovers = sorted(path.name for path in found[0].iterdir() if path.name.startswith("."))
    if leftovers:
        problems.append(f"{name}: left in its output folder: {leftovers}")
    return problems


def soak(root: Path, minutes: float, seed: int) -> dict[str, Any]:
    world = World(root, seed)
    began = time.monotonic()
    print(f"soak: seed {seed}, {minutes:g} minutes, in {root}", flush=True)
    try:
        world.start()
        ports = [replica.port for replica in world.replicas]
        print(f"  started in {time.monotonic() - began:.0f} s: PostgreSQL on port {world.postgres.port}, Ray at "
              f"{world.ray.address}, replicas on ports {ports}", flush=True)  # fmt: skip
        threads = [threading.Thread(target=target, daemon=True) for target in (world.load, world.watch)]
        for thread in threads:
            thread.start()
        world.faults(until=time.monotonic() + minutes * 60)
        world.stop_load.set()
        threads[0].join()
        ended = wait_for(lambda: _all_ended(world), 300) is not None
        recovery = _recovery(world) if ended else None
        leaked_workers = [] if wait_for(lambda: not world.workers(), 20) is not None else world.workers()
        world.stop_watch.set()
        threads[1].join()
        statuses = world.statuses()
        violations = _violations(world, statuses, ended)
        violations += [f"a job worker outlived its job: pid {process.pid}" for process in leaked_workers]
    finally:
        world.stop()
    if wait_for(lambda: not world.processes(), 30) is None:
        violations += [f"a process outlived the soak: {_cmdline(process)}" for process in world.processes()]
    return _summary(world, seed, minutes, statuses, recovery, violations)


def _recovery(world: World) -> float:
    """Seconds from the end of the last fault until every job accepted before it had ended."""
    last_fault = world.findings.faults[-1][1] if world.findings.faults else 0.0
    ended = [
        next(when for when, status in world.findings.transitions[name] if status in TERMINAL)
        for name, (_, accepted) in world.findings.accepted.items()
        if accepted <= last_fault
    ]
    return max(0.0, max(ended, default=last_fault) - last_fault)


def _all_ended(world: World) -> bool:
    statuses = world.statuses()
    return all(name in statuses for name in world.findings.accepted) and all(
        status in TERMINAL for status in statuses.values()
    )


def _violations(world: World, statuses: dict[str, str], ended: bool) -> list[str]:
    findings = world.findings
    violations = [] if ended else ["not every job ended within 300 s of the last fault"]
    violations += [f"accepted job {name} is not in the database" for name in findings.accepted if name not in statuses]
    violations += [f"job {name} ended {status}" for name, status in sorted(statuses.items()) if status != "Completed"]
    violations += [f"a job left a terminal state: {regression}" for regression in findings.regressions]
    violations += [f"HTTP 500: {error}" for error in findings.errors_500]
    violations += [f"an invoke was refused: {why}" for why in findings.refused]
    for name, (folder, _) in sorted(findings.accepted.items()):
        if statuses.get(name) == "Completed":
            violations += outputs_problems(world, name, folder)
    return violations


def _summary(
    world: World, seed: int, minutes: float, statuses: dict[str, str], recovery: float | None, violations: list[str]
) -> dict[str, Any]:
    findings = world.findings
    parents = [name for name in statuses if not name.endswith("-batchscoring")]
    return {
        "seed": seed,
        "minutes": minutes,
        "jobs": len(parents),
        "accepted": len(findings.accepted),
        "completed": sum(statuses[name] == "Completed" for name in parents),
        "failed": sum(statuses[name] != "Completed" for name in parents),
        "state_regressions": len(findings.regressions),
        "rows_problems": sum(1 for violation in violations if "rows for" in violation or "no output" in violation),
        "http_500": len(findings.errors_500),
        "faults": len(findings.faults),
        "faults_by_kind": dict(Counter(kind for _, _, kind in findings.faults)),
        "recovery_seconds": round(recovery, 1) if recovery is not None else None,
        "violations": violations,
    }


def table_row(summary: dict[str, Any]) -> str:
    """The run as a row of docs/deployment.md's table."""
    faults = ", ".join(f"{kind} {count}" for kind, count in sorted(summary["faults_by_kind"].items()))
    recovery = f"{summary['recovery_seconds']} s" if summary["recovery_seconds"] is not None else "never"
    cells = [summary["seed"], f"{summary['minutes']:g} min", summary["completed"], summary["failed"]]
    cells += [summary["state_regressions"], summary["rows_problems"], f"{summary['faults']} ({faults})", recovery]
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="Keep the soak's folder (logs, database) after a pass.")
    arguments = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="soak-"))
    root.chmod(0o755)  # the postgres user works in it
    for variable in ("TMPDIR", "RAY_TMPDIR"):  # every process of the soak (Ray's, workers) has its files here
        os.environ[variable] = str(root / "tmp")
    (root / "tmp").mkdir(mode=0o1777)
    summary = soak(root, arguments.minutes, arguments.seed)
    print(json.dumps(summary, indent=1))
    print(table_row(summary))
    for violation in summary["violations"]:
        print(f"VIOLATION: {violation}")
    if summary["violations"] or arguments.keep:
        print(f"kept {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)
    return 1 if summary["violations"] else 0


if __name__ == "__main__":
    sys.exit(main())
