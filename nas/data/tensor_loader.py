"""A loader that keeps the whole dataset on the training device.

Proxy training uses small datasets (the default one, CIFAR) that fit in device memory many
times over; keeping them there as uint8 and augmenting whole batches with one gather removes
host-to-device copies and worker processes, which otherwise dominate the step time of the small
models the search trains.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from nas.data.augment import Augment, BatchTransform, EpochPlanner, num_batches


class TensorLoader(EpochPlanner):
    """Batches ``(x, y)`` of device-resident uint8 images: ``x`` float ``(B, 3, H, W)``
    channels_last and normalised, ``y`` int64.

    In training mode (``train=True``) every epoch reads a seeded permutation and, if
    ``augment`` is given, random crops of the zero-padded images and horizontal flips, drawn per
    sample; in eval mode the order is the dataset's and nothing is augmented. Epoch ``e`` of a
    given ``seed`` is always the same batches; iterating advances the epoch (see ``set_epoch``).
    """

    def __init__(
        self,
        images: np.ndarray | torch.Tensor,
        labels: np.ndarray | torch.Tensor,
        *,
        batch_size: int,
        device: torch.device | str,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        train: bool = False,
        augment: Augment | None = None,
        seed: int = 0,
        drop_last: bool = False,
    ):
        images = torch.as_tensor(images)
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(
                f"images: expected uint8 (N, C, H, W), found {images.dtype} {tuple(images.shape)}"
            )
        if batch_size < 1:
            raise ValueError(f"batch_size: expected an integer >= 1, found {batch_size!r}")
        self.device = torch.device(device)
        # Stored (N, H, W, C) so that a gathered batch is already channels_last.
        self.images = images.permute(0, 2, 3, 1).contiguous().to(self.device)
        self.labels = torch.as_tensor(labels, dtype=torch.int64).to(self.device)
        self.batch_size = batch_size
        self.train = train
        self.augment = augment if train else None
        self.seed = seed
        self.drop_last = drop_last
        self.epoch = 0
        padding = self.augment.crop_padding if self.augment else 0
        self.transform = BatchTransform(mean, std, self.device, padding)

    @property
    def num_samples(self) -> int:
        return len(self.labels)

    def __len__(self) -> int:
        return num_batches(self.num_samples, self.batch_size, self.drop_last)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        plan = self.next_plan()
        self.transform.start_epoch(plan)
        order = torch.from_numpy(plan.order).to(self.device)
        for start in range(0, len(order), self.batch_size):
            index = order[start : start + self.batch_size]
            yield self.transform(self.images[index], start), self.labels[index]
