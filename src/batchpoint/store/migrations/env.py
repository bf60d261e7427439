"""Alembic environment: runs against the engine the store hands over in ``config.attributes``."""

from alembic import context

from batchpoint.store.rows import Base

engine = context.config.attributes["engine"]

with engine.begin() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
