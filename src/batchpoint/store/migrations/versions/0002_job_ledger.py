"""job ledger: plans, mini-batches and attempts"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "job_plans",
        sa.Column("job_id", sa.String(256), primary_key=True),
        sa.Column("mini_batch_count", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "job_mini_batches",
        sa.Column("job_id", sa.String(256), primary_key=True),
        sa.Column("index", sa.BigInteger, primary_key=True),
        sa.Column("files", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("tries", sa.BigInteger, nullable=False),
        sa.Column("succeeded_items", sa.BigInteger, nullable=False),
        sa.Column("failed_items", sa.BigInteger, nullable=False),
        sa.Column("last_error", sa.Text, nullable=True),
    )
    op.create_table(
        "job_attempts",
        sa.Column("job_id", sa.String(256), primary_key=True),
        sa.Column("index", sa.BigInteger, primary_key=True),
        sa.Column("try_number", sa.BigInteger, primary_key=True),
        sa.Column("worker", sa.String(256), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("job_attempts")
    op.drop_table("job_mini_batches")
    op.drop_table("job_plans")
