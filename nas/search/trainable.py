"""The Ray Tune trainable: measure an architecture, check constraints, then proxy-train it.

It runs on a Ray worker and never touches the database: every fact travels to the driver as a
``tune.report`` result with a ``phase`` (``measured``, ``epoch``, ``final``), and the driver is
the store's only writer. Measurements already in the store arrive in the trial's config, so an
architecture sampled twice is measured once.
"""

from __future__ import annotations

import dataclasses
import time
import traceback
from dataclasses import dataclass
from typing import Any

from ray import tune

from nas import units
from nas.arch.spec import ArchSpec
from nas.models.profile import profile
from nas.search.config import Constraints, ThroughputSettings
from nas.search.device_lock import DeviceLease
from nas.training.proxy import ProxyConfig, train_proxy
from nas.training.throughput import measure_throughput


@dataclass(frozen=True)
class TrialSettings:
    """What every trial of a search shares (sent once to the workers)."""

    proxy: ProxyConfig
    throughput: ThroughputSettings
    constraints: Constraints


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


def run_trial(config: dict[str, Any], settings: TrialSettings) -> None:
    """Ray Tune function trainable for one sampled architecture."""
    lease = DeviceLease(tune.get_context().get_trial_id())
    try:
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
