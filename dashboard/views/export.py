"""Export a trial exactly as ``nas export`` does, with the files offered for download."""

from __future__ import annotations

import shlex
import tempfile
from pathlib import Path
from typing import Any

import streamlit as st

from dashboard.views.common import Context, is_fraction, md, objective_text
from nas.store.engine import command_url

PICKS = {
    "knee": "knee of the front",
    "max-accuracy": "most accurate on the front",
    "max-throughput": "fastest on the front",
    "trial": "a trial by number",
}


@st.cache_data(show_spinner="exporting…", max_entries=32)
def export_files(
    url: str, study_name: str, trial_number: int | None, pick: str, version: str
) -> dict[str, Any]:
    """Run ``export_trial`` into a scratch folder and keep the files' text for download.

    The scratch folder is gone once the files are read, so paths into it (the training command,
    comments in ``train.yaml``) are rewritten relative to the folder the user saves both files
    in. ``version`` is only a cache key: a new trial can move the knee.
    """
    # On use only: it brings in the search runner and the trainer's config schema.
    from nas.search.export import export_trial

    with tempfile.TemporaryDirectory(prefix="nas-dashboard-export-") as tmp:
        result = export_trial(
            url, study_name=study_name, trial_number=trial_number, pick=pick, out_dir=Path(tmp)
        )
        folder = str(Path(tmp).resolve())

        def local(text: str) -> str:
            return text.replace(folder, ".")

        return {
            "trial_number": int(result.trial_number),
            "values": dict(result.values),
            "command": local(result.command),
            "recipe": result.recipe_note,
            "arch_name": Path(result.arch_path).name,
            "arch_yaml": local(Path(result.arch_path).read_text()),
            "train_name": Path(result.train_path).name,
            "train_yaml": local(Path(result.train_path).read_text()),
        }


def render(ctx: Context) -> None:
    st.caption(
        "The same files as `nas export`: the architecture (`arch.yaml`) and the full training "
        "recipe (`train.yaml`) of the chosen trial, and the command that trains it."
    )
    complete = ctx.trials[ctx.trials["state"] == "COMPLETE"]
    if complete.empty:
        st.info("Nothing to export yet: no trial has completed.")
        return
    picks = [p for p in PICKS if not p.startswith("max-") or p[4:] in ctx.objectives]
    left, right = st.columns([2, 1])
    pick = left.radio("export", picks, format_func=PICKS.get, horizontal=True, key="export_pick")
    number = None
    if pick == "trial":
        numbers = sorted(complete["number"].tolist())
        default = st.session_state.get("trial_number")
        number = right.selectbox(
            "completed trial",
            numbers,
            index=numbers.index(default) if default in numbers else len(numbers) - 1,
            key="export_trial",
        )
    try:
        files = export_files(
            ctx.url,
            ctx.search["study_name"],
            number,
            "knee" if pick == "trial" else pick,
            ctx.version,
        )
    except (ValueError, KeyError, FileNotFoundError) as err:
        st.error(f"export failed: {md(err)}")
        return
    fraction = is_fraction(ctx.trials["top1"])
    values = ", ".join(
        f"{md(name)} {md(objective_text(name, value, fraction))}"
        for name, value in files["values"].items()
    )
    st.success(f"Trial {files['trial_number']}: {values}")
    st.markdown(
        "**Train it**: save both files in one folder (`train.yaml` reads `arch.yaml` beside it) "
        "and run there"
    )
    st.code(files["command"], language="bash")
    st.caption(f"Recipe: {md(files['recipe'])}.")
    target, dropped = command_url(ctx.url)
    left_out = " (the store's password left out: give it through PGPASSWORD or ~/.pgpass)"
    st.caption(f"The same export from the command line{left_out if dropped else ''}:")
    st.code(  # quoted: a stored study name must not turn into shell syntax when pasted
        f"nas export {shlex.quote(target)} "
        f"--search {shlex.quote(ctx.search['study_name'])} --trial {files['trial_number']}",
        language="bash",
    )
    a, b = st.columns(2)
    for col, key in ((a, "arch"), (b, "train")):
        with col:
            st.download_button(
                f"Download {files[f'{key}_name']}",
                files[f"{key}_yaml"],
                file_name=files[f"{key}_name"],  # train.yaml refers to arch.yaml by name
                mime="application/x-yaml",
                key=f"download_{key}",
                icon=":material/download:",
            )
            st.code(files[f"{key}_yaml"], language="yaml")
