"""Database engines for the store: SQLite (WAL, one writer, read-only readers) or PostgreSQL.

SQLite allows one writer at a time; the search's driver process is that writer, and the
dashboard opens the file read-only so an open dashboard can never make a search's write fail.
"""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

SQLITE_BUSY_TIMEOUT_S = 60


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


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def make_engine(url: str, read_only: bool = False) -> Engine:
    """An engine for ``url``; SQLite gets WAL and a busy timeout, readers get read-only access."""
    parsed = make_url(url)
    if is_sqlite(url):
        database = parsed.database or ""
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
    if read_only and parsed.get_backend_name() == "postgresql":
        return create_engine(
            url,
            pool_pre_ping=True,
            connect_args={"options": "-c default_transaction_read_only=on"},
        )
    return create_engine(url, pool_pre_ping=True)
