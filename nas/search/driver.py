"""The search driver: the one place that links running trials, the Optuna study and the store.

It knows nothing of Ray: a trial is a ``run_id`` string. Ray Tune calls it through two thin
adapters (a Searcher for ask/tell, a TrialScheduler for results and pruning); the benchmark
simulator (``nas.bench.simulate``) calls the same three methods from its simulated clock, so a
replay runs exactly the ask, dedupe, tell and rung code of a search. It runs in the driver
process only, which makes it the single writer of the database. A trial that the pruner stops
is told to Optuna as PRUNED, never COMPLETE, so partial-budget values never reach a front.

A trial lost with its node (the runtime says so through ``on_error``) is recorded FAIL with the
node named, and re-run: its parameters are re-queued like those of a dead driver's trials, and
it counts against no budget.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from nas.arch.spec import ArchSpec, SpecError
from nas.search.config import SearchConfig
from nas.search.noise import wilson_interval
from nas.search.pruners import KNOWN_OBJECTIVES_ATTR, LEARNING_CURVE_ATTR
from nas.store import SearchStore

FINISHED = "FINISHED"
MAX_INVALID_IN_A_ROW = 50
DUPLICATE_CONSTRAINT = "duplicate"
# The user attributes that mark a proposal: a seed design, a validation retraining, a benchmark
# table's architecture.
PROPOSAL_ATTRS = ("reference", "source_trial", "table_arch")
PRESCREENED_ATTR = "prescreened"
# what a trial's ``placed`` result says: its Ray node and worker process, the GPUs Ray
# assigned it as the trial sees them, its device lock, and the devices it trains and measures on
PLACEMENT_KEYS = (
    "node_id",
    "node_host",
    "pid",
    "gpu_ids",
    "cuda_visible_devices",
    "lock",
    "proxy_device",
    "throughput_device",
)


@dataclass(frozen=True)
class Proposal:
    """An architecture the driver evaluates whatever the sampler says, before sampling starts:
    a seed design of a search (``attr = ("reference", name)``) or a trial a validation run
    retrains (``("source_trial", number)``). The pair is stored as an Optuna user attribute, so a
    resumed run knows which proposals are done. Proposals are never pruned and not counted
    against ``search.trials``."""

    spec: ArchSpec
    attr: tuple[str, Any]


@dataclass
class Progress:
    """Counts for the live display, and the objective values of completed trials."""

    requested: int
    done: int = 0
    running: int = 0
    pruned: int = 0
    failed: int = 0
    duplicates: int = 0
    references: int = 0
    prescreened: int = 0
    lost: int = 0
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


def is_duplicate(trial: FrozenTrial) -> bool:
    return "duplicate_of" in trial.user_attrs


def is_prescreened(trial: FrozenTrial) -> bool:
    """Proposed, then not trained: a zero-cost proxy ranked another proposal (the trial whose
    number the attribute holds) higher."""
    return PRESCREENED_ATTR in trial.user_attrs


def is_proposal(trial: FrozenTrial) -> bool:
    """A seed design, a validation retraining or a table architecture: evaluated outside the
    sampler's budget."""
    return any(key in trial.user_attrs for key in PROPOSAL_ATTRS)


def accuracy_noise(result: dict[str, Any]) -> dict[str, Any]:
    """The store's noise columns for a final result: validation size, seeds, 95% Wilson
    interval of the top-1 on that validation set, across-seed standard deviation."""
    n = result.get("val_size")
    if not n:
        return {}
    low, high = wilson_interval(float(result["accuracy"]), int(n))
    return {
        "val_size": int(n),
        "seeds": int(result.get("seeds") or 1),
        "accuracy_low": low,
        "accuracy_high": high,
        "accuracy_std": result.get("accuracy_std"),
    }


class SearchDriver:
    """Hands out architectures (proposals first, then the sampler's), records results, tells
    outcomes. ``budget`` counts new distinct architectures from the sampler; ``sample=False``
    evaluates the proposals only (a validation run)."""

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
        proposals: Sequence[Proposal] = (),
        sample: bool = True,
        space_size: int | None = None,
        scorer: Callable[[ArchSpec], float] | None = None,
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
        self._sample = sample
        self._space_size = space_size
        if sample and cfg.prescreen.proxy and scorer is None:
            raise ValueError("prescreen.proxy is set: the driver needs a scorer for it")
        self._scorer = scorer
        self._fits: Callable[[ArchSpec], str | None] = lambda spec: None
        self._asked = 0
        self._duplicates_in_a_row = 0
        self.stop_reason: str | None = None
        self.fatal: str | None = None
        self._errors: dict[str, str] = {}
        self._lost: set[str] = set()
        self._placements: dict[str, dict[str, Any]] = {}
        self._started_proposals: dict[str, Proposal] = {}
        self._orphans: dict[str, list[optuna.Trial]] = {}
        self._trials: dict[str, optuna.Trial] = {}
        self._measured: dict[str, dict[str, Any]] = {}
        self._pruned: set[str] = set()
        self._unprunable: set[str] = set()
        self._last_epoch: dict[str, int] = {}
        self._waiting: dict[int, list[optuna.Trial]] = {}
        self._mutex = threading.RLock()
        done = self._finished_trials()
        self._trained: dict[str, int] = {
            t.user_attrs["arch_hash"]: t.number
            for t in done
            if "arch_hash" in t.user_attrs and not is_duplicate(t)
        }
        finished_attrs = {
            (key, t.user_attrs[key]) for t in done for key in PROPOSAL_ATTRS if key in t.user_attrs
        }
        self._proposals = deque(p for p in proposals if p.attr not in finished_attrs)

    def _finished_trials(self) -> list[FrozenTrial]:
        states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
        return [
            t
            for t in self.study.get_trials(deepcopy=False, states=states)
            if not t.user_attrs.get("interrupted")
        ]

    @property
    def pending_proposals(self) -> int:
        return len(self._proposals)

    @property
    def distinct_trained(self) -> int:
        """Distinct architectures this search has trained or is training."""
        return len(self._trained)

    # ask ---------------------------------------------------------------------------------
    def suggest(self, run_id: str) -> dict[str, Any] | str | None:
        """The next architecture to run; None (ask again later) while the budget is handed out
        but trials still run, since one may be lost with its node and run again; FINISHED once
        nothing is left to run. With a pre-screen, the best-scoring of
        ``prescreen.candidates`` new proposals."""
        with self._mutex:
            if self.fatal is not None:
                return FINISHED
            while self._proposals:
                proposal = self._proposals.popleft()
                too_big = self._fits(proposal.spec)
                if too_big is None:
                    return self._start_proposal(run_id, proposal)
                self._fail_proposal(proposal, too_big)
            if not self._sample:
                return None if self._trials else FINISHED
            candidates = []
            while len(candidates) < self.cfg.prescreen.candidates:
                candidate = self._sample_new()
                if candidate is None:
                    break
                candidates.append(candidate)
            if not candidates:
                return None if self._trials and self.stop_reason is None else FINISHED
            trial, spec = self._prescreen(candidates)
            self._asked += 1
            return self._start(run_id, trial, spec)

    def _sample_new(self) -> tuple[optuna.Trial, ArchSpec] | None:
        """A sampled architecture not trained yet, or None when the budget or space is spent;
        invalid ones are failed and duplicates told their twin's result on the way."""
        invalid = 0
        while self._asked < self.budget:
            if self._exhausted():
                return None
            trial = self.study.ask()
            twin = None
            try:
                spec = self.cfg.space.sample(trial)
                twin = self._trained.get(spec.content_hash())
                # a duplicate is never trained: only a new architecture needs the memory check
                reason = self._fits(spec) if twin is None else None
            except SpecError as err:
                reason = f"invalid architecture: {err}"
            if reason is not None:
                self._asked += 1
                self._fail_unstarted(trial, reason)
                invalid += 1
                if invalid >= MAX_INVALID_IN_A_ROW:
                    self.abort(
                        f"{MAX_INVALID_IN_A_ROW} sampled architectures in a row could not be "
                        f"trained (the last: {reason}); check the space's dims and depths "
                        "against its mixers' requirements and the machine's memory"
                    )
                    return None
                continue
            if twin is not None:
                self._duplicate(trial, spec.content_hash(), twin)
                continue
            self._duplicates_in_a_row = 0
            return trial, spec
        return None

    def _prescreen(
        self, candidates: list[tuple[optuna.Trial, ArchSpec]]
    ) -> tuple[optuna.Trial, ArchSpec]:
        """Keep the candidate the zero-cost proxy scores highest; fail the others (not
        trained, not counted against the budget; the sampler may propose them again)."""
        if len(candidates) == 1 or self._scorer is None:
            return candidates[0]
        scores = [self._scorer(spec) for _, spec in candidates]
        best = int(np.nanargmax(scores)) if np.isfinite(scores).any() else 0
        name = self.cfg.prescreen.proxy
        for i, (trial, _) in enumerate(candidates):
            trial.set_user_attr("prescreen_score", float(scores[i]))
            if i == best:
                continue
            trial.set_user_attr(PRESCREENED_ATTR, candidates[best][0].number)
            trial.set_user_attr("arch_hash", candidates[i][1].content_hash())
            self._fail_unstarted(
                trial,
                f"prescreened out: {name} {scores[i]:.4g} below {scores[best]:.4g}, the best of "
                f"{len(candidates)} proposals",
                counts=False,
            )
            self.progress.prescreened += 1
        return candidates[best]

    def set_fits(self, fits: Callable[[ArchSpec], str | None]) -> None:
        """Check every architecture before it is handed out: ``fits`` says why it cannot be
        trained (e.g. too large for any node's memory), or None; a misfit fails unstarted."""
        self._fits = fits

    def abort(self, reason: str) -> None:
        """Stop handing out trials for a reason that ends the whole search (it is marked
        failed with it); running trials still report and are told."""
        with self._mutex:
            if self.fatal is None:
                self.fatal = reason

    def _fail_proposal(self, proposal: Proposal, reason: str) -> None:
        self._fail_unstarted(self._proposal_trial(proposal), reason, counts=False)

    def _proposal_trial(self, proposal: Proposal) -> optuna.Trial:
        """A new trial marked with the proposal's attribute. Not study.ask(): that would pop a
        re-queued sampler trial from Optuna's waiting queue."""
        trial_id = self.study._storage.create_new_trial(self.study._study_id)
        trial = optuna.Trial(self.study, trial_id)
        trial.set_user_attr(*proposal.attr)
        return trial

    def _exhausted(self) -> bool:
        """Whether to stop asking: every architecture of the space is trained, or the sampler
        proposed nothing new for ``max_duplicate_asks`` asks in a row."""
        limit = self.cfg.search.max_duplicate_asks
        if self._space_size is not None and self.distinct_trained >= self._space_size:
            self.stop_reason = (
                f"the space is exhausted: all {self._space_size} distinct architectures trained"
            )
        elif self._duplicates_in_a_row >= limit:
            self.stop_reason = (
                f"the sampler proposed only known architectures for {limit} asks in a row "
                f"(search.max_duplicate_asks); {self.distinct_trained} distinct architectures "
                "trained"
            )
        return self.stop_reason is not None

    def _start_proposal(self, run_id: str, proposal: Proposal) -> dict[str, Any]:
        trial = self._proposal_trial(proposal)
        key, value = proposal.attr
        self._unprunable.add(run_id)
        self._started_proposals[run_id] = proposal
        # a table architecture's attribute is its arch_hash, which the row holds already
        row = {} if key == "table_arch" else {key: value}
        return self._start(run_id, trial, proposal.spec, **row)

    def _start(self, run_id: str, trial: optuna.Trial, spec, **row: Any) -> dict[str, Any]:
        arch_hash = spec.content_hash()
        trial.set_user_attr("arch_hash", arch_hash)
        self._trained.setdefault(arch_hash, trial.number)
        if arch_hash in self._orphans:  # the re-run of a trial lost with its node
            self._waiting.setdefault(trial.number, []).extend(self._orphans.pop(arch_hash))
        spec_dict = spec.to_dict()
        self.store.save_architecture(arch_hash, spec_dict, None, None)
        cached = self.store.cached_measurement(arch_hash, self.cfg.throughput.key())
        self.store.add_trial(
            self.search_id,
            trial.number,
            optuna_trial_id=trial._trial_id,
            ray_trial_id=run_id,
            arch_hash=arch_hash,
            params=dict(trial.params),
            **row,
        )
        self._trials[run_id] = trial
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

    def _duplicate(self, trial: optuna.Trial, arch_hash: str, twin: int) -> None:
        """A proposal of an architecture already trained or training: stored once as DUPLICATE,
        told its twin's outcome (now, or when the twin ends) so the sampler learns from it, and
        marked infeasible so Optuna's own fronts (``best_trials``) list the twin alone."""
        self._duplicates_in_a_row += 1
        trial.set_user_attr("arch_hash", arch_hash)
        trial.set_user_attr("duplicate_of", twin)
        trial.set_constraint(DUPLICATE_CONSTRAINT, 1.0)
        self.store.add_trial(
            self.search_id,
            trial.number,
            optuna_trial_id=trial._trial_id,
            arch_hash=arch_hash,
            params=dict(trial.params),
            state="DUPLICATE",
            duplicate_of=twin,
            reason=f"same architecture as trial {twin}: not trained again",
        )
        self.progress.duplicates += 1
        frozen = self._frozen(twin)
        if frozen.state.is_finished():
            self._tell_duplicate(trial, frozen)
        else:
            self._waiting.setdefault(twin, []).append(trial)
        self._on_progress(self.progress)

    def _tell_duplicate(self, trial: optuna.Trial, twin: FrozenTrial) -> None:
        if twin.state == TrialState.COMPLETE:
            self.study.tell(trial, list(twin.values))
            return
        trial.set_user_attr(
            "reason", f"same architecture as trial {twin.number} ({twin.state.name})"
        )
        pruned = twin.state == TrialState.PRUNED
        self.study.tell(trial, state=TrialState.PRUNED if pruned else TrialState.FAIL)

    def _tell_waiting(self, twin_number: int) -> None:
        waiting = self._waiting.pop(twin_number, [])
        if waiting:
            twin = self._frozen(twin_number)
            for trial in waiting:
                self._tell_duplicate(trial, twin)

    def _frozen(self, number: int) -> FrozenTrial:
        storage = self.study._storage
        return storage.get_trial(
            storage.get_trial_id_from_study_id_trial_number(self.study._study_id, number)
        )

    def _fail_unstarted(self, trial: optuna.Trial, reason: str, counts: bool = True) -> None:
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
        if counts:
            self.progress.failed += 1
        self._on_progress(self.progress)

    # results -----------------------------------------------------------------------------
    def on_error(self, run_id: str, reason: str, node_lost: bool = False) -> None:
        """What the runtime knows of why a trial's worker failed (told before ``on_complete``);
        ``node_lost``: its node left the cluster, so the trial is re-run instead of counted."""
        with self._mutex:
            self._errors[run_id] = reason
            if node_lost:
                self._lost.add(run_id)

    def placement(self, run_id: str) -> dict[str, Any] | None:
        """Where a running trial said it runs (its ``placed`` result): node id and host, GPU
        ids, device lock; None before it said so."""
        with self._mutex:
            return self._placements.get(run_id)

    def on_result(self, run_id: str, result: dict[str, Any]) -> bool:
        """Record one reported result; True if the trial should be stopped (pruned)."""
        with self._mutex:
            trial = self._trials.get(run_id)
            if trial is None:
                return False
            phase = result.get("phase")
            if phase == "placed":
                self._record_placement(run_id, trial, result)
            elif phase == "measured":
                self._record_measurement(run_id, trial, result)
            elif phase == "epoch":
                return self._record_epoch(run_id, trial, result)
            return False

    def _record_placement(self, run_id: str, trial: optuna.Trial, result: dict) -> None:
        placement = {key: result.get(key) for key in PLACEMENT_KEYS}
        self._placements[run_id] = placement
        trial.set_user_attr("placement", placement)
        self.store.update_trial(
            self.search_id,
            trial.number,
            node_id=placement["node_id"],
            node_host=placement["node_host"],
        )

    def _record_measurement(self, run_id: str, trial: optuna.Trial, result: dict) -> None:
        measured = {k: result.get(k) for k in ("params", "macs", "images_per_s", "peak_memory_mb")}
        # Ray flattens nested results before schedulers see them: {"spread": {"min": x}} arrives
        # as {"spread/min": x}.
        measured["spread"] = {
            k.split("/", 1)[1]: v for k, v in result.items() if k.startswith("spread/")
        } or result.get("spread")
        self._measured[run_id] = measured
        arch_hash = trial.user_attrs["arch_hash"]
        self.store.save_architecture(arch_hash, {}, measured["params"], measured["macs"])
        if result.get("newly_measured"):
            placement = self._placements.get(run_id, {})
            self.store.save_throughput(
                arch_hash,
                self.cfg.throughput.key(),
                {**vars(self.cfg.throughput)},
                measured["images_per_s"],
                measured["spread"] or {},
                measured["peak_memory_mb"],
                result.get("device_name") or "",
                node_id=placement.get("node_id"),
                node_host=placement.get("node_host"),
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

    def _record_epoch(self, run_id: str, trial: optuna.Trial, result: dict) -> bool:
        epoch = int(result["epoch"])
        accuracy = float(result["val_top1"])
        self._last_epoch[run_id] = epoch
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
        if epoch >= self.cfg.proxy.epochs or run_id in self._unprunable:
            return False
        frozen = self.study._storage.get_trial(trial._trial_id)
        if self.pruner.prune(self.study, frozen):
            self._pruned.add(run_id)
            return True
        return False

    # tell --------------------------------------------------------------------------------
    def on_complete(self, run_id: str, result: dict[str, Any] | None, error: bool) -> None:
        with self._mutex:
            trial = self._trials.pop(run_id, None)
            self._release_lock(run_id)
            if trial is None:
                return
            self.progress.running -= 1
            self._unprunable.discard(run_id)
            self._placements.pop(run_id, None)
            proposal = self._started_proposals.pop(run_id, None)
            measured = self._measured.pop(run_id, None)
            last_epoch = self._last_epoch.pop(run_id, 0)
            result = result or {}
            if error and run_id in self._lost:
                self._lost.discard(run_id)
                self._rerun_lost(trial, self._errors.pop(run_id), proposal)
                self.progress.lost += 1
                self._on_progress(self.progress)
                return
            if run_id in self._pruned:
                self._pruned.discard(run_id)
                self._finish(trial, TrialState.PRUNED, f"pruned after epoch {last_epoch}")
                self.progress.pruned += 1
            elif error:
                reason = self._errors.pop(run_id, "the trial's worker failed")
                self._finish(trial, TrialState.FAIL, reason)
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
                    **accuracy_noise(result),
                )
                if "reference" in trial.user_attrs:
                    self.progress.references += 1
                else:
                    self.progress.done += 1
                self.progress.completed_values.append(values)
            else:
                reason = result.get("reason") or f"trial ended with status {result.get('status')!r}"
                self._finish(trial, TrialState.FAIL, reason)
                self.progress.failed += 1
            self._tell_waiting(trial.number)
            self._on_progress(self.progress)

    def _rerun_lost(self, trial: optuna.Trial, reason: str, proposal: Proposal | None) -> None:
        """A trial lost with its node: FAIL, marked ``interrupted`` like a dead driver's trials
        (not counted, not a twin), and run again: a proposal goes back to the front of the
        queue; a sampled architecture's parameters are re-queued with one more ask in the
        budget, and its waiting duplicates wait for the re-run."""
        trial.set_user_attr("interrupted", True)
        trial.set_user_attr("node_lost", True)
        self._finish(trial, TrialState.FAIL, reason)
        arch_hash = trial.user_attrs.get("arch_hash")
        if self._trained.get(arch_hash) == trial.number:
            del self._trained[arch_hash]
        if proposal is not None:
            self._proposals.appendleft(proposal)
            return
        self.study.enqueue_trial(trial.params, user_attrs={"requeued_from": trial.number})
        self.budget += 1
        self._orphans.setdefault(arch_hash, []).extend(self._waiting.pop(trial.number, []))

    def _finish(self, trial: optuna.Trial, state: TrialState, reason: str) -> None:
        trial.set_user_attr("reason", reason)
        self.study.tell(trial, state=state)
        self.store.update_trial(self.search_id, trial.number, state=state.name, reason=reason)
