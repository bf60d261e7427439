"""A model job's page in a real headless Chromium: the throughput chart and the mini-batch timeline grow while the
job runs and, once it ended, hold exactly the tries its ledger recorded; the failed files are listed once each with
their error; the output's first rows are shown; a job of 10,000 mini-batches has its page in under a second.
One server serves the module; the browser is tests/web/conftest.py's."""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchpoint.jobs.run_record import model_run_of
from batchpoint.runtime.layout import PROCESSED_MINI_BATCHES
from batchpoint.runtime.ledger import RUN_DONE, Attempt, Success, TryEnd
from batchpoint.store import open_store
from batchpoint.web.charts import BARS_PER_LANE
from tests.api.jobs import deploy_script, predictions, wait_for_job
from tests.server import API, WORKSPACE_ID, Server
from tests.web.test_pages import accessible, expect, owner, screenshot, start_job  # noqa: F401 - owner is a fixture

CHARTED = """
import os, time

def init():
    pass

def run(mini_batch):
    time.sleep(0.3)
    names = [os.path.basename(path) for path in mini_batch]
    deadline = time.monotonic() + 60
    while max(names) > {bad!r} and os.path.exists({gate!r}) and time.monotonic() < deadline:
        time.sleep(0.05)
    if {bad!r} in names:
        raise ValueError("cannot score " + ", ".join(names))
    return [name + ",scored," + str(len(name)) for name in names]
"""
BAD = "f00003.txt"
BLOCKED = """
import os, time

def init():
    pass

def run(mini_batch):
    deadline = time.monotonic() + 120
    while os.path.exists({flag!r}) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [os.path.basename(path) for path in mini_batch]
"""
MINI_BATCHES = 10_000
WORKERS = 4
PAGE_SECONDS = 1.0
LOADS = 3
"""The page is loaded this many times and the fastest counts (the test machine is shared)."""
BUSY = 2.0
"""Above this load average per CPU, the page's time in the browser is not judged (its CPU time still is): a test
run on a machine that busy measures the wait for a CPU."""
RETRY_ONCE = {"maxRetries": 1, "timeout": "PT30S"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("home") / "data"
    data.mkdir()
    deployments = {
        "charted": (
            CHARTED.format(bad=BAD, gate=str(charted_gate(data.parent))),
            {"maxConcurrencyPerInstance": 2, "retrySettings": RETRY_ONCE},
        ),
        "blocked": (BLOCKED.format(flag=str(blocked_flag(data.parent))), {"maxConcurrencyPerInstance": 1}),
    }
    running = Server(home=data.parent, tls=True, args=["--allow-local-path", str(data)]).start()
    try:
        with running.client() as client:
            for endpoint, (script, settings) in deployments.items():
                deploy_script(client, data, endpoint, "main", script, miniBatchSize=1, **settings)
        yield running
    finally:
        running.stop()


def charted_gate(home: Path) -> Path:
    """While this file exists, the ``charted`` deployment's files after ``BAD`` wait: the page is seen before the
    job has ended, however loaded the machine."""
    return home / "data" / "charted-gate"


def blocked_flag(home: Path) -> Path:
    """While this file exists, the ``blocked`` deployment's tries wait."""
    return home / "data" / "blocked"


@pytest.fixture(scope="module")
def page(owner: object) -> object:
    """The module's signed-in page: test_pages.py's ``owner``, on this module's server."""
    return owner


def report_rows(server: Server, name: str) -> list[dict[str, str]]:
    found = list((server.home / "storage").glob(f"*/azureml-blobstore-*/azureml/{name}/score/logs"))
    assert len(found) == 1
    with open(found[0] / PROCESSED_MINI_BATCHES, newline="") as file:
        return list(csv.DictReader(file))


def shown_tries(page: object) -> tuple[int, int, int]:
    """The timeline's tries, failed tries and bars, counted from its bars."""
    return tuple(
        page.evaluate(  # type: ignore[attr-defined]
            """() => {
            const bars = [...document.querySelectorAll('#timeline rect.bar')];
            const sum = name => bars.reduce((total, bar) => total + Number(bar.dataset[name]), 0);
            return [sum('tries'), sum('failed'), bars.length];
        }"""
        )
    )


def test_a_running_jobs_charts_grow_then_hold_exactly_its_tries(server: Server, page: object) -> None:
    gate = charted_gate(server.home)
    gate.touch()
    try:
        name = start_job(server, "charted", 10)
        page.goto(f"{server.base_url}/jobs/{name}")  # type: ignore[attr-defined]
        page.evaluate("window.notReloaded = true")  # type: ignore[attr-defined]
        page.wait_for_function("() => Number(document.querySelector('#timeline')?.dataset.tries) >= 2", timeout=30_000)  # type: ignore[attr-defined]
        early = shown_tries(page)[0]
    finally:
        gate.unlink()  # the rest of the job runs
    page.locator("#try-0-1").focus()  # type: ignore[attr-defined]
    page.wait_for_function(  # type: ignore[attr-defined]
        "early => Number(document.querySelector('#timeline').dataset.tries) > early"
        " && Number(document.querySelector('#throughput').dataset.items) > 0",
        arg=early,
        timeout=30_000,
    )
    assert page.evaluate("document.activeElement.id") == "try-0-1"  # type: ignore[attr-defined]  # kept across updates
    expect(page.locator("[data-status]")).to_have_attribute("data-status", "Completed", timeout=60_000)  # type: ignore[attr-defined]
    expect(page.locator("#failures")).to_be_visible()  # type: ignore[attr-defined]  # the last update came
    assert page.evaluate("window.notReloaded") is True  # type: ignore[attr-defined]

    rows = report_rows(server, name)  # the ledger's tries, as the job's report holds them
    failed = [row for row in rows if row["Status"] != RUN_DONE]
    assert (len(rows), len(failed)) == (9 + 2, 2)  # f00003.txt failed twice: its try and its one retry
    assert shown_tries(page) == (len(rows), len(failed), len(rows))  # one bar per try, without a reload
    page.reload()  # type: ignore[attr-defined]
    assert shown_tries(page) == (len(rows), len(failed), len(rows))
    assert page.locator("#throughput").get_attribute("data-items") == "10"  # type: ignore[attr-defined]
    assert page.locator("rect.bar-failed").count() == 1 and page.locator("rect.bar-retried").count() == 1  # type: ignore[attr-defined]

    failures = page.locator("#failures tbody tr")  # type: ignore[attr-defined]
    expect(failures).to_have_count(1)
    expect(failures.first).to_contain_text(f"ValueError: cannot score {BAD}")
    assert failures.first.locator("td").nth(2).inner_text() == "2"  # tries

    expected = [line.split(",") for line in predictions(server.home, name)[:20]]
    preview = page.locator("#preview-score tbody tr")  # type: ignore[attr-defined]
    assert [row.locator("td").all_inner_texts() for row in preview.all()] == expected
    expect(page.get_by_role("link", name="Download predictions.csv")).to_be_visible()  # type: ignore[attr-defined]

    page.locator("rect.bar-failed").focus()  # type: ignore[attr-defined]  # the keyboard shows what a bar holds
    expect(page.locator("#bar-detail")).to_contain_text(f"files: {BAD}; error: ValueError: cannot score {BAD}")  # type: ignore[attr-defined]
    page.keyboard.press("Shift+Tab")  # type: ignore[attr-defined]
    expect(page.locator("#bar-detail")).to_contain_text("succeeded after")  # type: ignore[attr-defined]
    page.locator("rect.bar-retried").hover()  # type: ignore[attr-defined]  # so does the pointer
    expect(page.locator("#bar-detail")).to_contain_text("failed (tried again) after")  # type: ignore[attr-defined]
    accessible(page)
    screenshot(page, "job-charts.png")

    failures.first.get_by_role("link").click()
    expect(page.locator("body")).to_contain_text(f"cannot score {BAD}")  # type: ignore[attr-defined]


def test_a_page_of_ten_thousand_mini_batches_loads_in_under_a_second(server: Server, page: object) -> None:
    flag = blocked_flag(server.home)
    flag.touch()
    name = start_job(server, "blocked", MINI_BATCHES)
    job_id = f"{WORKSPACE_ID}/jobs/{name}"
    store = open_store(f"sqlite:///{server.home / 'batchpoint.db'}")
    try:
        run = model_run_of(store.get(job_id))
        assert run is not None
        ledger = store.ledger()
        deadline = time.monotonic() + 60
        while (batches := ledger.mini_batches(run.spec.job_id)) is None:  # the job plans its mini-batches
            assert time.monotonic() < deadline, "the job did not plan its mini-batches"
            time.sleep(0.1)
        assert len(batches) == MINI_BATCHES
        record_ended_tries(ledger, run.spec.job_id)
        url = f"{server.base_url}/jobs/{name}"
        page.goto("about:blank")  # type: ignore[attr-defined]  # no page of the job keeps the server busy
        cpu = min(server_cpu_seconds(server, page, url) for _ in range(LOADS))
        seconds = min(load_seconds(page, url) for _ in range(LOADS))
        print(f"the page of {MINI_BATCHES} mini-batches: {cpu:.3f} s of the server's CPU, loaded in {seconds:.3f} s")
        tries, failed, bars = shown_tries(page)
        retried = len(range(100, MINI_BATCHES, 100))
        assert (tries, failed) == (MINI_BATCHES + retried, retried)  # the first one's try runs
        assert bars <= WORKERS * BARS_PER_LANE + 1  # each worker's lane in slices of time
        assert cpu < PAGE_SECONDS / 2, f"the server took {cpu:.2f} s of CPU for the page"
        if os.getloadavg()[0] < BUSY * (os.cpu_count() or 1):  # else the wait for a CPU is what the time measures
            assert seconds < PAGE_SECONDS, f"the page took {seconds:.2f} s to load"
        accessible(page)
        with server.client() as client:
            client.post(f"{job_id}/cancel", params={"api-version": API})
            flag.unlink()
            wait_for_job(client, name)
    finally:
        flag.unlink(missing_ok=True)
        store.close()


def server_cpu_seconds(server: Server, page: object, url: str) -> float:
    """The CPU time the server spends to answer the page (what its load time is made of on a machine that is not
    busy with other work)."""
    before = cpu_seconds(server.process.pid)  # type: ignore[union-attr]
    assert page.request.get(url).ok  # type: ignore[attr-defined]
    return cpu_seconds(server.process.pid) - before  # type: ignore[union-attr]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime and stime


def load_seconds(page: object, url: str) -> float:
    """How long the page takes to load (its HTML, styles and scripts), in the browser."""
    began = time.monotonic()
    page.goto(url, wait_until="load")  # type: ignore[attr-defined]
    return time.monotonic() - began


def record_ended_tries(ledger: object, job_id: str) -> None:
    """Every mini-batch but the first (which the job's one worker holds) ended on one of WORKERS workers, 0.1 s
    each; one in a hundred failed once before it succeeded."""
    began = time.time() - MINI_BATCHES * 0.1 / WORKERS
    started, succeeded = [], []
    for index in range(1, MINI_BATCHES):
        worker = f"process{100 + index % WORKERS:03d}"
        at = began + (index // WORKERS) * 0.1
        tries = 2 if index % 100 == 0 else 1
        for number in range(1, tries + 1):
            started.append(Attempt(index, number, worker, "0", worker, started=at))
        succeeded.append(Success(index, tries, 1, 0, TryEnd(RUN_DONE, at, 0.09)))
    ledger.record_tries(job_id, started, succeeded)  # type: ignore[attr-defined]
    for index in range(100, MINI_BATCHES, 100):
        worker = f"process{100 + index % WORKERS:03d}"
        failed_at = began + (index // WORKERS) * 0.1 - 0.05
        ledger.record_failed_try(job_id, index, 1, "ValueError: slow", TryEnd("RUN_EXCEPTION", failed_at, 0.04))  # type: ignore[attr-defined]
