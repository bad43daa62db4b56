"""From a typed data config (:mod:`nas.data.config`) to ready loaders: what the proxy trainer
calls.

``build_loaders(DataConfig(...), device)`` resolves the dataset (the generated default, CIFAR,
scikit-learn's digits, an ImageFolder tree or ``.beton`` files), its normalisation statistics
and the loader kind, and returns train and validation loaders that all yield the same batch
format: float ``(B, 3, H, W)`` channels_last, normalised, on ``device``, with int64 labels.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from nas.data.arrays import ArrayDataset, DatasetSplits, channel_stats
from nas.data.augment import Augment
from nas.data.config import DataConfig, DataError
from nas.data.digits import digits_cache_key, load_digits_dataset
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
    cache_key,
    default_cache_dir,
    load_default_dataset,
)
from nas.data.tensor_loader import TensorLoader
from nas.data.torch_loader import TorchLoader

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
            cfg.num_train, cfg.num_val, cfg.seed, cfg.generated_task(), _cache_dir(cfg)
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
        stem = cache_key(cfg.num_train, cfg.num_val, cfg.seed, cfg.generated_task())
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
