"""A pipeline job's steps drawn as a graph on its page: each step a box in the column after the steps it needs
(their longest chain), coloured by its status and linking to the step's page; an arrow from each step to each step
that needs it. Laid out here, drawn as SVG on the server by ``_pipeline_graph.html``; the steps table is its text
alternative."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from batchpoint.web.views import StepView

NODE_WIDTH, NODE_HEIGHT = 180, 46
COLUMN_GAP, ROW_GAP, MARGIN = 56, 18, 4
LABEL_CHARACTERS = 22
"""A longer step name is cut in its box (its link's label holds it whole)."""


class Node(NamedTuple):
    """A step's box: its top left corner (every box has the size ``NODE_WIDTH`` by ``NODE_HEIGHT``)."""

    step: StepView
    x: int
    y: int

    @property
    def label(self) -> str:
        name = self.step.name
        return name if len(name) <= LABEL_CHARACTERS else name[: LABEL_CHARACTERS - 1] + "…"


@dataclass(frozen=True)
class Graph:
    nodes: list[Node]
    edges: list[str]
    """Each arrow as an SVG path, from the right of a step to the left of a step that needs it."""
    width: int
    height: int
    box: tuple[int, int] = (NODE_WIDTH, NODE_HEIGHT)
    """Every step's box's width and height."""


def pipeline_graph(steps: list[StepView]) -> Graph:
    """The layout of ``steps``, given in an order where each step comes after those it needs (the planner's)."""
    columns: dict[str, int] = {}
    rows: dict[int, int] = {}
    nodes: dict[str, Node] = {}
    for step in steps:
        column = 1 + max((columns[name] for name in step.after if name in columns), default=-1)
        columns[step.name], rows[column] = column, rows.get(column, -1) + 1
        x = MARGIN + column * (NODE_WIDTH + COLUMN_GAP)
        nodes[step.name] = Node(step, x, MARGIN + rows[column] * (NODE_HEIGHT + ROW_GAP))
    edges = [_arrow(nodes[name], node) for node in nodes.values() for name in node.step.after if name in nodes]
    width = MARGIN * 2 + (max(columns.values(), default=-1) + 1) * (NODE_WIDTH + COLUMN_GAP) - COLUMN_GAP
    height = MARGIN * 2 + (max(rows.values(), default=-1) + 1) * (NODE_HEIGHT + ROW_GAP) - ROW_GAP
    return Graph(list(nodes.values()), edges, max(width, 0), max(height, 0))


def _arrow(source: Node, target: Node) -> str:
    x1, y1 = source.x + NODE_WIDTH, source.y + NODE_HEIGHT // 2
    x2, y2 = target.x - 2, target.y + NODE_HEIGHT // 2
    middle = (x1 + x2) // 2
    return f"M{x1},{y1} C{middle},{y1} {middle},{y2} {x2},{y2}"
