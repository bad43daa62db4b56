"""Choose one trial of a finished search: by number, the front's knee, or an extreme."""

from __future__ import annotations

from typing import Literal

import numpy as np
from optuna.trial import FrozenTrial, TrialState

from nas.search.pareto import knee_point

Pick = Literal["knee", "max-accuracy", "max-throughput"]


def select_trial(
    trials: list[FrozenTrial],
    front: list[FrozenTrial],
    objective_names: list[str],
    directions: list[str],
    trial_number: int | None = None,
    pick: Pick = "knee",
) -> FrozenTrial:
    """The trial numbered ``trial_number`` (it must be COMPLETE), else ``pick`` on the front."""
    if trial_number is not None:
        match = [t for t in trials if t.number == trial_number]
        if not match:
            raise ValueError(
                f"--trial {trial_number}: no such trial; trials are numbered 0..{len(trials) - 1}"
            )
        if match[0].state != TrialState.COMPLETE:
            state, reason = match[0].state.name, match[0].user_attrs.get("reason", "")
            raise ValueError(f"--trial {trial_number}: trial is {state}, not COMPLETE; {reason}")
        return match[0]
    if not front:
        raise ValueError("the search has no completed trial to export yet")
    if pick == "knee":
        values = np.array([t.values for t in front], dtype=float)
        return front[knee_point(values, directions)]
    objective = pick.removeprefix("max-")
    if objective not in objective_names:
        raise ValueError(
            f"--pick {pick}: the search has no {objective!r} objective ({objective_names})"
        )
    i = objective_names.index(objective)
    sign = 1.0 if directions[i] == "maximize" else -1.0
    return max(front, key=lambda t: (sign * t.values[i], -t.number))
