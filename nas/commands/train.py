"""``nas train <config.yaml> [overrides...]``: full training through the Hydra app.

It runs exactly what ``python -m trainers.train --config-path <dir> --config-name <name>``
runs (same output directory, logging and overrides), so an export's printed command and this
one are interchangeable.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nas.yaml_io import read_mapping


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="fully train an architecture from a training config (e.g. an export's train.yaml)",
        description="Run trainers/train.py (a Hydra app) on CONFIG. OVERRIDES are Hydra "
        "overrides, e.g. epochs=100 data.batch_size=256 hydra.run.dir=runs/x; resume a run "
        "by pointing hydra.run.dir (or output_dir=...) at its directory.",
    )
    p.add_argument("config", help="a training config YAML (defaults: [train_schema, _self_])")
    p.add_argument("overrides", nargs="*", help="Hydra overrides key=value")
    p.set_defaults(func=_train)


def _train(args: argparse.Namespace) -> int:
    config = Path(args.config)
    if config.suffix not in (".yaml", ".yml"):
        raise ValueError(f"config: expected a .yaml file, found {str(config)!r}")
    read_mapping(config, "training config")  # Hydra would report a bad file as a traceback
    from trainers.allowlist import check_hydra_command
    from trainers.train import main  # imports torch and timm: only when training

    hydra_args = [
        "--config-path",
        str(config.resolve().parent),
        "--config-name",
        config.stem,
        *args.overrides,
    ]
    check_hydra_command(hydra_args)  # before Hydra builds anything the file names
    argv = sys.argv
    sys.argv = ["nas train", *hydra_args]
    try:
        main()
    finally:
        sys.argv = argv
    return 0
