"""Database engines for the store: SQLite (WAL, one writer, read-only readers) or PostgreSQL.

SQLite allows one writer at a time; the search's driver process is that writer, and the
dashboard opens the file read-only so an open dashboard can never make a search's write fail.
"""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

from nas.errors import NasError

SQLITE_BUSY_TIMEOUT_S = 60
CONNECT_TIMEOUT_S = 10
SQLITE_HEADER = b"SQLite format 3\x00"
URL_FORMS = "sqlite:///PATH/search.db or postgresql://USER[:PASSWORD]@HOST:PORT/DATABASE"


class StorageError(NasError):
    """A storage URL the store cannot open; the message names ``storage``, the masked URL and
    the fix."""


def resolve_storage(target: str | Path) -> str:
    """A storage URL from a URL, a run folder (holding ``search.db``) or a database file."""
    text = str(target)
    if "://" in text:
        return text
    path = Path(text)
    if path.is_dir():
        db = path / "search.db"
        if not db.exists():
            candidates = sorted(path.glob("*/search.db"))
            if len(candidates) == 1:
                db = candidates[0]
            elif candidates:
                names = [str(c.parent) for c in candidates]
                raise FileNotFoundError(f"{path} holds several runs, pick one of {names}")
            else:
                raise FileNotFoundError(f"no search.db in run folder {path}")
        path = db
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is neither a storage URL, a run folder nor a database file"
        )
    return f"sqlite:///{path.resolve()}"


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``***``: the form to show, log or store."""
    if "://" not in url:
        return url
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):  # an unparsable URL: mask whatever sits between ':' and '@'
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def command_url(url: str) -> tuple[str, bool]:
    """``url`` as it goes into a command shown for copying: without its password (PostgreSQL's
    driver then reads it from ``PGPASSWORD`` or ``~/.pgpass``), and whether one was dropped."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return mask_url(url), False
    if parsed.password is None:
        return url, False
    bare = URL.create(
        parsed.drivername, parsed.username, None, parsed.host, parsed.port, parsed.database,
        parsed.query,
    )  # fmt: skip
    return bare.render_as_string(hide_password=False), True


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _parse_storage(url: str) -> URL:
    """``url`` parsed, or a ``StorageError`` if it is not a URL of a dialect SQLAlchemy knows."""
    try:
        parsed = make_url(url)
        parsed.get_dialect()
    except NoSuchModuleError:
        raise StorageError(
            f"storage: unknown database kind {url.split(':', 1)[0]!r} in {mask_url(url)}; "
            f"expected {URL_FORMS}"
        ) from None
    except ArgumentError:
        raise StorageError(
            f"storage: {mask_url(url)!r} is not a database URL; expected {URL_FORMS}"
        ) from None
    return parsed


def _check_sqlite_file(url: str, database: str, read_only: bool) -> None:
    """Fail, creating nothing, if the SQLite file cannot be the store: its folder is missing,
    it is a folder, it is not an SQLite database, or (to read) it does not exist."""
    if database in ("", ":memory:"):
        return
    path = Path(database)
    where = f"storage: {mask_url(url)}"
    if not path.parent.is_dir():
        raise StorageError(
            f"{where}: folder {path.parent} does not exist; create it or give a path in an "
            "existing folder"
        )
    if path.is_dir():
        raise StorageError(f"{where}: {path} is a folder; expected a database file path")
    if not path.exists():
        if read_only:
            raise StorageError(f"{where}: {path} does not exist; give the search.db of a run")
        return
    with path.open("rb") as file:
        head = file.read(len(SQLITE_HEADER))
    if head and head != SQLITE_HEADER:
        raise StorageError(
            f"{where}: {path} is not an SQLite database; give a search.db that nas wrote or "
            "a new file name"
        )


def _checked_server(engine: Engine, url: str) -> Engine:
    """``engine`` after one connection, or a ``StorageError`` saying why the server refused."""
    try:
        with engine.connect():
            pass
    except OperationalError as err:
        engine.dispose()
        reason = str(err.orig or err).strip().splitlines()[0]
        database = make_url(url).database
        if "does not exist" in reason and database and f'"{database}"' in reason:
            fix = f"create it (createdb {database}) or fix the database name in the URL"
        else:
            fix = "start the server or fix host, port and credentials in the URL"
        raise StorageError(f"storage: cannot open {mask_url(url)} ({reason}); {fix}") from None
    return engine


def make_engine(url: str, read_only: bool = False) -> Engine:
    """An engine for ``url``; SQLite gets WAL and a busy timeout, readers get read-only access.
    A URL that cannot be opened fails here, before anything is written, as a ``StorageError``."""
    parsed = _parse_storage(url)
    if is_sqlite(url):
        database = parsed.database or ""
        _check_sqlite_file(url, database, read_only)
        if read_only:
            uri = f"file:{Path(database).resolve()}?mode=ro"
            engine = create_engine(
                "sqlite:///" + uri + "&uri=true",
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
            )
        else:
            engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record) -> None:
            cursor = dbapi_connection.cursor()
            if not read_only:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
            cursor.close()

        return engine
    connect_args: dict[str, object] = {}
    if parsed.get_backend_name() == "postgresql":
        connect_args["connect_timeout"] = CONNECT_TIMEOUT_S
        if read_only:
            connect_args["options"] = "-c default_transaction_read_only=on"
    try:
        engine = create_engine(url, pool_pre_ping=True, connect_args=connect_args)
    except ImportError as err:
        raise StorageError(
            f"storage: the driver of {mask_url(url)} is not installed ({err}); "
            "for PostgreSQL: pip install 'nas-mixers[postgres]'"
        ) from None
    return _checked_server(engine, url)


def check_storage(url: str) -> None:
    """Raise ``StorageError`` if ``url`` cannot be opened for writing; writes nothing. Called
    before Ray starts, so a wrong URL costs a second, not a cluster start."""
    make_engine(url).dispose()
