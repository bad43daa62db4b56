"""``nas export``: one trial of a stored search to ``arch.yaml`` + ``train.yaml``.

The training config is fitted to the data the search's proxy used (:mod:`nas.search.train_recipe`),
so the exported command runs as is; change ``data`` in ``train.yaml`` (or override it) for the
real dataset, and the recipe with it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import optuna

from nas.arch.spec import ArchSpec
from nas.export import write_export
from nas.search.config import folder_name
from nas.search.runner import pareto_front
from nas.search.selection import Pick, select_trial
from nas.search.summary import front_members
from nas.search.train_recipe import fitted_recipe
from nas.store import SearchStore, resolve_storage
from nas.typed_config import suggest


@dataclass(frozen=True)
class ExportResult:
    study_name: str
    trial_number: int
    values: dict[str, float]
    arch_path: Path
    train_path: Path
    command: str
    recipe_note: str
    tied_with: tuple[tuple[int, dict[str, float]], ...] = ()


def export_trial(
    target: str | Path,
    study_name: str | None = None,
    trial_number: int | None = None,
    pick: Pick = "knee",
    out_dir: str | Path | None = None,
) -> ExportResult:
    """Export trial ``trial_number`` (or the ``pick`` of the front) of a search in ``target``
    (a run folder or storage URL); ``study_name`` defaults to the newest search there."""
    url = resolve_storage(target)
    store = SearchStore(url, read_only=True)
    try:
        searches = store.searches()
        if not searches:
            raise ValueError(f"{target}: the store holds no search")
        names = [s.study_name for s in searches]
        if study_name is None:
            search = searches[-1]
        elif study_name in names:
            search = searches[names.index(study_name)]
        else:
            raise ValueError(
                f"--search {study_name!r}: no such search{suggest(study_name, names)}; "
                f"searches: {names}"
            )
        study = optuna.load_study(study_name=search.study_name, storage=url)
        chosen = select_trial(
            study.get_trials(deepcopy=False),
            pareto_front(study),
            list(search.objectives),
            list(search.directions),
            trial_number,
            pick,
        )
        arch = store.architecture(chosen.user_attrs["arch_hash"])
        tied: tuple[tuple[int, dict[str, float]], ...] = ()
        if trial_number is None and pick == "knee":
            members = {m.trial.number: m for m in front_members(study, search, store)}
            tied = tuple(
                (n, dict(zip(search.objectives, members[n].trial.values, strict=True)))
                for n in members[chosen.number].tied_with
            )
    finally:
        store.dispose()
    spec = dataclasses.replace(
        ArchSpec.from_dict(arch.spec), name=folder_name(f"{search.study_name}-trial{chosen.number}")
    )
    recipe = fitted_recipe(search.config)
    paths = write_export(
        spec, out_dir or Path("exports") / spec.name, recipe.overrides, recipe.note
    )
    return ExportResult(
        study_name=search.study_name,
        trial_number=chosen.number,
        values=dict(zip(search.objectives, chosen.values, strict=True)),
        arch_path=paths.arch,
        train_path=paths.train_config,
        command=paths.command,
        recipe_note=recipe.note,
        tied_with=tied,
    )
