"""The ``nas`` command line. Library code never prints; this module reports progress and results."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence

from nas.commands import bench as bench_commands
from nas.commands import dashboard as dashboard_commands
from nas.commands import db as db_commands
from nas.commands import models as models_commands
from nas.commands import search as search_commands
from nas.commands import train as train_commands
from nas.commands import validate as validate_commands
from nas.data.commands import add_data_commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nas", description="Search token-mixer architectures for MetaFormer backbones."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    search_commands.add_commands(sub)
    dashboard_commands.add_commands(sub)
    db_commands.add_commands(sub)
    models_commands.add_commands(sub)
    train_commands.add_commands(sub)
    validate_commands.add_commands(sub)
    bench_commands.add_commands(sub)
    add_data_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # KEY=VALUE overrides may follow options (nas validate RUN --epochs 18 proxy.seed=3)
    if extra and hasattr(args, "overrides") and not any(e.startswith("-") for e in extra):
        args.overrides = [*args.overrides, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        signum = _received[-1] if _received else signal.SIGINT
        print(f"nas {args.command}: interrupted: resume with the same command", file=sys.stderr)
        return 128 + signum
    except (ValueError, KeyError, FileNotFoundError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"nas {args.command}: error: {message}", file=sys.stderr)
        return getattr(err, "exit_status", 2)


_received: list[int] = []


def _interrupt(signum: int, _frame: object) -> None:
    """SIGTERM ends a command the way Ctrl-C does: the search records the interrupt, and the
    exit status is 128 + the signal's number (remembered here: libraries on the way out may
    re-raise a fresh KeyboardInterrupt)."""
    _received.append(signum)
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
