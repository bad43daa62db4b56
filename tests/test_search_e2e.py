"""End-to-end searches with a real Ray runtime and real SQLite / PostgreSQL stores."""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import optuna
import pytest
import yaml
from optuna.trial import TrialState

from nas.search.config import load_config
from nas.search.pareto import non_dominated_mask
from nas.search.runner import run_search
from nas.store import SearchStore

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "search_spaces" / "tiny.yaml"
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _brute_force_front(trials):
    complete = [
        t for t in trials if t.state == TrialState.COMPLETE and "duplicate_of" not in t.user_attrs
    ]
    front = []
    for t in complete:
        dominated = any(
            all(o >= v for o, v in zip(u.values, t.values, strict=True))
            and any(o > v for o, v in zip(u.values, t.values, strict=True))
            for u in complete
        )
        if not dominated:
            front.append(t.number)
    return sorted(front)


def _check_search(outcome, cfg) -> None:
    study = optuna.load_study(study_name=outcome.study_name, storage=outcome.storage_url)
    trials = study.get_trials(deepcopy=False)
    distinct = [t for t in trials if "duplicate_of" not in t.user_attrs]
    counted = [
        t
        for t in distinct
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
        and "reference" not in t.user_attrs
    ]
    assert len(counted) == cfg.search.trials
    assert len({t.user_attrs["arch_hash"] for t in counted}) == len(counted), "trained twice"
    assert sorted(t.number for t in outcome.front) == _brute_force_front(trials)
    assert outcome.front, "a finished search has a front"
    hashes = [t.user_attrs["arch_hash"] for t in outcome.front]
    assert len(set(hashes)) == len(hashes)
    best = [t.user_attrs["arch_hash"] for t in study.best_trials]  # what optuna-dashboard shows
    assert sorted(best) == sorted(hashes)
    assert study.metric_names == cfg.objective_names

    store = SearchStore(outcome.storage_url, read_only=True)
    search = store.get_search(outcome.study_name)
    assert search.status == "finished"
    rows = {r.number: r for r in store.trials(search.id)}
    assert set(rows) == {t.number for t in trials}
    for t in trials:
        row = rows[t.number]
        if "duplicate_of" in t.user_attrs:
            assert row.state == "DUPLICATE" and row.duplicate_of == t.user_attrs["duplicate_of"]
            twin = rows[row.duplicate_of]
            assert twin.arch_hash == row.arch_hash and twin.state != "DUPLICATE"
            continue
        assert row.state == t.state.name, (t.number, row.state, t.state)
        if t.state == TrialState.COMPLETE:
            assert row.values == pytest.approx(list(t.values))
            assert row.epochs_done == cfg.proxy.epochs
            assert row.val_size == cfg.proxy.data.num_val and row.seeds == cfg.proxy.seeds
            assert row.accuracy_low <= row.accuracy <= row.accuracy_high
        if t.state == TrialState.PRUNED:
            assert t.values is None  # never told with partial-budget values
            assert 1 <= row.epochs_done < cfg.proxy.epochs
            assert row.reason.startswith("pruned after epoch")
        if t.state == TrialState.FAIL:
            assert row.reason
    for t in trials:
        if t.state == TrialState.COMPLETE and "duplicate_of" not in t.user_attrs:
            (thr,) = store.throughputs(t.user_attrs["arch_hash"])
            assert thr.images_per_s == pytest.approx(rows[t.number].throughput)
            if thr.measured_at >= search.created_at:  # not served from an older search's cache
                assert thr.spread["min"] <= thr.images_per_s <= thr.spread["max"]
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert pruned, "the Pareto successive-halving pruner stopped no trial"
    assert not {t.number for t in pruned} & {t.number for t in outcome.front}
    values = np.array([t.values for t in distinct if t.state == TrialState.COMPLETE])
    assert non_dominated_mask(values, cfg.directions).sum() == len(outcome.front)
    store.dispose()


def test_search_on_sqlite_end_to_end(tiny_search) -> None:
    cfg, outcome, run_folder = tiny_search
    assert outcome.storage_url == f"sqlite:///{run_folder / 'search.db'}"
    _check_search(outcome, cfg)
    accuracies = [t.values[0] for t in outcome.front]
    assert max(accuracies) > 0.58, "proxies learnt nothing on the default dataset"  # 512 val images


def test_finished_search_is_not_resumed(tmp_path: Path) -> None:
    cfg = load_config(TINY, [f"run_dir={tmp_path}", "search.trials=2"])
    first = run_search(cfg)
    again = run_search(cfg)  # a finished search is not resumed: the same command starts anew
    assert again.study_name != first.study_name
    assert len(SearchStore(first.storage_url, read_only=True).searches()) == 2


def test_search_on_postgresql_end_to_end(tmp_path: Path) -> None:
    name = f"pg-{uuid.uuid4().hex[:8]}"
    cfg = load_config(TINY, [f"storage={PG_URL}", f"name={name}", f"run_dir={tmp_path}"])
    outcome = run_search(cfg)
    assert outcome.storage_url == PG_URL
    _check_search(outcome, cfg)


def _count_finished(db: Path) -> int:
    import sqlite3

    if not db.exists():
        return 0
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as con:
        try:
            return con.execute(
                "SELECT COUNT(*) FROM nas_trials WHERE state IN ('COMPLETE', 'PRUNED')"
            ).fetchone()[0]
        except sqlite3.OperationalError:
            return 0


def test_kill_9_then_resume_keeps_every_finished_trial(tmp_path: Path) -> None:
    overrides = [f"run_dir={tmp_path}", "search.trials=8"]
    cmd = [sys.executable, "-m", "nas.cli", "search", str(TINY), *overrides]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        cmd,
        cwd=tmp_path,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    db = tmp_path / "tiny" / "search.db"
    deadline = time.monotonic() + 240
    while _count_finished(db) < 3:
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline, "the search made no progress"
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and everything Ray started under it
    proc.wait()

    cfg = load_config(TINY, overrides)
    store = SearchStore(cfg.storage_url(), read_only=True)
    (search,) = store.searches()
    before = {t.number: (t.state, t.values, t.arch_hash) for t in store.trials(search.id)}
    left_running = [n for n, (state, _, _) in before.items() if state == "RUNNING"]
    finished_before = {n: v for n, v in before.items() if v[0] in ("COMPLETE", "PRUNED")}
    store.dispose()
    study = optuna.load_study(study_name=search.study_name, storage=cfg.storage_url())
    running_params = {  # a duplicate waiting for its twin is not re-queued: it is re-detected
        t.number: t.params
        for t in study.trials
        if t.state == TrialState.RUNNING and t.params and "duplicate_of" not in t.user_attrs
    }

    result = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines()[1].startswith("resuming " + search.study_name)

    store = SearchStore(cfg.storage_url(), read_only=True)
    (again,) = store.searches()
    assert again.id == search.id and again.status == "finished" and again.resumes == 1
    after = {t.number: t for t in store.trials(search.id)}
    for number, (state, values, arch_hash) in finished_before.items():
        row = after[number]
        assert (row.state, row.values, row.arch_hash) == (state, values, arch_hash)
    for number in left_running:
        assert after[number].state == "FAIL"
        assert after[number].reason.startswith("interrupted")
    study = optuna.load_study(study_name=search.study_name, storage=cfg.storage_url())
    counted = [
        t
        for t in study.trials
        if t.state != TrialState.RUNNING
        and not t.user_attrs.get("interrupted")
        and "duplicate_of" not in t.user_attrs
    ]
    assert len(counted) == cfg.search.trials
    assert len({t.number for t in study.trials}) == len(study.trials)
    requeued = {
        t.user_attrs["requeued_from"]: t.params
        for t in study.trials
        if "requeued_from" in t.user_attrs
    }
    assert set(requeued) == set(running_params)
    for number, params in running_params.items():  # enqueued values are kept, the rest sampled
        assert params.items() <= requeued[number].items()
    store.dispose()


def test_export_best_trial_then_train_it_for_one_epoch(tmp_path: Path) -> None:
    cfg = load_config(TINY, [f"run_dir={tmp_path}", "search.trials=3", "search.pruner.kind=none"])
    outcome = run_search(cfg)
    out = tmp_path / "export"
    export = subprocess.run(
        [
            sys.executable,
            "-m",
            "nas.cli",
            "export",
            str(tmp_path / "tiny"),
            "--pick",
            "max-accuracy",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert export.returncode == 0, export.stderr[-3000:]
    best = max(outcome.front, key=lambda t: t.values[0])
    assert f"exported trial {best.number}" in export.stdout
    arch = yaml.safe_load((out / "arch.yaml").read_text())
    store = SearchStore(outcome.storage_url, read_only=True)
    assert arch["stages"] == store.architecture(best.user_attrs["arch_hash"]).spec["stages"]
    store.dispose()
    train = subprocess.run(
        [
            sys.executable,
            "-m",
            "nas.cli",
            "train",
            str(out / "train.yaml"),
            "epochs=1",
            f"output_dir={tmp_path / 'train'}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert train.returncode == 0, train.stderr[-3000:]
    # the recipe fits the search's data: 2,048 images at 16 px, proxy lr 0.003, 2 proxy epochs
    recipe = yaml.safe_load((out / "train.yaml").read_text())
    proxy = cfg.raw["proxy"]
    assert {k: recipe["data"][k] for k in proxy["data"]} == proxy["data"]
    assert recipe["epochs"] == min(max(round(1e6 / proxy["data"]["num_train"]), 3 * 2), 300)
    assert (recipe["mixup"]["mixup_alpha"], recipe["mixup"]["cutmix_alpha"]) == (0.0, 0.0)
    assert recipe["optim"]["lr"] == proxy["lr"]
    assert "recipe: fitted to 2,048 training images at 16 px" in export.stdout
    # progress during the epoch, and Hydra's own files in the run's folder, not ./outputs
    assert "epoch 1/1" in train.stderr
    run = tmp_path / "train"
    assert (run / "metrics.jsonl").is_file() and (run / ".hydra" / "config.yaml").is_file()
    assert list(run.glob("*.log")) and not (tmp_path / "outputs").exists()
