"""One entry point from a typed data config to ready loaders: what the proxy trainer calls.

``build_loaders(DataConfig(...), device)`` resolves the dataset (the generated default, CIFAR,
scikit-learn's digits, an ImageFolder tree or ``.beton`` files), its normalisation statistics
and the loader kind, and returns train and validation loaders that all yield the same batch
format: float ``(B, 3, H, W)`` channels_last, normalised, on ``device``, with int64 labels.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from nas.data.arrays import ArrayDataset, DatasetSplits, channel_stats
from nas.data.augment import Augment
from nas.data.digits import MIN_RESOLUTION as DIGITS_MIN_RESOLUTION
from nas.data.digits import check_train_per_class, digits_cache_key, load_digits_dataset
from nas.data.ffcv_io import (
    BetonInfo,
    FFCVLoader,
    beton_image_size,
    read_beton,
    read_info,
    write_beton,
)
from nas.data.readers import ImageFolderSource, read_cifar, read_image_folder
from nas.data.synthetic import (
    DEFAULT_TASK,
    TaskParams,
    cache_key,
    default_cache_dir,
    load_default_dataset,
    task_params,
)
from nas.data.tensor_loader import TensorLoader
from nas.data.torch_loader import TorchLoader
from nas.errors import NasError
from nas.models.spec import MAX_IMAGE_SIZE

DATASETS = ("default", "cifar10", "cifar100", "digits", "imagefolder", "beton")
# Datasets that need no ``path``: generated, or shipped inside a package.
PATHLESS = ("default", "digits")
LOADERS = ("tensor", "ffcv", "torch")
# Standard statistics: every loader of a dataset must normalise alike, even where computing them
# would mean reading the whole dataset (FFCV conversion of a large ImageFolder tree).
KNOWN_STATS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}


class Loader(Protocol):
    """What every loader offers the trainer."""

    batch_size: int

    def __len__(self) -> int: ...

    def __iter__(self) -> Any: ...

    def set_epoch(self, epoch: int) -> None: ...


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
            _task_params(self).validate()
        except ValueError as err:
            raise DataError(f"data {err}") from None
        if self.mean is not None and len(self.mean) != 3:
            raise bad("mean", "None or 3 numbers")
        if self.std is not None and (len(self.std) != 3 or min(self.std) <= 0):
            raise bad("std", "None or 3 positive numbers")


@dataclass
class DataBundle:
    """What the trainer needs: loaders plus the facts that size the model and undo normalisation."""

    train_loader: Loader
    val_loader: Loader
    num_classes: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    class_names: tuple[str, ...]


def build_loaders(cfg: DataConfig, device: torch.device | str) -> DataBundle:
    """Train and validation loaders for ``cfg`` on ``device`` (see the module docstring)."""
    cfg.validate()
    device = torch.device(device)
    if cfg.loader == "ffcv":
        train_path, val_path, stats = _betons(cfg)
        return _ffcv_bundle(cfg, device, train_path, val_path, stats)
    splits, stats = _arrays(cfg)
    train, val = splits.train, splits.val
    side = _square_side(cfg, train)
    mean, std = _pick_stats(cfg, stats)
    loader_cls: type[TensorLoader] | type[TorchLoader] = (
        TensorLoader if cfg.loader == "tensor" else TorchLoader
    )
    extra = {} if cfg.loader == "tensor" else {"num_workers": cfg.num_workers}
    common = {"device": device, "mean": mean, "std": std, "seed": cfg.seed, **extra}
    train_loader = loader_cls(
        train.images,
        train.labels,
        batch_size=cfg.batch_size,
        train=True,
        augment=_augment(cfg, side),
        drop_last=cfg.drop_last,
        **common,
    )
    val_loader = loader_cls(
        val.images, val.labels, batch_size=cfg.eval_batch_size or cfg.batch_size, **common
    )
    return DataBundle(
        train_loader, val_loader, train.num_classes, side, mean, std, train.class_names
    )


def load_arrays(cfg: DataConfig) -> DatasetSplits:
    """The dataset of ``cfg`` as in-memory uint8 arrays (what the tensor and torch loaders use)."""
    cfg.validate()
    return _arrays(cfg)[0]


Stats = tuple[tuple[float, ...], tuple[float, ...]]


def _arrays(cfg: DataConfig) -> tuple[DatasetSplits, Stats | None]:
    """The splits, and the statistics to normalise with unless the config overrides them."""
    if cfg.name == "default":
        splits, _ = load_default_dataset(
            cfg.num_train, cfg.num_val, cfg.seed, _task_params(cfg), _cache_dir(cfg)
        )
        return splits, channel_stats(splits.train.images)
    if cfg.name in ("cifar10", "cifar100"):
        assert cfg.path is not None
        splits = DatasetSplits(
            read_cifar(cfg.path, cfg.name, "train"), read_cifar(cfg.path, cfg.name, "test")
        )
        return splits, KNOWN_STATS[cfg.name]
    if cfg.name == "digits":
        return load_digits_dataset(cfg.resolution, cfg.train_per_class, cfg.seed)
    if cfg.name == "imagefolder":
        train_dir, val_dir = _image_folder_dirs(cfg)
        splits = DatasetSplits(
            read_image_folder(train_dir, cfg.resolution), read_image_folder(val_dir, cfg.resolution)
        )
        return splits, KNOWN_STATS["imagenet"]
    assert cfg.path is not None and cfg.val_path is not None
    info = read_info(cfg.path)
    splits = DatasetSplits(
        read_beton(cfg.path, cfg.num_workers), read_beton(cfg.val_path, cfg.num_workers)
    )
    return splits, _info_stats(info)


def _betons(cfg: DataConfig) -> tuple[Path, Path, Stats | None]:
    """Training and validation ``.beton`` files for ``cfg``, converting into the cache if the
    data is not already in that format (once: later calls find the files)."""
    if cfg.name == "beton":
        assert cfg.path is not None and cfg.val_path is not None
        return Path(cfg.path), Path(cfg.val_path), _info_stats(read_info(cfg.path))
    cache = _cache_dir(cfg)
    if cfg.name == "imagefolder":
        dirs = _image_folder_dirs(cfg)
        stem = _path_key(cfg.name, *dirs, cfg.resolution)
        paths = (cache / f"{stem}-train.beton", cache / f"{stem}-val.beton")
        for directory, path in zip(dirs, paths, strict=True):
            if not path.exists():
                source = ImageFolderSource(directory, cfg.resolution)
                write_beton(
                    source, path, class_names=source.class_names, num_workers=cfg.num_workers
                )
        return paths[0], paths[1], KNOWN_STATS["imagenet"]
    if cfg.name == "default":
        stem = cache_key(cfg.num_train, cfg.num_val, cfg.seed, _task_params(cfg))
    elif cfg.name == "digits":
        stem = digits_cache_key(cfg.resolution, cfg.train_per_class, cfg.seed)
    else:
        stem = _path_key(cfg.name, cfg.path)
    paths = (cache / f"{stem}-train.beton", cache / f"{stem}-val.beton")
    if not all(p.exists() for p in paths):
        splits, stats = _arrays(cfg)
        for split, path in zip((splits.train, splits.val), paths, strict=True):
            mean, std = stats if stats else (None, None)
            write_beton(
                split,
                path,
                class_names=split.class_names,
                mean=mean,
                std=std,
                num_workers=cfg.num_workers,
            )
    return paths[0], paths[1], _info_stats(read_info(paths[0]))


def _ffcv_bundle(
    cfg: DataConfig, device: torch.device, train_path: Path, val_path: Path, stats: Stats | None
) -> DataBundle:
    info = read_info(train_path)
    height, width = beton_image_size(train_path)
    if height != width:
        raise DataError(
            f"data path: expected square images in {train_path}, found {height}x{width}"
        )
    side = height
    _check_resolution(cfg, side)
    mean, std = _pick_stats(cfg, stats)
    common = {
        "device": device,
        "mean": mean,
        "std": std,
        "seed": cfg.seed,
        "num_workers": cfg.num_workers,
    }
    train_loader = FFCVLoader(
        train_path,
        batch_size=cfg.batch_size,
        train=True,
        augment=_augment(cfg, side),
        drop_last=cfg.drop_last,
        **common,
    )
    val_loader = FFCVLoader(val_path, batch_size=cfg.eval_batch_size or cfg.batch_size, **common)
    return DataBundle(train_loader, val_loader, info.num_classes, side, mean, std, info.class_names)


def _task_params(cfg: DataConfig) -> TaskParams:
    return task_params(cfg.task, cfg.resolution or 32, cfg.task_params)


def _cache_dir(cfg: DataConfig) -> Path:
    return Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir()


def _image_folder_dirs(cfg: DataConfig) -> tuple[Path, Path]:
    assert cfg.path is not None
    root = Path(cfg.path)
    train = root / "train" if (root / "train").is_dir() else root
    val = Path(cfg.val_path) if cfg.val_path else root / "val"
    if not val.is_dir():
        raise DataError(f"data val_path: expected a validation image folder, found {str(val)!r}")
    return train, val


def _path_key(name: str, *parts: Any) -> str:
    """Cache stem for data converted from files: dataset name plus a hash of where it came from."""
    text = "|".join(str(Path(p).resolve()) if isinstance(p, (str, Path)) else str(p) for p in parts)
    return f"{name}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def _info_stats(info: BetonInfo) -> Stats | None:
    return (info.mean, info.std) if info.mean and info.std else None


def _pick_stats(cfg: DataConfig, stats: Stats | None) -> Stats:
    """Config statistics first, then the dataset's, then ImageNet's (for foreign betons)."""
    mean = cfg.mean or (stats[0] if stats else KNOWN_STATS["imagenet"][0])
    std = cfg.std or (stats[1] if stats else KNOWN_STATS["imagenet"][1])
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)


def _square_side(cfg: DataConfig, data: ArrayDataset) -> int:
    height, width = data.image_size
    if height != width:
        raise DataError(
            f"data resolution: expected square images or a resolution to crop them to, "
            f"found {height}x{width} images"
        )
    _check_resolution(cfg, height)
    return height


def _check_resolution(cfg: DataConfig, side: int) -> None:
    if cfg.resolution is not None and cfg.resolution != side:
        raise DataError(
            f"data resolution: expected None or the data's own size {side} for name "
            f"{cfg.name!r}, found {cfg.resolution!r}"
        )


def _augment(cfg: DataConfig, side: int) -> Augment | None:
    if not cfg.augment:
        return None
    padding = side // 8 if cfg.crop_padding is None else cfg.crop_padding
    return Augment(crop_padding=padding, hflip=cfg.hflip)
