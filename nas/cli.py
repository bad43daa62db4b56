"""The ``nas`` command line. Library code never prints; this module reports progress and results."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from nas.commands import dashboard as dashboard_commands
from nas.commands import models as models_commands
from nas.commands import search as search_commands
from nas.commands import train as train_commands
from nas.data.commands import add_data_commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nas", description="Search token-mixer architectures for MetaFormer backbones."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    search_commands.add_commands(sub)
    dashboard_commands.add_commands(sub)
    models_commands.add_commands(sub)
    train_commands.add_commands(sub)
    add_data_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, KeyError, FileNotFoundError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"nas {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
