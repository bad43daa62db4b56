"""The dashboard's noise, duplicate, reference and validation views on a store written directly.

The store is written through ``SearchStore`` as the search writes it: a search whose trials carry
95% accuracy intervals and throughput quartiles (some older rows without quartiles, and a second
measurement setting per architecture the dashboard must not pick), reference trials of seed
designs, DUPLICATE trials (and one reused result recorded as COMPLETE, as older stores hold),
and validation runs retraining some of its trials. Every check has a brute-force oracle over the
stored rows: pairwise dominance loops, pairwise interval overlap, ``scipy.stats.kendalltau``.
"""

import base64
import json
import re
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import kendalltau
from streamlit.testing.v1 import AppTest

from nas.search.config import ThroughputSettings
from nas.search.noise import wilson_interval
from nas.search.pareto import dominated_by
from nas.store import SearchStore

APP = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"
SETTING = ThroughputSettings(batch=16)  # what the noisy search measures with
OTHER_SETTING = ThroughputSettings(batch=64)  # another setting's rows: never shown for it
REFERENCES = {0: "caformer", 1: "convformer", 2: "identityformer"}
N_TRIALS = 40
VAL_IMAGES = 500


def _spec(i: int) -> dict:
    return {
        "image_size": 32,
        "stages": [
            {"depth": 1 + i % 3, "dim": 32, "mixer": {"name": "pooling"}},
            {"depth": 1, "dim": 64, "mixer": {"name": ("sepconv", "identity", "pooling")[i % 3]}},
        ],
    }


def _search(store: SearchStore, name: str, objectives, directions, **fields) -> int:
    return store.create_search(
        study_name=f"{name}-study",
        name=name,
        fingerprint=f"{abs(hash(name)) % 10**12:012d}",
        config={"name": name, "space": {"image_size": 32}, "throughput": {"batch": 16}},
        objectives=list(objectives),
        directions=list(directions),
        trials_requested=N_TRIALS,
        status="finished",
        **fields,
    ).id


def _measure(store: SearchStore, arch: str, images_per_s: float, rel: float, quartiles: bool):
    spread = {"min": images_per_s * (1 - 2 * rel), "max": images_per_s * (1 + 2 * rel)}
    spread |= {"iqr": images_per_s * 2 * rel, "relative": 4 * rel}
    if quartiles:
        spread |= {"q25": images_per_s * (1 - rel), "q75": images_per_s * (1 + rel)}
        spread |= {"rounds": 2, "repeats": 5}
    store.save_throughput(arch, SETTING.key(), {}, images_per_s, spread, 10.0, "cpu")
    wrong = {"q25": images_per_s * 0.3, "q75": images_per_s * 3.0, "rounds": 1, "repeats": 5}
    store.save_throughput(arch, OTHER_SETTING.key(), {}, images_per_s * 2, wrong, 10.0, "gpu")


def _complete(store, search_id, number, arch, accuracy, images_per_s, n=VAL_IMAGES, **extra):
    low, high = wilson_interval(accuracy, n)
    store.update_trial(
        search_id,
        number,
        state="COMPLETE",
        accuracy=accuracy,
        throughput=images_per_s,
        values=[accuracy, images_per_s, *extra.pop("more_values", [])],
        epochs_done=3,
        val_size=n,
        seeds=2,
        accuracy_low=low,
        accuracy_high=high,
        accuracy_std=0.004,
        **extra,
    )


def write_noisy_store(url: str) -> dict:
    """The noisy search with its validation run, a sparse one with 2 validated trials."""
    store = SearchStore(url)
    rng = np.random.default_rng(7)
    objectives, directions = ("accuracy", "throughput"), ("maximize", "maximize")
    sid = _search(store, "noisy", objectives, directions)
    trained: dict[int, tuple[str, float, float]] = {}
    for number in range(N_TRIALS):
        arch = f"noisy-{number:03d}"
        store.save_architecture(arch, _spec(number), 1_000_000 + 20_000 * number, 10**8)
        accuracy = float(rng.uniform(0.55, 0.9))
        images_per_s = float(9000 * np.exp(-6 * (accuracy - 0.55)) * rng.lognormal(0, 0.25))
        if number == 0:  # the most accurate of all (slow): a seed design never dominated
            accuracy, images_per_s = 0.93, 600.0
        if number == 1:  # a weak one
            accuracy, images_per_s = 0.56, 700.0
        _measure(store, arch, images_per_s, float(rng.uniform(0.01, 0.06)), number % 9 != 4)
        store.add_trial(sid, number, optuna_trial_id=number, params={}, arch_hash=arch)
        if number >= 3 and number % 11 == 7:
            store.add_epoch(sid, number, 1, val_top1=accuracy / 2)
            store.update_trial(sid, number, state="PRUNED", reason="pruned", epochs_done=1)
            continue
        if number >= 3 and number % 13 == 12:
            store.update_trial(sid, number, state="FAIL", reason="NonFiniteLossError")
            continue
        for epoch in (1, 2, 3):
            store.add_epoch(sid, number, epoch, val_top1=accuracy * epoch / 3)
        _complete(
            store, sid, number, arch, accuracy, images_per_s, reference=REFERENCES.get(number)
        )
        trained[number] = (arch, accuracy, images_per_s)
    # proposals of architectures already trained: three new-style, one as older stores hold it
    plain = [n for n in trained if n not in REFERENCES]
    best = max(plain, key=lambda n: trained[n][1])
    fastest = max(plain, key=lambda n: trained[n][2])
    twins = [best, fastest, 5]
    for k, twin in enumerate(twins):
        number = N_TRIALS + k
        arch, accuracy, images_per_s = trained[twin]
        store.add_trial(sid, number, optuna_trial_id=number, params={}, arch_hash=arch)
        store.update_trial(
            sid,
            number,
            state="DUPLICATE",
            duplicate_of=twin,
            accuracy=accuracy,
            values=[accuracy, images_per_s],
            throughput=images_per_s,
        )
    legacy = N_TRIALS + len(twins)
    arch, accuracy, images_per_s = trained[fastest]
    store.add_trial(sid, legacy, optuna_trial_id=legacy, params={}, arch_hash=arch, reason="reused")
    _complete(store, sid, legacy, arch, accuracy, images_per_s)

    # the validation run: every trained trial with a number divisible by 3, plus the front
    vid = _search(
        store, "noisy-validation", objectives, directions, kind="validation", parent_id=sid
    )
    points = {n: (a, t) for n, (_, a, t) in trained.items()}
    front = _front(points, (1, 1))
    unvalidated = max(n for n in front if n % 3)  # one front member is never retrained
    retrain = sorted(n for n in trained if (n % 3 == 0 or n in front) and n != unvalidated)
    for k, source in enumerate(retrain):
        arch, accuracy, images_per_s = trained[source]
        store.add_trial(vid, k, optuna_trial_id=k, params={}, arch_hash=arch, source_trial=source)
        validation = float(np.clip(accuracy + 0.05 + rng.normal(0, 0.03), 0.0, 1.0))
        _complete(store, vid, k, arch, validation, images_per_s, n=5000, source_trial=source)
    k = len(retrain)
    store.add_trial(vid, k, optuna_trial_id=k, params={}, arch_hash="noisy-002", source_trial=2)
    store.update_trial(vid, k, state="FAIL", reason="out of memory")  # never pairs up

    _search(store, "plain", objectives, directions)  # no trial, no validation run
    # a second search, three objectives, whose validation run has only two trials
    objectives3 = ("accuracy", "throughput", "params")
    spid = _search(store, "sparse", objectives3, ("maximize", "maximize", "minimize"))
    for number in range(6):
        arch = f"sparse-{number}"
        store.save_architecture(arch, _spec(number), 10**6 * (number + 1), 10**8)
        _measure(store, arch, 1000.0 * (6 - number), 0.02, True)
        store.add_trial(spid, number, optuna_trial_id=number, params={}, arch_hash=arch)
        more = {"more_values": [float(number + 1)]}
        _complete(store, spid, number, arch, 0.6 + 0.05 * number, 1000.0 * (6 - number), **more)
    svid = _search(
        store,
        "sparse-validation",
        objectives3,
        ("maximize",) * 2 + ("minimize",),
        kind="validation",
        parent_id=spid,
    )
    for k in range(2):
        arch = f"sparse-{k}"
        store.add_trial(svid, k, optuna_trial_id=k, params={}, arch_hash=arch, source_trial=k)
        _complete(store, svid, k, arch, 0.7, 1000.0, source_trial=k, more_values=[1.0])
    store.dispose()
    return {
        "noisy": sid,
        "validation": vid,
        "sparse": spid,
        "twins": twins,
        "legacy": legacy,
        "unvalidated": unvalidated,
    }


@pytest.fixture(scope="module")
def noisy(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('noisy') / 'search.db'}"
    return url, write_noisy_store(url)


@pytest.fixture
def app(noisy, monkeypatch) -> AppTest:
    monkeypatch.setenv("NAS_DASHBOARD_STORAGE", noisy[0])
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    at.sidebar.selectbox(key="search").set_value("noisy-study").run()
    assert not at.exception, at.exception
    return at


# oracles over the stored rows ------------------------------------------------------------------
def _plotly_array(value) -> np.ndarray:
    """A trace's array as plotly's JSON writes it: a list, or base64 of a typed array."""
    if isinstance(value, dict):
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
    return np.asarray(value)


def _table(app: AppTest, column: str):
    """The dataframe shown with ``column`` (AppTest does not expose dataframe keys)."""
    return next(d.value for d in app.dataframe if column in d.value.columns)


def _rows(url: str, search_id: int) -> list:
    return SearchStore(url, read_only=True).trials(search_id)


def _distinct_complete(rows) -> list:
    """COMPLETE trials that are not duplicates: no ``duplicate_of``, and the first completed
    trial of each architecture (a reference first), as reused results were once recorded."""
    done = [t for t in rows if t.state == "COMPLETE" and t.duplicate_of is None]
    done.sort(key=lambda t: (t.reference is None, t.number))
    seen, out = set(), []
    for t in done:
        if t.arch_hash not in seen:
            seen.add(t.arch_hash)
            out.append(t)
    return out


def _dominates(u, v, signs) -> bool:
    better_or_equal = all(s * a >= s * b for a, b, s in zip(u, v, signs, strict=True))
    return better_or_equal and any(s * a > s * b for a, b, s in zip(u, v, signs, strict=True))


def _front(points: dict, signs) -> set:
    return {
        n for n, v in points.items() if not any(_dominates(u, v, signs) for u in points.values())
    }


def _quartiles(url: str) -> dict:
    """arch hash -> the spread of its row under the noisy search's own setting."""
    store = SearchStore(url, read_only=True)
    out = {}
    for t in _rows(url, 1):
        if t.arch_hash:
            for row in store.throughputs(t.arch_hash):
                if row.setting_key == SETTING.key():
                    out[t.arch_hash] = row.spread
    return out


def _interval(t, name: str, spreads: dict) -> tuple[float, float]:
    if name == "accuracy":
        return t.accuracy_low, t.accuracy_high
    spread = spreads.get(t.arch_hash) or {}
    if "q25" in spread:
        return spread["q25"], spread["q75"]
    return t.throughput, t.throughput


def _chart(app: AppTest, key_index: int = 0) -> dict:
    return json.loads(app.get("plotly_chart")[key_index].proto.spec)


def _numbers(trace: dict) -> list[int]:
    """Trial numbers of a trace's points: the first customdata column, or the bare number."""
    custom = trace["customdata"]
    if isinstance(custom, dict):
        return [int(n) for n in _plotly_array(custom)]
    return [int(c[0] if isinstance(c, list) else c) for c in custom]


# tests ---------------------------------------------------------------------------------------
def test_picker_lists_searches_only(app) -> None:
    picker = app.sidebar.selectbox(key="search")
    assert list(picker.options) and all("validation" not in o for o in picker.options)
    assert len(picker.options) == 3
    for view in ("Progress", "Trial", "Pareto front"):
        app.sidebar.radio(key="view").set_value(view).run()
        assert not app.exception, view


def test_duplicates_are_never_on_the_front(app, noisy) -> None:
    url, ids = noisy
    rows = _rows(url, ids["noisy"])
    distinct = _distinct_complete(rows)
    expected = _front({t.number: t.values for t in distinct}, (1, 1))
    table = _table(app, "knee")
    assert set(table["trial"]) == expected
    duplicates = {t.number for t in rows if t.state == "DUPLICATE"} | {ids["legacy"]}
    assert len(duplicates) == 4 and not duplicates & set(table["trial"])
    assert ids["twins"][1] in expected  # the fastest trial: its duplicate would be on it too
    notes = next(c.value for c in app.caption if "duplicates skipped" in c.value)
    assert notes.startswith(f"{len(duplicates)} duplicates skipped")
    sampled = [t for t in distinct if not t.reference]
    assert app.metric[0].value == str(len(sampled))  # duplicates and seed designs not counted


def test_error_bars_are_the_stored_intervals(app, noisy) -> None:
    url, ids = noisy
    rows = {t.number: t for t in _rows(url, ids["noisy"])}
    spreads = _quartiles(url)
    for axis in ("throughput", "latency_ms"):
        app.selectbox(key="front_x").set_value(axis).run()
        assert not app.exception
        traces = [t for t in _chart(app)["data"] if "error_y" in t]
        names = {t["name"].split(" (")[0] for t in traces}
        assert {"Pareto front", "dominated", "seed designs"} <= names
        checked = missing = 0
        for trace in traces:
            numbers = _numbers(trace)
            x, y = _plotly_array(trace["x"]), _plotly_array(trace["y"])
            ey, ex = trace["error_y"], trace["error_x"]
            up, down = _plotly_array(ey["array"]), _plotly_array(ey["arrayminus"])
            right, left = _plotly_array(ex["array"]), _plotly_array(ex["arrayminus"])
            for i, n in enumerate(numbers):
                t = rows[n]
                assert y[i] + up[i] == pytest.approx(t.accuracy_high)
                assert y[i] - down[i] == pytest.approx(t.accuracy_low)
                spread = spreads[t.arch_hash]
                if "q25" not in spread:  # an older row: no throughput bar
                    assert np.isnan(right[i]) and np.isnan(left[i])
                    missing += 1
                    continue
                lo, hi = spread["q25"], spread["q75"]
                if axis == "latency_ms":
                    lo, hi = 1000.0 / hi, 1000.0 / lo
                assert x[i] - left[i] == pytest.approx(lo)
                assert x[i] + right[i] == pytest.approx(hi)
                checked += 1
        assert checked > 20 and missing >= 1
    app.toggle(key="front_noise").set_value(False).run()
    assert not any("error_y" in t for t in _chart(app)["data"])


def test_tie_marks_are_the_pairwise_overlaps(app, noisy) -> None:
    url, ids = noisy
    rows = {t.number: t for t in _rows(url, ids["noisy"])}
    spreads = _quartiles(url)
    table = _table(app, "tied with")
    front = list(table["trial"])
    expected = {n: set() for n in front}
    for a, b in combinations(front, 2):
        if all(
            _interval(rows[a], name, spreads)[0] <= _interval(rows[b], name, spreads)[1]
            and _interval(rows[b], name, spreads)[0] <= _interval(rows[a], name, spreads)[1]
            for name in ("accuracy", "throughput")
        ):
            expected[a].add(b)
            expected[b].add(a)
    shown = {
        n: {int(m) for m in text.split(", ") if m}
        for n, text in zip(table["trial"], table["tied with"], strict=True)
    }
    assert shown == expected
    assert any(expected.values()), "the store should hold ties"
    # one grey band per group of tied members, holding each member's point
    groups, seen = [], set()
    for start in front:
        if start in seen or not expected[start]:
            continue
        group, stack = {start}, [start]
        while stack:
            for m in expected[stack.pop()] - group:
                group.add(m)
                stack.append(m)
        seen |= group
        groups.append(group)
    bands = [t for t in _chart(app)["data"] if t.get("name") == "tied within noise"]
    assert sorted(sorted(int(m[1:]) for m in b["meta"].split(", ")) for b in bands) == sorted(
        sorted(g) for g in groups
    )
    for band in bands:
        xs, ys = _plotly_array(band["x"]), _plotly_array(band["y"])
        for m in band["meta"].split(", "):
            t = rows[int(m[1:])]
            assert xs.min() <= t.throughput <= xs.max()
            assert ys.min() <= t.accuracy <= ys.max()


def test_references_are_starred_and_judged_against_the_search(app, noisy) -> None:
    url, ids = noisy
    rows = _rows(url, ids["noisy"])
    distinct = _distinct_complete(rows)
    refs = [t for t in distinct if t.reference]
    others = [t for t in distinct if not t.reference]
    dominated = [r for r in refs if any(_dominates(u.values, r.values, (1, 1)) for u in others)]
    standing = [r.reference for r in refs if r not in dominated]
    assert len(refs) == 3 and dominated and standing
    expected = f"front dominates {len(dominated)} of {len(refs)} seed designs"
    expected += "; not dominated: " + ", ".join(standing)
    assert any(expected in c.value for c in app.caption), [c.value for c in app.caption]
    seeds = next(t for t in _chart(app)["data"] if t["name"].startswith("seed designs"))
    assert seeds["marker"]["symbol"] == "star"
    assert sorted(seeds["text"]) == sorted(r.reference for r in refs)
    table = _table(app, "knee")
    marks = dict(zip(table["trial"], table["reference"], strict=True))
    for r in refs:
        if r.number in marks:
            assert marks[r.number] == f"★ {r.reference}"
    assert marks[0] == "★ caformer"  # the strong seed design is on the front
    assert all(m == "" for n, m in marks.items() if n not in {r.number for r in refs})
    seed_rows = _table(app, "seed design")
    assert list(seed_rows["dominated"]) == [
        "no" if r.reference in standing else "yes" for r in refs
    ]


def test_dominated_by_any_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    for _ in range(30):
        d = int(rng.integers(1, 4))
        directions = [("maximize", "minimize")[int(b)] for b in rng.integers(0, 2, d)]
        points = rng.integers(0, 4, (int(rng.integers(0, 6)), d)).astype(float)
        others = rng.integers(0, 4, (int(rng.integers(0, 12)), d)).astype(float)
        if len(others):
            others[0, 0] = np.nan  # a row with NaN never dominates
        signs = [1 if x == "maximize" else -1 for x in directions]
        expected = [
            any(not np.isnan(o).any() and _dominates(o, p, signs) for o in others) for p in points
        ]
        assert list(dominated_by(points, others, directions)) == expected


def test_duplicate_trial_points_to_its_twin(app, noisy) -> None:
    url, ids = noisy
    twin = ids["twins"][0]
    number = N_TRIALS  # DUPLICATE of twin
    app.sidebar.radio(key="view").set_value("Trial").run()
    app.number_input(key="trial_number").set_value(number).run()
    assert not app.exception
    assert any(
        f"Trial {number} · DUPLICATE · duplicate of trial {twin}" in h.value for h in app.subheader
    )
    curve = _chart(app)["data"][0]
    store = SearchStore(url, read_only=True)
    stored = [(e.epoch, e.val_top1) for n, e in store.epochs(ids["noisy"]) if n == twin]
    assert list(_plotly_array(curve["x"])) == [e for e, _ in stored]
    assert _plotly_array(curve["y"]) == pytest.approx([100 * v for _, v in stored])
    app.button(key="open_twin").click().run()
    assert app.number_input(key="trial_number").value == twin
    assert any(f"Trial {twin} · COMPLETE" in h.value for h in app.subheader)
    assert any("top-1 95% interval" in c.value for c in app.caption)


def test_validation_view(app, noisy) -> None:
    url, ids = noisy
    parent = {t.number: t for t in _rows(url, ids["noisy"])}
    child = [t for t in _rows(url, ids["validation"]) if t.state == "COMPLETE"]
    pairs = sorted((t.source_trial, t) for t in child)
    proxy = [parent[s].accuracy for s, _ in pairs]
    validation = [t.accuracy for _, t in pairs]
    assert "Validation" in app.sidebar.radio(key="view").options
    app.sidebar.radio(key="view").set_value("Validation").run()
    assert not app.exception, app.exception
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["validated trials"] == str(len(pairs))
    assert metrics["Kendall τ"] == f"{kendalltau(proxy, validation).statistic:.3f}"
    # the front at validation fidelity, recomputed over the validated trials
    search_front = _front({t.number: t.values for t in _distinct_complete(parent.values())}, (1, 1))
    at_validation = {s: [t.accuracy, parent[s].values[1]] for s, t in pairs}
    validation_front = _front(at_validation, (1, 1))
    validated = {s for s, _ in pairs} & search_front
    held = validated & validation_front
    assert validated == search_front - {ids["unvalidated"]}
    assert metrics["front members hold"] == f"{len(held)} of {len(validated)}"
    text = f"{len(held)} of {len(validated)} front members hold (1 front members not validated)"
    assert any(text in c.value for c in app.caption), [c.value for c in app.caption]
    assert 0 < len(held) < len(validated)
    table = _table(app, "holds")
    assert set(table.loc[table["holds"], "trial"]) == held
    assert set(table.loc[table["on validation front"], "trial"]) == validation_front
    # both error bars are the stored intervals
    by_source = dict(pairs)
    for trace in _chart(app)["data"]:
        x, y = _plotly_array(trace["x"]), _plotly_array(trace["y"])
        ex, ey = trace["error_x"], trace["error_y"]
        for i, n in enumerate(_numbers(trace)):
            p, v = parent[n], by_source[n]
            assert x[i] + _plotly_array(ex["array"])[i] == pytest.approx(p.accuracy_high)
            assert x[i] - _plotly_array(ex["arrayminus"])[i] == pytest.approx(p.accuracy_low)
            assert y[i] + _plotly_array(ey["array"])[i] == pytest.approx(v.accuracy_high)
            assert y[i] - _plotly_array(ey["arrayminus"])[i] == pytest.approx(v.accuracy_low)
    interval = next(c.value for c in app.caption if "bootstrap interval" in c.value)
    low, high = (float(v) for v in re.search(r"\[(.*?), (.*?)\]", interval).groups())
    assert low <= kendalltau(proxy, validation).statistic <= high


def test_validation_needs_three_pairs_and_only_shows_with_a_run(app) -> None:
    app.sidebar.selectbox(key="search").set_value("sparse-study").run()
    app.sidebar.radio(key="view").set_value("Validation").run()
    assert not app.exception, app.exception
    assert any("at least 3" in w.value for w in app.warning)
    assert {m.label: m.value for m in app.metric}["Kendall τ"] == "—"


def test_no_validation_view_without_a_run(app) -> None:
    app.sidebar.radio(key="view").set_value("Validation").run()
    app.sidebar.selectbox(key="search").set_value("plain-study").run()
    assert not app.exception, app.exception
    assert "Validation" not in app.sidebar.radio(key="view").options
    assert app.sidebar.radio(key="view").value == "Pareto front"


def test_a_store_written_before_the_noise_columns_still_opens(tmp_path, monkeypatch) -> None:
    """An older run folder: no kind/parent_id, no duplicate/reference/interval columns."""
    url = f"sqlite:///{tmp_path / 'search.db'}"
    write_noisy_store(url)
    store = SearchStore(url)
    with store.engine.begin() as conn:
        for column in (
            "duplicate_of",
            "reference",
            "source_trial",
            "val_size",
            "seeds",
            "accuracy_low",
            "accuracy_high",
            "accuracy_std",
        ):
            conn.exec_driver_sql(f"ALTER TABLE nas_trials DROP COLUMN {column}")
        kept = "id, study_name, name, fingerprint, config, objectives, directions, "
        kept += "trials_requested, status, created_at, finished_at, wall_seconds, resumes"
        conn.exec_driver_sql(f"CREATE TABLE old_searches AS SELECT {kept} FROM nas_searches")
        conn.exec_driver_sql("DROP TABLE nas_searches")
        conn.exec_driver_sql("ALTER TABLE old_searches RENAME TO nas_searches")
    store.dispose()
    monkeypatch.setenv("NAS_DASHBOARD_STORAGE", url)
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception, at.exception
    assert len(at.sidebar.selectbox(key="search").options) == 5  # no kind: all are searches
    at.sidebar.selectbox(key="search").set_value("noisy-study").run()
    assert not at.exception, at.exception
    assert "Validation" not in at.sidebar.radio(key="view").options
    front = _table(at, "knee")
    assert len(front) and (front["top-1 95% CI"] == "").all()
    notes = next(c.value for c in at.caption if "duplicates skipped" in c.value)
    assert notes == "4 duplicates skipped"  # by state, and the reused result by its architecture
