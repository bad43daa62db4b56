"""scikit-learn's handwritten digits: a real-image transfer check that needs no download.

Why it exists: the generated default tasks are synthetic and CIFAR or ImageNet must be fetched,
but ``sklearn.datasets.load_digits`` ships 1,797 real 8x8 scans of handwritten digits (UCI
optdigits, intensities 0-16) inside scikit-learn, so a ranking can be checked on real images
offline. With all 1,437 training images small MetaFormers reach 99.2-99.7% validation top-1 in
30 epochs, which ranks nothing: the intended use is a low-data setting, ``train_per_class`` of
10-30.

What the loaders get:

* A fixed stratified split, 1,437 train / 360 validation (``train_test_split`` with
  ``stratify`` and ``random_state=SPLIT_RANDOM_STATE``, independent of the data seed), so every
  run validates on the same 360 images. Both splits keep the dataset's order.
* ``train_per_class=k`` keeps ``k`` training images of each class, drawn from the training split
  by a per-class permutation seeded by the data seed (so for one seed, ``k`` images are the first
  ``k`` of ``k + 1``); validation stays the full 360.
* Images scaled from 0-16 to 0-255, upsampled to ``resolution`` (default 32, the search's side)
  by bilinear interpolation (``torch.nn.functional.interpolate``, ``align_corners=False``),
  rounded to uint8 and repeated over 3 identical channels, the ``(N, 3, H, W)`` layout of
  :class:`~nas.data.arrays.ArrayDataset`.
* Normalisation statistics of the whole 1,437-image training split at that resolution, so every
  ``train_per_class`` and seed normalises alike.

Everything is computed in memory (well under a second); nothing is cached on disk except the
``.beton`` files of the FFCV loader, named by :func:`digits_cache_key`.
"""

from __future__ import annotations

import functools
import hashlib
import json

import numpy as np

from nas.data.arrays import ArrayDataset, DatasetSplits, channel_stats

NUM_IMAGES = 1_797
NUM_VAL = 360
SPLIT_RANDOM_STATE = 0
DEFAULT_RESOLUTION = 32
MIN_RESOLUTION = 8
CLASS_NAMES = tuple(str(d) for d in range(10))
# Bump when the arrays for the same key would change (split, interpolation, rounding).
FORMAT_VERSION = 1
_SUBSAMPLE_TAG = 0xD1_6175  # separates the per-class draw from other users of the data seed

Stats = tuple[tuple[float, ...], tuple[float, ...]]


@functools.lru_cache(maxsize=1)
def raw_digits() -> tuple[np.ndarray, np.ndarray]:
    """sklearn's images ``(1797, 8, 8)`` float64 in 0-16 and labels ``(1797,)`` int64
    (read-only)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.asarray(bunch.images, dtype=np.float64)
    labels = np.asarray(bunch.target, dtype=np.int64)
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


@functools.lru_cache(maxsize=1)
def digits_split() -> tuple[np.ndarray, np.ndarray]:
    """Indices into :func:`raw_digits` of the fixed training (1,437) and validation (360)
    splits, each sorted (read-only)."""
    from sklearn.model_selection import train_test_split

    _, labels = raw_digits()
    train, val = train_test_split(
        np.arange(len(labels)),
        test_size=NUM_VAL,
        stratify=labels,
        random_state=SPLIT_RANDOM_STATE,
    )
    train, val = np.sort(train), np.sort(val)
    train.flags.writeable = False
    val.flags.writeable = False
    return train, val


def max_train_per_class() -> int:
    """The largest valid ``train_per_class``: the size of the smallest class of the training
    split."""
    _, labels = raw_digits()
    train, _ = digits_split()
    return int(np.bincount(labels[train], minlength=len(CLASS_NAMES)).min())


def check_train_per_class(value: object) -> None:
    """Raise ``ValueError`` unless ``value`` is ``None`` or an integer in
    ``[1, max_train_per_class()]``."""
    high = max_train_per_class()
    if value is not None and (
        not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= high
    ):
        raise ValueError(
            f"train_per_class: expected None or an integer in [1, {high}] for name 'digits', "
            f"found {value!r}"
        )


def select_per_class(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Sorted indices of ``per_class`` samples of each class of ``labels``, a deterministic
    function of ``seed``: each class's indices are permuted by a generator seeded with
    ``(seed, tag)`` and the first ``per_class`` kept, so smaller sizes are nested in larger."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, _SUBSAMPLE_TAG]))
    chosen = []
    for cls in range(int(labels.max()) + 1):
        members = np.flatnonzero(labels == cls)
        if len(members) < per_class:
            raise ValueError(
                f"per_class: expected at most {len(members)} (the size of class {cls}), "
                f"found {per_class}"
            )
        chosen.append(rng.permutation(members)[:per_class])
    return np.sort(np.concatenate(chosen))


def upsample_digits(images: np.ndarray, resolution: int) -> np.ndarray:
    """``(N, 8, 8)`` intensities in 0-16 as ``(N, 3, resolution, resolution)`` uint8: scaled to
    0-255, bilinearly interpolated (``align_corners=False``), rounded, channels repeated."""
    if resolution < MIN_RESOLUTION:
        raise ValueError(
            f"resolution: expected an integer >= {MIN_RESOLUTION}, found {resolution!r}"
        )
    import torch
    from torch.nn import functional as F

    x = torch.from_numpy(np.asarray(images, dtype=np.float32) * (255.0 / 16.0))[:, None]
    up = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False)
    out = up.round_().clamp_(0, 255).to(torch.uint8).numpy()
    return np.ascontiguousarray(np.repeat(out, 3, axis=1))


def load_digits_dataset(
    resolution: int | None = None, train_per_class: int | None = None, seed: int = 0
) -> tuple[DatasetSplits, Stats]:
    """The digits splits at ``resolution`` (``None``: 32) with ``train_per_class`` training
    images per class (``None``: all 1,437), and the normalisation statistics of the whole
    training split (see the module docstring)."""
    check_train_per_class(train_per_class)
    side = DEFAULT_RESOLUTION if resolution is None else resolution
    images, labels = raw_digits()
    train_idx, val_idx = digits_split()
    full_train = upsample_digits(images[train_idx], side)
    stats = channel_stats(full_train)
    keep = (
        np.arange(len(train_idx))
        if train_per_class is None
        else select_per_class(labels[train_idx], train_per_class, seed)
    )
    splits = DatasetSplits(
        train=ArrayDataset(
            np.ascontiguousarray(full_train[keep]), labels[train_idx][keep].copy(), CLASS_NAMES
        ),
        val=ArrayDataset(
            upsample_digits(images[val_idx], side), labels[val_idx].copy(), CLASS_NAMES
        ),
    )
    return splits, stats


def digits_cache_key(resolution: int | None, train_per_class: int | None, seed: int) -> str:
    """File stem naming everything the arrays depend on: equal keys mean identical arrays (the
    seed only matters, and only appears, when ``train_per_class`` is set)."""
    side = DEFAULT_RESOLUTION if resolution is None else resolution
    spec = {
        "format": FORMAT_VERSION,
        "split_random_state": SPLIT_RANDOM_STATE,
        "num_val": NUM_VAL,
        "resolution": side,
        "train_per_class": train_per_class,
        "seed": None if train_per_class is None else seed,
    }
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
    size = "all" if train_per_class is None else f"k{train_per_class}-s{seed}"
    return f"digits-r{side}-{size}-{digest}"
