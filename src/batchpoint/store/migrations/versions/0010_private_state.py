"""private state: the column ``resources.secrets`` becomes ``private``, and a job's run record names its kind

The column holds what the server keeps with a resource and never shows: an endpoint's keys, a datastore's
credentials, and a job's run record (`jobs/run_record.py`). A job's record now says whether it is a model job's
or a pipeline job's (``kind``) instead of leaving it to be told from its keys; jobs without one (steps) stay so.
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"

JOB_TYPE = "microsoft.machinelearningservices/workspaces/jobs"
KIND_BY_KEY = {"spec": "model", "pipeline": "pipeline"}
"""The key that told a record's kind before it was written down."""
BATCH = 1000


def upgrade() -> None:
    op.execute("ALTER TABLE resources RENAME COLUMN secrets TO private")
    bind = op.get_bind()
    page = sa.text(
        "SELECT key, private FROM resources WHERE type_key = :type AND key > :after ORDER BY key LIMIT :limit"
    )
    update = sa.text("UPDATE resources SET private = :private WHERE key = :key")
    after = ""
    while rows := bind.execute(page, {"type": JOB_TYPE, "after": after, "limit": BATCH}).fetchall():
        changed = [_with_kind(key, private) for key, private in rows]
        if any(changed):
            bind.execute(update, [row for row in changed if row])
        after = rows[-1][0]


def _with_kind(key: str, private: str | None) -> dict[str, str] | None:
    """The row's new record, or None when it has no record (a step) or has its kind already."""
    record = json.loads(private or "{}")
    kind = next((kind for name, kind in KIND_BY_KEY.items() if name in record), None)
    if kind is None or "kind" in record:
        return None
    return {"key": key, "private": json.dumps({"kind": kind, **record}, separators=(",", ":"))}


def downgrade() -> None:
    """The records keep their kind: the code before this never looked for it."""
    op.execute("ALTER TABLE resources RENAME COLUMN private TO secrets")
