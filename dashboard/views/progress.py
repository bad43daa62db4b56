"""How the search advanced: hypervolume and finished trials over time or trial number."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from dashboard import data
from dashboard.views.common import FRONT_COLOR, STATE_COLORS, Context, is_fraction


def render(ctx: Context) -> None:
    by = st.segmented_control(
        "x axis", ["finish time", "trial number"], default="finish time", key="progress_x"
    )
    by = by or "finish time"
    history = data.hypervolume_history(
        ctx.url, ctx.search_id, ctx.version, tuple(ctx.objectives), tuple(ctx.directions)
    )
    left, right = st.columns(2)
    with left:
        st.markdown("**Hypervolume of the completed trials**")
        if history.empty:
            st.info("No completed trial yet.")
        else:
            x = history["finished_at"] if by == "finish time" else history["number"]
            fig = go.Figure(
                go.Scatter(
                    x=x,
                    y=history["hypervolume"],
                    mode="lines",
                    line={"shape": "hv", "color": FRONT_COLOR, "width": 2},
                    customdata=history[["number", "front_size"]].to_numpy(),
                    hovertemplate="after trial %{customdata[0]}: %{y:,.4~r}"  # never 1e+4
                    "<br>front of %{customdata[1]}<extra></extra>",
                )
            )
            _layout(fig, by, "hypervolume")
            st.plotly_chart(fig, key="hv_chart")
            st.caption(
                "Reference point fixed over all completed trials (0 for maximised positive "
                "objectives), so the curve is comparable along the search."
            )
    with right:
        st.markdown("**Finished trials by state**")
        over = data.trials_over_time(ctx.trials)
        if over.empty:
            st.info("No finished trial yet.")
        else:
            x = over["finished_at"] if by == "finish time" else list(range(1, len(over) + 1))
            fig = go.Figure()
            for state in ("COMPLETE", "PRUNED", "FAIL"):
                fig.add_trace(
                    go.Scatter(
                        x=x,
                        y=over[state],
                        name=state.lower(),
                        mode="lines",
                        stackgroup="states",
                        line={"color": STATE_COLORS[state], "width": 1},
                    )
                )
            _layout(fig, by, "trials", finished=True)
            st.plotly_chart(fig, key="trials_chart")

    st.markdown("**Accuracy of every trial, with the best so far**")
    frame = ctx.trials.sort_values("number")
    scale = 100.0 if is_fraction(frame["top1"]) else 1.0
    fig = go.Figure()
    for state in ("COMPLETE", "PRUNED", "FAIL"):
        part = frame[(frame["state"] == state) & frame["top1"].notna()]
        fig.add_trace(
            go.Scattergl(
                x=part["number"],
                y=part["top1"] * scale,
                mode="markers",
                name=state.lower(),
                marker={"color": STATE_COLORS[state], "size": 5, "opacity": 0.6},
                hovertemplate="trial %{x}: %{y:.2f} %<extra></extra>",
            )
        )
    best = (frame["accuracy"].where(frame["state"] == "COMPLETE") * scale).cummax().ffill()
    fig.add_trace(
        go.Scatter(
            x=frame["number"],
            y=best,
            mode="lines",
            name="best completed",
            line={"shape": "hv", "color": FRONT_COLOR, "width": 2},
        )
    )
    _layout(fig, "trial number", "validation top-1 %")
    st.plotly_chart(fig, key="accuracy_chart")


def _layout(fig: go.Figure, by: str, y: str, finished: bool = False) -> None:
    x_title = "finish time (UTC)" if by == "finish time" else "trial number"
    if finished and by != "finish time":
        x_title = "finished trials"
    fig.update_layout(
        height=340,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        xaxis_title=x_title,
        yaxis_title=y,
        plot_bgcolor="white",
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.01, "x": 0},
    )
    fig.update_xaxes(showgrid=True, gridcolor="#EEE")
    fig.update_yaxes(showgrid=True, gridcolor="#EEE")
