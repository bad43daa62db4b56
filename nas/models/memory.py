"""Training-memory estimate of an architecture, before anything is allocated.

A space whose widths, depths or image size are too large for the machine used to make workers
grow until the OOM killer ended them. The driver now asks this estimate first: the network is
built and run under torch's ``FakeTensorMode`` (shapes only, no storage), so even a network of
10^12 parameters costs milliseconds. Training memory is counted as fp32 weights, gradients and
AdamW's two moments (4 x params) plus the output of every leaf module at the training batch
(what autograd keeps for the backward pass, give or take the inputs it saves too).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn
from torch._subclasses.fake_tensor import FakeTensorMode

from nas.arch.spec import ArchSpec
from nas.models.metaformer import build_model

# weights, gradients, AdamW's exp_avg and exp_avg_sq
COPIES_PER_PARAMETER = 4


@dataclass(frozen=True)
class MemoryEstimate:
    params: int
    activation_bytes: int
    batch_size: int

    @property
    def parameter_bytes(self) -> int:
        return COPIES_PER_PARAMETER * 4 * self.params

    @property
    def total_bytes(self) -> int:
        return self.parameter_bytes + self.activation_bytes


@contextmanager
def _shape_only_init() -> Iterator[None]:
    """``nn.init.trunc_normal_`` rejection-samples (reads values back), which fake tensors
    cannot; sizes do not depend on initial values, so it is skipped while estimating."""
    original = nn.init.trunc_normal_
    nn.init.trunc_normal_ = lambda tensor, *args, **kwargs: tensor
    try:
        yield
    finally:
        nn.init.trunc_normal_ = original


def estimate_training_memory(
    spec: ArchSpec, batch_size: int, num_classes: int, image_size: int | None = None
) -> MemoryEstimate:
    """Bytes that training ``spec`` at ``batch_size`` needs (see the module docstring)."""
    size = image_size or spec.image_size
    outputs: list[int] = []

    def record(_module: nn.Module, _inputs: object, output: object) -> None:
        if isinstance(output, torch.Tensor):
            outputs.append(output.numel() * output.element_size())

    with FakeTensorMode(allow_non_fake_inputs=True), _shape_only_init():
        model = build_model(spec, num_classes=num_classes)
        params = sum(p.numel() for p in model.parameters())
        for module in model.modules():
            if not any(True for _ in module.children()):
                module.register_forward_hook(record)
        model(torch.empty(batch_size, spec.in_chans, size, size))
    return MemoryEstimate(int(params), int(sum(outputs)), batch_size)
