"""A pipeline job's steps drawn as a graph on its page: the layout of a diamond (pure), and the page of a real
diamond pipeline job in Chromium: a box per step with its state, linking to the step's page, an arrow per
dependency, a caption that says the same, no axe violation."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from batchpoint.web.pipeline_graph import COLUMN_GAP, MARGIN, NODE_HEIGHT, NODE_WIDTH, ROW_GAP, pipeline_graph
from batchpoint.web.views import StepView
from tests.jobs.pipelines.test_pipelines import component, node, put_job, wait_for_status
from tests.server import TEST_USER, WORKSPACE_ID, Server
from tests.web.test_pages import accessible, expect, screenshot, signed_in_page

DIAMOND = {"prepare": [], "left": ["prepare"], "right": ["prepare"], "merge": ["left", "right"]}
"""Each step and the steps it needs, in the planner's order."""


def step(name: str, after: list[str]) -> StepView:
    return StepView(f"job-{name}", name, "Completed", "", [], after)


def test_each_step_is_drawn_in_the_column_after_the_steps_it_needs() -> None:
    graph = pipeline_graph([step(name, after) for name, after in DIAMOND.items()])

    places = {each.step.name: (each.x, each.y) for each in graph.nodes}
    column, row = NODE_WIDTH + COLUMN_GAP, NODE_HEIGHT + ROW_GAP
    assert places == {
        "prepare": (MARGIN, MARGIN),
        "left": (MARGIN + column, MARGIN),
        "right": (MARGIN + column, MARGIN + row),
        "merge": (MARGIN + 2 * column, MARGIN),
    }
    assert len(graph.edges) == 4
    assert (graph.width, graph.height) == (2 * MARGIN + 3 * column - COLUMN_GAP, 2 * MARGIN + 2 * row - ROW_GAP)


def diamond_job(client: httpx.Client) -> str:
    make = {"type": "command", "command": "echo made > ${{outputs.y}}/a.txt", "outputs": {"y": {"type": "uri_folder"}}}
    use = {
        "type": "command",
        "command": "cp ${{inputs.x}}/a.txt ${{outputs.y}}/",
        "inputs": {"x": {"type": "uri_folder"}},
        "outputs": {"y": {"type": "uri_folder"}},
    }
    join = {
        "type": "command",
        "command": "cat ${{inputs.a}}/a.txt ${{inputs.b}}/a.txt",
        "inputs": {"a": {"type": "uri_folder"}, "b": {"type": "uri_folder"}},
    }
    specs = {"make": make, "use": use, "join": join}
    ids = {name: component(client, f"graph-{name}", spec) for name, spec in specs.items()}
    left, right = "${{parent.jobs.left.outputs.y}}", "${{parent.jobs.right.outputs.y}}"
    prepared = "${{parent.jobs.prepare.outputs.y}}"
    spec = {
        "type": "pipeline",
        "jobs": {
            "prepare": node(ids["make"]),
            "left": node(ids["use"], x=prepared),
            "right": node(ids["use"], x=prepared),
            "merge": node(ids["join"], a=left, b=right),
        },
    }
    properties = {"jobType": "Pipeline", "componentId": component(client, "graph-diamond", spec), "jobs": {}}
    assert put_job(client, "graph-diamond", properties).status_code == 201
    wait_for_status(client, f"{WORKSPACE_ID}/jobs/graph-diamond", "Completed")
    return "graph-diamond"


@pytest.fixture(scope="module")
def page(server: Server, browser: object) -> Iterator[object]:
    signed_in = signed_in_page(server, browser, TEST_USER)
    yield signed_in
    signed_in.context.close()  # type: ignore[attr-defined]


def test_a_pipeline_job_page_draws_its_steps_as_a_graph_that_links_to_them(server: Server, page: object) -> None:
    with server.client() as client:
        name = diamond_job(client)
    page.goto(f"{server.base_url}/jobs/{name}")  # type: ignore[attr-defined]
    graph = page.locator("figure.graph")  # type: ignore[attr-defined]
    for each in DIAMOND:
        expect(graph.get_by_role("link", name=f"Step {each}: Completed")).to_be_visible()
    expect(graph.locator("path.edge")).to_have_count(4)
    expect(graph.locator("figcaption")).to_contain_text("merge (Completed, after left and right)")
    accessible(page)
    screenshot(page, "job-pipeline-graph.png")
    graph.get_by_role("link", name="Step right: Completed").click()
    expect(page.get_by_role("heading", name=f"Job {name}-right")).to_be_visible()  # type: ignore[attr-defined]
