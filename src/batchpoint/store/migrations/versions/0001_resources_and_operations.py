"""resources and operations"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "resources",
        sa.Column("key", sa.String(1024), primary_key=True),
        sa.Column("id", sa.String(1024), nullable=False),
        sa.Column("parent_key", sa.String(1024), nullable=False),
        sa.Column("type_key", sa.String(256), nullable=False),
        sa.Column("type", sa.String(256), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("secrets", sa.Text, nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_resources_children_created", "resources", ["parent_key", "type_key", "created_us", "key"])
    op.create_index("ix_resources_children_updated", "resources", ["parent_key", "type_key", "updated_us", "key"])
    op.create_table(
        "operations",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("resource_id", sa.String(1024), nullable=False),
        sa.Column("resource_key", sa.String(1024), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("location", sa.String(128), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("started_us", sa.BigInteger, nullable=False),
        sa.Column("ended_us", sa.BigInteger, nullable=True),
        sa.Column("error_code", sa.String(256), nullable=True),
        sa.Column("error_message", sa.Text, nullable=True),
    )
    running = sa.text("status = 'InProgress'")
    op.create_index(
        "uq_operations_running",
        "operations",
        ["resource_key"],
        unique=True,
        sqlite_where=running,
        postgresql_where=running,
    )
    op.create_index("ix_operations_status", "operations", ["status"])


def downgrade() -> None:
    op.drop_table("operations")
    op.drop_table("resources")
