"""The training recipe shared by the proxy trainer and the full trainer.

One recipe (AdamW, linear warmup + cosine decay, label smoothing or Mixup/CutMix targets, bf16
autocast on CUDA, channels-last, optional ``torch.compile``) keeps proxy accuracy a faithful
predictor of full-training accuracy: the two trainers differ in budget, never in method.

The learning-rate schedule is stepped per optimizer update (``scheduler.step_update``), not per
epoch: proxy runs last a handful of epochs, and a per-epoch staircase would spend a whole epoch at
each warmup lr. Stepping per update also makes the lr a pure function of the update count, which
is what exact resume relies on.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import numpy as np
import torch
from timm.data import Mixup
from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy
from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2
from timm.scheduler.scheduler import Scheduler
from torch import nn

from nas.training.device import check_amp_dtype


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (Mixup draws from NumPy's)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` picks CUDA when present; anything else is passed to ``torch.device``."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def amp_dtype(name: str) -> torch.dtype:
    check_amp_dtype(name, "amp_dtype")
    return getattr(torch, name)


def autocast(
    device: torch.device, amp: bool, dtype: str = "bfloat16"
) -> contextlib.AbstractContextManager:
    """Mixed precision on CUDA only: CPU autocast is slow for most ops and would change the
    numbers CI checks, so on CPU ``amp`` is a no-op and training runs in float32."""
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=amp_dtype(dtype))
    return contextlib.nullcontext()


def create_grad_scaler(
    device: torch.device, amp: bool, dtype: str = "bfloat16"
) -> torch.amp.GradScaler:
    """A loss scaler, enabled only for float16 autocast (bf16 has float32's range and needs none).
    A disabled scaler is a pass-through, so training code never branches on it."""
    enabled = amp and device.type == "cuda" and amp_dtype(dtype) is torch.float16
    return torch.amp.GradScaler(device.type, enabled=enabled)


def prepare_model(
    model: nn.Module, device: torch.device, channels_last: bool = True, compile: bool = False
) -> nn.Module:
    """Move ``model`` to ``device`` (channels-last memory, which the stem and downsampling convs
    run faster in) and optionally compile it. MetaFormer blocks gain 3x or more from
    compilation, so throughput-sensitive runs should compile."""
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return torch.compile(model) if compile else model


def create_optimizer(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """AdamW; timm leaves norms, biases and other 1-D parameters out of weight decay."""
    return create_optimizer_v2(model, opt="adamw", lr=lr, weight_decay=weight_decay)


def create_scheduler(
    optimizer: torch.optim.Optimizer,
    epochs: int,
    updates_per_epoch: int,
    warmup_epochs: float,
    min_lr: float = 1e-6,
    warmup_lr: float = 1e-6,
) -> Scheduler:
    """Linear warmup from ``warmup_lr`` then cosine decay to ``min_lr`` over ``epochs``, stepped
    per update: call ``scheduler.step_update(num_updates)`` after every optimizer step."""
    scheduler, _ = create_scheduler_v2(
        optimizer,
        sched="cosine",
        num_epochs=epochs,
        warmup_epochs=warmup_epochs,
        warmup_lr=warmup_lr,
        min_lr=min_lr,
        step_on_epochs=False,
        updates_per_epoch=updates_per_epoch,
    )
    return scheduler


def create_mixup(
    num_classes: int,
    mixup_alpha: float,
    cutmix_alpha: float,
    prob: float = 1.0,
    switch_prob: float = 0.5,
    label_smoothing: float = 0.0,
) -> Mixup | None:
    """timm's batch Mixup/CutMix (soft targets with the label smoothing folded in), or ``None``
    when both alphas are 0. It draws from NumPy's global generator and needs even batches."""
    if mixup_alpha <= 0 and cutmix_alpha <= 0:
        return None
    return Mixup(
        mixup_alpha=mixup_alpha,
        cutmix_alpha=cutmix_alpha,
        prob=prob,
        switch_prob=switch_prob,
        label_smoothing=label_smoothing,
        num_classes=num_classes,
    )


def create_loss(label_smoothing: float, mixup: Mixup | None) -> nn.Module:
    """Soft-target cross-entropy with Mixup (its targets already carry the smoothing), else
    label-smoothed cross-entropy, else plain cross-entropy."""
    if mixup is not None:
        return SoftTargetCrossEntropy()
    if label_smoothing > 0:
        return LabelSmoothingCrossEntropy(smoothing=label_smoothing)
    return nn.CrossEntropyLoss()


@contextlib.contextmanager
def torch_threads(num_threads: int | None) -> Iterator[None]:
    """Run with ``num_threads`` intra-op CPU threads (``None``: leave as is), then restore."""
    previous = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
