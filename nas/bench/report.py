"""Aggregate replays into the comparison the benchmark reports: per method, the normalised
hypervolume curve (IQM over seeds, bootstrap 95% band), HV at 25/50/100% of the budget, and
the simulated time needed to reach random search's final HV as a ratio to random's own time.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nas.bench.metrics import Estimate, HypervolumeScale, bootstrap_iqm, iqm, time_to_reach
from nas.bench.simulate import Replay, hypervolume_trace, on_grid
from nas.bench.table import BenchTable

FRACTIONS = (0.25, 0.5, 1.0)
RESAMPLES = 2000


@dataclass(frozen=True)
class MethodSummary:
    method: str
    runs: int
    hv_at: dict[float, Estimate]
    time_ratio: Estimate | None  # None for the baseline itself
    trials: float  # median over seeds: trials started
    pruned: float
    full_trainings: float
    sampler_seconds: float  # median wall time of one replay (the sampler's own cost)


@dataclass(frozen=True)
class Comparison:
    grid: np.ndarray
    curves: dict[str, np.ndarray]  # method -> (seeds, grid) normalised HV
    summaries: list[MethodSummary]
    baseline: str
    target: float  # the baseline's final IQM hypervolume


def compare(
    replays: Sequence[Replay],
    table: BenchTable,
    budget_s: float,
    table_seed: int,
    baseline: str = "random",
    grid_points: int = 201,
    seed: int = 0,
) -> Comparison:
    scale = HypervolumeScale.of_table(table, table_seed)
    grid = np.linspace(0.0, budget_s, grid_points)
    methods = list(dict.fromkeys(r.method for r in replays))
    curves = {
        m: np.array(
            [
                on_grid(*hypervolume_trace(r, table, scale, table_seed), grid)
                for r in replays
                if r.method == m
            ]
        )
        for m in methods
    }
    rng = np.random.default_rng(seed)
    base = curves.get(baseline)
    target = float(iqm(base[:, -1])) if base is not None else float("nan")
    base_boot = _boot_curves(base, rng) if base is not None else None
    summaries = []
    for m in methods:
        runs = [r for r in replays if r.method == m]
        hv_at = {}
        for f in FRACTIONS:
            column = curves[m][:, min(len(grid) - 1, int(round(f * (len(grid) - 1))))]
            value, low, high = bootstrap_iqm(column, RESAMPLES, seed)
            hv_at[f] = Estimate(float(value[0]), float(low[0]), float(high[0]))
        ratio = None
        if base is not None and m != baseline:
            ratio = _time_ratio(grid, curves[m], base, _boot_curves(curves[m], rng), base_boot)
        summaries.append(
            MethodSummary(
                method=m,
                runs=len(runs),
                hv_at=hv_at,
                time_ratio=ratio,
                trials=float(np.median([r.trials for r in runs])),
                pruned=float(np.median([r.pruned for r in runs])),
                full_trainings=float(np.median([len(r.completions) for r in runs])),
                sampler_seconds=float(np.median([r.wall_seconds for r in runs])),
            )
        )
    return Comparison(grid, curves, summaries, baseline, target)


def _boot_curves(curves: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """IQM curves of ``RESAMPLES`` bootstrap resamples of the seeds: (resamples, grid)."""
    picks = rng.integers(0, len(curves), size=(RESAMPLES, len(curves)))
    return iqm(curves[picks], axis=1)


def _time_ratio(
    grid: np.ndarray,
    curves: np.ndarray,
    base: np.ndarray,
    boot: np.ndarray,
    base_boot: np.ndarray,
) -> Estimate:
    """Time for the method's IQM curve to reach the baseline's final IQM HV, over the time the
    baseline's own IQM curve needs; the interval resamples both methods' seeds. inf: never
    within the budget."""

    def ratio(curve: np.ndarray, base_curve: np.ndarray) -> float:
        target = base_curve[-1]
        own = time_to_reach(grid, base_curve, target)
        return time_to_reach(grid, curve, target) / max(own, 1e-9)

    value = ratio(iqm(curves, axis=0), iqm(base, axis=0))
    ratios = np.array([ratio(c, b) for c, b in zip(boot, base_boot, strict=True)])
    low, high = np.percentile(ratios, [2.5, 97.5], method="closest_observation")
    return Estimate(value, float(low), float(high))


def write_curves(comparison: Comparison, path: str | Path) -> None:
    """Long-format CSV: method, seed, time_s, hv (every seed's curve), plus per method the
    IQM and its bootstrap band as seed = ``iqm`` / ``low`` / ``high`` rows."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["method", "seed", "time_s", "hv"])
        for method, curves in comparison.curves.items():
            for seed, curve in enumerate(curves):
                out.writerows(
                    [method, seed, f"{t:.1f}", f"{v:.5f}"]
                    for t, v in zip(comparison.grid, curve, strict=True)
                )
            value, low, high = bootstrap_iqm(curves, RESAMPLES)
            for label, row in (("iqm", value), ("low", low), ("high", high)):
                out.writerows(
                    [method, label, f"{t:.1f}", f"{v:.5f}"]
                    for t, v in zip(comparison.grid, row, strict=True)
                )


def plot(comparison: Comparison, path: str | Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    minutes = comparison.grid / 60
    for method, curves in comparison.curves.items():
        value, low, high = bootstrap_iqm(curves, RESAMPLES)
        (line,) = ax.plot(minutes, value, label=method, lw=2 if "pareto_sh" in method else 1.3)
        ax.fill_between(minutes, low, high, color=line.get_color(), alpha=0.15, lw=0)
    if np.isfinite(comparison.target):
        ax.axhline(comparison.target, color="grey", ls=":", lw=1)
    ax.set_xlabel("simulated time (min)")
    ax.set_ylabel("normalised hypervolume (IQM, 95% CI)")
    ax.set_title(title, fontsize=10)
    ax.set_ylim(0.0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def summary_rows(comparison: Comparison) -> list[list[str]]:
    """The results table: method, HV at 25/50/100%, time ratio, trials, sampler seconds."""
    rows = []
    for s in comparison.summaries:
        ratio = "1 (baseline)" if s.time_ratio is None else _ratio_text(s.time_ratio)
        rows.append(
            [
                s.method,
                *(str(s.hv_at[f]) for f in FRACTIONS),
                ratio,
                f"{s.trials:.0f} / {s.pruned:.0f} / {s.full_trainings:.0f}",
                f"{s.sampler_seconds:.1f}",
            ]
        )
    return rows


SUMMARY_HEADER = [
    "method",
    "HV @25%",
    "HV @50%",
    "HV @100%",
    "time to random's final HV (x random's)",
    "trials / pruned / full (median)",
    "replay wall s",
]


def _ratio_text(e: Estimate) -> str:
    def fmt(x: float) -> str:
        return "never" if not np.isfinite(x) else f"{x:.2f}"

    return f"{fmt(e.value)} [{fmt(e.low)}, {fmt(e.high)}]"
