"""Validation runs of a search: do proxy ranks and the front survive higher-fidelity training?

A validation run (``kind`` validation, ``parent_id`` this search) retrains some of the search's
trials (``source_trial``) at higher fidelity. The view plots proxy against validation accuracy
with both intervals, gives Kendall's tau between them with its bootstrap interval, and recomputes
the front with the validation accuracy in place of the proxy one (the other objectives are the
parent trial's) to say which front members hold.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import data
from dashboard.views.common import (
    FRONT_COLOR,
    KNEE_COLOR,
    STATE_COLORS,
    Context,
    code,
    is_fraction,
    md,
    plain,
)

MIN_PAIRS = 3  # what nas.search.noise.rank_agreement needs
GROUPS = (
    # (column test, legend name, colour)
    ("holds", "front member, holds", FRONT_COLOR),
    ("drops", "front member, dominated at validation", KNEE_COLOR),
    ("joins", "joins the validation front", "#54A24B"),
    ("other", "other validated trials", STATE_COLORS["COMPLETE"]),
)


def _group(pairs: pd.DataFrame) -> pd.Series:
    return pd.Series(
        np.select(
            [
                pairs["holds"],
                pairs["on_front"],
                pairs["validation_front"],
            ],
            ["holds", "drops", "joins"],
            "other",
        ),
        index=pairs.index,
    )


def _bars(value: pd.Series, low: pd.Series, high: pd.Series, color: str) -> dict | None:
    v, lo, hi = (s.to_numpy(float) for s in (value, low, high))
    if not np.isfinite(lo).any():
        return None
    return {
        "type": "data",
        "symmetric": False,
        "array": np.maximum(hi - v, 0.0),
        "arrayminus": np.maximum(v - lo, 0.0),
        "color": color,
        "thickness": 1,
        "width": 2,
    }


def agreement_figure(pairs: pd.DataFrame, fraction: bool) -> go.Figure:
    """Proxy (x) against validation (y) top-1, each point with both 95% intervals."""
    fig = go.Figure()
    groups = _group(pairs)
    fmt = ".2%" if fraction else ".2f"
    for key, name, color in GROUPS:
        part = pairs[groups == key]
        if part.empty:
            continue
        error_x = _bars(part["proxy"], part["proxy_low"], part["proxy_high"], color)
        error_y = _bars(part["validation"], part["validation_low"], part["validation_high"], color)
        fig.add_trace(
            go.Scatter(
                x=part["proxy"],
                y=part["validation"],
                mode="markers",
                name=f"{name} ({len(part)})",
                marker={"size": 9, "color": color, "line": {"width": 1, "color": "white"}},
                error_x=error_x,
                error_y=error_y,
                customdata=np.column_stack(
                    [part["trial"], part["validation_trial"], part["mixers"].map(plain)]
                ),
                hovertemplate="<b>trial %{customdata[0]}</b> (validation trial "
                "%{customdata[1]})<br>%{customdata[2]}<br>"
                f"proxy %{{x:{fmt}}} · validation %{{y:{fmt}}}<extra></extra>",
            )
        )
    fig.update_layout(
        height=460,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        xaxis_title="proxy top-1 (search)",
        yaxis_title="validation top-1 (higher fidelity)",
        xaxis_tickformat=".0%" if fraction else None,
        yaxis_tickformat=".0%" if fraction else None,
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.01, "x": 0},
        plot_bgcolor="white",
        hovermode="closest",
    )
    fig.update_xaxes(showgrid=True, gridcolor="#EEE")
    fig.update_yaxes(showgrid=True, gridcolor="#EEE")
    return fig


def held_summary(pairs: pd.DataFrame, front_size: int) -> str:
    """``k of m front members hold`` with the members that hold, drop and join."""
    validated = pairs[pairs["on_front"]]
    held = validated[validated["holds"]]
    text = f"{len(held)} of {len(validated)} front members hold"
    if front_size > len(validated):
        text += f" ({front_size - len(validated)} front members not validated)"
    lists = [
        ("hold", held["trial"]),
        ("dominated at validation", validated.loc[~validated["holds"], "trial"]),
        ("join", pairs.loc[pairs["validation_front"] & ~pairs["on_front"], "trial"]),
    ]
    for label, numbers in lists:
        if len(numbers):
            text += f"; {label}: " + ", ".join(f"#{n}" for n in numbers)
    return text


def pairs_table(pairs: pd.DataFrame, fraction: bool) -> pd.DataFrame:
    scale = 100.0 if fraction else 1.0

    def ci(low: pd.Series, high: pd.Series) -> list[str]:
        return [
            f"{a * scale:.2f}–{b * scale:.2f}" if pd.notna(a) and pd.notna(b) else ""
            for a, b in zip(low, high, strict=True)
        ]

    return pd.DataFrame(
        {
            "trial": pairs["trial"],
            "validation trial": pairs["validation_trial"],
            "proxy top-1 %": pairs["proxy"] * scale,
            "proxy 95% CI": ci(pairs["proxy_low"], pairs["proxy_high"]),
            "validation top-1 %": pairs["validation"] * scale,
            "validation 95% CI": ci(pairs["validation_low"], pairs["validation_high"]),
            "on search front": pairs["on_front"],
            "on validation front": pairs["validation_front"],
            "holds": pairs["holds"],
            "mixers per stage": pairs["mixers"],
        }
    )


TABLE_CONFIG = {
    "trial": st.column_config.NumberColumn("trial", format="%d", width="small"),
    "validation trial": st.column_config.NumberColumn("validation trial", format="%d"),
    "proxy top-1 %": st.column_config.NumberColumn("proxy top-1 %", format="%.2f"),
    "validation top-1 %": st.column_config.NumberColumn("validation top-1 %", format="%.2f"),
}


def render(ctx: Context) -> None:
    runs = data.validation_runs(ctx.searches, ctx.search_id)
    if runs.empty:
        st.info("No validation run of this search in this store.")
        return
    labels = dict(zip(runs["id"], runs["name"] + " · " + runs["study_name"], strict=True))
    child_id = int(
        st.selectbox("validation run", list(labels), format_func=labels.get, key="validation_run")
        if len(runs) > 1
        else runs["id"].iloc[0]
    )
    run = runs[runs["id"] == child_id].iloc[0]
    key = (
        ctx.url,
        ctx.search_id,
        child_id,
        ctx.version,
        tuple(ctx.objectives),
        tuple(ctx.directions),
    )
    pairs = data.validation_pairs(*key)
    st.caption(
        f"{code(run['study_name'])} ({md(run['status'])}): {len(pairs)} trials of this search "
        "retrained at higher fidelity and completed. Proxy accuracy is the search trial's, "
        "validation accuracy its retraining's; bars are 95% intervals."
    )
    if pairs.empty:
        st.info("No validation trial has completed yet.")
        return
    fraction = is_fraction(pd.concat([pairs["proxy"], pairs["validation"]]))
    agreement = data.validation_agreement(*key)
    front_size = int(ctx.trials["on_front"].sum())
    held = pairs[pairs["on_front"]]
    a, b, c = st.columns(3)
    a.metric("validated trials", len(pairs))
    if agreement is None:
        b.metric("Kendall τ", "—")
    else:
        b.metric(
            "Kendall τ",
            f"{agreement.tau:.3f}",
            help=f"tau-b of proxy against validation top-1; {agreement}",
        )
    c.metric("front members hold", f"{int(held['holds'].sum())} of {len(held)}")
    if agreement is None:
        st.warning(
            f"Rank agreement needs at least {MIN_PAIRS} validated trials; this run has "
            f"{len(pairs)}."
        )
    else:
        st.caption(
            f"Kendall τ {agreement.tau:.3f}, 95% bootstrap interval "
            f"[{agreement.low:.3f}, {agreement.high:.3f}] over {agreement.n} architectures "
            "(resampling architectures)."
        )
    st.plotly_chart(agreement_figure(pairs, fraction), key="validation_chart")
    st.markdown("**Front at validation fidelity**")
    st.caption(
        "The validated trials' front with the validation accuracy in place of the proxy one "
        "(the other objectives are the search trial's): " + held_summary(pairs, front_size) + "."
    )
    st.dataframe(
        pairs_table(pairs, fraction),
        hide_index=True,
        column_config=TABLE_CONFIG,
        key="validation_table",
    )
