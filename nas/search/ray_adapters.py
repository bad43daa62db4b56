"""Ray Tune's two extension points, each a thin shell around :class:`SearchDriver`.

Ray's stock OptunaSearch cannot be used: it creates its study with NopPruner, sends no
intermediate values for multi-objective metrics, and tells a trial stopped by a scheduler as
COMPLETE with partial-budget values. Here the scheduler records every result and asks the
study's pruner; the searcher does ask/tell and knows which trials were pruned.
"""

from __future__ import annotations

from typing import Any

from ray.tune.schedulers import FIFOScheduler, TrialScheduler
from ray.tune.search import Searcher

from nas.search.driver import FINISHED, SearchDriver


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

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        if self.driver.on_result(trial.trial_id, result):
            return TrialScheduler.STOP
        return TrialScheduler.CONTINUE
