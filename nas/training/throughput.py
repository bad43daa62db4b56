"""Throughput of a full-size architecture, measured the way timm's ``benchmark.py`` does.

Warm-up steps first (cuDNN autotuning, ``torch.compile`` and allocator growth are not timed),
then ``repeats`` timed blocks of ``steps`` iterations each, with ``torch.cuda.synchronize``
around every block: CUDA runs asynchronously, and timing without synchronisation measures the
launch queue, not the GPU (it hides 7x differences). The figure is the median over blocks, with
the spread reported so that a noisy host shows up instead of silently reordering a ranking.
A round whose interquartile range exceeds ``max_relative_iqr`` of its median is measured again
(up to ``max_rounds``) and the quietest round is kept: other work on the host only slows blocks
down, so the least disturbed round is the best estimate of the network's own speed.

Peak memory: on CUDA, ``torch.cuda.max_memory_allocated`` over one step. On CPU there is no
allocator counter, so one extra, untimed eager step runs under a dispatch mode that adds up the
bytes of every live tensor storage (parameters, buffers, gradients and optimizer state
included) and records the peak; allocator overhead and the Python heap are not counted.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.weak import WeakIdKeyDictionary

from nas.arch.spec import ArchSpec
from nas.models import build_model, resolve_spec
from nas.training.recipe import (
    autocast,
    create_optimizer,
    prepare_model,
    resolve_device,
    torch_threads,
)

MODES = ("inference", "train")


@dataclass(frozen=True)
class Throughput:
    """Images per second of one architecture under one setting; ``images_per_s`` is the median
    over ``repeats`` timed blocks, ``per_repeat`` every block's figure."""

    images_per_s: float
    min_images_per_s: float
    max_images_per_s: float
    iqr_images_per_s: float
    q25_images_per_s: float
    q75_images_per_s: float
    rounds: int
    per_repeat: tuple[float, ...]
    peak_memory_bytes: int
    memory_kind: str
    mode: str
    batch: int
    resolution: int
    device: str
    device_name: str
    amp: bool
    compile: bool
    channels_last: bool
    threads: int | None

    @property
    def spread(self) -> float:
        """``(max - min) / median`` of the repeats: 0.1 means the blocks differed by 10%."""
        return (self.max_images_per_s - self.min_images_per_s) / self.images_per_s

    @property
    def relative_iqr(self) -> float:
        """Interquartile range over the median: the noise the re-measurement rule bounds."""
        return self.iqr_images_per_s / self.images_per_s

    @property
    def peak_memory_mb(self) -> float:
        return self.peak_memory_bytes / 2**20


def measure_throughput(
    spec: ArchSpec | str | dict,
    device: str | torch.device = "auto",
    resolution: int | None = None,
    batch: int = 64,
    amp: bool = True,
    compile: bool = False,
    channels_last: bool = True,
    mode: str = "inference",
    *,
    warmup: int = 3,
    steps: int = 5,
    repeats: int = 5,
    threads: int | None = None,
    num_classes: int = 1000,
    max_relative_iqr: float | None = None,
    max_rounds: int = 1,
) -> Throughput:
    """Measure ``spec`` (the full-size architecture, not a proxy) at ``resolution`` (default:
    ``spec.image_size``). ``mode="train"`` times forward, backward and an AdamW step;
    ``"inference"`` a forward pass without autograd. On CPU ``threads`` fixes the intra-op
    thread count (default: every core this process may use) and the previous one is restored.
    Raises ``torch.OutOfMemoryError`` when the batch does not fit. A round of ``repeats`` blocks
    with a relative IQR above ``max_relative_iqr`` is repeated, up to ``max_rounds`` rounds; the
    round with the smallest relative IQR is reported (``rounds`` says how many ran)."""
    if mode not in MODES:
        raise ValueError(f"mode: expected one of {MODES}, found {mode!r}")
    checks = (("batch", batch), ("steps", steps), ("repeats", repeats), ("max_rounds", max_rounds))
    for name, value in checks:
        if value < 1:
            raise ValueError(f"{name}: expected an integer >= 1, found {value!r}")
    spec = resolve_spec(spec)
    dev = resolve_device(device)
    side = resolution if resolution is not None else spec.image_size
    cpu_threads = None
    if dev.type == "cpu":
        cpu_threads = threads if threads is not None else _usable_cores()
    with torch_threads(cpu_threads), torch.random.fork_rng(devices=[]):  # caller's RNG intact
        model = prepare_model(build_model(spec, num_classes=num_classes), dev, channels_last)
        runner = _Runner(model, mode, dev, amp, compile)
        generator = torch.Generator(device=dev).manual_seed(0)
        x = torch.randn(batch, spec.in_chans, side, side, device=dev, generator=generator)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        y = torch.randint(0, num_classes, (batch,), device=dev, generator=generator)
        for _ in range(warmup):
            runner.step(x, y)
        best: tuple[float, tuple[float, ...]] | None = None
        rounds = 0
        while rounds < max_rounds:
            rounds += 1
            per_repeat = tuple(
                batch * steps / _time_block(runner, x, y, steps, dev) for _ in range(repeats)
            )
            noise = _relative_iqr(per_repeat)
            if best is None or noise < best[0]:
                best = (noise, per_repeat)
            if max_relative_iqr is None or noise <= max_relative_iqr:
                break
        peak, kind = _peak_memory(runner, x, y, dev)
    per_repeat = best[1]
    q25, median, q75 = _quartiles(per_repeat)
    return Throughput(
        images_per_s=median,
        min_images_per_s=min(per_repeat),
        max_images_per_s=max(per_repeat),
        iqr_images_per_s=q75 - q25,
        q25_images_per_s=q25,
        q75_images_per_s=q75,
        rounds=rounds,
        per_repeat=per_repeat,
        peak_memory_bytes=peak,
        memory_kind=kind,
        mode=mode,
        batch=batch,
        resolution=side,
        device=str(dev),
        device_name=_device_name(dev),
        amp=amp and dev.type == "cuda",
        compile=compile,
        channels_last=channels_last,
        threads=cpu_threads,
    )


def _quartiles(values: tuple[float, ...]) -> tuple[float, float, float]:
    if len(values) == 1:
        return (values[0],) * 3
    q25, median, q75 = statistics.quantiles(values, n=4)
    return q25, statistics.median(values), q75


def _relative_iqr(values: tuple[float, ...]) -> float:
    q25, median, q75 = _quartiles(values)
    return (q75 - q25) / median


def _usable_cores() -> int:
    """Cores this process may run on (the container's share, not the host's count)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _device_name(device: torch.device) -> str:
    """The GPU's or CPU's model name: a throughput figure means little without it."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


class _Runner:
    """One benchmark step of ``mode``; keeps the eager model for the CPU memory pass."""

    def __init__(self, model: nn.Module, mode: str, device: torch.device, amp: bool, compile: bool):
        self.eager = model
        self.model: Callable[[torch.Tensor], torch.Tensor] = (
            torch.compile(model) if compile else model
        )
        self.mode = mode
        self.device = device
        self.amp = amp
        if mode == "train":
            model.train()
            self.optimizer: torch.optim.Optimizer | None = create_optimizer(model, 1e-4, 0.05)
        else:
            model.eval()
            self.optimizer = None

    def step(self, x: torch.Tensor, y: torch.Tensor, eager: bool = False) -> None:
        model = self.eager if eager else self.model
        if self.optimizer is None:
            with torch.no_grad(), autocast(self.device, self.amp):
                model(x)
            return
        with autocast(self.device, self.amp):
            loss = nn.functional.cross_entropy(model(x).float(), y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_block(
    runner: _Runner, x: torch.Tensor, y: torch.Tensor, steps: int, device: torch.device
) -> float:
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        runner.step(x, y)
    _sync(device)
    return time.perf_counter() - start


def _peak_memory(
    runner: _Runner, x: torch.Tensor, y: torch.Tensor, device: torch.device
) -> tuple[int, str]:
    if device.type == "cuda":
        _sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        runner.step(x, y)
        _sync(device)
        return torch.cuda.max_memory_allocated(device), "cuda_max_memory_allocated"
    baseline = [*runner.eager.parameters(), *runner.eager.buffers(), x, y]
    baseline += [p.grad for p in runner.eager.parameters() if p.grad is not None]
    if runner.optimizer is not None:
        baseline += [v for s in runner.optimizer.state.values() for v in tree_leaves(s)]
    tracker = _LiveStorageBytes([t for t in baseline if isinstance(t, torch.Tensor)])
    with tracker:
        runner.step(x, y, eager=True)
    return tracker.peak, "cpu_live_tensor_bytes"


class _LiveStorageBytes(TorchDispatchMode):
    """Peak total size of the live tensor storages: the ``baseline`` ones plus every storage an
    op creates inside the mode, each counted once and released when it is freed."""

    def __init__(self, baseline: list[torch.Tensor]):
        super().__init__()
        self.live = 0
        self.peak = 0
        self._seen: WeakIdKeyDictionary = WeakIdKeyDictionary()
        for tensor in baseline:
            self._track(tensor)

    def _track(self, tensor: torch.Tensor) -> None:
        storage = tensor.untyped_storage()
        if storage in self._seen:
            return
        size = storage.nbytes()
        self._seen[storage] = weakref.finalize(storage, self._release, size)
        self.live += size
        self.peak = max(self.peak, self.live)

    def _release(self, size: int) -> None:
        self.live -= size

    def __exit__(self, *exc: Any) -> None:
        # Storages that outlive the measurement (the parameters) must not call back into it.
        for finalizer in self._seen.values():
            finalizer.detach()
        super().__exit__(*exc)

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None):
        out = func(*args, **(kwargs or {}))
        for leaf in tree_leaves(out):
            if isinstance(leaf, torch.Tensor):
                self._track(leaf)
        return out
