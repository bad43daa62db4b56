"""The search driver: the one place that links Ray trials, the Optuna study and the store.

Ray Tune calls it through two thin adapters (a Searcher for ask/tell, a TrialScheduler for
results and pruning). It runs in the driver process only, which makes it the single writer of
the database. A trial that the pruner stops is told to Optuna as PRUNED, never COMPLETE, so
partial-budget values can never reach a Pareto front.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from nas.models.spec import SpecError
from nas.search.config import SearchConfig
from nas.search.pruners import KNOWN_OBJECTIVES_ATTR, LEARNING_CURVE_ATTR
from nas.store import SearchStore

FINISHED = "FINISHED"
MAX_INVALID_IN_A_ROW = 50


@dataclass
class Progress:
    """Counts for the live display, and the objective values of completed trials."""

    requested: int
    done: int = 0
    running: int = 0
    pruned: int = 0
    failed: int = 0
    completed_values: list[list[float]] = field(default_factory=list)

    @property
    def finished(self) -> int:
        return self.done + self.pruned + self.failed


def objective_values(cfg: SearchConfig, accuracy: float, measured: dict[str, Any]) -> list[float]:
    """The study's objective vector: accuracy, img/s, params in M, GMACs."""
    by_name = {
        "accuracy": accuracy,
        "throughput": measured.get("images_per_s"),
        "params": measured["params"] / 1e6,
        "macs": measured["macs"] / 1e9,
    }
    return [float(by_name[name]) for name in cfg.objective_names]


class SearchDriver:
    def __init__(
        self,
        cfg: SearchConfig,
        study: optuna.Study,
        store: SearchStore,
        search_id: int,
        pruner: optuna.pruners.BasePruner,
        budget: int,
        progress: Progress,
        on_progress: Callable[[Progress], None] | None = None,
        release_lock: Callable[[str], None] | None = None,
    ):
        self.cfg = cfg
        self.study = study
        self.store = store
        self.search_id = search_id
        self.pruner = pruner
        self.budget = budget
        self.progress = progress
        self._on_progress = on_progress or (lambda p: None)
        self._release_lock = release_lock or (lambda holder: None)
        self._asked = 0
        self._trials: dict[str, optuna.Trial] = {}
        self._measured: dict[str, dict[str, Any]] = {}
        self._pruned: set[str] = set()
        self._last_epoch: dict[str, int] = {}
        self._mutex = threading.RLock()

    # ask ---------------------------------------------------------------------------------
    def suggest(self, ray_trial_id: str) -> dict[str, Any] | str:
        """The next architecture to run, or FINISHED once the budget is handed out."""
        with self._mutex:
            for _ in range(MAX_INVALID_IN_A_ROW):
                if self._asked >= self.budget:
                    return FINISHED
                self._asked += 1
                trial = self.study.ask()
                try:
                    spec = self.cfg.space.sample(trial)
                except SpecError as err:
                    self._fail_unstarted(trial, f"invalid architecture: {err}")
                    continue
                twin = self._completed_twin(spec.content_hash())
                if twin is not None:
                    self._reuse(trial, twin)
                    continue
                return self._start(ray_trial_id, trial, spec)
            raise RuntimeError(
                f"{MAX_INVALID_IN_A_ROW} sampled architectures in a row were invalid; "
                "check the space's dims against its mixers' requirements"
            )

    def _start(self, ray_trial_id: str, trial: optuna.Trial, spec) -> dict[str, Any]:
        arch_hash = spec.content_hash()
        trial.set_user_attr("arch_hash", arch_hash)
        spec_dict = spec.to_dict()
        self.store.save_architecture(arch_hash, spec_dict, None, None)
        cached = self.store.cached_measurement(arch_hash, self.cfg.throughput.key())
        self.store.add_trial(
            self.search_id,
            trial.number,
            optuna_trial_id=trial._trial_id,
            ray_trial_id=ray_trial_id,
            arch_hash=arch_hash,
            params=dict(trial.params),
        )
        self._trials[ray_trial_id] = trial
        self.progress.running += 1
        self._on_progress(self.progress)
        return {
            "number": trial.number,
            "spec": spec_dict,
            "cached": {
                "params": cached.params,
                "macs": cached.macs,
                "images_per_s": cached.images_per_s,
                "spread": cached.spread,
                "peak_memory_mb": cached.peak_memory_mb,
            }
            if cached
            else {},
        }

    def _completed_twin(self, arch_hash: str) -> FrozenTrial | None:
        """A completed trial of this study with the same network: proxy training is
        deterministic for the study's fixed recipe, so training it again would only repeat it."""
        for other in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            if other.user_attrs.get("arch_hash") == arch_hash:
                return other
        return None

    def _reuse(self, trial: optuna.Trial, twin: FrozenTrial) -> None:
        arch_hash = twin.user_attrs["arch_hash"]
        trial.set_user_attr("arch_hash", arch_hash)
        trial.set_user_attr("duplicate_of", twin.number)
        for key in (KNOWN_OBJECTIVES_ATTR, LEARNING_CURVE_ATTR):
            if key in twin.user_attrs:
                trial.set_user_attr(key, twin.user_attrs[key])
        self.store.add_trial(
            self.search_id,
            trial.number,
            optuna_trial_id=trial._trial_id,
            arch_hash=arch_hash,
            params=dict(trial.params),
            reason=f"same architecture as trial {twin.number}: its result is reused",
        )
        self.study.tell(trial, list(twin.values))
        values = list(twin.values)
        accuracy = values[self.cfg.objective_names.index("accuracy")]
        self.store.update_trial(
            self.search_id,
            trial.number,
            state="COMPLETE",
            accuracy=accuracy,
            values=values,
            throughput=self._objective(values, "throughput"),
            epochs_done=self.cfg.proxy.epochs,
        )
        self.progress.done += 1
        self.progress.completed_values.append(values)
        self._on_progress(self.progress)

    def _objective(self, values: list[float], name: str) -> float | None:
        names = self.cfg.objective_names
        return values[names.index(name)] if name in names else None

    def _fail_unstarted(self, trial: optuna.Trial, reason: str) -> None:
        trial.set_user_attr("reason", reason)
        self.store.add_trial(
            self.search_id,
            trial.number,
            optuna_trial_id=trial._trial_id,
            params=dict(trial.params),
            state="FAIL",
            reason=reason,
        )
        self.study.tell(trial, state=TrialState.FAIL)
        self.store.update_trial(self.search_id, trial.number, state="FAIL")
        self.progress.failed += 1
        self._on_progress(self.progress)

    # results -----------------------------------------------------------------------------
    def on_result(self, ray_trial_id: str, result: dict[str, Any]) -> bool:
        """Record one reported result; True if the trial should be stopped (pruned)."""
        with self._mutex:
            trial = self._trials.get(ray_trial_id)
            if trial is None:
                return False
            phase = result.get("phase")
            if phase == "measured":
                self._record_measurement(ray_trial_id, trial, result)
            elif phase == "epoch":
                return self._record_epoch(ray_trial_id, trial, result)
            return False

    def _record_measurement(self, ray_trial_id: str, trial: optuna.Trial, result: dict) -> None:
        measured = {k: result.get(k) for k in ("params", "macs", "images_per_s", "peak_memory_mb")}
        # Ray flattens nested results before schedulers see them: {"spread": {"min": x}} arrives
        # as {"spread/min": x}.
        measured["spread"] = {
            k.split("/", 1)[1]: v for k, v in result.items() if k.startswith("spread/")
        } or result.get("spread")
        self._measured[ray_trial_id] = measured
        arch_hash = trial.user_attrs["arch_hash"]
        self.store.save_architecture(arch_hash, {}, measured["params"], measured["macs"])
        if result.get("newly_measured"):
            self.store.save_throughput(
                arch_hash,
                self.cfg.throughput.key(),
                {**vars(self.cfg.throughput)},
                measured["images_per_s"],
                measured["spread"] or {},
                measured["peak_memory_mb"],
                result.get("device_name") or "",
            )
        if measured["images_per_s"] is not None:
            self.store.update_trial(
                self.search_id, trial.number, throughput=measured["images_per_s"]
            )
            known = objective_values(self.cfg, 0.0, measured)
            trial.set_user_attr(
                KNOWN_OBJECTIVES_ATTR,
                {
                    str(i): v
                    for i, (name, v) in enumerate(zip(self.cfg.objective_names, known, strict=True))
                    if name != "accuracy"
                },
            )

    def _record_epoch(self, ray_trial_id: str, trial: optuna.Trial, result: dict) -> bool:
        epoch = int(result["epoch"])
        accuracy = float(result["val_top1"])
        self._last_epoch[ray_trial_id] = epoch
        self.store.add_epoch(
            self.search_id,
            trial.number,
            epoch,
            val_top1=accuracy,
            val_loss=result.get("val_loss"),
            train_loss=result.get("train_loss"),
            elapsed_s=result.get("elapsed_s"),
            images_per_s=result.get("images_per_s"),
        )
        if len(self.study.directions) == 1:
            trial.report(accuracy, epoch)
        else:  # see nas.search.pruners: the curve cannot be intermediate values here
            curve = {**trial.user_attrs.get(LEARNING_CURVE_ATTR, {}), str(epoch): accuracy}
            trial.set_user_attr(LEARNING_CURVE_ATTR, curve)
        if epoch >= self.cfg.proxy.epochs:
            return False
        frozen = self.study._storage.get_trial(trial._trial_id)
        if self.pruner.prune(self.study, frozen):
            self._pruned.add(ray_trial_id)
            return True
        return False

    # tell --------------------------------------------------------------------------------
    def on_complete(self, ray_trial_id: str, result: dict[str, Any] | None, error: bool) -> None:
        with self._mutex:
            trial = self._trials.pop(ray_trial_id, None)
            self._release_lock(ray_trial_id)
            if trial is None:
                return
            self.progress.running -= 1
            measured = self._measured.pop(ray_trial_id, None)
            last_epoch = self._last_epoch.pop(ray_trial_id, 0)
            result = result or {}
            if ray_trial_id in self._pruned:
                self._pruned.discard(ray_trial_id)
                self._finish(trial, TrialState.PRUNED, f"pruned after epoch {last_epoch}")
                self.progress.pruned += 1
            elif error:
                self._finish(trial, TrialState.FAIL, "the Ray trial errored (worker died?)")
                self.progress.failed += 1
            elif (
                result.get("phase") == "final" and result.get("status") == "completed" and measured
            ):
                values = objective_values(self.cfg, float(result["accuracy"]), measured)
                self.study.tell(trial, values)
                self.store.update_trial(
                    self.search_id,
                    trial.number,
                    state="COMPLETE",
                    accuracy=values[self.cfg.objective_names.index("accuracy")],
                    values=values,
                )
                self.progress.done += 1
                self.progress.completed_values.append(values)
            else:
                reason = result.get("reason") or f"trial ended with status {result.get('status')!r}"
                self._finish(trial, TrialState.FAIL, reason)
                self.progress.failed += 1
            self._on_progress(self.progress)

    def _finish(self, trial: optuna.Trial, state: TrialState, reason: str) -> None:
        trial.set_user_attr("reason", reason)
        self.study.tell(trial, state=state)
        self.store.update_trial(self.search_id, trial.number, state=state.name, reason=reason)
