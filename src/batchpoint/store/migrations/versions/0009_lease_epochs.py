"""lease epochs: every claim of a lease counts one more, and a job owner's writes carry the epoch it claimed

A write of a process whose lease has moved on (expired and claimed by another, or ended) is refused: see
`store/leases.py` (fences). Existing leases start at epoch 0; their next claim makes it 1.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    with op.batch_alter_table("leases") as table:
        table.add_column(sa.Column("epoch", sa.BigInteger, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("leases") as table:
        table.drop_column("epoch")
