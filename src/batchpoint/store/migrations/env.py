"""Alembic environment: runs against the engine the store hands over in ``config.attributes``."""

from alembic import context
from sqlalchemy import text

from batchpoint.store.rows import Base

MIGRATION_LOCK = 0x62617463  # any constant: replicas starting at once upgrade one after the other

engine = context.config.attributes["engine"]

with engine.begin() as connection:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
