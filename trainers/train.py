"""Full training of an architecture: the Hydra app behind ``nas train``.

    python -m trainers.train model.arch=caformer_s18 data.name=imagefolder data.path=/imagenet
    python -m trainers.train --config-path /abs/export/dir --config-name train
    nas train export/dir/train.yaml epochs=100

The config schema is :class:`TrainConfig`, registered in Hydra's ConfigStore as
``train_schema`` (also the default primary config, so no YAML is needed); an exported
``train.yaml`` lists it in its defaults, which type-checks every key. The recipe is the
proxy trainer's (:mod:`nas.training.recipe`) plus what long runs need: Mixup/CutMix, model EMA,
stochastic depth, gradient clipping.

Every epoch appends a row to ``metrics.jsonl`` and overwrites ``checkpoint.pt`` in the output
directory (``output_dir``, default Hydra's run dir). A checkpoint holds the model (``model``),
its EMA (``model_ema``, timm's name, so timm's loaders take the EMA weights), optimizer,
scheduler, loss-scaler and update counter, the epoch, and every RNG state; the loaders' state is
their epoch (their order and augmentation are a function of seed and epoch). The run's spec,
with the data's number of classes, is written beside it as ``arch.yaml``, so
``timm.create_model("nas_metaformer", arch="<dir>/arch.yaml", pretrained=True,
pretrained_cfg_overlay=dict(file="<dir>/checkpoint.pt"))`` rebuilds the trained model.
With ``resume=auto`` a run whose output directory holds a checkpoint continues from it, and on
CPU it continues bit-identically: the same losses and final weights as an uninterrupted run.
(On CUDA, nondeterministic kernels make runs differ slightly, resumed or not.)
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from timm.utils import ModelEmaV3
from tqdm import tqdm

from nas.arch.spec import ArchSpec
from nas.data import DataConfig, build_loaders
from nas.errors import NasError
from nas.models import build_model, resolve_spec
from nas.training.checkpoint import capture_rng, load_checkpoint, restore_rng, save_checkpoint
from nas.training.device import check_amp_dtype, check_device
from nas.training.loop import TrainLoop, evaluate
from nas.training.recipe import (
    create_grad_scaler,
    create_loss,
    create_mixup,
    create_optimizer,
    create_scheduler,
    prepare_model,
    resolve_device,
    seed_everything,
)
from nas.typed_config import ConfigError

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"
ARCH = "arch.yaml"


@dataclass
class ModelConfig:
    """``arch``: preset name or ``arch.yaml`` path; a relative path is looked up next to the
    primary config file first (so an export folder can move), then in the working directory.
    ``drop_path_rate``: ``null`` keeps the spec's."""

    arch: str = "convformer_s18"
    drop_path_rate: float | None = None


@dataclass
class OptimConfig:
    """AdamW with linear warmup and cosine decay (stepped per update); ``clip_grad`` is the max
    global gradient norm (``null``: no clipping)."""

    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 5.0
    min_lr: float = 1e-6
    warmup_lr: float = 1e-6
    clip_grad: float | None = None


@dataclass
class MixupConfig:
    """timm Mixup/CutMix; both alphas 0 turns it off (then plain label smoothing is used)."""

    mixup_alpha: float = 0.8
    cutmix_alpha: float = 1.0
    prob: float = 1.0
    switch_prob: float = 0.5
    label_smoothing: float = 0.1


@dataclass
class EmaConfig:
    """Model EMA (timm ``ModelEmaV3``), evaluated every epoch next to the raw model."""

    enabled: bool = True
    decay: float = 0.9998
    warmup: bool = True


@dataclass
class TrainConfig:
    """The whole run. ``resume``: ``auto`` continues from ``<output_dir>/checkpoint.pt`` when it
        exists, ``none`` always starts afresh, anything else is a checkpoint path. ``stop_after``
        ends this invocation after that many epochs while the schedule still spans ``epochs`` (for
        time-limited jobs: resume later). ``progress``: a progress bar over each epoch's batches on
    stderr (the epoch's line is logged when it ends)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    mixup: MixupConfig = field(default_factory=MixupConfig)
    ema: EmaConfig = field(default_factory=EmaConfig)
    epochs: int = 300
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    amp_dtype: str = "bfloat16"
    compile: bool = False
    channels_last: bool = True
    output_dir: str | None = None
    resume: str = "auto"
    stop_after: int | None = None
    progress: bool = True

    @classmethod
    def from_container(cls, data: dict[str, Any]) -> TrainConfig:
        """From a resolved OmegaConf container (Hydra's schema has already checked the keys)."""
        sections = {
            "model": ModelConfig,
            "optim": OptimConfig,
            "mixup": MixupConfig,
            "ema": EmaConfig,
        }
        values = {key: section(**data[key]) for key, section in sections.items()}
        values["data"] = DataConfig.from_dict(data["data"])
        values.update({k: v for k, v in data.items() if k not in values})
        return cls(**values)


ConfigStore.instance().store(name="train_schema", node=TrainConfig)
# ``${nas_or:a,b}``: ``a`` unless it is null or empty (an export's ``hydra.run.dir`` follows
# ``output_dir`` when one is given, and stays Hydra's default otherwise)
OmegaConf.register_new_resolver("nas_or", lambda value, fallback: value or fallback, replace=True)


def resolve_arch(arch: str, config_dir: Path | None) -> ArchSpec:
    """The spec of ``model.arch`` (see :class:`ModelConfig` for how paths are looked up)."""
    path = Path(arch)
    if config_dir is not None and not path.is_absolute() and (config_dir / path).is_file():
        return resolve_spec(config_dir / path)
    return resolve_spec(arch)


def train(cfg: TrainConfig, output_dir: str | Path, config_dir: Path | None = None) -> list[dict]:
    """Train per ``cfg`` into ``output_dir``; returns every epoch's metrics row so far
    (including those of the run this one resumed)."""
    _check(cfg)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device(cfg.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    seed_everything(cfg.seed)
    data = build_loaders(cfg.data, device)
    spec = resolve_arch(cfg.model.arch, config_dir)
    if spec.num_classes not in (None, data.num_classes):
        log.info(
            "the data has %d classes, the spec says %d: the head follows the data",
            data.num_classes,
            spec.num_classes,
        )
    spec = dataclasses.replace(spec, num_classes=data.num_classes)
    if cfg.model.drop_path_rate is not None:
        spec = dataclasses.replace(spec, drop_path_rate=cfg.model.drop_path_rate)
    spec.save(out / ARCH)
    model = prepare_model(build_model(spec), device, cfg.channels_last)
    ema = (
        ModelEmaV3(model, decay=cfg.ema.decay, use_warmup=cfg.ema.warmup)
        if cfg.ema.enabled
        else None
    )
    optimizer = create_optimizer(model, cfg.optim.lr, cfg.optim.weight_decay)
    scheduler = create_scheduler(
        optimizer,
        cfg.epochs,
        len(data.train_loader),
        cfg.optim.warmup_epochs,
        cfg.optim.min_lr,
        cfg.optim.warmup_lr,
    )
    m = cfg.mixup
    mixup = create_mixup(
        data.num_classes, m.mixup_alpha, m.cutmix_alpha, m.prob, m.switch_prob, m.label_smoothing
    )
    scaler = create_grad_scaler(device, cfg.amp, cfg.amp_dtype)
    loop = TrainLoop(
        model,
        optimizer,
        scheduler,
        create_loss(m.label_smoothing, mixup),
        device,
        forward=torch.compile(model) if cfg.compile else model,
        amp=cfg.amp,
        amp_dtype=cfg.amp_dtype,
        scaler=scaler,
        mixup=mixup,
        ema=ema,
        clip_grad=cfg.optim.clip_grad,
    )
    start_epoch = 0
    checkpoint = _resume_path(cfg.resume, out / CHECKPOINT)
    if checkpoint is not None:
        # On the CPU: RNG states must stay CPU tensors; load_state_dict moves the rest.
        state = load_checkpoint(checkpoint, map_location="cpu")
        model.load_state_dict(state["model"])
        if ema is not None:
            ema.module.load_state_dict(state["model_ema"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        loop.num_updates = state["num_updates"]
        start_epoch = state["epoch"]
        restore_rng(state["rng"])  # last: nothing may draw between restore and training
        log.info("resumed from %s after epoch %d", checkpoint, start_epoch)
    history = _read_metrics(out / METRICS, keep_until=start_epoch)
    end_epoch = cfg.epochs if cfg.stop_after is None else min(cfg.epochs, cfg.stop_after)
    config = OmegaConf.to_container(OmegaConf.structured(cfg))
    for epoch in range(start_epoch, end_epoch):
        started = time.perf_counter()
        data.train_loader.set_epoch(epoch)
        batches = tqdm(
            data.train_loader,
            desc=f"epoch {epoch + 1}/{cfg.epochs}",
            unit="batch",
            leave=False,
            mininterval=1.0,
            disable=not cfg.progress,
        )
        stats = loop.train_epoch(batches)
        row: dict[str, Any] = {
            "epoch": epoch + 1,
            "train_loss": stats.loss,
            "lr": optimizer.param_groups[0]["lr"],
            "images_per_s": stats.images_per_s,
        }
        val = evaluate(loop.forward, data.val_loader, device, cfg.amp, cfg.amp_dtype)
        row.update(val_top1=val.top1, val_loss=val.loss)
        if ema is not None:
            ema_val = evaluate(ema.module, data.val_loader, device, cfg.amp, cfg.amp_dtype)
            row.update(ema_val_top1=ema_val.top1, ema_val_loss=ema_val.loss)
        row["epoch_s"] = time.perf_counter() - started
        history.append(row)
        with (out / METRICS).open("a") as f:
            f.write(json.dumps(row) + "\n")
        save_checkpoint(
            {
                "epoch": epoch + 1,
                "num_updates": loop.num_updates,
                "model": model.state_dict(),
                "model_ema": ema.module.state_dict() if ema is not None else None,
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "rng": capture_rng(),
                "arch": spec.to_dict(),
                "config": config,
            },
            out / CHECKPOINT,
        )
        log.info("epoch %d/%d %s", epoch + 1, cfg.epochs, _fmt(row))
    return history


def _check(cfg: TrainConfig) -> None:
    """Reject settings that would fail only later, mid-run."""
    check_device(cfg.device, "device", local=True)
    for key in ("epochs", "stop_after"):
        value = getattr(cfg, key)
        if value is not None and value < 1:
            raise ConfigError(f"{key}: expected an integer >= 1, found {value!r}")
    check_amp_dtype(cfg.amp_dtype, "amp_dtype")
    if cfg.mixup.mixup_alpha > 0 or cfg.mixup.cutmix_alpha > 0:
        if cfg.data.batch_size % 2 or not cfg.data.drop_last:
            raise ConfigError(
                "data.batch_size: Mixup/CutMix pairs samples within a batch, so it needs an even "
                f"batch_size and drop_last=true; found {cfg.data.batch_size} and "
                f"drop_last={cfg.data.drop_last}"
            )


def _resume_path(resume: str, default: Path) -> Path | None:
    if resume == "none":
        return None
    if resume == "auto":
        return default if default.exists() else None
    path = Path(resume)
    if not path.is_file():
        raise ConfigError(f"resume: checkpoint {resume!r} does not exist")
    return path


def _read_metrics(path: Path, keep_until: int) -> list[dict]:
    """Rows of a resumed run up to its checkpoint's epoch; later rows (written before a crash
    that lost their checkpoint) are dropped from the file, since those epochs run again."""
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r["epoch"] <= keep_until]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


def _fmt(row: dict[str, Any]) -> str:
    return " ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
        for k, v in row.items()
        if k != "epoch"
    )


def _hydra_config_dir() -> Path | None:
    """Directory of the primary config file, if it came from one."""
    for source in HydraConfig.get().runtime.config_sources:
        if source.provider == "main" and source.schema == "file" and source.path:
            return Path(source.path)
    return None


def _program() -> str:
    """How the user ran this app, for its error lines: ``nas train`` sets ``argv[0]`` to that."""
    return sys.argv[0] if sys.argv[0] == "nas train" else "trainers.train"


@hydra.main(version_base="1.3", config_path=None, config_name="train_schema")
def main(cfg: DictConfig) -> None:
    train_cfg = TrainConfig.from_container(OmegaConf.to_container(cfg, resolve=True))
    output_dir = train_cfg.output_dir or HydraConfig.get().runtime.output_dir
    try:
        train(train_cfg, output_dir, _hydra_config_dir())
    except NasError as err:  # bad input: one line, not Hydra's report of a crashed job
        print(f"{_program()}: error: {err}", file=sys.stderr)
        sys.exit(err.exit_status)


if __name__ == "__main__":
    from trainers.allowlist import check_hydra_command

    try:
        check_hydra_command(sys.argv[1:])
    except NasError as err:
        print(f"{_program()}: error: {err}", file=sys.stderr)
        sys.exit(2)
    main()
