"""How fast the dashboard's front page is on a 10,000-trial store.

Builds a realistic SQLite store (two searches, one running with 10,000 trials: seed designs,
sampled architectures with params/MACs and throughput rows, COMPLETE / PRUNED / FAIL / RUNNING
trials with learning curves, and the Optuna study beside them), then times

* the data functions behind the front page (cold cache, then cached), and
* the whole front page through Streamlit's AppTest (cold cache, then a new session on a warm
  cache, then a rerun after an interaction), and
* with ``--browser``, the time until a headless chromium shows the front chart and table, on a
  freshly started server and again on a warm one (the README's screenshot is taken then),

and writes the figures to ``benchmarks/results/dashboard_load.{json,md}``.

    python benchmarks/dashboard_load.py                   # 10,000 trials
    python benchmarks/dashboard_load.py --reuse --browser # + real browser, screenshot
    python benchmarks/dashboard_load.py --trials 2000 --store /tmp/small.db
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import streamlit as st
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    distribution_to_json,
)
from optuna.storages._rdb import models as rdb
from optuna.trial import TrialState
from sqlalchemy import func, insert, select, update
from streamlit.logger import set_log_level
from streamlit.testing.v1 import AppTest

from dashboard import data
from dashboard.views import front
from nas.arch.presets import PRESET_MIXERS, PRESETS
from nas.search.space import parse_space
from nas.store import SearchStore
from nas.store.models import Architecture, EpochMetric, Throughput, Trial

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "dashboard" / "app.py"
RESULTS = ROOT / "benchmarks" / "results"
OBJECTIVES = [("accuracy", "maximize"), ("throughput", "maximize")]
EPOCHS = 10
MIXERS = [
    "identity",
    "pooling",
    "sepconv",
    "attention",
    "hyena_pixel",
    "hyena",
    "gnconv",
    "parc",
    "dynamic_filter",
    "global_filter",
]
SPACE = {
    "image_size": 224,
    "drop_path_rate": 0.0,
    "stages": [
        {
            "depth": {"choices": [2, 3, 4]},
            "dim": {"choices": [48, 64]},
            "mixer": {"choices": MIXERS},
            "attention_last": {"choices": [0, 1]},
        },
        {
            "depth": {"choices": [2, 3, 4]},
            "dim": {"choices": [96, 128]},
            "mixer": {"choices": MIXERS},
            "attention_last": {"choices": [0, 1]},
        },
        {
            "depth": {"low": 6, "high": 12, "step": 3},
            "dim": {"choices": [256, 320]},
            "mixer": {"choices": MIXERS},
            "attention_last": {"choices": [0, 1, 3]},
            "res_scale": True,
        },
        {
            "depth": {"choices": [2, 3]},
            "dim": {"choices": [448, 512]},
            "mixer": {"choices": MIXERS},
            "res_scale": True,
        },
    ],
    "mixers": {
        "sepconv": {"kernel_size": {"choices": [3, 5, 7]}},
        "hyena_pixel": {"order": {"choices": [2, 3]}},
        "gnconv": {"order": {"choices": [2, 3, 4]}},
        "attention": {"window_size": {"choices": [None, 7]}},
    },
}
# Relative accuracy gain and cost per token of each mixer: shapes a plausible trade-off.
QUALITY = {
    "identity": -6.0,
    "pooling": -3.0,
    "sepconv": 0.0,
    "attention": 1.0,
    "hyena_pixel": 1.2,
    "hyena": 0.5,
    "gnconv": 0.6,
    "parc": 0.3,
    "dynamic_filter": 0.4,
    "global_filter": -0.5,
}
# Mixer weights per block, in units of dim^2 (the MLP adds 2 * mlp_ratio).
WEIGHTS = {
    "identity": 0.0,
    "pooling": 0.0,
    "sepconv": 4.0,
    "attention": 4.0,
    "hyena_pixel": 5.0,
    "hyena": 5.0,
    "gnconv": 3.0,
    "parc": 2.0,
    "dynamic_filter": 3.0,
    "global_filter": 0.5,
}
COST = {
    "identity": 0.2,
    "pooling": 0.3,
    "sepconv": 1.0,
    "attention": 2.2,
    "hyena_pixel": 1.7,
    "hyena": 1.6,
    "gnconv": 1.3,
    "parc": 1.1,
    "dynamic_filter": 1.2,
    "global_filter": 0.8,
}
FAIL_REASONS = [
    "NonFiniteLossError: loss became nan at step 140",
    "constraint: 41.20M params > max_params_m 40.0",
    "OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
    "the Ray trial errored (worker died?)",
]
SETTING = {
    "device": "cuda",
    "resolution": 224,
    "batch": 128,
    "precision": "bf16",
    "compile": False,
    "channels_last": True,
    "mode": "inference",
    "threads": None,
    "repeats": 5,
}


class RandomParams:
    """A define-by-run sampler drawing uniformly, recording Optuna distributions as it goes."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.params: dict[str, Any] = {}
        self.distributions: dict[str, BaseDistribution] = {}

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        value = choices[int(self.rng.integers(len(choices)))]
        self.params[name], self.distributions[name] = value, CategoricalDistribution(choices)
        return value

    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False) -> int:
        value = int(low + step * self.rng.integers((high - low) // step + 1))
        self.params[name] = value
        self.distributions[name] = IntDistribution(low, high, step=step, log=log)
        return value

    def suggest_float(self, name, low, high, step=None, log=False) -> float:
        value = float(self.rng.uniform(low, high))
        self.params[name] = value
        self.distributions[name] = FloatDistribution(low, high, step=step, log=log)
        return value


def _figures(spec: dict, rng: np.random.Generator) -> tuple[int, int, float, float]:
    """Params, MACs, img/s and final top-1 of a spec under the toy cost/quality model."""
    params = macs = cost = 0.0
    quality = 0.0
    side = 56
    for i, stage in enumerate(spec["stages"]):
        mixer = stage["mixer"]["name"]
        block = stage["dim"] ** 2 * (2 * stage["mlp_ratio"] + WEIGHTS[mixer])
        params += stage["depth"] * block
        macs += stage["depth"] * block * side * side
        attn_last = sum(o.get("last", 0) for o in stage.get("overrides", []))
        plain = stage["depth"] - attn_last
        cost += block * side * side * (plain * COST[mixer] + attn_last * COST["attention"] * 1.5)
        weight = (0.6, 0.8, 1.4, 1.0)[i]
        quality += weight * (plain * QUALITY[mixer] + attn_last * QUALITY["attention"])
        quality /= 1 + 0.02 * i
        side = (side + 1) // 2
    params += 2_000_000
    top1 = 0.40 + 0.045 * math.log(params / 1e6) + quality / 220 + rng.normal(0, 0.012)
    images_per_s = 2.6e13 / cost * float(rng.lognormal(0, 0.05))
    return int(params), int(macs), float(images_per_s), float(np.clip(top1, 0.05, 0.93))


def _curve(final: float, epochs: int, rng: np.random.Generator) -> list[float]:
    return [
        float(np.clip(final * (1 - math.exp(-(e + 0.6) / 2.5)) + rng.normal(0, 0.006), 0, 1))
        for e in range(1, epochs + 1)
    ]


def build_store(path: Path, trials: int, seed: int = 0) -> str:
    """Write two searches (``trials`` and ``trials // 7`` trials) into a new SQLite file."""
    path.unlink(missing_ok=True)
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    url = f"sqlite:///{path.resolve()}"
    store = SearchStore(url)
    space = parse_space(SPACE)
    rng = np.random.default_rng(seed)
    # The running search started 15 s per trial ago, as one that has been going that long.
    t0 = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(seconds=15 * trials + 60)
    trial_id = epoch_id = 0
    known: set[str] = set()
    for s, (name, n, status) in enumerate(
        [
            ("metaformer-s18-baseline", max(1, trials // 7), "finished"),
            ("metaformer-s18", trials, "running"),
        ]
    ):
        study_name = f"{name}-{t0:%Y%m%d-%H%M%S}-{s:04x}"
        requested = n if status == "finished" else n + n // 4
        storage = optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})
        study = optuna.create_study(
            study_name=study_name, storage=storage, directions=[d for _, d in OBJECTIVES]
        )
        search = store.create_search(
            study_name=study_name,
            name=name,
            fingerprint=f"{s:016x}",
            config={
                "name": name,
                "space": SPACE,
                "search": {"trials": requested},
            },
            objectives=[o for o, _ in OBJECTIVES],
            directions=[d for _, d in OBJECTIVES],
            trials_requested=requested,
            status=status,
            created_at=t0,
            finished_at=t0 + timedelta(seconds=15 * n + 300) if status == "finished" else None,
            wall_seconds=15.0 * n + 300 if status == "finished" else 0.0,
        )
        archs, throughput_rows, trial_rows, epoch_rows, optuna_rows = [], [], [], [], []
        presets = list(PRESET_MIXERS)
        for number in range(n):
            sampler = RandomParams(rng)
            if number < len(presets):
                spec = PRESETS[presets[number]](image_size=224)
            else:
                spec = space.sample(sampler)
            spec_dict = spec.to_dict()
            arch_hash = spec.content_hash()
            params, macs, images_per_s, final = _figures(spec_dict, rng)
            if arch_hash not in known:
                known.add(arch_hash)
                archs.append({"hash": arch_hash, "spec": spec_dict, "params": params, "macs": macs})
                throughput_rows.append(
                    {
                        "arch_hash": arch_hash,
                        "setting_key": json.dumps(SETTING, sort_keys=True),
                        "setting": SETTING,
                        "images_per_s": images_per_s,
                        "spread": {"std": images_per_s * 0.02, "min": images_per_s * 0.97},
                        "peak_memory_mb": macs / 2e6,
                        "device_name": "NVIDIA H100 80GB HBM3",
                    }
                )
            draw = rng.random()
            running = status == "running" and number >= n - 8
            if number < len(presets) or draw < 0.66:
                state, epochs, reason = "COMPLETE", EPOCHS, None
            elif draw < 0.93:
                epochs = int(rng.choice([1, 2, 4]))
                state, reason = "PRUNED", f"pruned after epoch {epochs}"
            else:
                state, epochs = "FAIL", int(rng.integers(0, 3))
                reason = FAIL_REASONS[int(rng.integers(len(FAIL_REASONS)))]
            if running:
                state, epochs, reason = "RUNNING", int(rng.integers(0, EPOCHS)), None
            trial_id += 1
            started = t0 + timedelta(seconds=15 * number)
            finished = started + timedelta(seconds=60 + 12 * epochs)
            curve = _curve(final, epochs, rng)
            values = [curve[-1], images_per_s] if state == "COMPLETE" else None
            trial_rows.append(
                {
                    "id": trial_id,
                    "search_id": search.id,
                    "number": number,
                    "optuna_trial_id": 0,
                    "ray_trial_id": f"{number:05x}",
                    "arch_hash": arch_hash,
                    "params": sampler.params,
                    "state": state,
                    "reason": reason,
                    "accuracy": values[0] if values else None,
                    "throughput": images_per_s if state != "FAIL" or epochs else None,
                    "values": values,
                    "epochs_done": epochs,
                    "started_at": started,
                    "finished_at": None if running else finished,
                }
            )
            for e, top1 in enumerate(curve, start=1):
                epoch_id += 1
                epoch_rows.append(
                    {
                        "id": epoch_id,
                        "trial_id": trial_id,
                        "epoch": e,
                        "val_top1": top1,
                        "val_loss": 3.5 * (1 - top1),
                        "train_loss": 3.8 * (1 - top1),
                        "elapsed_s": 12.0 * e,
                        "images_per_s": 2400.0,
                        "recorded_at": started + timedelta(seconds=12 * e),
                    }
                )
            attrs = {"arch_hash": arch_hash, **({"reason": reason} if reason else {})}
            optuna_rows.append(
                (
                    trial_rows[-1],
                    TrialState[state],
                    values,
                    sampler.params,
                    sampler.distributions,
                    attrs,
                )
            )
        with store.session() as session:
            if archs:
                session.execute(insert(Architecture), archs)
                session.execute(insert(Throughput), throughput_rows)
            session.execute(insert(Trial), trial_rows)
            if epoch_rows:
                session.execute(insert(EpochMetric), epoch_rows)
        _add_optuna_trials(store, study, optuna_rows)
    store.dispose()
    return url


def _add_optuna_trials(store: SearchStore, study: optuna.Study, trials: list[tuple]) -> None:
    """The Optuna side (what ``nas export`` reads), bulk-inserted through Optuna's own tables.

    ``create_new_trial`` costs ~0.1 s per trial with params; 10,000 of them would take longer
    than the benchmark. Rows are (store row, state, values, params, distributions, user attrs).
    """
    with store.session() as session:
        first = session.scalar(select(func.coalesce(func.max(rdb.TrialModel.trial_id), 0))) + 1
        trial_rows, value_rows, param_rows, attr_rows, links = [], [], [], [], []
        for i, (row, state, values, params, dists, attrs) in enumerate(trials):
            trial_id = first + i
            links.append({"id": row["id"], "optuna_trial_id": trial_id})
            trial_rows.append(
                {
                    "trial_id": trial_id,
                    "number": row["number"],
                    "study_id": study._study_id,
                    "state": state,
                    "datetime_start": row["started_at"],
                    "datetime_complete": row["finished_at"],
                }
            )
            for k, v in enumerate(values or []):
                stored, kind = rdb.TrialValueModel.value_to_stored_repr(v)
                value_rows.append(
                    {"trial_id": trial_id, "objective": k, "value": stored, "value_type": kind}
                )
            for name, value in params.items():
                param_rows.append(
                    {
                        "trial_id": trial_id,
                        "param_name": name,
                        "param_value": dists[name].to_internal_repr(value),
                        "distribution_json": distribution_to_json(dists[name]),
                    }
                )
            for key, value in attrs.items():
                attr_rows.append(
                    {"trial_id": trial_id, "key": key, "value_json": json.dumps(value)}
                )
        session.execute(insert(rdb.TrialModel), trial_rows)
        for model, rows in (
            (rdb.TrialValueModel, value_rows),
            (rdb.TrialParamModel, param_rows),
            (rdb.TrialUserAttributeModel, attr_rows),
        ):
            if rows:
                session.execute(insert(model), rows)
        session.execute(update(Trial), links)


def clear_caches() -> None:
    """Forget every cached result, as after a server start (imports stay loaded)."""
    st.cache_data.clear()
    data._arch_summary.cache_clear()
    data.preset_hashes.cache_clear()


def _time(fn, repeats: int = 1) -> list[float]:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def time_data(url: str) -> dict[str, float]:
    """Seconds for each data function of the front page, cold (cache cleared) and cached."""
    clear_caches()
    version = data.store_version(url)
    searches = data.searches(url, version)
    search_id = int(searches["id"].iloc[-1])
    out = {
        "store_version": statistics.median(_time(lambda: data.store_version(url), 5)),
    }
    clear_caches()
    out["searches (cold)"] = _time(lambda: data.searches(url, version))[0]
    out["trials (cold)"] = _time(lambda: data.trials(url, search_id, version))[0]
    out["trials (cached)"] = statistics.median(
        _time(lambda: data.trials(url, search_id, version), 5)
    )
    frame = data.trials(url, search_id, version)
    out["front_2d (10k points)"] = statistics.median(
        _time(lambda: data.front_2d(frame, "throughput", "maximize"), 5)
    )
    out["hypervolume_history (cold)"] = _time(
        lambda: data.hypervolume_history(
            url, search_id, version, ("accuracy", "throughput"), ("maximize", "maximize")
        )
    )[0]
    search = searches.iloc[-1]
    ctx = front.Context(url, version, search, frame, searches)
    out["front figure build"] = statistics.median(
        _time(lambda: front.front_figure(ctx, frame, "throughput", None, []), 3)
    )
    out["front figure to JSON"] = statistics.median(
        _time(lambda: front.front_figure(ctx, frame, "throughput", None, []).to_json(), 3)
    )
    out["rows"] = len(frame)
    out["front size"] = int(frame["on_front"].sum())
    return out


def time_app(url: str, repeats: int) -> dict[str, float]:
    """Seconds for one run of the whole front page script through AppTest."""
    os.environ["NAS_DASHBOARD_STORAGE"] = url

    def run_new_session() -> AppTest:
        at = AppTest.from_file(str(APP), default_timeout=120)
        at.run()
        assert not at.exception, at.exception
        assert at.dataframe, "the front table is missing"
        return at

    run_new_session()  # imports (torch via nas) happen once per server process
    colds = []
    for _ in range(repeats):
        clear_caches()
        colds += _time(run_new_session)
    warm = _time(run_new_session, repeats)
    at = run_new_session()

    def rerun_after_click() -> None:
        at.selectbox(key="front_x").set_value("params_m").run()
        at.selectbox(key="front_x").set_value("throughput").run()

    rerun = [t / 2 for t in _time(rerun_after_click, repeats)]

    def empty_page() -> None:
        AppTest.from_string("import streamlit as st\nst.write('empty')").run()

    return {
        "AppTest's own cost: an empty page (median)": statistics.median(_time(empty_page, 3)),
        "front page, cold cache (median)": statistics.median(colds),
        "front page, cold cache (min)": min(colds),
        "front page, cold cache (max)": max(colds),
        "front page, new session, warm cache (median)": statistics.median(warm),
        "front page, rerun after changing the x axis (median)": statistics.median(rerun),
    }


def time_browser(url: str) -> dict[str, float]:
    """Seconds until chromium shows the chart and table; saves ``results/dashboard.png``."""
    import socket
    import subprocess
    import tempfile

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from nas.commands.dashboard import streamlit_command, streamlit_env

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        streamlit_command("127.0.0.1", port),
        env=streamlit_env(url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    flags = "headless no-sandbox disable-gpu disable-quic no-first-run disable-dev-shm-usage"
    flags += " disable-background-networking disable-component-update disable-sync"
    for flag in flags.split():
        options.add_argument(f"--{flag}")
    options.add_argument("--window-size=1600,1250")
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as profile:
        options.add_argument(f"--user-data-dir={profile}")
        browser = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        try:
            for label in ("fresh server", "warm server"):
                deadline = time.monotonic() + 60
                while True:
                    try:
                        socket.create_connection(("127.0.0.1", port), timeout=1).close()
                        break
                    except OSError:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.2)
                start = time.perf_counter()
                browser.get(f"http://127.0.0.1:{port}")
                WebDriverWait(browser, 120).until(
                    lambda b: (
                        b.find_elements(By.CSS_SELECTOR, ".js-plotly-plot .scatterlayer .trace")
                        and b.find_elements(By.CSS_SELECTOR, '[data-testid="stDataFrame"] canvas')
                    )
                )
                out[f"browser: chart and table visible, {label}"] = time.perf_counter() - start
            time.sleep(2)
            browser.save_screenshot(str(RESULTS / "dashboard.png"))
        finally:
            browser.quit()
            server.terminate()
            server.wait()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--store", type=Path, default=Path("/tmp/nas-dashboard-bench.db"))
    parser.add_argument("--reuse", action="store_true", help="time an existing store as is")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--browser", action="store_true", help="also time chromium (needs selenium, chromium)"
    )
    args = parser.parse_args()

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    set_log_level("error")  # AppTest and bare-mode caching warn on every call
    load = [os.getloadavg()[0]]
    if args.reuse and args.store.exists():
        url, build_s = f"sqlite:///{args.store.resolve()}", 0.0
    else:
        start = time.perf_counter()
        url = build_store(args.store, args.trials)
        build_s = time.perf_counter() - start
        print(f"built {args.store} ({args.trials} trials) in {build_s:.1f} s")
    RESULTS.mkdir(parents=True, exist_ok=True)
    figures = {"data": time_data(url), "app": time_app(url, args.repeats)}
    if args.browser:
        figures["app"].update(time_browser(url))
    figures["store"] = {
        "trials": args.trials,
        "bytes": args.store.stat().st_size,
        "build_s": round(build_s, 1),
    }
    # The figures scale with what else runs on the machine: keep that with them.
    figures["machine"] = {"cpus": os.cpu_count(), "load_average_1min": load + [os.getloadavg()[0]]}
    (RESULTS / "dashboard_load.json").write_text(json.dumps(figures, indent=2) + "\n")
    machine = figures["machine"]
    lines = [
        f"{args.trials} trials; {machine['cpus']} CPUs, 1-min load average "
        + " -> ".join(f"{v:.1f}" for v in machine["load_average_1min"]),
        "",
        "| step | seconds |",
        "|---|---:|",
    ]
    for group in ("app", "data"):
        for key, value in figures[group].items():
            shown = f"{value:.3f}" if isinstance(value, float) else str(value)
            lines.append(f"| {group}: {key} | {shown} |")
    (RESULTS / "dashboard_load.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
