"""Alembic's entry point: migrate the connection ``nas.store.schema`` hands over, inside its
transaction, keeping the revision in ``nas_schema_version`` (Optuna's is ``alembic_version``)."""

from alembic import context

from nas.store.schema import VERSION_TABLE

context.configure(connection=context.config.attributes["connection"], version_table=VERSION_TABLE)
with context.begin_transaction():
    context.run_migrations()
