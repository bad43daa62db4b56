"""How sure a figure is: accuracy intervals, ties within noise, rank agreement.

A front whose members differ by less than their measurement noise is not an ordering, so every
figure the tool reports goes through here: top-1 accuracy on ``n`` validation images gets a 95%
Wilson score interval, throughput its interquartile range over the timed blocks, and two front
members are *tied* when their intervals overlap on every objective. Rank agreement between two
fidelities is Kendall's tau-b with a bootstrap interval over architectures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

Z_95 = 1.959963984540054


def wilson_interval(accuracy: float, n: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``accuracy`` observed on ``n`` trials.

    Unlike the normal approximation it stays inside [0, 1] and is sound near 0 and 1, where
    proxy accuracies on easy tasks live.
    """
    if n <= 0:
        raise ValueError(f"wilson_interval: expected n >= 1 validation images, found {n}")
    if not 0.0 <= accuracy <= 1.0:
        raise ValueError(f"wilson_interval: expected an accuracy in [0, 1], found {accuracy}")
    z2 = z * z
    centre = (accuracy + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * np.sqrt(accuracy * (1 - accuracy) / n + z2 / (4 * n * n))
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def validation_size_for(half_width: float, accuracy: float = 0.94, z: float = Z_95) -> int:
    """Validation images needed for a Wilson half-width of about ``half_width`` at ``accuracy``."""
    return int(np.ceil(z * z * accuracy * (1 - accuracy) / half_width**2))


def intervals_overlap(lo: ArrayLike, hi: ArrayLike) -> np.ndarray:
    """``(n, n)`` mask: do the intervals ``[lo[i], hi[i]]`` and ``[lo[j], hi[j]]`` overlap?"""
    lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    return (lo[:, None] <= hi[None, :]) & (lo[None, :] <= hi[:, None])


def tied_with(lows: ArrayLike, highs: ArrayLike) -> list[list[int]]:
    """For each point, the other points within noise of it on every objective.

    ``lows``/``highs`` are ``(n, d)``: each objective's interval per point (an exact objective
    such as a parameter count has ``low == high``). Points i and j are tied when their
    intervals overlap in all ``d`` objectives.
    """
    lows, highs = np.atleast_2d(np.asarray(lows, float)), np.atleast_2d(np.asarray(highs, float))
    if lows.shape != highs.shape:
        raise ValueError(f"tied_with: lows {lows.shape} and highs {highs.shape} differ in shape")
    n = len(lows)
    if n == 0:
        return []
    both = np.ones((n, n), dtype=bool)
    for k in range(lows.shape[1]):
        both &= intervals_overlap(lows[:, k], highs[:, k])
    np.fill_diagonal(both, False)
    return [np.flatnonzero(row).tolist() for row in both]


def kendall_tau(x: ArrayLike, y: ArrayLike) -> float:
    """Kendall's tau-b (ties in either ranking accounted for), as ``scipy.stats.kendalltau``."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(
            f"kendall_tau: expected two equal-length vectors, found {x.shape}, {y.shape}"
        )
    dx = np.sign(x[:, None] - x[None, :])
    dy = np.sign(y[:, None] - y[None, :])
    upper = np.triu_indices(len(x), 1)
    concordance = (dx * dy)[upper].sum()
    pairs_x = np.abs(dx[upper]).sum()
    pairs_y = np.abs(dy[upper]).sum()
    if pairs_x == 0 or pairs_y == 0:
        return float("nan")
    return float(concordance / np.sqrt(pairs_x * pairs_y))


@dataclass(frozen=True)
class RankAgreement:
    """Kendall's tau between two fidelities with a percentile bootstrap 95% interval."""

    tau: float
    low: float
    high: float
    n: int

    def __str__(self) -> str:
        interval = f"[{self.low:.2f}, {self.high:.2f}]"
        return f"kendall tau {self.tau:.2f} {interval} over {self.n} architectures"


def rank_agreement(
    x: Sequence[float], y: Sequence[float], resamples: int = 2000, seed: int = 0
) -> RankAgreement:
    """Tau of ``x`` against ``y`` and its bootstrap interval, resampling architectures."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = len(x)
    if n < 3:
        raise ValueError(f"rank agreement needs at least 3 architectures, found {n}")
    rng = np.random.default_rng(seed)
    taus = []
    for _ in range(resamples):
        pick = rng.integers(0, n, n)
        tau = kendall_tau(x[pick], y[pick])
        if np.isfinite(tau):
            taus.append(tau)
    low, high = np.percentile(taus, [2.5, 97.5]) if taus else (np.nan, np.nan)
    return RankAgreement(kendall_tau(x, y), float(low), float(high), n)
