"""Alembic environment: runs against the engine the store hands over in ``config.attributes``.

Replicas starting at the same moment migrate one after the other: the migration runs in one transaction that first
takes a lock (an advisory lock on PostgreSQL, the write lock on SQLite), so the second finds the schema at head.
"""

from alembic import context
from sqlalchemy import text

from batchpoint.store.connections import BEGIN_OPTION
from batchpoint.store.rows import Base

MIGRATION_LOCK = 0x62617463  # any constant all replicas agree on ("batc")

engine = context.config.attributes["engine"]

with engine.execution_options(**{BEGIN_OPTION: "IMMEDIATE"}).begin() as connection:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
