"""Epoch plans and batch transforms shared by every loader.

Every loader draws its epoch's sample order and augmentation parameters from the same seeded
plan and applies them with the same functions, so the tensor, torch and FFCV loaders produce
identical batches for a seed: loader benchmarks compare speed, never different data. The order
is FFCV's own (``default_rng(seed + epoch).permutation``), which lets FFCV read in that order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Augment:
    """Training augmentation: a random crop of the zero-padded image and a horizontal flip."""

    crop_padding: int = 4
    hflip: bool = True


@dataclass(frozen=True)
class EpochPlan:
    """What one epoch reads: sample indices in order, and per position the crop offset
    ``(dy, dx)`` into the padded image and whether to flip (``None`` without augmentation)."""

    order: np.ndarray
    offsets: np.ndarray | None
    flips: np.ndarray | None


def num_batches(num_samples: int, batch_size: int, drop_last: bool) -> int:
    return num_samples // batch_size if drop_last else -(-num_samples // batch_size)


def plan_epoch(
    num_samples: int,
    batch_size: int,
    *,
    epoch: int,
    seed: int,
    shuffle: bool,
    augment: Augment | None,
    drop_last: bool,
) -> EpochPlan:
    """The deterministic plan of ``epoch``: a function of its arguments only."""
    if shuffle:
        order = np.random.default_rng(seed + epoch).permutation(num_samples)
    else:
        order = np.arange(num_samples)
    order = order[: num_batches(num_samples, batch_size, drop_last) * batch_size]
    if augment is None:
        return EpochPlan(order, None, None)
    rng = np.random.default_rng([seed, epoch])
    offsets = rng.integers(0, 2 * augment.crop_padding + 1, size=(len(order), 2))
    flips = rng.random(len(order)) < 0.5
    if not augment.hflip:
        flips[:] = False
    return EpochPlan(order, offsets, flips)


def crop_flip(
    images: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor, padding: int
) -> torch.Tensor:
    """Per-sample crops of the zero-padded batch, flipped where ``flips``, in one gather.

    ``images`` is ``(B, H, W, C)`` (any dtype, any device); ``offsets`` ``(B, 2)`` are the crop's
    top-left corners in the padded image, in ``[0, 2 * padding]``.
    """
    batch, height, width, _ = images.shape
    padded = F.pad(images, (0, 0, padding, padding, padding, padding)) if padding else images
    rows = offsets[:, :1] + torch.arange(height, device=images.device)
    cols = torch.arange(width, device=images.device).expand(batch, width)
    cols = torch.where(flips[:, None], width - 1 - cols, cols) + offsets[:, 1:]
    index = torch.arange(batch, device=images.device)[:, None, None]
    return padded[index, rows[:, :, None], cols[:, None, :]]


def normalize(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 ``(B, H, W, C)`` -> float ``(B, C, H, W)`` in channels_last memory, standardised.

    ``mean`` and ``std`` are per channel in [0, 1] units, on the images' device.
    """
    x = (images.float() - mean * 255.0) / (std * 255.0)
    return x.permute(0, 3, 1, 2)


class BatchTransform:
    """Turns the uint8 ``(B, H, W, C)`` batch at plan positions ``[start, stop)`` into the
    model's input on ``device``: augmentation (if planned), then normalisation."""

    def __init__(
        self,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        device: torch.device,
        padding: int,
    ):
        self.device = device
        self.padding = padding
        self.mean = torch.tensor(mean, dtype=torch.float32, device=device)
        self.std = torch.tensor(std, dtype=torch.float32, device=device)
        self.offsets: torch.Tensor | None = None
        self.flips: torch.Tensor | None = None

    def start_epoch(self, plan: EpochPlan) -> None:
        """Moves the epoch's augmentation parameters to the device once, not per batch."""
        if plan.offsets is None or plan.flips is None:
            self.offsets = self.flips = None
        else:
            self.offsets = torch.from_numpy(plan.offsets).to(self.device)
            self.flips = torch.from_numpy(plan.flips).to(self.device)

    def __call__(self, images: torch.Tensor, start: int) -> torch.Tensor:
        if self.offsets is not None and self.flips is not None:
            window = slice(start, start + len(images))
            images = crop_flip(images, self.offsets[window], self.flips[window], self.padding)
        return normalize(images, self.mean, self.std)


class EpochPlanner:
    """Draws a loader's epoch plans from its settings, so every loader plans alike.

    Users set ``num_samples``, ``batch_size``, ``seed``, ``train`` (shuffle), ``augment``,
    ``drop_last`` and ``epoch``; the plan of an epoch depends on those alone.
    """

    num_samples: int
    batch_size: int
    seed: int
    train: bool
    augment: Augment | None
    drop_last: bool
    epoch: int

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration read epoch ``epoch`` (e.g. when resuming)."""
        self.epoch = epoch

    def plan(self, epoch: int) -> EpochPlan:
        return plan_epoch(
            self.num_samples,
            self.batch_size,
            epoch=epoch,
            seed=self.seed,
            shuffle=self.train,
            augment=self.augment,
            drop_last=self.drop_last,
        )

    def next_plan(self) -> EpochPlan:
        """The plan of the current epoch; the epoch counter moves on."""
        plan = self.plan(self.epoch)
        self.epoch += 1
        return plan
