"""job_attempts: where each try ran and how it ended, for the job's processed_mini-batches.csv

The node and process of the worker, Azure's status of the try (RUN_DONE, RUN_EXCEPTION, ...), when it started
(UTC seconds since the epoch) and how long it took. Tries recorded before this revision have none of them (NULL).
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"

COLUMNS = (
    ("node", sa.String(32)),
    ("process", sa.String(32)),
    ("status", sa.String(24)),
    ("started", sa.Double),
    ("elapsed_seconds", sa.Double),
    ("process_seconds", sa.Double),
    ("run_seconds", sa.Double),
)


def upgrade() -> None:
    for name, kind in COLUMNS:
        op.add_column("job_attempts", sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("job_attempts") as table:
        for name, _ in reversed(COLUMNS):
            table.drop_column(name)
