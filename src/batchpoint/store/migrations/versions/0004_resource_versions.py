"""resource versions (optimistic concurrency) and byte-ordered keys (prefix scans as key ranges)"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    with op.batch_alter_table("resources") as batch:
        batch.add_column(sa.Column("version", sa.BigInteger, nullable=False, server_default="1"))
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("resources", "key", type_=sa.String(1024, collation="C"), existing_nullable=False)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("resources", "key", type_=sa.String(1024), existing_nullable=False)
    with op.batch_alter_table("resources") as batch:
        batch.drop_column("version")
