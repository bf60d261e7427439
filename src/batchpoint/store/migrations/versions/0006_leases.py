"""leases and cancel requests: which process owns a job or an operation

Unfinished jobs and operations of an existing data directory get an unowned lease, so the first server that
starts on the upgraded database takes them over.
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"

JOB_TYPE = "microsoft.machinelearningservices/workspaces/jobs"
TERMINAL = ("Completed", "Failed", "Canceled")


def upgrade() -> None:
    leases = op.create_table(
        "leases",
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("subject", sa.String(1024), primary_key=True),
        sa.Column("owner", sa.String(128), nullable=True),
        sa.Column("expires_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_leases_owner", "leases", ["owner"])
    op.create_index("ix_leases_kind_expires", "leases", ["kind", "expires_us"])
    op.create_table(
        "cancel_requests",
        sa.Column("subject", sa.String(1024), primary_key=True),
        sa.Column("requested_us", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(leases, [*_unfinished_jobs(), *_running_operations()])


def _unfinished_jobs() -> list[dict]:
    rows = op.get_bind().execute(
        sa.text("SELECT key, body, secrets FROM resources WHERE type_key = :type"), {"type": JOB_TYPE}
    )
    return [
        _unowned("job", key)
        for key, body, secrets in rows
        if json.loads(body)["properties"].get("status") not in TERMINAL
        and {"spec", "pipeline"} & set(json.loads(secrets or "{}"))  # a pipeline's steps run with their parent
    ]


def _running_operations() -> list[dict]:
    rows = op.get_bind().execute(sa.text("SELECT id FROM operations WHERE status = 'InProgress'"))
    return [_unowned("operation", operation_id) for (operation_id,) in rows]


def _unowned(kind: str, subject: str) -> dict:
    return {"kind": kind, "subject": subject, "owner": None, "expires_us": 0}


def downgrade() -> None:
    op.drop_table("cancel_requests")
    op.drop_index("ix_leases_kind_expires", "leases")
    op.drop_index("ix_leases_owner", "leases")
    op.drop_table("leases")
