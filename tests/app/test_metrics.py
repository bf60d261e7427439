"""``/metrics``: the Prometheus text format, protected like the API, with counters that match a real job."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from batchpoint.access.issuer import ensure_issuer
from batchpoint.config import DEFAULT_SUBSCRIPTION as SUBSCRIPTION
from tests.api.arm import grant
from tests.api.jobs import deploy_script, invoke, wait_for_job
from tests.server import Server

SCRAPER = "prometheus@example.com"
SUBSCRIPTION_READER = "reader@example.com"
SCRIPT = """
import os, time

def init():
    pass

def run(mini_batch):
    for path in mini_batch:
        if "bad" in path:
            raise ValueError("cannot score " + os.path.basename(path))
        if "slow" in path:
            time.sleep(30)
    return [os.path.basename(path) for path in mini_batch]
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("home")
    (home / "data").mkdir()
    running = Server(home=home, args=["--allow-local-path", str(home / "data")]).start()
    issuer = ensure_issuer(running.home)
    with running.client() as owner:
        grant(owner, "/", issuer.object_id(SCRAPER), "Reader")
        grant(owner, f"/subscriptions/{SUBSCRIPTION}", issuer.object_id(SUBSCRIPTION_READER), "Reader")
    yield running
    running.stop()


def scrape(server: Server) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample as (name, sorted labels) -> value, read with prometheus_client's own parser."""
    with server.client(token=server.token(user=SCRAPER)) as client:
        response = client.get(f"{server.base_url}/metrics")
    assert response.status_code == 200, response.text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def delta(before: dict, after: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


def test_metrics_need_a_token_with_read_access_over_the_root(server: Server) -> None:
    with server.client(token=None) as anonymous:
        assert anonymous.get(f"{server.base_url}/metrics").status_code == 401
    with server.client(token=server.token(user=SUBSCRIPTION_READER)) as subscription_reader:
        assert subscription_reader.get(f"{server.base_url}/metrics").status_code == 403


def test_counters_match_the_job(server: Server) -> None:
    data = server.home / "data"
    inputs = data / "inputs"
    inputs.mkdir()
    for name in ("a", "b", "c", "d", "bad", "slow"):
        (inputs / f"{name}.txt").write_text(name)
    with server.client() as client:
        settings = {"maxConcurrencyPerInstance": 2, "retrySettings": {"maxRetries": 1, "timeout": "PT2S"}}
        deploy_script(client, data, "metered", "main", SCRIPT, miniBatchSize=1, **settings)
        before = scrape(server)
        name = invoke(client, "metered", str(inputs)).json()["name"]
        job = wait_for_job(client, name, timeout=120)
    after = scrape(server)

    assert job["properties"]["status"] == "Completed"  # error threshold -1: failed items do not fail the job
    assert delta(before, after, "batchpoint_mini_batches_total", outcome="succeeded") == 4
    assert delta(before, after, "batchpoint_mini_batches_total", outcome="failed") == 2
    assert delta(before, after, "batchpoint_items_total", outcome="succeeded") == 4
    assert delta(before, after, "batchpoint_items_total", outcome="failed") == 2
    assert delta(before, after, "batchpoint_mini_batch_retries_total") == 2
    assert delta(before, after, "batchpoint_mini_batch_timeouts_total") == 2
    assert delta(before, after, "batchpoint_worker_restarts_total") == 2
    assert delta(before, after, "batchpoint_run_duration_seconds_count") == 8  # 4 + 2 tries of each failing one
    assert delta(before, after, "batchpoint_jobs", state="Completed") == 2  # the job and its scoring step
    assert after[("batchpoint_busy_workers", ())] == 0 and after[("batchpoint_job_queue_depth", ())] == 0
    invoked = (
        ("method", "POST"),
        (
            "route",
            "/inference/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}"
            "/providers/Microsoft.MachineLearningServices/workspaces/{workspaceName}/batchEndpoints/{endpointName}/jobs",
        ),
    )
    assert after[("batchpoint_http_requests_total", (*invoked, ("status", "200")))] >= 1
    assert after[("batchpoint_http_request_duration_seconds_count", invoked)] >= 1
