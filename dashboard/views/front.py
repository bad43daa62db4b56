"""The front page: accuracy against a cost axis with the Pareto front, and its ranking table."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import data
from dashboard.views.common import (
    FRONT_COLOR,
    KNEE_COLOR,
    SEED_COLOR,
    STATE_COLORS,
    Context,
    is_fraction,
    md,
    mixer_color,
    plain,
)
from nas import units

# Point clouds above this size are drawn with WebGL so 10k trials stay interactive.
WEBGL_FROM = 1500
COMPARE_DASHES = ("dash", "dot", "dashdot", "longdash")
X_HOVER = {
    "throughput": "%{x:,.0f} img/s",
    "latency_ms": "%{x:.3f} ms",
    "params_m": "%{x:.3~r} M params",
    "macs": "%{x:.3~s} MACs",  # SI prefix: 850k MACs, 1.8G MACs
}
# Zoom of the y axis on the completed trials: this share of their span above and below.
Y_MARGIN = 0.08
MIN_Y_SPAN = 0.01
# Few points (front, seeds, knee): every figure in the hover. Clouds: numbers only in
# customdata and one text per point, which serialise fast for 10k trials.
DETAILED_HOVER = (
    "<b>trial %{customdata[0]}</b> · %{customdata[1]}<br>%{customdata[2]}<br>"
    "top-1 %{customdata[3]} · %{customdata[4]} img/s · %{customdata[5]} ms<br>"
    "%{customdata[6]} · %{customdata[7]}<extra></extra>"
)
TIE_FILL = "rgba(120, 120, 120, 0.16)"
ERROR_COLOR = "rgba(31, 59, 115, 0.55)"
CLOUD_ERROR_COLOR = "rgba(76, 120, 168, 0.22)"


def filter_trials(
    frame: pd.DataFrame, states: list[str], mixers: list[str], stage: int | None
) -> pd.DataFrame:
    """Trials in ``states`` using any of ``mixers`` (in stage ``stage``, 0-based, or anywhere)."""
    keep = frame["state"].isin(states)
    if mixers:
        if stage is None:
            pattern = "|".join(re.escape(f",{m},") for m in mixers)
            keep &= frame["mixers_used"].str.contains(pattern, regex=True)
        else:
            names = frame[f"stage_{stage + 1}"].str.replace(r"×\d+", "", regex=True)
            keep &= names.map(lambda label: bool(set(label.split("+")) & set(mixers)))
    return frame[keep]


def stage_mixer(frame: pd.DataFrame, stage: int) -> pd.Series:
    """The main mixer of stage ``stage`` (0-based) of every trial."""
    return frame[f"stage_{stage + 1}"].str.split("+").str[0]


def _detailed(frame: pd.DataFrame, fraction: bool) -> np.ndarray:
    scale = 100.0 if fraction else 1.0
    status = [
        state if state == "COMPLETE" else f"{state} after {epochs} ep"
        for state, epochs in zip(frame["state"], frame["epochs_done"], strict=True)
    ]
    status = [
        f"{s} · ★ {plain(seed)}" if isinstance(seed, str) else s
        for s, seed in zip(status, frame["seed"], strict=True)
    ]
    status = [
        f"{s} · tied with {tied}" if tied else s
        for s, tied in zip(status, frame["tied_with"], strict=True)
    ]

    def fmt(col: str, spec: str, factor: float = 1.0) -> list[str]:
        return [format(v * factor, spec) if pd.notna(v) else "—" for v in frame[col]]

    def interval(low: str, high: str, spec: str, factor: float = 1.0) -> list[str]:
        return [
            f" [{a * factor:{spec}}, {b * factor:{spec}}]" if pd.notna(a) and pd.notna(b) else ""
            for a, b in zip(frame[low], frame[high], strict=True)
        ]

    top1 = [
        f"{v} %{ci}"
        for v, ci in zip(
            fmt("top1", ".2f", scale),
            interval("accuracy_low", "accuracy_high", ".2f", scale),
            strict=True,
        )
    ]
    speed = [
        v + ci
        for v, ci in zip(
            fmt("throughput", ",.0f"), interval("thr_q25", "thr_q75", ",.0f"), strict=True
        )
    ]
    return np.column_stack(
        [
            frame["number"].to_numpy(),
            status,
            [plain(a) for a in frame["arch"]],
            top1,
            speed,
            fmt("latency_ms", ".3f"),
            [units.params(v) for v in frame["params"]],
            [units.macs(v) for v in frame["macs"]],
        ]
    )


def x_interval(frame: pd.DataFrame, x: str) -> tuple[np.ndarray, np.ndarray]:
    """Each trial's noise interval on axis ``x``: throughput's interquartile range, latency's
    1000/q75..1000/q25; NaN where unknown (params and MACs are exact)."""
    q25, q75 = frame["thr_q25"].to_numpy(float), frame["thr_q75"].to_numpy(float)
    if x == "throughput":
        return q25, q75
    if x == "latency_ms":
        with np.errstate(divide="ignore"):
            return 1000.0 / q75, 1000.0 / q25
    nan = np.full(len(frame), np.nan)
    return nan, nan


def error_bars(frame: pd.DataFrame, x: str, color: str, width: int = 0) -> dict:
    """``error_x``/``error_y`` of completed points: top-1's 95% interval (in the y axis' units:
    the stored fractions, shown as percent by the tick format) and the x axis' interval. NaN
    where a trial has none (older rows without quartiles); none at all when nobody has one."""
    style = {"type": "data", "symmetric": False, "color": color, "thickness": 1, "width": width}
    out = {}
    y = frame["top1"].to_numpy(float)
    low, high = frame["accuracy_low"].to_numpy(float), frame["accuracy_high"].to_numpy(float)
    if np.isfinite(low).any():
        out["error_y"] = style | {
            "array": np.maximum(high - y, 0.0),
            "arrayminus": np.maximum(y - low, 0.0),
        }
    xv = frame[x].to_numpy(float)
    x_low, x_high = x_interval(frame, x)
    if np.isfinite(x_low).any():
        out["error_x"] = style | {
            "array": np.maximum(x_high - xv, 0.0),
            "arrayminus": np.maximum(xv - x_low, 0.0),
        }
    return out


def tie_bands(front: pd.DataFrame, x: str) -> list[go.Scatter]:
    """A light grey box per group of front members tied within noise, spanning their intervals.

    ``front`` holds the search's front members that are plotted; a group needs two of them.
    """
    members = front[front["tie_group"] >= 0]
    x_low, x_high = x_interval(members, x)
    xv = members[x].to_numpy(float)
    y = members["top1"].to_numpy(float)
    box = pd.DataFrame(
        {
            "group": members["tie_group"].to_numpy(),
            "number": members["number"].to_numpy(),
            "x0": np.where(np.isnan(x_low), xv, x_low),
            "x1": np.where(np.isnan(x_high), xv, x_high),
            "y0": members["accuracy_low"].fillna(members["top1"]).to_numpy(float),
            "y1": members["accuracy_high"].fillna(members["top1"]).to_numpy(float),
            "y": y,
        }
    )
    bands = []
    for _, part in box.groupby("group"):
        if len(part) < 2:
            continue
        x0, x1 = part["x0"].min(), part["x1"].max()
        y0, y1 = part["y0"].min(), part["y1"].max()
        numbers = ", ".join(f"#{n}" for n in part["number"])
        bands.append(
            go.Scatter(
                x=[x0, x1, x1, x0, x0],
                y=[y0, y0, y1, y1, y0],
                mode="lines",
                fill="toself",
                fillcolor=TIE_FILL,
                line={"width": 0},
                name="tied within noise",
                legendgroup="ties",
                showlegend=not bands,
                hoverinfo="skip",
                meta=numbers,
            )
        )
    return bands


def zoom_range(
    complete: pd.DataFrame, noise: bool, fraction: bool, others: list[pd.Series]
) -> list[float] | None:
    """The y range of the completed trials (their intervals too when drawn) and of overlaid
    fronts, with a margin: pruned trials far below stay plotted (autoscale shows them) but no
    longer squash the front into a sliver. None without a completed value."""
    columns = ["top1", "accuracy_low", "accuracy_high"] if noise else ["top1"]
    values = np.concatenate(
        [complete[c].to_numpy(float) for c in columns] + [o.to_numpy(float) for o in others]
    )
    values = values[np.isfinite(values)]
    if not values.size:
        return None
    low, high = float(values.min()), float(values.max())
    span = max(high - low, MIN_Y_SPAN * (1.0 if fraction else 100.0))
    pad = Y_MARGIN * span + (span - (high - low)) / 2
    return [low - pad, high + pad]


def _cloud(
    frame: pd.DataFrame, x: str, name: str, fraction: bool, errors: dict | None = None, **marker
) -> go.Scatter:
    """A faded cloud of many trials; hover shows the number, mixers and both values."""
    kind = go.Scattergl if len(frame) >= WEBGL_FROM else go.Scatter
    y_hover = "%{y:.2%}" if fraction else "%{y:.2f} %"
    return kind(
        x=frame[x].to_numpy(),
        y=frame["top1"].to_numpy(),
        mode="markers",
        name=name,
        marker=marker,
        **(errors or {}),
        customdata=frame["number"].to_numpy(),
        text=frame["mixers"].map(plain).to_numpy(),
        hovertemplate=f"<b>trial %{{customdata}}</b> · {name.split(' (')[0]}<br>%{{text}}<br>"
        f"top-1 {y_hover} · {X_HOVER[x]}<extra></extra>",
    )


def front_figure(
    ctx: Context,
    shown: pd.DataFrame,
    x: str,
    color_stage: int | None,
    compare: list[tuple[str, pd.DataFrame]],
    noise: bool = True,
) -> go.Figure:
    """The scatter of shown trials, the front of the shown completed trials drawn on top.

    With ``noise``, completed points carry their intervals as error bars and the search's front
    members tied within noise sit in grey bands.
    """
    label, direction = data.AXES[x]
    fraction = is_fraction(ctx.trials["top1"])
    plotted = shown[shown["top1"].notna() & np.isfinite(shown[x])]
    complete = plotted[plotted["state"] == "COMPLETE"]
    front = complete[data.front_2d(complete, x, direction)].sort_values(x)
    rest = complete.drop(front.index)
    # A big cloud gets smaller, lighter points so the front stays readable above it.
    size, fade = (6, 0.35) if len(plotted) < WEBGL_FROM else (4, 0.25)

    def bars(part: pd.DataFrame, color: str = ERROR_COLOR, width: int = 3) -> dict:
        return error_bars(part, x, color, width) if noise else {}

    fig = go.Figure()
    if noise:
        for band in tie_bands(complete[complete["on_front"]], x):
            fig.add_trace(band)
    for state, symbol in (("PRUNED", "x-thin-open"), ("FAIL", "triangle-up-open")):
        part = plotted[plotted["state"] == state]
        if len(part):
            color = STATE_COLORS[state]
            fig.add_trace(
                _cloud(
                    part,
                    x,
                    f"{state.lower()} ({len(part)})",
                    fraction,
                    color=color,
                    symbol=symbol,
                    size=size + 3,  # open thin symbols read smaller than filled dots
                    opacity=fade,
                    line={"width": 1, "color": color},
                )
            )
    if color_stage is None:
        color = STATE_COLORS["COMPLETE"]
        fig.add_trace(
            _cloud(
                rest,
                x,
                f"dominated ({len(rest)})",
                fraction,
                bars(rest, CLOUD_ERROR_COLOR, 0),
                color=color,
                size=size,
                opacity=fade,
            )
        )
    else:
        by_mixer = stage_mixer(rest, color_stage)
        for mixer in sorted(by_mixer.unique()):
            part = rest[by_mixer == mixer]
            fig.add_trace(
                _cloud(
                    part,
                    x,
                    f"{plain(mixer)} ({len(part)})",
                    fraction,
                    bars(part, CLOUD_ERROR_COLOR, 0),
                    color=mixer_color(mixer),
                    size=size,
                    opacity=fade + 0.15,
                )
            )
    other_fronts = []
    for i, (name, other) in enumerate(compare):
        done = other[(other["state"] == "COMPLETE") & other["top1"].notna()]
        done = done[np.isfinite(done[x])]
        other_front = done[data.front_2d(done, x, direction)].sort_values(x)
        other_fronts.append(other_front["top1"])
        fig.add_trace(
            go.Scatter(
                x=other_front[x],
                y=other_front["top1"],
                mode="lines+markers",
                name=f"front of {plain(name)}",
                line={"dash": COMPARE_DASHES[i % len(COMPARE_DASHES)], "width": 2},
                marker={"size": 7},
                customdata=_detailed(other_front, fraction),
                hovertemplate=DETAILED_HOVER,
            )
        )
    front_colors = (
        FRONT_COLOR
        if color_stage is None
        else [mixer_color(m) for m in stage_mixer(front, color_stage)]
    )
    fig.add_trace(
        go.Scatter(
            x=front[x],
            y=front["top1"],
            mode="lines+markers",
            name=f"Pareto front ({len(front)})",
            line={"color": FRONT_COLOR, "width": 2.5},
            marker={"size": 10, "color": front_colors, "line": {"width": 1.5, "color": "white"}},
            customdata=_detailed(front, fraction),
            hovertemplate=DETAILED_HOVER,
            **bars(front),
        )
    )
    seeds = complete[complete["seed"].notna()]
    if len(seeds):
        fig.add_trace(
            go.Scatter(
                x=seeds[x],
                y=seeds["top1"],
                mode="markers+text",
                name="seed designs (★)",
                text=[plain(n) for n in seeds["seed"]],  # few: every one is named
                textposition="bottom center",
                textfont={"size": 10, "color": SEED_COLOR},
                marker={"symbol": "star", "size": 13, "color": SEED_COLOR, "line": {"width": 1}},
                customdata=_detailed(seeds, fraction),
                hovertemplate=DETAILED_HOVER,
                **bars(seeds, SEED_COLOR),
            )
        )
    knee = complete[complete["knee"]]
    if len(knee):
        fig.add_trace(
            go.Scatter(
                x=knee[x],
                y=knee["top1"],
                mode="markers+text",
                name="knee",
                text=[f"knee #{n}" for n in knee["number"]],
                textposition="top right",
                marker={"symbol": "diamond", "size": 15, "color": KNEE_COLOR, "line": {"width": 1}},
                customdata=_detailed(knee, fraction),
                hovertemplate=DETAILED_HOVER,
            )
        )
    fig.update_layout(
        height=560,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        xaxis_title=label,
        yaxis_title="validation top-1 (proxy)",
        yaxis_tickformat=".0%" if fraction else None,
        legend={
            "orientation": "h",
            "yanchor": "bottom",
            "y": 1.01,
            "x": 0,
            "itemsizing": "constant",  # legible legend symbols for the small cloud markers
        },
        hovermode="closest",
        plot_bgcolor="white",
    )
    fig.update_xaxes(showgrid=True, gridcolor="#EEE", tickformat="~s" if x == "macs" else None)
    fig.update_yaxes(
        showgrid=True, gridcolor="#EEE", range=zoom_range(complete, noise, fraction, other_fronts)
    )
    return fig


def ranking_table(ctx: Context) -> pd.DataFrame:
    """The search's front (completed trials, its own objectives) ranked by accuracy."""
    front = ctx.trials[ctx.trials["on_front"]].copy()
    total = front["hv_contribution"].sum()
    scale = 100.0 if is_fraction(ctx.trials["top1"]) else 1.0
    table = pd.DataFrame(
        {
            "trial": front["number"],
            "knee": np.where(front["knee"], "◆ knee", ""),  # the chart's diamond; ★ is a seed
            "reference": ["★ " + n if isinstance(n, str) else "" for n in front["seed"]],
            "top-1 %": front["top1"] * scale,
            "top-1 95% CI": _interval_text(front["accuracy_low"], front["accuracy_high"], scale),
            "img/s": front["throughput"],
            "img/s IQR": _interval_text(front["thr_q25"], front["thr_q75"], 1.0, ".0f"),
            "latency ms": front["latency_ms"],
            "params M": front["params_m"],
            "MACs": front["macs"],
            "tied with": front["tied_with"],
            "HV contribution %": 100.0 * front["hv_contribution"] / total if total else np.nan,
            "mixers per stage": front["mixers"],
        }
    )
    for name in ctx.objectives:
        if name not in ("accuracy", "throughput"):
            table[name] = front[f"obj_{name}"]
    return table.sort_values("top-1 %", ascending=False).reset_index(drop=True)


def _interval_text(low: pd.Series, high: pd.Series, scale: float, spec: str = ".2f") -> list[str]:
    return [
        f"{a * scale:{spec}}–{b * scale:{spec}}" if pd.notna(a) and pd.notna(b) else ""
        for a, b in zip(low, high, strict=True)
    ]


def seed_table(ctx: Context) -> pd.DataFrame:
    """Evaluated seed designs (paper designs projected onto the space), beside the front."""
    seeds = ctx.trials[ctx.trials["seed"].notna() & (ctx.trials["state"] != "DUPLICATE")]
    scale = 100.0 if is_fraction(ctx.trials["top1"]) else 1.0
    dominated = seeds["ref_dominated"]
    return pd.DataFrame(
        {
            "seed design": [f"★ {n}" for n in seeds["seed"]],
            "trial": seeds["number"],
            "state": seeds["state"],
            "on front": seeds["on_front"],
            "dominated": ["" if pd.isna(d) else ("yes" if d else "no") for d in dominated],
            "top-1 %": seeds["top1"] * scale,
            "top-1 95% CI": _interval_text(seeds["accuracy_low"], seeds["accuracy_high"], scale),
            "img/s": seeds["throughput"],
            "params M": seeds["params_m"],
            "MACs": seeds["macs"],
        }
    ).reset_index(drop=True)


TABLE_CONFIG = {
    "trial": st.column_config.NumberColumn("trial", format="%d", width="small"),
    "knee": st.column_config.TextColumn("knee", width="small"),
    "top-1 %": st.column_config.NumberColumn("top-1 %", format="%.2f"),
    "img/s": st.column_config.NumberColumn("img/s", format="%.0f"),
    "latency ms": st.column_config.NumberColumn("latency ms", format="%.2f"),
    "params M": st.column_config.NumberColumn("params M", format="%.2f"),
    "MACs": st.column_config.NumberColumn("MACs", format="compact"),
    "tied with": st.column_config.TextColumn(
        "tied with",
        help="front members within noise of this one on every objective (overlapping 95% "
        "accuracy intervals, throughput interquartile ranges; params and MACs exact)",
    ),
    "dominated": st.column_config.TextColumn(
        "dominated", help="does a completed non-seed trial of the search dominate it?"
    ),
    "HV contribution %": st.column_config.ProgressColumn(
        "HV contribution %",
        format="%.1f",
        min_value=0.0,
        max_value=100.0,
        help="exclusive hypervolume of the trial, as a share of the sum over the front",
    ),
}


def render(ctx: Context) -> None:
    frame = ctx.trials
    if not (frame["state"] == "COMPLETE").any():
        st.info("No trial has completed yet: the front appears with the first completed trial.")
    axis_col, scale_col, color_col, state_col = st.columns([1.3, 1, 1.2, 2])
    mixer_col, stage_col, compare_col, noise_col = st.columns([2, 1, 2.5, 0.9])
    x = axis_col.selectbox(
        "x axis", list(data.AXES), format_func=lambda k: data.AXES[k][0], key="front_x"
    )
    log_x = scale_col.segmented_control("scale", ["linear", "log"], default="linear", key="scale")
    stage_names = [c.replace("_", " ") for c in data.stage_columns(frame)]
    color_by = color_col.selectbox(
        "colour by", ["front"] + [f"{s} mixer" for s in stage_names], key="front_color"
    )
    states = state_col.multiselect(
        "states", ["COMPLETE", "PRUNED", "FAIL"], default=["COMPLETE", "PRUNED"], key="states"
    )
    mixers = sorted({m for used in frame["mixers_used"].unique() for m in used.split(",") if m})
    wanted = mixer_col.multiselect("uses mixer", mixers, key="front_mixers")
    stage = stage_col.selectbox("in", ["any stage", *stage_names], key="front_stage")
    searches = ctx.searches
    others = searches[
        (searches["id"] != ctx.search_id)
        & (searches["COMPLETE"] > 0)
        & (searches["kind"] != "validation")
    ]
    ids = dict(zip(others["study_name"], others["id"], strict=True))
    compare_names = compare_col.multiselect(
        "overlay the fronts of other searches",
        list(ids),
        key="compare",
        placeholder="other searches in this store" if ids else "no other search to compare",
        disabled=not ids,
    )
    noise = noise_col.toggle(
        "noise",
        value=True,
        key="front_noise",
        help="error bars (95% top-1 interval, throughput interquartile range) and grey bands "
        "around front members tied within noise",
    )
    stage_index = None if stage == "any stage" else stage_names.index(stage)
    shown = filter_trials(frame, states, wanted, stage_index)
    color_stage = None if color_by == "front" else stage_names.index(color_by[:-6])
    compare = [(name, data.trials(ctx.url, int(ids[name]), ctx.version)) for name in compare_names]
    fig = front_figure(ctx, shown, x, color_stage, compare, noise)
    fig.update_xaxes(type="log" if log_x == "log" else "linear")
    event = st.plotly_chart(
        fig,
        key="front_chart",
        on_select="rerun",
        selection_mode="points",
        config={"displaylogo": False},
    )
    hidden = len(frame) - len(shown[shown["top1"].notna()])
    note = (
        "The line joins the front of the trials shown (under the filters and this axis); "
        "faded points are dominated, pruned (last validation accuracy before stopping) or "
        "failed trials. Error bars: 95% top-1 interval and throughput interquartile range; "
        "grey bands: front members tied within noise; ★ seed designs. The y axis zooms on the "
        "completed trials: autoscale (the chart's toolbar) shows every trial."
    )
    if hidden:
        note += f" {hidden} trials have no accuracy yet or are filtered out."
    st.caption(note + " Click a point to open it.")
    _selected_trial(event)

    st.subheader("Pareto front of the search")
    objectives = zip(ctx.objectives, ctx.directions, strict=True)
    st.caption(
        "Completed trials no other completed trial beats on all objectives "
        f"({', '.join(f'{md(o)} ({md(d[:3])})' for o, d in objectives)}). "
        "Pruned trials and duplicates never count. Click a column header to sort; HV "
        "contribution is the hypervolume lost without the trial; `tied with`: front members "
        "within noise of it on every objective."
    )
    table = ranking_table(ctx)
    st.dataframe(
        table,
        hide_index=True,
        column_config=TABLE_CONFIG,
        height=min(36 * (len(table) + 1) + 4, 640),
        key="front_table",
    )
    seeds = seed_table(ctx)
    if len(seeds):
        st.markdown(
            "**Seed designs evaluated in this search** (papers' designs projected onto the "
            "space, ★ on the chart)"
        )
        st.dataframe(seeds, hide_index=True, column_config=TABLE_CONFIG, key="seed_table")


def _open_trial(number: int) -> None:
    st.session_state["trial_number"] = number
    st.session_state["view"] = "Trial"


def _selected_trial(event) -> None:
    """A button opening the trial clicked on the chart (clouds carry the bare number)."""
    points = event["selection"]["points"] if event else []
    numbers = [
        int(p["customdata"][0] if isinstance(p["customdata"], list) else p["customdata"])
        for p in points
        if p.get("customdata") is not None
    ]
    if numbers:
        number = numbers[0]
        st.button(
            f"Open trial {number} →",
            on_click=_open_trial,
            args=(number,),
            type="primary",
            key="open_selected",
        )
