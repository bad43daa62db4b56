"""Run a search end to end: open or resume the study, start Ray, run the trials, summarise.

Resume: a search is identified by its configuration's fingerprint. Started again with the same
command after a crash or ``kill -9``, it finds the unfinished search in the store, marks the
trials the dead driver left RUNNING as failed ("interrupted"), re-queues their parameters, and
runs only what the budget still lacks. Optuna's heartbeat cannot do this under ask/tell.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from nas.search.config import SearchConfig, folder_name
from nas.search.driver import (
    Progress,
    Proposal,
    SearchDriver,
    is_duplicate,
    is_prescreened,
    is_proposal,
)
from nas.search.pareto import default_reference, hypervolume, non_dominated_mask
from nas.search.pruners import create_pruner
from nas.search.samplers import create_sampler
from nas.search.space import enumerate_architectures
from nas.store import SearchStore

RAY_NAMESPACE = "nas"
INTERRUPTED = "interrupted: the search driver stopped while this trial ran; re-queued"


@dataclass(frozen=True)
class SearchOutcome:
    study_name: str
    storage_url: str
    search_id: int
    front: list[FrozenTrial]
    hypervolume: float
    counts: dict[str, int]
    wall_seconds: float
    resumed: bool
    stop_reason: str | None = None


def open_study(url: str, study_name: str, cfg: SearchConfig) -> optuna.Study:
    storage = optuna.storages.RDBStorage(url, engine_kwargs=_engine_kwargs(url))
    return optuna.load_study(
        study_name=study_name,
        storage=storage,
        sampler=create_sampler(cfg.search.sampler, cfg.search.seed),
    )


def _engine_kwargs(url: str) -> dict:
    return (
        {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    )


def counted_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Finished trials that count against the budget: the sampler's new architectures.
    Interrupted ones are re-run instead; duplicates, pre-screened-out proposals and proposals
    (seed designs, validation retrainings) are outside the budget."""
    done = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    return [
        t
        for t in study.get_trials(deepcopy=False, states=done)
        if not t.user_attrs.get("interrupted")
        and not is_duplicate(t)
        and not is_proposal(t)
        and not is_prescreened(t)
    ]


def requeue_interrupted(study: optuna.Study) -> list[int]:
    """Fail the trials a dead driver left RUNNING and enqueue the sampler's ones again; returns
    the numbers of the re-queued trials. Proposals need no queue (the driver re-proposes what
    is not done) and a duplicate is re-detected when the sampler proposes it again."""
    numbers = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study._storage.set_trial_user_attr(trial._trial_id, "interrupted", True)
        study._storage.set_trial_user_attr(trial._trial_id, "reason", INTERRUPTED)
        study.tell(trial.number, state=TrialState.FAIL)
        # no params: killed between ask and sampling, nothing to re-run
        if trial.params and not is_duplicate(trial) and not is_proposal(trial):
            study.enqueue_trial(trial.params, user_attrs={"requeued_from": trial.number})
            numbers.append(trial.number)
    return numbers


def distinct_complete(study: optuna.Study) -> list[FrozenTrial]:
    """Completed trials, each architecture once (duplicates are told their twin's values)."""
    return [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if not is_duplicate(t)
    ]


def pareto_front(study: optuna.Study) -> list[FrozenTrial]:
    """Distinct completed trials no other completed trial dominates (pruned and failed never
    count); seed designs compete like any trial."""
    complete = distinct_complete(study)
    if not complete:
        return []
    values = np.array([t.values for t in complete], dtype=float)
    directions = [d.name.lower() for d in study.directions]
    mask = non_dominated_mask(values, directions)
    return [t for t, keep in zip(complete, mask, strict=True) if keep]


def study_hypervolume(study: optuna.Study) -> float:
    complete = distinct_complete(study)
    if not complete:
        return 0.0
    values = np.array([t.values for t in complete], dtype=float)
    directions = [d.name.lower() for d in study.directions]
    return float(hypervolume(values, directions, default_reference(values, directions)))


def init_ray(address: str | None) -> None:
    """Join ``address`` (``auto``: the running cluster) or start a local Ray instance."""
    import ray

    if ray.is_initialized():
        return
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_CHDIR_TO_TRIAL_DIR", "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # the legacy reporter honours verbose=0
    ray.init(
        address=address or os.environ.get("RAY_ADDRESS"),
        namespace=RAY_NAMESPACE,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.ERROR,
    )


def create_study(url: str, study_name: str, cfg: SearchConfig) -> optuna.Study:
    """A new study, its axes named after the objectives (Optuna's own tools show them)."""
    optuna.create_study(
        study_name=study_name,
        storage=optuna.storages.RDBStorage(url, engine_kwargs=_engine_kwargs(url)),
        directions=cfg.directions,
    )
    study = open_study(url, study_name, cfg)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(cfg.objective_names)
    return study


def new_study_name(prefix: str) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{prefix}-{stamp}-{secrets.token_hex(2)}"


def run_search(
    cfg: SearchConfig,
    fresh: bool = False,
    require_resume: bool = False,
    on_progress: Callable[[Progress], None] | None = None,
) -> SearchOutcome:
    """Run (or resume) the search ``cfg`` describes; its seed designs are evaluated first."""
    url = cfg.storage_url()
    store = SearchStore(url)
    existing = None if fresh else store.find_resumable(cfg.fingerprint())
    if require_resume and existing is None:
        raise ValueError(f"--resume: no unfinished search with this configuration in {url}")
    if existing is not None:
        study = resume_study(url, existing, cfg, store)
        search_id, study_name = existing.id, existing.study_name
    else:
        study_name = cfg.search.study or new_study_name(cfg.name)
        study = create_study(url, study_name, cfg)
        search_id = store.create_search(
            study_name=study_name,
            name=cfg.name,
            fingerprint=cfg.fingerprint(),
            config=cfg.raw,
            objectives=cfg.objective_names,
            directions=cfg.directions,
            trials_requested=cfg.search.trials,
        ).id
    architectures = enumerate_architectures(cfg.space)
    proposals = [Proposal(spec, ("reference", name)) for name, spec in cfg.references.items()]
    return drive(
        cfg,
        study,
        store,
        search_id,
        proposals,
        sample=True,
        on_progress=on_progress,
        space_size=len(architectures) if architectures is not None else None,
        resumed=existing is not None,
    )


def open_proposal_run(
    cfg: SearchConfig,
    store: SearchStore,
    url: str,
    fingerprint: str,
    name_prefix: str,
    kind: str,
    requested: int,
    parent_id: int | None = None,
) -> tuple[optuna.Study, int, bool]:
    """The study and search row of a run that evaluates a fixed list of proposals (a
    validation, a benchmark pass): the unfinished one with ``fingerprint`` resumed, else a new
    one. Returns (study, search id, resumed)."""
    existing = store.find_resumable(fingerprint)
    if existing is not None:
        return resume_study(url, existing, cfg, store), existing.id, True
    name = new_study_name(name_prefix)
    study = create_study(url, name, cfg)
    search_id = store.create_search(
        study_name=name,
        name=cfg.name,
        fingerprint=fingerprint,
        config=cfg.raw,
        objectives=cfg.objective_names,
        directions=cfg.directions,
        trials_requested=requested,
        kind=kind,
        parent_id=parent_id,
    ).id
    return study, search_id, False


def resume_study(url: str, existing, cfg: SearchConfig, store: SearchStore) -> optuna.Study:
    """Reopen an unfinished search's study, failing and re-queueing what the dead run left."""
    study = open_study(url, existing.study_name, cfg)
    requeue_interrupted(study)
    store.fail_running_trials(existing.id, INTERRUPTED)
    store.update_search(existing.id, status="running", resumes=existing.resumes + 1)
    return study


def drive(
    cfg: SearchConfig,
    study: optuna.Study,
    store: SearchStore,
    search_id: int,
    proposals: list[Proposal],
    sample: bool,
    on_progress: Callable[[Progress], None] | None = None,
    space_size: int | None = None,
    resumed: bool = False,
) -> SearchOutcome:
    """Evaluate ``proposals``, then (``sample``) the sampler's architectures up to the budget,
    through Ray Tune; record the run's end in the store and summarise it."""
    from ray import tune

    from nas.search.device_lock import release_everywhere
    from nas.search.ray_adapters import AskTellSearcher, PruningScheduler
    from nas.search.trainable import TrialSettings, run_trial

    counted = counted_trials(study)
    progress = Progress(
        requested=cfg.search.trials if sample else len(proposals),
        done=sum(t.state == TrialState.COMPLETE for t in counted),
        pruned=sum(t.state == TrialState.PRUNED for t in counted),
        failed=sum(t.state == TrialState.FAIL for t in counted),
        completed_values=[list(t.values) for t in distinct_complete(study)],
    )
    budget = cfg.search.trials - len(counted) if sample else 0
    pruner = search_pruner(cfg) if sample else create_pruner("none", len(cfg.objectives))
    driver = SearchDriver(
        cfg,
        study,
        store,
        search_id,
        pruner,
        budget,
        progress,
        on_progress,
        release_everywhere,
        proposals=proposals,
        sample=sample,
        space_size=space_size,
        scorer=zero_cost_scorer(cfg) if sample and cfg.prescreen.proxy else None,
    )
    if not sample:
        progress.done = progress.requested - driver.pending_proposals
    start = time.monotonic()
    if budget > 0 or driver.pending_proposals:
        if cfg.proxy.data.loader != "ffcv":
            from nas.data import load_arrays

            load_arrays(cfg.proxy.data)  # build the dataset cache once, before trials race for it
        init_ray(cfg.ray.address)
        settings = TrialSettings(cfg.proxy, cfg.throughput, cfg.constraints)
        trainable = tune.with_resources(
            tune.with_parameters(run_trial, settings=settings),
            {"cpu": cfg.resources.cpu, "gpu": cfg.resources.gpu},
        )
        timeout = cfg.search.timeout_minutes
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                search_alg=AskTellSearcher(driver),
                scheduler=PruningScheduler(driver),
                num_samples=-1,
                reuse_actors=True,  # a fresh worker spends seconds importing torch and timm
                max_concurrent_trials=cfg.search.max_concurrent,
                time_budget_s=timeout * 60 if timeout else None,
            ),
            run_config=tune.RunConfig(
                name=folder_name(study.study_name),
                storage_path=str(Path(cfg.run_dir).resolve() / cfg.name / "ray"),
                verbose=0,
            ),
        )
        tuner.fit()
    wall = time.monotonic() - start
    finished = not driver.pending_proposals and (
        not sample
        or driver.stop_reason is not None
        or len(counted_trials(study)) >= cfg.search.trials
    )
    store.update_search(
        search_id,
        add_wall_seconds=wall,
        status="finished" if finished else "interrupted",
        **({"finished_at": datetime.now(timezone.utc).replace(tzinfo=None)} if finished else {}),
    )
    trials = study.get_trials(deepcopy=False)
    sampled = [
        t for t in trials if not is_duplicate(t) and not is_proposal(t) and not is_prescreened(t)
    ]
    counts = {
        state.name: sum(t.state == state for t in sampled)
        for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    }
    counts["DUPLICATE"] = sum(is_duplicate(t) for t in trials)
    counts["PROPOSAL"] = sum(is_proposal(t) and t.state.is_finished() for t in trials)
    counts["PRESCREENED"] = sum(is_prescreened(t) for t in trials)
    total_wall = next(s.wall_seconds for s in store.searches() if s.id == search_id)
    store.dispose()
    return SearchOutcome(
        study_name=study.study_name,
        storage_url=store.url,
        search_id=search_id,
        front=pareto_front(study),
        hypervolume=study_hypervolume(study),
        counts=counts,
        wall_seconds=total_wall,
        resumed=resumed,
        stop_reason=driver.stop_reason,
    )


def search_pruner(cfg: SearchConfig) -> optuna.pruners.BasePruner:
    """The pruner ``cfg.search.pruner`` describes; the benchmark simulator builds the same."""
    return create_pruner(cfg.search.pruner.kind, len(cfg.objectives), **_pruner_kwargs(cfg))


def zero_cost_scorer(cfg: SearchConfig) -> Callable:
    """The pre-screen's score of an architecture: its zero-cost proxy at initialisation on one
    fixed batch of the search's training images (computed in the driver, ~1 s on a CPU)."""
    from nas.bench.zero_cost import probe_batch, score_architecture

    name = cfg.prescreen.proxy
    inputs, targets, classes = probe_batch(cfg.proxy.data, cfg.prescreen.batch, cfg.search.seed)

    def score(spec) -> float:
        scores = score_architecture(spec, inputs, targets, classes, [name], seed=cfg.search.seed)
        return scores[name]

    return score


def _pruner_kwargs(cfg: SearchConfig) -> dict:
    p = cfg.search.pruner
    if p.kind == "pareto_sh":
        return {
            "min_resource": p.min_resource,
            "reduction_factor": p.reduction_factor,
            "accuracy_objective": cfg.objective_names.index("accuracy"),
        }
    if p.kind == "successive_halving":
        return {"min_resource": p.min_resource, "reduction_factor": p.reduction_factor}
    if p.kind == "hyperband":
        return {
            "min_resource": p.min_resource,
            "reduction_factor": p.reduction_factor,
            "max_resource": cfg.proxy.epochs,
        }
    if p.kind == "median":
        return {"n_startup_trials": p.n_startup_trials, "n_warmup_steps": p.n_warmup_steps}
    return {}
