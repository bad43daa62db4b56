"""Ray Tune's two extension points, each a thin shell around :class:`SearchDriver`.

Ray's stock OptunaSearch cannot be used: it creates its study with NopPruner, sends no
intermediate values for multi-objective metrics, and tells a trial stopped by a scheduler as
COMPLETE with partial-budget values. Here the scheduler records every result and asks the
study's pruner; the searcher does ask/tell and knows which trials were pruned.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

import ray
from ray import cloudpickle
from ray.exceptions import ActorUnavailableError, OutOfMemoryError, RayActorError, RayTaskError
from ray.tune.schedulers import FIFOScheduler, TrialScheduler
from ray.tune.search import Searcher

from nas.search.driver import FINISHED, SearchDriver

NODE_DEATH_WAIT_S = 30.0
"""How long a trial whose worker became unreachable waits for Ray to declare its node dead: Ray
does so after ~15 s of missed health checks (every 3 s, 5 missed, by default)."""


class _DriverBound:
    """Ray pickles searchers and schedulers into its experiment state; the driver (study,
    database engine) stays in this process, since searches resume from the store instead."""

    driver: SearchDriver | None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "driver": None}


class AskTellSearcher(_DriverBound, Searcher):
    """Suggests architectures by ``study.ask()`` and tells outcomes back to the study."""

    def __init__(self, driver: SearchDriver):
        super().__init__()
        self.driver = driver

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict, **spec: Any
    ) -> bool:
        return True

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        suggestion = self.driver.suggest(trial_id)
        return Searcher.FINISHED if suggestion == FINISHED else suggestion

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        self.driver.on_complete(trial_id, result, error)


class PruningScheduler(_DriverBound, FIFOScheduler):
    """Records each reported result and stops the trial when the study's pruner says so."""

    def __init__(self, driver: SearchDriver):
        super().__init__()
        self.driver = driver

    def on_trial_error(self, tune_controller: Any, trial: Any) -> None:
        """Tell the driver the cause Ray knows before the searcher is told the trial failed:
        its node was lost (the trial is run again), or why its worker failed."""
        super().on_trial_error(tune_controller, trial)
        error = _trial_error(trial)
        placement = self.driver.placement(trial.trial_id)
        lost = lost_node(placement, error)
        if lost is not None:
            self.driver.on_error(trial.trial_id, lost, node_lost=True)
        else:
            self.driver.on_error(trial.trial_id, describe_trial_error(error, placement))

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        if self.driver.on_result(trial.trial_id, result):
            return TrialScheduler.STOP
        return TrialScheduler.CONTINUE


def _trial_error(trial: Any) -> BaseException | None:
    """The exception Tune has just written beside the trial (locally, before any sync)."""
    path = trial.pickled_error_file
    if path and os.path.exists(path):
        with open(path, "rb") as f:
            return cloudpickle.load(f)
    path = trial.error_file
    if path and os.path.exists(path):
        with open(path) as f:
            return RuntimeError(f.read())
    return None


def lost_node(placement: dict[str, Any] | None, error: BaseException | None) -> str | None:
    """``node lost: ...`` naming the node, when a trial's worker failed because its node
    left the cluster; None when the trial raised, its node lives, or it never said where it
    ran. An unreachable worker (what a vanished node looks like first) waits for Ray's verdict
    on the node, up to ``NODE_DEATH_WAIT_S``; a dead one is checked at once."""
    if placement is None or not isinstance(error, RayActorError):
        return None
    node_id, host = placement["node_id"], placement["node_host"]
    wait = NODE_DEATH_WAIT_S if isinstance(error, ActorUnavailableError) else 0.0
    if not _node_died(node_id, wait):
        return None
    return (
        f"node lost: Ray node {node_id} ({host}) left the cluster while this trial ran; "
        "its architecture is run again"
    )


def _node_died(node_id: str, wait_s: float) -> bool:
    deadline = time.monotonic() + wait_s
    while True:
        alive = {n["NodeID"]: n.get("Alive", False) for n in ray.nodes()}
        if not alive.get(node_id, False):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.5)


def describe_trial_error(
    error: BaseException | None, placement: dict[str, Any] | None = None
) -> str:
    """One line for a trial whose worker failed: out of memory, node lost, process killed or
    crashed (with its pid and node, from Ray's message or else from where the trial said it
    ran), or the exception the trainable raised."""
    if error is None:
        return "the trial's worker failed; Ray recorded no cause"
    text = str(error)
    placement = placement or {}
    pid = _found(r"\bpid[:=] ?(\d+)", text) or placement.get("pid")
    ip = _found(r"\bip[:=] ?([\w.:-]+)", text) or placement.get("node_host")
    where = ", ".join(
        part for part in (f"pid {pid}" if pid else "", f"node {ip}" if ip else "") if part
    )
    where = f" ({where})" if where else ""
    if isinstance(error, OutOfMemoryError) or "low on memory" in text:
        return f"out of memory: Ray's memory monitor killed the worker{where}"
    if "node has died" in text or "node died" in text.lower():
        return f"node lost: the worker's node died{where}"
    if isinstance(error, RayActorError):
        detail = re.search(r"Worker exit detail: ([^.]*)", text)
        cause = f": {detail[1].strip()}" if detail else ""
        return f"the worker process died (killed or crashed){where}{cause}"
    if isinstance(error, RayTaskError):
        cause = error.cause if error.cause is not None else error
        lines = [line for line in str(cause).strip().splitlines() if line.strip()]
        return f"the trial raised {type(cause).__name__}: {lines[-1] if lines else ''}"
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return f"the trial failed: {lines[-1] if lines else type(error).__name__}"


def _found(pattern: str, text: str) -> str | None:
    match = re.search(pattern, text)
    return match[1] if match else None
