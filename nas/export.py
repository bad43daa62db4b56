"""Export of a chosen architecture: the folder that full training and timm both read.

``<dir>/arch.yaml`` is the spec (``timm.create_model("nas_metaformer", arch="<dir>/arch.yaml")``
builds it, with a head for the training data's classes: the spec's ``num_classes``, set from
``train.yaml``'s data where the spec has none); ``<dir>/train.yaml`` is a complete training config
for ``trainers/train.py`` that names ``arch.yaml`` relatively, so the folder can be moved. The
whole config is written out, not just the overrides, so the run stays reproducible when the
trainer's defaults change.
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from nas.arch import resolve_spec
from nas.arch.spec import ArchSpec

ARCH_FILE = "arch.yaml"
TRAIN_FILE = "train.yaml"
# ``output_dir`` when set, else Hydra's own default; ``nas_or`` is registered by trainers.train
HYDRA_RUN_DIR = "${nas_or:${output_dir},outputs/${now:%Y-%m-%d}/${now:%H-%M-%S}}"


@dataclass(frozen=True)
class ExportPaths:
    """Where an export was written, and the shell command that fully trains it."""

    directory: Path
    arch: Path
    train_config: Path
    command: str


def write_export(
    spec: ArchSpec | str | dict,
    out_dir: str | Path,
    train_overrides: Mapping[str, Any] | None = None,
    recipe_note: str | None = None,
) -> ExportPaths:
    """Write ``arch.yaml`` and ``train.yaml`` into ``out_dir``.

    ``train_overrides`` sets training config keys, nested (``{"data": {"name": "cifar10"}}``)
    or dotted (``{"data.name": "cifar10", "epochs": 100}``); they are checked against the
    trainer's schema, so a misspelt key fails here, naming it, rather than at training time.
    ``model.arch`` is always the exported ``arch.yaml``; ``recipe_note`` (which recipe, and why)
    heads the file. Hydra's own files (``.hydra/``, the log) go into the run's ``output_dir``
    when one is set, so one folder holds a run.
    """
    from nas.data.config import DataConfig
    from nas.search.train_recipe import class_count
    from trainers.train import TrainConfig  # the schema lives with the app that reads it

    spec = resolve_spec(spec)
    config = OmegaConf.structured(TrainConfig)
    for key, value in (train_overrides or {}).items():
        try:
            OmegaConf.update(config, key, value, merge=True)
        except OmegaConfBaseException as err:
            first = str(err).splitlines()[0]
            raise ValueError(f"train_overrides.{key}: {first}") from None
    config.model.arch = ARCH_FILE
    body = OmegaConf.to_container(config)
    if spec.num_classes is None:
        spec = dataclasses.replace(
            spec, num_classes=class_count(DataConfig.from_dict(body["data"]))
        )

    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    arch_path = directory / ARCH_FILE
    spec.save(arch_path)
    train_path = directory / TRAIN_FILE
    command = f"nas train {shlex.quote(str(train_path.resolve()))}"
    header = (
        f"# Full training of {spec.name!r} (arch content hash {spec.content_hash()}).\n"
        f"#   {command}\n"
        "#   python -m trainers.train --config-path "
        f"{shlex.quote(str(directory.resolve()))} --config-name train\n"
        "# Relative model.arch paths are read next to this file.\n"
        + (f"# Recipe: {recipe_note}.\n" if recipe_note else "")
    )
    defaults = yaml.safe_dump({"defaults": ["train_schema", "_self_"]}, sort_keys=False)
    hydra = yaml.safe_dump({"hydra": {"run": {"dir": HYDRA_RUN_DIR}}}, sort_keys=False)
    train_path.write_text(header + defaults + yaml.safe_dump(body, sort_keys=False) + hydra)
    return ExportPaths(directory, arch_path, train_path, command)
