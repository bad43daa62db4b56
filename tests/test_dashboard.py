"""The dashboard on stores written by the real search code.

One store is a real search (``tiny_search``: Ray Tune, proxy training, SQLite). Others are
written through ``SearchDriver`` exactly as Ray Tune drives it (suggest, measured result, epoch
results judged by the real Pareto successive-halving pruner, completion) with scripted training
reports, which reach what a short real search rarely does (failed trials, an evaluated seed
design, 26 trials, two searches in one store) at no training cost. Checks use independent
oracles: the Optuna study's own trials for a brute-force front, the stored spec for the export,
the stored epochs for the learning curve.
"""

import argparse
import base64
import dataclasses
import html
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
import yaml
from markdown_it import MarkdownIt
from optuna.trial import TrialState
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError
from streamlit.testing.v1 import AppTest

from dashboard import data
from dashboard.views.common import Context, code, md
from dashboard.views.front import front_figure
from dashboard.views.trial import architecture_html
from nas.arch.presets import PRESETS
from nas.arch.spec import ArchSpec
from nas.commands.dashboard import APP as CLI_APP
from nas.commands.dashboard import add_commands, streamlit_command, streamlit_env
from nas.search.config import parse_config
from nas.search.driver import FINISHED, Progress, SearchDriver
from nas.search.pareto import default_reference, hypervolume
from nas.search.pruners import create_pruner
from nas.search.runner import _engine_kwargs, open_study
from nas.store import SearchStore

try:  # optional: only the browser test needs it (CI installs it with chromium)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ModuleNotFoundError:
    webdriver = None

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "dashboard" / "app.py"
EPOCHS = 4
S18 = [(3, 64), (3, 128), (9, 320), (3, 512)]
BROWSER_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1600,1300",
]


def _config(name: str, trials: int, url: str):
    """An S18-shaped space small enough to script, able to produce the poolformer seed."""
    stages = [
        {
            "depth": {"choices": [1, depth]},
            "dim": dim,
            "mixer": {"choices": ["pooling", "sepconv", "identity"]},
            "res_scale": i >= 2,
        }
        for i, (depth, dim) in enumerate(S18)
    ]
    stages[3]["attention_last"] = {"choices": [0, 1]}
    return parse_config(
        {
            "name": name,
            "storage": url,
            "space": {
                "image_size": 32,
                "stages": stages,
                "mixers": {"sepconv": {"kernel_size": {"choices": [3, 7]}}},
            },
            "search": {"trials": trials, "seed": 3, "sampler": {"kind": "random"}},
            "proxy": {"epochs": EPOCHS},
        }
    )


def _final_accuracy(spec: dict, rng: np.random.Generator) -> tuple[float, float]:
    """Scripted (top-1, img/s): bigger and attention-using is more accurate and slower."""
    blocks = sum(s["depth"] for s in spec["stages"])
    mixers = [s["mixer"]["name"] for s in spec["stages"]]
    quality = 0.03 * mixers.count("sepconv") - 0.04 * mixers.count("identity")
    quality += 0.05 * bool(spec["stages"][3].get("overrides"))
    top1 = float(np.clip(0.3 + 0.012 * blocks + quality + rng.normal(0, 0.03), 0.05, 0.95))
    return top1, float(9000 / (blocks + 2) * rng.lognormal(0, 0.15))


def write_search(url: str, name: str, trials: int, seed: int, enqueue_seed: bool = False) -> str:
    """Run ``trials`` trials through the real driver into ``url``; returns the study name."""
    cfg = _config(name, trials, url)
    store = SearchStore(url)
    study_name = f"{name}-test-{seed:04x}"
    optuna.create_study(
        study_name=study_name,
        storage=optuna.storages.RDBStorage(url, engine_kwargs=_engine_kwargs(url)),
        directions=cfg.directions,
    )
    study = open_study(url, study_name, cfg)
    if enqueue_seed:
        params = {}
        for i, (depth, _) in enumerate(S18):
            params |= {f"s{i}.depth": depth, f"s{i}.mixer": "pooling"}
        study.enqueue_trial(params | {"s3.attention_last": 0})
    search_id = store.create_search(
        study_name=study_name,
        name=cfg.name,
        fingerprint=cfg.fingerprint(),
        config=cfg.raw,
        objectives=cfg.objective_names,
        directions=cfg.directions,
        trials_requested=trials,
    ).id
    pruner = create_pruner(
        "pareto_sh", n_objectives=2, min_resource=1, reduction_factor=2, accuracy_objective=0
    )
    driver = SearchDriver(cfg, study, store, search_id, pruner, trials, Progress(trials))
    rng = np.random.default_rng(seed)
    for i in range(trials):
        ray_id = f"{name}-{i}"
        assigned = driver.suggest(ray_id)
        assert assigned != FINISHED
        spec = assigned["spec"]
        top1, images_per_s = _final_accuracy(spec, rng)
        driver.on_result(
            ray_id,
            {
                "phase": "measured",
                "params": 1_000_000 * sum(s["depth"] * s["dim"] for s in spec["stages"]) // 100,
                "macs": 50_000_000 * sum(s["depth"] for s in spec["stages"]),
                "images_per_s": images_per_s,
                "spread": {"std": 0.02 * images_per_s},
                "peak_memory_mb": 120.0,
                "newly_measured": True,
                "device_name": "cpu (scripted)",
            },
        )
        if i % 7 == 5:
            final = {"phase": "final", "status": "failed", "reason": f"NonFiniteLossError {i}"}
            driver.on_complete(ray_id, final, error=False)
            continue
        stopped = False
        for epoch in range(1, EPOCHS + 1):
            curve = top1 * (1 - 0.5 ** (epoch + 1)) + rng.normal(0, 0.01)
            result = {"phase": "epoch", "epoch": epoch, "val_top1": curve, "val_loss": 2 - curve}
            if driver.on_result(ray_id, result):
                stopped = True
                break
        # what the trainable reports from ProxyResult.status
        final = {"phase": "final", "status": "pruned" if stopped else "completed"}
        driver.on_complete(ray_id, final | {"accuracy": top1}, error=False)
    store.update_search(search_id, status="finished", add_wall_seconds=321.0)
    store.dispose()
    return study_name


@pytest.fixture(scope="session")
def store_url(tmp_path_factory) -> str:
    """Two searches in one SQLite store, written by the search driver."""
    path = tmp_path_factory.mktemp("dashboard") / "search.db"
    url = f"sqlite:///{path}"
    write_search(url, "baseline", 8, seed=1)
    write_search(url, "main", 26, seed=2, enqueue_seed=True)
    return url


@pytest.fixture
def app(store_url, monkeypatch) -> AppTest:
    monkeypatch.setenv("NAS_DASHBOARD_STORAGE", store_url)
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def _study_trials(url: str, study_name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=study_name, storage=url).get_trials(deepcopy=False)


def _distinct(trials) -> list[optuna.trial.FrozenTrial]:
    """Completed trials that trained their architecture: not a duplicate (Optuna is told a
    duplicate's twin's values), and the first of each architecture (a reference first)."""
    done = [
        t for t in trials if t.state == TrialState.COMPLETE and "duplicate_of" not in t.user_attrs
    ]
    done.sort(key=lambda t: ("reference" not in t.user_attrs, t.number))
    seen: set[str] = set()
    out = []
    for t in done:
        if t.user_attrs.get("arch_hash") not in seen:
            seen.add(t.user_attrs.get("arch_hash"))
            out.append(t)
    return sorted(out, key=lambda t: t.number)


def _brute_force_front(trials) -> set[int]:
    done = _distinct(trials)
    return {
        t.number
        for t in done
        if not any(
            all(o >= v for o, v in zip(u.values, t.values, strict=True))
            and any(o > v for o, v in zip(u.values, t.values, strict=True))
            for u in done
        )
    }


def _main_study(url: str) -> str:
    return next(
        s.study_name for s in SearchStore(url, read_only=True).searches() if "main" in s.name
    )


def _table(app: AppTest, column: str):
    """The dataframe shown with ``column`` (AppTest does not expose dataframe keys)."""
    return next(d.value for d in app.dataframe if column in d.value.columns)


def test_the_store_has_every_trial_state(store_url) -> None:
    states = {t.state for t in _study_trials(store_url, _main_study(store_url))}
    assert {TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL} <= states


def test_search_picker_lists_every_search_and_switches(app, store_url) -> None:
    picker = app.sidebar.selectbox(key="search")
    studies = [s.study_name for s in SearchStore(store_url, read_only=True).searches()]
    assert len(picker.options) == len(studies) == 2
    assert all(study in label for study, label in zip(studies, picker.options, strict=True))
    assert picker.value == studies[-1]  # the newest by default
    picker.set_value(studies[0]).run()
    assert not app.exception
    assert app.header[0].value == "baseline"
    done = [t for t in _study_trials(store_url, studies[0]) if t.state == TrialState.COMPLETE]
    assert (app.metric[0].label, app.metric[0].value) == ("completed / 8", str(len(done)))


def test_front_table_is_exactly_the_brute_force_front(app, store_url) -> None:
    trials = _study_trials(store_url, _main_study(store_url))
    table = _table(app, "knee")
    assert set(table["trial"]) == _brute_force_front(trials)
    assert len(table) == len(set(table["trial"]))
    pruned = {t.number for t in trials if t.state == TrialState.PRUNED}
    assert pruned and not pruned & set(table["trial"])
    assert (table["knee"] == "◆ knee").sum() == 1
    assert table["HV contribution %"].sum() == pytest.approx(100.0)
    store = SearchStore(store_url, read_only=True)
    by_number = {t.number: t for t in trials}
    stored = [store.architecture(by_number[n].user_attrs["arch_hash"]).macs for n in table["trial"]]
    assert list(table["MACs"]) == stored  # counts, shown with their SI prefix
    store.dispose()


def test_evaluated_seed_design_is_marked(app, store_url) -> None:
    seeds = _table(app, "on front")
    assert list(seeds["seed design"]) == ["★ poolformer_s18"]  # by its hash: no reference column
    trial = SearchStore(store_url, read_only=True)
    main = trial.get_search(_main_study(store_url))
    row = next(t for t in trial.trials(main.id) if t.number == int(seeds["trial"].iloc[0]))
    assert row.arch_hash == PRESETS["poolformer_s18"](image_size=32).content_hash()


def test_hypervolume_history_matches_recomputing_every_prefix(store_url) -> None:
    study = optuna.load_study(study_name=_main_study(store_url), storage=store_url)
    search = SearchStore(store_url, read_only=True).get_search(study.study_name)
    version = data.store_version(store_url)
    objectives, directions = tuple(search.objectives), tuple(search.directions)
    history = data.hypervolume_history(store_url, search.id, version, objectives, directions)
    done = sorted(_distinct(study.get_trials()), key=lambda t: (t.datetime_complete, t.number))
    assert list(history["number"]) == [t.number for t in done]
    points = np.array([t.values for t in done])
    reference = default_reference(points, directions)
    expected = [hypervolume(points[: k + 1], directions, reference) for k in range(len(points))]
    assert history["hypervolume"].to_numpy() == pytest.approx(expected)


def test_filters_and_axes_rerun_cleanly(app) -> None:
    for axis in data.AXES:
        app.selectbox(key="front_x").set_value(axis).run()
        assert not app.exception, axis
    app.selectbox(key="front_x").set_value("params_m").run()
    app.selectbox(key="front_color").set_value("stage 4 mixer").run()
    app.multiselect(key="front_mixers").set_value(["sepconv"]).run()
    app.selectbox(key="front_stage").set_value("stage 1").run()
    app.multiselect(key="compare").set_value([app.multiselect(key="compare").options[0]]).run()
    assert not app.exception
    for view in ("Progress", "Trial"):
        app.sidebar.radio(key="view").set_value(view).run()
        assert not app.exception, view
    app.sidebar.toggle(key="live").set_value(True).run()
    assert not app.exception
    assert app.header[0].value == "main"


def test_trial_page_shows_the_failure_reason(app, store_url) -> None:
    trials = _study_trials(store_url, _main_study(store_url))
    failed = next(t for t in trials if t.state == TrialState.FAIL)
    app.sidebar.radio(key="view").set_value("Trial").run()
    app.number_input(key="trial_number").set_value(failed.number).run()
    assert not app.exception
    assert [e.value for e in app.error] == [f"Failure reason: NonFiniteLossError {failed.number}"]
    assert any(f"Trial {failed.number} · FAIL" in h.value for h in app.subheader)


def test_trial_page_draws_the_architecture_and_learning_curve(app, store_url) -> None:
    trials = _study_trials(store_url, _main_study(store_url))
    done = next(t for t in trials if t.state == TrialState.COMPLETE)
    app.sidebar.radio(key="view").set_value("Trial").run()
    app.number_input(key="trial_number").set_value(done.number).run()
    assert not app.exception
    store = SearchStore(store_url, read_only=True)
    spec = store.architecture(done.user_attrs["arch_hash"]).spec
    drawing = next(m.value for m in app.markdown if 'class="nas-arch"' in m.value)
    assert drawing.count('class="row"') == len(spec["stages"])
    assert drawing.count('class="block"') == sum(s["depth"] for s in spec["stages"])
    assert app.get("plotly_chart"), "the learning curve is missing"


def test_export_view_writes_the_trials_spec(app, store_url) -> None:
    trials = _study_trials(store_url, _main_study(store_url))
    done = [t for t in trials if t.state == TrialState.COMPLETE][-1]
    app.sidebar.radio(key="view").set_value("Export").run()
    app.radio(key="export_pick").set_value("trial").run()
    app.selectbox(key="export_trial").set_value(done.number).run()
    assert not app.exception, app.exception
    arch_yaml = next(c.value for c in app.code if c.language == "yaml" and "stages:" in c.value)
    spec = ArchSpec.from_dict(yaml.safe_load(arch_yaml))
    assert spec.content_hash() == done.user_attrs["arch_hash"]
    stored = SearchStore(store_url, read_only=True).architecture(done.user_attrs["arch_hash"])
    assert spec == dataclasses.replace(ArchSpec.from_dict(stored.spec), name=spec.name)
    labels = [b.proto.label for b in app.download_button]
    assert labels == ["Download arch.yaml", "Download train.yaml"]
    train_command = next(c.value for c in app.code if c.language == "bash")
    assert "train.yaml" in train_command and "nas-dashboard-export" not in train_command
    assert any(c.value.startswith("Recipe: fitted to ") for c in app.caption)  # as nas export
    export = next(c.value for c in app.code if c.value.startswith("nas export"))
    study = _main_study(store_url)
    assert shlex.split(export) == [
        *("nas", "export", store_url, "--search", study, "--trial", str(done.number))
    ]


def _plotly_array(value) -> np.ndarray:
    """A trace's array as plotly's JSON writes it: a list, or base64 of a typed array."""
    if isinstance(value, dict):
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
    return np.asarray(value)


@pytest.fixture
def real_app(tiny_search, monkeypatch) -> AppTest:
    """The app on the store of a real search."""
    monkeypatch.setenv("NAS_DASHBOARD_STORAGE", tiny_search[1].storage_url)
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def test_real_search_front_and_trial_pages(real_app, tiny_search) -> None:
    cfg, outcome, _ = tiny_search
    trials = _study_trials(outcome.storage_url, outcome.study_name)
    table = _table(real_app, "knee")
    distinct_front = {t.number for t in outcome.front if "duplicate_of" not in t.user_attrs}
    assert set(table["trial"]) == _brute_force_front(trials) == distinct_front
    pruned = {t.number for t in trials if t.state == TrialState.PRUNED}
    assert pruned and not pruned & set(table["trial"])
    store = SearchStore(outcome.storage_url, read_only=True)
    search = store.get_search(outcome.study_name)
    epochs = store.epochs(search.id)
    distinct = {t.number for t in _distinct(trials)}
    real_app.sidebar.radio(key="view").set_value("Trial").run()
    for t in trials:
        real_app.number_input(key="trial_number").set_value(t.number).run()
        assert not real_app.exception, t.number
        twin = t.user_attrs.get("duplicate_of")
        duplicate = twin is not None or (
            t.state == TrialState.COMPLETE and t.number not in distinct
        )
        state = "DUPLICATE" if duplicate else t.state.name
        assert any(f"Trial {t.number} · {state}" in h.value for h in real_app.subheader)
        spec = store.architecture(t.user_attrs["arch_hash"]).spec
        drawing = next(m.value for m in real_app.markdown if 'class="nas-arch"' in m.value)
        assert drawing.count('class="block"') == sum(s["depth"] for s in spec["stages"])
        stored = [(e.epoch, e.val_top1) for number, e in epochs if number == t.number]
        if duplicate and not stored and twin is not None:
            # never trained: the page shows its twin's learning curve
            stored = [(e.epoch, e.val_top1) for number, e in epochs if number == twin]
        elif t.state == TrialState.COMPLETE:
            assert len(stored) == cfg.proxy.epochs
        if t.state == TrialState.PRUNED and not duplicate:
            assert 1 <= len(stored) < cfg.proxy.epochs
        charts = real_app.get("plotly_chart")
        assert len(charts) == bool(stored)
        if stored:
            curve = json.loads(charts[0].proto.spec)["data"][0]
            assert list(_plotly_array(curve["x"])) == [epoch for epoch, _ in stored]
            assert _plotly_array(curve["y"]) == pytest.approx([100 * top1 for _, top1 in stored])
    store.dispose()


def test_search_writes_succeed_while_the_dashboard_reads(tmp_path) -> None:
    """An open dashboard (read-only engine mid-read) must never make a search write fail."""
    url = f"sqlite:///{tmp_path / 'search.db'}"
    study_name = write_search(url, "live", 4, seed=5)
    reader = data.open_store(url)
    before = data.store_version(url)
    frame = data.trials(url, 1, before)
    with reader.engine.connect() as conn:
        rows = conn.execute(text("SELECT number FROM nas_trials"))
        rows.fetchone()  # a read transaction stays open across the writes below
        with pytest.raises(OperationalError, match="readonly"):
            conn.execute(text("UPDATE nas_trials SET state = 'x'"))
        writer = SearchStore(url)
        with writer.engine.connect() as wconn:
            assert wconn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        study = optuna.load_study(study_name=study_name, storage=url)
        for number in range(4, 24):
            trial = study.ask()
            writer.add_trial(1, number, optuna_trial_id=trial._trial_id, params={})
            writer.add_epoch(1, number, 1, val_top1=0.5)
            study.tell(trial, [0.5, 100.0 + number])
            writer.update_trial(1, number, state="COMPLETE", accuracy=0.5, values=[0.5, 100.0])
        writer.dispose()
        rows.close()  # the reader's snapshot ends here; the next read sees the writes
    after = data.store_version(url)
    assert after != before
    assert len(data.trials(url, 1, after)) == len(frame) + 20


def _skip_unless_ci(message: str) -> None:
    """Missing system services skip locally; CI installs them, so there they fail."""
    (pytest.fail if os.environ.get("CI") else pytest.skip)(message)


def test_postgres_store_is_read_only_and_never_blocks_the_search(pg_url, monkeypatch) -> None:
    study_name = write_search(pg_url, "pg", 10, seed=4)
    reader = data.open_store(pg_url)
    with reader.engine.connect() as conn:
        conn.execute(text("SELECT count(*) FROM nas_trials")).scalar()  # transaction stays open
        writer = SearchStore(pg_url)
        writer.add_trial(1, 10, optuna_trial_id=0, params={})
        writer.update_trial(1, 10, state="FAIL", reason="written while the dashboard reads")
        writer.dispose()
        with pytest.raises(DBAPIError, match="read-only transaction"):
            conn.execute(text("UPDATE nas_trials SET state = 'x'"))
    monkeypatch.setenv("NAS_DASHBOARD_STORAGE", pg_url)
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception, at.exception
    front = _table(at, "knee")
    assert set(front["trial"]) == _brute_force_front(_study_trials(pg_url, study_name))
    data.open_store.clear()
    reader.dispose()


def test_cli_serves_the_app_on_localhost_read_only_by_default(store_url, tmp_path) -> None:
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers())
    args = parser.parse_args(["dashboard", str(tmp_path)])
    assert (args.host, args.port) == ("127.0.0.1", 8501)
    command = streamlit_command(args.host, args.port)
    assert command[command.index("--server.address") + 1] == "127.0.0.1"
    assert store_url not in command and CLI_APP == APP  # ps would show a password
    assert streamlit_env(store_url)["NAS_DASHBOARD_STORAGE"] == store_url
    with pytest.raises(FileNotFoundError, match="no search.db"):
        args.func(args)  # an empty folder is refused before any server starts


def test_cli_warns_when_serving_beyond_loopback(tmp_path, capsys) -> None:
    from nas.cli import main

    assert main(["dashboard", str(tmp_path), "--host", "0.0.0.0"]) == 2  # empty: no store
    err = capsys.readouterr().err
    assert "warning: --host 0.0.0.0 serves the dashboard beyond this machine" in err
    assert main(["dashboard", str(tmp_path)]) == 2
    assert "warning" not in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _chromium(profile: Path):
    """Headless Debian chromium through selenium, with a fresh profile."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    chromedriver = shutil.which("chromedriver")
    if webdriver is None or not (chromium and chromedriver):
        _skip_unless_ci("needs selenium and Debian's chromium + chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in [*BROWSER_FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(chromedriver), options=options)


def test_browser_renders_the_front_chart_and_table(tiny_search, tmp_path) -> None:
    """``nas dashboard <run folder>`` of a real search, loaded in headless chromium."""
    _, outcome, run_folder = tiny_search
    browser = _chromium(tmp_path / "profile")
    port = _free_port()
    log_path = tmp_path / "server.log"
    log = log_path.open("w")  # a file, not a pipe: a full or closed pipe would stall the server
    server = subprocess.Popen(
        [sys.executable, "-m", "nas.cli", "dashboard", str(run_folder), "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        while True:  # the CLI imports torch before streamlit starts listening
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, "the dashboard never started listening"
                time.sleep(0.5)
        browser.get(f"http://127.0.0.1:{port}")
        WebDriverWait(browser, 90).until(
            lambda b: (
                b.find_elements(By.CSS_SELECTOR, ".js-plotly-plot .scatterlayer .trace")
                and b.find_elements(By.CSS_SELECTOR, '[data-testid="stDataFrame"] canvas')
            )
        )
        time.sleep(1.0)  # let the plot finish its transition before the screenshot
        body = browser.find_element(By.TAG_NAME, "body").text
        assert "Pareto front of the search" in body and outcome.study_name in body
        assert not browser.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
        shot = tmp_path / "dashboard.png"
        assert browser.save_screenshot(str(shot))
        assert shot.stat().st_size > 50_000
    finally:
        browser.quit()
        server.terminate()  # the command stops its streamlit server with it
        server.wait(timeout=20)
        log.close()


HOSTILE = "<img src=x onerror=alert(1)> **bold** [link](http://evil) `tick"
MARKDOWN = MarkdownIt("commonmark")  # raw HTML passes through, as with unsafe_allow_html


def write_hostile_store(url: str) -> None:
    """A crafted store: every string the pages show holds HTML and markdown."""
    store = SearchStore(url)
    sid = store.create_search(
        study_name=f"study {HOSTILE}",
        name=f"search {HOSTILE}",
        fingerprint="0" * 12,
        config={"name": HOSTILE, "space": {"image_size": 32}},
        objectives=["accuracy", "throughput"],
        directions=["maximize", "maximize"],
        trials_requested=5,
        status=HOSTILE,
    ).id
    specs = {
        "knob": {"name": "pooling", "pool_size": HOSTILE},
        "name": {"name": HOSTILE},
        "plain": {"name": "sepconv", "kernel_size": 3},
    }
    for number, (arch, mixer) in enumerate(specs.items()):
        spec = {"image_size": 32, "stages": [{"depth": 2, "dim": 32, "mixer": mixer}]}
        store.save_architecture(arch, spec, 50_000 * (number + 1), 800_000 * (number + 1))
        store.add_trial(sid, number, optuna_trial_id=number, params={}, arch_hash=arch)
        accuracy, images_per_s = 0.6 + 0.1 * number, 3000.0 - 1000 * number
        store.add_epoch(sid, number, 1, val_top1=accuracy)
        store.update_trial(
            sid,
            number,
            state="COMPLETE",
            accuracy=accuracy,
            throughput=images_per_s,
            values=[accuracy, images_per_s],
            epochs_done=1,
            reference=HOSTILE if arch == "knob" else None,
        )
    for number, state in ((3, "FAIL"), (4, "PRUNED")):
        store.add_trial(sid, number, optuna_trial_id=number, params={}, arch_hash="plain")
        if state == "PRUNED":
            store.add_epoch(sid, number, 1, val_top1=0.2)
        store.update_trial(sid, number, state=state, reason=f"{state} {HOSTILE}")
    store.dispose()


def _shown_text(app: AppTest) -> list[tuple[str, str, bool]]:
    """(kind, markdown source, rendered with unsafe_allow_html) of every text element."""
    out = []
    for kind in ("markdown", "caption", "header", "subheader", "error", "warning", "info"):
        for element in app.get(kind):
            out.append((kind, element.value, bool(getattr(element.proto, "allow_html", False))))
    out += [("metric", m.label, False) for m in app.metric]
    return out


def _assert_inert(app: AppTest) -> list[str]:
    """No element's markdown renders a tag, link or emphasis of the hostile string; returns
    every element's rendered HTML."""
    pages = []
    for kind, source, allow_html in _shown_text(app):
        rendered = MARKDOWN.render(source)
        for active in ("<img", "<a ", "<strong>bold", 'href="http://evil"'):
            assert active not in rendered, (kind, source)
        if allow_html:
            assert "<img" not in source, source
        pages.append(rendered)
    return pages


def test_stored_strings_never_inject_html_or_markdown(tmp_path, monkeypatch) -> None:
    url = f"sqlite:///{tmp_path / 'search.db'}"
    write_hostile_store(url)
    monkeypatch.setenv("NAS_DASHBOARD_STORAGE", url)
    app = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not app.exception, app.exception
    escaped = html.escape(HOSTILE, quote=False)  # the hostile text, shown as text
    front = _assert_inert(app)
    assert MARKDOWN.render(app.header[0].value) == f"<p>search {escaped}</p>\n"
    assert any(f"<code>study {escaped}</code>" in p for p in front)  # the study, in the caption
    assert any(f"not dominated: {escaped}" in p for p in front)  # the seed design's name
    chart = json.loads(app.get("plotly_chart")[0].proto.spec)
    hover = json.dumps(
        [t.get("customdata") for t in chart["data"]] + [t.get("text") for t in chart["data"]]
    )
    assert "<img" not in hover and "&lt;img" in hover  # plotly's text reads a few HTML tags

    app.sidebar.radio(key="view").set_value("Trial").run()
    for number, shown in ((0, "pool_size="), (1, "stage 1"), (3, "FAIL "), (4, "PRUNED ")):
        app.number_input(key="trial_number").set_value(number).run()
        assert not app.exception, (number, app.exception)
        pages = _assert_inert(app)
        assert any(shown in p and escaped in p for p in pages), number
    assert [e.value for e in app.warning] == [f"Stopped early: {md(f'PRUNED {HOSTILE}')}"]


def test_architecture_html_escapes_every_stored_value() -> None:
    spec = {
        "image_size": HOSTILE,
        "head": {"kind": HOSTILE},
        "stages": [
            {
                "depth": 3,
                "dim": 64,
                "mixer": {"name": HOSTILE, "kernel_size": HOSTILE},
                "mlp_ratio": HOSTILE,
                "layer_scale": HOSTILE,
                "overrides": [{"last": 1, "mixer": {"name": "attention", "heads": HOSTILE}}],
            }
        ],
    }
    drawing = architecture_html(spec)
    assert "<img" not in drawing and "`tick" in drawing
    for shown in (
        f"<b>{html.escape(HOSTILE)}</b>",  # mixer name (label, legend)
        html.escape(f"kernel_size={HOSTILE}"),
        html.escape(f"heads={HOSTILE}"),
        f"mlp ×{html.escape(HOSTILE)}",
        f"image size {html.escape(HOSTILE)}",
    ):
        assert shown in drawing, shown
    assert drawing.count('class="block"') == 3


def test_markdown_helpers_show_the_text_itself() -> None:
    for value in (HOSTILE, "a\\b :red[x] $x$ #h", "``two`` ticks`", "`"):
        assert MARKDOWN.render(md(value)) == f"<p>{html.escape(value, quote=False)}</p>\n"
        assert MARKDOWN.render(code(value)) == (
            f"<p><code>{html.escape(value, quote=False)}</code></p>\n"
        )


def test_an_unreadable_store_is_named_without_its_password(monkeypatch) -> None:
    monkeypatch.setenv("NAS_DASHBOARD_STORAGE", "postgresql://nas:s3cret@127.0.0.1:9/nas")
    app = AppTest.from_file(str(APP), default_timeout=60).run()
    [error] = app.error
    assert MARKDOWN.render(error.value).startswith(
        "<p>Cannot read the search store postgresql://nas:***@127.0.0.1:9/nas: "
    )
    assert "s3cret" not in error.value


def test_front_y_axis_zooms_on_the_completed_trials(store_url) -> None:
    version = data.store_version(store_url)
    searches = data.searches(store_url, version)
    search = searches.iloc[-1]
    frame = data.trials(store_url, int(search["id"]), version).copy()
    done = frame["state"] == "COMPLETE"
    frame.loc[done, "top1"] = np.linspace(0.90, 0.95, done.sum())
    frame.loc[done, "accuracy_low"] = frame.loc[done, "top1"] - 0.01
    frame.loc[done, "accuracy_high"] = frame.loc[done, "top1"] + 0.01
    frame.loc[frame["state"] == "PRUNED", "top1"] = 0.5
    ctx = Context(store_url, version, search, frame, searches)
    for noise, low, high in ((True, 0.89, 0.96), (False, 0.90, 0.95)):
        fig = front_figure(ctx, frame, "throughput", None, [], noise)
        y0, y1 = fig.layout.yaxis.range
        assert 0.85 <= y0 < low and high < y1 <= 1.0, (noise, y0, y1)
        pruned = next(t for t in fig.data if t.name.startswith("pruned"))
        assert set(pruned.y) == {0.5}  # still plotted: autoscale shows them
