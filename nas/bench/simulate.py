"""``nas bench simulate``: replay seeded searches against a table in simulated time.

Syne Tune's simulator-backend design: W asynchronous workers; a trial costs the table's
recorded throughput-measurement time, then each epoch's recorded time; results arrive in
simulated-time order. The search itself is not re-implemented: every replay runs the real
:class:`~nas.search.driver.SearchDriver` with the sampler ``create_sampler`` builds and the
pruner ``search_pruner`` builds, into a real (in-memory SQLite) store, so the ask, dedupe,
tell and rung decisions are those of ``nas search``. Only the trainer is replaced by the table.
"""

from __future__ import annotations

import heapq
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
from omegaconf import OmegaConf

from nas.arch.spec import ArchSpec
from nas.bench.metrics import HypervolumeScale, table_front
from nas.bench.table import BenchError, BenchTable, TableArch
from nas.search.config import SearchConfig, apply_overrides, parse_config
from nas.search.driver import FINISHED, Progress, Proposal, SearchDriver
from nas.search.runner import search_pruner
from nas.search.samplers import create_sampler
from nas.store import SearchStore


@dataclass(frozen=True)
class Method:
    """A search method: overrides of the table's configuration (sampler, pruner, objectives,
    prescreen ...) as ``KEY=VALUE`` strings, or the oracle that proposes the table's front."""

    name: str
    overrides: tuple[str, ...] = ()
    oracle: bool = False
    description: str = ""
    peer: bool = False  # run by Syne Tune on its own tabular backend (nas.bench.peers)


# The zero-cost proxy of the pre-screen method: the learned proxy nas bench zero-cost ranked best on
# the shipped table, though none beats chance there (README, "Zero-cost proxies").
PRESCREEN_PROXY = "naswot"
# The default (``tpe+pareto_sh``) is the table's own search section: what nas search runs.
METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method(
            "random",
            ("search.sampler.kind=random", "search.pruner.kind=none"),
            description="random search, every trial trained fully",
        ),
        Method(
            "tpe",
            ("search.sampler.kind=tpe", "search.pruner.kind=none"),
            description="multivariate TPE, no pruning",
        ),
        Method(
            "nsga2",
            ("search.sampler.kind=nsga2", "search.pruner.kind=none"),
            description="NSGA-II, no pruning",
        ),
        Method(
            "random+pareto_sh",
            ("search.sampler.kind=random", "search.pruner.kind=pareto_sh"),
            description="random search with Pareto successive halving (MOASHA)",
        ),
        Method(
            "tpe+pareto_sh",
            ("search.sampler.kind=tpe", "search.pruner.kind=pareto_sh"),
            description="the default: multivariate TPE with Pareto successive halving",
        ),
        Method(
            "tpe+median(acc)",
            (
                "search.sampler.kind=tpe",
                "search.pruner.kind=median",
                "objectives=[{name: accuracy, direction: maximize}]",
            ),
            description="naive baseline: single-objective TPE on accuracy + median pruning",
        ),
        Method(
            "tpe+pareto_sh+prescreen",
            (
                "search.sampler.kind=tpe",
                "search.pruner.kind=pareto_sh",
                f"prescreen.proxy={PRESCREEN_PROXY}",
                "prescreen.keep=0.5",
            ),
            description=f"the default with a {PRESCREEN_PROXY} pre-screen keeping 1 of 2",
        ),
        Method("oracle", oracle=True, description="proposes the table's front (HV 1.0)"),
        Method("st_moasha", peer=True, description="Syne Tune's MOASHA (rung fix, see peers)"),
        Method("st_random", peer=True, description="Syne Tune's random search"),
    )
}
DEFAULT_METHODS = (
    "random",
    "tpe",
    "nsga2",
    "random+pareto_sh",
    "tpe+pareto_sh",
    "tpe+median(acc)",
)


def parse_method(text: str) -> Method:
    """``NAME`` of :data:`METHODS`, or ``NAME:KEY=VALUE;KEY=VALUE`` for a variant of one (e.g.
    ``tpe+pareto_sh:search.sampler.n_startup_trials=16``)."""
    name, _, extra = text.partition(":")
    if name not in METHODS:
        from nas.typed_config import suggest

        raise BenchError(
            f"--methods: unknown method {name!r}{suggest(name, list(METHODS))}; "
            f"known: {', '.join(METHODS)}"
        )
    base = METHODS[name]
    if not extra:
        return base
    more = tuple(o.strip() for o in extra.split(";") if o.strip())
    return Method(text, base.overrides + more, base.oracle, base.description)


def method_config(table: BenchTable, method: Method, seed: int) -> SearchConfig:
    """The table's configuration with the method's overrides, seeded, unbounded in trials (the
    simulated-time budget stops the replay), no seed designs."""
    raw = json.loads(json.dumps(table.config))
    raw.pop("references", None)
    raw["storage"] = "sqlite://"
    raw.setdefault("search", {})["seed"] = seed
    raw["search"]["trials"] = max(1, len(table.archs))
    cfg = OmegaConf.create(raw)
    apply_overrides(cfg, list(method.overrides), f"method {method.name}")
    return parse_config(OmegaConf.to_container(cfg, resolve=True), default_name="bench")


@dataclass
class Replay:
    """One seeded replay: every full-budget completion as (simulated time, arch hash), and
    what it cost."""

    method: str
    seed: int
    completions: list[tuple[float, str]] = field(default_factory=list)
    dispatched: list[tuple[float, str]] = field(default_factory=list)
    trials: int = 0
    pruned: int = 0
    duplicates: int = 0
    prescreened: int = 0
    prescreen_pairs: list[tuple[str, str]] = field(default_factory=list)  # (trained, dropped)
    wall_seconds: float = 0.0
    stop_reason: str | None = None


def default_budget(table: BenchTable, workers: int, fraction: float = 0.25) -> float:
    """Simulated seconds in which W workers could train ``fraction`` of the table fully."""
    total = sum(a.measure_s + sum(next(iter(a.curves.values())).epoch_s) for a in table.completed())
    return fraction * total / workers


def simulate(
    table: BenchTable,
    method: Method,
    seed: int,
    workers: int,
    budget_s: float,
    table_seed: int | None = None,
) -> Replay:
    """Replay one search of ``method`` against ``table`` until ``budget_s`` simulated seconds
    (trials still running then are left unfinished, as a killed search would)."""
    if workers < 1:
        raise BenchError(f"--workers: expected an integer >= 1, found {workers}")
    table_seed = table.seeds[0] if table_seed is None else table_seed
    start = time.perf_counter()
    cfg = method_config(table, method, seed)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        directions=cfg.directions, sampler=create_sampler(cfg.search.sampler, seed)
    )
    store = SearchStore("sqlite://")
    search_id = store.create_search(
        study_name=f"replay-{method.name}-{seed}",
        name="bench",
        fingerprint="replay",
        config=cfg.raw,
        objectives=cfg.objective_names,
        directions=cfg.directions,
        trials_requested=cfg.search.trials,
        kind="replay",
    ).id
    proposals = (
        [
            Proposal(ArchSpec.from_dict(table.archs[h].spec), ("table_arch", h))
            for h in table_front(table, table_seed)
        ]
        if method.oracle
        else []
    )
    progress = Progress(requested=cfg.search.trials)
    driver = SearchDriver(
        cfg,
        study,
        store,
        search_id,
        search_pruner(cfg),
        budget=cfg.search.trials,
        progress=progress,
        proposals=proposals,
        sample=not method.oracle,
        space_size=len(table.archs),
        scorer=table_scorer(table, cfg.prescreen.proxy) if cfg.prescreen.proxy else None,
    )
    replay = Replay(method.name, seed)
    Clock(table, driver, workers, budget_s, table_seed, replay).run()
    replay.trials = progress.done + progress.pruned + progress.failed + progress.references
    replay.pruned = progress.pruned
    replay.duplicates = progress.duplicates
    replay.prescreened = progress.prescreened
    by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
    replay.prescreen_pairs = [
        (by_number[t.user_attrs["prescreened"]].user_attrs["arch_hash"], t.user_attrs["arch_hash"])
        for t in by_number.values()
        if "prescreened" in t.user_attrs
    ]
    replay.stop_reason = driver.stop_reason
    store.dispose()
    replay.wall_seconds = time.perf_counter() - start
    return replay


class Clock:
    """The simulated-time event loop: a heap of (time, order, run id, epoch) events, epoch 0
    being the end of the throughput measurement."""

    def __init__(
        self,
        table: BenchTable,
        driver: SearchDriver,
        workers: int,
        budget_s: float,
        table_seed: int,
        replay: Replay,
    ):
        self.table = table
        self.driver = driver
        self.idle = workers
        self.budget_s = budget_s
        self.table_seed = table_seed
        self.replay = replay
        self.events: list[tuple[float, int, str, int]] = []
        self.order = 0
        self.running: dict[str, TableArch] = {}
        self.finished = False

    def run(self) -> None:
        self.dispatch(0.0)
        while self.events:
            now, _, run_id, epoch = heapq.heappop(self.events)
            if now > self.budget_s:
                break
            self.step(now, run_id, epoch)
            self.dispatch(now)

    def dispatch(self, now: float) -> None:
        while self.idle and not self.finished and now < self.budget_s:
            run_id = f"replay-{self.order}"
            suggestion = self.driver.suggest(run_id)
            if suggestion == FINISHED:
                self.finished = True
                return
            if suggestion is None:  # nothing new until a running trial ends
                return
            arch = self.table.lookup(ArchSpec.from_dict(suggestion["spec"]).content_hash())
            self.running[run_id] = arch
            self.replay.dispatched.append((now, arch.arch_hash))
            self.idle -= 1
            cached = suggestion["cached"].get("images_per_s") is not None
            self.push(now + (0.0 if cached else arch.measure_s), run_id, 0)

    def push(self, at: float, run_id: str, epoch: int) -> None:
        heapq.heappush(self.events, (at, self.order, run_id, epoch))
        self.order += 1

    def step(self, now: float, run_id: str, epoch: int) -> None:
        arch = self.running[run_id]
        if epoch == 0:
            self.driver.on_result(run_id, measured_result(arch))
            if not arch.completed:
                self.end(run_id, {"phase": "final", "status": "failed", "reason": arch.reason})
                return
            self.push(now + self.curve(arch).epoch_s[0], run_id, 1)
            return
        curve = self.curve(arch)
        result = {
            "phase": "epoch",
            "epoch": epoch,
            "val_top1": curve.val_top1[epoch - 1],
            "val_loss": curve.val_loss[epoch - 1],
            "elapsed_s": float(sum(curve.epoch_s[:epoch])),
        }
        if self.driver.on_result(run_id, result):
            self.end(run_id, result)
        elif epoch == len(curve.val_top1):
            final = {
                "phase": "final",
                "status": "completed",
                "accuracy": curve.final,
                "val_size": curve.val_size,
                "seeds": 1,
            }
            self.end(run_id, final)
            self.replay.completions.append((now, arch.arch_hash))
        else:
            self.push(now + curve.epoch_s[epoch], run_id, epoch + 1)

    def end(self, run_id: str, result: dict[str, Any]) -> None:
        self.driver.on_complete(run_id, result, error=False)
        del self.running[run_id]
        self.idle += 1

    def curve(self, arch: TableArch):
        if self.table_seed not in arch.curves:
            raise BenchError(
                f"architecture {arch.arch_hash} has no training with seed {self.table_seed} in "
                f"the table (seeds: {sorted(arch.curves)})"
            )
        return arch.curves[self.table_seed]


def table_scorer(table: BenchTable, proxy: str) -> Callable[[ArchSpec], float]:
    """The pre-screen's scores as the table recorded them (nas bench zero-cost)."""
    missing = [a.arch_hash for a in table.archs.values() if proxy not in a.zero_cost]
    if missing:
        raise BenchError(
            f"prescreen.proxy {proxy!r}: {len(missing)} of the table's {len(table.archs)} "
            f"architectures have no {proxy} score; run nas bench zero-cost on the table first"
        )
    return lambda spec: table.archs[spec.content_hash()].zero_cost[proxy]


def measured_result(arch: TableArch) -> dict[str, Any]:
    return {
        "phase": "measured",
        "params": arch.params,
        "macs": arch.macs,
        "images_per_s": arch.throughput,
        "spread": {"q25": arch.throughput_q25, "q75": arch.throughput_q75},
        "peak_memory_mb": None,
        "newly_measured": True,
    }


def hypervolume_trace(
    replay: Replay, table: BenchTable, scale: HypervolumeScale, table_seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(times, normalised HV after each completion) of a replay: a step function from 0."""
    times, values, points, seen = [0.0], [0.0], [], set()
    for at, arch_hash in replay.completions:
        if arch_hash in seen:
            continue
        seen.add(arch_hash)
        arch = table.archs[arch_hash]
        points.append([arch.curves[table_seed].final, arch.throughput])
        times.append(at)
        values.append(scale(points))
    return np.array(times), np.array(values)


def on_grid(times: np.ndarray, values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """A step function's value at each grid time (the last value at or before it)."""
    return values[np.searchsorted(times, grid, side="right") - 1]


_TABLE: BenchTable | None = None


def _init_worker(table: BenchTable) -> None:
    global _TABLE
    _TABLE = table


def _replay_job(job: tuple[Method, int, int, float, int]) -> Replay:
    method, seed, workers, budget_s, table_seed = job
    assert _TABLE is not None
    if method.peer:
        from nas.bench.peers import run_syne_tune

        start = time.perf_counter()
        completions = run_syne_tune(_TABLE, method.name, seed, workers, budget_s, table_seed)
        replay = Replay(method.name, seed, completions, trials=len(completions))
        replay.wall_seconds = time.perf_counter() - start
        return replay
    return simulate(_TABLE, method, seed, workers, budget_s, table_seed)


def run_replays(
    table: BenchTable,
    methods: Sequence[Method],
    seeds: int,
    workers: int,
    budget_s: float,
    table_seed: int,
    processes: int = 1,
    on_done: Callable[[Replay], None] | None = None,
) -> list[Replay]:
    """Every (method, seed) replay, in ``processes`` worker processes (the sampler's own time
    is all a replay costs, so they parallelise perfectly)."""
    jobs = [(m, s, workers, budget_s, table_seed) for m in methods for s in range(seeds)]
    done: list[Replay] = []
    if processes <= 1:
        _init_worker(table)
        for job in jobs:
            done.append(_replay_job(job))
            if on_done:
                on_done(done[-1])
        return done
    import multiprocessing

    context = multiprocessing.get_context("fork")
    with context.Pool(processes, initializer=_init_worker, initargs=(table,)) as pool:
        for replay in pool.imap_unordered(_replay_job, jobs):
            done.append(replay)
            if on_done:
                on_done(replay)
    order = {(m.name, s): i for i, (m, s, *_) in enumerate(jobs)}
    return sorted(done, key=lambda r: order[(r.method, r.seed)])


def check_replayable(table: BenchTable, asked: SearchConfig | None, where: str) -> None:
    """Refuse a table that answers another configuration than ``asked``, or that lacks some of
    its own space's architectures (a replay would then need a guess)."""
    from nas.bench.table import check_answers
    from nas.search.space import enumerate_architectures

    if asked is not None:
        check_answers(table.config, asked.raw, where)
    space = parse_config(
        {k: v for k, v in table.config.items() if k != "references"}, default_name="bench"
    ).space
    everything = enumerate_architectures(space)
    if everything is None:
        raise BenchError(
            f"{where}: the table's space cannot be enumerated (a numeric range, or over 10,000 "
            "sampling paths), so a replay could propose architectures it lacks; build the table "
            "of a small benchmark space such as search_spaces/bench.yaml"
        )
    missing = [s for s in everything if s.content_hash() not in table.archs]
    if missing:
        raise BenchError(
            f"{where}: the table holds {len(table.archs)} of its space's {len(everything)} "
            f"architectures ({len(missing)} missing, e.g. {missing[0].content_hash()}); a replay "
            "needs every one: rebuild it with nas bench build --archs "
            f"{len(everything)} or more"
        )
