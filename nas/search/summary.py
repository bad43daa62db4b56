"""What a finished search found, with its noise: the distinct front, ties, and seed designs.

Shared by ``nas search`` (its closing summary) and ``nas export`` (the tied-knee warning), so both
say the same thing about the same store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from nas.search.config import stored_throughput_key
from nas.search.noise import tied_with
from nas.search.pareto import dominated_by
from nas.search.runner import distinct_complete, pareto_front
from nas.store import SearchStore
from nas.store.models import Search


@dataclass(frozen=True)
class FrontMember:
    """A front trial with each objective's interval (accuracy: 95% Wilson; throughput: the
    measurement's interquartile range; params and MACs are exact) and its ties."""

    trial: FrozenTrial
    lows: tuple[float, ...]
    highs: tuple[float, ...]
    tied_with: tuple[int, ...]
    reference: str | None
    arch_hash: str


@dataclass(frozen=True)
class ReferenceVerdict:
    """Which evaluated seed designs the searched architectures dominate."""

    dominated: tuple[str, ...]
    not_dominated: tuple[str, ...]
    not_evaluated: tuple[tuple[str, str], ...]

    def line(self) -> str:
        n = len(self.dominated) + len(self.not_dominated)
        text = f"front dominates {len(self.dominated)} of {n} seed designs"
        if self.not_dominated:
            text += "; not dominated: " + ", ".join(self.not_dominated)
        if self.not_evaluated:
            text += "; not evaluated: " + ", ".join(f"{n} ({r})" for n, r in self.not_evaluated)
        return text


def objective_intervals(
    trials: Sequence[FrozenTrial], search: Search, store: SearchStore
) -> tuple[np.ndarray, np.ndarray]:
    """``(n, d)`` lows and highs of every objective of ``trials``, from the store's noise."""
    rows = {r.number: r for r in store.trials(search.id)}
    key = stored_throughput_key(search.config)
    lows = np.array([t.values for t in trials], dtype=float).reshape(len(trials), -1)
    highs = lows.copy()
    for i, t in enumerate(trials):
        row = rows.get(t.number)
        for k, name in enumerate(search.objectives):
            if name == "accuracy" and row is not None and row.accuracy_low is not None:
                lows[i, k], highs[i, k] = row.accuracy_low, row.accuracy_high
            elif name == "throughput":
                spread = _spread(store, t.user_attrs.get("arch_hash"), key)
                if "q25" in spread:
                    lows[i, k], highs[i, k] = spread["q25"], spread["q75"]
    return lows, highs


def _spread(store: SearchStore, arch_hash: str | None, key: str) -> dict:
    for row in store.throughputs(arch_hash) if arch_hash else []:
        if row.setting_key == key:
            return row.spread or {}
    return {}


def front_members(study: optuna.Study, search: Search, store: SearchStore) -> list[FrontMember]:
    """The distinct Pareto front, best first objective first, each member with its ties."""
    front = sorted(pareto_front(study), key=lambda t: t.values[0], reverse=True)
    lows, highs = objective_intervals(front, search, store)
    ties = tied_with(lows, highs)
    return [
        FrontMember(
            trial=t,
            lows=tuple(lows[i]),
            highs=tuple(highs[i]),
            tied_with=tuple(front[j].number for j in ties[i]),
            reference=t.user_attrs.get("reference"),
            arch_hash=t.user_attrs.get("arch_hash", ""),
        )
        for i, t in enumerate(front)
    ]


def reference_verdict(study: optuna.Study, directions: Sequence[str]) -> ReferenceVerdict | None:
    """Seed designs dominated by some searched (non-reference) completed architecture; None
    when the search evaluated none."""
    trials = study.get_trials(deepcopy=False)
    references = [t for t in trials if "reference" in t.user_attrs]
    if not references:
        return None
    complete = distinct_complete(study)
    searched = [t for t in complete if "reference" not in t.user_attrs]
    evaluated = [t for t in references if t.state == TrialState.COMPLETE]
    beaten = dominated_by(
        np.array([t.values for t in evaluated], dtype=float).reshape(-1, len(directions)),
        np.array([t.values for t in searched], dtype=float).reshape(-1, len(directions)),
        list(directions),
    )
    dominated = [t.user_attrs["reference"] for t, b in zip(evaluated, beaten, strict=True) if b]
    kept = [t.user_attrs["reference"] for t, b in zip(evaluated, beaten, strict=True) if not b]
    failed = tuple(
        (t.user_attrs["reference"], t.user_attrs.get("reason", t.state.name))
        for t in references
        if t.state != TrialState.COMPLETE and not t.user_attrs.get("interrupted")
    )
    return ReferenceVerdict(tuple(dominated), tuple(kept), failed)
