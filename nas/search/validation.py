"""``nas validate``: does the proxy's ranking hold at a higher fidelity?

A search ranks architectures by a short proxy training, so its front is only as real as that
ranking. Validation retrains the front, the seed designs and a random sample of the other
completed architectures at a higher fidelity (more epochs, other seeds, more data, or another
dataset through ``proxy.data`` overrides), through Ray like a search (same driver: resumable,
never pruned), into a search row of kind ``validation`` linked to its parent. It reports
Kendall's tau between proxy and validation accuracy with a bootstrap interval over
architectures, the same tau for the proxy accuracy at each epoch (how early a rung may judge),
and how many front members stay non-dominated at the higher fidelity.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import optuna
from omegaconf import OmegaConf
from optuna.trial import FrozenTrial, TrialState

from nas.arch.spec import ArchSpec
from nas.errors import NasError
from nas.search.config import SearchConfig, apply_overrides, parse_config
from nas.search.driver import Progress, Proposal
from nas.search.noise import RankAgreement, kendall_tau, rank_agreement
from nas.search.pareto import non_dominated_mask
from nas.search.runner import (
    SearchOutcome,
    distinct_complete,
    drive,
    open_proposal_run,
    pareto_front,
)
from nas.store import SearchStore, resolve_storage
from nas.store.models import Search
from nas.typed_config import ConfigError, suggest

MIN_ARCHITECTURES = 3


class ValidationError(NasError):
    """A validation that cannot run; the message is one line saying why."""


@dataclass(frozen=True)
class ValidationReport:
    """Proxy against validation accuracy over the retrained architectures."""

    agreement: RankAgreement | None
    front_held: int
    front_checked: int
    per_epoch: tuple[tuple[int, float], ...]
    pairs: tuple[tuple[int, float, float], ...]

    def line(self) -> str:
        held = f"{self.front_held} of {self.front_checked} front members hold"
        if self.agreement is None:
            return f"too few retrained architectures for a rank correlation; {held}"
        return f"{self.agreement}; {held}"


def select_parent(store: SearchStore, target: str, study_name: str | None) -> Search:
    """The search to validate: ``study_name`` or the newest search in the store."""
    searches = [s for s in store.searches() if s.kind == "search"]
    if not searches:
        raise ValidationError(f"{target}: the store holds no search")
    if study_name is None:
        return searches[-1]
    names = [s.study_name for s in searches]
    if study_name not in names:
        raise ValidationError(
            f"--search {study_name!r}: no such search{suggest(study_name, names)}; "
            f"searches: {names}"
        )
    return searches[names.index(study_name)]


def validation_config(
    parent: Search, url: str, epochs: int | None, seeds: int, overrides: Sequence[str]
) -> SearchConfig:
    """The parent's configuration at the higher fidelity: ``epochs`` (default 3x the proxy's),
    seeds after the ones the search used, then the user's ``KEY=VALUE`` overrides."""
    raw = json.loads(json.dumps(parent.config))
    raw.pop("references", None)
    raw["storage"] = url
    proxy = raw.setdefault("proxy", {})
    base_epochs = int(proxy.get("epochs", 5))
    proxy["epochs"] = epochs if epochs is not None else 3 * base_epochs
    proxy["seed"] = int(proxy.get("seed", 0)) + int(proxy.get("seeds", 1))
    proxy["seeds"] = seeds
    cfg = OmegaConf.create(raw)
    apply_overrides(cfg, list(overrides), f"the configuration of {parent.study_name}")
    data = OmegaConf.to_container(cfg, resolve=True)
    try:
        return parse_config(data, default_name=parent.name)
    except ConfigError as err:
        raise ConfigError(f"nas validate: {err}") from None


def plan(
    study: optuna.Study, top: int | None, sample: int, seed: int, references: bool = True
) -> list[tuple[FrozenTrial, str]]:
    """(trial, why) to retrain: the front (``top`` best first objective), the seed designs
    (unless ``references`` is False), then ``sample`` other completed architectures drawn at
    random."""
    front = sorted(pareto_front(study), key=lambda t: t.values[0], reverse=True)
    chosen = [(t, "front") for t in front[: top if top is not None else len(front)]]
    taken = {t.number for t, _ in chosen}
    complete = distinct_complete(study)
    for t in complete:
        if references and "reference" in t.user_attrs and t.number not in taken:
            chosen.append((t, "seed design"))
            taken.add(t.number)
    others = [t for t in complete if t.number not in taken]
    rng = np.random.default_rng(seed)
    for i in rng.permutation(len(others))[:sample]:
        chosen.append((others[int(i)], "sample"))
    return chosen


def run_validation(
    target: str | Path,
    study_name: str | None = None,
    top: int | None = None,
    sample: int = 10,
    epochs: int | None = None,
    seeds: int = 1,
    overrides: Sequence[str] = (),
    on_progress: Callable[[Progress], None] | None = None,
    references: bool = True,
    takeover: bool = False,
) -> tuple[SearchOutcome, ValidationReport]:
    """Retrain a finished search's front (+ seed designs, + ``sample`` others) and report."""
    for flag, value, low in (("--top", top, 1), ("--sample", sample, 0), ("--epochs", epochs, 1)):
        if value is not None and value < low:
            raise ValidationError(f"{flag}: expected an integer >= {low}, found {value}")
    if seeds < 1:
        raise ValidationError(f"--seeds: expected an integer >= 1, found {seeds}")
    url = resolve_storage(target)
    store = SearchStore(url)
    parent = select_parent(store, str(target), study_name)
    if parent.status != "finished":
        raise ValidationError(
            f"search {parent.study_name} is {parent.status}: it may still be writing the store "
            "(or was stopped); let it finish, or resume it with nas search, then validate"
        )
    parent_study = optuna.load_study(study_name=parent.study_name, storage=url)
    complete = distinct_complete(parent_study)
    if len(complete) < MIN_ARCHITECTURES:
        raise ValidationError(
            f"search {parent.study_name} has {len(complete)} completed architectures; "
            f"nas validate needs at least {MIN_ARCHITECTURES} to rank"
        )
    cfg = validation_config(parent, url, epochs, seeds, overrides)
    chosen = plan(parent_study, top, sample, seed=cfg.search.seed, references=references)
    proposals = [
        Proposal(
            ArchSpec.from_dict(store.architecture(t.user_attrs["arch_hash"]).spec),
            ("source_trial", t.number),
        )
        for t, _ in chosen
    ]
    fingerprint = hashlib.sha256(
        json.dumps(
            [parent.study_name, cfg.fingerprint(), [t.number for t, _ in chosen]], sort_keys=True
        ).encode()
    ).hexdigest()[:16]
    run = open_proposal_run(
        cfg,
        store,
        url,
        fingerprint,
        f"{parent.study_name}-validate",
        kind="validation",
        requested=len(proposals),
        parent_id=parent.id,
        takeover=takeover,
    )
    outcome = drive(cfg, run, store, proposals, sample=False, on_progress=on_progress)
    report = validation_report(parent_study, run.study, parent, SearchStore(url, read_only=True))
    return outcome, report


def validation_report(
    parent_study: optuna.Study,
    validation_study: optuna.Study,
    parent: Search,
    store: SearchStore,
) -> ValidationReport:
    """Tau (proxy vs validation top-1), per-epoch taus, and how much of the front holds."""
    accuracy = list(parent.objectives).index("accuracy")
    directions = list(parent.directions)
    by_number = {t.number: t for t in parent_study.get_trials(deepcopy=False)}
    retrained = {
        t.user_attrs["source_trial"]: t
        for t in validation_study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    }
    numbers = sorted(retrained)
    proxy = [by_number[n].values[accuracy] for n in numbers]
    validated = [retrained[n].values[accuracy] for n in numbers]
    agreement = rank_agreement(proxy, validated) if len(numbers) >= MIN_ARCHITECTURES else None

    front = {t.number for t in pareto_front(parent_study)} & set(numbers)
    held = 0
    if numbers:
        points = np.array([by_number[n].values for n in numbers], dtype=float)
        points[:, accuracy] = validated
        mask = non_dominated_mask(points, directions)
        held = sum(bool(m) for n, m in zip(numbers, mask, strict=True) if n in front)

    curves: dict[int, dict[int, float]] = {}
    for number, epoch in store.epochs(parent.id):
        curves.setdefault(number, {})[epoch.epoch] = epoch.val_top1
    per_epoch = []
    for e in sorted({e for n in numbers for e in curves.get(n, {})}):
        have = [n for n in numbers if e in curves.get(n, {})]
        if len(have) >= MIN_ARCHITECTURES:
            x = [curves[n][e] for n in have]
            y = [retrained[n].values[accuracy] for n in have]
            per_epoch.append((e, kendall_tau(x, y)))
    store.dispose()
    return ValidationReport(
        agreement=agreement,
        front_held=held,
        front_checked=len(front),
        per_epoch=tuple(per_epoch),
        pairs=tuple(zip(numbers, proxy, validated, strict=True)),
    )
