"""One trial: its architecture drawn per stage, learning curve, profile and failure reason."""

from __future__ import annotations

import html
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import yaml

from dashboard import data
from dashboard.views.common import (
    FRONT_COLOR,
    MIXER_SHORT,
    Context,
    code,
    is_fraction,
    md,
    mixer_color,
    objective_text,
)
from nas import units

ARCH_CSS = """
<style>
.nas-arch {font-family: ui-sans-serif, system-ui, sans-serif; font-size: 0.85rem;}
.nas-arch .row {display: flex; align-items: flex-start; gap: 0.8rem; padding: 0.4rem 0;
  border-bottom: 1px solid #EEE;}
.nas-arch .label {width: 5.5rem; flex: none; line-height: 1.2;}
.nas-arch .label b {font-size: 1rem;}
.nas-arch .body {flex: 1; min-width: 0;}
.nas-arch .blocks {display: flex; flex-wrap: wrap; gap: 3px;}
.nas-arch .block {width: 2.3rem; height: 1.8rem; border-radius: 4px; color: white;
  display: flex; align-items: center; justify-content: center; font-size: 0.7rem;
  font-weight: 600;}
.nas-arch .knobs {color: #444; line-height: 1.35; margin-top: 0.25rem; overflow-wrap: anywhere;}
.nas-arch .knobs code {font-size: 0.75rem;}
.nas-arch .legend {display: flex; gap: 0.8rem; padding-top: 0.5rem; flex-wrap: wrap;}
.nas-arch .legend span {display: inline-flex; align-items: center; gap: 0.3rem;}
.nas-arch .swatch {width: 0.9rem; height: 0.9rem; border-radius: 3px; display: inline-block;}
</style>
"""


def _esc(value: object) -> str:
    """A stored value as HTML text (numbers in ``g`` form): the spec is untrusted."""
    text = format(value, "g") if isinstance(value, float) else str(value)
    return html.escape(text)


def _knobs_text(mixer: dict[str, Any]) -> str:
    knobs = {k: v for k, v in mixer.items() if k != "name"}
    inner = ", ".join(f"{k}={v}" for k, v in knobs.items())
    return f"<b>{_esc(mixer['name'])}</b>" + (f" <code>{_esc(inner)}</code>" if inner else "")


def architecture_html(spec: dict[str, Any]) -> str:
    """One row per stage: a coloured box per block (by mixer), depth × dim and the knobs.

    Shown with ``unsafe_allow_html``, so every stored value in it goes through ``html.escape``.
    """
    rows, used = [], []
    for i, stage in enumerate(spec.get("stages", [])):
        blocks = [str(b) for b in data.stage_block_mixers(stage)]
        used.extend(b for b in dict.fromkeys(blocks) if b not in used)
        boxes = "".join(
            f'<div class="block" title="block {j}: {_esc(b)}" '
            f'style="background:{mixer_color(b)}">{_esc(MIXER_SHORT.get(b, b[:4]))}</div>'
            for j, b in enumerate(blocks)
        )
        extras = [f"mlp ×{_esc(stage.get('mlp_ratio', 4.0))}"]
        if stage.get("res_scale"):
            extras.append("res-scale")
        if stage.get("layer_scale") is not None:
            extras.append(f"layer-scale {_esc(stage['layer_scale'])}")
        details = [" · ".join([_knobs_text(stage["mixer"]), *extras])]
        for o in stage.get("overrides") or []:
            key = next(k for k in ("last", "every", "blocks") if k in o)
            where = f"{key} {_esc(o[key])}"
            details.append(f"{where}: {_knobs_text(o['mixer'])}")
        rows.append(
            f'<div class="row"><div class="label">stage {i + 1}<br>'
            f"<b>{_esc(stage['depth'])} × {_esc(stage['dim'])}</b></div>"
            f'<div class="body"><div class="blocks">{boxes}</div>'
            f'<div class="knobs">{"<br>".join(details)}</div></div></div>'
        )
    legend = "".join(
        f'<span><i class="swatch" style="background:{mixer_color(m)}"></i>{_esc(m)}</span>'
        for m in used
    )
    head = (
        f"image size {_esc(spec.get('image_size'))} · "
        f"drop path {_esc(spec.get('drop_path_rate', 0.0))} · "
        f"head {_esc((spec.get('head') or {}).get('kind', 'mlp'))}"
    )
    return (
        f'{ARCH_CSS}<div class="nas-arch"><div class="knobs">{head}</div>'
        f'{"".join(rows)}<div class="legend">{legend}</div></div>'
    )


def learning_curve(epochs: pd.DataFrame, fraction: bool, final: float | None) -> go.Figure:
    scale = 100.0 if fraction else 1.0
    fig = go.Figure(
        go.Scatter(
            x=epochs["epoch"],
            y=epochs["val_top1"] * scale,
            mode="lines+markers",
            name="val top-1",
            line={"color": FRONT_COLOR, "width": 2},
            hovertemplate="epoch %{x}: %{y:.2f} %<extra></extra>",
        )
    )
    if final is not None and pd.notna(final):
        fig.add_hline(
            y=final * scale,
            line={"dash": "dot", "color": "#888"},
            annotation_text="reported accuracy",
            annotation_position="bottom right",
        )
    fig.update_layout(
        height=300,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        xaxis_title="epoch",
        yaxis_title="validation top-1 %",
        plot_bgcolor="white",
        showlegend=False,
    )
    fig.update_xaxes(showgrid=True, gridcolor="#EEE", dtick=1)
    fig.update_yaxes(showgrid=True, gridcolor="#EEE")
    return fig


def default_trial(frame: pd.DataFrame) -> int:
    """The knee if there is one, else the newest trial."""
    knee = frame.loc[frame["knee"], "number"]
    return int(knee.iloc[0]) if len(knee) else int(frame["number"].max())


def render(ctx: Context) -> None:
    frame = ctx.trials
    if frame.empty:
        st.info("This search has no trial yet.")
        return
    numbers = frame["number"]
    if st.session_state.get("trial_number") not in set(numbers):
        st.session_state["trial_number"] = default_trial(frame)
    pick, jump = st.columns([1, 3])
    number = pick.number_input(
        "trial number",
        min_value=int(numbers.min()),
        max_value=int(numbers.max()),
        step=1,
        key="trial_number",
    )
    front = frame[frame["on_front"]].sort_values("top1", ascending=False)
    jump.pills(
        "front trials",
        front["number"].tolist(),
        format_func=lambda n: _pill(front.set_index("number").loc[n], n),
        key="front_pills",
        on_change=_jump,
    )
    row = frame[frame["number"] == number]
    if row.empty:
        st.warning(f"No trial {number} in this search.")
        return
    trial = row.iloc[0]
    fraction = is_fraction(frame["top1"])
    _header(ctx, trial, fraction)

    arch_hash = trial["arch_hash"] if isinstance(trial["arch_hash"], str) else None
    spec = data.architecture_spec(ctx.url, arch_hash) if arch_hash else None
    left, right = st.columns([3, 2])
    with left:
        st.markdown("**Architecture**")
        if spec:
            st.markdown(architecture_html(spec), unsafe_allow_html=True)
            with st.expander("spec (arch.yaml)"):
                st.code(yaml.safe_dump(spec, sort_keys=False), language="yaml")
        else:
            st.info("No architecture was built for this trial (it failed while sampling).")
        with st.expander("sampled Optuna parameters"):
            st.json(data.sampled_params(ctx.url, ctx.search_id, int(number)))
    with right:
        st.markdown("**Learning curve** (proxy training)")
        epochs = data.trial_epochs(ctx.url, ctx.search_id, int(number), ctx.version)
        twin = twin_of(trial)
        final = trial["accuracy"]
        if epochs.empty and twin is not None:
            # a duplicate was never trained: its twin's training is the one that counts
            epochs = data.trial_epochs(ctx.url, ctx.search_id, twin, ctx.version)
            twin_row = frame[frame["number"] == twin]
            final = twin_row["accuracy"].iloc[0] if len(twin_row) else None
            if not epochs.empty:
                st.caption(f"of trial {twin}, which trained this architecture")
        if epochs.empty:
            st.info("No epoch recorded.")
        else:
            st.plotly_chart(learning_curve(epochs, fraction, final), key="curve_chart")
        st.markdown("**Profile**")
        a, b, c, d = st.columns(4)
        a.metric("params", units.params(trial["params"]))
        b.metric("MACs", units.macs(trial["macs"]))
        c.metric("img/s", units.number(trial["throughput"]))
        d.metric("ms / image", units.number(trial["latency_ms"], 2))
        if arch_hash:
            measured = data.throughputs(ctx.url, arch_hash, ctx.version)
            if measured.empty:
                st.caption("Throughput not measured (yet) for this architecture.")
            else:
                st.caption("Throughput measurements of this architecture (one column per setting)")
                settings = measured.T.astype(str)
                settings.columns = [f"setting {i + 1}" for i in range(len(measured))]
                st.dataframe(settings, key="throughput_table")
            st.caption(f"architecture hash {code(arch_hash)}")


def twin_of(trial: pd.Series) -> int | None:
    """The trial a duplicate repeats (the one that trained its architecture), else None."""
    twin = trial.get("duplicate_of")
    return int(twin) if trial["state"] == "DUPLICATE" and pd.notna(twin) else None


def _open(number: int) -> None:
    st.session_state["trial_number"] = number


def noise_text(trial: pd.Series, fraction: bool) -> str:
    """How sure the trial's figures are: the accuracy interval and the throughput spread."""
    parts = []
    low, high = trial["accuracy_low"], trial["accuracy_high"]
    if pd.notna(low) and pd.notna(high):
        scale = 100.0 if fraction else 1.0
        how = []
        if pd.notna(trial["n_seeds"]) and pd.notna(trial["val_size"]):
            how.append(f"{int(trial['n_seeds'])} seed(s) × {int(trial['val_size'])} images")
        if pd.notna(trial["accuracy_std"]):
            how.append(f"across-seed std {trial['accuracy_std'] * scale:.2f} %")
        parts.append(
            f"top-1 95% interval {low * scale:.2f}–{high * scale:.2f} %"
            + (f" ({', '.join(how)})" if how else "")
        )
    q25, q75 = trial["thr_q25"], trial["thr_q75"]
    if pd.notna(q25) and pd.notna(q75):
        how = ""
        if pd.notna(trial["thr_rounds"]) and pd.notna(trial["thr_repeats"]):
            how = f" ({int(trial['thr_rounds'])} round(s) × {int(trial['thr_repeats'])} blocks)"
        parts.append(
            f"throughput interquartile range {units.number(q25)}–{units.number(q75)} img/s{how}"
        )
    if trial["tied_with"]:
        parts.append(f"tied within noise with front trials {md(trial['tied_with'])}")
    return " · ".join(parts)


def _pill(row: pd.Series, number: int) -> str:
    """``#12``, with ◆ for the knee and ★ for a seed design (as on the front chart)."""
    return (
        f"#{number}"
        + (" ◆" if row["knee"] else "")
        + (" ★" if isinstance(row["seed"], str) else "")
    )


def _jump() -> None:
    chosen = st.session_state.get("front_pills")
    if chosen is not None:
        st.session_state["trial_number"] = int(chosen)


def _header(ctx: Context, trial: pd.Series, fraction: bool) -> None:
    tags = [md(trial["state"])]
    twin = twin_of(trial)
    if twin is not None:
        tags.append(f"duplicate of trial {twin}")
    if trial["on_front"]:
        tags.append("on the Pareto front")
    if trial["knee"]:
        tags.append("knee")
    if isinstance(trial["seed"], str):
        tags.append(f"★ seed design {md(trial['seed'])}")
    st.subheader(f"Trial {trial['number']} · " + " · ".join(tags))
    reason = trial["reason"] if isinstance(trial["reason"], str) else None
    if twin is not None:
        st.info(
            f"Duplicate of trial {twin}: the search had already trained this architecture, so "
            "it was not trained again and counts on no front, ranking or hypervolume."
        )
        st.button(
            f"Open trial {twin} →", on_click=_open, args=(twin,), type="primary", key="open_twin"
        )
    elif trial["state"] == "FAIL":
        st.error(f"Failure reason: {md(reason) if reason else 'not recorded'}")
    elif trial["state"] == "PRUNED":
        st.warning(f"Stopped early: {md(reason) if reason else 'pruned'}")
    elif trial["state"] == "RUNNING":
        st.info(f"Running: {trial['epochs_done']} epochs done.")
    if trial["state"] == "COMPLETE":
        cols = st.columns(len(ctx.objectives))
        for col, name in zip(cols, ctx.objectives, strict=True):
            col.metric(name, objective_text(name, trial[f"obj_{name}"], fraction))
    noise = noise_text(trial, fraction)
    if noise:
        st.caption(noise)
    st.markdown(code(trial["arch"]) if trial["arch"] else "")
