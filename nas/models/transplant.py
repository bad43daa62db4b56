"""Weights from elsewhere into a ``nas`` model: timm's MetaFormer checkpoints and ``nas train``'s.

Our parameter names are timm's (``stem.conv``, ``stages.i.downsample``, ``blocks.j.norm1``,
``token_mixer.*``, ``res_scale1``, ``mlp.fc1``, ``head.norm``, ``head.fc.fc2``...) with two
differences of storage, not of function: timm keeps the 1x1 convolutions of NCHW stages (SepConv's
pointwise convs, the MLP) as ``(out, in, 1, 1)`` conv weights where ours are ``(out, in)`` linears,
and names SepConv's activation ``act1`` where ours is ``act``. :func:`from_timm_metaformer`
maps both, so a timm ``caformer_*``, ``convformer_*`` or ``poolformerv2_*`` state dict loads into
the preset of the same name and computes the same logits.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

TIMM_RENAMES = ((".token_mixer.act1.", ".token_mixer.act."),)
"""timm name fragment -> ours, applied where timm's name is not one of the model's."""


def from_timm_metaformer(
    state_dict: Mapping[str, torch.Tensor], model: nn.Module
) -> dict[str, torch.Tensor]:
    """``state_dict`` (timm MetaFormer names and layouts) as ``model``'s: renamed per
    :data:`TIMM_RENAMES` and 1x1-conv weights reshaped to linear ones. Keys and tensors that are
    already ``model``'s pass through, so our own state dicts are returned unchanged."""
    target = model.state_dict()
    out = {}
    for key, value in state_dict.items():
        for theirs, ours in TIMM_RENAMES:
            if key not in target and theirs in key:
                key = key.replace(theirs, ours)
        want = target.get(key)
        if want is not None and value.shape != want.shape and value.numel() == want.numel():
            value = value.reshape(want.shape)
        out[key] = value
    return out


def checkpoint_filter_fn(
    state_dict: Mapping[str, object], model: nn.Module
) -> dict[str, torch.Tensor]:
    """timm's ``pretrained_filter_fn`` for the ``nas_*`` models. timm's loader has already
    picked ``model_ema`` or ``model`` out of a ``nas train`` checkpoint file; a whole checkpoint
    given as ``pretrained_cfg_overlay=dict(state_dict=...)`` is unwrapped here the same way
    (EMA weights when the run kept them). timm MetaFormer weights are converted."""
    for key in ("model_ema", "model"):
        if isinstance(state_dict.get(key), Mapping):
            state_dict = state_dict[key]
            break
    return from_timm_metaformer(state_dict, model)  # type: ignore[arg-type]
