"""MetaFormer backbone built from an :class:`ArchSpec`.

The layout follows timm's ``metaformer.py`` (stem conv 7x7/4 + norm, norm + conv 3x3/2 between
stages, bias-free LayerNorm blocks, StarReLU MLP, MLP head), so ConvFormer and CAFormer built from
a spec have exactly timm's parameters. Blocks run channels-last ``(B, H, W, C)``, the layout every
mixer takes; ``forward_features`` returns NCHW like timm's models.
"""

from __future__ import annotations

from typing import Any

import torch
from timm.layers import DropPath, trunc_normal_
from torch import nn

from nas.arch.spec import ArchSpec, MixerSpec
from nas.layers import LayerNormNoBias, SquaredReLU, StarReLU
from nas.layers.own_init import apply_own_init
from nas.mixers.registry import get_mixer


class Scale(nn.Module):
    """Learnable per-channel scale (layer scale or res scale) on a channels-last map."""

    def __init__(self, dim: int, init_value: float = 1.0):
        super().__init__()
        self.scale = nn.Parameter(torch.full((dim,), float(init_value)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


class Mlp(nn.Module):
    """The MetaFormer channel MLP: Linear, StarReLU, Linear, no biases."""

    def __init__(self, dim: int, ratio: float):
        super().__init__()
        hidden = int(ratio * dim)
        self.fc1 = nn.Linear(dim, hidden, bias=False)
        self.act = StarReLU()
        self.fc2 = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class MetaFormerBlock(nn.Module):
    """``x = res_scale(x) + layer_scale(drop_path(mixer(norm(x))))``, then the same with the MLP."""

    def __init__(
        self,
        dim: int,
        mixer: nn.Module,
        mlp_ratio: float,
        drop_path: float,
        layer_scale: float | None,
        res_scale: bool,
    ):
        super().__init__()

        def scale(init: float | None) -> nn.Module:
            return Scale(dim, init) if init is not None else nn.Identity()

        self.norm1 = LayerNormNoBias(dim)
        self.token_mixer = mixer
        self.drop_path1 = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.layer_scale1 = scale(layer_scale)
        self.res_scale1 = scale(1.0 if res_scale else None)
        self.norm2 = LayerNormNoBias(dim)
        self.mlp = Mlp(dim, mlp_ratio)
        self.drop_path2 = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.layer_scale2 = scale(layer_scale)
        self.res_scale2 = scale(1.0 if res_scale else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.res_scale1(x) + self.layer_scale1(self.drop_path1(self.token_mixer(self.norm1(x))))
        return self.res_scale2(x) + self.layer_scale2(self.drop_path2(self.mlp(self.norm2(x))))


class Stem(nn.Module):
    """Patchifying conv (NCHW in) followed by a bias-free LayerNorm; returns channels-last."""

    def __init__(self, in_chans: int, dim: int, kernel_size: int, stride: int, padding: int):
        super().__init__()
        self.conv = nn.Conv2d(in_chans, dim, kernel_size, stride=stride, padding=padding)
        self.norm = LayerNormNoBias(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x).permute(0, 2, 3, 1))


class Downsampling(nn.Module):
    """Bias-free LayerNorm then conv 3x3 stride 2, channels-last in and out."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.norm = LayerNormNoBias(in_dim)
        self.conv = nn.Conv2d(in_dim, out_dim, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(self.norm(x).permute(0, 3, 1, 2))
        return x.permute(0, 2, 3, 1)


class MetaFormerStage(nn.Module):
    def __init__(self, downsample: nn.Module, blocks: list[MetaFormerBlock]):
        super().__init__()
        self.downsample = downsample
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.downsample(x))


class MlpHead(nn.Module):
    """fc(ratio x) -> SquaredReLU -> LayerNorm -> dropout -> fc, as in ConvFormer/CAFormer."""

    def __init__(self, dim: int, num_classes: int, ratio: float, dropout: float):
        super().__init__()
        hidden = int(ratio * dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.act = SquaredReLU()
        self.norm = nn.LayerNorm(hidden)
        self.head_drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.head_drop(self.norm(self.act(self.fc1(x)))))


class MetaFormer(nn.Module):
    """Backbone + classifier for one :class:`ArchSpec`, with timm's model interface."""

    def __init__(self, spec: ArchSpec, num_classes: int = 1000):
        super().__init__()
        self.spec = spec
        self.num_classes = num_classes
        self.num_features = self.head_hidden_size = spec.stages[-1].dim
        first = spec.stages[0].dim
        self.stem = Stem(spec.in_chans, first, **vars(spec.stem))
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
                        stage.mlp_ratio,
                        rates[k],
                        stage.layer_scale,
                        stage.res_scale,
                    )
                )
                k += 1
            down = nn.Identity() if i == 0 else Downsampling(prev, stage.dim)
            stages.append(MetaFormerStage(down, blocks))
            prev = stage.dim
        self.stages = nn.Sequential(*stages)
        self.norm = nn.LayerNorm(self.num_features)
        self.head = self._make_head(num_classes)
        self.feature_info = [
            {"num_chs": s.dim, "reduction": spec.stem.stride * 2**i, "module": f"stages.{i}"}
            for i, s in enumerate(spec.stages)
        ]
        self.apply(_init_weights)
        apply_own_init(self)

    def _make_mixer(self, stage: int, dim: int, mixer: MixerSpec) -> nn.Module:
        return get_mixer(mixer.name).cls(dim, **self.spec.resolved_knobs(stage, mixer))

    def _make_head(self, num_classes: int) -> nn.Module:
        if num_classes <= 0:
            return nn.Identity()
        if self.spec.head.kind == "linear":
            return nn.Sequential(
                nn.Dropout(self.spec.head.dropout), nn.Linear(self.num_features, num_classes)
            )
        return MlpHead(
            self.num_features, num_classes, self.spec.head.hidden_ratio, self.spec.head.dropout
        )

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: Any = None) -> None:
        self.num_classes = num_classes
        self.head = self._make_head(num_classes)
        self.head.apply(_init_weights)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone features, NCHW (a channels-last view of the blocks' output)."""
        return self.stages(self.stem(x)).permute(0, 3, 1, 2)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.norm(x.mean(dim=(2, 3)))
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _init_weights(module: nn.Module) -> None:
    """timm's MetaFormer init: truncated normal (std 0.02) weights, zero biases. A mixer whose
    parameters need their own init (e.g. implicit filters) restores it as an ``OwnInit``."""
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def build_model(spec: ArchSpec | str | dict, num_classes: int = 1000) -> MetaFormer:
    """Backbone + classifier for a spec, a preset name, a YAML path or a spec dict."""
    from nas.arch.presets import resolve_spec

    return MetaFormer(resolve_spec(spec), num_classes=num_classes)
