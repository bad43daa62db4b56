"""One training epoch and one evaluation pass, shared by the proxy and the full trainer.

The loop keeps the running loss on the device and looks at it only every ``check_every`` steps
(and at the end of the epoch): reading it every step would synchronise CUDA each update. A
non-finite value survives the running sum, so a NaN is still caught within ``check_every`` steps.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from timm.data import Mixup
from timm.scheduler.scheduler import Scheduler
from timm.utils import ModelEmaV3
from torch import nn
from torch.nn import functional as F

from nas.training.recipe import autocast

Batch = tuple[torch.Tensor, torch.Tensor]


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite (diverged run)."""


@dataclass(frozen=True)
class EpochStats:
    """What one pass over the training loader did."""

    loss: float
    images: int
    steps: int
    seconds: float
    cut_short: bool = False

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class EvalStats:
    top1: float
    loss: float
    images: int


class TrainLoop:
    """The optimizer update of the shared recipe: autocast forward, loss, (scaled) backward,
    optional gradient clipping, step, per-update lr schedule, optional EMA update.

    ``model`` is the module whose weights are trained (the EMA copies it); ``forward`` is what
    runs the batch, e.g. ``torch.compile(model)``. ``num_updates`` counts optimizer steps over
    the whole run and drives the schedule and the EMA warmup, so a resumed run sets it back.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: Scheduler,
        loss_fn: nn.Module,
        device: torch.device,
        *,
        forward: nn.Module | None = None,
        amp: bool = True,
        amp_dtype: str = "bfloat16",
        scaler: torch.amp.GradScaler | None = None,
        mixup: Mixup | None = None,
        ema: ModelEmaV3 | None = None,
        clip_grad: float | None = None,
        check_every: int = 20,
    ):
        self.model = model
        self.forward = forward if forward is not None else model
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.loss_fn = loss_fn
        self.device = device
        self.amp = amp
        self.amp_dtype = amp_dtype
        self.scaler = scaler
        self.mixup = mixup
        self.ema = ema
        self.clip_grad = clip_grad
        self.check_every = check_every
        self.num_updates = 0

    def train_epoch(self, loader: Iterable[Batch], deadline: float | None = None) -> EpochStats:
        """One pass over ``loader``; stops early (``cut_short``) once ``time.perf_counter()``
        passes ``deadline``. Raises :class:`NonFiniteLossError` when the loss diverges."""
        self.model.train()
        start = time.perf_counter()
        total = torch.zeros((), device=self.device)
        images = steps = 0
        cut_short = False
        for images_batch, labels in loader:
            total += self._step(images_batch, labels) * len(labels)
            images += len(labels)
            steps += 1
            if steps % self.check_every == 0:
                _check_finite(total, steps)
            if deadline is not None and time.perf_counter() > deadline:
                cut_short = True
                break
        _check_finite(total, steps)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        seconds = time.perf_counter() - start
        loss = float(total) / images if images else float("nan")
        return EpochStats(loss, images, steps, seconds, cut_short)

    def _step(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        targets = labels
        if self.mixup is not None:
            images, targets = self.mixup(images, labels)
        with autocast(self.device, self.amp, self.amp_dtype):
            output = self.forward(images)
        loss = self.loss_fn(output.float(), targets)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        if self.clip_grad is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.clip_grad)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.num_updates += 1
        self.scheduler.step_update(num_updates=self.num_updates)
        if self.ema is not None:
            self.ema.update(self.model, step=self.num_updates)
        return loss.detach()


def _check_finite(total: torch.Tensor, steps: int) -> None:
    if not torch.isfinite(total):
        raise NonFiniteLossError(
            f"training loss became {float(total)} (NaN or inf) within the first {steps} steps "
            "of the epoch"
        )


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable[Batch],
    device: torch.device,
    amp: bool = True,
    amp_dtype: str = "bfloat16",
) -> EvalStats:
    """Top-1 accuracy and mean cross-entropy (no smoothing) over ``loader``."""
    model.eval()
    correct = torch.zeros((), device=device, dtype=torch.long)
    total = torch.zeros((), device=device)
    images = 0
    for batch, labels in loader:
        with autocast(device, amp, amp_dtype):
            output = model(batch)
        total += F.cross_entropy(output.float(), labels, reduction="sum")
        correct += (output.argmax(dim=1) == labels).sum()
        images += len(labels)
    if not images:
        raise ValueError("evaluate: the validation loader yielded no batches")
    return EvalStats(int(correct) / images, float(total) / images, images)
