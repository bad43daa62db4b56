"""The Ray Tune trainable: measure an architecture, check constraints, then proxy-train it.

It runs on a Ray worker and never touches the database: every fact travels to the driver as a
``tune.report`` result with a ``phase`` (``placed``: which node and device it runs on,
``measured``, ``epoch``, ``final``), and the driver is the store's only writer. Measurements
already in the store arrive in the trial's config, so an architecture sampled twice is measured
once.

A measurement is identified by the architecture and the measurement setting, not by the node
or device that took it: the first trial of an architecture measures it wherever Ray placed it,
and every later one, on any node, reuses it (where it ran is stored beside it). Throughputs
compare only between nodes of one device type; ``resources.custom`` keeps trials on such nodes.
"""

from __future__ import annotations

import dataclasses
import os
import time
import traceback
from dataclasses import dataclass
from typing import Any

import ray
from ray import tune

from nas import units
from nas.arch.spec import ArchSpec
from nas.models.profile import profile
from nas.search.config import Constraints, ThroughputSettings
from nas.search.device_lock import DeviceLease, LockUser, trial_device
from nas.training.proxy import ProxyConfig, train_proxy
from nas.training.throughput import measure_throughput


@dataclass(frozen=True)
class TrialSettings:
    """What every trial of a search shares (sent once to the workers)."""

    proxy: ProxyConfig
    throughput: ThroughputSettings
    constraints: Constraints
    locks: LockUser


def constraint_violation(
    constraints: Constraints, params: int, macs: int, images_per_s: float | None
) -> str | None:
    """Why an architecture is out of bounds, or None."""
    if constraints.max_params_m is not None and params / 1e6 > constraints.max_params_m:
        return f"constraint: {units.params(params)} > max_params_m {constraints.max_params_m}"
    if constraints.max_gmacs is not None and macs / 1e9 > constraints.max_gmacs:
        return f"constraint: {units.macs(macs)} > max_gmacs {constraints.max_gmacs}"
    if (
        images_per_s is not None
        and constraints.min_throughput is not None
        and images_per_s < constraints.min_throughput
    ):
        return f"constraint: {images_per_s:.1f} img/s < min_throughput {constraints.min_throughput}"
    return None


def _measure(
    spec: ArchSpec, cached: dict[str, Any], settings: TrialSettings, lease: DeviceLease
) -> dict:
    out = dict(cached)
    if out.get("params") is None or out.get("macs") is None:
        prof = profile(spec)
        out.update(params=prof.params, macs=prof.macs)
    if constraint_violation(settings.constraints, out["params"], out["macs"], None):
        return out
    if out.get("images_per_s") is None:
        t = settings.throughput
        with lease.exclusive():
            start = time.perf_counter()
            result = measure_throughput(
                spec,
                device=t.device,
                resolution=t.resolution,
                batch=t.batch,
                amp=t.precision == "bf16",
                compile=t.compile,
                channels_last=t.channels_last,
                mode=t.mode,
                threads=t.threads,
                repeats=t.repeats,
                max_relative_iqr=t.max_relative_iqr,
                max_rounds=t.max_rounds,
            )
            seconds = time.perf_counter() - start
        out.update(
            images_per_s=result.images_per_s,
            spread={
                "min": result.min_images_per_s,
                "max": result.max_images_per_s,
                "q25": result.q25_images_per_s,
                "q75": result.q75_images_per_s,
                "iqr": result.iqr_images_per_s,
                "relative": result.spread,
                "relative_iqr": result.relative_iqr,
                "rounds": result.rounds,
                "repeats": t.repeats,
                "seconds": seconds,  # what a benchmark replay charges for the measurement
            },
            peak_memory_mb=result.peak_memory_mb,
            device_name=result.device_name,
            newly_measured=True,
        )
    return out


def cuda_index(gpu_id: str, visible: str | None) -> int:
    """The torch index of Ray's GPU ``gpu_id`` in a process whose ``CUDA_VISIBLE_DEVICES`` is
    ``visible`` (Ray sets it to the trial's GPUs; unset, every GPU is visible by its id)."""
    if not visible:
        return int(gpu_id)
    ids = [v.strip() for v in visible.split(",")]
    return ids.index(gpu_id) if gpu_id in ids else 0


def assigned_device(configured: str, gpu_ids: list[str]) -> str:
    """``auto`` and ``cuda`` made the GPU Ray assigned the trial; anything else as configured
    (``auto`` without a usable GPU stays ``auto``, i.e. the CPU)."""
    if configured not in ("auto", "cuda") or not gpu_ids:
        return configured
    import torch

    if not torch.cuda.is_available():
        return configured
    return f"cuda:{cuda_index(gpu_ids[0], os.environ.get('CUDA_VISIBLE_DEVICES'))}"


def _placed(settings: TrialSettings) -> tuple[TrialSettings, DeviceLease, dict[str, Any]]:
    """The settings with the devices Ray assigned, the lease on that device's lock, and the
    ``placed`` result that tells the driver where the trial runs."""
    context = ray.get_runtime_context()
    gpu_ids = [str(i) for i in context.get_accelerator_ids().get("GPU", [])]
    settings = dataclasses.replace(
        settings,
        proxy=dataclasses.replace(
            settings.proxy, device=assigned_device(settings.proxy.device, gpu_ids)
        ),
        throughput=dataclasses.replace(
            settings.throughput, device=assigned_device(settings.throughput.device, gpu_ids)
        ),
    )
    lease = DeviceLease(tune.get_context().get_trial_id(), settings.locks, trial_device(gpu_ids))
    placed = {
        "phase": "placed",
        "node_id": context.get_node_id(),
        "node_host": ray.util.get_node_ip_address(),
        "pid": os.getpid(),
        "gpu_ids": gpu_ids,
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "lock": lease.name,
        "proxy_device": settings.proxy.device,
        "throughput_device": settings.throughput.device,
    }
    return settings, lease, placed


def run_trial(config: dict[str, Any], settings: TrialSettings) -> None:
    """Ray Tune function trainable for one sampled architecture."""
    try:
        settings, lease, placed = _placed(settings)
        tune.report(placed)
        final = _measure_and_train(config, settings, lease)
    except Exception as err:  # a trial's failure must never stop the search
        final = {"status": "failed", "reason": _reason(err)}
    tune.report({"phase": "final", **final})


def _measure_and_train(
    config: dict[str, Any], settings: TrialSettings, lease: DeviceLease
) -> dict[str, Any]:
    spec = ArchSpec.from_dict(config["spec"])
    measured = _measure(spec, config.get("cached") or {}, settings, lease)
    tune.report({"phase": "measured", **measured})
    violation = constraint_violation(
        settings.constraints, measured["params"], measured["macs"], measured.get("images_per_s")
    )
    if violation:
        return {"status": "failed", "reason": violation}

    def report(metrics) -> bool:
        lease.release()
        tune.report({"phase": "epoch", **dataclasses.asdict(metrics)})
        lease.acquire_shared()
        return True

    with lease.shared():
        result = train_proxy(spec, settings.proxy, report=report)
    last = result.history[-1] if result.history else None
    return {
        "status": result.status,
        "reason": result.reason,
        "accuracy": result.final_top1,
        "val_size": last.val_size if last else None,
        "seeds": last.seeds if last else None,
        "accuracy_std": last.val_top1_std if last else None,
    }


def _reason(err: BaseException) -> str:
    last = traceback.extract_tb(err.__traceback__)[-1:] if err.__traceback__ else []
    where = f" (at {last[0].filename}:{last[0].lineno})" if last else ""
    return f"{type(err).__name__}: {err}{where}"
