"""A Pathfinder-style "are the two markers connected?" task (``task: pathfinder``).

Why this task: it is the classic long-range benchmark (LRA's Pathfinder). Whether two markers
lie on the same curve can only be decided by following the curves between them, and the markers
are always far apart (at least ``min_dist`` of the image side), so a model that only looks
locally cannot decide it, while one that mixes globally can. It is generated here (vectorised
numpy, deterministic from a seed, a few seconds for 10k images), so no download is needed and CI
can train on it. Measured at 32 px on 10k images: a 6-layer CNN whose receptive field covers
the image (3x3 convs, max-pooling) reaches 99% validation accuracy after 3 epochs, while a
5-layer CNN without pooling (11-pixel receptive field, global average pool) stays at chance.
Small MetaFormers, however, stay at chance within proxy budgets (pooling to attention, with
their per-token LayerNorm for up to ~1000 steps, and with PoolFormer's GroupNorm for 250; also
with straight, thick or short curves): connectivity is learnt only after a long plateau. That
is why the default task is :mod:`nas.data.nearest`; this one suits longer proxy budgets.

A sample (``resolution`` x ``resolution``, default 32, black background):

* two white curves X (P to Q) and Y (S to R), plus ``num_distractors`` more: random cubic
  Bezier curves, line width ``resolution / 32`` pixels, ends ``min_dist`` to ``max_dist`` of the
  side apart, never closer to each other than ``min_gap`` pixels (so they never touch or cross);
* two red square markers: one on P, the other on Q (label 1, "connected") or on S (label 0,
  "disconnected"). P and S are as far apart as a curve's two ends.

Why it cannot be solved locally: the curves are drawn before the label is known, so the two
classes differ only in which curve end carries the second marker; every marker sits on a curve
end, and each end's control arm points in a random direction, so how a curve leaves one marker
says little about where its other end is. The number of curves, ends and markers is the same in
both classes. The label is exactly "the markers are in the same 8-connected component of
non-black pixels" (tests check this with a flood fill).

Classes are balanced exactly (for an even count): the label sequence is a seeded permutation of
equal halves. All ink stays ``margin`` pixels (default ``resolution // 8``) inside the border, so
a random crop with padding up to ``margin`` never cuts a curve and never changes the label. The
train and validation splits use independent random streams derived from the seed, so the
validation set does not change when ``num_train`` does (see :mod:`nas.data.synthetic`, which
also caches the arrays).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from nas.data.arrays import ArrayDataset

CLASS_NAMES = ("disconnected", "connected")
CURVE_COLOUR = (255, 255, 255)
MARKER_COLOUR = (255, 0, 0)
_CHUNK = 2048  # samples rendered at once: bounds memory at 64 px and above
_RETRIES = 16  # redraws of one curve before its whole scene is redrawn
_MAX_DRAWS_PER_SAMPLE = 100  # more means the parameters leave (almost) no room
_MIN_BATCH = 256  # fewest scenes drawn per round


@dataclass(frozen=True)
class PathfinderParams:
    """Everything that determines the generated images besides the seed and the counts.

    Distances are fractions of the image side; ``max_arm`` is the longest control arm of a
    curve as a fraction of its chord (0 draws straight lines). Pixel sizes left ``None`` scale
    with the resolution (per 32 pixels of side: 1 pixel of line width, 1 of marker radius,
    2 of gap, 4 of margin).
    """

    task: ClassVar[str] = "pathfinder"
    format_version: ClassVar[int] = 2  # bump whenever the same parameters draw other images

    resolution: int = 32
    num_distractors: int = 0
    min_dist: float = 0.45
    max_dist: float = 0.8
    max_arm: float = 0.4
    margin: int | None = None
    line_width: int | None = None
    marker_radius: int | None = None
    min_gap: int | None = None

    def resolved(self) -> _Geometry:
        """These parameters with every ``None`` replaced by its resolution-scaled value."""
        scale = self.resolution / 32
        radius = max(1, round(scale))
        return _Geometry(
            resolution=self.resolution,
            num_distractors=self.num_distractors,
            min_dist=self.min_dist,
            max_dist=self.max_dist,
            max_arm=self.max_arm,
            margin=self.resolution // 8 if self.margin is None else self.margin,
            line_width=radius if self.line_width is None else self.line_width,
            marker_radius=radius if self.marker_radius is None else self.marker_radius,
            min_gap=max(1, round(2 * scale)) if self.min_gap is None else self.min_gap,
        )

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first parameter that cannot produce valid samples."""
        p = self.resolved()
        checks = [
            ("resolution", p.resolution >= 16, "an integer >= 16"),
            ("num_distractors", 0 <= p.num_distractors <= 8, "an integer in [0, 8]"),
            ("min_dist", 0.1 <= p.min_dist <= p.max_dist, "a fraction in [0.1, max_dist]"),
            ("max_dist", p.max_dist <= 1.0, "a fraction <= 1.0"),
            ("max_arm", 0.0 <= p.max_arm <= 1.0, "a fraction in [0, 1]"),
            ("margin", 0 <= p.margin < p.resolution // 4, "in [0, resolution / 4)"),
            ("line_width", p.line_width >= 1, "an integer >= 1"),
            ("marker_radius", p.marker_radius >= 0, "an integer >= 0"),
            ("min_gap", p.min_gap >= 1, "an integer >= 1"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise ValueError(
                    f"pathfinder {name}: expected {expected}, found {getattr(p, name)!r}"
                )


@dataclass(frozen=True)
class _Geometry:
    """:class:`PathfinderParams` with every size resolved to pixels."""

    resolution: int
    num_distractors: int
    min_dist: float
    max_dist: float
    max_arm: float
    margin: int
    line_width: int
    marker_radius: int
    min_gap: int


def generate_pathfinder(
    num_samples: int, seed: int, params: PathfinderParams | None = None
) -> ArrayDataset:
    """``num_samples`` images and labels, a deterministic function of ``seed`` and ``params``."""
    params = params or PathfinderParams()
    params.validate()
    p = params.resolved()
    rng = np.random.default_rng(seed)
    labels = np.arange(num_samples, dtype=np.int64) % 2
    labels = labels[rng.permutation(num_samples)]
    images = np.empty((num_samples, 3, p.resolution, p.resolution), dtype=np.uint8)
    for start in range(0, num_samples, _CHUNK):
        chunk = labels[start : start + _CHUNK]
        images[start : start + len(chunk)] = _render_valid(rng, chunk, p)
    return ArrayDataset(images, labels, CLASS_NAMES)


def _render_valid(rng: np.random.Generator, labels: np.ndarray, p: _Geometry) -> np.ndarray:
    """Images for ``labels``: draw batches of scenes, keep the complete ones in order.

    Scenes do not depend on labels, so batches can be larger than what is missing; they never
    shrink below ``_MIN_BATCH``, which keeps rounds few when few scenes fit.
    """
    side = p.resolution
    out = np.empty((len(labels), 3, side, side), dtype=np.uint8)
    done = drawn = 0
    while done < len(labels):
        if drawn > _MAX_DRAWS_PER_SAMPLE * len(labels):
            raise ValueError(
                f"pathfinder parameters {p}: fewer than one scene in {_MAX_DRAWS_PER_SAMPLE} "
                "fits; give the curves more room (fewer distractors, smaller min_dist, "
                "min_gap or margin, or a larger resolution)"
            )
        batch = max(2 * (len(labels) - done), _MIN_BATCH)
        ink, first, mates, complete = _draw_scenes(rng, batch, p)
        drawn += batch
        keep = np.flatnonzero(complete)[: len(labels) - done]
        connected = labels[done : done + len(keep)] == 1
        # The second marker goes on Q (the other end of P's curve) or on S (another curve).
        mate = np.where(connected[:, None], mates[keep, 0], mates[keep, 1])
        squares = np.concatenate(
            [_square_pixels(first[keep], p.marker_radius), _square_pixels(mate, p.marker_radius)],
            axis=1,
        )
        markers = np.zeros((len(keep), side, side), dtype=bool)
        markers[np.arange(len(keep))[:, None], squares[..., 0], squares[..., 1]] = True
        for ch in range(3):
            out[done : done + len(keep), ch] = np.where(
                markers, MARKER_COLOUR[ch], np.where(ink[keep], CURVE_COLOUR[ch], 0)
            )
        done += len(keep)
    return out


def _draw_scenes(
    rng: np.random.Generator, n: int, p: _Geometry
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``n`` candidate scenes: ink masks, P, the possible second markers (Q, S), completeness.

    Curve X runs from P to Q, curve Y from S to R, with S as far from P as a curve's ends are
    from each other. Curves are placed one after another; one that leaves the margin or comes
    within ``min_gap`` of what is drawn (its ends counted with marker squares) is redrawn up to
    ``_RETRIES`` times, after which its scene is incomplete.
    """
    side = p.resolution
    ring = _ring(p.min_dist * side, p.max_dist * side)
    # Endpoints stay inside the margin by the marker radius, so markers do too.
    box = (p.margin + p.marker_radius, side - 1 - p.margin - p.marker_radius)
    fixed, free = np.zeros(n, dtype=bool), np.ones(n, dtype=bool)
    first = _uniform_points(rng, n, box)
    second, complete = _partners(rng, first, ring, box)

    ink = np.zeros((n, side, side), dtype=bool)
    ends = []  # per curve: (start, end) after placement
    plans = [(first, fixed), (second, fixed)] + [(first, free)] * p.num_distractors
    for origin, free_start in plans:
        start, end = origin.copy(), origin.copy()
        taken = _dilate(ink, p.min_gap)
        todo = np.flatnonzero(complete)
        for _ in range(_RETRIES):
            if not len(todo):
                break
            redo = todo[free_start[todo]]
            start[redo] = _uniform_points(rng, len(redo), box)
            end[todo], fits = _partners(rng, start[todo], ring, box)
            curve, inside = _curve_pixels(rng, start[todo], end[todo], p)
            body = np.concatenate(
                [
                    curve,
                    _square_pixels(start[todo], p.marker_radius),
                    _square_pixels(end[todo], p.marker_radius),
                ],
                axis=1,
            )
            fits &= inside & ~taken[todo[:, None], body[..., 0], body[..., 1]].any(axis=1)
            done = todo[fits]
            ink[done[:, None], curve[fits, :, 0], curve[fits, :, 1]] = True
            todo = todo[~fits]
        complete[todo] = False
        ends.append((start, end))
    return ink, first, np.stack([ends[0][1], ends[1][0]], axis=1), complete


def _uniform_points(rng: np.random.Generator, n: int, box: tuple[int, int]) -> np.ndarray:
    return rng.integers(box[0], box[1] + 1, size=(n, 2))


def _ring(lo: float, hi: float) -> np.ndarray:
    """Integer offsets ``(k, 2)`` whose length lies in ``[lo, hi]``."""
    r = int(np.floor(hi))
    grid = np.stack(np.meshgrid(np.arange(-r, r + 1), np.arange(-r, r + 1)), -1).reshape(-1, 2)
    length = np.hypot(grid[:, 0], grid[:, 1])
    return grid[(length >= lo) & (length <= hi)]


def _partners(
    rng: np.random.Generator, points: np.ndarray, ring: np.ndarray, box: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """For each point, a uniformly chosen point of ``box`` at an offset from ``ring``, and
    whether one was found (a point near the centre of a small box has few or none)."""
    out, found = points.copy(), np.zeros(len(points), dtype=bool)
    todo = np.arange(len(points))
    for _ in range(_RETRIES):
        cand = points[todo] + ring[rng.integers(0, len(ring), size=len(todo))]
        ok = ((cand >= box[0]) & (cand <= box[1])).all(axis=1)
        out[todo[ok]], found[todo[ok]] = cand[ok], True
        todo = todo[~ok]
    return out, found


def _square_pixels(centres: np.ndarray, radius: int) -> np.ndarray:
    """Pixel coordinates ``(n, (2r+1)^2, 2)`` of a square of half-side ``radius`` per centre."""
    span = np.arange(-radius, radius + 1)
    offsets = np.stack(np.meshgrid(span, span, indexing="ij"), axis=-1).reshape(-1, 2)
    return centres[:, None, :] + offsets


def _curve_pixels(
    rng: np.random.Generator, start: np.ndarray, stop: np.ndarray, p: _Geometry
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates ``(n, k, 2)`` of random cubic Bezier curves from ``start`` to ``stop``
    (repeats allowed), and whether each stays inside the margin.

    Each end's control arm points in a uniformly random direction, so the direction in which a
    curve leaves one end says nothing about where its other end is: the two markers of a
    connected pair look, locally, like those of a disconnected one.
    """
    n, side, width = len(start), p.resolution, p.line_width
    start, stop = start.astype(np.float64), stop.astype(np.float64)
    chord = np.hypot(*(stop - start).T)[:, None]
    angle = rng.uniform(0.0, 2 * np.pi, size=(n, 2))
    arm = rng.uniform(0.0, p.max_arm, size=(n, 2)) * chord
    c1 = start + arm[:, :1] * np.stack([np.sin(angle[:, 0]), np.cos(angle[:, 0])], axis=1)
    c2 = stop + arm[:, 1:] * np.stack([np.sin(angle[:, 1]), np.cos(angle[:, 1])], axis=1)
    # The control polygon is longer than the curve: that many steps keep each step under a
    # pixel, so the rounded points form an 8-connected line.
    polygon = np.hypot(*(c1 - start).T) + np.hypot(*(c2 - c1).T) + np.hypot(*(stop - c2).T)
    t = np.linspace(0.0, 1.0, int(np.ceil(polygon.max(initial=1.0))) + 2)[:, None]
    bernstein = np.concatenate([(1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t**2, t**3], 1)
    pts = bernstein @ np.stack([start, c1, c2, stop], axis=1)  # (n, steps, 2)
    corner = np.rint(pts - (width - 1) / 2).astype(np.int64)  # top-left of each stroke square
    inside = ((corner >= p.margin) & (corner <= side - p.margin - width)).all(axis=(1, 2))
    corner = np.clip(corner, 0, side - width)
    stroke = np.stack(np.meshgrid(np.arange(width), np.arange(width)), axis=-1).reshape(-1, 2)
    return (corner[:, :, None, :] + stroke).reshape(n, -1, 2), inside


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Grow ``(n, H, W)`` masks by a square of half-side ``radius`` (separable max filter)."""
    out = mask.copy()
    for axis in (1, 2):
        grown = out.copy()
        for shift in range(1, radius + 1):
            lead = [slice(None)] * 3
            lag = [slice(None)] * 3
            lead[axis], lag[axis] = slice(shift, None), slice(None, -shift)
            grown[tuple(lead)] |= out[tuple(lag)]
            grown[tuple(lag)] |= out[tuple(lead)]
        out = grown
    return out
