"""drop ix_jobs_unfinished: resume reads the leases table (0006), so no query reads this index any more"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"

UNFINISHED_JOB = sa.text("status NOT IN ('Completed', 'Failed', 'Canceled')")


def upgrade() -> None:
    op.drop_index("ix_jobs_unfinished", "jobs")


def downgrade() -> None:
    op.create_index(
        "ix_jobs_unfinished", "jobs", ["created_us"], sqlite_where=UNFINISHED_JOB, postgresql_where=UNFINISHED_JOB
    )
