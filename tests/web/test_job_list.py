"""An endpoint page's job list and its Create job form in a real headless Chromium: the status filter, the date
filter, the order and the pages over 1,200 jobs (put in the server's database directly, as a long-used server
holds them), a Reader who sees the list and no form, a job created from the page (with the mouse, and with the
keyboard only) that completes, and a refused one that shows the API's error. Every page passes axe-core."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from batchpoint.access.issuer import ensure_issuer
from batchpoint.store import open_store
from batchpoint.store.entities import JOB_TYPE, Resource
from tests.api.arm import grant
from tests.api.jobs import V, deploy_script, predictions, wait_for_job, write_inputs
from tests.jobs.test_datastore_paths import ECHO
from tests.server import TEST_USER, WORKSPACE_ID, Server, running
from tests.web.test_pages import READER, accessible, expect, screenshot, signed_in_page

ENDPOINT = "listed"
INSERTED = 1200
FAILED_EVERY = 10
"""Every tenth inserted job failed; the others completed."""
FIRST_CREATED = datetime(2026, 3, 1, tzinfo=UTC)
SPACING = timedelta(minutes=30)
"""Inserted jobs were created 30 minutes apart: 48 a day, over 25 days."""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of this module's own: the jobs it inserts would show on every other endpoint page's counts."""
    home = tmp_path_factory.mktemp("home")
    with running(home, "--allow-local-path", str(home)) as started, started.client() as client:
        deploy_script(client, home / "data", ENDPOINT, "other", ECHO)
        deploy_script(client, home / "data", ENDPOINT, "main", ECHO, miniBatchSize=2)
        grant(client, f"/subscriptions/{WORKSPACE_ID.split('/')[2]}", ensure_issuer(home).object_id(READER), "Reader")
        asset = write_inputs(home / "data" / "asset", 5)
        data_asset = {"properties": {"dataType": "uri_folder", "dataUri": str(asset)}}
        assert client.put(f"{WORKSPACE_ID}/data/five-files/versions/1", params=V, json=data_asset).status_code == 201
        insert_jobs(home, INSERTED)
        yield started


def inserted_name(index: int) -> str:
    return f"old-{index:05d}"


def insert_jobs(home: Path, count: int) -> None:
    """``count`` ended jobs of the endpoint's deployment ``main``, straight into the server's database."""
    store = open_store(f"sqlite:///{home / 'batchpoint.db'}")
    jobs = []
    for index in range(count):
        created = FIRST_CREATED + index * SPACING
        failed = index % FAILED_EVERY == 0
        properties = {
            "jobType": "Pipeline",
            "status": "Failed" if failed else "Completed",
            "properties": {"azureml.endpointname": ENDPOINT, "azureml.deploymentname": "main"},
            "startTime": (created + timedelta(seconds=5)).isoformat(),
            "endTime": (created + timedelta(seconds=5 + 65 + index % 7)).isoformat(),
            "progress": {
                "miniBatches": {"total": 4, "succeeded": 3 if failed else 4, "failed": int(failed), "running": 0},
                "items": {"total": 8, "succeeded": 6 if failed else 8, "failed": 2 if failed else 0},
            },
        }
        body = {"properties": properties, "systemData": {"createdAt": created.isoformat()}}
        jobs.append(Resource(f"{WORKSPACE_ID}/jobs/{inserted_name(index)}", JOB_TYPE, body, created_at=created))
    store.insert_many(jobs)
    store.close()


@pytest.fixture(scope="module")
def owner(server: Server, browser: object) -> Iterator[object]:
    page = signed_in_page(server, browser, TEST_USER)
    page.set_viewport_size({"width": 1280, "height": 900})  # type: ignore[attr-defined]
    yield page
    page.context.close()  # type: ignore[attr-defined]


def endpoint_page(server: Server) -> str:
    return f"{server.base_url}/workspaces/{WORKSPACE_ID.split('/')[2]}/local/default/endpoints/{ENDPOINT}"


def listed_names(page: object) -> list[str]:
    return page.locator("#jobs tbody tr td:first-child").all_inner_texts()  # type: ignore[attr-defined]


def first_name(page: object) -> object:
    return page.locator("#jobs tbody tr td:first-child").first  # type: ignore[attr-defined]


def statuses(page: object) -> set[str]:
    return set(page.locator("#jobs tbody tr td:nth-child(3)").all_inner_texts())  # type: ignore[attr-defined]


def test_the_status_filter_the_order_and_the_pages_hold_over_a_thousand_jobs(server: Server, owner: object) -> None:
    page = owner
    page.goto(endpoint_page(server))  # type: ignore[attr-defined]
    assert listed_names(page)[:2] == [inserted_name(INSERTED - 1), inserted_name(INSERTED - 2)]  # newest first
    assert len(listed_names(page)) == 50
    first_row = page.locator("#jobs tbody tr").first  # type: ignore[attr-defined]
    expect(first_row).to_contain_text("67.0 s")  # its duration: 65 + 1199 % 7 seconds
    expect(first_row).to_contain_text("8 of 8")  # its items
    accessible(page)
    screenshot(page, "job-list.png")

    page.get_by_label("Status").select_option("Failed")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Show jobs").click()  # type: ignore[attr-defined]
    expect(page).to_have_url(re.compile("status=Failed"))  # type: ignore[arg-type]
    failed = [inserted_name(index) for index in reversed(range(0, INSERTED, FAILED_EVERY))]
    seen: list[str] = []
    for _ in range(math.ceil(len(failed) / 50)):
        assert statuses(page) == {"Failed"}
        seen += listed_names(page)
        if len(seen) < len(failed):
            page.get_by_role("link", name="Next page").click()  # type: ignore[attr-defined]
            expect(first_name(page)).not_to_have_text(seen[-50])
    assert seen == failed
    expect(page.get_by_role("link", name="Next page")).to_have_count(0)  # type: ignore[attr-defined]
    page.get_by_role("link", name="Previous page").click()  # type: ignore[attr-defined]
    expect(first_name(page)).to_have_text(failed[50])
    assert listed_names(page) == failed[50:100]
    accessible(page)

    page.get_by_role("link", name="Created").click()  # type: ignore[attr-defined]  # oldest first, still Failed
    expect(first_name(page)).to_have_text(inserted_name(0))
    assert listed_names(page) == failed[::-1][:50]
    expect(page.locator("th[aria-sort=ascending]")).to_have_count(1)  # type: ignore[attr-defined]


def test_the_date_filter_shows_the_jobs_of_those_days(server: Server, owner: object) -> None:
    page = owner
    page.goto(f"{endpoint_page(server)}?deployment=main")  # type: ignore[attr-defined]  # as "Jobs of main" links
    filters = page.get_by_role("form", name="Filter the jobs")  # type: ignore[attr-defined]
    day = FIRST_CREATED.date() + timedelta(days=3)
    filters.get_by_label("Created from").fill(day.isoformat())
    filters.get_by_label("Created until").fill(day.isoformat())
    filters.get_by_role("button", name="Show jobs").click()
    expect(page.get_by_role("heading", name="Jobs of deployment main")).to_be_visible()  # type: ignore[attr-defined]
    per_day = timedelta(days=1) // SPACING
    expected = [inserted_name(3 * per_day + index) for index in reversed(range(per_day))]
    expect(page.locator("#jobs tbody tr")).to_have_count(per_day)  # type: ignore[attr-defined]
    assert listed_names(page) == expected
    filters = page.get_by_role("form", name="Filter the jobs")  # type: ignore[attr-defined]
    filters.get_by_label("Deployment").select_option("other")
    filters.get_by_role("button", name="Show jobs").click()
    expect(page.locator("main")).to_contain_text("No job matches the filters.")  # type: ignore[attr-defined]
    page.get_by_role("link", name="Clear the filters").click()  # type: ignore[attr-defined]
    expect(page.locator("#jobs tbody tr")).to_have_count(50)  # type: ignore[attr-defined]
    accessible(page)
    for bad in ("from=yesterday", "status=Finished", "after=999999", "before=garbage"):  # a 400 page, not a 500
        page.goto(f"{endpoint_page(server)}?{bad}")  # type: ignore[attr-defined]
        expect(page.get_by_role("heading", name="Bad request")).to_be_visible()  # type: ignore[attr-defined]


def test_a_reader_sees_the_list_and_no_create_job_form(server: Server, browser: object) -> None:
    reader = signed_in_page(server, browser, READER)
    reader.goto(endpoint_page(server))  # type: ignore[attr-defined]
    expect(reader.locator("#jobs tbody tr")).to_have_count(50)  # type: ignore[attr-defined]
    expect(reader.get_by_role("heading", name="Create job")).to_have_count(0)  # type: ignore[attr-defined]
    expect(reader.get_by_role("button", name="Create job")).to_have_count(0)  # type: ignore[attr-defined]
    csrf = reader.locator("input[name=csrf]").first.get_attribute("value")  # type: ignore[attr-defined]  # sign-out's
    form = {"csrf": csrf, "deployment": "main", "path": str(server.home / "data" / "asset")}
    forged = reader.request.post(f"{endpoint_page(server)}/jobs", form=form)  # type: ignore[attr-defined]
    assert forged.status == 403 and "does not have authorization" in forged.text()
    reader.context.close()  # type: ignore[attr-defined]


def created_job(page: object) -> str:
    """The name of the job whose page the form landed on, once it completed."""
    expect(page).to_have_url(re.compile("/jobs/"))  # type: ignore[arg-type]
    expect(page.locator("[data-status]")).to_have_attribute("data-status", "Completed", timeout=60_000)  # type: ignore[attr-defined]
    return page.url.rsplit("/", 1)[-1]  # type: ignore[attr-defined]


def test_create_job_runs_a_job_that_completes_and_a_refused_one_shows_the_error(server: Server, owner: object) -> None:
    page = owner
    page.goto(endpoint_page(server))  # type: ignore[attr-defined]
    form = page.locator("form.create")  # type: ignore[attr-defined]
    form.get_by_label("Path").fill("/etc")
    form.get_by_role("button", name="Create job").click()
    expect(page.locator("#create-error")).to_contain_text("local paths must be under")  # type: ignore[attr-defined]
    expect(form.get_by_label("Path")).to_have_value("/etc")  # what was typed stays
    accessible(page)
    screenshot(page, "create-job-error.png")

    inputs = write_inputs(server.home / "data" / "created", 7)
    form.get_by_label("Deployment").select_option("other")
    form.get_by_label("Path").fill(str(inputs))
    form.get_by_label("Mini-batch size").fill("3")
    form.get_by_label("Output file name").fill("scored.csv")
    form.get_by_role("button", name="Create job").click()
    name = created_job(page)
    with server.client() as client:
        job = wait_for_job(client, name)
    assert job["properties"]["properties"]["azureml.deploymentname"] == "other"
    assert job["properties"]["progress"]["miniBatches"]["total"] == 3  # 7 files, 3 a mini-batch
    assert predictions(server.home, name, "scored.csv") == [f"f{index:05d}.txt" for index in range(7)]


def test_create_job_reads_a_datastore_path(server: Server, owner: object) -> None:
    container = next((server.home / "storage").glob("*/azureml-blobstore-*"))
    write_inputs(container / "created-in", 4)
    page = owner
    page.goto(endpoint_page(server))  # type: ignore[attr-defined]
    form = page.locator("form.create")  # type: ignore[attr-defined]
    form.get_by_label("Path").fill("azureml://datastores/workspaceblobstore/paths/created-in/")
    form.get_by_role("button", name="Create job").click()
    name = created_job(page)
    with server.client() as client:
        assert wait_for_job(client, name)["properties"]["progress"]["items"]["succeeded"] == 4


def test_create_job_with_the_keyboard_only(server: Server, owner: object) -> None:
    page = owner
    page.goto(endpoint_page(server))  # type: ignore[attr-defined]
    screenshot(page, "create-job.png")
    for _ in range(60):  # Tab through the page to the form's first field
        if page.evaluate("document.activeElement.id") == "create-asset":  # type: ignore[attr-defined]
            break
        page.keyboard.press("Tab")  # type: ignore[attr-defined]
    assert page.evaluate("document.activeElement.id") == "create-asset"  # type: ignore[attr-defined]
    page.keyboard.press("ArrowDown")  # type: ignore[attr-defined]  # the first data asset
    assert page.locator("#create-asset").input_value() == "azureml:five-files:1"  # type: ignore[attr-defined]
    while page.evaluate("document.activeElement.id") != "create-mini-batch-size":  # type: ignore[attr-defined]
        page.keyboard.press("Tab")  # type: ignore[attr-defined]
    page.keyboard.type("2")  # type: ignore[attr-defined]
    page.keyboard.press("Enter")  # type: ignore[attr-defined]  # submits the form
    name = created_job(page)
    with server.client() as client:
        job = wait_for_job(client, name)
    assert job["properties"]["properties"]["azureml.deploymentname"] == "main"  # the default deployment
    assert job["properties"]["progress"]["items"] == {"total": 5, "succeeded": 5, "failed": 0}
    assert job["properties"]["inputs"]["input_data"]["uri"] == "azureml:five-files:1"
