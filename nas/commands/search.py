"""``nas search`` and ``nas export``."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

if TYPE_CHECKING:
    from nas.search.driver import Progress


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "search",
        help="run a multi-objective architecture search",
        description="Run the search described by FILE; KEY=VALUE overrides any key of the file.",
    )
    p.add_argument("file", type=Path, help="search-space file, e.g. search_spaces/metaformer.yaml")
    p.add_argument("overrides", nargs="*", help="Hydra-style overrides: search.trials=50 ...")
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--resume", action="store_true", help="fail unless an unfinished search resumes"
    )
    group.add_argument(
        "--fresh", action="store_true", help="start a new search even if one can resume"
    )
    add_takeover_flag(p)
    p.set_defaults(func=_search)

    p = sub.add_parser("export", help="write arch.yaml + train.yaml of a trial of a search")
    p.add_argument("target", help="run folder (runs/NAME) or storage URL")
    p.add_argument("--search", default=None, help="study name (default: the newest search)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--trial", type=int, default=None, help="trial number")
    which.add_argument("--pick", choices=["knee", "max-accuracy", "max-throughput"], default="knee")
    p.add_argument(
        "--out", type=Path, default=None, help="output folder (default: exports/<study>-trial<N>)"
    )
    p.set_defaults(func=_export)


def add_takeover_flag(parser: argparse.ArgumentParser) -> None:
    """``--takeover``, for every command that resumes a run guarded by a driver lease."""
    parser.add_argument(
        "--takeover",
        action="store_true",
        help="resume even though another driver's lease on the run has not expired "
        "(its holder, e.g. on another host, is known to be gone)",
    )


class LiveProgress:
    """A progress bar over finished trials, with the counts and (given the objectives'
    directions) the current front size, updated with the values completed since the last
    call only."""

    def __init__(self, directions: list[str] | None = None):
        self.bar: tqdm | None = None
        self.directions = directions
        self._front = None
        self._seen = 0  # how many of the progress's completed values the front holds

    def __call__(self, p: Progress) -> None:
        from nas.search.pareto import RunningFront

        if self.bar is None:
            self.bar = tqdm(total=p.requested, initial=p.finished, desc="trials", unit="trial")
        counts = {
            "done": p.done,
            "running": p.running,
            "pruned": p.pruned,
            "failed": p.failed,
            "duplicates": p.duplicates,
            "seed_designs": p.references,
        }
        if p.prescreened:
            counts["prescreened"] = p.prescreened
        if p.lost:
            counts["lost_with_node"] = p.lost
        if self.directions is not None:
            if self._front is None or len(p.completed_values) < self._seen:
                self._front, self._seen = RunningFront(self.directions), 0
            for values in p.completed_values[self._seen :]:
                self._front.add(values)
            self._seen = len(p.completed_values)
            counts["front"] = len(self._front)
        self.bar.n = p.finished
        self.bar.set_postfix(counts)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _describe_arch(spec: dict) -> str:
    parts = []
    for stage in spec["stages"]:
        mixer = stage["mixer"]
        knobs = ",".join(f"{k}={v}" for k, v in mixer.items() if k not in ("name", "grid_size"))
        text = f"{stage['depth']}x{stage['dim']} {mixer['name']}" + (f"({knobs})" if knobs else "")
        for o in stage.get("overrides", []):
            key = next((k for k in ("last", "every") if k in o), None)
            text += f"+{o['mixer']['name']}[{key} {o[key]}]" if key else "+override"
        parts.append(text)
    return " | ".join(parts)


def _search(args: argparse.Namespace) -> int:
    from nas.search.config import load_config
    from nas.store.engine import mask_url

    cfg = load_config(args.file, args.overrides)
    import optuna

    from nas.search.runner import run_search

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(
        f"search {cfg.name}: {cfg.search.trials} trials, objectives "
        + ", ".join(f"{o.name} ({o.direction})" for o in cfg.objectives)
        + (f", {len(cfg.references)} seed designs" if cfg.references else "")
        + f", store {mask_url(cfg.storage_url())}"
    )
    live = LiveProgress(cfg.directions)
    try:
        outcome = run_search(
            cfg,
            fresh=args.fresh,
            require_resume=args.resume,
            on_progress=live,
            takeover=args.takeover,
            on_start=_announce,
        )
    finally:
        live.close()
    print_summary(outcome, cfg)
    return 0


def _announce(start) -> None:
    if start.resumed:
        requeued = (
            f", {start.requeued} interrupted trial{'s' if start.requeued != 1 else ''} re-queued"
            if start.requeued
            else ""
        )
        print(
            f"resuming {start.study_name}: {start.finished} of {start.requested} trials "
            f"finished{requeued}"
        )
    else:
        print(f"started {start.study_name}")


def _format_value(name: str, low: float, value: float, high: float) -> str:
    """``94.1 ± 0.9`` (accuracy in %, half the 95% interval), ``4,378 [4,210-4,460]`` (IQR),
    ``12.3 MMACs`` (params and MACs with the prefix that fits)."""
    from nas import units

    if name == "accuracy":
        return f"{100 * value:5.1f} ± {50 * (high - low):3.1f}"
    if high > low:
        return f"{units.number(value, 4)} [{units.number(low, 4)}-{units.number(high, 4)}]"
    return units.objective(name, value, unit=False)


def print_summary(outcome, cfg) -> None:
    """The closing report: counts, the distinct front with noise and ties, seed designs."""
    import optuna

    from nas import units
    from nas.search.summary import front_members, reference_verdict
    from nas.store import SearchStore
    from nas.store.engine import command_url

    counts = outcome.counts
    print(
        f"\n{outcome.study_name}: {counts['COMPLETE']} complete, {counts['PRUNED']} pruned, "
        f"{counts['FAIL']} failed in {outcome.wall_seconds / 60:.1f} min"
        + (
            f" ({counts['INTERRUPTED']} interrupted and re-run, not counted)"
            if counts.get("INTERRUPTED")
            else ""
        )
        + (
            f" ({counts['NODE_LOST']} lost with their node and re-run, not counted)"
            if counts.get("NODE_LOST")
            else ""
        )
        + (f", {counts['PROPOSAL']} seed designs evaluated" if counts.get("PROPOSAL") else "")
        + (
            f"; {counts['DUPLICATE']} proposals repeated a trained architecture (not retrained)"
            if counts.get("DUPLICATE")
            else ""
        )
        + (
            f"; {counts['PRESCREENED']} proposals prescreened out (not trained)"
            if counts.get("PRESCREENED")
            else ""
        )
    )
    if outcome.stop_reason:
        print(f"ended early: {outcome.stop_reason}")
    study = optuna.load_study(study_name=outcome.study_name, storage=outcome.storage_url)
    store = SearchStore(outcome.storage_url, read_only=True)
    search = store.get_search(outcome.study_name)
    members = front_members(study, search, store)
    names = cfg.objective_names
    print(
        f"\nPareto front ({len(members)} architectures; accuracy in % ± half its 95% interval, "
        "throughput [IQR]; ~N: within noise of trial N on every objective, ★: seed design):"
    )
    header = "  ".join(f"{n:>22s}" for n in names)
    print(f"{'trial':>6s}  {header}  architecture")
    for m in members:
        cells = "  ".join(
            f"{_format_value(n, lo, v, hi):>22s}"
            for n, lo, v, hi in zip(names, m.lows, m.trial.values, m.highs, strict=True)
        )
        mark = f"★ {m.reference}: " if m.reference else ""
        ties = f"  ~{','.join(map(str, m.tied_with))}" if m.tied_with else ""
        arch = store.architecture(m.arch_hash)
        print(f"{m.trial.number:6d}  {cells}  {mark}{_describe_arch(arch.spec)}{ties}")
    tied = sum(bool(m.tied_with) for m in members)
    if tied:
        print(
            f"{tied} of {len(members)} front members are tied with another within noise: "
            "their order is not significant"
        )
    verdict = reference_verdict(study, cfg.directions)
    if verdict is not None:
        print(f"seed designs: {verdict.line()}")
    store.dispose()
    print(f"\nhypervolume: {units.number(outcome.hypervolume, 6)}")
    target, dropped = (
        command_url(outcome.storage_url)
        if cfg.storage
        else (str(Path(cfg.run_dir) / cfg.name), False)
    )
    target = shlex.quote(target)
    if dropped:
        print("(the store's password is left out: give it through PGPASSWORD or ~/.pgpass)")
    print(f"dashboard:   nas dashboard {target}")
    print(f"export:      nas export {target} --search {outcome.study_name} --pick knee")
    print(f"validate:    nas validate {target} --search {outcome.study_name}")


def _values_text(values: dict[str, float]) -> str:
    """``accuracy=94.12 %, throughput=10,010 img/s``: the objectives in their units."""
    from nas import units

    return ", ".join(f"{k}={units.objective(k, v)}" for k, v in values.items())


def _export(args: argparse.Namespace) -> int:
    from nas.search.export import export_trial

    result = export_trial(
        args.target,
        study_name=args.search,
        trial_number=args.trial,
        pick=args.pick,
        out_dir=args.out,
    )
    print(
        f"exported trial {result.trial_number} of {result.study_name}: "
        + _values_text(result.values)
    )
    if result.tied_with:
        alternatives = "; ".join(
            f"trial {n} ({_values_text(values)})" for n, values in result.tied_with
        )
        print(
            f"warning: the knee (trial {result.trial_number}) is tied within noise with "
            f"{alternatives}: the data cannot tell them apart, consider them too"
        )
    print(f"  {result.arch_path}\n  {result.train_path}")
    print(f"recipe: {result.recipe_note}")
    print(f"train it with:\n  {result.command}")
    return 0
