"""The tabular benchmark: a real `nas bench build` of a 32-architecture space, then replays.

Oracles: a 2-worker schedule computed by hand from the replay's own dispatch order, the oracle
method's hypervolume, a brute-force grid hypervolume, scipy's trimmed mean, and a kill -9
in the middle of a build.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from nas.bench.metrics import HypervolumeScale, bootstrap_iqm, iqm, table_front
from nas.bench.simulate import METHODS, check_replayable, parse_method, simulate
from nas.bench.table import BenchError, read_table
from nas.cli import main
from nas.search.config import load_config
from nas.search.space import enumerate_architectures

SPACE = """\
name: benchtiny
search:
  trials: 8
  max_concurrent: 2
  seed: 0
  sampler: {kind: tpe, n_startup_trials: 4}
  pruner: {kind: pareto_sh, min_resource: 1, reduction_factor: 2}
throughput: {device: cpu, batch: 8, precision: fp32, threads: 1, repeats: 3}
proxy:
  epochs: 2
  lr: 0.003
  warmup_epochs: 0.5
  device: cpu
  threads: 1
  data: {name: default, resolution: 16, num_train: 512, num_val: 256, batch_size: 64}
resources: {cpu: 1, gpu: 0}
space:
  image_size: 16
  head: {kind: linear}
  stages:
    - {depth: 1, dim: 8, mixer: {choices: [sepconv, pooling, global_filter]}}
    - {depth: 1, dim: {choices: [16, 32]}, mixer: {choices: [sepconv, attention, parc]}}
  mixers:
    sepconv: {kernel_size: {choices: [3, 5]}}
"""


@pytest.fixture(scope="module")
def space_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("benchspace") / "benchtiny.yaml"
    path.write_text(SPACE)
    return path


@pytest.fixture(scope="module")
def built(space_file: Path, tmp_path_factory):
    """The table of the whole space (32 architectures), 2 seeds on 4 of them."""
    run = tmp_path_factory.mktemp("benchbuild")
    out = run / "benchtiny.parquet"
    args = ["bench", "build", str(space_file), "--archs", "100", "--seeds", "2"]
    code = main([*args, "--seeds-subset", "4", "--out", str(out), f"run_dir={run}"])
    assert code == 0
    return out, run


def test_build_tabulates_every_architecture_of_the_space(built, space_file: Path) -> None:
    out, _ = built
    table = read_table(out)
    specs = enumerate_architectures(load_config(space_file).space)
    assert len(specs) == 32
    assert set(table.archs) == {s.content_hash() for s in specs}
    assert table.meta["exhaustive"] is True
    completed = table.completed()
    assert len(completed) == 32
    assert sorted(table.seeds) == [0, 1]
    assert sum(len(a.curves) == 2 for a in completed) == 4
    for arch in completed:
        assert arch.throughput > 0 and arch.params > 0 and arch.macs > 0
        assert arch.throughput_q25 <= arch.throughput <= arch.throughput_q75
        assert arch.measure_s > 0
        for curve in arch.curves.values():
            assert len(curve.val_top1) == 2 and curve.val_size == 256
            assert all(0.0 <= a <= 1.0 for a in curve.val_top1)
            assert all(s > 0 for s in curve.epoch_s)
    # the two seeds are two trainings, not a copy
    twice = [a for a in completed if len(a.curves) == 2]
    assert any(a.curves[0].val_top1 != a.curves[1].val_top1 for a in twice)


def test_a_finished_build_is_reused_not_retrained(built, space_file: Path) -> None:
    out, run = built
    again = out.with_name("again.parquet")
    args = ["bench", "build", str(space_file), "--archs", "100", "--seeds", "2"]
    assert main([*args, "--seeds-subset", "4", "--out", str(again), f"run_dir={run}"]) == 0
    first, second = read_table(out), read_table(again)
    assert first.archs == second.archs
    assert second.meta["build_seconds"] == 0.0


def _completed_rows(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as con:
        try:
            return con.execute(
                "SELECT COUNT(*) FROM nas_trials WHERE state = 'COMPLETE'"
            ).fetchone()[0]
        except sqlite3.OperationalError:
            return 0


def test_kill_9_then_the_same_build_continues(space_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "t.parquet"
    cmd = [sys.executable, "-m", "nas.cli", "bench", "build", str(space_file)]
    cmd += ["--archs", "10", "--out", str(out), f"run_dir={tmp_path}"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        cmd,
        cwd=tmp_path,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    db = tmp_path / "benchtiny" / "bench.db"
    deadline = time.monotonic() + 240
    while _completed_rows(db) < 3:
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline, "the build made no progress"
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists()
    with sqlite3.connect(db) as con:
        before = dict(
            con.execute(
                "SELECT t.arch_hash, group_concat(e.val_top1) FROM nas_trials t JOIN nas_epochs e"
                " ON e.trial_id = t.id WHERE t.state = 'COMPLETE' GROUP BY t.id"
            ).fetchall()
        )

    result = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    table = read_table(out)
    assert len(table.archs) == 10 and len(table.completed()) == 10
    for arch_hash, curve in before.items():  # trained before the kill: kept, not retrained
        recorded = [float(x) for x in curve.split(",")]
        assert list(table.archs[arch_hash].curves[0].val_top1) == pytest.approx(recorded)
    with sqlite3.connect(db) as con:
        trained = con.execute(
            "SELECT arch_hash, COUNT(*) FROM nas_trials WHERE state = 'COMPLETE' GROUP BY arch_hash"
        ).fetchall()
    assert all(n == 1 for _, n in trained)


def test_replay_is_deterministic_for_a_seed(built) -> None:
    table = read_table(built[0])
    for name in ("tpe+pareto_sh", "nsga2"):
        a = simulate(table, METHODS[name], seed=3, workers=2, budget_s=1e9)
        b = simulate(table, METHODS[name], seed=3, workers=2, budget_s=1e9)
        assert a.completions == b.completions and a.dispatched == b.dispatched
    c = simulate(table, METHODS["random"], seed=4, workers=2, budget_s=1e9)
    assert (
        c.dispatched
        != simulate(table, METHODS["random"], seed=5, workers=2, budget_s=1e9).dispatched
    )


def test_two_worker_schedule_matches_a_hand_computed_one(built) -> None:
    """Random search, no pruning: each architecture goes to the worker that frees first and
    costs its measurement plus its epochs; the replay must finish them exactly then."""
    table = read_table(built[0])
    budget = 0.6 * sum(a.measure_s + sum(a.curves[0].epoch_s) for a in table.completed()) / 2
    replay = simulate(table, METHODS["random"], seed=1, workers=2, budget_s=budget)
    free = [0.0, 0.0]
    expected = []
    for started, arch_hash in replay.dispatched:
        worker = int(np.argmin(free))
        assert started == pytest.approx(free[worker])
        arch = table.archs[arch_hash]
        free[worker] = started + arch.measure_s + sum(arch.curves[0].epoch_s)
        if free[worker] <= budget:
            expected.append((free[worker], arch_hash))
    expected.sort()
    assert [h for _, h in replay.completions] == [h for _, h in expected]
    assert [t for t, _ in replay.completions] == pytest.approx([t for t, _ in expected])
    assert all(t <= budget for t, _ in replay.completions)
    assert len(replay.completions) < len(table.archs)  # the budget cut the replay short


def test_pruned_replay_stops_trials_at_the_rung(built) -> None:
    table = read_table(built[0])
    replay = simulate(table, METHODS["random+pareto_sh"], seed=0, workers=2, budget_s=1e9)
    assert replay.pruned > 0
    assert replay.pruned + len(replay.completions) == replay.trials
    assert replay.stop_reason is not None  # it ended by itself: space exhausted or only twins


def test_oracle_reaches_normalised_hypervolume_one(built) -> None:
    from nas.bench.simulate import hypervolume_trace

    table = read_table(built[0])
    scale = HypervolumeScale.of_table(table, 0)
    replay = simulate(table, METHODS["oracle"], seed=0, workers=2, budget_s=1e9)
    assert {h for _, h in replay.completions} == set(table_front(table, 0))
    _, hv = hypervolume_trace(replay, table, scale, 0)
    assert hv[-1] == pytest.approx(1.0)
    assert np.all(np.diff(hv) >= -1e-12)


def _grid_hypervolume(points: np.ndarray) -> float:
    """Brute force: the area of the union of the boxes [0, p] on the grid of all coordinates."""
    xs, ys = np.unique(np.r_[0.0, points[:, 0]]), np.unique(np.r_[0.0, points[:, 1]])
    area = 0.0
    for i in range(len(xs) - 1):
        for j in range(len(ys) - 1):
            cx, cy = (xs[i] + xs[i + 1]) / 2, (ys[j] + ys[j + 1]) / 2
            if np.any((points[:, 0] >= cx) & (points[:, 1] >= cy)):
                area += (xs[i + 1] - xs[i]) * (ys[j + 1] - ys[j])
    return area


def test_table_front_hypervolume_equals_brute_force(built) -> None:
    table = read_table(built[0])
    scale = HypervolumeScale.of_table(table, 0)
    _, points = table.final_points(0)
    assert scale.best == pytest.approx(_grid_hypervolume(scale.normalise(points)))
    assert scale(points) == pytest.approx(1.0)
    front = [table.archs[h] for h in table_front(table, 0)]
    partial = np.array([[a.curves[0].final, a.throughput] for a in front[:-1]])
    assert scale(partial) < 1.0


def test_iqm_and_bootstrap_against_scipy() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 3))
    assert iqm(x, axis=0) == pytest.approx(stats.trim_mean(x, 0.25, axis=0))
    value, low, high = bootstrap_iqm(x)
    assert np.all(low <= value) and np.all(value <= high)
    assert np.all(high - low > 0)


def test_a_table_for_another_configuration_is_refused(built, space_file: Path) -> None:
    table = read_table(built[0])
    check_replayable(table, load_config(space_file), "t")
    with pytest.raises(BenchError, match=r"proxy\.epochs = 2, but 3 is asked for"):
        check_replayable(table, load_config(space_file, ["proxy.epochs=3"]), "t")
    with pytest.raises(BenchError, match=r"throughput\.batch = 8, but 16"):
        check_replayable(table, load_config(space_file, ["throughput.batch=16"]), "t")
    partial = read_table(built[0])
    for arch_hash in list(partial.archs)[:3]:
        del partial.archs[arch_hash]
    with pytest.raises(BenchError, match="holds 29 of its space's 32 architectures"):
        check_replayable(partial, None, "t")


def test_bad_tables_and_methods_get_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match="no such table"):
        read_table(tmp_path / "missing.parquet")
    junk = tmp_path / "junk.parquet"
    junk.write_text("not parquet")
    with pytest.raises(BenchError, match="not a Parquet table"):
        read_table(junk)
    with pytest.raises(
        BenchError, match=r"unknown method 'tpe\+pareto' \(did you mean 'tpe\+pareto_sh'"
    ):
        parse_method("tpe+pareto")
    variant = parse_method("tpe+pareto_sh:search.sampler.n_startup_trials=16")
    assert variant.overrides[-1] == "search.sampler.n_startup_trials=16"


def test_simulate_command_writes_curves_summary_and_plot(built, tmp_path: Path, capsys) -> None:
    out, _ = built
    args = ["bench", "simulate", str(out), "--methods", "random", "tpe+pareto_sh"]
    args += ["--seeds", "3", "--processes", "1", "--out", str(tmp_path), "--tag", "t"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "random" in printed and "tpe+pareto_sh" in printed
    lines = (tmp_path / "t_curves.csv").read_text().splitlines()
    assert lines[0] == "method,seed,time_s,hv"
    seeds = {line.split(",")[1] for line in lines[1:]}
    assert seeds == {"0", "1", "2", "iqm", "low", "high"}
    assert (tmp_path / "t_summary.csv").read_text().count("\n") == 3
    assert (tmp_path / "t.png").stat().st_size > 10_000


def test_prescreen_trains_the_best_scoring_of_two_proposals(built) -> None:
    """A replay with a pre-screen: every trained proposal outscored the one failed beside it,
    and the failed ones are told FAIL, marked, and not counted as trials."""
    from nas.bench.simulate import Method

    table = read_table(built[0])
    for arch in table.archs.values():
        arch.zero_cost["naswot"] = float(arch.params)  # a score with a known order
    method = Method(
        "p",
        ("search.sampler.kind=random", "search.pruner.kind=none", "prescreen.proxy=naswot"),
    )
    replay = simulate(table, method, seed=0, workers=1, budget_s=1e9)
    assert replay.prescreened > 0
    assert replay.trials == len({h for _, h in replay.completions})
    for kept, dropped in replay.prescreen_pairs:
        assert table.archs[kept].params >= table.archs[dropped].params
