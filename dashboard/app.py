"""The search dashboard: ``streamlit run dashboard/app.py -- <run folder | storage URL>``.

Started by ``nas dashboard``. The store is opened read-only, so it is safe to keep open beside a
running search; a page rerun (any click, or the live toggle) picks up what the search wrote.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from dashboard import data
from dashboard.views import export, front, progress, trial, validation
from dashboard.views.common import Context, code, is_fraction, md, objective_text
from nas.errors import NasError
from nas.store import resolve_storage
from nas.store.engine import mask_url
from nas.store.schema import upgrade_command
from nas.units import number

STORAGE_ENV = "NAS_DASHBOARD_STORAGE"
VIEWS = {
    "Pareto front": front,
    "Progress": progress,
    "Trial": trial,
    "Export": export,
    "Validation": validation,  # only offered for a search with validation runs
}
LIVE_SECONDS = 10
BEST_LABELS = {"throughput": "best img/s", "params": "fewest params", "macs": "fewest MACs"}

# Tighter margins and metric values, so eight summary tiles and the chart controls fit on a
# laptop screen next to the sidebar.
PAGE_CSS = """
<style>
[data-testid="stMainBlockContainer"] {padding: 2.5rem 2rem 2rem 2rem;}
[data-testid="stMetricValue"] {font-size: 1.6rem;}
</style>
"""


def storage_argument() -> str | None:
    """The target after ``--`` on the ``streamlit run`` line, else ``$NAS_DASHBOARD_STORAGE``."""
    if Path(sys.argv[0]).name == "app.py" and len(sys.argv) > 1:
        return sys.argv[1]
    return os.environ.get(STORAGE_ENV)


def _search_label(row: pd.Series) -> str:
    done = int(row["COMPLETE"] + row["PRUNED"] + row["FAIL"])
    progress = f"{row['status']}, {done}/{row['trials_requested']}"
    return f"{row['name']} · {row['study_name']} ({progress})"


def pickable(searches: pd.DataFrame) -> pd.DataFrame:
    """The searches the picker lists: validation runs are shown in their parent's view."""
    own = searches[searches["kind"] != "validation"]
    return own if len(own) else searches


def sidebar(url: str, searches: pd.DataFrame) -> tuple[pd.Series, str, bool]:
    """Search picker, view and live toggle; the choice is mirrored in the page's URL."""
    every, searches = searches, pickable(searches)
    names = searches["study_name"].tolist()
    wanted = st.query_params.get("search")
    if st.session_state.get("search") not in names:
        st.session_state["search"] = wanted if wanted in names else names[-1]
    if "view" not in st.session_state:
        view = st.query_params.get("view")
        st.session_state["view"] = view if view in VIEWS else "Pareto front"
    with st.sidebar:
        st.title("nas search")
        labels = dict(zip(names, (_search_label(r) for _, r in searches.iterrows()), strict=True))
        name = st.selectbox(
            f"search ({len(names)} in this store)", names, format_func=labels.get, key="search"
        )
        views = _views(every, searches[searches["study_name"] == name].iloc[0])
        if st.session_state["view"] not in views:
            st.session_state["view"] = "Pareto front"
        view = st.radio("view", views, key="view")
        live = st.toggle(
            f"live refresh ({LIVE_SECONDS} s)",
            key="live",
            help="Re-read the store every few seconds while a search runs.",
        )
        st.caption(f"store (read-only): {code(mask_url(url))}")
    st.query_params["search"] = name
    st.query_params["view"] = view
    return searches[searches["study_name"] == name].iloc[0], view, live


def _views(every: pd.DataFrame, search: pd.Series) -> list[str]:
    """Every view, Validation only where the search has a validation run."""
    has_runs = not data.validation_runs(every, int(search["id"])).empty
    return [v for v in VIEWS if v != "Validation" or has_runs]


def noise_notes(frame: pd.DataFrame) -> list[str]:
    """Duplicates skipped and how the search fares against the seed designs it evaluated."""
    notes = []
    duplicates = int((frame["state"] == "DUPLICATE").sum())
    if duplicates:
        notes.append(f"{duplicates} duplicates skipped")
    judged, dominated, standing = data.reference_summary(frame)
    if judged:
        text = f"front dominates {dominated} of {judged} seed designs"
        if standing:
            text += "; not dominated: " + ", ".join(md(name) for name in standing)
        notes.append(text)
    return notes


def summary(search: pd.Series, frame: pd.DataFrame) -> None:
    """Trials by state, best values, hypervolume, front size and wall time."""
    objectives, directions = list(search["objectives"]), list(search["directions"])
    fraction = is_fraction(frame["top1"])
    sampled = frame["reference"].isna() if "reference" in frame else True
    counts = frame.loc[sampled, "state"].value_counts()
    seeds = int((frame.loc[~sampled, "state"] == "COMPLETE").sum()) if "reference" in frame else 0
    cols = st.columns(5 + len(objectives))
    cols[0].metric(
        f"completed / {search['trials_requested']}",
        counts.get("COMPLETE", 0),
        help="sampled architectures; seed designs are outside the budget"
        + (f" ({seeds} evaluated)" if seeds else ""),
    )
    cols[1].metric("pruned", counts.get("PRUNED", 0))
    cols[2].metric("failed · running", f"{counts.get('FAIL', 0)} · {counts.get('RUNNING', 0)}")
    for col, name, direction in zip(cols[3:], objectives, directions, strict=False):
        values = frame.loc[frame["state"] == "COMPLETE", f"obj_{name}"]
        best = (values.max() if direction == "maximize" else values.min()) if len(values) else None
        col.metric(
            BEST_LABELS.get(name, f"best {md(name)}"), objective_text(name, best, fraction, False)
        )
    hv = data.search_hypervolume(frame, objectives, directions)
    cols[-2].metric(
        "hypervolume",
        number(hv),
        help=f"of the completed trials ({int(frame['on_front'].sum())} on the front), "
        "reference point 0 for maximised positive objectives",
    )
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    cols[-1].metric("wall time", data.format_duration(data.elapsed_seconds(search, now)))
    notes = noise_notes(frame)
    if notes:
        st.caption(" · ".join(notes))


def page(url: str, study_name: str, view: str) -> None:
    """Everything right of the sidebar; re-read from the store on each run."""
    version = data.store_version(url)
    searches = data.searches(url, version)
    search = searches[searches["study_name"] == study_name].iloc[0]
    frame = data.trials(url, int(search["id"]), version)
    color = {"running": "green", "finished": "blue"}.get(search["status"], "orange")
    st.header(md(search["name"]))
    objectives = zip(search["objectives"], search["directions"], strict=True)
    st.caption(
        f"study {code(search['study_name'])} · :{color}-badge[{md(search['status'])}] · "
        f"started {search['created_at']:%Y-%m-%d %H:%M} UTC · objectives: "
        + ", ".join(f"{md(o)} ({md(d)})" for o, d in objectives)
    )
    summary(search, frame)
    VIEWS[view].render(Context(url, version, search, frame, searches))


def main() -> None:
    st.set_page_config(page_title="nas search dashboard", page_icon="📈", layout="wide")
    st.html(PAGE_CSS)
    target = storage_argument()
    if not target:
        st.error("No store given: run `nas dashboard <run folder | storage URL>`.")
        st.stop()
    try:
        url = resolve_storage(target)
        schema = data.open_store(url).schema()
        searches = data.searches(url, data.store_version(url))
    except (FileNotFoundError, NasError, SQLAlchemyError) as err:
        st.error(f"Cannot read the search store {md(mask_url(target))}: {md(err)}")
        st.stop()
    if schema.status == "outdated":  # read on every run: the notice goes once it is upgraded
        st.warning(
            f"An older nas wrote this store ({md(schema.describe())}); the dashboard shows "
            f"what it can and changes nothing. To bring it up to date, run "
            f"{code(upgrade_command(target))}"
        )
    if searches.empty:
        st.info("This store holds no search yet. Start `nas search` and refresh.")
        st.stop()
    search, view, live = sidebar(url, searches)
    if live:
        st.fragment(page, run_every=LIVE_SECONDS)(url, search["study_name"], view)
    else:
        page(url, search["study_name"], view)


main()
