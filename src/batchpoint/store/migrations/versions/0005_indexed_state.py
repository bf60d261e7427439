"""indexed state: jobs, role assignments and code hashes get tables with the columns that are queried, and resources
an index by type

The rows of an existing data directory are filled in from the stored bodies, with the same derivation the store
uses at every write (``store/indexes.py``).
"""

import json

import sqlalchemy as sa
from alembic import op

from batchpoint.store.entities import Resource
from batchpoint.store.indexes import INDEXED, IndexedType

revision = "0005"
down_revision = "0004"

BATCH = 1000
UNFINISHED_JOB = sa.text("status NOT IN ('Completed', 'Failed', 'Canceled')")


def key_column(name: str) -> sa.Column:
    return sa.Column(name, sa.String(1024).with_variant(sa.String(1024, collation="C"), "postgresql"), nullable=False)


def upgrade() -> None:
    op.create_index("ix_resources_type", "resources", ["type_key", "key"])
    op.create_table(
        "jobs",
        key_column("key"),
        key_column("workspace_key"),
        sa.Column("endpoint", sa.String(256), nullable=True),
        sa.Column("deployment", sa.String(256), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index("ix_jobs_endpoint", "jobs", ["workspace_key", "endpoint", "created_us", "key"])
    op.create_index("ix_jobs_deployment", "jobs", ["workspace_key", "endpoint", "deployment", "created_us", "key"])
    op.create_index("ix_jobs_status", "jobs", ["status"])
    op.create_index(
        "ix_jobs_unfinished", "jobs", ["created_us"], sqlite_where=UNFINISHED_JOB, postgresql_where=UNFINISHED_JOB
    )
    op.create_table(
        "role_assignments",
        key_column("key"),
        sa.Column("principal_id", sa.String(256), nullable=False),
        sa.Column("scope", sa.String(1024), nullable=False),
        sa.Column("role_definition_id", sa.String(1024), nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "code_hashes",
        key_column("key"),
        key_column("workspace_key"),
        sa.Column("hash_sha256", sa.String(128), nullable=True),
        sa.Column("hash_version", sa.String(32), nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index("ix_code_hashes_hash", "code_hashes", ["workspace_key", "hash_sha256"])
    for type_key, indexed in INDEXED.items():
        _fill(type_key, indexed)


def _fill(type_key: str, indexed: IndexedType) -> None:
    """One pass over the stored resources of one type, a batch of rows at a time."""
    bind = op.get_bind()
    rows = bind.execute(
        sa.text("SELECT key, id, type, body, created_us FROM resources WHERE type_key = :type"), {"type": type_key}
    )
    batch = []
    for key, id_, type_, body, created_us in rows:
        resource = Resource(id=id_, type=type_, body=json.loads(body))
        batch.append({"key": key, "created_us": created_us, **indexed.columns(resource)})
        if len(batch) == BATCH:
            bind.execute(indexed.table.insert(), batch)
            batch = []
    if batch:
        bind.execute(indexed.table.insert(), batch)


def downgrade() -> None:
    op.drop_table("code_hashes")
    op.drop_table("role_assignments")
    op.drop_table("jobs")
    op.drop_index("ix_resources_type", "resources")
