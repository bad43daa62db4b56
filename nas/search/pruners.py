"""Pruners for the search, including a Pareto-aware successive halving (MOASHA).

Optuna's own pruners rank a single value and ``trial.report`` raises in multi-objective
studies. Nor can the learning curve go into the storage's intermediate values there: TPE scores
PRUNED trials that have them with ``study.direction``, which multi-objective studies refuse.
So in multi-objective studies the driver keeps each trial's curve (validation accuracy per
epoch) in ``trial.user_attrs["learning_curve"]`` as ``{epoch: accuracy}``; single-objective
studies use Optuna's intermediate values. :func:`learning_curve` reads either. The other
objectives (e.g. throughput) are measured before training and stored in
``trial.user_attrs["objectives_known"]`` as ``{objective_index: value}``.
"""

from __future__ import annotations

import difflib
import inspect
import threading
import weakref
from typing import Any

import numpy as np
import optuna
from optuna.pruners import (
    BasePruner,
    HyperbandPruner,
    MedianPruner,
    NopPruner,
    SuccessiveHalvingPruner,
)
from optuna.study import StudyDirection

from nas.search.pareto import crowding_distance, non_dominated_sort

__all__ = [
    "KNOWN_OBJECTIVES_ATTR",
    "LEARNING_CURVE_ATTR",
    "ParetoSuccessiveHalvingPruner",
    "create_pruner",
    "learning_curve",
]

KNOWN_OBJECTIVES_ATTR = "objectives_known"
LEARNING_CURVE_ATTR = "learning_curve"


def learning_curve(trial: optuna.trial.FrozenTrial) -> dict[int, float]:
    """Validation accuracy per epoch: Optuna's intermediate values, else the user attribute
    (JSON storages turn its integer keys into strings)."""
    if trial.intermediate_values:
        return dict(trial.intermediate_values)
    curve = trial.user_attrs.get(LEARNING_CURVE_ATTR) or {}
    return {int(step): float(value) for step, value in curve.items()}


class ParetoSuccessiveHalvingPruner(BasePruner):
    """Asynchronous successive halving ranked by non-dominated sorting (MOASHA).

    Salinas et al. 2021: tuning hardware objectives with accuracy wastes most of the budget
    unless early stopping is Pareto-aware. A cheap but less accurate model can be on the
    front, so ranking by accuracy alone (ASHA) would stop exactly the trade-offs sought.

    Rungs are at epochs ``min_resource * reduction_factor ** (k + min_early_stopping_rate)``
    for k = 0, 1, ... At a rung the trial competes with every trial of the study, in any
    state, that has a value at that epoch. Each competitor is the point (rung accuracy, known
    other objectives) under the study's directions, ordered by non-dominated rank, then by
    larger crowding distance within the front (the more isolated trade-off goes first). The
    trial is promoted iff fewer than ``max(1, n // reduction_factor)`` competitors come
    strictly before it, as in Optuna's ``SuccessiveHalvingPruner``, where the first trials at
    a rung still promote the best. Ties are broken in the trial's favour (it is promoted if
    equal to the last promoted position, like Optuna's ``>=``), which is deterministic and
    independent of trial order; duplicates share a crowding distance.

    A finished trial never changes in Optuna, so its rung points are read once and kept (per
    storage and study); only unfinished trials are read again at each decision. A decision
    then costs a pass over the study's trial list plus the non-dominated sort of the rung,
    instead of rebuilding every competitor's point from its attributes each time.

    Only the rung reached by the last reported step is judged: between rungs, or with no
    values, ``prune`` returns False. A NaN rung accuracy or NaN known objective is never on a
    front, so such a trial is pruned and such competitors are left out; a competitor without
    the known objectives is left out too, while the trial being judged must have them (the
    driver writes them before training; their absence is a bug worth surfacing). Keys of
    ``objectives_known`` may be ints or strings (JSON storages turn them into strings).
    The pruner writes nothing and its cache only repeats what the study holds, so any number
    of workers can share it.
    """

    def __init__(
        self,
        min_resource: int = 1,
        reduction_factor: int = 3,
        min_early_stopping_rate: int = 0,
        accuracy_objective: int = 0,
    ) -> None:
        checks = {
            "min_resource": (min_resource, 1),
            "reduction_factor": (reduction_factor, 2),
            "min_early_stopping_rate": (min_early_stopping_rate, 0),
            "accuracy_objective": (accuracy_objective, 0),
        }
        for name, (value, low) in checks.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
        self._min_resource = min_resource
        self._reduction_factor = reduction_factor
        self._min_early_stopping_rate = min_early_stopping_rate
        self._accuracy_objective = accuracy_objective
        self._init_cache()

    def _init_cache(self) -> None:
        self._lock = threading.Lock()
        # storage -> study id -> the rung points of its finished trials
        self._finished: weakref.WeakKeyDictionary[Any, dict[int, _FinishedRungs]] = (
            weakref.WeakKeyDictionary()
        )

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("_lock", "_finished")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_cache()

    def rung_step(self, rung: int) -> int:
        """Epoch at which rung ``rung`` (0-based) is judged."""
        return self._min_resource * self._reduction_factor ** (rung + self._min_early_stopping_rate)

    def rung_index(self, step: int) -> int | None:
        """Rung judged at ``step``, or None when ``step`` is between rungs."""
        rung = 0
        while (rung_step := self.rung_step(rung)) < step:
            rung += 1
        return rung if rung_step == step else None

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        curve = learning_curve(trial)
        step = max(curve, default=None)
        if step is None or self.rung_index(step) is None:
            return False
        directions = study.directions
        if self._accuracy_objective >= len(directions):
            raise ValueError(
                f"accuracy_objective={self._accuracy_objective} but the study has "
                f"{len(directions)} objective(s)"
            )
        own = self._point(trial, curve, step, len(directions))
        if own is None:
            raise ValueError(
                f"trial {trial.number} lacks objectives other than {self._accuracy_objective} "
                f"in user_attrs[{KNOWN_OBJECTIVES_ATTR!r}] (got "
                f"{trial.user_attrs.get(KNOWN_OBJECTIVES_ATTR)!r}); the search driver must "
                "store the objectives measured before training, e.g. {1: throughput}, "
                "before asking the pruner"
            )
        if np.isnan(own).any():
            return True
        numbers, others = self._competitors(study, step, len(directions))
        points = np.vstack([own, others[numbers != trial.number]])
        position = _pareto_position(
            points,
            ["maximize" if d == StudyDirection.MAXIMIZE else "minimize" for d in directions],
        )
        return position >= max(1, len(points) // self._reduction_factor)

    def _competitors(
        self, study: optuna.Study, step: int, n_objectives: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Numbers and points of every trial with a valid point at ``step``: finished trials
        from the cache (each read once), unfinished ones read now."""
        live_numbers, live_points = [], []
        with self._lock:
            finished = self._finished.setdefault(study._storage, {}).setdefault(
                study._study_id, _FinishedRungs(n_objectives)
            )
            for other in study.get_trials(deepcopy=False):
                if other.number in finished.read:
                    continue
                curve = learning_curve(other)
                if other.state.is_finished():
                    finished.read.add(other.number)
                    for rung_step in curve:
                        if self.rung_index(rung_step) is None:
                            continue
                        point = self._valid_point(other, curve, rung_step, n_objectives)
                        if point is not None:
                            finished.add(rung_step, other.number, point)
                elif step in curve:
                    point = self._valid_point(other, curve, step, n_objectives)
                    if point is not None:
                        live_numbers.append(other.number)
                        live_points.append(point)
            numbers, points = finished.at(step)
        return (
            np.concatenate([numbers, np.array(live_numbers, dtype=np.int64)]),
            np.vstack([points, np.array(live_points).reshape(-1, n_objectives)]),
        )

    def _valid_point(
        self, trial: optuna.trial.FrozenTrial, curve: dict[int, float], step: int, d: int
    ) -> np.ndarray | None:
        """A competitor's point at ``step``; None without its known objectives or with NaN."""
        point = self._point(trial, curve, step, d)
        return None if point is None or np.isnan(point).any() else point

    def _point(
        self,
        trial: optuna.trial.FrozenTrial,
        curve: dict[int, float],
        step: int,
        n_objectives: int,
    ) -> np.ndarray | None:
        """(rung accuracy, known objectives) of a trial, None if an objective is unknown."""
        known = trial.user_attrs.get(KNOWN_OBJECTIVES_ATTR) or {}
        point = np.empty(n_objectives)
        for k in range(n_objectives):
            if k == self._accuracy_objective:
                point[k] = curve[step]
                continue
            value = known.get(k, known.get(str(k)))
            if value is None:
                return None
            point[k] = float(value)
        return point


class _FinishedRungs:
    """The valid rung points of a study's finished trials, by step, in growable arrays; and
    which finished trials were read."""

    def __init__(self, n_objectives: int) -> None:
        self.read: set[int] = set()
        self._d = n_objectives
        self._rungs: dict[int, tuple[np.ndarray, np.ndarray, int]] = {}

    def add(self, step: int, number: int, point: np.ndarray) -> None:
        numbers, points, size = self._rungs.get(
            step, (np.empty(16, dtype=np.int64), np.empty((16, self._d)), 0)
        )
        if size == len(numbers):
            numbers = np.resize(numbers, 2 * size)
            points = np.resize(points, (2 * size, self._d))
        numbers[size] = number
        points[size] = point
        self._rungs[step] = (numbers, points, size + 1)

    def at(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        numbers, points, size = self._rungs.get(
            step, (np.empty(0, dtype=np.int64), np.empty((0, self._d)), 0)
        )
        return numbers[:size], points[:size]


def _pareto_position(points: np.ndarray, directions: list[str]) -> int:
    """How many points rank strictly ahead of ``points[0]`` by (front, -crowding). Crowding
    only orders points within ``points[0]``'s own front, so only that front's is computed."""
    ranks = non_dominated_sort(points, directions)
    crowding = crowding_distance(points[ranks == ranks[0]])  # points[0] comes first
    return int((ranks < ranks[0]).sum() + (crowding > crowding[0]).sum())


_PRUNERS: dict[str, type[BasePruner]] = {
    "pareto_sh": ParetoSuccessiveHalvingPruner,
    "median": MedianPruner,
    "successive_halving": SuccessiveHalvingPruner,
    "hyperband": HyperbandPruner,
    "none": NopPruner,
}
_SINGLE_OBJECTIVE = ("median", "successive_halving", "hyperband")


def create_pruner(kind: str, n_objectives: int, **kwargs: Any) -> BasePruner:
    """Build a pruner by name, refusing combinations that cannot work.

    Optuna's pruners rank one reported value, so with several objectives they are
    rejected up front rather than failing mid-search; "pareto_sh" works for any number of
    objectives (with one it is ASHA ranking by accuracy). ``kwargs`` go to the pruner's
    constructor; unknown ones are rejected by name.
    """
    if kind not in _PRUNERS:
        close = difflib.get_close_matches(kind, _PRUNERS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"unknown pruner kind {kind!r}: expected one of {', '.join(_PRUNERS)}{hint}"
        )
    if n_objectives < 1:
        raise ValueError(f"n_objectives must be >= 1, got {n_objectives}")
    if n_objectives > 1 and kind in _SINGLE_OBJECTIVE:
        raise ValueError(
            f"pruner kind {kind!r} is single-objective: Optuna's {_PRUNERS[kind].__name__} "
            f"ranks one reported value, but the study has {n_objectives} objectives; use "
            "'pareto_sh' (Pareto-aware successive halving, MOASHA) or 'none'"
        )
    cls = _PRUNERS[kind]
    accepted = [
        name
        for name, param in inspect.signature(cls).parameters.items()
        if param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY)
    ]
    unknown = [name for name in kwargs if name not in accepted]
    if unknown:
        hints = [
            f"{name!r} (did you mean {close[0]!r}?)"
            if (close := difflib.get_close_matches(name, accepted, n=1))
            else repr(name)
            for name in unknown
        ]
        raise ValueError(
            f"pruner kind {kind!r} does not accept {', '.join(hints)}; accepted: "
            f"{', '.join(accepted) or 'no arguments'}"
        )
    return cls(**kwargs)
