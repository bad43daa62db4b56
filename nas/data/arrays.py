"""In-memory datasets as plain uint8 arrays: the common currency of every reader and loader.

Keeping one array format (images ``(N, 3, H, W)`` uint8, labels ``(N,)`` int64) lets the default
dataset, CIFAR, ImageFolder trees and ``.beton`` files feed any loader, and lets tests compare
loaders exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ArrayDataset:
    """Images ``(N, 3, H, W)`` uint8 and labels ``(N,)`` int64, with the names of the classes."""

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.images.dtype != np.uint8 or self.images.ndim != 4 or self.images.shape[1] != 3:
            raise ValueError(
                "images: expected a uint8 array of shape (N, 3, H, W), "
                f"found {self.images.dtype} {self.images.shape}"
            )
        if self.labels.shape != (len(self.images),) or self.labels.dtype != np.int64:
            raise ValueError(
                f"labels: expected int64 of shape ({len(self.images)},), "
                f"found {self.labels.dtype} {self.labels.shape}"
            )
        num_classes = len(self.class_names)
        if len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= num_classes):
            raise ValueError(
                f"labels: expected values in [0, {len(self.class_names)}), "
                f"found [{self.labels.min()}, {self.labels.max()}]"
            )

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_size(self) -> tuple[int, int]:
        """``(H, W)`` of every image."""
        return int(self.images.shape[2]), int(self.images.shape[3])

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        """One sample as ``(H, W, 3)`` uint8 and its label: the layout FFCV's writer expects."""
        return np.ascontiguousarray(self.images[index].transpose(1, 2, 0)), int(self.labels[index])


@dataclass(frozen=True)
class DatasetSplits:
    """A training and a validation split sharing the same classes."""

    train: ArrayDataset
    val: ArrayDataset


def channel_stats(images: np.ndarray, max_samples: int = 10_000) -> tuple[tuple[float, ...], ...]:
    """Per-channel ``(mean, std)`` in [0, 1] units of up to ``max_samples`` evenly spaced images.

    Subsampling keeps this cheap on large arrays while staying deterministic. A channel that is
    constant gets std 1/255, so normalisation never divides by zero.
    """
    step = max(1, len(images) // max_samples)
    sample = images[::step].astype(np.float64) / 255.0
    mean = sample.mean(axis=(0, 2, 3))
    std = np.maximum(sample.std(axis=(0, 2, 3)), 1.0 / 255.0)
    return tuple(round(float(m), 6) for m in mean), tuple(round(float(s), 6) for s in std)
