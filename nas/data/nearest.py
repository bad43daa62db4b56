"""The built-in default dataset: "which marker is nearer to the red one?" (``task: nearest``).

A sample (``resolution`` x ``resolution``, default 32, black background) holds a red reference
marker, a blue and a green candidate marker and ``num_distractors`` white ones (square markers,
``resolution / 32`` pixels of half-side). The label is which candidate is nearer to the
reference (1: blue, 0: green), in Euclidean distance between marker centres.

Why this task: the label is a relation between objects far apart. Both candidates are at least
``min_dist`` of the side from the reference (a quarter by default), and the farther one is at
least ``min_ratio`` times farther than the nearer one, so the label is never a near-tie, but
deciding it needs the positions of three markers that no small window holds together. Unlike
Pathfinder (:mod:`nas.data.pathfinder`), small MetaFormers learn it within a proxy budget (a
pooling-only 3-stage proxy: 93% validation accuracy after 4 CPU epochs of 4,000 images, 95%
after 6), and mixers differ on it (``benchmarks/mixer_accuracy.py``: zero-padded global and
large-kernel mixers gain 1-3 points over pooling; attention, which has no position information
here, loses 2.4). At 32 px a 3-stage MetaFormer's downsampling convolutions already give every
network a receptive field of the whole image by its last stage, so the mixer's own reach
decides only in the first stages, which keeps these gaps modest.

Positions are drawn before the label, and the label only decides which candidate is coloured
blue, so both classes have the same geometry distribution. Labels are balanced exactly (for an
even count). All markers stay ``margin`` pixels (default ``resolution // 8``) inside the border
and distances do not change under flips or translations, so the loaders' random crop (padding up
to ``margin``) and flips never change the label.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from nas.data.arrays import ArrayDataset

CLASS_NAMES = ("green_nearer", "blue_nearer")
REFERENCE_COLOUR = (255, 0, 0)
NEAR_COLOURS = ((0, 255, 0), (0, 0, 255))  # the candidate colours, indexed by label
DISTRACTOR_COLOUR = (255, 255, 255)
_MAX_DRAWS_PER_SAMPLE = 200  # more means the parameters leave (almost) no room
_MIN_BATCH = 256  # fewest scenes drawn per round


@dataclass(frozen=True)
class NearestParams:
    """Everything that determines the generated images besides the seed and the counts.

    ``min_dist`` is a fraction of the image side; ``min_ratio`` is the least farther / nearer
    distance ratio (larger is easier). Pixel sizes left ``None`` scale with the resolution (per
    32 pixels of side: 1 pixel of marker half-side, 1 of empty gap between markers, 4 of margin).
    """

    task: ClassVar[str] = "nearest"
    format_version: ClassVar[int] = 1  # bump whenever the same parameters draw other images

    resolution: int = 32
    num_distractors: int = 0
    min_dist: float = 0.25
    min_ratio: float = 1.1
    margin: int | None = None
    marker_radius: int | None = None
    min_gap: int | None = None

    def resolved(self) -> NearestParams:
        """These parameters with every ``None`` replaced by its resolution-scaled value."""
        scale = self.resolution / 32
        size = max(1, round(scale))
        return NearestParams(
            resolution=self.resolution,
            num_distractors=self.num_distractors,
            min_dist=self.min_dist,
            min_ratio=self.min_ratio,
            margin=self.resolution // 8 if self.margin is None else self.margin,
            marker_radius=size if self.marker_radius is None else self.marker_radius,
            min_gap=size if self.min_gap is None else self.min_gap,
        )

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first parameter that cannot produce valid samples."""
        p = self.resolved()
        checks = [
            ("resolution", p.resolution >= 16, "an integer >= 16"),
            ("num_distractors", 0 <= p.num_distractors <= 8, "an integer in [0, 8]"),
            ("min_dist", 0.05 <= p.min_dist <= 0.7, "a fraction in [0.05, 0.7]"),
            ("min_ratio", 1.0 <= p.min_ratio <= 2.5, "a ratio in [1, 2.5]"),
            ("margin", 0 <= p.margin < p.resolution // 4, "in [0, resolution / 4)"),
            ("marker_radius", 0 <= p.marker_radius <= p.resolution // 16, "in [0, side / 16]"),
            ("min_gap", p.min_gap >= 0, "an integer >= 0"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise ValueError(f"nearest {name}: expected {expected}, found {getattr(p, name)!r}")


def generate_nearest(
    num_samples: int, seed: int, params: NearestParams | None = None
) -> ArrayDataset:
    """``num_samples`` images and labels, a deterministic function of ``seed`` and ``params``."""
    params = params or NearestParams()
    params.validate()
    p = params.resolved()
    rng = np.random.default_rng(seed)
    labels = np.arange(num_samples, dtype=np.int64) % 2
    labels = labels[rng.permutation(num_samples)]
    centres = place_markers(rng, num_samples, p)
    colours = np.empty((num_samples, centres.shape[1], 3), dtype=np.uint8)
    colours[:, 0] = REFERENCE_COLOUR
    near = np.array(NEAR_COLOURS, dtype=np.uint8)
    colours[:, 1] = near[labels]
    colours[:, 2] = near[1 - labels]
    colours[:, 3:] = DISTRACTOR_COLOUR
    return ArrayDataset(_render(centres, colours, p), labels, CLASS_NAMES)


def place_markers(rng: np.random.Generator, n: int, p: NearestParams) -> np.ndarray:
    """Marker centres ``(n, 3 + num_distractors, 2)`` (row, column): reference, nearer
    candidate, farther candidate, distractors; every scene meets ``p``'s constraints.

    Scenes are drawn uniformly in batches and the valid ones kept in order (rejection sampling),
    so each kept scene is uniform over the scenes that meet the constraints.
    """
    assert p.marker_radius is not None and p.margin is not None and p.min_gap is not None
    low = p.margin + p.marker_radius
    high = p.resolution - 1 - p.margin - p.marker_radius
    count = 3 + p.num_distractors
    separation = 2 * p.marker_radius + 1 + p.min_gap  # centre spacing that leaves min_gap empty
    pairs = np.triu_indices(count, 1)
    out = np.empty((n, count, 2), dtype=np.int64)
    done = drawn = 0
    while done < n:
        if drawn > _MAX_DRAWS_PER_SAMPLE * n:
            raise ValueError(
                f"nearest parameters {p}: fewer than one scene in {_MAX_DRAWS_PER_SAMPLE} "
                "fits; give the markers more room (smaller min_dist, min_ratio, margin or "
                "fewer distractors, or a larger resolution)"
            )
        batch = max(2 * (n - done), _MIN_BATCH)
        scenes = rng.integers(low, high + 1, size=(batch, count, 2))
        drawn += batch
        apart = np.abs(scenes[:, pairs[0]] - scenes[:, pairs[1]]).max(axis=2) >= separation
        dist = np.hypot(*(scenes[:, 1:3] - scenes[:, :1]).transpose(2, 0, 1))
        nearer, farther = dist.min(axis=1), dist.max(axis=1)
        ok = (
            apart.all(axis=1)
            & (nearer >= p.min_dist * p.resolution)
            & (farther >= p.min_ratio * nearer)
        )
        keep = np.flatnonzero(ok)[: n - done]
        swap = dist[keep, 1] < dist[keep, 0]  # put the nearer candidate at index 1
        scenes[keep[swap], 1:3] = scenes[keep[swap], 2:0:-1]
        out[done : done + len(keep)] = scenes[keep]
        done += len(keep)
    return out


def _render(centres: np.ndarray, colours: np.ndarray, p: NearestParams) -> np.ndarray:
    """Images ``(n, 3, side, side)``: a filled square per marker on black."""
    assert p.marker_radius is not None
    n, count, _ = centres.shape
    span = np.arange(-p.marker_radius, p.marker_radius + 1)
    offsets = np.stack(np.meshgrid(span, span, indexing="ij"), axis=-1).reshape(-1, 2)
    pixels = (centres[:, :, None, :] + offsets).reshape(n, -1, 2)
    values = np.repeat(colours, len(offsets), axis=1)  # (n, count * square, 3)
    images = np.zeros((n, 3, p.resolution, p.resolution), dtype=np.uint8)
    rows = np.arange(n)[:, None]
    for ch in range(3):
        images[rows, ch, pixels[..., 0], pixels[..., 1]] = values[..., ch]
    return images
