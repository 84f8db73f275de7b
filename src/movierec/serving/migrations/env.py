"""Alembic environment: runs on the connection :class:`~movierec.serving.store.Store` passes.

There is no alembic.ini: the store builds the Config in code (script_location = this
folder) and hands its open connection, already inside the migration transaction, in
``config.attributes["connection"]``. A new revision, from a checkout::

    python -c "from alembic import command; from alembic.config import Config; c = Config();
    c.set_main_option('script_location', 'src/movierec/serving/migrations');
    command.revision(c, 'what changes', rev_id='0002')"

then write its upgrade() with ``op`` calls and mirror the change in the ORM classes of
store.py (the tests compare the migrated schema with them).
"""

from __future__ import annotations

from alembic import context

from movierec.serving.store import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("open the store with movierec.serving.store.Store(url) to migrate it")
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
