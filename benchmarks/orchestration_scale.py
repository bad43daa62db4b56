"""Scale of the orchestration: the search machinery with near-free trials, against the plain tools.

Each method runs N trials of the same objective at the same concurrency, in its own process
(clean CPU counters, a fresh local Ray), and its driver's CPU time is split by where it went:

* ``ours``: ``nas search``'s own path (``run_search``: Ray Tune with the AskTellSearcher and
  PruningScheduler around the SearchDriver, Pareto successive halving, the SQLite store, the
  CLI's live progress), with the benchmark trainable below instead of measuring and training.
* ``ours_driver``: the same SearchDriver, sampler, pruner, store and progress, fed by an
  in-process loop of W slots instead of Ray: our own cost without Ray's.
* ``tune_optuna_asha``: Ray Tune's ``OptunaSearch`` (the same multivariate TPE, a multi-objective
  study in SQLite) with Tune's ``ASHAScheduler`` on accuracy.
* ``optuna``: ``study.optimize`` alone (the same sampler, SQLite, ``n_jobs`` = W), no pruning
  (Optuna's pruners are single-objective).

The trials are near-free on purpose: a benchmark-only trainable skips the model but reports the
same phases as ``nas.search.trainable.run_trial`` (``measured``, one ``epoch`` result per epoch,
``final``), with sizes, throughput and a learning curve computed from the architecture
(:func:`synthetic_objective`), so every second counted is orchestration. (The real trainable
with a tiny proxy still builds, times and trains a network per trial, on the workers, whose
cost and noise would hide the machinery being measured.) The space
(``orchestration_scale.yaml``) holds millions of architectures, so no run is cut short by
deduplication.

Driver CPU categories (exclusive: a timed call inside another is charged to the inner one):
``sampler`` (``study.ask`` and sampling the space), ``pruner`` (``pruner.prune``; ASHA's
``on_trial_result``), ``store`` (``SearchStore`` calls: the ``nas_*`` tables), ``optuna``
(``study.tell`` and trial attribute writes), ``fits`` (the driver's memory estimate of each
proposal), ``progress`` (the CLI's live display), ``trial`` (the objective itself, when it runs
in the driver: ``optuna`` only) and ``rest`` (everything else in the driver process: Ray Tune's
loop, its threads, Optuna's reads). Growth is read from the cumulative driver CPU after each
trial: per-trial cost in the last 10% of the trials over the first 10%, and the log-log slope of
cumulative CPU against trials (1: constant cost per trial, 2: cost per trial grows linearly).

    python benchmarks/orchestration_scale.py                       # 100, 500, 2000; all methods
    python benchmarks/orchestration_scale.py --trials 500 --methods ours,ours_driver
    python benchmarks/orchestration_scale.py --trials 500 --methods ours_driver --profile

Every finished run is kept in ``--work`` (default ``runs/orchestration_scale``), so the same
command resumes; the tables are rebuilt from every run there and written to
``benchmarks/results/orchestration_scale.{csv,md,png}``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SPACE_FILE = Path(__file__).resolve().with_suffix(".yaml")
RESULTS = ROOT / "benchmarks" / "results"
METHODS = ("ours", "ours_driver", "tune_optuna_asha", "optuna")
PEERS = ("tune_optuna_asha", "optuna")
CATEGORIES = ("sampler", "pruner", "store", "optuna", "fits", "progress", "trial")
# cost and accuracy gain of each mixer in the synthetic objective
MIXER_COST = {
    "pooling": 0.0,
    "sepconv": 2.5,
    "global_filter": 1.5,
    "gnconv": 3.0,
    "parc": 1.0,
    "dynamic_filter": 2.0,
    "attention": 4.0,
}
MIXER_GAIN = {
    "pooling": 0.0,
    "sepconv": 0.03,
    "global_filter": 0.02,
    "gnconv": 0.025,
    "parc": 0.0,
    "dynamic_filter": 0.01,
    "attention": 0.015,
}


# the objective -----------------------------------------------------------------------------
def synthetic_objective(spec: dict, epochs: int) -> dict[str, Any]:
    """Parameters, MACs, throughput and a learning curve computed from the architecture, no
    model: wider and deeper is slower and more accurate, each mixer has its own cost and gain,
    and the spec's hash adds a fixed noise (so rung and final rankings differ)."""
    side = spec["image_size"] // 4
    params = macs = blocks = 0
    gain = 0.0
    for stage in spec["stages"]:
        names = [stage["mixer"]["name"]] + [o["mixer"]["name"] for o in stage.get("overrides", [])]
        per_block = stage["dim"] ** 2 * (8 + statistics.fmean(MIXER_COST[n] for n in names))
        params += int(stage["depth"] * per_block)
        macs += int(stage["depth"] * per_block * side * side)
        blocks += stage["depth"]
        gain += statistics.fmean(MIXER_GAIN[n] for n in names)
        side = max(1, side // 2)
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).digest()
    noise, wobble = digest[0] / 255, digest[1] / 255 - 0.5
    final = min(0.99, 0.3 + 0.05 * math.log1p(params / 1e3) + gain + 0.05 * noise)
    curve = [
        0.1
        + (final - 0.1) * (1 - 0.5**e) / (1 - 0.5**epochs)
        + 0.04 * wobble * (epochs - e) / epochs
        for e in range(1, epochs + 1)
    ]
    return {
        "params": params,
        "macs": macs,
        "images_per_s": 2e9 / (macs + 5e4 * blocks),
        "curve": curve,
    }


def synthetic_results(suggestion: dict, epochs: int) -> Iterator[dict[str, Any]]:
    """What ``run_trial`` reports for ``suggestion`` (the driver's), phase by phase."""
    objective = synthetic_objective(suggestion["spec"], epochs)
    cached = suggestion.get("cached") or {}
    yield {
        "phase": "measured",
        "params": objective["params"],
        "macs": objective["macs"],
        "images_per_s": objective["images_per_s"],
        "spread": {"q25": objective["images_per_s"], "q75": objective["images_per_s"]},
        "peak_memory_mb": None,
        "device_name": "synthetic",
        "newly_measured": cached.get("images_per_s") is None,
    }
    for epoch, top1 in enumerate(objective["curve"], start=1):
        yield {
            "phase": "epoch",
            "epoch": epoch,
            "val_top1": top1,
            "val_loss": 1.0 - top1,
            "train_loss": 1.0 - top1,
            "elapsed_s": 0.0,
            "images_per_s": 0.0,
            "val_size": 16,
            "seeds": 1,
            "val_top1_std": None,
        }
    yield {
        "phase": "final",
        "status": "completed",
        "accuracy": objective["curve"][-1],
        "val_size": 16,
        "seeds": 1,
    }


def synthetic_trial(config: dict[str, Any], settings: Any) -> None:
    """The benchmark's stand-in for ``run_trial`` on a Ray worker."""
    from ray import tune

    for result in synthetic_results(config, settings.proxy.epochs):
        tune.report(result)


def peer_trial(config: dict[str, Any], epochs: int) -> None:
    """The same objective as a plain Tune trainable: one report per epoch (ASHA's time unit)."""
    from ray import tune

    objective = synthetic_objective(config["spec"], epochs)
    for top1 in objective["curve"]:
        tune.report({"accuracy": top1, "throughput": objective["images_per_s"]})


# accounting -------------------------------------------------------------------------------
class CpuAccount:
    """CPU seconds of the driver process by category (thread CPU time of the calling thread,
    exclusive), and the cumulative totals after each finished trial."""

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(CATEGORIES, 0.0)
        self.series: list[list[float]] = []
        self.started: tuple[float, float] | None = None
        self._at_start = dict(self.seconds)
        self._local = threading.local()
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        """Tune pickles its callbacks into the experiment state: the figures travel, not the
        thread-local stack or the lock."""
        return {k: v for k, v in self.__dict__.items() if k not in ("_local", "_lock")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _local=threading.local(), _lock=threading.Lock())

    def begin(self) -> None:
        """The trial phase starts (first suggestion): the series counts from here."""
        if self.started is None:
            with self._lock:
                self._at_start = dict(self.seconds)
            self.started = (time.perf_counter(), time.process_time())

    def timed(self, fn: Callable, category: str) -> Callable:
        @functools.wraps(fn)
        def call(*args: Any, **kwargs: Any) -> Any:
            stack = self._local.__dict__.setdefault("stack", [])
            now = time.thread_time()
            if stack:
                self._charge(stack[-1][0], now - stack[-1][1])
            stack.append([category, now])
            try:
                return fn(*args, **kwargs)
            finally:
                end = time.thread_time()
                self._charge(category, end - stack.pop()[1])
                if stack:
                    stack[-1][1] = end

        return call

    def wrap(self, owner: Any, name: str, category: str) -> None:
        setattr(owner, name, self.timed(getattr(owner, name), category))

    def _charge(self, category: str, seconds: float) -> None:
        with self._lock:
            self.seconds[category] += seconds

    def trial_done(self) -> None:
        self.begin()
        wall0, cpu0 = self.started
        with self._lock:
            self.series.append(
                [
                    time.perf_counter() - wall0,
                    time.process_time() - cpu0,
                    *(self.seconds[c] - self._at_start[c] for c in CATEGORIES),
                ]
            )


def _starts_trials(account: CpuAccount, fn: Callable) -> Callable:
    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        account.begin()
        return fn(*args, **kwargs)

    return call


def _after_each(fn: Callable, then: Callable[[], None]) -> Callable:
    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        out = fn(*args, **kwargs)
        then()
        return out

    return call


def instrument_optuna(account: CpuAccount) -> None:
    import optuna

    account.wrap(optuna.study.Study, "ask", "sampler")
    account.wrap(optuna.study.Study, "tell", "optuna")
    for name in ("set_user_attr", "set_constraint", "report"):
        account.wrap(optuna.trial.Trial, name, "optuna")


def instrument_ours(account: CpuAccount) -> None:
    """Time the driver's sampler, pruner, store, Optuna writes and memory check."""
    from nas.search import pruners, runner
    from nas.search.driver import SearchDriver
    from nas.search.space import SearchSpace
    from nas.store import SearchStore

    instrument_optuna(account)
    account.wrap(SearchSpace, "sample", "sampler")
    account.wrap(pruners.ParetoSuccessiveHalvingPruner, "prune", "pruner")
    for name, member in list(vars(SearchStore).items()):
        if callable(member) and not name.startswith("_") and name not in ("session", "dispose"):
            account.wrap(SearchStore, name, "store")
    memory_check = runner.memory_check
    runner.memory_check = lambda *a: account.timed(memory_check(*a), "fits")
    SearchDriver.suggest = _starts_trials(account, SearchDriver.suggest)
    SearchDriver.on_complete = _after_each(SearchDriver.on_complete, account.trial_done)


def live_progress(account: CpuAccount, cfg: Any) -> Callable:
    """The CLI's live display, as ``nas search`` shows it (drawn into /dev/null), timed."""
    from nas.commands.search import LiveProgress

    live = LiveProgress(cfg.directions)
    devnull = open(os.devnull, "w")  # open as long as the run draws

    def draw(progress: Any) -> None:
        if live.bar is None:
            from tqdm import tqdm

            live.bar = tqdm(total=progress.requested, file=devnull)
        live(progress)

    return account.timed(draw, "progress")


# the methods ------------------------------------------------------------------------------
def load_cfg(trials: int, concurrency: int, work: Path, name: str) -> Any:
    from nas.search.config import load_config

    return load_config(
        SPACE_FILE,
        [
            f"name={name}",
            f"search.trials={trials}",
            f"search.max_concurrent={concurrency}",
            f"run_dir={work}",
        ],
    )


def run_ours(cfg: Any, account: CpuAccount) -> dict[str, Any]:
    from nas.search import runner, trainable

    instrument_ours(account)
    # the benchmark trainable instead of measuring and training (read by _run_trials)
    trainable.run_trial = synthetic_trial
    outcome = runner.run_search(cfg, fresh=True, on_progress=live_progress(account, cfg))
    return {
        "finished": sum(outcome.counts[s] for s in ("COMPLETE", "PRUNED", "FAIL")),
        "pruned": outcome.counts["PRUNED"],
        "duplicates": outcome.counts["DUPLICATE"],
        "store": cfg.storage_url().removeprefix("sqlite:///"),
        "tune_dir": str(Path(cfg.run_dir) / cfg.name / "ray"),
    }


def run_ours_driver(cfg: Any, account: CpuAccount) -> dict[str, Any]:
    """The SearchDriver fed by W in-process slots (round robin, one result per step)."""
    import psutil

    from nas.search import runner
    from nas.search.driver import FINISHED, Progress, SearchDriver
    from nas.store import SearchStore

    instrument_ours(account)
    url = cfg.storage_url()
    store = SearchStore(url)
    run = runner.new_run(
        cfg, store, url, runner.new_study_name(cfg.name), cfg.fingerprint(), cfg.search.trials
    )
    progress = Progress(requested=cfg.search.trials)
    driver = SearchDriver(
        cfg,
        run.study,
        store,
        run.search_id,
        runner.search_pruner(cfg),
        cfg.search.trials,
        progress,
        live_progress(account, cfg),
    )
    driver.set_fits(runner.memory_check(cfg, runner.read_data(cfg), psutil.virtual_memory().total))
    epochs = cfg.proxy.epochs
    slots: dict[str, Iterator[dict]] = {}
    order = 0
    finished = False
    while slots or not finished:
        while not finished and len(slots) < cfg.search.max_concurrent:
            run_id = f"slot-{order}"
            order += 1
            suggestion = driver.suggest(run_id)
            if suggestion == FINISHED:
                finished = True
            elif suggestion is None:  # the budget is handed out: ask again once a slot ends
                break
            else:
                slots[run_id] = synthetic_results(suggestion, epochs)
        for run_id in list(slots):
            result = next(slots[run_id])
            if result["phase"] == "final":
                driver.on_complete(run_id, result, error=False)
                del slots[run_id]
            elif driver.on_result(run_id, result):
                driver.on_complete(run_id, result, error=False)
                del slots[run_id]
    run.lease.release()
    store.dispose()
    return {
        "finished": progress.finished,
        "pruned": progress.pruned,
        "duplicates": progress.duplicates,
        "store": url.removeprefix("sqlite:///"),
    }


class DefineByRun:
    """OptunaSearch's define-by-run space: the same sampling as the driver's, the spec as a
    constant of the config (a class: Tune pickles its searcher with plain pickle)."""

    def __init__(self, space: Any):
        self.space = space

    def __call__(self, trial: Any) -> dict[str, Any]:
        return {"spec": self.space.sample(trial).to_dict()}


def run_tune_optuna_asha(cfg: Any, account: CpuAccount) -> dict[str, Any]:
    import optuna
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    from nas.search.runner import init_ray
    from nas.search.samplers import create_sampler

    class Completions(tune.Callback):
        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            account.trial_done()

    instrument_optuna(account)
    account.wrap(OptunaSearch, "suggest", "sampler")
    account.wrap(OptunaSearch, "on_trial_complete", "optuna")
    account.wrap(ASHAScheduler, "on_trial_result", "pruner")
    OptunaSearch.suggest = _starts_trials(account, OptunaSearch.suggest)
    folder = Path(cfg.run_dir) / cfg.name
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "optuna.db"
    init_ray(None)
    search = OptunaSearch(
        space=DefineByRun(cfg.space),
        metric=["accuracy", "throughput"],
        mode=["max", "max"],
        sampler=create_sampler(cfg.search.sampler, cfg.search.seed),
        storage=optuna.storages.RDBStorage(f"sqlite:///{db}"),
    )
    pruner = cfg.search.pruner
    tuner = tune.Tuner(
        tune.with_resources(
            tune.with_parameters(peer_trial, epochs=cfg.proxy.epochs),
            {"cpu": cfg.resources.cpu, "gpu": 0},
        ),
        tune_config=tune.TuneConfig(
            search_alg=search,
            scheduler=ASHAScheduler(
                metric="accuracy",
                mode="max",
                max_t=cfg.proxy.epochs,
                grace_period=pruner.min_resource,
                reduction_factor=pruner.reduction_factor,
            ),
            num_samples=cfg.search.trials,
            max_concurrent_trials=cfg.search.max_concurrent,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name="tune", storage_path=str(folder.resolve()), verbose=0, callbacks=[Completions()]
        ),
    )
    grid = tuner.fit()
    stopped = sum(
        r.metrics.get("training_iteration", 0) < cfg.proxy.epochs for r in grid if r.metrics
    )
    return {
        "finished": len(grid),
        "pruned": stopped,
        "duplicates": 0,
        "store": str(db),
        "tune_dir": str(folder / "tune"),
    }


def run_optuna(cfg: Any, account: CpuAccount) -> dict[str, Any]:
    import optuna

    from nas.search.samplers import create_sampler

    instrument_optuna(account)
    # study.optimize tells through this function, not Study.tell
    optimize = sys.modules["optuna.study._optimize"]
    optimize._tell_with_warning = account.timed(optimize._tell_with_warning, "optuna")
    folder = Path(cfg.run_dir) / cfg.name
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "optuna.db"
    study = optuna.create_study(
        storage=optuna.storages.RDBStorage(f"sqlite:///{db}"),
        sampler=create_sampler(cfg.search.sampler, cfg.search.seed),
        directions=cfg.directions,
    )
    epochs = cfg.proxy.epochs
    evaluate = account.timed(synthetic_objective, "trial")

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        spec = account.timed(cfg.space.sample, "sampler")(trial)
        values = evaluate(spec.to_dict(), epochs)
        return values["curve"][-1], values["images_per_s"]

    study.ask = _starts_trials(account, study.ask)
    study.optimize(
        objective,
        n_trials=cfg.search.trials,
        n_jobs=cfg.search.max_concurrent,
        callbacks=[lambda study, trial: account.trial_done()],
    )
    return {"finished": len(study.trials), "pruned": 0, "duplicates": 0, "store": str(db)}


RUNNERS = {
    "ours": run_ours,
    "ours_driver": run_ours_driver,
    "tune_optuna_asha": run_tune_optuna_asha,
    "optuna": run_optuna,
}


def disk_bytes(path: str | None) -> int:
    """Bytes of a file, or of every file under a folder (0 if absent)."""
    if not path or not Path(path).exists():
        return 0
    if Path(path).is_file():
        return Path(path).stat().st_size
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def checkpointed_bytes(path: str) -> int:
    """The database's size once its write-ahead log is folded in: what the run stored."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        return pages * db.execute("PRAGMA page_size").fetchone()[0]


def ray_processes_cpu() -> float:
    """CPU seconds of every process this one started (Ray's GCS, raylet, workers)."""
    import psutil

    total = 0.0
    for child in psutil.Process().children(recursive=True):
        try:
            times = child.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def run_one(method: str, trials: int, concurrency: int, work: Path, profile: bool) -> dict:
    """One method at one size, in this process; the record written to ``work``."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    name = f"{method}-{trials}"
    shutil.rmtree(work / name, ignore_errors=True)  # a rerun starts from an empty store
    cfg = load_cfg(trials, concurrency, work, name)
    account = CpuAccount()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    out = RUNNERS[method](cfg, account)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(work / f"{name}.prof")
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    store = out.pop("store")
    record = {
        "method": method,
        "trials": trials,
        "concurrency": concurrency,
        "wall_s": wall,
        "cpu_s": cpu,
        "startup_s": account.started[0] - wall0 if account.started else wall,
        "startup_cpu_s": account.started[1] - cpu0 if account.started else cpu,
        "store_bytes": disk_bytes(store),
        "wal_bytes": disk_bytes(store + "-wal"),
        "data_bytes": checkpointed_bytes(store),
        "tune_dir_bytes": disk_bytes(out.pop("tune_dir", None)),
        "ray_cpu_s": ray_processes_cpu() if method in ("ours", "tune_optuna_asha") else 0.0,
        "series_columns": ["wall_s", "cpu_s", *CATEGORIES],
        "series": account.series,
        "host_cpus": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d"),
        "load_avg": os.getloadavg()[0],
        **out,
    }
    (work / f"{name}.json").write_text(json.dumps(record))
    return record


# analysis ---------------------------------------------------------------------------------
def growth(record: dict, column: str | None = None) -> tuple[float, float, float]:
    """(mean per-trial driver CPU over trials 10-20%, over the last 10%, log-log slope of the
    cumulative CPU against the trial count over 10-100%), from the series; the first 10% is
    warm-up (imports, caches, Ray's start). ``column``: one category instead of the total."""
    series = record["series"]
    n = len(series)
    if n < 20:
        return math.nan, math.nan, math.nan
    columns = record["series_columns"]
    trial = columns.index("trial")

    def cpu(k: int) -> float:  # after k trials (the objective itself left out of the total)
        row = series[k - 1]
        return row[columns.index(column)] if column else row[1] - row[trial]

    tenth = n // 10
    early = (cpu(2 * tenth) - cpu(tenth)) / tenth
    late = (cpu(n) - cpu(n - tenth)) / tenth
    ks = [k for k in range(tenth, n + 1) if cpu(k) > 0]
    if len(ks) < 2:
        return early, late, math.nan
    xs = [math.log(k) for k in ks]
    ys = [math.log(cpu(k)) for k in ks]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs
    )
    return early, late, slope


def summary_row(record: dict) -> dict[str, Any]:
    """Per-trial figures of the trial phase (first suggestion to last completion)."""
    n = max(1, len(record["series"]))
    last_row = record["series"][-1] if record["series"] else [math.nan] * (2 + len(CATEGORIES))
    trial_wall, cpu = last_row[:2]
    cats = dict(zip(CATEGORIES, last_row[2:], strict=True))
    orchestration = cpu - cats["trial"]
    early, late, slope = growth(record)
    row = {
        "method": record["method"],
        "trials": record["trials"],
        "concurrency": record["concurrency"],
        "finished": record["finished"],
        "pruned": record["pruned"],
        "duplicates": record["duplicates"],
        "wall_s": round(record["wall_s"], 2),
        "startup_s": round(record["startup_s"], 2),
        "startup_cpu_s": round(record["startup_cpu_s"], 2),
        "trials_per_min": round(60 * n / trial_wall, 1) if trial_wall > 0 else math.nan,
        "driver_cpu_ms_per_trial": round(1e3 * orchestration / n, 2),
    }
    named = sum(cats[c] for c in CATEGORIES if c != "trial")
    for c in CATEGORIES:
        if c != "trial":
            row[f"{c}_ms"] = round(1e3 * cats[c] / n, 2)
    row["rest_ms"] = round(1e3 * (orchestration - named) / n, 2)
    row.update(
        early_ms=round(1e3 * early, 2),
        late_ms=round(1e3 * late, 2),
        growth_late_over_early=round(late / early, 2) if early > 0 else math.nan,
        loglog_slope=round(slope, 2),
        store_mb=round(record["store_bytes"] / 2**20, 2),
        wal_mb=round(record["wal_bytes"] / 2**20, 2),
        data_kb_per_trial=round(record["data_bytes"] / 1024 / n, 2),
        tune_dir_mb=round(record["tune_dir_bytes"] / 2**20, 2),
        ray_processes_cpu_ms_per_trial=round(1e3 * record["ray_cpu_s"] / n, 1),
        load_avg=round(record["load_avg"], 1),
        host_cpus=record["host_cpus"],
        date=record.get("date", ""),
    )
    for c in ("sampler", "pruner", "store", "optuna"):
        c_early, c_late, _ = growth(record, c)
        row[f"{c}_growth"] = round(c_late / c_early, 2) if c_early > 0 else math.nan
    return row


def markdown(rows: list[dict]) -> str:
    dates = sorted({r["date"] for r in rows})
    loads = [r["load_avg"] for r in rows]
    cpus = rows[0]["host_cpus"]
    # a run's own driver and trial workers keep up to `concurrency` + 1 processes busy
    busy = max(loads) > max(r["concurrency"] for r in rows) + 1
    lines = [
        "# Scale of the orchestration",
        "",
        f"Runs of {', '.join(dates)} on a {cpus}-CPU machine; 1-minute load average at the end"
        f" of each run {min(loads):.1f}-{max(loads):.1f}"
        + (
            " (more than the run's own processes: other work shared the machine, and wall-clock"
            " figures suffer first)."
            if busy
            else " (the run's own processes: the machine was otherwise idle)."
        ),
        "",
        "Driver CPU per trial in ms (process CPU time of the driver less the objective's own),"
        " split by category; growth = per-trial CPU over the last 10% of trials / over trials"
        " 10-20%; slope = log-log slope of cumulative driver CPU vs trials (1 = constant per"
        " trial). Store: the SQLite file and its write-ahead log at the end; KB/trial: the"
        " database once the log is folded in, per trial.",
        "",
        "| method | trials | wall s | trials/min | driver CPU ms/trial | sampler | pruner | store |"
        " optuna | fits | progress | rest | growth | slope | store MB (+WAL) | KB/trial |"
        " Ray procs CPU ms/trial |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['finished']} | {r['wall_s']:.0f} | {r['trials_per_min']:.0f} |"
            f" {r['driver_cpu_ms_per_trial']:.1f} | {r['sampler_ms']:.1f} | {r['pruner_ms']:.1f} |"
            f" {r['store_ms']:.1f} | {r['optuna_ms']:.1f} | {r['fits_ms']:.1f} |"
            f" {r['progress_ms']:.1f} | {r['rest_ms']:.1f} | {r['growth_late_over_early']:.2f} |"
            f" {r['loglog_slope']:.2f} | {r['store_mb']:.1f} (+{r['wal_mb']:.1f}) |"
            f" {r['data_kb_per_trial']:.1f} |"
            f" {r['ray_processes_cpu_ms_per_trial']:.0f} |"
        )
    ratios = ratio_rows(rows)
    if ratios:
        lines += [
            "",
            "Ratios ours / peer (trials/min: above 1 = ours faster; driver CPU: below 1 = ours"
            " cheaper):",
            "",
            "| trials | peer | trials/min ratio | driver CPU/trial ratio |",
            "|---:|---|---:|---:|",
        ]
        lines += [
            f"| {r['trials']} | {r['peer']} | {r['trials_per_min']:.2f} | {r['driver_cpu']:.2f} |"
            for r in ratios
        ]
    return "\n".join(lines) + "\n"


def ratio_rows(rows: list[dict]) -> list[dict]:
    by = {(r["method"], r["trials"]): r for r in rows}
    out = []
    for (method, n), ours in sorted(by.items(), key=lambda kv: kv[0][1]):
        if method != "ours":
            continue
        for peer in PEERS:
            other = by.get((peer, n))
            if other is None:
                continue
            out.append(
                {
                    "trials": n,
                    "peer": peer,
                    "trials_per_min": ours["trials_per_min"] / other["trials_per_min"],
                    "driver_cpu": ours["driver_cpu_ms_per_trial"]
                    / other["driver_cpu_ms_per_trial"],
                }
            )
    return out


def per_trial_along(record: dict, spent: Callable[[list[float]], float]) -> tuple[list, list]:
    """(trials finished, CPU ms per trial) over 20 windows of a run; ``spent(row)`` reads the
    cumulative seconds of interest from a series row."""
    series = record["series"]
    step = max(1, len(series) // 20)
    xs, ys = [], []
    for k in range(step, len(series) + 1, step):
        before = spent(series[k - step - 1]) if k > step else 0.0
        xs.append(k)
        ys.append(1e3 * (spent(series[k - 1]) - before) / step)
    return xs, ys


def plot(records: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(17, 4.5))
    largest = max(r["trials"] for r in records)
    at_largest = {
        r["method"]: r for r in records if r["trials"] == largest and len(r["series"]) >= 20
    }
    trial = CATEGORIES.index("trial") + 2
    for method, record in at_largest.items():
        left.plot(*per_trial_along(record, lambda row: row[1] - row[trial]), ".-", label=method)
    left.set_title(f"cost per trial along a {largest}-trial run")
    if "ours" in at_largest:
        record = at_largest["ours"]
        for i, category in enumerate(CATEGORIES):
            if category not in ("trial", "progress"):
                xs, ys = per_trial_along(record, lambda row, at=2 + i: row[at])
                middle.plot(xs, ys, ".-", label=category)

        def rest(row: list[float]) -> float:
            return row[1] - sum(row[2:])

        middle.plot(*per_trial_along(record, rest), ".-", label="rest (Ray Tune, ...)")
        middle.set_title(f"ours by category ({largest} trials)")
    for axis in (left, middle):
        axis.set(xlabel="trials finished", ylabel="driver CPU per trial (ms)")
        axis.set_ylim(bottom=0)
        axis.legend()
    for method in METHODS:
        points = sorted(
            (r["trials"], summary_row(r)["driver_cpu_ms_per_trial"])
            for r in records
            if r["method"] == method
        )
        if points:
            right.plot(*zip(*points, strict=True), marker="o", label=method)
    right.set(
        xscale="log",
        yscale="log",
        xlabel="trials in the run",
        ylabel="driver CPU per trial (ms)",
        title="mean cost per trial against run size",
    )
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def write_results(work: Path, sizes: list[int], methods: list[str], out: Path) -> list[dict]:
    from results_io import write_csv

    records = []
    for n in sizes:
        for method in methods:
            path = work / f"{method}-{n}.json"
            if path.exists():
                records.append(json.loads(path.read_text()))
    if not records:
        return []
    rows = [summary_row(r) for r in records]
    write_csv(out.with_suffix(".csv"), rows)
    out.with_suffix(".md").write_text(markdown(rows))
    plot(records, out.with_suffix(".png"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, nargs="+", default=[100, 500, 2000])
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated")
    parser.add_argument("--concurrency", type=int, default=2, help="trials running at once")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "orchestration_scale")
    parser.add_argument("--out", type=Path, default=RESULTS / "orchestration_scale")
    parser.add_argument("--rerun", action="store_true", help="run again what --work holds")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile each run's driver into --work/*.prof"
    )
    parser.add_argument("--one", nargs=2, metavar=("METHOD", "TRIALS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    if args.one:
        run_one(args.one[0], int(args.one[1]), args.concurrency, args.work, args.profile)
        return
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        parser.error(f"--methods: unknown {unknown}; known: {', '.join(METHODS)}")
    for n in args.trials:
        for method in methods:
            name = f"{method}-{n}"
            if (args.work / f"{name}.json").exists() and not args.rerun:
                print(f"{name}: done before, kept")
                continue
            print(f"{name}: running ...", flush=True)
            with (args.work / f"{name}.log").open("w") as log:
                command = [sys.executable, __file__, "--one", method, str(n)]
                command += ["--concurrency", str(args.concurrency), "--work", str(args.work)]
                command += ["--profile"] if args.profile else []
                status = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT).returncode
            if status != 0:
                print(f"{name}: failed (exit {status}), see {args.work / name}.log")
                continue
            row = summary_row(json.loads((args.work / f"{name}.json").read_text()))
            print(
                f"{name}: {row['wall_s']:.0f} s, {row['trials_per_min']:.0f} trials/min, "
                f"driver CPU {row['driver_cpu_ms_per_trial']:.1f} ms/trial, growth "
                f"{row['growth_late_over_early']:.2f}, slope {row['loglog_slope']:.2f}",
                flush=True,
            )
    rows = write_results(args.work, args.trials, methods, args.out)
    if rows:
        print(markdown(rows))
        print(f"wrote {args.out.with_suffix('.csv')}, .md and .png")


if __name__ == "__main__":
    main()
