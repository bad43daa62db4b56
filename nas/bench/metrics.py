"""Normalised hypervolume against a table, and the aggregate of many seeded runs.

Every run of every method is scored by the same :class:`HypervolumeScale`: objectives min-max
normalised over the whole table, the reference point at the table's worst corner, and the
hypervolume divided by that of the table's full front, so 1.0 means "found the true front".
Runs are aggregated as the interquartile mean (IQM, Agarwal et al. 2021: robust to the odd
lucky or unlucky seed, less noisy than the median) with a percentile bootstrap 95% interval
over seeds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from nas.bench.table import BenchTable
from nas.search.pareto import hypervolume, non_dominated_mask

DIRECTIONS = ("maximize", "maximize")  # (final proxy accuracy, throughput)


@dataclass(frozen=True)
class HypervolumeScale:
    low: np.ndarray
    high: np.ndarray
    best: float  # hypervolume of the table's full front, in normalised units

    @classmethod
    def of_table(cls, table: BenchTable, seed: int) -> HypervolumeScale:
        _, points = table.final_points(seed)
        low, high = points.min(axis=0), points.max(axis=0)
        scale = cls(low, high, 1.0)
        return cls(low, high, scale.raw(points))

    def normalise(self, points: ArrayLike) -> np.ndarray:
        points = np.asarray(points, dtype=float).reshape(-1, 2)
        return (points - self.low) / np.where(self.high > self.low, self.high - self.low, 1.0)

    def raw(self, points: ArrayLike) -> float:
        """Hypervolume of ``points`` (accuracy, throughput) in normalised units, reference at
        the table's worst corner (a point on it encloses nothing)."""
        y = self.normalise(points)
        if len(y) == 0:
            return 0.0
        return float(hypervolume(y, DIRECTIONS, np.zeros(2)))

    def __call__(self, points: ArrayLike) -> float:
        """Normalised hypervolume: 1.0 for the table's front."""
        return self.raw(points) / self.best if self.best > 0 else 0.0


def table_front(table: BenchTable, seed: int) -> list[str]:
    """Hashes of the table's Pareto front under one seed's accuracy."""
    hashes, points = table.final_points(seed)
    mask = non_dominated_mask(points, DIRECTIONS)
    return [h for h, keep in zip(hashes, mask, strict=True) if keep]


def iqm(values: ArrayLike, axis: int = -1) -> np.ndarray:
    """Interquartile mean: the mean of the middle 50% (the 25%-75% order statistics)."""
    x = np.sort(np.asarray(values, dtype=float), axis=axis)
    n = x.shape[axis]
    lo, hi = int(np.floor(n * 0.25)), int(np.ceil(n * 0.75))
    if hi <= lo:
        lo, hi = 0, n
    return np.take(x, np.arange(lo, hi), axis=axis).mean(axis=axis)


@dataclass(frozen=True)
class Estimate:
    value: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}]"


def bootstrap_iqm(
    runs: Sequence[Sequence[float]] | np.ndarray, resamples: int = 2000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IQM over runs (axis 0) of each column, with a percentile bootstrap 95% interval that
    resamples runs. Returns (iqm, low, high), one entry per column."""
    x = np.asarray(runs, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(x), size=(resamples, len(x)))
    boot = iqm(x[picks], axis=1)  # (resamples, columns)
    low, high = np.percentile(boot, [2.5, 97.5], axis=0)
    return iqm(x, axis=0), low, high


def time_to_reach(times: np.ndarray, curve: np.ndarray, target: float) -> float:
    """First time a (non-decreasing) curve sampled at ``times`` reaches ``target``; inf if
    never."""
    reached = np.nonzero(curve >= target - 1e-12)[0]
    return float(times[reached[0]]) if len(reached) else float("inf")
