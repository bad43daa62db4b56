"""Syne Tune replayed against a small synthetic table (real Syne Tune, its simulator)."""

from __future__ import annotations

import itertools

import pytest

pytest.importorskip("syne_tune")

from nas.arch import ArchSpec  # noqa: E402
from nas.bench.peers import run_syne_tune  # noqa: E402
from nas.bench.table import BenchError, BenchTable, Curve, TableArch, read_table  # noqa: E402

EPOCHS = 4
MIXERS = (("pooling", "sepconv"), ("pooling", "sepconv", "gnconv"), ("pooling", "parc"))


def _spec(mixers: tuple[str, ...]) -> dict:
    return {
        "name": "bench",
        "image_size": 32,
        "stages": [
            {"depth": 1, "dim": dim, "mixer": {"name": m}, "mlp_ratio": 4.0}
            for dim, m in zip((16, 32, 64), mixers, strict=True)
        ],
    }


FAILED = ("attention", "pooling", "pooling")


def _hash(mixers: tuple[str, ...]) -> str:
    """The content hash a table is keyed by (reading one re-keys it by today's rule)."""
    return ArchSpec.from_dict(_spec(mixers)).content_hash()


def _table(drop: int = 0, seeds: tuple[int, ...] = (0,)) -> BenchTable:
    """12 architectures (2 x 3 x 2 stage mixers) plus one failed one with a mixer of its own.
    Accuracy and throughput both grow with the architecture's index, so at every epoch each
    architecture dominates those before it (a chain: MOASHA's ranks are a total order)."""
    archs = {}
    combos = list(itertools.product(*MIXERS))[drop:]
    for i, mixers in enumerate(combos):
        h = _hash(mixers)
        curves = {
            s: Curve(
                seed=s,
                val_top1=tuple(
                    (0.3 + 0.05 * i + 0.01 * s) * (e + 1) / EPOCHS for e in range(EPOCHS)
                ),
                val_loss=tuple(2.0 - 0.3 * e for e in range(EPOCHS)),
                epoch_s=tuple(1.0 + 0.25 * ((i * 7 + e) % 5) for e in range(EPOCHS)),
                val_size=100,
            )
            for s in seeds
        }
        archs[h] = TableArch(
            arch_hash=h,
            spec=_spec(mixers),
            params=1000 + i,
            macs=None,
            throughput=100.0 + 10 * i,
            throughput_q25=None,
            throughput_q75=None,
            measure_s=0.5 + 0.1 * (i % 3),
            status="completed",
            curves=curves,
        )
    archs[_hash(FAILED)] = TableArch(
        arch_hash=_hash(FAILED),
        spec=_spec(FAILED),
        params=None,
        macs=None,
        throughput=None,
        throughput_q25=None,
        throughput_q75=None,
        measure_s=0.0,
        status="constraint",
        reason="too many parameters",
    )
    return BenchTable(config={"proxy": {"epochs": EPOCHS}}, archs=archs)


def _full_time(arch: TableArch, seed: int = 0) -> float:
    return arch.measure_s + sum(arch.curves[seed].epoch_s)


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> BenchTable:
    path = tmp_path_factory.mktemp("bench") / "synthetic.parquet"
    _table().write(path)
    return read_table(path)


@pytest.fixture(scope="module")
def random_run(table) -> list[tuple[float, str]]:
    return run_syne_tune(table, "st_random", seed=0, workers=2, budget_s=900.0)


def test_random_search_with_a_large_budget_finishes_every_architecture(table, random_run):
    offered = {h for h, a in table.archs.items() if a.completed}
    assert len(offered) == 12 and _hash(FAILED) in table.archs
    assert {h for _, h in random_run} == offered  # the failed one is never offered


def test_results_are_sorted_and_within_the_budget(table, random_run):
    times = [t for t, _ in random_run]
    assert times == sorted(times)
    assert 0 < times[0] and times[-1] <= 900.0
    # two workers, ~5.5-8.5 s a training: the budget holds far more trainings than architectures
    assert len(random_run) > 5 * 12


def test_same_seed_same_replay_and_another_seed_another(table, random_run):
    assert run_syne_tune(table, "st_random", seed=0, workers=2, budget_s=900.0) == random_run
    assert run_syne_tune(table, "st_random", seed=1, workers=2, budget_s=900.0) != random_run
    moasha = run_syne_tune(table, "st_moasha", seed=3, workers=2, budget_s=300.0)
    assert run_syne_tune(table, "st_moasha", seed=3, workers=2, budget_s=300.0) == moasha


def test_simulated_time_is_the_table_s_time(table):
    # one worker, no stopping, no idle time: each training ends when the previous one did plus
    # its own cost (throughput measurement + every epoch), the first one at its own cost
    run = run_syne_tune(table, "st_random", seed=2, workers=1, budget_s=200.0)
    previous = 0.0
    for t, h in run:
        assert t == pytest.approx(previous + _full_time(table.archs[h]), abs=1e-6)
        previous = t
    # the next training would have ended past the budget
    assert 200.0 - previous < max(_full_time(a) for a in table.completed())


def test_moasha_stops_trials_at_its_rung(table):
    # one worker: a gap between two finished trainings longer than the second one's cost is
    # time spent on trials MOASHA stopped at epoch 2. A gap is never shorter than the cost.
    # With the chain table, a trial that reaches the rung behind more than half of those
    # recorded there is stopped: over ~40 trials that happens (it is fixed for the seed).
    run = run_syne_tune(
        table, "st_moasha", seed=0, workers=1, budget_s=200.0, grace_period=2, reduction_factor=2
    )
    gaps = []
    previous = 0.0
    for t, h in run:
        gaps.append((t - previous) - _full_time(table.archs[h]))
        previous = t
    assert min(gaps) > -1e-6
    assert max(gaps) > 1.0  # at least one stopped trial (>= 0.5 s measure + 2 epochs of >= 1 s)
    random = run_syne_tune(table, "st_random", seed=0, workers=1, budget_s=200.0)
    assert len(run) < len(random)


def test_moasha_without_a_rung_below_the_last_epoch_stops_nothing(table):
    # grace_period == epochs: the only rung is the last epoch, so every trial trains to the end
    run = run_syne_tune(table, "st_moasha", seed=0, workers=1, budget_s=100.0, grace_period=4)
    previous = 0.0
    for t, h in run:
        assert t == pytest.approx(previous + _full_time(table.archs[h]), abs=1e-6)
        previous = t


def test_table_seed_selects_the_answers():
    two = _table(seeds=(0, 1))
    assert run_syne_tune(two, "st_random", seed=0, workers=2, budget_s=100.0, table_seed=1)
    with pytest.raises(BenchError, match="seed 5"):
        run_syne_tune(two, "st_random", seed=0, workers=2, budget_s=100.0, table_seed=5)


def test_an_incomplete_product_is_refused():
    with pytest.raises(BenchError, match=r"= 12 combinations\): 3 are missing"):
        run_syne_tune(_table(drop=3), "st_moasha", seed=0, workers=2, budget_s=100.0)


def test_unknown_method_is_refused(table):
    with pytest.raises(BenchError, match="st_bohb"):
        run_syne_tune(table, "st_bohb", seed=0, workers=2, budget_s=100.0)


def test_moasha_ranks_trials_by_their_own_result():
    # Syne Tune 0.16's NonDominatedPriority returns an order (indices, best first) that MOASHA's
    # rung reads as per-trial priorities; nas.bench.peers turns it into ranks. Minimised
    # objectives; the fifth trial is the best so far and must continue, the fourth (worst) stop.
    from syne_tune.optimizer.schedulers.asha import Bracket
    from syne_tune.optimizer.schedulers.multiobjective.multiobjective_priority import (
        NonDominatedPriority,
    )

    from nas.bench.peers import _ranked_non_dominated_priority

    results = [(-5, -5), (-4, -4), (-3, -3), (5, 5), (-9, -9), (-8, -8)]

    def decisions(priority) -> list[str]:
        rung = Bracket(2, 4, 2, 0, priority)
        return [rung.on_result(i, 2, {"a": a, "b": b}) for i, (a, b) in enumerate(results)]

    # 3 of 3 -> stop (worse than half), 4 of 4 -> stop, best of 5 -> go, 2nd of 6 -> go
    assert decisions(_ranked_non_dominated_priority()) == [
        "CONTINUE",
        "CONTINUE",
        "STOP",
        "STOP",
        "CONTINUE",
        "CONTINUE",
    ]
    # as shipped: the best result so far is stopped (if this fails, Syne Tune fixed it)
    assert decisions(NonDominatedPriority())[4] == "STOP"


def test_moasha_as_shipped_is_still_available(table):
    run = run_syne_tune(
        table,
        "st_moasha",
        seed=0,
        workers=2,
        budget_s=100.0,
        grace_period=2,
        upstream_priority=True,
    )
    assert run and [t for t, _ in run] == sorted(t for t, _ in run)


def test_a_single_varying_stage_setting_is_a_space():
    # only the second stage's mixer varies: three architectures
    table = _table()
    archs = {
        h: a
        for h, a in table.archs.items()
        if a.completed
        and a.spec["stages"][0]["mixer"]["name"] == "pooling"
        and a.spec["stages"][2]["mixer"]["name"] == "pooling"
    }
    assert len(archs) == 3
    run = run_syne_tune(
        BenchTable(config=table.config, archs=archs), "st_random", 0, 2, budget_s=100.0
    )
    assert {h for _, h in run} == set(archs)
