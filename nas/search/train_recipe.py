"""The full-training recipe an export writes, fitted to the data the search ran on.

The trainer's defaults are the ImageNet recipe of the MetaFormer papers (300 epochs, Mixup 0.8
and CutMix 1.0, label smoothing 0.1, lr 1e-3): right for ImageNet-like data, wrong for the
2-class 32 px task a laptop search proxies on, where Mixup and CutMix erase the small markers
the label depends on and the epoch count should follow the data's size, not ImageNet's.

ImageNet-like (images of 128 px or more, and 100,000 training images or an unknown count) keeps
the ImageNet recipe, at the searched networks' image size for an ImageFolder. Smaller data gets
the proxy's optimiser (lr, weight decay, label smoothing), no Mixup/CutMix below 128 px, and an
epoch count scaled to the data: about a million training-image visits (8,000 images: 125
epochs), at least three times the proxy's epochs and at most the ImageNet recipe's 300.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

IMAGENET_LIKE_SIDE = 128
IMAGENET_LIKE_IMAGES = 100_000
IMAGE_VISITS = 1_000_000
MAX_EPOCHS = 300
KNOWN_SIZES = {"cifar10": (50_000, 32), "cifar100": (50_000, 32)}


@dataclass(frozen=True)
class FittedRecipe:
    """Training-config overrides and the one line that says which recipe and why."""

    overrides: dict[str, Any]
    note: str


def fitted_recipe(search_config: dict[str, Any]) -> FittedRecipe:
    """The recipe for a search's stored configuration (``nas_searches.config``)."""
    from nas.data.config import DataConfig
    from nas.training.proxy_config import ProxyConfig

    proxy_raw = dict(search_config.get("proxy") or {})
    data_raw = dict(proxy_raw.pop("data", None) or {})
    defaults = ProxyConfig()
    proxy = {key: proxy_raw.get(key, getattr(defaults, key)) for key in _PROXY_KEYS}
    data = DataConfig.from_dict(data_raw) if data_raw else defaults.data
    images, side = training_size(data)
    overrides: dict[str, Any] = {"data": data_raw} if data_raw else {}
    if (side is None or side >= IMAGENET_LIKE_SIDE) and (
        images is None or images >= IMAGENET_LIKE_IMAGES
    ):
        note = f"the ImageNet recipe (300 epochs, Mixup/CutMix) for {_describe(images, side)}"
        full_side = (search_config.get("space") or {}).get("image_size")
        if data.name == "imagefolder" and full_side and full_side != side:
            overrides["data"] = {**data_raw, "resolution": full_side}
            note += f", trained at the searched networks' {full_side} px"
        return FittedRecipe(overrides, note)
    epochs = round(IMAGE_VISITS / images) if images else MAX_EPOCHS
    epochs = min(max(epochs, 3 * int(proxy["epochs"])), MAX_EPOCHS)
    overrides.update(
        epochs=epochs,
        device=proxy["device"],
        amp=proxy["amp"],
        optim={
            "lr": proxy["lr"],
            "weight_decay": proxy["weight_decay"],
            "warmup_epochs": round(max(float(proxy["warmup_epochs"]), 0.05 * epochs), 2),
            "clip_grad": proxy["clip_grad"],
        },
        mixup={"label_smoothing": proxy["label_smoothing"]},
    )
    mixing = "Mixup/CutMix"
    if side is not None and side < IMAGENET_LIKE_SIDE:
        overrides["mixup"].update(mixup_alpha=0.0, cutmix_alpha=0.0)
        mixing = f"no Mixup/CutMix (below {IMAGENET_LIKE_SIDE} px)"
    return FittedRecipe(
        overrides,
        f"fitted to {_describe(images, side)}: {epochs} epochs, the proxy's optimiser, {mixing}",
    )


_PROXY_KEYS = (
    "epochs",
    "lr",
    "weight_decay",
    "warmup_epochs",
    "label_smoothing",
    "clip_grad",
    "device",
    "amp",
)


def training_size(data: Any) -> tuple[int | None, int | None]:
    """(training images, image side) of a data config, each ``None`` where it is not known
    without reading the data (an FFCV file, a missing ImageFolder, one at its own size). An
    ImageFolder's images are counted the way its loader lists them, without decoding any."""
    from nas.data import digits
    from nas.data.readers import ImageFolderSource

    side = data.resolution
    if data.name == "default":
        return data.num_train, side or 32
    if data.name == "digits":
        per_class = data.train_per_class
        images = digits.NUM_IMAGES - digits.NUM_VAL if per_class is None else 10 * per_class
        return images, side or digits.DEFAULT_RESOLUTION
    if data.name in KNOWN_SIZES:
        images, own = KNOWN_SIZES[data.name]
        return images, side or own
    if data.name != "imagefolder" or data.path is None:
        return None, side  # an FFCV file
    root = Path(data.path)
    train = root / "train" if (root / "train").is_dir() else root  # as the loader picks it
    try:
        return len(ImageFolderSource(train)), side
    except (FileNotFoundError, ValueError):  # not there, or no images: read at training time
        return None, side


def class_count(data: Any) -> int | None:
    """Classes of a data config, read without loading its images (the way its loaders number
    them); ``None`` where the files are not there to ask."""
    from nas.data.digits import CLASS_NAMES as DIGITS
    from nas.data.readers import CIFAR_LAYOUTS
    from nas.data.synthetic import generate

    if data.name == "default":
        return len(generate(2, data.seed, data.generated_task()).class_names)
    if data.name == "digits":
        return len(DIGITS)
    if data.name in CIFAR_LAYOUTS:
        return CIFAR_LAYOUTS[data.name].num_classes
    root = Path(data.path) if data.path else None
    if root is None or not root.exists():
        return None
    if data.name == "imagefolder":
        train = root / "train" if (root / "train").is_dir() else root  # as the loader picks it
        return sum(p.is_dir() for p in train.iterdir()) or None
    from nas.data.ffcv_io import read_info

    return read_info(root).num_classes


def _describe(images: int | None, side: int | None) -> str:
    count = f"{images:,} training images" if images is not None else "an unknown image count"
    return f"{count} at {side} px" if side is not None else f"{count} at their own size"
