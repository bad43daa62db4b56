"""Run a search end to end: open or resume the study, start Ray, run the trials, summarise.

Resume: a search is identified by its configuration's fingerprint. Started again with the same
command after a crash or ``kill -9``, it finds the unfinished search in the store, marks the
trials the dead driver left RUNNING as failed ("interrupted"), re-queues their parameters, and
runs only what the budget still lacks. Optuna's heartbeat cannot do this under ask/tell. A
driver lease (:mod:`nas.search.lease`) keeps a second driver off a search whose driver lives.

Interrupted (Ctrl-C, SIGTERM turned into ``KeyboardInterrupt`` by the CLI), the driver does at
once what a resume would: the running trials are recorded as interrupted and re-queued, the
search is marked interrupted, and the interrupt propagates. Any other error of the driver marks
the search failed with its reason and surfaces as one :class:`SearchFailed`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import secrets
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from nas.errors import NasError
from nas.search.config import RESERVED_RESOURCES, SearchConfig, folder_name
from nas.search.driver import (
    Progress,
    Proposal,
    SearchDriver,
    is_duplicate,
    is_prescreened,
    is_proposal,
)
from nas.search.lease import DriverLease, LeaseError
from nas.search.pareto import default_reference, hypervolume, non_dominated_mask
from nas.search.pruners import create_pruner
from nas.search.samplers import create_sampler
from nas.search.space import enumerate_architectures
from nas.store import SearchStore
from nas.store.engine import check_storage, mask_url

RAY_NAMESPACE = "nas"
INTERRUPTED = "interrupted: the search driver stopped while this trial ran; re-queued"


class SearchFailed(NasError):
    """The driver itself failed (not a trial): the search is marked failed with the reason."""

    exit_status = 1


class ResourceError(NasError):
    """A trial asks for more than any node of the Ray cluster has."""


@dataclass(frozen=True)
class OpenRun:
    """A search row opened (created or resumed) by this process, which holds its lease;
    ``num_classes`` of the data it trains on (``None``: an FFCV file, opened by the trials)."""

    study: optuna.Study
    search_id: int
    resumed: bool
    lease: DriverLease
    requeued: int = 0
    num_classes: int | None = None


@dataclass(frozen=True)
class SearchStart:
    """What the CLI says before the first trial: which search, and whether it resumes."""

    study_name: str
    resumed: bool
    finished: int
    requested: int
    requeued: int


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
    """Join ``address`` (``auto``: the running cluster; None: ``$RAY_ADDRESS`` if set) or start
    a local Ray instance. A local one is always new: Ray's own ``address=None`` would join
    whatever cluster was started last on this machine (``/tmp/ray/ray_current_cluster``), even
    one that has died or belongs to someone else."""
    import ray

    if ray.is_initialized():
        return
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_CHDIR_TO_TRIAL_DIR", "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # the legacy reporter honours verbose=0
    # Ctrl-C raises KeyboardInterrupt through Tune's loop, so the driver records the interrupt
    # (Tune's own handler would end fit() as if the search were done)
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    # ray.init installs a C-level SIGTERM handler that dumps a stack trace and aborts; the
    # process's own handler (the CLI's: interrupt like Ctrl-C) is put back
    on_sigterm = signal.getsignal(signal.SIGTERM)
    address = address or os.environ.get("RAY_ADDRESS") or "local"
    with _loopback_only(local=address == "local"):
        ray.init(
            address=address,
            namespace=RAY_NAMESPACE,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.ERROR,
        )
    if threading.current_thread() is threading.main_thread() and on_sigterm is not None:
        signal.signal(signal.SIGTERM, on_sigterm)


@contextlib.contextmanager
def _loopback_only(local: bool) -> Iterator[None]:
    """A local Ray instance started inside bound to 127.0.0.1 only.

    Ray's servers (GCS, raylet, object manager, workers) listen on the node's IP, which Ray
    takes to be the host's outward address unless its cluster mode is off (the mode Ray uses on
    macOS and Windows); a one-machine search has no reason to be reachable from the network.
    Joining a cluster (``local`` false) changes nothing."""
    from ray._private import ray_constants

    cluster_mode = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = cluster_mode and not local
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = cluster_mode


def start_ray(cfg: SearchConfig) -> None:
    """Ray joined or started, and the trials' requests checked against its nodes."""
    init_ray(cfg.ray.address)
    check_resources(cfg)


def read_data(cfg: SearchConfig) -> int | None:
    """The proxy's data read (its cache built, once, before trials race for it) before any
    row is stored: a wrong path or resolution ends the command, not a search just recorded.
    Its number of classes; ``None`` for FFCV files, which the trials open themselves."""
    if cfg.proxy.data.loader == "ffcv":
        return None
    from nas.data import load_arrays

    return load_arrays(cfg.proxy.data).train.num_classes


def check_resources(cfg: SearchConfig) -> None:
    """Refuse per-trial requests no live node of the Ray cluster can grant (Tune would wait
    for them forever), saying what the nodes have; a trial's whole request must fit on one
    node."""
    import ray

    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    plural = "s" if len(nodes) != 1 else ""
    for key, resource, unit in (("cpu", "CPU", "CPUs"), ("gpu", "GPU", "GPUs")):
        asked = getattr(cfg.resources, key)
        largest = max((n.get(resource, 0.0) for n in nodes), default=0.0)
        if asked > largest:
            total = sum(n.get(resource, 0.0) for n in nodes)
            raise ResourceError(
                f"resources.{key}: each trial asks for {asked:g} {unit}, but the largest node "
                f"of the Ray cluster has {largest:g} ({total:g} in {len(nodes)} node{plural}); "
                f"lower resources.{key} or add nodes"
            )
    for name, asked in cfg.resources.custom.items():
        largest = max((n.get(name, 0.0) for n in nodes), default=0.0)
        if asked > largest:
            have = sorted(
                {r for n in nodes for r in n if r not in RESERVED_RESOURCES and "__" not in r}
            )
            raise ResourceError(
                f"resources.custom.{name}: each trial asks for {asked:g}, but "
                + (
                    f"the most any node of the Ray cluster has is {largest:g}"
                    if largest
                    else f"no node of the Ray cluster ({len(nodes)} node{plural}) has it"
                )
                + f"; the nodes' custom resources: {', '.join(have) or 'none'} "
                "(a node declares them with ray start --resources)"
            )
    request = {"CPU": cfg.resources.cpu, "GPU": cfg.resources.gpu, **cfg.resources.custom}
    if not any(all(n.get(r, 0.0) >= v for r, v in request.items() if v) for n in nodes):
        raise ResourceError(
            "resources: no single node of the Ray cluster has everything one trial asks for "
            f"({', '.join(f'{r} {v:g}' for r, v in request.items() if v)})"
        )


def node_memory_bytes() -> int | None:
    """The memory Ray may schedule on the largest live node (None when Ray reports none)."""
    import ray

    memory = [n["Resources"].get("memory", 0.0) for n in ray.nodes() if n.get("Alive")]
    return int(max(memory)) if memory and max(memory) > 0 else None


def memory_check(cfg: SearchConfig, num_classes: int, limit: int | None) -> Callable:
    """The driver's ``fits``: why an architecture cannot train on any node, or None. The
    estimate (:mod:`nas.models.memory`) is of the proxy network at the proxy batch."""
    from nas.models.memory import estimate_training_memory
    from nas.training.proxy import proxy_spec

    def fits(spec) -> str | None:
        if limit is None:
            return None
        try:
            estimate = estimate_training_memory(
                proxy_spec(spec, cfg.proxy), cfg.proxy.data.batch_size, num_classes
            )
        except Exception:  # an op fake tensors cannot run: no estimate, the trial decides
            return None
        if estimate.total_bytes <= limit:
            return None
        return (
            f"does not fit in memory: training needs ~{estimate.total_bytes / 2**30:.1f} GiB "
            f"({estimate.params / 1e6:.3g} M parameters with gradients and AdamW state, "
            f"{estimate.activation_bytes / 2**30:.1f} GiB of activations at batch "
            f"{estimate.batch_size}), the largest node has {limit / 2**30:.1f} GiB"
        )

    return fits


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
    takeover: bool = False,
    on_start: Callable[[SearchStart], None] | None = None,
) -> SearchOutcome:
    """Run (or resume) the search ``cfg`` describes; its seed designs are evaluated first.
    Ray is started, the cluster's resources checked and the data read before the store is
    touched (its URL is checked first)."""
    url = cfg.storage_url()
    check_storage(url)
    start_ray(cfg)
    num_classes = read_data(cfg)
    store = SearchStore(url)
    existing = None if fresh else store.find_resumable(cfg.fingerprint())
    if require_resume and existing is None:
        raise ValueError(
            f"--resume: no unfinished search with this configuration in {mask_url(url)}"
        )
    if existing is not None:
        run = resume_run(url, existing, cfg, store, takeover)
    else:
        study_name = cfg.search.study or new_study_name(cfg.name)
        run = new_run(cfg, store, url, study_name, cfg.fingerprint(), cfg.search.trials)
    run = dataclasses.replace(run, num_classes=num_classes)
    architectures = enumerate_architectures(cfg.space)
    proposals = [Proposal(spec, ("reference", name)) for name, spec in cfg.references.items()]
    if on_start is not None:
        on_start(
            SearchStart(
                run.study.study_name,
                run.resumed,
                len(counted_trials(run.study)),
                cfg.search.trials,
                run.requeued,
            )
        )
    return drive(
        cfg,
        run,
        store,
        proposals,
        sample=True,
        on_progress=on_progress,
        space_size=len(architectures) if architectures is not None else None,
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
    takeover: bool = False,
) -> OpenRun:
    """The study and search row of a run that evaluates a fixed list of proposals (a
    validation, a benchmark pass): the unfinished one with ``fingerprint`` resumed (its lease
    taken over if ``takeover``), else a new one. Ray is started and its resources checked
    first and the data read, as for a search."""
    start_ray(cfg)
    num_classes = read_data(cfg)
    existing = store.find_resumable(fingerprint)
    if existing is not None:
        run = resume_run(url, existing, cfg, store, takeover)
    else:
        name = new_study_name(name_prefix)
        run = new_run(cfg, store, url, name, fingerprint, requested, kind, parent_id)
    return dataclasses.replace(run, num_classes=num_classes)


def new_run(
    cfg: SearchConfig,
    store: SearchStore,
    url: str,
    study_name: str,
    fingerprint: str,
    requested: int,
    kind: str = "search",
    parent_id: int | None = None,
) -> OpenRun:
    """A new study and its search row, whose lease this process holds."""
    study = create_study(url, study_name, cfg)
    search = store.create_search(
        study_name=study_name,
        name=cfg.name,
        fingerprint=fingerprint,
        config=cfg.stored_raw,
        objectives=cfg.objective_names,
        directions=cfg.directions,
        trials_requested=requested,
        kind=kind,
        parent_id=parent_id,
    )
    return OpenRun(study, search.id, False, DriverLease.claim(store, search))


def resume_run(
    url: str, existing, cfg: SearchConfig, store: SearchStore, takeover: bool = False
) -> OpenRun:
    """Reopen an unfinished search once its lease is ours, failing and re-queueing what the
    dead run left."""
    lease = DriverLease.claim(store, existing, takeover)
    study = open_study(url, existing.study_name, cfg)
    requeue_interrupted(study)
    store.fail_running_trials(existing.id, INTERRUPTED)
    store.update_search(existing.id, status="running", resumes=existing.resumes + 1, reason=None)
    # re-queued now, or by the interrupted driver itself on its way out
    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    return OpenRun(study, existing.id, True, lease, len(waiting))


def drive(
    cfg: SearchConfig,
    run: OpenRun,
    store: SearchStore,
    proposals: list[Proposal],
    sample: bool,
    on_progress: Callable[[Progress], None] | None = None,
    space_size: int | None = None,
) -> SearchOutcome:
    """Evaluate ``proposals``, then (``sample``) the sampler's architectures up to the budget,
    through Ray Tune; record the run's end in the store and summarise it. Releases the lease."""
    from nas.search.device_lock import release_everywhere

    study, search_id = run.study, run.search_id
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
    run.lease.keep_alive(driver.abort)
    start = time.monotonic()
    try:
        if budget > 0 or driver.pending_proposals:
            _run_trials(cfg, driver, folder_name(study.study_name), run.num_classes)
    except BaseException as err:
        _record_stop(study, store, search_id, time.monotonic() - start, err)
        if isinstance(err, Exception) and not isinstance(err, NasError):
            raise SearchFailed(
                f"search {study.study_name} failed: {_one_line(err)}; it is marked failed in "
                "the store, and the same command resumes it once the cause is fixed"
            ) from err
        raise
    finally:
        run.lease.release()
    wall = time.monotonic() - start
    if run.lease.lost:  # the search is the other driver's now: leave its row alone
        raise LeaseError(f"search {study.study_name}: {driver.fatal}")
    if driver.fatal is not None:
        store.update_search(search_id, add_wall_seconds=wall, status="failed", reason=driver.fatal)
        raise SearchFailed(f"search {study.study_name} failed: {driver.fatal}")
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
        state.name: sum(t.state == state and not t.user_attrs.get("interrupted") for t in sampled)
        for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    }
    counts["INTERRUPTED"] = sum(
        bool(t.user_attrs.get("interrupted")) and not t.user_attrs.get("node_lost") for t in sampled
    )
    counts["NODE_LOST"] = sum(bool(t.user_attrs.get("node_lost")) for t in trials)
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
        resumed=run.resumed,
        stop_reason=driver.stop_reason,
    )


def _run_trials(
    cfg: SearchConfig, driver: SearchDriver, run_name: str, num_classes: int | None
) -> None:
    """Ray Tune over the driver's trials: Tune's own error log is silenced, since every
    failure is recorded in the store with its cause (and a traceback would land in the
    progress display). ``num_classes`` sizes the memory estimate's head (``None``: 1,000,
    an upper bound when the data is not loaded). The search's presence attaches it to the
    device locks its trials use, and leaves them when it ends (see
    :mod:`nas.search.device_lock`)."""
    from ray import tune

    from nas.search.device_lock import close_presence, open_presence
    from nas.search.ray_adapters import AskTellSearcher, PruningScheduler
    from nas.search.trainable import TrialSettings, run_trial

    driver.set_fits(memory_check(cfg, num_classes or 1000, node_memory_bytes()))
    locks = open_presence(run_name)
    settings = TrialSettings(cfg.proxy, cfg.throughput, cfg.constraints, locks)
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, settings=settings),
        {"cpu": cfg.resources.cpu, "gpu": cfg.resources.gpu, **cfg.resources.custom},
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
            name=run_name,
            storage_path=str(Path(cfg.run_dir).resolve() / cfg.name / "ray"),
            verbose=0,
        ),
    )
    tune_logger = logging.getLogger("ray.tune")
    level = tune_logger.level
    tune_logger.setLevel(logging.CRITICAL)
    try:
        tuner.fit()
    finally:
        tune_logger.setLevel(level)
        close_presence(locks)


def _record_stop(
    study: optuna.Study, store: SearchStore, search_id: int, wall: float, err: BaseException
) -> None:
    """What an interrupt or a driver error leaves: running trials recorded as interrupted and
    re-queued (as a resume would), the search interrupted or failed with its reason."""
    requeue_interrupted(study)
    store.fail_running_trials(search_id, INTERRUPTED)
    if isinstance(err, Exception):
        store.update_search(
            search_id, add_wall_seconds=wall, status="failed", reason=_one_line(err)
        )
    else:
        store.update_search(search_id, add_wall_seconds=wall, status="interrupted")


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or "no message"
    return text if isinstance(err, NasError) else f"{type(err).__name__}: {text}"


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
