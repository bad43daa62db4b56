"""Global context mixer (GCNet, Cao et al., ICCV-W 2019, "GCNet: Non-local Networks Meet
Squeeze-Excitation Networks and Beyond").

Follows GCNet's global context block: context modelling (a 1x1 conv to one attention logit per
position, softmax over the HW positions, attention-weighted sum of the input: one C vector per
image), then the bottleneck transform (1x1 conv C -> C*ratio, LayerNorm, ReLU, 1x1 conv -> C),
then fusion. Convolutions 1x1 are Linear layers on the channels-last map. Cost O(HW * C).

Deliberate differences:

- The MetaFormer block adds its own residual (``x + mixer(norm(x))``), so "add" fusion returns
  only the broadcast transform; the block then computes GCNet's ``x + transform``.
- "mul" fusion returns ``u * sigmoid(transform)`` for the mixer input ``u``: the block gets
  ``x + u * sigmoid(transform)``, a channel-gated copy of its (normalised) input added to the
  stream. GCNet's ``x * sigmoid(transform)`` cannot be recovered by returning
  ``u * sigmoid(t) - u``: the block feeds the mixer ``norm(x)``, not ``x``, so ``- u`` would not
  cancel the residual.
- The attention logit has no bias: softmax over positions is invariant to it, so it would never
  get a gradient.

Initialisation is GCNet's (``ContextBlock.reset_parameters``): the attention logit Kaiming-normal
(fan-in, ReLU gain), the last transform layer zero (weight and bias): with "add" the mixer
outputs 0 and the block starts as the identity (with "mul" it outputs ``u / 2``); the first
transform layer takes the backbone's init. With the last layer at zero the earlier layers get
no gradient until its first update.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from nas.layers.own_init import OwnInit
from nas.mixers.knobs.global_context import GlobalContextKnobs


class GlobalContext(OwnInit, nn.Module):
    """GCNet's global context block as a mixer: the same C vector at every position ("add") or
    a per-channel gate on the input ("mul").

    Knobs: :class:`GlobalContextKnobs`.
    """

    def __init__(self, dim: int, **knobs: Any):
        super().__init__()
        k = GlobalContextKnobs.parse(dim, knobs)
        hidden = int(k.ratio * dim)
        self.fusion = k.fusion
        self.attn_logit = nn.Linear(dim, 1, bias=False)
        self.transform = nn.Sequential(
            nn.Linear(dim, hidden), nn.LayerNorm(hidden), nn.ReLU(), nn.Linear(hidden, dim)
        )
        self.init_weights()

    def init_weights(self) -> None:
        nn.init.kaiming_normal_(self.attn_logit.weight, mode="fan_in", nonlinearity="relu")
        nn.init.zeros_(self.transform[-1].weight)
        nn.init.zeros_(self.transform[-1].bias)

    def context(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, H, W, C)`` -> ``(B, C)``: the softmax(over HW)-weighted mean of the positions."""
        b, h, w, c = x.shape
        tokens = x.reshape(b, h * w, c)
        weights = torch.softmax(self.attn_logit(tokens), dim=1)
        return (weights * tokens).sum(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.transform(self.context(x))[:, None, None, :]
        if self.fusion == "add":
            return t.expand_as(x)
        return x * torch.sigmoid(t)
