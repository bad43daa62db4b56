"""Alembic migrations of the ``nas_*`` tables, numbered ``0001``, ``0002``... in ``versions/``.

The store's revision lives in its own table, ``nas_schema_version``, beside Optuna's
``alembic_version`` in the same database, so the two migration histories never meet.
``nas.store.schema`` runs them (a writer on open, ``nas db upgrade``); they only go forward.

A schema change is a new file ``versions/NNNN_what.py`` with ``revision = "NNNN"``,
``down_revision`` the previous number and an ``upgrade()`` written with ``alembic.op`` (new
columns through :func:`add_columns`), together with the same change in ``nas/store/models.py``;
tests/test_store_migrations.py checks that the migrated schema and the models agree.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


def add_columns(table: str, *columns: sa.Column) -> None:
    """Add the ``columns`` ``table`` lacks, nullable, giving existing rows a column's scalar
    default. A column already there is left alone: releases before the schema had a version,
    and development builds, added columns on open without a revision."""
    have = {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}
    for column in columns:
        if column.name in have:
            continue
        op.add_column(table, sa.Column(column.name, column.type, nullable=True))
        if column.default is not None and column.default.is_scalar:
            rows = sa.table(table, sa.column(column.name))
            op.execute(rows.update().values({column.name: column.default.arg}))
