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
from sqlalchemy import Text, cast, func, select

from nas.models.presets import PRESETS
from nas.models.spec import BlockOverride, MixerSpec
from nas.search.pareto import (
    default_reference,
    hypervolume,
    hypervolume_contributions,
    knee_point,
    non_dominated_mask,
)
from nas.store import SearchStore
from nas.store.models import Architecture, EpochMetric, Search, Throughput, Trial

STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING")
# What the front chart can put on its x axis: column, label, direction of "better".
AXES: dict[str, tuple[str, str]] = {
    "throughput": ("throughput (img/s)", "maximize"),
    "latency_ms": ("latency (ms / image)", "minimize"),
    "params_m": ("parameters (M)", "minimize"),
    "gmacs": ("MACs (G)", "minimize"),
}


@st.cache_resource(show_spinner=False)
def open_store(url: str) -> SearchStore:
    """One read-only store (and connection pool) per URL for the whole server."""
    return SearchStore(url, read_only=True)


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


@st.cache_data(show_spinner=False, max_entries=16)
def searches(url: str, version: str) -> pd.DataFrame:
    """One row per search with its objectives, settings and trial counts by state."""
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
        rows = conn.execute(select(*cols).order_by(Search.id)).all()
        by_state = conn.execute(counts).all()
    frame = pd.DataFrame(rows, columns=[c.key for c in cols])
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
    keep = {k: space[k] for k in ("drop_path_rate", "head", "stem") if space.get(k)}
    return json.dumps(keep, sort_keys=True)


@lru_cache(maxsize=32)
def preset_hashes(image_size: int, template: str = "{}") -> dict[str, str]:
    """Content hash -> preset name of every seed design at the search's image size.

    A seed is hashed both plain and with the space's template (drop path, head, stem), so it is
    recognised whether it was evaluated as a preset or sampled/enqueued through the space.
    """
    out: dict[str, str] = {}
    extra = json.loads(template)
    for name, build in PRESETS.items():
        out[build(image_size=image_size).content_hash()] = name
        if extra:
            out[build(image_size=image_size, **extra).content_hash()] = name
    return out


def stage_block_mixers(stage: dict[str, Any]) -> list[str]:
    """Mixer name of each block of a spec stage (overrides applied, a later one wins)."""
    depth = int(stage["depth"])
    names = [stage["mixer"]["name"]] * depth
    for o in stage.get("overrides") or []:
        blocks = tuple(o["blocks"]) if "blocks" in o else None
        where = BlockOverride(MixerSpec(o["mixer"]["name"]), last=o.get("last"), blocks=blocks)
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


@st.cache_data(show_spinner=False, max_entries=16)
def trials(url: str, search_id: int, version: str) -> pd.DataFrame:
    """Every trial of a search with its architecture, in one SQL query.

    Adds the objective values (``obj_<name>``), the front membership (completed trials under
    the search's objectives), the knee, each front point's hypervolume contribution, the
    matching seed design, per-stage mixer labels, and ``top1``: the final accuracy, or the
    last validation accuracy of a trial stopped early. Only scalar columns, so the cached frame
    is cheap to hand out on every rerun.
    """
    last_top1 = (
        select(EpochMetric.val_top1)
        .where(EpochMetric.trial_id == Trial.id)
        .order_by(EpochMetric.epoch.desc())
        .limit(1)
        .correlate(Trial)
        .scalar_subquery()
    )
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
    }
    query = (
        select(*cols.values())
        .outerjoin(Architecture, Architecture.hash == Trial.arch_hash)
        .where(Trial.search_id == search_id)
        .order_by(Trial.number)
    )
    with open_store(url).engine.connect() as conn:
        rows = conn.execute(query).all()
        search = conn.execute(
            select(Search.config, Search.objectives, Search.directions).where(
                Search.id == search_id
            )
        ).first()
    config, objectives, directions = search if search else ({}, [], [])
    columns = dict(zip(cols, zip(*rows, strict=True), strict=True)) if rows else {}
    raw = {name: list(columns.get(name, ())) for name in cols}
    frame = pd.DataFrame(
        {
            "number": np.array(raw["number"], dtype=int),
            "state": raw["state"],
            "reason": raw["reason"],
            "arch_hash": raw["arch_hash"],
            "epochs_done": np.array(raw["epochs_done"], dtype=int),
            "started_at": pd.to_datetime(raw["started_at"], format="ISO8601"),
            "finished_at": pd.to_datetime(raw["finished_at"], format="ISO8601"),
            **{
                name: np.array(raw[name], dtype=float)
                for name in ("accuracy", "throughput", "params", "macs", "last_top1")
            },
        }
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
    frame["gmacs"] = frame["macs"] / 1e9
    with np.errstate(divide="ignore"):
        frame["latency_ms"] = 1000.0 / frame["throughput"]
    image_size = int(_space(config).get("image_size", 224))
    frame["seed"] = frame["arch_hash"].map(preset_hashes(image_size, _template(config)))
    _add_front(frame, list(objectives), list(directions))
    return frame


def objective_matrix(frame: pd.DataFrame, objectives: Sequence[str]) -> np.ndarray:
    """The objective vectors as an (n, d) float array; NaN rows where a trial has none."""
    return frame[[f"obj_{name}" for name in objectives]].to_numpy(dtype=float)


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
    rows = []
    for t in open_store(url).throughputs(arch_hash):
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
