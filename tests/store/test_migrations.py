"""An existing data directory is upgraded in place: what it held reads back through the new indexed columns."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect

from batchpoint.jobs.run_record import ModelRun, PipelineRun, run_of, spec_to_record
from batchpoint.runtime.spec import JobSpec
from batchpoint.store import open_store
from batchpoint.store.connections import make_engine
from batchpoint.store.entities import JobFilter, RoleGrant, SortOrder
from batchpoint.store.indexes import CODE_VERSION_TYPE, ROLE_ASSIGNMENT_TYPE
from batchpoint.store.migrate import alembic_config
from tests.store.conftest import database_url
from tests.store.test_store_contract import WORKSPACE, job, resource

BEFORE_INDEXED_STATE = "0004"
BEFORE_PRIVATE_STATE = "0009"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_database_from_before_the_indexed_tables_is_upgraded_in_place(backend: str, tmp_path: Path) -> None:
    url = database_url(backend, tmp_path)
    store = open_store(url)
    jobs = [
        job(f"j{index:04d}", "ep", "blue", "Completed" if index else "Running", seconds=index) for index in range(1500)
    ]
    store.insert_many(jobs)  # more than one batch of the upgrade; one statement rather than 1,500 transactions
    assignment = f"{WORKSPACE}/providers/Microsoft.Authorization/roleAssignments/a1"
    store.insert(resource(assignment, ROLE_ASSIGNMENT_TYPE, principalId="p1", scope=WORKSPACE, roleDefinitionId="r1"))
    code = resource(f"{WORKSPACE}/codes/c/versions/1", CODE_VERSION_TYPE)
    code.body["properties"]["properties"] = {"hash_sha256": "abc", "hash_version": "202208"}
    store.insert(code)
    store.close()
    engine = make_engine(url)
    command.downgrade(alembic_config(engine), BEFORE_INDEXED_STATE)
    assert "jobs" not in inspect(engine).get_table_names()
    engine.dispose()

    upgraded = open_store(url)

    assert [
        item.id
        for item in upgraded.list_jobs(
            WORKSPACE, "ep", JobFilter(deployment="blue"), SortOrder(descending=True), None, 2
        )
    ] == [
        f"{WORKSPACE}/jobs/j1499",
        f"{WORKSPACE}/jobs/j1498",
    ]
    assert upgraded.jobs_by_status() == {"Running": 1, "Completed": 1499}
    assert upgraded.role_assignments() == [RoleGrant(assignment, "p1", WORKSPACE, "r1")]
    assert [found.id for found in upgraded.code_versions_with_hash(WORKSPACE, "abc")] == [code.id]
    upgraded.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_jobs_stored_before_their_run_records_named_their_kind_keep_working(backend: str, tmp_path: Path) -> None:
    url = database_url(backend, tmp_path)
    store = open_store(url)
    spec = JobSpec(job_id="j1", input_paths=[tmp_path / "in"], output_dir=tmp_path / "out", mini_batch_size=3)
    model, pipeline, step = (
        job("model", "ep", "blue", "Running"),
        job("pipe", "ep", "p", "Running"),
        job("s", None, None, "Running"),
    )
    model.private = {"placement": None, "spec": spec_to_record(spec), "fetch": None, "environment": None}
    pipeline.private = {"pipeline": {"steps": [{"name": "train"}], "continue_on_step_failure": False}}
    endpoint = resource(f"{WORKSPACE}/batchEndpoints/ep")
    endpoint.private = {"primaryKey": "k1", "secondaryKey": "k2"}
    store.insert_many([model, pipeline, step, endpoint])
    store.close()
    engine = make_engine(url)
    command.downgrade(alembic_config(engine), BEFORE_PRIVATE_STATE)
    assert "secrets" in {column["name"] for column in inspect(engine).get_columns("resources")}
    engine.dispose()

    upgraded = open_store(url)

    model_run = run_of(upgraded.get(model.id))
    assert isinstance(model_run, ModelRun)
    assert (model_run.spec.job_id, model_run.spec.output_dir, model_run.spec.mini_batch_size) == (
        spec.job_id,
        spec.output_dir,
        3,
    )
    assert model_run.scoring_child is None
    pipeline_run = run_of(upgraded.get(pipeline.id))
    assert isinstance(pipeline_run, PipelineRun)
    assert pipeline_run.steps == [{"name": "train"}]
    assert run_of(upgraded.get(step.id)) is None
    found = upgraded.get(endpoint.id)
    assert found is not None and found.private == {"primaryKey": "k1", "secondaryKey": "k2"}
    upgraded.close()


def test_a_job_stored_before_a_rule_was_made_stricter_stays_readable(tmp_path: Path) -> None:
    """An output file name refused since (`logs`): before, reading the job back raised, and its record, logs and
    pages answered 500. Running it again (a changed copy of its spec) is still refused."""
    store = open_store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    record = spec_to_record(JobSpec(job_id="j1", input_paths=[tmp_path / "in"], output_dir=tmp_path / "out"))
    model = job("model", "ep", "blue", "Completed")
    model.private = {"kind": "model", "spec": {**record, "output_file_name": "logs"}}
    store.insert_many([model])

    model_run = run_of(store.get(model.id))

    assert isinstance(model_run, ModelRun) and model_run.spec.output_file_name == "logs"
    with pytest.raises(ValueError, match="output_file_name cannot be 'logs'"):
        replace(model_run.spec, python=None)
