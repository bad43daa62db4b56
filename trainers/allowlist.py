"""What a training config may instantiate: a ``train.yaml`` can come from anyone (an export
shared by a colleague, a download), and Hydra builds every ``_target_`` it finds (callbacks,
launchers, sweepers) and hands ``hydra.job_logging`` to :func:`logging.config.dictConfig`, which
calls any ``class``/``()`` factory. A crafted file would run code at ``nas train``.

The composed config (file, defaults, overrides and Hydra's own section) is checked before the
Hydra app starts: only Hydra's own launcher and sweeper and the standard logging handlers may be
named, literally. The project's trainer instantiates nothing from the config itself.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from nas.errors import NasError

ALLOWED_TARGETS = frozenset(
    {
        "hydra._internal.core_plugins.basic_launcher.BasicLauncher",
        "hydra._internal.core_plugins.basic_sweeper.BasicSweeper",
        "logging.StreamHandler",
        "logging.FileHandler",
        "logging.Formatter",
    }
)
# dictConfig's ``ext://`` values import whatever they name: only the standard streams.
ALLOWED_EXTERNALS = frozenset({"ext://sys.stdout", "ext://sys.stderr"})
LOGGING_SECTIONS = ("job_logging", "hydra_logging")


class UntrustedConfigError(NasError):
    """A training config that names something outside :data:`ALLOWED_TARGETS`."""


def check_instantiable(cfg: DictConfig, source: str) -> None:
    """Raise unless every ``_target_`` of ``cfg`` (and every factory of its logging sections)
    is allowed; ``source`` names the config in the message."""
    _walk(cfg, "", False, source)


def _walk(node: Any, path: str, logging: bool, source: str) -> None:
    # Nodes, not values: reading a value would resolve Hydra's ``${hydra:...}`` interpolations.
    if isinstance(node, DictConfig):
        children = [(key, f"{path}.{key}" if path else str(key)) for key in node.keys()]
    elif isinstance(node, ListConfig):
        children = [(i, f"{path}[{i}]") for i in range(len(node))]
    else:
        return
    for key, key_path in children:
        child = node._get_node(key)
        inside = logging or key_path in {f"hydra.{s}" for s in LOGGING_SECTIONS}
        raw = child._value() if not isinstance(child, DictConfig | ListConfig) else None
        if key == "_target_" or (inside and key in ("class", "()")):
            if OmegaConf.is_interpolation(node, key) or not isinstance(raw, str):
                raise UntrustedConfigError(
                    f"{source}: {key_path}: expected the literal name of an allowed component, "
                    f"found {raw!r}"
                )
            _check_value(raw, ALLOWED_TARGETS, key_path, source)
        elif inside and isinstance(raw, str) and raw.startswith("ext://"):
            _check_value(raw, ALLOWED_EXTERNALS, key_path, source)
        else:
            _walk(child, key_path, inside, source)


def _check_value(value: str, allowed: frozenset[str], key_path: str, source: str) -> None:
    if value not in allowed:
        raise UntrustedConfigError(
            f"{source}: {key_path}: {value} may not be instantiated from a training config; "
            f"allowed: {', '.join(sorted(allowed))}"
        )


def check_hydra_command(argv: list[str]) -> None:
    """Compose the config a ``trainers.train`` command line (``argv`` without the program)
    names, as Hydra will, and :func:`check_instantiable` it."""
    from hydra import compose, initialize, initialize_config_dir
    from hydra._internal.utils import get_args_parser
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    import trainers.train  # noqa: F401  (registers the train_schema the defaults list names)

    args = get_args_parser().parse_args(argv)
    # A sweep (``-m lr=1e-3,1e-4``) cannot be composed; its values are plain choices.
    overrides = [
        o.input_line
        for o in OverridesParser.create().parse_overrides(args.overrides)
        if not o.is_sweep_override()
    ]
    name = args.config_name or "train_schema"
    source = name if args.config_path is None else str(Path(args.config_path) / f"{name}.yaml")
    GlobalHydra.instance().clear()
    try:
        if args.config_path is None:
            context = initialize(version_base="1.3", config_path=None)
        else:
            directory = Path(args.config_path)
            if not directory.is_absolute():  # Hydra reads it beside the app
                directory = Path(sys.modules["trainers.train"].__file__).parent / directory
            context = initialize_config_dir(str(directory.resolve()), version_base="1.3")
        with context:
            cfg = compose(name, overrides, return_hydra_config=True)
    except (HydraException, OmegaConfBaseException) as err:
        raise UntrustedConfigError(f"{source}: {str(err).splitlines()[0]}") from None
    finally:
        GlobalHydra.instance().clear()
    check_instantiable(cfg, source)
