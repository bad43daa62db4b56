"""Alembic migrations of the ``nas_*`` tables, numbered ``0001``, ``0002``... in ``versions/``.

The store's revision lives in its own table, ``nas_schema_version``, beside Optuna's
``alembic_version`` in the same database, so the two migration histories never meet.
``nas.store.schema`` runs them (a writer on open, ``nas db upgrade``); they only go forward.

A schema change is a new file ``versions/NNNN_what.py`` with ``revision = "NNNN"``,
``down_revision`` the previous number and an ``upgrade()`` written with ``alembic.op``, together
with the same change in ``nas/store/models.py``; tests/test_store_migrations.py checks that the
migrated schema and the models agree.
"""
