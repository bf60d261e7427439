"""The studio web page in a real headless Chromium (Debian's ``chromium``, driven by Playwright): sign in with the
printed link, see an endpoint, watch a running job change without a reload, read a failed job's traceback, cancel
as Owner, be refused as Reader, re-run a job's failed items. Every page passes axe-core with no violation; the
screenshots in docs/images come from these tests. One server serves the module (the browser: tests/web/conftest.py)."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchpoint.access.issuer import ensure_issuer
from tests.api.arm import grant
from tests.api.jobs import deploy_script, invoke, predictions, wait_for_job, write_inputs
from tests.jobs.pipelines.test_pipelines import component, node, put_job, wait_for_status
from tests.server import API, TEST_USER, WORKSPACE_ID, Server
from tests.web.conftest import CHROMIUM

playwright_api = pytest.importorskip("playwright.sync_api", reason="Playwright's Python package is not installed")
expect = playwright_api.expect  # waits for what it asserts: a click that navigates returns before the new page
expect.set_options(timeout=30_000)

REPO = Path(__file__).resolve().parents[2]
AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = REPO / "docs" / "images"
READER = "reader@example.com"
SLOW = """
import os, time

def init():
    pass

def run(mini_batch):
    time.sleep(float(os.environ.get("PAUSE", "0.4")))
    print("scored", ", ".join(os.path.basename(path) for path in mini_batch))
    return [os.path.basename(path) for path in mini_batch]
"""
BROKEN = """
def init():
    pass

def run(mini_batch):
    raise ValueError("cannot parse " + mini_batch[0].rsplit("/", 1)[-1])
"""
FLAKY_FILES = ("f00002.txt", "f00005.txt")
FLAKY = """
import os

def init():
    pass

def run(mini_batch):
    names = [os.path.basename(path) for path in mini_batch]
    if os.path.exists({flag!r}) and set(names) & {bad!r}:
        raise ValueError("cannot score " + ", ".join(names))
    return names
"""

if not Path(CHROMIUM).exists():
    pytest.skip("Debian's chromium is not installed ('make chromium' installs it, as root)", allow_module_level=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("home")
    (home / "data").mkdir()
    running = Server(home=home, tls=True, args=["--allow-local-path", str(home / "data")]).start()
    with running.client() as client:
        deploy_script(client, home / "data", "studio", "green", SLOW, miniBatchSize=2)
        deploy_script(client, home / "data", "studio", "blue", SLOW, miniBatchSize=1, maxConcurrencyPerInstance=1)
        no_retries = {"retrySettings": {"maxRetries": 0, "timeout": "PT30S"}}
        deploy_script(client, home / "data", "broken", "main", BROKEN, errorThreshold=0, **no_retries)
        flaky = FLAKY.format(flag=str(flaky_flag(home)), bad=set(FLAKY_FILES))
        deploy_script(client, home / "data", "flaky", "main", flaky, miniBatchSize=1, **no_retries)
        grant(client, f"/subscriptions/{WORKSPACE_ID.split('/')[2]}", ensure_issuer(home).object_id(READER), "Reader")
    yield running
    running.stop()


def flaky_flag(home: Path) -> Path:
    """While this file exists, the ``flaky`` deployment fails on FLAKY_FILES; removing it fixes the script."""
    return home / "data" / "flaky-is-broken"


def printed_link(server: Server) -> str:
    """The one-time sign-in link ``batchpoint serve`` printed."""
    log = (server.home / f"server-{server.port}.log").read_text()
    return re.search(r"sign-in link\): (\S+)", log).group(1)  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def owner(server: Server, browser: object) -> Iterator[object]:
    """A signed-in page of the local user (Owner of the default subscription)."""
    context = browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    page.goto(printed_link(server))
    yield page
    context.close()


def signed_in_page(server: Server, browser: object, user: str, javascript: bool = True) -> object:
    """A page in a browser context of its own, signed in as ``user`` with a link made for that user's token."""
    with server.client(token=server.token(user=user)) as client:
        link = client.post(f"{server.base_url}/signin/links").json()["url"]
    context = browser.new_context(ignore_https_errors=True, java_script_enabled=javascript)  # type: ignore[attr-defined]
    page = context.new_page()
    page.goto(link)
    return page


def accessible(page: object) -> None:
    """axe-core (from npm) finds no violation in the page as shown (evaluated through the DevTools protocol,
    which the page's Content-Security-Policy does not govern)."""
    if not AXE.exists():
        pytest.skip("axe-core is not installed (npm ci)")
    page.evaluate(AXE.read_text())  # type: ignore[attr-defined]
    violations = page.evaluate(
        "async () => (await axe.run()).violations.map(v => v.id + ': ' + v.nodes.map(n => n.target).join(' | '))"
    )  # type: ignore[attr-defined]
    assert violations == []


def screenshot(page: object, name: str) -> None:
    """The docs' screenshots, refreshed by ``make screenshots`` (a plain test run leaves the docs as they are)."""
    if not os.environ.get("BATCHPOINT_SCREENSHOTS"):
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)  # type: ignore[attr-defined]


def settled(page: object) -> None:
    deadline = time.monotonic() + 30
    while page.locator("#endpoint-state").inner_text() != "Succeeded":  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, "the endpoint did not finish updating"
        time.sleep(0.2)
        page.reload()  # type: ignore[attr-defined]


def web_view(server: Server, name: str) -> str:
    """The "Web View" URL ``jobs.stream`` prints: the job's ``services.Studio.endpoint``."""
    with server.client() as client:
        job = client.get(f"{WORKSPACE_ID}/jobs/{name}", params={"api-version": API}).json()
    return job["properties"]["services"]["Studio"]["endpoint"]


def start_job(server: Server, endpoint: str, files: int, **overrides: object) -> str:
    with server.client() as client:
        return invoke(
            client,
            endpoint,
            str(write_inputs(server.home / "data" / f"in-{endpoint}-{time.monotonic_ns()}", files)),
            **overrides,
        ).json()["name"]


def test_the_printed_link_signs_in_and_shows_the_endpoints(server: Server, owner: object) -> None:
    page = owner
    assert page.url == f"{server.base_url}/"  # type: ignore[attr-defined]  # the code is gone from the address
    expect(page.get_by_role("link", name="studio")).to_be_visible()  # type: ignore[attr-defined]
    accessible(page)
    screenshot(page, "overview.png")
    page.get_by_role("link", name="studio").click()  # type: ignore[attr-defined]
    expect(page.get_by_role("heading", name="blue default")).to_be_visible()  # type: ignore[attr-defined]
    accessible(page)
    screenshot(page, "endpoint.png")
    page.get_by_role("button", name="Make green the default").click()  # type: ignore[attr-defined]
    expect(page.get_by_role("heading", name="green default")).to_be_visible()  # type: ignore[attr-defined]
    settled(page)  # the endpoint takes one change at a time (a second one meanwhile is a 409, as on the API)
    page.get_by_role("button", name="Make blue the default").click()  # type: ignore[attr-defined]
    expect(page.get_by_role("heading", name="blue default")).to_be_visible()  # type: ignore[attr-defined]
    with server.client(token=None) as anonymous:
        assert anonymous.get(printed_link(server)).status_code == 400  # one-time


def test_a_running_job_updates_without_a_reload(server: Server, owner: object) -> None:
    page = owner
    name = start_job(server, "studio", 12)
    page.goto(web_view(server, name))  # type: ignore[attr-defined]
    page.evaluate("window.notReloaded = true")  # type: ignore[attr-defined]
    done = page.locator("[data-mini-batches-done]")  # type: ignore[attr-defined]
    first = int(done.get_attribute("data-mini-batches-done"))
    page.wait_for_function(  # type: ignore[attr-defined]
        "first => Number(document.querySelector('[data-mini-batches-done]').dataset.miniBatchesDone) > first",
        arg=first,
        timeout=60_000,
    )
    page.wait_for_function("() => document.querySelector('#log').textContent.includes('scored f0')", timeout=60_000)  # type: ignore[attr-defined]
    assert page.evaluate("window.notReloaded") is True  # type: ignore[attr-defined]
    accessible(page)
    screenshot(page, "job-running.png")
    page.get_by_role("link", name="studio").click()  # type: ignore[attr-defined]  # the endpoint's job list follows too
    expect(page.get_by_role("heading", name="Endpoint studio")).to_be_visible()  # type: ignore[attr-defined]
    page.evaluate("window.notReloaded = true")  # type: ignore[attr-defined]
    page.wait_for_selector(f"[data-job='{name}']:has-text('12 of 12')", timeout=60_000)  # type: ignore[attr-defined]
    assert page.evaluate("window.notReloaded") is True  # type: ignore[attr-defined]
    page.get_by_role("link", name=name).click()  # type: ignore[attr-defined]
    page.wait_for_selector("[data-status=Completed]", timeout=60_000)  # type: ignore[attr-defined]
    expect(page.get_by_role("link", name="Download predictions.csv")).to_be_visible()  # type: ignore[attr-defined]


def test_a_failed_job_shows_the_file_and_the_traceback(server: Server, owner: object) -> None:
    page = owner
    name = start_job(server, "broken", 2)
    with server.client() as client:
        wait_for_job(client, name)
    page.goto(f"{server.base_url}/jobs/{name}")  # type: ignore[attr-defined]
    error = page.locator("#error").inner_text()  # type: ignore[attr-defined]
    assert "Traceback" in error and "cannot parse f00000.txt" in error and "f00000.txt" in error
    expect(page.get_by_role("link", name="batchscoring", exact=True)).to_be_visible()  # type: ignore[attr-defined]
    accessible(page)
    screenshot(page, "job-failed.png")
    page.get_by_role("link", name="batchscoring", exact=True).click()  # type: ignore[attr-defined]  # its step
    expect(page.get_by_role("heading", name=f"Job {name}-batchscoring")).to_be_visible()  # type: ignore[attr-defined]
    assert "cannot parse f00000.txt" in page.locator("#error").inner_text()  # type: ignore[attr-defined]


def test_pages_work_with_javascript_off(server: Server, browser: object) -> None:
    page = signed_in_page(server, browser, TEST_USER, javascript=False)
    name = start_job(server, "studio", 40)
    page.goto(f"{server.base_url}/jobs/{name}")  # type: ignore[attr-defined]
    expect(page.get_by_role("heading", name=f"Job {name}")).to_be_visible()  # type: ignore[attr-defined]
    page.get_by_role("button", name=f"Cancel job {name}").click()  # type: ignore[attr-defined]  # a plain form post
    deadline = time.monotonic() + 60
    while page.locator("[data-status]").get_attribute("data-status") != "Canceled":  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, "the job did not end Canceled"
        time.sleep(0.5)
        page.reload()  # type: ignore[attr-defined]  # without JavaScript, a reload shows the news
    page.context.close()  # type: ignore[attr-defined]


def test_an_owner_cancels_and_a_reader_is_refused(server: Server, owner: object, browser: object) -> None:
    name = start_job(server, "studio", 40)
    reader = signed_in_page(server, browser, READER)
    reader.goto(f"{server.base_url}/jobs/{name}")  # type: ignore[attr-defined]
    reader.get_by_role("button", name=f"Cancel job {name}").click()  # type: ignore[attr-defined]
    expect(reader.get_by_role("heading", name="Not allowed")).to_be_visible()  # type: ignore[attr-defined]
    expect(reader.locator("main")).to_contain_text("does not have authorization")  # type: ignore[attr-defined]
    reader.context.close()  # type: ignore[attr-defined]
    forged = owner.request.post(f"{server.base_url}/jobs/{name}/cancel", form={"csrf": "guessed"})  # type: ignore[attr-defined]
    assert forged.status == 403  # the session cookie alone does not make an action
    owner.goto(f"{server.base_url}/jobs/{name}")  # type: ignore[attr-defined]
    owner.get_by_role("button", name=f"Cancel job {name}").click()  # type: ignore[attr-defined]
    owner.wait_for_selector("[data-status=Canceled]", timeout=60_000)  # type: ignore[attr-defined]


def test_a_pipeline_job_shows_its_steps_and_their_logs(server: Server, owner: object) -> None:
    page = owner
    with server.client() as client:
        greet = component(
            client,
            "greet",
            {"type": "command", "command": "echo hello from ${{inputs.x}}", "inputs": {"x": {"type": "string"}}},
        )
        spec = {"type": "pipeline", "jobs": {"first": node(greet, x="first"), "second": node(greet, x="second")}}
        assert (
            put_job(
                client,
                "greetings",
                {"jobType": "Pipeline", "componentId": component(client, "greetings", spec), "jobs": {}},
            ).status_code
            == 201
        )
        wait_for_status(client, f"{WORKSPACE_ID}/jobs/greetings", "Completed")
    page.goto(f"{server.base_url}/jobs/greetings")  # type: ignore[attr-defined]
    expect(page.get_by_role("link", name="second", exact=True)).to_be_visible()  # type: ignore[attr-defined]
    assert "[first] hello from first" in page.locator("#log").inner_text()  # type: ignore[attr-defined]
    accessible(page)
    screenshot(page, "job-pipeline.png")
    page.get_by_role("link", name="user_logs/std_log.txt of step second").click()  # type: ignore[attr-defined]
    expect(page.locator("body")).to_contain_text("hello from second")  # type: ignore[attr-defined]


def rerun_from(page: object, url: str, button: str) -> str:
    """Click the rerun button of the job page ``url`` shows; the new job's name, once its page is shown."""
    page.get_by_role("button", name=button).click()  # type: ignore[attr-defined]
    expect(page).not_to_have_url(url)  # type: ignore[arg-type]
    name = page.url.rsplit("/", 1)[-1]  # type: ignore[attr-defined]
    expect(page.get_by_role("heading", name=f"Job {name}")).to_be_visible()  # type: ignore[attr-defined]
    return name


def test_an_owner_reruns_the_failed_items_and_a_reader_is_not_offered_to(
    server: Server, owner: object, browser: object
) -> None:
    flaky_flag(server.home).touch()
    name = start_job(server, "flaky", 8)
    with server.client() as client:
        assert wait_for_job(client, name)["properties"]["progress"]["items"]["failed"] == len(FLAKY_FILES)
    flaky_flag(server.home).unlink()  # the script is fixed
    page, button = f"{server.base_url}/jobs/{name}", f"Re-run failed items of job {name}"
    reader = signed_in_page(server, browser, READER)
    reader.goto(page)  # type: ignore[attr-defined]
    expect(reader.locator("[data-status]")).to_have_attribute("data-status", "Completed")  # type: ignore[attr-defined]
    expect(reader.get_by_role("button", name=button)).to_have_count(0)  # type: ignore[attr-defined]
    csrf = reader.locator("input[name=csrf]").first.get_attribute("value")  # type: ignore[attr-defined]  # the sign-out form's
    forged = reader.request.post(f"{page}/rerun", form={"csrf": csrf})  # type: ignore[attr-defined]
    assert forged.status == 403 and "does not have authorization" in forged.text()
    reader.context.close()  # type: ignore[attr-defined]

    plain = signed_in_page(server, browser, TEST_USER, javascript=False)  # a plain form post: works without JavaScript
    plain.goto(page)  # type: ignore[attr-defined]
    reruns = [rerun_from(plain, page, button)]
    plain.context.close()  # type: ignore[attr-defined]
    owner.goto(page)  # type: ignore[attr-defined]
    expect(owner.get_by_role("button", name=button)).to_be_visible()  # type: ignore[attr-defined]
    accessible(owner)
    reruns.append(rerun_from(owner, page, button))
    expect(owner.locator("[data-status]")).to_have_attribute("data-status", "Completed", timeout=60_000)  # type: ignore[attr-defined]
    expect(owner.get_by_role("button", name=f"Re-run failed items of job {reruns[-1]}")).to_have_count(0)  # type: ignore[attr-defined]
    with server.client() as client:
        for rerun in reruns:
            properties = wait_for_job(client, rerun)["properties"]
            assert properties["progress"]["items"] == {"total": 2, "succeeded": 2, "failed": 0}
            assert properties["properties"]["batchpoint.rerunOf"] == name
            assert predictions(server.home, rerun) == list(FLAKY_FILES)
