"""Read-only data access for the dashboard: set-based queries returning pandas DataFrames.

Every query goes through a read-only store (SQLite ``mode=ro``, PostgreSQL read-only
transactions), so an open dashboard never takes a write lock a running search needs. Results are
cached per storage URL and a cheap ``version`` string (row counts and latest timestamps), so a
page rerun re-reads only when the search has written something new.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st
from sqlalchemy import Text, and_, cast, func, inspect, null, select

from nas.arch.presets import PRESETS
from nas.arch.spec import BlockOverride, MixerSpec, SpecError
from nas.search.config import stored_throughput_key
from nas.search.noise import RankAgreement, rank_agreement, tied_with
from nas.search.pareto import (
    default_reference,
    dominated_by,
    hypervolume,
    hypervolume_contributions,
    knee_point,
    non_dominated_mask,
)
from nas.store import SearchStore
from nas.store.models import Architecture, EpochMetric, Search, Throughput, Trial
from nas.typed_config import ConfigError

STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "DUPLICATE")
# Where each objective's noise interval lives: accuracy's 95% Wilson interval, throughput's
# interquartile range over the timed blocks. Other objectives (params, MACs) are exact.
NOISE_COLUMNS = {
    "accuracy": ("accuracy_low", "accuracy_high"),
    "throughput": ("thr_q25", "thr_q75"),
}
# What the front chart can put on its x axis: column, label, direction of "better".
AXES: dict[str, tuple[str, str]] = {
    "throughput": ("throughput (img/s)", "maximize"),
    "latency_ms": ("latency (ms / image)", "minimize"),
    "params_m": ("parameters (M)", "minimize"),
    "macs": ("MACs", "minimize"),
}


@st.cache_resource(show_spinner=False)
def open_store(url: str) -> SearchStore:
    """One read-only store (and connection pool) per URL for the whole server. A store of an
    older schema opens too: the queries read around the columns it lacks (:func:`_columns`)."""
    return SearchStore(url, read_only=True, allow_outdated=True)


def store_version(url: str) -> str:
    """Changes whenever the search writes a trial, epoch, measurement or search update.

    Aggregates over primary keys and timestamps, so it costs one cheap query per page run.
    """
    aggregates = [
        select(func.count(Trial.id)),  # a trial started
        select(func.max(Trial.finished_at)),  # a trial ended (every end stamps it)
        select(func.count(Trial.id)).where(Trial.throughput.is_not(None)),  # a trial measured
        select(func.max(EpochMetric.id)),  # an epoch reported
        select(func.max(Throughput.id)),
        select(func.count(Search.id)),
        select(func.sum(Search.wall_seconds)),  # a run stopped or finished
        select(func.sum(Search.resumes)),  # a search resumed
        select(func.max(Search.finished_at)),
    ]
    query = select(*(a.scalar_subquery() for a in aggregates))
    with open_store(url).engine.connect() as conn:
        return "|".join(str(v) for v in conn.execute(query).one())


def _columns(conn, model, names: Sequence[str]) -> list:
    """``model``'s columns ``names``; NULL for any the database's table lacks (a store written
    before the column was added), so an older run folder still opens."""
    present = {c["name"] for c in inspect(conn).get_columns(model.__tablename__)}
    return [getattr(model, n) if n in present else null() for n in names]


@st.cache_data(show_spinner=False, max_entries=16)
def searches(url: str, version: str) -> pd.DataFrame:
    """One row per search with its objectives, settings and trial counts by state.

    ``kind`` is ``search`` or ``validation`` (a higher-fidelity retraining of ``parent_id``'s
    trials); the picker lists searches only and the validation view reads their children.
    """
    cols = [
        Search.id,
        Search.study_name,
        Search.name,
        Search.status,
        Search.objectives,
        Search.directions,
        Search.trials_requested,
        Search.created_at,
        Search.finished_at,
        Search.wall_seconds,
        Search.resumes,
    ]
    counts = select(Trial.search_id, Trial.state, func.count(Trial.id)).group_by(
        Trial.search_id, Trial.state
    )
    with open_store(url).engine.connect() as conn:
        extra = _columns(conn, Search, ("kind", "parent_id"))
        rows = conn.execute(select(*cols, *extra).order_by(Search.id)).all()
        by_state = conn.execute(counts).all()
    frame = pd.DataFrame(rows, columns=[c.key for c in cols] + ["kind", "parent_id"])
    frame["kind"] = frame["kind"].fillna("search")
    for state in STATES:
        frame[state] = 0
    for search_id, state, n in by_state:
        if state in STATES:
            frame.loc[frame["id"] == search_id, state] = n
    return frame


def _space(config: Any) -> dict[str, Any]:
    return (config or {}).get("space") or {}


def _template(config: Any) -> str:
    """The space's fixed whole-model settings that enter a sampled spec's hash."""
    space = _space(config)
    keys = ("drop_path_rate", "head", "stem", "downsample")
    keep = {k: space[k] for k in keys if space.get(k)}
    return json.dumps(keep, sort_keys=True)


@lru_cache(maxsize=32)
def preset_hashes(image_size: int, template: str = "{}") -> dict[str, str]:
    """Content hash -> preset name of every seed design at the search's image size.

    A seed is hashed both plain and with the space's template (drop path, head, stem,
    downsampling), so it is recognised whether it was evaluated as a preset or sampled/enqueued
    through the space. A layout the image size cannot hold (HorNet's unpadded 2x2 downsampling
    below 32 px) was never evaluated there and is left out.
    """
    out: dict[str, str] = {}
    extra = json.loads(template)
    for name, build in PRESETS.items():
        for settings in ({}, extra) if extra else ({},):
            try:
                out[build(image_size=image_size, **settings).content_hash()] = name
            except SpecError:
                continue
    return out


def stage_block_mixers(stage: dict[str, Any]) -> list[str]:
    """Mixer name of each block of a spec stage (overrides applied, a later one wins)."""
    depth = int(stage["depth"])
    names = [stage["mixer"]["name"]] * depth
    for o in stage.get("overrides") or []:
        blocks = tuple(o["blocks"]) if "blocks" in o else None
        mixer = MixerSpec(o["mixer"]["name"])
        where = BlockOverride(mixer, last=o.get("last"), blocks=blocks, every=o.get("every"))
        for i in where.indices(depth):
            names[i] = o["mixer"]["name"]
    return names


@lru_cache(maxsize=1 << 16)
def _arch_summary(spec_json: str) -> tuple[tuple[str, ...], str, str]:
    """(stage labels, one-line description, ``,mixer,...,`` used) of a stored spec.

    A label is ``hyena_pixel`` or ``hyena_pixel+attention×3`` for a hybrid. Cached on the spec
    text: architectures never change, so a running search only pays for its new ones.
    """
    stages = json.loads(spec_json).get("stages") or []
    labels, used = [], set()
    for stage in stages:
        base = stage["mixer"]["name"]
        if not stage.get("overrides"):  # the common case, kept cheap for 10k architectures
            labels.append(base)
            used.add(base)
            continue
        blocks = stage_block_mixers(stage)
        others = [m for m in dict.fromkeys(blocks) if m != base]
        labels.append(base + "".join(f"+{m}×{blocks.count(m)}" for m in others))
        used.update(blocks)
    text = " | ".join(
        f"{s['depth']}×{s['dim']} {label}" for s, label in zip(stages, labels, strict=True)
    )
    return tuple(labels), text, "," + ",".join(sorted(used)) + ","


def stage_columns(frame: pd.DataFrame) -> list[str]:
    """The ``stage_<i>`` label columns (one per stage of the deepest architecture)."""
    return [c for c in frame.columns if c.startswith("stage_")]


def throughput_key(config: Any) -> str | None:
    """The ``setting_key`` of the throughput rows a search measured (its ``throughput`` section),
    or None where the stored config no longer loads (then no throughput noise is shown)."""
    try:
        return stored_throughput_key(config)
    except (ConfigError, TypeError, AttributeError):
        return None


TRIAL_EXTRAS = (
    "duplicate_of",
    "reference",
    "source_trial",
    "val_size",
    "seeds",
    "accuracy_low",
    "accuracy_high",
    "accuracy_std",
)
SPREAD_KEYS = ("q25", "q75", "rounds", "repeats")


@st.cache_data(show_spinner=False, max_entries=16)
def trials(url: str, search_id: int, version: str) -> pd.DataFrame:
    """Every trial of a search with its architecture and throughput row, in one SQL query.

    Adds the objective values (``obj_<name>``), the front membership (distinct completed trials
    under the search's objectives), the knee, each front point's hypervolume contribution, the
    front members tied with it within noise (``tied_with``, ``tie_group``), the seed design a
    trial evaluates (``seed``: the stored ``reference``, else a preset-hash match) and whether the
    rest of the search dominates it (``ref_dominated``), the accuracy interval and the
    throughput quartiles (``thr_q25``/``thr_q75`` from the search's measurement setting),
    per-stage mixer labels, and ``top1``: the final accuracy, or the last validation accuracy of
    a trial stopped early. Duplicates (``state`` DUPLICATE, ``duplicate_of`` the twin) never
    count. Only scalar columns, so the cached frame is cheap to hand out on every rerun.
    """
    last_top1 = (
        select(EpochMetric.val_top1)
        .where(EpochMetric.trial_id == Trial.id)
        .order_by(EpochMetric.epoch.desc())
        .limit(1)
        .correlate(Trial)
        .scalar_subquery()
    )
    with open_store(url).engine.connect() as conn:
        search = conn.execute(
            select(Search.config, Search.objectives, Search.directions).where(
                Search.id == search_id
            )
        ).first()
        config, objectives, directions = search if search else ({}, [], [])
        key = throughput_key(config)
        cols = {
            "number": Trial.number,
            "state": Trial.state,
            "reason": Trial.reason,
            "accuracy": Trial.accuracy,
            "throughput": Trial.throughput,
            "values": cast(Trial.values, Text),
            "arch_hash": Trial.arch_hash,
            "epochs_done": Trial.epochs_done,
            # as text: pandas parses 10k timestamps at once, far faster than row by row
            "started_at": cast(Trial.started_at, Text),
            "finished_at": cast(Trial.finished_at, Text),
            "params": Architecture.params,
            "macs": Architecture.macs,
            "spec": cast(Architecture.spec, Text),
            "last_top1": last_top1,
            **dict(zip(TRIAL_EXTRAS, _columns(conn, Trial, TRIAL_EXTRAS), strict=True)),
            # the trial's own measurement setting only (one row per architecture and setting)
            "spread": cast(Throughput.spread, Text) if key is not None else null(),
        }
        query = (
            select(*cols.values())
            .outerjoin(Architecture, Architecture.hash == Trial.arch_hash)
            .where(Trial.search_id == search_id)
            .order_by(Trial.number)
        )
        if key is not None:
            query = query.outerjoin(
                Throughput,
                and_(Throughput.arch_hash == Trial.arch_hash, Throughput.setting_key == key),
            )
        rows = conn.execute(query).all()
    columns = dict(zip(cols, zip(*rows, strict=True), strict=True)) if rows else {}
    raw = {name: list(columns.get(name, ())) for name in cols}
    floats = (
        "accuracy",
        "throughput",
        "params",
        "macs",
        "last_top1",
        "duplicate_of",
        "source_trial",
        "val_size",
        "accuracy_low",
        "accuracy_high",
        "accuracy_std",
    )
    frame = pd.DataFrame(
        {
            "number": np.array(raw["number"], dtype=int),
            "state": raw["state"],
            "reason": raw["reason"],
            "arch_hash": raw["arch_hash"],
            "epochs_done": np.array(raw["epochs_done"], dtype=int),
            "started_at": pd.to_datetime(raw["started_at"], format="ISO8601"),
            "finished_at": pd.to_datetime(raw["finished_at"], format="ISO8601"),
            "reference": raw["reference"],
            "n_seeds": np.array(raw["seeds"], dtype=float),
            **{name: np.array(raw[name], dtype=float) for name in floats},
        }
    )
    spreads = [json.loads(v) if v and v != "null" else None for v in raw["spread"]]
    for k in SPREAD_KEYS:
        frame[f"thr_{k}"] = np.array(
            [
                float(s[k])
                if isinstance(s, dict) and isinstance(s.get(k), (int, float))
                else np.nan
                for s in spreads
            ],
            dtype=float,
        )
    values = [json.loads(v) if v and v != "null" else None for v in raw["values"]]
    for i, name in enumerate(objectives):
        frame[f"obj_{name}"] = np.array(
            [v[i] if v and len(v) > i else np.nan for v in values], dtype=float
        )
    summaries = [_arch_summary(s) if s else ((), "", ",") for s in raw["spec"]]
    n_stages = max((len(s[0]) for s in summaries), default=0)
    for k in range(n_stages):
        frame[f"stage_{k + 1}"] = [s[0][k] if len(s[0]) > k else "" for s in summaries]
    frame["arch"] = [s[1] for s in summaries]
    frame["mixers"] = [" · ".join(s[0]) for s in summaries]
    frame["mixers_used"] = [s[2] for s in summaries]
    frame["top1"] = frame["accuracy"].fillna(frame["last_top1"])
    frame["params_m"] = frame["params"] / 1e6
    with np.errstate(divide="ignore"):
        frame["latency_ms"] = 1000.0 / frame["throughput"]
    image_size = int(_space(config).get("image_size", 224))
    presets = frame["arch_hash"].map(preset_hashes(image_size, _template(config)))
    frame["seed"] = frame["reference"].where(frame["reference"].notna(), presets)
    mark_duplicates(frame)
    _add_front(frame, list(objectives), list(directions))
    _add_ties(frame, list(objectives))
    _add_reference_dominance(frame, list(objectives), list(directions))
    return frame


def mark_duplicates(frame: pd.DataFrame) -> None:
    """State DUPLICATE for every trial whose architecture the search already trained.

    A trial with ``duplicate_of`` is one. So is a completed trial whose architecture an earlier
    completed trial of the search has (a store written before DUPLICATE existed recorded reused
    results as COMPLETE); the twin kept is the reference trial, else the lowest number.
    """
    frame.loc[frame["duplicate_of"].notna(), "state"] = "DUPLICATE"
    done = frame[(frame["state"] == "COMPLETE") & frame["arch_hash"].notna()]
    if done.empty:
        return
    done = done.assign(_plain=done["seed"].isna()).sort_values(["_plain", "number"])
    twin = done.groupby("arch_hash")["number"].transform("first")
    extra = twin[twin != done["number"]]
    frame.loc[extra.index, "state"] = "DUPLICATE"
    frame.loc[extra.index, "duplicate_of"] = extra.astype(float)


def objective_matrix(frame: pd.DataFrame, objectives: Sequence[str]) -> np.ndarray:
    """The objective vectors as an (n, d) float array; NaN rows where a trial has none."""
    return frame[[f"obj_{name}" for name in objectives]].to_numpy(dtype=float)


def noise_bounds(frame: pd.DataFrame, objectives: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Each objective's interval per trial as two (n, d) arrays (lows, highs).

    Accuracy: the stored 95% Wilson interval; throughput: the interquartile range of the timed
    blocks; params and MACs are exact (low == high == value), as is an objective whose interval
    was not recorded.
    """
    lows, highs = [], []
    for name in objectives:
        value = frame[f"obj_{name}"].to_numpy(dtype=float)
        low_col, high_col = NOISE_COLUMNS.get(name, (None, None))
        low = frame[low_col].to_numpy(dtype=float) if low_col else value
        high = frame[high_col].to_numpy(dtype=float) if high_col else value
        known = ~(np.isnan(low) | np.isnan(high))
        lows.append(np.where(known, low, value))
        highs.append(np.where(known, high, value))
    n = len(frame)
    if not lows:
        return np.empty((n, 0)), np.empty((n, 0))
    return np.column_stack(lows), np.column_stack(highs)


def tie_groups(tied: Sequence[Sequence[int]]) -> list[int]:
    """Connected components of the tie graph: a group number per point, -1 if tied to none."""
    group = [-1] * len(tied)
    count = 0
    for start, partners in enumerate(tied):
        if group[start] >= 0 or not partners:
            continue
        group[start], stack = count, [start]
        while stack:
            for j in tied[stack.pop()]:
                if group[j] < 0:
                    group[j] = count
                    stack.append(j)
        count += 1
    return group


def _add_front(frame: pd.DataFrame, objectives: Sequence[str], directions: Sequence[str]) -> None:
    """Front, knee and hypervolume contribution columns, from completed trials only."""
    frame["on_front"] = False
    frame["knee"] = False
    frame["hv_contribution"] = np.nan
    complete = frame.index[frame["state"] == "COMPLETE"]
    if not objectives or not len(complete):
        return
    points = objective_matrix(frame.loc[complete], objectives)
    mask = non_dominated_mask(points, directions)
    frame.loc[complete[mask], "on_front"] = True
    reference = default_reference(points, directions)
    contrib = hypervolume_contributions(points, directions, reference)
    frame.loc[complete[mask], "hv_contribution"] = contrib[mask]
    if mask.any():
        frame.loc[complete[knee_point(points, directions)], "knee"] = True


def _add_ties(frame: pd.DataFrame, objectives: Sequence[str]) -> None:
    """``tied_with`` (trial numbers, as text) and ``tie_group`` of the front members."""
    frame["tied_with"] = ""
    frame["tie_group"] = -1
    front = frame.index[frame["on_front"]]
    if not objectives or len(front) < 2:
        return
    lows, highs = noise_bounds(frame.loc[front], objectives)
    tied = tied_with(lows, highs)
    numbers = frame.loc[front, "number"].to_numpy()
    frame.loc[front, "tied_with"] = [", ".join(str(numbers[j]) for j in t) for t in tied]
    frame.loc[front, "tie_group"] = tie_groups(tied)


def _add_reference_dominance(
    frame: pd.DataFrame, objectives: Sequence[str], directions: Sequence[str]
) -> None:
    """``ref_dominated``: is a completed seed design dominated by a non-seed completed trial?"""
    frame["ref_dominated"] = pd.Series(pd.NA, index=frame.index, dtype="boolean")
    done = frame["state"] == "COMPLETE"
    refs = frame.index[done & frame["seed"].notna()]
    if not objectives or not len(refs):
        return
    points = objective_matrix(frame.loc[refs], objectives)
    keep = refs[~np.isnan(points).any(axis=1)]
    others = objective_matrix(frame[done & frame["seed"].isna()], objectives)
    frame.loc[keep, "ref_dominated"] = dominated_by(
        objective_matrix(frame.loc[keep], objectives), others, directions
    )


def reference_summary(frame: pd.DataFrame) -> tuple[int, int, list[str]]:
    """(seed designs judged, how many the search dominates, names of those it does not)."""
    judged = frame[frame["ref_dominated"].notna()]
    dominated = judged["ref_dominated"].astype(bool)
    return len(judged), int(dominated.sum()), list(judged.loc[~dominated, "seed"])


def validation_runs(searches: pd.DataFrame, search_id: int) -> pd.DataFrame:
    """The validation runs (``kind`` validation) whose parent is search ``search_id``."""
    parent = pd.to_numeric(searches["parent_id"], errors="coerce")
    return searches[(searches["kind"] == "validation") & (parent == search_id)]


def validation_front(
    pairs: pd.DataFrame, objectives: Sequence[str], directions: Sequence[str]
) -> np.ndarray:
    """Non-dominated mask of validated trials at validation fidelity: the validation accuracy
    in place of the proxy accuracy, the parent trial's other objectives unchanged."""
    points = objective_matrix(pairs, objectives).copy()
    if "accuracy" in objectives:
        points[:, list(objectives).index("accuracy")] = pairs["validation"].to_numpy(float)
    return non_dominated_mask(points, directions)


@st.cache_data(show_spinner=False, max_entries=16)
def validation_pairs(
    url: str,
    search_id: int,
    child_id: int,
    version: str,
    objectives: tuple[str, ...],
    directions: tuple[str, ...],
) -> pd.DataFrame:
    """One row per parent trial a validation run retrained: proxy and validation accuracy with
    their intervals, the parent's objectives, its front membership and the validation front.

    A validation trial names the parent trial it retrains in ``source_trial``; only completed
    trials on both sides pair up, the newest retraining of a parent trial wins.
    """
    parent = trials(url, search_id, version)
    child = trials(url, child_id, version)
    done = parent[(parent["state"] == "COMPLETE") & parent["accuracy"].notna()]
    proxy = done.set_index("number")
    val = child[(child["state"] == "COMPLETE") & child["accuracy"].notna()]
    val = val[val["source_trial"].isin(proxy.index)]
    val = val.sort_values("number").drop_duplicates("source_trial", keep="last")
    source = val["source_trial"].astype(int).to_numpy()
    p = proxy.loc[source]
    pairs = pd.DataFrame(
        {
            "trial": source,
            "validation_trial": val["number"].to_numpy(),
            "mixers": p["mixers"].to_numpy(),
            "proxy": p["accuracy"].to_numpy(),
            "proxy_low": p["accuracy_low"].to_numpy(),
            "proxy_high": p["accuracy_high"].to_numpy(),
            "validation": val["accuracy"].to_numpy(),
            "validation_low": val["accuracy_low"].to_numpy(),
            "validation_high": val["accuracy_high"].to_numpy(),
            "validation_seeds": val["n_seeds"].to_numpy(),
            "validation_images": val["val_size"].to_numpy(),
            "on_front": p["on_front"].to_numpy(dtype=bool),
            **{f"obj_{name}": p[f"obj_{name}"].to_numpy() for name in objectives},
        }
    )
    pairs["validation_front"] = validation_front(pairs, objectives, directions)
    pairs["holds"] = pairs["on_front"] & pairs["validation_front"]
    return pairs.sort_values("trial").reset_index(drop=True)


@st.cache_data(show_spinner=False, max_entries=16)
def validation_agreement(
    url: str,
    search_id: int,
    child_id: int,
    version: str,
    objectives: tuple[str, ...],
    directions: tuple[str, ...],
) -> RankAgreement | None:
    """Kendall tau of proxy against validation accuracy with its bootstrap interval; None
    below the 3 pairs it needs."""
    pairs = validation_pairs(url, search_id, child_id, version, objectives, directions)
    if len(pairs) < 3:
        return None
    return rank_agreement(pairs["proxy"].to_numpy(), pairs["validation"].to_numpy())


def search_hypervolume(
    frame: pd.DataFrame, objectives: Sequence[str], directions: Sequence[str]
) -> float:
    """Hypervolume of the completed trials (reference from :func:`default_reference`)."""
    points = objective_matrix(frame[frame["state"] == "COMPLETE"], objectives)
    if not len(points):
        return 0.0
    return hypervolume(points, directions, default_reference(points, directions))


def front_2d(frame: pd.DataFrame, x: str, x_direction: str) -> np.ndarray:
    """Mask of the rows of ``frame`` on the (top-1 up, ``x`` better) front; O(n log n)."""
    points = frame[["top1", x]].to_numpy(dtype=float)
    return non_dominated_mask(points, ["maximize", x_direction])


@st.cache_data(show_spinner=False, max_entries=16)
def hypervolume_history(
    url: str, search_id: int, version: str, objectives: tuple[str, ...], directions: tuple[str, ...]
) -> pd.DataFrame:
    """Hypervolume after each completed trial, in finishing order.

    The reference is fixed from all completed trials so the curve is comparable along time. The
    front is kept incrementally: a new point is checked against the current front only, so 10k
    trials take O(n * front) rather than one full hypervolume per trial.
    """
    frame = trials(url, search_id, version)
    done = frame[frame["state"] == "COMPLETE"].sort_values(["finished_at", "number"])
    points = objective_matrix(done, objectives)
    columns = ["number", "finished_at", "hypervolume", "front_size"]
    if not len(points):
        return pd.DataFrame(columns=columns)
    reference = default_reference(points, directions)
    signs = np.array([-1.0 if d == "maximize" else 1.0 for d in directions])
    y = points * signs
    front = np.empty((0, len(directions)))
    value, history = 0.0, []
    for p in y:
        if np.isnan(p).any():
            history.append((value, len(front)))
            continue
        dominated = ((front <= p).all(axis=1) & (front < p).any(axis=1)).any()
        if not dominated:
            candidates = np.vstack([front, p])
            front = candidates[non_dominated_mask(candidates, ["minimize"] * len(signs))]
            value = hypervolume(front * signs, directions, reference)
        history.append((value, len(front)))
    out = done[["number", "finished_at"]].reset_index(drop=True)
    out["hypervolume"] = [h[0] for h in history]
    out["front_size"] = [h[1] for h in history]
    return out


def trials_over_time(frame: pd.DataFrame) -> pd.DataFrame:
    """Cumulative finished trials per state, by finishing time (one row per finished trial)."""
    done = frame.dropna(subset=["finished_at"]).sort_values(["finished_at", "number"])
    out = pd.DataFrame({"finished_at": done["finished_at"].to_numpy()})
    for state in ("COMPLETE", "PRUNED", "FAIL"):
        out[state] = (done["state"] == state).cumsum().to_numpy()
    return out


@st.cache_data(show_spinner=False, max_entries=64)
def trial_epochs(url: str, search_id: int, number: int, version: str) -> pd.DataFrame:
    """The learning curve of one trial: one row per proxy-training epoch."""
    cols = [
        EpochMetric.epoch,
        EpochMetric.val_top1,
        EpochMetric.val_loss,
        EpochMetric.train_loss,
        EpochMetric.elapsed_s,
        EpochMetric.images_per_s,
    ]
    query = (
        select(*cols)
        .join(Trial, Trial.id == EpochMetric.trial_id)
        .where(Trial.search_id == search_id, Trial.number == number)
        .order_by(EpochMetric.epoch)
    )
    with open_store(url).engine.connect() as conn:
        rows = conn.execute(query).all()
    return pd.DataFrame(rows, columns=[c.key for c in cols])


@st.cache_data(show_spinner=False, max_entries=64)
def sampled_params(url: str, search_id: int, number: int) -> dict[str, Any]:
    """The Optuna parameters a trial was sampled with (fixed once the trial starts)."""
    query = select(Trial.params).where(Trial.search_id == search_id, Trial.number == number)
    with open_store(url).engine.connect() as conn:
        return conn.execute(query).scalar() or {}


@st.cache_data(show_spinner=False, max_entries=64)
def architecture_spec(url: str, arch_hash: str) -> dict[str, Any] | None:
    """The stored spec of one architecture (written once, when its first trial starts)."""
    arch = open_store(url).architecture(arch_hash)
    return arch.spec if arch is not None else None


@st.cache_data(show_spinner=False, max_entries=64)
def throughputs(url: str, arch_hash: str, version: str) -> pd.DataFrame:
    """Every throughput measurement of one architecture, one row per measurement setting."""
    cols = [
        Throughput.images_per_s,
        Throughput.peak_memory_mb,
        Throughput.device_name,
        Throughput.spread,
        Throughput.setting,
        Throughput.measured_at,
    ]  # named, not the whole row: a store of an older schema lacks later columns
    query = select(*cols).where(Throughput.arch_hash == arch_hash).order_by(Throughput.id)
    with open_store(url).engine.connect() as conn:
        measured = conn.execute(query).all()
    rows = []
    for t in measured:
        rows.append(
            {
                "images_per_s": round(t.images_per_s, 1),
                "latency_ms": round(1000.0 / t.images_per_s, 4) if t.images_per_s else np.nan,
                "peak_memory_mb": round(t.peak_memory_mb, 1) if t.peak_memory_mb else None,
                "device_name": t.device_name,
                **{
                    f"spread.{k}": round(v, 3) if isinstance(v, float) else v
                    for k, v in (t.spread or {}).items()
                },
                **dict(t.setting or {}),
                "measured_at": t.measured_at,
            }
        )
    return pd.DataFrame(rows)


def format_duration(seconds: float) -> str:
    """``3d 4h`` / ``1h 05m`` / ``4m 12s`` / ``38s``: short enough for a metric tile."""
    seconds = max(0.0, float(seconds))
    if seconds >= 86400:
        return f"{int(seconds // 86400)}d {int(seconds % 86400 // 3600)}h"
    if seconds >= 3600:
        return f"{int(seconds // 3600)}h {int(seconds % 3600 // 60):02d}m"
    if seconds >= 60:
        return f"{int(seconds // 60)}m {int(seconds % 60):02d}s"
    return f"{seconds:.0f}s"


def elapsed_seconds(search: pd.Series, now: datetime) -> float:
    """Wall time of a search: recorded at the end of each run, counted live on a first run.

    A resumed search still running only shows its earlier runs' time: the store does not
    record when the current run started.
    """
    if search["status"] == "running" and not search["resumes"]:
        return max(0.0, (now - pd.Timestamp(search["created_at"]).to_pydatetime()).total_seconds())
    return float(search["wall_seconds"] or 0.0)
