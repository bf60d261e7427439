"""``--query`` and ``-o`` print what ``az`` prints, so shell scripts capture the same values."""

from __future__ import annotations

import json

import pytest
import typer

from batchpoint.cli.az_ml.output import Format, render

JOB = {
    "name": "batchjob-1",
    "status": "Completed",
    "tags": {},
    "outputs": {"score": {"path": "azureml://x"}},
    "retries": [1, 2],
    "archived": False,
    "description": None,
}


def printed(capsys: pytest.CaptureFixture[str], result: object, query: str | None, output: Format) -> str:
    render(result, query, output)
    return capsys.readouterr().out


def test_a_queried_scalar_as_tsv_is_the_bare_value(capsys: pytest.CaptureFixture[str]) -> None:
    assert printed(capsys, JOB, "name", Format.tsv) == "batchjob-1\n"


def test_a_list_as_tsv_is_one_line_per_item(capsys: pytest.CaptureFixture[str]) -> None:
    assert printed(capsys, [JOB, {**JOB, "name": "batchjob-2"}], "[].name", Format.tsv) == "batchjob-1\nbatchjob-2\n"


def test_a_dict_as_tsv_is_its_values_in_key_order(capsys: pytest.CaptureFixture[str]) -> None:
    # archived, description, name, outputs, retries, status, tags: nested dicts are empty, lists their length
    assert printed(capsys, JOB, None, Format.tsv) == "false\t\tbatchjob-1\t\t2\tCompleted\t\n"


def test_json_is_the_query_result_and_none_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert json.loads(printed(capsys, JOB, "{Name:name, Score:outputs.score.path}", Format.json)) == {
        "Name": "batchjob-1",
        "Score": "azureml://x",
    }
    assert printed(capsys, JOB, None, Format.none) == ""


def test_a_bad_query_is_a_usage_error() -> None:
    with pytest.raises(typer.BadParameter, match="Invalid jmespath expression"):
        render(JOB, "[?", Format.json)
