"""The typed data config: which dataset, how it is loaded and augmented, validated with errors
that name the key. Torch-free, so a search config is checked without importing torch;
:mod:`nas.data.loaders` turns it into loaders."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from nas.arch.spec import MAX_IMAGE_SIZE
from nas.data.digits import MIN_RESOLUTION as DIGITS_MIN_RESOLUTION
from nas.data.digits import check_train_per_class
from nas.data.synthetic import DEFAULT_TASK, TaskParams, task_params
from nas.errors import NasError

DATASETS = ("default", "cifar10", "cifar100", "digits", "imagefolder", "beton")
# Datasets that need no ``path``: generated, or shipped inside a package.
PATHLESS = ("default", "digits")
LOADERS = ("tensor", "ffcv", "torch")
# Standard statistics: every loader of a dataset must normalise alike, even where computing them
# would mean reading the whole dataset (FFCV conversion of a large ImageFolder tree).


MAX_BATCH_SIZE = 65_536
MAX_IMAGES = 10_000_000
MAX_WORKERS = 256
"""Upper bounds of a loader's batch, of a generated dataset's images (``num_train``,
``num_val``) and of loader worker processes: a typo fails here instead of exhausting memory."""


class DataError(NasError):
    """A data config or dataset that cannot be read as asked; the message starts with the key."""


@dataclass
class DataConfig:
    """Which data, how it is loaded and augmented.

    ``path``: CIFAR folder, ImageFolder root (with ``train/`` and ``val/``) or training
    ``.beton``; ``val_path``: validation folder or ``.beton`` (ImageFolder default
    ``<path>/val``); ``default`` and ``digits`` need no path. ``resolution``: side of the
    generated images, or of the upsampled digits (``None``: 32); for ImageFolder the side
    images are resized and centre-cropped to (``None``: their own size); elsewhere it must be
    ``None`` or the data's own size. ``train_per_class``: for ``digits`` only, how many training
    images of each class to keep, drawn with ``seed`` (``None``: all 1,437; validation is always
    the same 360; see :mod:`nas.data.digits`). ``num_train``, ``num_val``: the generated
    dataset's size; ``task``: which generated task (``nearest``, the default, or ``pathfinder``);
    ``task_params``: overrides of its knobs, i.e. its difficulty (``num_distractors``,
    ``min_dist``, ``min_ratio``, ...; see :mod:`nas.data.synthetic`). ``crop_padding``: ``None``
    means an eighth of the side (the generated tasks keep that margin free, so crops never
    change a label). ``mean``/``std``: ``None`` means the dataset's known or computed
    statistics. ``num_workers``: CPU workers of the torch loader, decoding threads of FFCV.
    """

    name: str = "default"
    path: str | None = None
    val_path: str | None = None
    resolution: int | None = None
    loader: str = "tensor"
    batch_size: int = 128
    eval_batch_size: int | None = None
    num_train: int = 10_000
    num_val: int = 2_000
    train_per_class: int | None = None
    task: str = DEFAULT_TASK
    task_params: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    cache_dir: str | None = None
    augment: bool = True
    crop_padding: int | None = None
    hflip: bool = True
    drop_last: bool = True
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    num_workers: int = 2

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DataConfig:
        """A config from a plain mapping (YAML, CLI); unknown keys are an error, not ignored."""
        known = sorted(f.name for f in dataclasses.fields(cls))
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise DataError(f"data {unknown[0]}: unknown field; expected one of {known}")
        values = dict(data)
        for key in ("mean", "std"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        cfg = cls(**values)
        cfg.validate()
        return cfg

    def generated_task(self) -> TaskParams:
        """The generated task's parameters at this resolution (the ``default`` dataset's)."""
        return task_params(self.task, self.resolution or 32, self.task_params)

    def validate(self) -> None:
        """Raise :class:`DataError` naming the first bad field, what was expected and found."""

        def bad(name: str, expected: str) -> DataError:
            return DataError(f"data {name}: expected {expected}, found {getattr(self, name)!r}")

        if self.name not in DATASETS:
            raise bad("name", f"one of {DATASETS}")
        if self.loader not in LOADERS:
            raise bad("loader", f"one of {LOADERS}")
        if self.name not in PATHLESS and not self.path:
            raise bad("path", f"the dataset's location for name {self.name!r}")
        if self.name == "beton" and not self.val_path:
            raise bad("val_path", "the validation .beton for name 'beton'")
        ints = {
            "batch_size": (self.batch_size, 1, MAX_BATCH_SIZE),
            "num_train": (self.num_train, 2, MAX_IMAGES),
            "num_val": (self.num_val, 2, MAX_IMAGES),
            "seed": (self.seed, 0, None),
            "num_workers": (self.num_workers, 0, MAX_WORKERS),
        }
        for name, (value, low, high) in ints.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise bad(name, f"an integer >= {low}")
            if high is not None and value > high:
                raise bad(name, f"an integer <= {high:,}")
        optional = {
            "eval_batch_size": (1, MAX_BATCH_SIZE),
            "resolution": (1, MAX_IMAGE_SIZE),
            "crop_padding": (0, MAX_IMAGE_SIZE),
        }
        for name, (low, high) in optional.items():
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or not low <= value <= high):
                raise bad(name, f"None or an integer in [{low}, {high:,}]")
        if self.name == "default" and self.resolution is not None and self.resolution < 16:
            raise bad("resolution", "None or an integer >= 16 for the default dataset")
        if (
            self.name == "digits"
            and self.resolution is not None
            and self.resolution < DIGITS_MIN_RESOLUTION
        ):
            raise bad(
                "resolution", f"None or an integer >= {DIGITS_MIN_RESOLUTION} for name 'digits'"
            )
        if self.name != "digits" and self.train_per_class is not None:
            raise bad("train_per_class", f"None for name {self.name!r} (only 'digits' takes it)")
        if self.name == "digits" and self.train_per_class is not None:
            try:
                check_train_per_class(self.train_per_class)
            except ValueError as err:
                raise DataError(f"data {err}") from None
            num_train = 10 * self.train_per_class
            if self.drop_last and num_train < self.batch_size:
                raise bad(
                    "batch_size",
                    f"at most the {num_train} training images of train_per_class "
                    f"{self.train_per_class} when drop_last is true (else an epoch has no batch)",
                )
        if not isinstance(self.task_params, dict):
            raise bad("task_params", f"a mapping of the {self.task!r} task's knobs")
        try:
            self.generated_task().validate()
        except ValueError as err:
            raise DataError(f"data {err}") from None
        if self.mean is not None and len(self.mean) != 3:
            raise bad("mean", "None or 3 numbers")
        if self.std is not None and (len(self.std) != 3 or min(self.std) <= 0):
            raise bad("std", "None or 3 positive numbers")
