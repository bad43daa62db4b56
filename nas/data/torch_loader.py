"""The conventional baseline: a ``torch.utils.data.DataLoader`` augmenting on CPU workers.

It exists so benchmarks can measure what the device-resident and FFCV loaders save. It follows
the same epoch plan as they do (order, crop offsets, flips), applied per sample in the workers,
so its batches are identical to theirs for a seed.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from nas.data.augment import Augment, BatchTransform, EpochPlan, EpochPlanner, num_batches

Item = tuple[int, int, int, bool]  # sample index, crop dy, crop dx, flip


class _PlannedSamples(Dataset):
    """Samples of uint8 ``(N, H, W, C)`` arrays, cropped and flipped as the plan item says."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, padding: int):
        self.images = images
        self.labels = labels
        self.padding = padding

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, item: Item) -> tuple[torch.Tensor, int]:
        index, dy, dx, flip = item
        image = self.images[index]
        if self.padding:
            p = self.padding
            height, width = image.shape[:2]
            image = np.pad(image, ((p, p), (p, p), (0, 0)))[dy : dy + height, dx : dx + width]
        if flip:
            image = image[:, ::-1]
        return torch.from_numpy(np.ascontiguousarray(image)), int(self.labels[index])


class _PlanBatches(Sampler[list[Item]]):
    """Yields each epoch's batches of plan items; runs in the main process, so the epoch counter
    advances correctly even with persistent workers."""

    def __init__(self, loader: TorchLoader):
        self.loader = loader

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[list[Item]]:
        plan: EpochPlan = self.loader.next_plan()
        order = plan.order.tolist()
        if plan.offsets is None or plan.flips is None:
            items = [(i, 0, 0, False) for i in order]
        else:
            items = list(zip(order, *plan.offsets.T.tolist(), plan.flips.tolist(), strict=True))
        for start in range(0, len(items), self.loader.batch_size):
            yield items[start : start + self.loader.batch_size]


class TorchLoader(EpochPlanner):
    """Same batches and interface as :class:`~nas.data.tensor_loader.TensorLoader`, produced by
    a ``DataLoader`` with ``num_workers`` CPU workers; normalisation runs on the device."""

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        *,
        batch_size: int,
        device: torch.device | str,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        train: bool = False,
        augment: Augment | None = None,
        seed: int = 0,
        drop_last: bool = False,
        num_workers: int = 2,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size: expected an integer >= 1, found {batch_size!r}")
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.train = train
        self.augment = augment if train else None
        self.seed = seed
        self.drop_last = drop_last
        self.epoch = 0
        self.num_samples = len(labels)
        padding = self.augment.crop_padding if self.augment else 0
        self.transform = BatchTransform(mean, std, self.device, 0)
        dataset = _PlannedSamples(
            np.ascontiguousarray(images.transpose(0, 2, 3, 1)), np.asarray(labels), padding
        )
        self.loader = DataLoader(
            dataset,
            batch_sampler=_PlanBatches(self),
            num_workers=num_workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=num_workers > 0,
        )

    def __len__(self) -> int:
        return num_batches(self.num_samples, self.batch_size, self.drop_last)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        non_blocking = self.device.type == "cuda"
        for images, labels in self.loader:
            images = images.to(self.device, non_blocking=non_blocking)
            yield self.transform(images, 0), labels.to(self.device, non_blocking=non_blocking)
