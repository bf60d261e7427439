"""An existing data directory is upgraded in place: what it held reads back through the new indexed columns."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect

from batchpoint.store import open_store
from batchpoint.store.connections import make_engine
from batchpoint.store.entities import RoleGrant, SortOrder
from batchpoint.store.indexes import CODE_VERSION_TYPE, ROLE_ASSIGNMENT_TYPE
from batchpoint.store.migrate import alembic_config
from tests.store.conftest import database_url
from tests.store.test_store_contract import WORKSPACE, job, resource

BEFORE_INDEXED_STATE = "0004"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_database_from_before_the_indexed_tables_is_upgraded_in_place(backend: str, tmp_path: Path) -> None:
    url = database_url(backend, tmp_path)
    store = open_store(url)
    for index in range(1500):  # more than one batch of the upgrade
        store.insert(job(f"j{index:04d}", "ep", "blue", "Completed" if index else "Running", seconds=index))
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

    assert [item.id for item in upgraded.list_jobs(WORKSPACE, "ep", "blue", SortOrder(descending=True), None, 2)] == [
        f"{WORKSPACE}/jobs/j1499",
        f"{WORKSPACE}/jobs/j1498",
    ]
    assert upgraded.jobs_by_status() == {"Running": 1, "Completed": 1499}
    assert upgraded.role_assignments() == [RoleGrant(assignment, "p1", WORKSPACE, "r1")]
    assert [found.id for found in upgraded.code_versions_with_hash(WORKSPACE, "abc")] == [code.id]
    upgraded.close()
