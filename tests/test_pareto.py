"""Pareto tools against brute force: pairwise dominance and lattice-cell counting."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from nas.search.pareto import (
    RunningFront,
    crowding_distance,
    default_reference,
    hypervolume,
    hypervolume_contributions,
    knee_point,
    non_dominated_mask,
    non_dominated_sort,
)

MAX, MIN = "maximize", "minimize"


def _dominates(p: np.ndarray, q: np.ndarray, directions: list[str]) -> bool:
    """p dominates q: at least as good everywhere, strictly better somewhere."""
    triples = list(zip(p, q, directions, strict=True))
    at_least = all(a >= b if d == MAX else a <= b for a, b, d in triples)
    better = any(a > b if d == MAX else a < b for a, b, d in triples)
    return at_least and better


def _bf_mask(points: np.ndarray, directions: list[str], among: np.ndarray | None = None):
    n = len(points)
    among = np.ones(n, bool) if among is None else among
    ok = among & ~np.isnan(points).any(axis=1)
    return np.array(
        [
            ok[i]
            and not any(ok[j] and _dominates(points[j], points[i], directions) for j in range(n))
            for i in range(n)
        ]
    )


def _bf_ranks(points: np.ndarray, directions: list[str]) -> np.ndarray:
    ranks = np.full(len(points), -1)
    remaining = ~np.isnan(points).any(axis=1)
    rank = 0
    while remaining.any():
        front = _bf_mask(points, directions, remaining)
        ranks[front] = rank
        remaining &= ~front
        rank += 1
    return ranks


def _grid_hv(points: np.ndarray, directions: list[str], ref: np.ndarray) -> int:
    """Count unit lattice cells covered by the union of the points' boxes against ref."""
    pts = points[~np.isnan(points).any(axis=1)]
    if len(pts) == 0:
        return 0
    axes = []
    for k, d in enumerate(directions):
        lo, hi = (ref[k], pts[:, k].max()) if d == MAX else (pts[:, k].min(), ref[k])
        axes.append(np.arange(int(lo), int(hi)))  # cell [c, c + 1)
    count = 0
    for cell in itertools.product(*axes):
        c = np.array(cell, float)
        for p in pts:
            inside = all(
                (ref[k] <= c[k] and c[k] + 1 <= p[k])
                if d == MAX
                else (p[k] <= c[k] and c[k] + 1 <= ref[k])
                for k, d in enumerate(directions)
            )
            if inside:
                count += 1
                break
    return count


def _random_case(rng: np.random.Generator, n: int, d: int, high: int) -> tuple[np.ndarray, list]:
    """Integer points with many ties, some exact duplicates and NaN rows; mixed directions."""
    pts = rng.integers(0, high, size=(n, d)).astype(float)
    dup = rng.integers(0, n, size=n // 4)
    pts = np.vstack([pts, pts[dup]])
    nan_rows = rng.integers(0, len(pts), size=2)
    pts[nan_rows, rng.integers(0, d, size=2)] = np.nan
    pts = pts[rng.permutation(len(pts))]
    directions = [MAX if b else MIN for b in rng.integers(0, 2, size=d)]
    return pts, directions


@pytest.mark.parametrize("d", [1, 2, 3, 4])
def test_front_and_ranks_match_brute_force(d: int) -> None:
    rng = np.random.default_rng(d)
    for trial in range(40):
        pts, directions = _random_case(rng, int(rng.integers(1, 40)), d, high=2 + trial % 6)
        np.testing.assert_array_equal(
            non_dominated_mask(pts, directions), _bf_mask(pts, directions)
        )
        np.testing.assert_array_equal(
            non_dominated_sort(pts, directions), _bf_ranks(pts, directions)
        )


@pytest.mark.parametrize("d", [1, 2, 3])
def test_running_front_matches_brute_force_after_every_point(d: int) -> None:
    rng = np.random.default_rng(20 + d)
    for trial in range(10):
        pts, directions = _random_case(rng, int(rng.integers(1, 30)), d, high=2 + trial % 4)
        front = RunningFront(directions)
        for i, point in enumerate(pts):
            front.add(point)
            assert len(front) == _bf_mask(pts[: i + 1], directions).sum()


def test_live_display_counts_the_front_of_every_completed_value() -> None:
    """The CLI's live display adds only the values completed since its last update; a new
    search's progress (fewer values) starts its front again."""
    import io

    from tqdm import tqdm

    from nas.commands.search import LiveProgress
    from nas.search.driver import Progress

    rng = np.random.default_rng(7)
    pts, directions = _random_case(rng, 60, 2, high=6)
    live = LiveProgress(directions)
    live.bar = tqdm(total=len(pts), file=io.StringIO())
    progress = Progress(requested=len(pts))
    for i, point in enumerate(pts):
        progress.completed_values.append(list(point))
        if i % 3 == 0 or i == len(pts) - 1:
            live(progress)
            assert f"front={_bf_mask(pts[: i + 1], directions).sum()}" in live.bar.postfix
    live(Progress(requested=2, completed_values=[[1.0, 1.0]]))
    assert "front=1" in live.bar.postfix


@pytest.mark.parametrize("d", [2, 3])
def test_front_continuous_points(d: int) -> None:
    rng = np.random.default_rng(10 + d)
    pts = rng.normal(size=(150, d))
    pts[:, 1] = -pts[:, 0] + 0.3 * pts[:, 1]  # correlated: many fronts of several points
    directions = [MIN, MAX, MIN][:d]
    np.testing.assert_array_equal(non_dominated_mask(pts, directions), _bf_mask(pts, directions))
    np.testing.assert_array_equal(non_dominated_sort(pts, directions), _bf_ranks(pts, directions))


def test_duplicates_ties_nan_and_infinity() -> None:
    pts = np.array(
        [
            [1.0, 5.0],
            [1.0, 5.0],  # duplicate of a front point: also on the front
            [1.0, 4.0],  # same first objective, worse second: dominated
            [3.0, 2.0],
            [np.nan, 9.0],
            [3.0, 2.0],
            [0.0, -np.inf],  # worst possible second objective, best first: on the front
        ]
    )
    directions = [MIN, MAX]
    np.testing.assert_array_equal(
        non_dominated_mask(pts, directions), [True, True, False, False, False, False, True]
    )
    np.testing.assert_array_equal(non_dominated_sort(pts, directions), [0, 0, 1, 2, -1, 2, 0])
    np.testing.assert_array_equal(non_dominated_mask([[0.0, np.inf]], [MIN, MIN]), [True])


def test_empty_and_single_objective() -> None:
    empty = np.zeros((0, 2))
    assert non_dominated_mask(empty, [MAX, MAX]).shape == (0,)
    assert non_dominated_sort([], [MAX, MAX]).shape == (0,)
    assert crowding_distance(empty).shape == (0,)
    assert hypervolume(empty, [MAX, MAX], [0, 0]) == 0.0
    assert hypervolume_contributions(empty, [MAX, MAX], [0, 0]).shape == (0,)
    np.testing.assert_array_equal(default_reference(empty, [MAX, MIN]), [0.0, 0.0])
    with pytest.raises(ValueError, match="NaN"):
        knee_point(empty, [MAX, MAX])

    one_d = np.array([[3.0], [1.0], [3.0], [np.nan], [2.0]])
    np.testing.assert_array_equal(non_dominated_mask(one_d, [MAX]), [1, 0, 1, 0, 0])
    np.testing.assert_array_equal(non_dominated_sort(one_d, [MAX]), [0, 2, 0, -1, 1])
    assert hypervolume(one_d, [MAX], [0.0]) == 3.0
    np.testing.assert_array_equal(hypervolume_contributions(one_d, [MAX], [0.0]), [0, 0, 0, 0, 0])
    np.testing.assert_array_equal(
        hypervolume_contributions([[3.0], [1.0], [2.0]], [MAX], [0.0]), [1, 0, 0]
    )
    assert knee_point(one_d, [MAX]) == 0


def test_input_validation() -> None:
    with pytest.raises(ValueError, match="maximize"):
        non_dominated_mask([[1.0, 2.0]], ["max", MIN])
    with pytest.raises(ValueError, match="2 objectives but 3 directions"):
        non_dominated_mask([[1.0, 2.0]], [MAX, MAX, MAX])
    with pytest.raises(ValueError, match="reference"):
        hypervolume([[1.0, 2.0]], [MAX, MAX], [0.0, np.nan])


def test_2d_front_on_10k_points() -> None:
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(10_000, 2))
    pts[::7] = np.round(pts[::7], 1)  # ties and duplicates
    mask = non_dominated_mask(pts, [MAX, MAX])
    ranks = non_dominated_sort(pts, [MAX, MAX])
    np.testing.assert_array_equal(mask, ranks == 0)
    front = pts[mask]
    # every point off the front is dominated by some front point
    off = pts[~mask]
    weakly = (front[None, :, :] >= off[:, None, :]).all(axis=2)
    strictly = (front[None, :, :] > off[:, None, :]).any(axis=2)
    assert (weakly & strictly).any(axis=1).all()


@pytest.mark.parametrize("d", [2, 3, 4])
def test_hypervolume_matches_lattice_counting(d: int) -> None:
    rng = np.random.default_rng(100 + d)
    high = {2: 8, 3: 6, 4: 4}[d]
    for trial in range(25):
        pts, directions = _random_case(rng, int(rng.integers(1, 14)), d, high=high)
        if trial % 3 == 0:  # a reference inside the range: some points contribute nothing
            ref = np.array([1.0 if dr == MAX else high - 2.0 for dr in directions])
        else:
            ref = np.array([-1.0 if dr == MAX else float(high) for dr in directions])
        assert hypervolume(pts, directions, ref) == _grid_hv(pts, directions, ref)


@pytest.mark.parametrize("d", [1, 2, 3])
def test_contributions_match_lattice_counting(d: int) -> None:
    rng = np.random.default_rng(200 + d)
    high = {1: 8, 2: 7, 3: 5}[d]
    for trial in range(20):
        pts, directions = _random_case(rng, int(rng.integers(1, 12)), d, high=high)
        if trial % 4 == 0:
            ref = np.array([1.0 if dr == MAX else high - 2.0 for dr in directions])
        else:
            ref = np.array([-1.0 if dr == MAX else float(high) for dr in directions])
        total = _grid_hv(pts, directions, ref)
        expected = [
            0.0
            if np.isnan(pts[i]).any()
            else total - _grid_hv(np.delete(pts, i, 0), directions, ref)
            for i in range(len(pts))
        ]
        np.testing.assert_array_equal(hypervolume_contributions(pts, directions, ref), expected)


def test_contribution_accounts_for_dominated_points() -> None:
    pts = np.array([[0.0, 2.0], [1.0, 1.0], [2.0, 0.0], [1.5, 1.5]])
    contrib = hypervolume_contributions(pts, [MIN, MIN], [3.0, 3.0])
    # (1, 1) alone covers [1, 2) x [1, 2); (1.5, 1.5) still covers its upper-right quarter
    np.testing.assert_allclose(contrib, [1.0, 0.75, 1.0, 0.0])


def test_crowding_distance() -> None:
    front = np.array([[0.0, 3.0], [1.0, 2.0], [2.0, 1.0], [3.0, 0.0], [1.0, 2.0], [np.nan, 1]])
    dist = crowding_distance(front)
    assert np.isinf(dist[[0, 3]]).all()
    np.testing.assert_allclose(dist[[1, 2, 4]], [4 / 3, 4 / 3, 4 / 3])  # duplicates share
    assert np.isnan(dist[5])
    perm = np.array([3, 1, 4, 0, 2])
    np.testing.assert_array_equal(crowding_distance(front[perm]), dist[perm])
    np.testing.assert_array_equal(crowding_distance([[1.0, 2.0], [2.0, 1.0]]), [np.inf, np.inf])
    const = crowding_distance([[0.0, 5.0], [1.0, 5.0], [3.0, 5.0]])  # zero-range objective
    np.testing.assert_allclose(const, [np.inf, 1.0, np.inf])


def test_default_reference_rule() -> None:
    pts = np.array([[0.8, 100.0, 5.0], [0.6, 300.0, 1.0], [np.nan, 1.0, 1.0]])
    ref = default_reference(pts, [MAX, MAX, MIN])
    np.testing.assert_allclose(ref, [0.0, 0.0, 5.4])
    np.testing.assert_allclose(default_reference([[-1.0], [3.0]], [MAX]), [-1.4])
    np.testing.assert_allclose(default_reference([[2.0, 0.0]], [MIN, MIN]), [2.2, 1.0])
    rng = np.random.default_rng(3)
    for directions in ([MAX, MIN], [MIN, MAX, MAX]):
        pts = rng.normal(size=(30, len(directions)))
        ref = default_reference(pts, directions)
        contrib = hypervolume_contributions(pts, directions, ref)
        assert (contrib[non_dominated_mask(pts, directions)] > 0).all()


def test_knee_point_hand_made_front() -> None:
    # Normalised in the minimisation frame: A=(0, 1), B=(.1, .3), C=(.5, .1), D=(1, 0);
    # distances below the line x + y = 1: 0, .6, .4, 0 (times 1/sqrt 2) -> B.
    pts = np.array([[10.0, 0.0], [5.0, 9.0], [np.nan, 50.0], [0.0, 10.0], [9.0, 7.0], [4.0, 4.0]])
    assert knee_point(pts, [MAX, MAX]) == 4
    flipped = pts * np.array([1.0, -1.0])
    assert knee_point(flipped, [MAX, MIN]) == 4
    # a concave front: the extremes, not the deepest dent, are returned
    concave = np.array([[0.0, 10.0], [2.0, 2.0], [10.0, 0.0]])
    assert knee_point(concave, [MAX, MAX]) in (0, 2)


def test_knee_point_small_fronts_and_3d() -> None:
    assert knee_point([[1.0, 1.0], [0.5, 0.5]], [MAX, MAX]) == 0
    assert knee_point([[0.5, 2.0], [1.0, 1.0], [1.0, 1.0]], [MAX, MAX]) == 1
    assert knee_point([[2.0, 2.0], [2.0, 2.0]], [MAX, MAX]) == 0
    tri = np.array(
        [[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [0.4, 0.4, 0.1], [1.0, 0.0, 0.0], [0.2, 0.2, 0.2]]
    )
    assert knee_point(tri, [MIN, MIN, MIN]) == 4
