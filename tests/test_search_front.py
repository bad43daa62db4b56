"""A front a researcher can trust, through real searches (local Ray, SQLite): duplicates cost
nothing and appear once, seed designs are evaluated beside the search, a seeded sequential search
repeats exactly, and ``nas validate`` retrains the front at a higher fidelity."""

import sqlite3
from pathlib import Path

import numpy as np
import optuna
import pytest
import scipy.stats
import yaml
from optuna.trial import TrialState

from nas.cli import main
from nas.search.config import load_config
from nas.search.export import export_trial
from nas.search.pareto import non_dominated_mask
from nas.search.runner import run_search
from nas.search.validation import ValidationError, run_validation
from nas.store import SearchStore

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "search_spaces" / "tiny.yaml"

FOUR = {  # 2 x 2 mixers and nothing else searched: exactly 4 distinct architectures
    "name": "four",
    "search": {
        "trials": 10,
        "max_concurrent": 2,
        "seed": 0,
        "sampler": {"kind": "tpe", "n_startup_trials": 2},
        "pruner": {"kind": "pareto_sh", "min_resource": 1, "reduction_factor": 2},
    },
    "throughput": {"device": "cpu", "batch": 8, "threads": 1, "repeats": 3},
    "proxy": {
        "epochs": 2,
        "lr": 0.003,
        "warmup_epochs": 0.5,
        "device": "cpu",
        "threads": 1,
        "data": {
            "name": "default",
            "resolution": 16,
            "num_train": 256,
            "num_val": 128,
            "batch_size": 64,
        },
    },
    "space": {
        "image_size": 16,
        "head": {"kind": "linear"},
        "stages": [
            {"depth": 1, "dim": 8, "mixer": {"choices": ["pooling", "sepconv"]}},
            {"depth": 1, "dim": 16, "mixer": {"choices": ["pooling", "sepconv"]}},
        ],
    },
}


def _space_file(tmp_path: Path, **top) -> Path:
    path = tmp_path / "four.yaml"
    path.write_text(yaml.safe_dump({**FOUR, **top}))
    return path


def _rows(url: str, study_name: str):
    store = SearchStore(url, read_only=True)
    search = store.get_search(study_name)
    rows = {r.number: r for r in store.trials(search.id)}
    store.dispose()
    return search, rows


def test_duplicates_cost_nothing_and_appear_once(tmp_path: Path, capsys) -> None:
    path = _space_file(tmp_path)
    assert main(["search", str(path), f"run_dir={tmp_path}"]) == 0
    out = capsys.readouterr().out
    assert "ended early: the space is exhausted: all 4 distinct architectures trained" in out

    cfg = load_config(path, [f"run_dir={tmp_path}"])
    store = SearchStore(cfg.storage_url(), read_only=True)
    (search,) = store.searches()
    study = optuna.load_study(study_name=search.study_name, storage=cfg.storage_url())
    trained = [t for t in study.trials if "duplicate_of" not in t.user_attrs]
    assert len(trained) == 4 and search.status == "finished"
    assert len({t.user_attrs["arch_hash"] for t in trained}) == 4
    rows = {r.number: r for r in store.trials(search.id)}
    for t in study.trials:
        if "duplicate_of" in t.user_attrs:
            twin = study.trials[t.user_attrs["duplicate_of"]]
            assert rows[t.number].state == "DUPLICATE"
            assert t.state == twin.state and (t.values == twin.values)  # the sampler learns
    complete = [t for t in trained if t.state == TrialState.COMPLETE]
    points = np.array([t.values for t in complete])
    brute = sorted(
        t.number
        for t, keep in zip(complete, non_dominated_mask(points, cfg.directions), strict=True)
        if keep
    )
    assert sorted(t.number for t in study.best_trials) == brute  # as optuna-dashboard reads it
    front_lines = [line for line in out.splitlines() if line[:6].strip().isdigit()]
    assert sorted(int(line.split()[0]) for line in front_lines) == brute
    exported = export_trial(tmp_path / "four", pick="max-accuracy", out_dir=tmp_path / "x")
    assert exported.trial_number in brute
    store.dispose()


def test_a_search_that_proposes_only_known_architectures_ends_with_a_message(tmp_path) -> None:
    """A numeric range makes the space non-enumerable (8 networks in fact): only the run of
    duplicate proposals can end the search before its budget of 20."""
    path = _space_file(tmp_path)
    overrides = [
        f"run_dir={tmp_path}",
        "search.trials=20",
        "search.max_duplicate_asks=3",
        "search.sampler.kind=random",
        "+space.stages.1.mlp_ratio={low: 2.0, high: 4.0, step: 2.0}",
    ]
    outcome = run_search(load_config(path, overrides))
    assert outcome.stop_reason is not None
    assert outcome.stop_reason.startswith(
        "the sampler proposed only known architectures for 3 asks in a row"
    )
    trained = outcome.counts["COMPLETE"] + outcome.counts["PRUNED"] + outcome.counts["FAIL"]
    assert trained <= 8 and f"; {trained} distinct architectures trained" in outcome.stop_reason
    assert outcome.counts["DUPLICATE"] >= 3


def test_seed_designs_are_evaluated_beside_the_search(tmp_path: Path, capsys) -> None:
    path = _space_file(tmp_path, references=["poolformer", "convformer"])
    assert main(["search", str(path), f"run_dir={tmp_path}", "search.trials=3"]) == 0
    out = capsys.readouterr().out
    cfg = load_config(path, [f"run_dir={tmp_path}", "search.trials=3"])
    store = SearchStore(cfg.storage_url(), read_only=True)
    (search,) = store.searches()
    study = optuna.load_study(study_name=search.study_name, storage=cfg.storage_url())
    rows = {r.number: r for r in store.trials(search.id)}
    references = {t.user_attrs["reference"]: t for t in study.trials if "reference" in t.user_attrs}
    assert set(references) == {"poolformer", "convformer"}
    for name, t in references.items():
        assert t.state == TrialState.COMPLETE and rows[t.number].reference == name
        assert rows[t.number].epochs_done == cfg.proxy.epochs  # never pruned
        assert t.user_attrs["arch_hash"] == cfg.references[name].content_hash()
    sampled = [
        t
        for t in study.trials
        if "reference" not in t.user_attrs and "duplicate_of" not in t.user_attrs
    ]
    # the 2 architectures left after the seed designs; then the space is exhausted
    assert len(sampled) == 2
    searched = [t for t in sampled if t.state == TrialState.COMPLETE]
    dominated = [
        name
        for name, ref in references.items()
        if any(
            all(a >= b for a, b in zip(s.values, ref.values, strict=True))
            and s.values != ref.values
            for s in searched
        )
    ]
    assert f"front dominates {len(dominated)} of 2 seed designs" in out
    assert "★ " in out or len(dominated) == 2
    store.dispose()


def test_a_seeded_sequential_search_repeats_exactly(tmp_path: Path) -> None:
    overrides = [
        f"run_dir={tmp_path}",
        "search.trials=5",
        "search.max_concurrent=1",
        "proxy.data.num_train=256",
        "proxy.data.num_val=128",
    ]
    cfg = load_config(TINY, overrides)
    runs = [run_search(cfg, fresh=True) for _ in range(2)]  # the second reads cached throughput

    def history(outcome):
        study = optuna.load_study(study_name=outcome.study_name, storage=outcome.storage_url)
        return [(t.params, t.state, t.values) for t in study.trials]

    first, second = (history(o) for o in runs)
    assert first == second
    assert sorted(t.number for t in runs[0].front) == sorted(t.number for t in runs[1].front)


def _copy_store(run_folder: Path, tmp_path: Path) -> Path:
    """A private copy of the shared tiny search's store (sqlite backup), to validate into."""
    target = tmp_path / "tiny"
    target.mkdir()
    source = sqlite3.connect(f"file:{run_folder / 'search.db'}?mode=ro", uri=True)
    copy = sqlite3.connect(target / "search.db")
    source.backup(copy)
    source.close()
    copy.close()
    return target


def test_validate_retrains_the_front_on_real_digits(tiny_search, tmp_path: Path, capsys) -> None:
    cfg, outcome, run_folder = tiny_search
    folder = _copy_store(run_folder, tmp_path)
    overrides = [
        "proxy.data.name=digits",
        "proxy.data.train_per_class=10",
        "proxy.data.batch_size=20",
    ]
    code = main(["validate", str(folder), "--sample", "2", "--epochs", "3", *overrides])
    assert code == 0
    out = capsys.readouterr().out
    last = out.strip().splitlines()[-1]

    url = f"sqlite:///{folder / 'search.db'}"
    store = SearchStore(url, read_only=True)
    parent, child = store.searches()
    assert child.kind == "validation" and child.parent_id == parent.id
    assert (
        child.config["proxy"]["data"]["name"] == "digits" and child.config["proxy"]["epochs"] == 3
    )
    rows = store.trials(child.id)
    parent_rows = {r.number: r for r in store.trials(parent.id)}
    front = {t.number for t in outcome.front}
    assert front <= {r.source_trial for r in rows}
    pairs = []
    for r in rows:
        assert r.arch_hash == parent_rows[r.source_trial].arch_hash and r.epochs_done == 3
        assert r.val_size == 360  # the fixed digits validation split
        pairs.append((parent_rows[r.source_trial].accuracy, r.accuracy))
    assert f": {len(rows)} retrained, 0 failed in " in out
    proxy, validated = zip(*pairs, strict=True)
    tau = scipy.stats.kendalltau(proxy, validated).statistic
    assert last.startswith(f"kendall tau {tau:.2f} [") and f"over {len(rows)} architectures" in last
    points = np.array([[r.accuracy, r.throughput] for r in rows])
    mask = non_dominated_mask(points, ["maximize", "maximize"])
    held = sum(bool(m) for r, m in zip(rows, mask, strict=True) if r.source_trial in front)
    assert last.endswith(f"{held} of {len(front)} front members hold")
    store.dispose()


def test_validate_refuses_what_it_cannot_rank(tmp_path: Path) -> None:
    cfg = load_config(
        TINY,
        [
            f"run_dir={tmp_path}",
            "search.trials=1",
            "proxy.data.num_train=256",
            "proxy.data.num_val=128",
        ],
    )
    run_search(cfg)
    with pytest.raises(
        ValidationError, match=r"has [01] completed architectures; nas validate needs at least 3"
    ):
        run_validation(tmp_path / "tiny")
    store = SearchStore(cfg.storage_url())
    (search,) = store.searches()
    store.update_search(search.id, status="running")
    store.dispose()
    with pytest.raises(ValidationError, match="is running: it may still be writing the store"):
        run_validation(tmp_path / "tiny")


def _scripted_run(driver, ray_id: str, accuracy: float) -> None:
    """What the trainable reports for one architecture, told through the real driver."""
    driver.on_result(
        ray_id,
        {
            "phase": "measured",
            "params": 1000,
            "macs": 10**6,
            "images_per_s": 500.0 + accuracy,
            "newly_measured": True,
            "spread": {"q25": 490.0, "q75": 510.0},
        },
    )
    for epoch in (1, 2):
        driver.on_result(
            ray_id, {"phase": "epoch", "epoch": epoch, "val_top1": accuracy, "val_size": 128}
        )
    final = {
        "phase": "final",
        "status": "completed",
        "accuracy": accuracy,
        "val_size": 128,
        "seeds": 1,
    }
    driver.on_complete(ray_id, final, error=False)


def _new_search(cfg, study_name: str) -> tuple[SearchStore, optuna.Study, int]:
    """The store, study and search row a driver works on, as ``run_search`` creates them."""
    from nas.search.runner import create_study

    url = cfg.storage_url()
    store = SearchStore(url)
    study = create_study(url, study_name, cfg)
    search_id = store.create_search(
        study_name=study_name,
        name=cfg.name,
        fingerprint="f",
        config=cfg.raw,
        objectives=cfg.objective_names,
        directions=cfg.directions,
        trials_requested=cfg.search.trials,
    ).id
    return store, study, search_id


def test_memory_is_checked_once_per_distinct_architecture(tmp_path: Path) -> None:
    """A duplicate is told its twin's result and never trained, so the driver's memory
    estimate (~0.1 s of driver CPU per proposal) is not made again for it."""
    from nas.search.driver import FINISHED, Progress, SearchDriver
    from nas.search.pruners import create_pruner

    cfg = load_config(_space_file(tmp_path), [f"run_dir={tmp_path}", "search.trials=4"])
    store, study, search_id = _new_search(cfg, "fits-once")
    driver = SearchDriver(cfg, study, store, search_id, create_pruner("none", 2), 4, Progress(4))
    checked = []
    driver.set_fits(lambda spec: checked.append(spec.content_hash()))
    for k in range(4):
        assert driver.suggest(f"r{k}") != FINISHED
        _scripted_run(driver, f"r{k}", 0.5 + k / 10)
    assert driver.suggest("r4") == FINISHED
    duplicates = [t for t in study.trials if "duplicate_of" in t.user_attrs]
    assert len(duplicates) >= 2 and all(t.state == TrialState.COMPLETE for t in duplicates)
    assert sorted(checked) == sorted({t.user_attrs["arch_hash"] for t in study.trials})
    assert len(checked) == 4
    store.dispose()


def test_a_resumed_search_reruns_only_the_unfinished_seed_designs(tmp_path: Path) -> None:
    """Killed while a seed design trained: the resumed driver proposes that one again and not
    the finished one; the interrupted trial is not re-queued as a sampler trial."""
    from nas.search.driver import FINISHED, Progress, Proposal, SearchDriver
    from nas.search.pruners import create_pruner
    from nas.search.runner import requeue_interrupted

    path = _space_file(tmp_path, references=["poolformer", "convformer"])
    cfg = load_config(path, [f"run_dir={tmp_path}", "search.trials=1"])
    store, study, search_id = _new_search(cfg, "resume-refs")
    proposals = [Proposal(spec, ("reference", name)) for name, spec in cfg.references.items()]

    def driver() -> SearchDriver:
        pruner = create_pruner("none", n_objectives=2)
        return SearchDriver(
            cfg, study, store, search_id, pruner, 1, Progress(1), proposals=proposals
        )

    first = driver()
    assert first.suggest("a")["spec"] == cfg.references["poolformer"].to_dict()
    _scripted_run(first, "a", 0.7)
    assert first.suggest("b")["spec"] == cfg.references["convformer"].to_dict()
    # killed here: convformer's trial is left RUNNING
    assert requeue_interrupted(study) == []
    second = driver()
    assert second.pending_proposals == 1
    assert second.suggest("c")["spec"] == cfg.references["convformer"].to_dict()
    _scripted_run(second, "c", 0.8)
    sampled = second.suggest("d")
    assert sampled != FINISHED and "reference" not in study.trials[-1].user_attrs
    _scripted_run(second, "d", 0.6)
    assert second.suggest("e") == FINISHED
    refs = [t for t in study.trials if "reference" in t.user_attrs]
    assert [(t.user_attrs["reference"], t.state) for t in refs] == [
        ("poolformer", TrialState.COMPLETE),
        ("convformer", TrialState.FAIL),
        ("convformer", TrialState.COMPLETE),
    ]
    assert refs[1].user_attrs["interrupted"]
    assert not any("requeued_from" in t.user_attrs for t in study.trials)
    store.dispose()
