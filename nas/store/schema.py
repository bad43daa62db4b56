"""The store's schema version: which Alembic revision of ``nas.store.migrations`` its ``nas_*``
tables are at, and the upgrade to this code's newest (the head).

A writer (``SearchStore(url)``, ``nas db upgrade``) migrates on open, in one transaction that
holds the database's write lock (SQLite ``BEGIN IMMEDIATE``, a PostgreSQL advisory lock), so two
processes opening an old store at once migrate it once. A reader never writes: it is told the
store is outdated (``nas db upgrade``) or newer than this code (upgrade nas).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, func, inspect, select

from nas.errors import NasError
from nas.store.engine import command_url

VERSION_TABLE = "nas_schema_version"  # Optuna's revision is in alembic_version
MIGRATIONS = Path(__file__).resolve().with_name("migrations")
STORE_TABLE = "nas_searches"  # present in every store, whatever its revision
PG_MIGRATION_LOCK = 0x6E61735F736368  # an advisory-lock key of our own ("nas_sch")


class StoreOutdated(NasError):
    """A reader opened a store whose schema is older than this code's: ``nas db upgrade`` it."""


class StoreTooNew(NasError):
    """The store's schema revision is unknown here: a newer nas wrote it."""


@dataclass(frozen=True)
class SchemaState:
    """Where a store's schema stands against this code's head revision.

    ``status``: ``current``; ``outdated`` (an older revision, or ``revision`` None: written
    before the schema had a version); ``newer`` (a revision this code does not know); ``empty``
    (no ``nas_*`` tables yet).
    """

    revision: str | None
    head: str
    status: str

    def describe(self) -> str:
        if self.status == "empty":
            return "no nas tables yet"
        if self.status == "current":
            return f"schema {self.revision}, current"
        if self.revision is None:
            return (
                f"schema unversioned (written before nas versioned it), this nas's is {self.head}"
            )
        relation = "older" if self.status == "outdated" else "newer"
        return f"schema {self.revision}, {relation} than this nas's {self.head}"


def _config() -> Config:
    """Alembic's configuration, built here (no alembic.ini): where the migrations are."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    return config


@lru_cache(maxsize=1)
def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def head() -> str:
    """This code's newest revision: what a writer migrates a store to."""
    return _script().get_current_head()


def schema_state(engine: Engine) -> SchemaState:
    """The store's revision against this code's, read without writing anything."""
    with engine.connect() as conn:
        return _state(conn)


def _state(conn: Connection) -> SchemaState:
    context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    revision = context.get_current_revision()
    newest = head()
    if revision is None:
        status = "outdated" if inspect(conn).has_table(STORE_TABLE) else "empty"
    elif revision == newest:
        status = "current"
    elif revision in {s.revision for s in _script().walk_revisions()}:
        status = "outdated"
    else:
        status = "newer"
    return SchemaState(revision, newest, status)


def upgrade_command(target: str) -> str:
    """The command that brings the store ``target`` (a run folder, file or URL) to this code's
    schema, ready to copy (a URL's password left out)."""
    return f"nas db upgrade {shlex.quote(command_url(target)[0])}"


def check_readable(state: SchemaState, url: str, allow_outdated: bool = False) -> None:
    """Raise ``StoreTooNew`` for a store of a newer nas, and ``StoreOutdated`` for an older
    one unless ``allow_outdated`` (a reader that shows what it can)."""
    if state.status == "newer":
        raise _too_new(state, url)
    if state.status == "outdated" and not allow_outdated:
        raise StoreOutdated(
            f"storage: {command_url(url)[0]}: {state.describe()}; run: {upgrade_command(url)}"
        )


def _too_new(state: SchemaState, url: str) -> StoreTooNew:
    return StoreTooNew(
        f"storage: {command_url(url)[0]}: {state.describe()} (a newer nas wrote it); "
        "upgrade nas to read or write it"
    )


def upgrade(engine: Engine, url: str, target: str = "head") -> tuple[SchemaState, SchemaState]:
    """Migrate the store to ``target`` (a revision, by default the head): creates the tables of
    an empty database. Returns the schema before and after; a store of a newer nas is refused
    (``StoreTooNew``), never touched."""
    before = schema_state(engine)
    if before.status == "newer":
        raise _too_new(before, url)
    if before.revision == (head() if target == "head" else target):
        return before, before
    with engine.connect() as conn:
        lock_for_migration(conn)
        locked = _state(conn)  # another process may have migrated while we waited
        if locked.status == "newer":
            raise _too_new(locked, url)
        config = _config()
        config.attributes["connection"] = conn  # env.py migrates it
        command.upgrade(config, target)
        conn.commit()
    return before, schema_state(engine)


def lock_for_migration(conn: Connection) -> None:
    """Begin the migration's transaction holding the database's write lock: a second writer
    waits here (SQLite's busy timeout, PostgreSQL's lock queue) and then finds it done."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")  # pysqlite itself would BEGIN only before DML
    elif conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(PG_MIGRATION_LOCK)))
