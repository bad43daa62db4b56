"""Pareto tools for the multi-objective search (pure numpy).

Conventions shared by every function:

* ``points`` is an ``(n, d)`` float array and ``directions`` a length-``d`` sequence of
  ``"maximize"`` / ``"minimize"``; internally everything is converted to minimisation.
* A point is dominated only if another point is ``<=`` in every objective and ``<`` in at
  least one, so exact duplicates of a non-dominated point are all on the front.
* Rows containing NaN (e.g. a diverged or failed trial) are excluded: never on a front,
  rank ``-1``, no hypervolume contribution.
* ``n == 0`` and ``d == 1`` are valid inputs.

Two objectives are the common case (accuracy vs throughput), so the 2-D paths are sort-based
``O(n log n)``: an ``O(n^2)`` front becomes slow past ~1000 trials.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "RunningFront",
    "crowding_distance",
    "default_reference",
    "dominated_by",
    "hypervolume",
    "hypervolume_contributions",
    "knee_point",
    "non_dominated_mask",
    "non_dominated_sort",
]

_SIGNS = {"minimize": 1.0, "maximize": -1.0}
# Pairs compared per block in the d > 2 front: bounds temporaries to a few MB.
_BLOCK_ELEMENTS = 1 << 20
# Points added per step of the d > 2 front: amortises numpy overhead, bounds in-block work.
_ND_BLOCK = 512


def _signs(directions: Sequence[str]) -> np.ndarray:
    try:
        return np.array([_SIGNS[str(d).lower()] for d in directions], dtype=float)
    except KeyError as exc:
        raise ValueError(
            f"directions must be 'maximize' or 'minimize', got {list(directions)!r}"
        ) from exc


def _as_points(points: ArrayLike, d: int | None) -> np.ndarray:
    arr = np.asarray(points, dtype=float)
    if arr.size == 0:
        return arr.reshape(0, d if d is not None else (arr.shape[-1] if arr.ndim == 2 else 0))
    if arr.ndim != 2:
        raise ValueError(f"points must be an (n, d) array, got shape {arr.shape}")
    if d is not None and arr.shape[1] != d:
        raise ValueError(f"points have {arr.shape[1]} objectives but {d} directions were given")
    return arr


def _to_min(points: ArrayLike, directions: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Return the points in the minimisation frame and the mask of rows without NaN."""
    signs = _signs(directions)
    y = _as_points(points, len(signs)) * signs
    return y, ~np.isnan(y).any(axis=1)


def _nd_mask_min(y: np.ndarray) -> np.ndarray:
    """Non-dominated mask of NaN-free points in the minimisation frame."""
    n, d = y.shape
    if n == 0:
        return np.zeros(0, dtype=bool)
    if d == 1:
        return y[:, 0] == y[:, 0].min()
    if d == 2:
        return _nd_mask_2d(y)
    return _nd_mask_nd(y)


def _dominated_by(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For each row of ``a``: is some row of ``b`` <= everywhere and < somewhere?

    Blocked over ``a`` and looped over objectives so temporaries stay 2-D and small.
    """
    out = np.zeros(len(a), dtype=bool)
    if len(b) == 0:
        return out
    block = max(1, _BLOCK_ELEMENTS // len(b))
    for start in range(0, len(a), block):
        blk = a[start : start + block]
        weakly = np.ones((len(blk), len(b)), dtype=bool)
        strictly = np.zeros((len(blk), len(b)), dtype=bool)
        for k in range(a.shape[1]):
            weakly &= b[None, :, k] <= blk[:, None, k]
            strictly |= b[None, :, k] < blk[:, None, k]
        out[start : start + block] = (weakly & strictly).any(axis=1)
    return out


def _nd_mask_nd(y: np.ndarray) -> np.ndarray:
    """Front for d > 2: O(n * (front size + block)) typical, O(n^2 d) worst case.

    In lexicographic order every dominator of a point comes before it, and a point dominated
    by anything is dominated by a front point (transitivity), so each block of the sorted
    points is checked only against the front found so far and then against itself.
    """
    n = len(y)
    order = np.lexsort(y.T[::-1])
    keep = np.zeros(n, dtype=bool)
    front = y[:0]
    for start in range(0, n, _ND_BLOCK):
        idx = order[start : start + _ND_BLOCK]
        cand = idx[~_dominated_by(y[idx], front)]
        cand = cand[~_dominated_by(y[cand], y[cand])]
        keep[cand] = True
        front = np.vstack([front, y[cand]])
    return keep


def _nd_mask_2d(y: np.ndarray) -> np.ndarray:
    """Sort by (f1, f2) and sweep: O(n log n).

    After the sort every earlier point has a smaller f1, or the same f1 and a <= f2. A point
    is non-dominated iff it has the smallest f2 of its equal-f1 group (duplicates included)
    and a strictly smaller f2 than every point of an earlier group.
    """
    n = len(y)
    order = np.lexsort((y[:, 1], y[:, 0]))
    a, b = y[order, 0], y[order, 1]
    new_group = np.r_[True, a[1:] != a[:-1]]
    group_start = np.maximum.accumulate(np.where(new_group, np.arange(n), 0))
    running_min = np.minimum.accumulate(b)
    earlier_min = running_min[np.maximum(group_start - 1, 0)]
    keep = (b == b[group_start]) & ((group_start == 0) | (b < earlier_min))
    mask = np.empty(n, dtype=bool)
    mask[order] = keep
    return mask


def _nds_2d(y: np.ndarray) -> np.ndarray:
    """Front ranks of 2-D points in O(n log n) (Jensen 2003 style).

    Points are visited in (f1, f2) order, so a front's last point has its smallest key
    (f2, f1); point i is dominated by front k iff that key is lexicographically smaller than
    i's. These last keys stay sorted across fronts, so i's front is found by bisection.
    """
    n = len(y)
    r1 = np.unique(y[:, 0], return_inverse=True)[1].reshape(-1).astype(np.int64)
    r2 = np.unique(y[:, 1], return_inverse=True)[1].reshape(-1).astype(np.int64)
    order = np.lexsort((r2, r1))
    keys = (r2 * (int(r1.max()) + 1) + r1)[order].tolist()
    last: list[int] = []
    ranks_sorted = np.empty(n, dtype=np.int64)
    for pos, key in enumerate(keys):
        front = bisect_left(last, key)
        if front == len(last):
            last.append(key)
        else:
            last[front] = key
        ranks_sorted[pos] = front
    ranks = np.empty(n, dtype=np.int64)
    ranks[order] = ranks_sorted
    return ranks


def non_dominated_mask(points: ArrayLike, directions: Sequence[str]) -> np.ndarray:
    """Boolean mask of the Pareto front.

    ``d == 2`` is a sort-and-sweep in O(n log n); ``d > 2`` compares blocks of the
    lexicographically sorted points with the front found so far, O(n^2 d) in the worst case
    (every point on the front).
    """
    y, valid = _to_min(points, directions)
    mask = np.zeros(len(y), dtype=bool)
    mask[valid] = _nd_mask_min(y[valid])
    return mask


class RunningFront:
    """The Pareto front of a growing set of points, kept up to date one point at a time.

    A live display that re-sorts every completed trial at each update costs O(n log n) per
    update, O(n^2 log n) over a search; here a new point is dropped if a front point dominates
    it, else it joins and evicts the front points it dominates: O(front size) per point. A
    point dominated by a dropped one is dominated by a front point (transitivity), so the
    result equals :func:`non_dominated_mask` over every point added, with its conventions
    (duplicates of a front point all count, NaN rows never join).
    """

    def __init__(self, directions: Sequence[str]):
        self._signs = _signs(directions)
        self._front = np.empty((0, len(self._signs)))

    def add(self, point: ArrayLike) -> None:
        y = _as_points([point], len(self._signs))[0] * self._signs
        if np.isnan(y).any():
            return
        front = self._front
        if ((front <= y).all(axis=1) & (front < y).any(axis=1)).any():
            return
        evicted = (y <= front).all(axis=1) & (y < front).any(axis=1)
        self._front = np.vstack([front[~evicted], y])

    def __len__(self) -> int:
        return len(self._front)


def dominated_by(points: ArrayLike, others: ArrayLike, directions: Sequence[str]) -> np.ndarray:
    """For each row of ``points``: does some row of ``others`` dominate it? (E.g. is a seed
    design beaten by a searched architecture.) A row with NaN neither dominates nor is
    dominated."""
    y, valid = _to_min(points, directions)
    o, others_valid = _to_min(others, directions)
    out = np.zeros(len(y), dtype=bool)
    out[valid] = _dominated_by(y[valid], o[others_valid])
    return out


def non_dominated_sort(points: ArrayLike, directions: Sequence[str]) -> np.ndarray:
    """Front rank of every point (0 = Pareto front, -1 = NaN row).

    ``d == 1``: dense rank of the value; ``d == 2``: O(n log n) bisection over fronts;
    ``d > 2``: repeated peeling with :func:`non_dominated_mask` (at most O(F n^2 d) for F
    fronts).
    """
    y, valid = _to_min(points, directions)
    ranks = np.full(len(y), -1, dtype=np.int64)
    rows = np.flatnonzero(valid)
    yv = y[rows]
    if len(rows) == 0:
        return ranks
    if yv.shape[1] == 1:
        ranks[rows] = np.unique(yv[:, 0], return_inverse=True)[1].reshape(-1)
    elif yv.shape[1] == 2:
        ranks[rows] = _nds_2d(yv)
    else:
        remaining = np.arange(len(rows))
        rank = 0
        while len(remaining):
            front = _nd_mask_min(yv[remaining])
            ranks[rows[remaining[front]]] = rank
            remaining = remaining[~front]
            rank += 1
    return ranks


def crowding_distance(points: ArrayLike) -> np.ndarray:
    """NSGA-II crowding distance of points within one front (larger = more isolated).

    Each objective is scaled by its range over the front, so directions do not matter.
    Boundary points get ``inf``; an objective with zero or infinite range adds nothing to
    interior points. Duplicates are collapsed first and share their point's distance, and
    ties along an objective are ordered by the other objectives, so the result does not
    depend on the row order. NaN rows get NaN.
    """
    p = _as_points(points, None)
    n, d = p.shape
    out = np.full(n, np.nan)
    valid = ~np.isnan(p).any(axis=1)
    if not valid.any():
        return out
    uniq, inverse = np.unique(p[valid], axis=0, return_inverse=True)
    m = len(uniq)
    dist = np.zeros(m)
    if m <= 2:
        dist[:] = np.inf
    else:
        for k in range(d):
            others = [uniq[:, j] for j in range(d) if j != k]
            order = np.lexsort((*others, uniq[:, k]))
            v = uniq[order, k]
            dist[order[0]] = dist[order[-1]] = np.inf
            span = v[-1] - v[0]
            if np.isfinite(span) and span > 0:
                dist[order[1:-1]] += (v[2:] - v[:-2]) / span
    out[valid] = dist[inverse.reshape(-1)]
    return out


def _reference_to_min(reference: ArrayLike, signs: np.ndarray) -> np.ndarray:
    ref = np.asarray(reference, dtype=float).reshape(-1)
    if ref.shape != signs.shape or np.isnan(ref).any():
        raise ValueError(f"reference must hold {len(signs)} non-NaN values, got {reference!r}")
    return ref * signs


def _hv_2d(y: np.ndarray, ref: np.ndarray) -> float:
    """Area dominated by 2-D points strictly inside the reference box: sort and sum strips."""
    front = y[_nd_mask_min(y)]
    front = front[np.lexsort((front[:, 1], front[:, 0]))]
    widths = np.diff(np.r_[front[:, 0], ref[0]])
    return float(np.sum(widths * (ref[1] - front[:, 1])))


def _hv_min(y: np.ndarray, ref: np.ndarray) -> float:
    """Exact hypervolume of points strictly inside the box (minimisation frame).

    ``d >= 3`` uses HSO slicing along the last objective: each slab between consecutive
    values is a (d-1)-dimensional hypervolume of the points below it, recursing down to the
    2-D sweep. Cost O(n^(d-1) log n) for n front points: fine for search-sized fronts
    (hundreds of points in 3-D), not for large fronts in many dimensions.
    """
    n, d = y.shape
    if n == 0:
        return 0.0
    if d == 1:
        return float(ref[0] - y[:, 0].min())
    if d == 2:
        return _hv_2d(y, ref)
    y = y[_nd_mask_min(y)]
    y = y[np.argsort(y[:, -1], kind="stable")]
    cuts = np.r_[y[:, -1], ref[-1]]
    total = 0.0
    for i in range(len(y)):
        height = cuts[i + 1] - cuts[i]
        if height > 0:
            total += height * _hv_min(y[: i + 1, :-1], ref[:-1])
    return total


def _inside(
    points: ArrayLike,
    directions: Sequence[str],
    reference: ArrayLike,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimisation-frame points, reference, and mask of rows strictly better than it."""
    y, valid = _to_min(points, directions)
    ref = _reference_to_min(reference, _signs(directions))
    inside = valid.copy()
    inside[valid] = (y[valid] < ref).all(axis=1)
    return y, ref, inside


def hypervolume(
    points: ArrayLike,
    directions: Sequence[str],
    reference: ArrayLike,
) -> float:
    """Exact hypervolume dominated by the points and bounded by ``reference``.

    Only points strictly better than the reference in every objective contribute.
    ``d == 2``: O(n log n); ``d >= 3``: HSO slicing, O(n^(d-1) log n).
    """
    y, ref, inside = _inside(points, directions, reference)
    return _hv_min(y[inside], ref)


def hypervolume_contributions(
    points: ArrayLike,
    directions: Sequence[str],
    reference: ArrayLike,
) -> np.ndarray:
    """Exclusive hypervolume contribution of each point: HV(all) - HV(all without it).

    Dominated points, points outside the reference box, NaN rows and exact duplicates (the
    copy still covers the region) contribute 0. Dominated points are still counted as
    covering: removing a front point exposes what they dominate. ``d == 2`` is O(n log n);
    otherwise one hypervolume per distinct front point.
    """
    y, ref, inside = _inside(points, directions, reference)
    out = np.zeros(len(y))
    rows = np.flatnonzero(inside)
    if len(rows) == 0:
        return out
    yi = y[rows]
    on_front = _nd_mask_min(yi)
    front_idx = np.flatnonzero(on_front)
    uniq, first, inverse, counts = np.unique(
        yi[front_idx], axis=0, return_index=True, return_inverse=True, return_counts=True
    )
    if uniq.shape[1] == 2:
        contrib = _contributions_2d(uniq, yi[~on_front], ref)
    else:
        total = _hv_min(yi, ref)
        contrib = np.array(
            [total - _hv_min(np.delete(yi, front_idx[j], axis=0), ref) for j in first]
        )
    contrib[counts > 1] = 0.0
    out[rows[front_idx]] = contrib[inverse.reshape(-1)]
    return out


def _contributions_2d(front: np.ndarray, dominated: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Contributions of distinct 2-D front points sorted by f1 (so f2 strictly decreases).

    Each front point alone covers the box up to its neighbours; a dominated point can only
    fall in the box of the front point dominating it (at most one box), and the part it
    covers is subtracted.
    """
    upper_a = np.r_[front[1:, 0], ref[0]]
    upper_b = np.r_[ref[1], front[:-1, 1]]
    contrib = (upper_a - front[:, 0]) * (upper_b - front[:, 1])
    box = np.searchsorted(front[:, 0], dominated[:, 0], side="right") - 1
    in_box = (box >= 0) & (dominated[:, 1] < upper_b[np.maximum(box, 0)])
    box, dominated = box[in_box], dominated[in_box]
    if len(box) == 0:
        return contrib
    order = np.argsort(box, kind="stable")
    box, dominated = box[order], dominated[order]
    groups = np.split(dominated, np.flatnonzero(np.diff(box)) + 1)
    for k, pts in zip(np.unique(box), groups, strict=True):
        contrib[k] -= _hv_2d(pts, np.array([upper_a[k], upper_b[k]]))
    return contrib


def default_reference(points: ArrayLike, directions: Sequence[str]) -> np.ndarray:
    """Reference point for hypervolume, per objective, in the objective's own units.

    Rule, applied in the minimisation frame (maximised values negated), over non-NaN rows:
    0 if every value is < 0 (i.e. a maximised objective with all values > 0, such as
    accuracy or throughput), else the worst value plus 10% of the range (10% of its
    magnitude, or 1, when the range is 0). Every valid point is then strictly better than
    the reference. The 0 rule keeps the reference fixed as trials arrive, so hypervolumes over
    time are comparable; for other objectives compute the reference once (e.g. from the
    first trials) and keep it for the whole search. With no valid point the reference is 0.
    """
    signs = _signs(directions)
    y, valid = _to_min(points, directions)
    y = y[valid]
    ref = np.zeros(len(signs))
    for k in range(len(signs)):
        if len(y) == 0 or (y[:, k] < 0).all():
            continue
        worst, best = y[:, k].max(), y[:, k].min()
        span = worst - best
        margin = 0.1 * span if span > 0 else (0.1 * abs(worst) if worst != 0 else 1.0)
        ref[k] = worst + margin
    return ref * signs


def knee_point(points: ArrayLike, directions: Sequence[str]) -> int:
    """Index of the front's knee: the best compromise when no objective is preferred.

    Each objective is normalised to [0, 1] over the front (0 = best). The extreme points
    (best in each objective; ties broken lexicographically) span a hyperplane (in 2-D the
    line x + y = 1); the knee is the point farthest from it on the ideal-point side. The
    distance is signed because on a concave front every interior point lies beyond the
    hyperplane, and the farthest of those is the worst compromise, not the knee. When the
    extremes are degenerate (e.g. one point is best in two of three objectives) the
    hyperplane through the unit vectors, sum(f) = 1, is used instead.

    A front of one distinct point returns its first occurrence; with two distinct points
    neither is a compromise, so the one best in the first objective is returned (the
    accuracy end when objective 0 is accuracy). Ties go to the lexicographically smallest
    point, duplicates to the first occurrence.
    """
    y, _ = _to_min(points, directions)
    rows = np.flatnonzero(non_dominated_mask(points, directions))
    if len(rows) == 0:
        raise ValueError("knee_point needs at least one point without NaN")
    front = y[rows]
    if not np.isfinite(front).all():
        raise ValueError("knee_point needs finite objective values on the front")
    uniq, first = np.unique(front, axis=0, return_index=True)
    if len(uniq) <= 2:
        return int(rows[first[0]])
    lo, hi = uniq.min(axis=0), uniq.max(axis=0)
    span = hi - lo
    norm = np.divide(uniq - lo, span, out=np.zeros_like(uniq), where=span > 0)
    d = norm.shape[1]
    extremes = norm[[int(np.argmin(norm[:, k])) for k in range(d)]]
    if np.linalg.matrix_rank(extremes) == d:
        normal = np.linalg.solve(extremes, np.ones(d))
    else:
        normal = np.ones(d)
    signed = (1.0 - norm @ normal) / np.linalg.norm(normal)
    return int(rows[first[int(np.argmax(signed))]])
