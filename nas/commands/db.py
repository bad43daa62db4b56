"""``nas db``: the store's schema version (``status``) and its migration to this nas (``upgrade``).

A search migrates its store on open; ``nas db upgrade`` is for a store only read since a nas
update (the dashboard and ``nas export`` never write, so they ask for it).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nas.store.schema import SchemaState

TARGET_HELP = "run folder (runs/NAME), search.db file or storage URL"


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "db",
        help="the search store's schema version: status, upgrade",
        description="Show or migrate the schema version of a search store's nas_* tables.",
    )
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    status = actions.add_parser(
        "status",
        help="the store's schema revision and this nas's",
        description="Print the store's schema revision, this nas's newest, and what to do.",
    )
    status.add_argument("target", help=TARGET_HELP)
    status.set_defaults(func=_status)
    upgrade = actions.add_parser(
        "upgrade",
        help="migrate the store to this nas's schema",
        description="Migrate the store's nas_* tables to this nas's schema, in one "
        "transaction; safe beside a running search. Optuna's tables are left alone.",
    )
    upgrade.add_argument("target", help=TARGET_HELP)
    upgrade.set_defaults(func=_upgrade)


def _status(args: argparse.Namespace) -> int:
    from nas.store import resolve_storage
    from nas.store.engine import mask_url
    from nas.store.schema import upgrade_command

    url = resolve_storage(args.target)
    state = _read_state(url)
    advice = {
        "outdated": f"; run: {upgrade_command(args.target)}",
        "newer": " (a newer nas wrote it); upgrade nas to use it",
        "empty": "; a search creates them",
    }
    print(f"{mask_url(url)}: {state.describe()}{advice.get(state.status, '')}")
    return 0


def _upgrade(args: argparse.Namespace) -> int:
    from nas.store import make_engine, resolve_storage
    from nas.store.engine import StorageError, mask_url
    from nas.store.schema import upgrade

    url = resolve_storage(args.target)
    if _read_state(url).status == "empty":  # read first: a writer would create a missing file
        raise StorageError(
            f"storage: {mask_url(url)} holds no nas store, nothing to upgrade; a search creates one"
        )
    engine = make_engine(url)
    try:
        before, after = upgrade(engine, url)
    finally:
        engine.dispose()
    if before == after:
        print(f"{mask_url(url)}: {after.describe()}, nothing to do")
    else:
        found = before.revision or "unversioned"
        print(f"{mask_url(url)}: upgraded from schema {found} to {after.revision}")
    return 0


def _read_state(url: str) -> SchemaState:
    """The store's schema state, read through a read-only engine (which creates nothing)."""
    from nas.store import make_engine
    from nas.store.schema import schema_state

    engine = make_engine(url, read_only=True)
    try:
        return schema_state(engine)
    finally:
        engine.dispose()
