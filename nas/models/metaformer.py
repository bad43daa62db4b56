"""MetaFormer backbone built from an :class:`ArchSpec`, with timm's model interface.

The layout and parameter names follow timm's ``metaformer.py``: ``stem`` (conv + norm),
``stages.i`` (``downsample``: norm + conv, then ``blocks``), ``head`` (``global_pool``, ``norm``,
``flatten``, ``drop``, ``fc``). ConvFormer, CAFormer and PoolFormerV2 built from a spec therefore
have exactly timm's parameters, and compute timm's function once its weights are copied in
(:mod:`nas.models.transplant`). The same skeleton with ConvNeXt-style blocks, a 4x4 stem and 2x2
downsampling is HorNet. Blocks run channels-last ``(B, H, W, C)``, the layout every mixer takes;
the stem and the stages return NCHW (channels-last views), as timm's feature extraction expects.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import torch
from timm.layers import DropPath, LayerNorm2d, SelectAdaptivePool2d, trunc_normal_
from timm.models._features import feature_take_indices
from torch import nn

from nas.arch.spec import ArchSpec, MixerSpec
from nas.errors import NasError
from nas.layers import SquaredReLU, StarReLU
from nas.layers.norms import GroupNorm1
from nas.layers.own_init import apply_own_init
from nas.mixers.registry import get_mixer

EPS = 1e-6
"""Every norm of the backbone and head, as in timm's MetaFormer and HorNet."""

_MLP_ACT: dict[str, Callable[[], nn.Module]] = {"metaformer": StarReLU, "convnext": nn.GELU}


class ModelError(NasError):
    """A model setting the network cannot take (e.g. a pooling that widens the features)."""


class Scale(nn.Module):
    """Learnable per-channel scale (layer scale or res scale) on a channels-last map."""

    def __init__(self, dim: int, init_value: float = 1.0):
        super().__init__()
        self.scale = nn.Parameter(torch.full((dim,), float(init_value)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


class Mlp(nn.Module):
    """The channel MLP: Linear, activation, Linear (MetaFormer: StarReLU, no biases; ConvNeXt
    and HorNet: GELU with biases)."""

    def __init__(self, dim: int, ratio: float, act: Callable[[], nn.Module], bias: bool):
        super().__init__()
        hidden = int(ratio * dim)
        self.fc1 = nn.Linear(dim, hidden, bias=bias)
        self.act = act()
        self.fc2 = nn.Linear(hidden, dim, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class MetaFormerBlock(nn.Module):
    """``x = res_scale(x) + layer_scale(drop_path(mixer(norm(x))))``, then the same with the MLP."""

    def __init__(
        self,
        dim: int,
        mixer: nn.Module,
        mlp: nn.Module,
        norm: Callable[[], nn.Module],
        drop_path: float,
        layer_scale: float | None,
        res_scale: bool,
    ):
        super().__init__()

        def scale(init: float | None) -> nn.Module:
            return Scale(dim, init) if init is not None else nn.Identity()

        self.norm1 = norm()
        self.token_mixer = mixer
        self.drop_path1 = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.layer_scale1 = scale(layer_scale)
        self.res_scale1 = scale(1.0 if res_scale else None)
        self.norm2 = norm()
        self.mlp = mlp
        self.drop_path2 = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.layer_scale2 = scale(layer_scale)
        self.res_scale2 = scale(1.0 if res_scale else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.res_scale1(x) + self.layer_scale1(self.drop_path1(self.token_mixer(self.norm1(x))))
        return self.res_scale2(x) + self.layer_scale2(self.drop_path2(self.mlp(self.norm2(x))))


class Stem(nn.Module):
    """Patchifying conv followed by a channel LayerNorm (on the channels-last view: no copy);
    NCHW in and out."""

    def __init__(
        self, in_chans: int, dim: int, kernel_size: int, stride: int, padding: int, bias: bool
    ):
        super().__init__()
        self.conv = nn.Conv2d(in_chans, dim, kernel_size, stride=stride, padding=padding)
        self.norm = nn.LayerNorm(dim, eps=EPS, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x).permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class Downsampling(nn.Module):
    """Channel LayerNorm (on the channels-last view) then a strided conv, NCHW in and out."""

    def __init__(
        self, in_dim: int, out_dim: int, kernel_size: int, stride: int, padding: int, bias: bool
    ):
        super().__init__()
        self.norm = nn.LayerNorm(in_dim, eps=EPS, bias=bias)
        self.conv = nn.Conv2d(in_dim, out_dim, kernel_size, stride=stride, padding=padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2))


class MetaFormerStage(nn.Module):
    """Downsampling (NCHW), then the blocks on the channels-last view; returns NCHW."""

    def __init__(self, downsample: nn.Module, blocks: list[MetaFormerBlock]):
        super().__init__()
        self.downsample = downsample
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.downsample(x)
        return self.blocks(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class MlpHead(nn.Module):
    """fc(ratio x) -> SquaredReLU -> LayerNorm -> dropout -> fc, as in ConvFormer/CAFormer."""

    def __init__(self, dim: int, num_classes: int, ratio: float, dropout: float):
        super().__init__()
        hidden = int(ratio * dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.act = SquaredReLU()
        self.norm = nn.LayerNorm(hidden, eps=EPS)
        self.head_drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.head_drop(self.norm(self.act(self.fc1(x)))))


def _pool(global_pool: str) -> SelectAdaptivePool2d:
    pool = SelectAdaptivePool2d(pool_type=global_pool)
    if pool.feat_mult() != 1:
        raise ModelError(
            f"global_pool: {global_pool!r} widens the pooled features {pool.feat_mult()}x, which "
            "the head's norm cannot take; use 'avg', 'max', 'avgmax' or '' (no pooling)"
        )
    return pool


class MetaFormer(nn.Module):
    """Backbone + classifier for one :class:`ArchSpec`, with timm's model interface.

    ``num_classes``: ``None`` takes the spec's (``1000`` if it has none); ``0`` builds no
    classifier. ``global_pool``: timm's pooling name (``''`` keeps the feature map).
    """

    def __init__(self, spec: ArchSpec, num_classes: int | None = None, global_pool: str = "avg"):
        super().__init__()
        self.spec = spec
        self.num_classes = (spec.num_classes or 1000) if num_classes is None else num_classes
        self.in_chans = spec.in_chans
        self.drop_rate = spec.head.dropout
        self.num_features = self.head_hidden_size = spec.stages[-1].dim
        bias = spec.block == "convnext"
        first = spec.stages[0].dim
        self.stem = Stem(spec.in_chans, first, bias=bias, **vars(spec.stem))
        total = sum(s.depth for s in spec.stages)
        rates = [spec.drop_path_rate * i / max(total - 1, 1) for i in range(total)]
        stages, prev, k = [], first, 0
        for i, stage in enumerate(spec.stages):
            blocks = []
            for mixer_spec in stage.block_mixers():
                blocks.append(
                    MetaFormerBlock(
                        stage.dim,
                        self._make_mixer(i, stage.dim, mixer_spec),
                        Mlp(stage.dim, stage.mlp_ratio, _MLP_ACT[spec.block], bias),
                        lambda dim=stage.dim: self._make_norm(dim, bias),
                        rates[k],
                        stage.layer_scale,
                        stage.res_scale,
                    )
                )
                k += 1
            down = (
                nn.Identity()
                if i == 0
                else Downsampling(prev, stage.dim, bias=bias, **vars(spec.downsample))
            )
            stages.append(MetaFormerStage(down, blocks))
            prev = stage.dim
        self.stages = nn.Sequential(*stages)
        self.feature_info = [
            {"num_chs": s.dim, "reduction": r, "module": f"stages.{i}"}
            for i, (s, r) in enumerate(zip(spec.stages, spec.reductions(), strict=True))
        ]
        self.head = nn.Sequential(
            OrderedDict(
                global_pool=_pool(global_pool),
                norm=LayerNorm2d(self.num_features, eps=EPS),
                flatten=nn.Flatten(1) if global_pool else nn.Identity(),
                drop=nn.Dropout(self.drop_rate if spec.head.kind == "linear" else 0.0),
                fc=self._make_fc(self.num_classes),
            )
        )
        self.apply(_init_weights)
        apply_own_init(self)

    def _make_mixer(self, stage: int, dim: int, mixer: MixerSpec) -> nn.Module:
        return get_mixer(mixer.name).cls(dim, **self.spec.resolved_knobs(stage, mixer))

    def _make_norm(self, dim: int, bias: bool) -> nn.Module:
        if self.spec.norm == "groupnorm1":
            return GroupNorm1(dim, eps=EPS, bias=bias)
        return nn.LayerNorm(dim, eps=EPS, bias=bias)

    def _make_fc(self, num_classes: int) -> nn.Module:
        """The classifier after pooling and norm: timm's ``head.fc``."""
        if num_classes <= 0:
            return nn.Identity()
        head = self.spec.head
        if head.kind == "linear":
            return nn.Linear(self.num_features, num_classes)
        return MlpHead(self.num_features, num_classes, head.hidden_ratio, head.dropout)

    def get_classifier(self) -> nn.Module:
        return self.head.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """A new classifier for ``num_classes`` (``0``: none, ``forward`` returns the pooled
        features), initialised as at construction; ``global_pool`` ``''`` keeps the map."""
        self.num_classes = num_classes
        if global_pool is not None:
            self.head.global_pool = _pool(global_pool).train(self.head.training)
            self.head.flatten = nn.Flatten(1) if global_pool else nn.Identity()
        fc = self._make_fc(num_classes)
        fc.apply(_init_weights)
        apply_own_init(fc)
        like = self.stem.conv.weight
        self.head.fc = fc.to(device=like.device, dtype=like.dtype).train(self.head.training)

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: int | list[int] | None = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """timm's feature API: the NCHW output of the stages at ``indices`` (``None``: all, an
        int ``n``: the last ``n``, a list: those, negative from the end), and, unless
        ``intermediates_only``, the final features (``forward_features``; with ``stop_early``
        those of the last stage taken). As in timm's MetaFormer, ``norm`` changes nothing: the
        head's norm acts on pooled features."""
        if output_fmt != "NCHW":
            raise ModelError(f"output_fmt: expected 'NCHW', found {output_fmt!r}")
        take, last = feature_take_indices(len(self.stages), indices)
        stages = self.stages[: last + 1] if stop_early else self.stages
        x = self.stem(x)
        intermediates = []
        for i, stage in enumerate(stages):
            x = stage(x)
            if i in take:
                intermediates.append(x)
        if intermediates_only:
            return intermediates
        return x, intermediates

    def prune_intermediate_layers(
        self, indices: int | list[int] = 1, prune_norm: bool = False, prune_head: bool = True
    ) -> list[int]:
        """Drop the stages after the last of ``indices`` and (``prune_head``) the classifier;
        the head's norm goes with ``prune_norm`` or when stages are dropped (it is sized for the
        last stage). Returns the absolute indices, as timm's ``FeatureGetterNet`` expects."""
        take, last = feature_take_indices(len(self.stages), indices)
        dropped_stages = last < len(self.stages) - 1
        self.stages = self.stages[: last + 1]
        if dropped_stages:
            self.num_features = self.head_hidden_size = self.feature_info[last]["num_chs"]
        if prune_norm or dropped_stages:
            self.head.norm = nn.Identity()
        if prune_head or dropped_stages:
            self.reset_classifier(0, "")
        return take

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone features, NCHW (a channels-last view of the last blocks' output)."""
        return self.stages(self.stem(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        head = self.head
        x = head.drop(head.flatten(head.norm(head.global_pool(x))))
        return x if pre_logits else head.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _init_weights(module: nn.Module) -> None:
    """timm's MetaFormer init: truncated normal (std 0.02) weights, zero biases. A module whose
    parameters have their own init (an :class:`~nas.layers.own_init.OwnInit`) restores it
    afterwards."""
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def build_model(spec: ArchSpec | str | dict, num_classes: int | None = None) -> MetaFormer:
    """Backbone + classifier for a spec, a preset name, a YAML path or a spec dict;
    ``num_classes`` ``None`` takes the spec's (``1000`` if it has none)."""
    from nas.arch.presets import resolve_spec

    return MetaFormer(resolve_spec(spec), num_classes=num_classes)
