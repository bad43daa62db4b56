"""Proxy training: a short, shrunken training run whose accuracy ranks architectures.

The search cannot afford full training per candidate, so each sampled spec is shrunk by one
documented rule (:func:`proxy_spec`) and trained for a few epochs on a small dataset with the
same recipe as full training. Every epoch is reported to a callback, which lets the search's
pruner stop hopeless trials. A trial never raises for a training problem: divergence, running
out of memory or a broken mixer end it with status ``"failed"`` and a reason, so one bad
candidate cannot take down a search.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from nas.arch.spec import ArchSpec, BlockOverride, MixerSpec, SpecError, StageSpec
from nas.data import DataBundle, build_loaders
from nas.mixers.registry import get_mixer
from nas.models import build_model, resolve_spec
from nas.training.loop import NonFiniteLossError, TrainLoop, evaluate
from nas.training.proxy_config import ProxyConfig
from nas.training.recipe import (
    create_grad_scaler,
    create_loss,
    create_optimizer,
    create_scheduler,
    prepare_model,
    resolve_device,
    seed_everything,
    torch_threads,
)

log = logging.getLogger(__name__)

STATUSES = ("completed", "pruned", "failed", "timeout")


@dataclass(frozen=True)
class EpochMetrics:
    """What the pruner sees after each epoch; ``epoch`` counts from 1, ``elapsed_s`` from the
    first training step, ``images_per_s`` is the epoch's training rate. With several seeds the
    figures are means over them, ``val_top1_std`` their standard deviation (ddof 1) and
    ``val_size`` the validation images each seed was scored on."""

    epoch: int
    val_top1: float
    val_loss: float
    train_loss: float
    elapsed_s: float
    images_per_s: float
    val_size: int = 0
    seeds: int = 1
    val_top1_std: float | None = None

    def as_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)


Report = Callable[[EpochMetrics], "bool | None"]


@dataclass
class ProxyResult:
    """Outcome of one proxy run. ``status`` is one of :data:`STATUSES`; ``reason`` says why a run
    did not complete; ``spec`` is the proxy spec that was trained (``None`` if shrinking failed)."""

    status: str
    history: list[EpochMetrics]
    reason: str | None = None
    spec: ArchSpec | None = None
    params: int | None = None
    seconds: float = 0.0

    @property
    def final_top1(self) -> float | None:
        """Validation accuracy after the last epoch run: the figure the search ranks by."""
        return self.history[-1].val_top1 if self.history else None

    @property
    def best_top1(self) -> float | None:
        return max(m.val_top1 for m in self.history) if self.history else None


def proxy_spec(
    spec: ArchSpec | str | dict, cfg: ProxyConfig, image_size: int | None = None
) -> ArchSpec:
    """The shrunken spec that stands in for ``spec`` during the search.

    * ``image_size`` (default ``cfg.data.resolution``) becomes the spec's nominal input, so
      mixers whose ``grid_size`` is unset get grids sized for the proxy maps; an explicit
      ``grid_size`` is scaled by ``image_size / spec.image_size`` (at least 1).
    * Stage widths: ``dim * width_mult`` rounded half-up to a multiple of ``q``, at least ``q``,
      where ``q`` is the least common multiple of ``cfg.dim_multiple`` and what the stage's
      mixers need for whole channel groups: ``head_dim`` for attention without a fixed head
      count, ``2**(order-1)`` for gnConv. If the registry still rejects the width, the next
      multiples of ``q`` are tried. At ``width_mult=1`` widths already on that grid are kept.
    * Stage depths: ``depth * depth_mult`` rounded half-up, at least 1. A ``last: k`` override
      scales like its stage, ``k * new_depth / old_depth`` rounded half-up, at least 1 and, when
      it did not cover the whole stage and the new depth allows it, leaving at least one block
      of the stage's own mixer, so a hybrid stays a hybrid. ``blocks`` indices map
      proportionally (``i * new_depth // old_depth``).
    * ``drop_path_rate`` is replaced by ``cfg.drop_path_rate`` unless that is ``None``.
    """
    spec = resolve_spec(spec)
    side = image_size if image_size is not None else cfg.data.resolution
    if side is None:
        raise ValueError(
            "proxy.data.resolution: needed to size the proxy spec; set it or pass image_size"
        )
    grid_scale = side / spec.image_size
    stages = tuple(_shrink_stage(i, s, cfg, grid_scale) for i, s in enumerate(spec.stages))
    shrunk = dataclasses.replace(
        spec,
        name=f"{spec.name}-proxy",
        image_size=side,
        stages=stages,
        drop_path_rate=(spec.drop_path_rate if cfg.drop_path_rate is None else cfg.drop_path_rate),
    )
    return ArchSpec.from_dict(shrunk.to_dict())  # validates the whole result


def _round_half_up(x: float) -> int:
    return math.floor(x + 0.5)


def _shrink_stage(index: int, stage: StageSpec, cfg: ProxyConfig, grid_scale: float) -> StageSpec:
    depth = max(1, _round_half_up(stage.depth * cfg.depth_mult))
    overrides = tuple(
        BlockOverride(_scale_grid(o.mixer, grid_scale), **_shrink_where(o, stage.depth, depth))
        for o in stage.overrides
    )
    mixer = _scale_grid(stage.mixer, grid_scale)
    mixers = [mixer] + [o.mixer for o in overrides]
    dim = _proxy_dim(index, stage.dim, cfg, mixers)
    return dataclasses.replace(stage, depth=depth, dim=dim, mixer=mixer, overrides=overrides)


def _shrink_where(override: BlockOverride, old: int, new: int) -> dict[str, Any]:
    if override.last is not None:
        most = new - 1 if override.last < old and new > 1 else new
        return {"last": min(max(1, _round_half_up(override.last * new / old)), most)}
    if override.every is not None:
        return {"every": min(override.every, new)}  # the interleaving kept where depth allows
    return {"blocks": tuple(sorted({(i % old) * new // old for i in override.blocks or ()}))}


def _scale_grid(mixer: MixerSpec, scale: float) -> MixerSpec:
    grid = mixer.knobs.get("grid_size")
    if grid is None:
        return mixer
    return MixerSpec(mixer.name, {**mixer.knobs, "grid_size": max(1, _round_half_up(grid * scale))})


def _channel_multiple(mixer: MixerSpec) -> int:
    """Channels per group a mixer needs so that its groups stay whole at any width."""
    knobs = {**get_mixer(mixer.name).defaults, **dict(mixer.knobs)}
    if mixer.name == "attention" and knobs["num_heads"] is None:
        return int(knobs["head_dim"])
    if mixer.name == "gnconv":
        return 2 ** (int(knobs["order"]) - 1)
    return 1


_MAX_WIDTH_TRIES = 16


def _proxy_dim(index: int, dim: int, cfg: ProxyConfig, mixers: list[MixerSpec]) -> int:
    q = math.lcm(cfg.dim_multiple, *(_channel_multiple(m) for m in mixers))
    width = max(q, _round_half_up(dim * cfg.width_mult / q) * q)
    errors = []
    for _ in range(_MAX_WIDTH_TRIES):
        try:
            for mixer in mixers:
                get_mixer(mixer.name).check(width, dict(mixer.knobs), where=f"stage {index}")
            return width
        except ValueError as err:
            errors.append(str(err))
            width += q
    raise SpecError(
        f"arch.stages[{index}].dim: no proxy width near {dim} x {cfg.width_mult} suits its "
        f"mixers; last error: {errors[-1]}"
    )


def train_proxy(
    spec: ArchSpec | str | dict,
    cfg: ProxyConfig,
    report: Report | None = None,
    bundle: DataBundle | None = None,
) -> ProxyResult:
    """Shrink ``spec`` with :func:`proxy_spec`, train it per ``cfg`` and return the outcome.

    After every epoch ``report(EpochMetrics)`` is called; returning ``False`` stops the run with
    status ``"pruned"`` (``None`` or ``True`` continue). Exceptions raised by ``report`` are the
    caller's and propagate. Training problems do not raise: they end the run as ``"failed"``
    with the reason. ``bundle`` reuses loaders built from ``cfg.data`` (e.g. across trials of
    one process); otherwise they are built here. On CPU, the same config gives the same
    history. An invalid ``cfg`` raises ``ValueError`` before anything runs.
    """
    cfg.validate()
    device = resolve_device(cfg.device)
    result = ProxyResult(status="completed", history=[])
    start = time.perf_counter()
    with torch_threads(cfg.threads):
        epochs = _lockstep(spec, cfg, device, bundle, result, start)
        while True:
            try:
                metrics, timed_out = next(epochs)
            except StopIteration:
                break
            except NonFiniteLossError as err:
                _fail(result, f"diverged: {err}")
                break
            except torch.OutOfMemoryError as err:
                _fail(result, f"out of memory: {str(err).splitlines()[0]}")
                break
            except Exception as err:  # any broken candidate must not end the search
                log.warning("proxy training of %s failed", spec, exc_info=True)
                _fail(result, f"{type(err).__name__}: {err}")
                break
            result.history.append(metrics)
            if report is not None and report(metrics) is False:
                result.status = "pruned"
                result.reason = f"pruned by the report callback after epoch {metrics.epoch}"
                break
            if timed_out:
                result.status = "timeout"
                result.reason = f"max_seconds={cfg.max_seconds} ran out in epoch {metrics.epoch}"
                break
        epochs.close()
    if device.type == "cuda":
        torch.cuda.empty_cache()  # give a failed or finished trial's memory back to the next
    result.seconds = time.perf_counter() - start
    return result


def _fail(result: ProxyResult, reason: str) -> None:
    result.status = "failed"
    result.reason = reason


def _lockstep(
    spec: ArchSpec | str | dict,
    cfg: ProxyConfig,
    device: torch.device,
    bundle: DataBundle | None,
    result: ProxyResult,
    start: float,
) -> Iterator[tuple[EpochMetrics, bool]]:
    """One epoch of every seed per step, yielded as their mean (one seed: its own figures)."""
    data = bundle if bundle is not None else build_loaders(cfg.data, device)
    runs = [
        _train_epochs(spec, dataclasses.replace(cfg, seed=cfg.seed + k), device, data, result)
        for k in range(cfg.seeds)
    ]
    try:
        while True:
            try:
                step = [next(run) for run in runs]
            except StopIteration:
                return
            per_seed = [m for m, _ in step]
            top1 = torch.tensor([m.val_top1 for m in per_seed], dtype=torch.float64)
            yield (
                EpochMetrics(
                    epoch=per_seed[0].epoch,
                    val_top1=float(top1.mean()),
                    val_loss=sum(m.val_loss for m in per_seed) / len(per_seed),
                    train_loss=sum(m.train_loss for m in per_seed) / len(per_seed),
                    elapsed_s=time.perf_counter() - start,
                    images_per_s=sum(m.images_per_s for m in per_seed) / len(per_seed),
                    val_size=per_seed[0].val_size,
                    seeds=len(per_seed),
                    val_top1_std=float(top1.std()) if len(per_seed) > 1 else None,
                ),
                any(timed_out for _, timed_out in step),
            )
    finally:
        for run in runs:
            run.close()


def _train_epochs(
    spec: ArchSpec | str | dict,
    cfg: ProxyConfig,
    device: torch.device,
    data: DataBundle,
    result: ProxyResult,
) -> Iterator[tuple[EpochMetrics, bool]]:
    """Build and train one seed, yielding each epoch's metrics and whether the time budget ran
    out with epochs left. A generator, so that the caller reports between epochs outside the
    code whose exceptions it turns into failures."""
    result.spec = proxy_spec(spec, cfg, image_size=data.image_size)
    seed_everything(cfg.seed)
    model = prepare_model(build_model(result.spec, data.num_classes), device, cfg.channels_last)
    result.params = sum(p.numel() for p in model.parameters())
    optimizer = create_optimizer(model, cfg.lr, cfg.weight_decay)
    scheduler = create_scheduler(
        optimizer, cfg.epochs, len(data.train_loader), cfg.warmup_epochs, cfg.min_lr, cfg.warmup_lr
    )
    loop = TrainLoop(
        model,
        optimizer,
        scheduler,
        create_loss(cfg.label_smoothing, mixup=None),
        device,
        forward=torch.compile(model) if cfg.compile else model,
        amp=cfg.amp,
        amp_dtype=cfg.amp_dtype,
        scaler=create_grad_scaler(device, cfg.amp, cfg.amp_dtype),
        clip_grad=cfg.clip_grad,
    )
    start = time.perf_counter()
    deadline = start + cfg.max_seconds if cfg.max_seconds is not None else None
    for epoch in range(cfg.epochs):
        data.train_loader.set_epoch(epoch)
        stats = loop.train_epoch(data.train_loader, deadline)
        val = evaluate(loop.forward, data.val_loader, device, cfg.amp, cfg.amp_dtype)
        metrics = EpochMetrics(
            epoch=epoch + 1,
            val_top1=val.top1,
            val_loss=val.loss,
            train_loss=stats.loss,
            elapsed_s=time.perf_counter() - start,
            images_per_s=stats.images_per_s,
            val_size=val.images,
        )
        log.debug("proxy %s", metrics)
        out_of_time = deadline is not None and time.perf_counter() > deadline
        yield metrics, stats.cut_short or (out_of_time and epoch + 1 < cfg.epochs)
        if stats.cut_short or out_of_time:
            return
