"""Other tools' searches replayed against a benchmark table: the peers a search is compared with.

:func:`run_syne_tune` replays Syne Tune (https://github.com/syne-tune/syne-tune, 0.16) with its
own tabular machinery: the table becomes a ``BlackboxTabular`` (one categorical hyperparameter
per stage setting that varies across the table; objectives accuracy, throughput and elapsed
time per epoch), served by ``UserBlackboxBackend`` (Syne Tune's simulator backend) and driven
by ``Tuner`` with ``SimulatorCallback``, so the scheduler (``MOASHA`` or ``RandomSearch``) sees
the results in simulated time, exactly as Syne Tune's own NAS-Bench-201 replays do.

Four settings make the replay exact, repeatable and fair rather than Syne Tune's defaults:

* the simulated clock does not advance by the real time spent in the tuner loop and the
  scheduler (Syne Tune adds it, so two runs of one seed differ), and it jumps to the next
  simulated event when all workers are busy, instead of Syne Tune's fixed 5 s ticks (which
  delay every decision to the next tick);
* the simulator's start, report and stop latencies (0.05 s each by default) are zero, so a
  trial costs what the table says: the throughput measurement plus its epochs;
* Syne Tune 0.16's random search and MOASHA draw configurations from NumPy's global
  generator whatever ``random_seed`` they are given, so it is seeded for the run (and
  restored afterwards);
* MOASHA gets a non-dominated priority that ranks each trial (Syne Tune's own reads an order
  as ranks, see :func:`run_syne_tune`); ``upstream_priority=True`` keeps the shipped one.

Random search draws with replacement (0.16 has no duplicate filter) and is given one metric
(its searcher asserts a single one; it reads none). A run ends at the first result past the
budget; trials still running then are stopped, and results past the budget are not returned.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import tempfile
import warnings
from itertools import product
from typing import Any

import numpy as np

from nas.bench.table import BenchError, BenchTable, TableArch

METHODS = ("st_moasha", "st_random")
FIDELITY = "epoch"
OBJECTIVES = ("accuracy", "throughput", "elapsed_s")  # elapsed_s: cumulative, per epoch


def run_syne_tune(
    table: BenchTable,
    method: str,
    seed: int,
    workers: int,
    budget_s: float,
    table_seed: int = 0,
    *,
    grace_period: int = 4,
    reduction_factor: float = 2,
    upstream_priority: bool = False,
) -> list[tuple[float, str]]:
    """Replay one Syne Tune search against ``table`` for ``budget_s`` simulated seconds.

    ``method``: ``st_moasha`` (MOASHA, accuracy and throughput maximised, resource = epoch,
    rungs from ``grace_period`` by ``reduction_factor`` up to the table's epochs) or
    ``st_random`` (random search, every trial trained to the end). The answers are those of
    ``table_seed``'s curves. Returns ``(simulated time it finished, arch hash)`` of every trial
    that reached the table's last epoch within the budget, by time; random search draws with
    replacement, so a hash can occur more than once.

    MOASHA ranks the trials at a rung by Syne Tune's non-dominated sort, but in 0.16 (and on
    its main branch) the sort returns an *order* (indices, best first) that MOASHA reads as each
    trial's *priority*: whether a trial is stopped then depends on where the worst recorded
    trial sits in the record, not on the trial's own result (the best result so far can be
    stopped). By default the same sort's fronts and epsilon-net are turned into per-trial ranks
    (:func:`_ranked_non_dominated_priority`); ``upstream_priority=True`` keeps the shipped one.
    """
    if method not in METHODS:
        raise BenchError(f"unknown Syne Tune method {method!r}; expected one of {METHODS}")
    if workers < 1:
        raise BenchError(f"workers must be at least 1, got {workers}")
    space = _ConfigSpace.of_table(table, table_seed)

    from syne_tune import StoppingCriterion, Tuner
    from syne_tune.backend.simulator_backend.simulator_backend import SimulatorConfig
    from syne_tune.blackbox_repository import UserBlackboxBackend
    from syne_tune.constants import ST_TRIAL_ID, ST_TUNER_TIME

    blackbox = space.blackbox(table)
    config_space = blackbox.configuration_space
    metrics = list(OBJECTIVES[:2])
    if method == "st_moasha":
        from syne_tune.optimizer.schedulers.multiobjective.moasha import MOASHA

        scheduler = MOASHA(
            config_space=config_space,
            metrics=metrics,
            do_minimize=False,
            time_attr=FIDELITY,
            max_t=table.epochs,
            grace_period=grace_period,
            reduction_factor=reduction_factor,
            multiobjective_priority=None if upstream_priority else _ranked_non_dominated_priority(),
            random_seed=seed,
        )
    else:
        from syne_tune.optimizer.baselines import RandomSearch

        # Syne Tune 0.16's RandomSearch asserts a single metric (its searcher is single-
        # objective), and random search never reads the metric: accuracy stands in for both.
        scheduler = RandomSearch(
            config_space=config_space, metrics=metrics[:1], do_minimize=False, random_seed=seed
        )
    no_delay = SimulatorConfig(
        delay_on_trial_result=0.0,
        delay_complete_after_final_report=0.0,
        delay_complete_after_stop=0.0,
        delay_start=0.0,
        delay_stop=0.0,
    )
    callback = _event_clock_callback()
    with _quiet_run(seed) as results_dir:
        backend = UserBlackboxBackend(
            blackbox=blackbox,
            elapsed_time_attr=OBJECTIVES[2],
            seed=0,  # the blackbox holds table_seed's curves only
            simulator_config=no_delay,
        )
        backend._time_keeper = _exact_time_keeper()  # see the module docstring
        tuner = Tuner(
            trial_backend=backend,
            scheduler=scheduler,
            stop_criterion=StoppingCriterion(max_wallclock_time=budget_s),
            n_workers=workers,
            sleep_time=0,
            callbacks=[callback],
            save_tuner=False,
            tuner_name="nas-bench-peer",
            trial_backend_path=results_dir,
            output_logger=_silent_logger(),
        )
        tuner.run()
    finished = []
    for result in callback.results:
        if int(result[FIDELITY]) < table.epochs or result[ST_TUNER_TIME] > budget_s:
            continue
        config = {k: result[f"config_{k}"] for k in space.keys}
        finished.append((float(result[ST_TUNER_TIME]), space.arch_of(config), result[ST_TRIAL_ID]))
    finished.sort()
    return [(t, h) for t, h, _ in finished]


class _ConfigSpace:
    """The table's architectures as categorical hyperparameters: one key per stage setting
    (``s1.depth``, ``s1.dim``, ``s1.mixer``, ``s1.mixer.<knob>``, ...) that varies across the
    offered architectures, each value written as a string (``json`` for non-strings)."""

    def __init__(
        self,
        keys: list[str],
        choices: dict[str, list[str]],
        archs: dict[tuple, str],
        table_seed: int,
    ):
        self.keys = keys
        self.choices = choices
        self._archs = archs  # configuration (values in ``keys`` order) -> arch hash
        self.table_seed = table_seed

    @classmethod
    def of_table(cls, table: BenchTable, table_seed: int) -> _ConfigSpace:
        offered = [a for a in table.completed() if table_seed in a.curves]
        if not offered:
            raise BenchError(
                f"no completed architecture of the table has seed {table_seed} "
                f"(its seeds: {table.seeds})"
            )
        flat = {a.arch_hash: _flatten_stages(a.spec) for a in offered}
        all_keys = sorted({k for f in flat.values() for k in f}, key=_key_order)
        raw: dict[str, dict[str, Any]] = {}
        for key in all_keys:
            values = {_encode(f.get(key)): f.get(key) for f in flat.values()}
            if len(values) > 1:
                raw[key] = values
        if not raw:
            raise BenchError(
                f"the table offers {len(offered)} architecture(s) that do not differ: "
                "nothing to search"
            )
        if len(raw) == 1:
            # BlackboxTabular looks configurations up in a pandas MultiIndex, which one column
            # does not make: a constant key (one choice) goes along
            constant = next((k for k in all_keys if k not in raw), None)
            constant = constant or "s0.constant"  # absent from every spec: always null
            value = next(iter(flat.values())).get(constant)
            raw[constant] = {_encode(value): value}
        keys = sorted(raw, key=_key_order)
        choices = {k: [e for e, _ in sorted(raw[k].items(), key=_value_order)] for k in keys}
        archs: dict[tuple, str] = {}
        for arch_hash, f in sorted(flat.items()):
            config = tuple(_encode(f.get(k)) for k in keys)
            if config in archs:
                raise BenchError(
                    f"architectures {archs[config]} and {arch_hash} have the same stages "
                    f"({dict(zip(keys, config, strict=True))}): a configuration space cannot "
                    "tell them apart"
                )
            archs[config] = arch_hash
        combinations = int(np.prod([len(c) for c in choices.values()]))
        missing = combinations - len(archs)
        if missing:
            example = next(c for c in product(*choices.values()) if c not in archs)
            sizes = " x ".join(f"{len(choices[k])} {k}" for k in keys)
            raise BenchError(
                f"the table is not a full product of its choices ({sizes} = {combinations} "
                f"combinations): {missing} are missing from its {len(archs)} completed "
                f"architectures with seed {table_seed}, e.g. "
                f"{dict(zip(keys, example, strict=True))}; Syne Tune's tabular blackbox can "
                "only answer a full product"
            )
        return cls(keys, choices, archs, table_seed)

    def arch_of(self, config: dict[str, Any]) -> str:
        return self._archs[tuple(str(config[k]) for k in self.keys)]

    def blackbox(self, table: BenchTable):
        import pandas as pd
        import syne_tune.config_space as sp
        from syne_tune.blackbox_repository.blackbox_tabular import BlackboxTabular

        configs = sorted(self._archs)
        evaluations = np.stack(
            [_answers(table.archs[self._archs[c]], table, self.table_seed) for c in configs]
        )
        with warnings.catch_warnings():
            # pandas 3 deprecates the set_index(inplace=True) that BlackboxTabular calls
            warnings.filterwarnings("ignore", message="The inplace keyword", module="syne_tune")
            return BlackboxTabular(
                hyperparameters=pd.DataFrame(configs, columns=self.keys),
                configuration_space={k: sp.choice(self.choices[k]) for k in self.keys},
                fidelity_space={FIDELITY: sp.randint(1, table.epochs)},
                objectives_evaluations=evaluations[:, None, :, :],  # (archs, 1 seed, epochs, 3)
                fidelity_values=np.arange(1, table.epochs + 1),
                objectives_names=list(OBJECTIVES),
            )


def _answers(arch: TableArch, table: BenchTable, table_seed: int) -> np.ndarray:
    """(epochs, [accuracy, throughput, elapsed_s]) of one architecture: the seed's curve, the
    fixed throughput, and the time since it started (throughput measurement, then epochs)."""
    curve = arch.curves[table_seed]
    if len(curve.val_top1) != table.epochs or len(curve.epoch_s) != table.epochs:
        raise BenchError(
            f"architecture {arch.arch_hash}: seed {curve.seed} has {len(curve.val_top1)} "
            f"epochs, the table {table.epochs}"
        )
    if arch.throughput is None:
        raise BenchError(f"architecture {arch.arch_hash} is completed but has no throughput")
    elapsed = arch.measure_s + np.cumsum(np.asarray(curve.epoch_s, dtype=float))
    return np.stack(
        [
            np.asarray(curve.val_top1, dtype=float),
            np.full(table.epochs, float(arch.throughput)),
            elapsed,
        ],
        axis=1,
    )


def _flatten_stages(spec: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i, stage in enumerate(spec.get("stages", []), start=1):
        for key, value in stage.items():
            if key == "mixer" and isinstance(value, dict):
                out[f"s{i}.mixer"] = value.get("name")
                for knob, knob_value in value.items():
                    if knob != "name":
                        out[f"s{i}.mixer.{knob}"] = knob_value
            else:
                out[f"s{i}.{key}"] = value
    return out


_STAGE_KEY_ORDER = {"depth": 0, "dim": 1, "mixer": 2}


def _key_order(key: str) -> tuple:
    stage, _, rest = key.partition(".")
    head = rest.split(".")[0]
    return (int(stage[1:]), _STAGE_KEY_ORDER.get(head, 3), rest)


def _encode(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _value_order(item: tuple[str, Any]) -> tuple:
    encoded, value = item
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, float(value), encoded)
    return (1, 0.0, encoded)


def _ranked_non_dominated_priority():
    """Syne Tune's non-dominated priority as ranks: each point's position when the points are
    taken front by front (Pareto fronts of minimised objectives), within a front in the order of
    Syne Tune's epsilon-net seeded at the best first objective (accuracy)."""
    from syne_tune.optimizer.schedulers.multiobjective.multiobjective_priority import (
        MOPriority,
    )
    from syne_tune.optimizer.schedulers.multiobjective.non_dominated_priority import (
        compute_epsilon_net,
        pareto_efficient,
    )

    class RankedNonDominatedPriority(MOPriority):
        def priority_unsafe(self, objectives: np.ndarray) -> np.ndarray:
            ranks = np.empty(len(objectives), dtype=int)
            remaining = np.arange(len(objectives))
            done = 0
            while remaining.size:
                mask = pareto_efficient(objectives[remaining])
                front = remaining[mask]
                # compute_epsilon_net returns each point's rank within the front
                ranks[front] = done + compute_epsilon_net(objectives[front], dim=0)
                done += len(front)
                remaining = remaining[~mask]
            return ranks

    return RankedNonDominatedPriority()


def _exact_time_keeper():
    from syne_tune.backend.simulator_backend.time_keeper import SimulatedTimeKeeper

    class ExactTimeKeeper(SimulatedTimeKeeper):
        """Simulated time only: the real time spent outside the backend is not added."""

        def real_time_since_last_recent_exit(self) -> float:
            self._assert_has_started()
            return 0.0

    return ExactTimeKeeper()


def _event_clock_callback():
    from syne_tune.backend.simulator_backend.simulator_callback import SimulatorCallback

    class EventClockCallback(SimulatorCallback):
        """When the tuner waits (all workers busy), jump to the next simulated event rather
        than by a fixed tick."""

        def on_tuning_start(self, tuner) -> None:
            super().on_tuning_start(tuner)
            self._state = tuner.trial_backend._simulator_state

        def on_tuning_sleep(self, sleep_time: float) -> None:
            heap = self._state.event_heap
            if heap:
                self._time_keeper.advance_to(heap[0][0])
            else:
                super().on_tuning_sleep(sleep_time)

    return EventClockCallback()


def _silent_logger():
    from syne_tune.tuner_logger import TunerLogger

    def silent(*args, **kwargs) -> None:
        return None

    names = {n: silent for n in dir(TunerLogger) if n.startswith("print_")}
    return type("SilentTunerLogger", (TunerLogger,), names)(use_colors=False, use_emojis=False)


@contextlib.contextmanager
def _quiet_run(seed: int):
    """A temporary results folder (Syne Tune writes its metadata and results there), its
    loggers at ERROR, stdout swallowed (it prints a summary), NumPy's global generator seeded;
    all restored afterwards."""
    from syne_tune.constants import SYNE_TUNE_ENV_FOLDER

    st_logger = logging.getLogger("syne_tune")
    level = st_logger.level
    old_folder = os.environ.get(SYNE_TUNE_ENV_FOLDER)
    state = np.random.get_state()
    with tempfile.TemporaryDirectory(prefix="nas-syne-tune-") as tmp:
        os.environ[SYNE_TUNE_ENV_FOLDER] = tmp
        st_logger.setLevel(logging.ERROR)
        np.random.seed(seed)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                yield tmp
        finally:
            np.random.set_state(state)
            st_logger.setLevel(level)
            if old_folder is None:
                os.environ.pop(SYNE_TUNE_ENV_FOLDER, None)
            else:
                os.environ[SYNE_TUNE_ENV_FOLDER] = old_folder
