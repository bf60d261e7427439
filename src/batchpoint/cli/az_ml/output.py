"""``--query`` and ``--output/-o`` as ``az`` has them: a JMESPath query over the JSON result, then one format.

``tsv`` follows ``az``'s rules, which shell scripts rely on (``JOB=$(... --query name -o tsv)``): a list is one row
per item, a dict one row of its values in key order, a nested list shows its length and a nested dict nothing."""

from __future__ import annotations

import json
from enum import Enum
from typing import Any

import typer
import yaml
from rich.table import Table

from batchpoint.cli.common import console


class Format(str, Enum):
    json = "json"
    jsonc = "jsonc"
    yaml = "yaml"
    yamlc = "yamlc"
    tsv = "tsv"
    table = "table"
    none = "none"


def render(result: Any, query: str | None, output: Format) -> None:
    """Print a command's result (JSON-able data, or ``None`` for nothing) as ``az`` would."""
    if result is None or output is Format.none:
        return
    if query:
        import jmespath  # with azure-ai-ml, in batchpoint[cli]: only these verbs take --query

        try:
            result = jmespath.search(query, result)
        except jmespath.exceptions.JMESPathError as error:
            raise typer.BadParameter(str(error), param_hint="--query") from None
    if output in (Format.json, Format.jsonc):
        print(json.dumps(result, indent=2, default=str))
    elif output in (Format.yaml, Format.yamlc):
        print(yaml.safe_dump(json.loads(json.dumps(result, default=str)), sort_keys=False), end="")
    elif output is Format.tsv:
        print(tsv(result), end="")
    else:
        console().print(table(result))


def tsv(result: Any) -> str:
    rows = result if isinstance(result, list) else [result]
    return "".join(_tsv_row(row) + "\n" for row in rows if row is not None)


def _tsv_row(row: Any) -> str:
    if isinstance(row, dict):
        return "\t".join(_tsv_cell(value) for _, value in sorted(row.items()))
    if isinstance(row, list):
        return "\t".join(_tsv_cell(value) for value in row)
    return _tsv_cell(row)


def _tsv_cell(value: Any) -> str:
    if isinstance(value, list):
        return str(len(value))
    if isinstance(value, dict) or value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def table(result: Any) -> Table:
    """Rows of the scalar fields, as ``az -o table`` shows them."""
    rows = [
        row if isinstance(row, dict) else {"Result": row} for row in (result if isinstance(result, list) else [result])
    ]
    columns = [
        key
        for key in dict.fromkeys(key for row in rows for key in row)
        if all(not isinstance(row.get(key), (dict, list)) for row in rows)
    ]
    grid = Table(*columns)
    for row in rows:
        grid.add_row(*(_tsv_cell(row.get(column)) for column in columns))
    return grid
