"""``nas search`` and ``nas export``."""

from __future__ import annotations

import argparse
from pathlib import Path

from tqdm import tqdm

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


class _LiveProgress:
    """A progress bar over finished trials, with the counts and the current front size."""

    def __init__(self, directions: list[str]):
        self.bar: tqdm | None = None
        self.directions = directions

    def __call__(self, p: Progress) -> None:
        import numpy as np

        from nas.search.pareto import non_dominated_mask

        if self.bar is None:
            self.bar = tqdm(total=p.requested, initial=p.finished, desc="trials", unit="trial")
        front = 0
        if p.completed_values:
            front = int(non_dominated_mask(np.array(p.completed_values), self.directions).sum())
        self.bar.n = p.finished
        self.bar.set_postfix(
            done=p.done, running=p.running, pruned=p.pruned, failed=p.failed, front=front
        )

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
            text += f"+attn[last {o['last']}]" if "last" in o else "+override"
        parts.append(text)
    return " | ".join(parts)


def _search(args: argparse.Namespace) -> int:
    import optuna

    from nas.search.config import load_config
    from nas.search.runner import run_search

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cfg = load_config(args.file, args.overrides)
    print(
        f"search {cfg.name}: {cfg.search.trials} trials, objectives "
        + ", ".join(f"{o.name} ({o.direction})" for o in cfg.objectives)
        + f", store {cfg.storage_url()}"
    )
    live = _LiveProgress(cfg.directions)
    try:
        outcome = run_search(cfg, fresh=args.fresh, require_resume=args.resume, on_progress=live)
    finally:
        live.close()
    if outcome.resumed:
        print(f"resumed {outcome.study_name}")
    counts = outcome.counts
    print(
        f"\n{outcome.study_name}: {counts['COMPLETE']} complete, {counts['PRUNED']} pruned, "
        f"{counts['FAIL']} failed in {outcome.wall_seconds / 60:.1f} min"
    )
    names = cfg.objective_names
    print(f"\nPareto front ({len(outcome.front)} architectures):")
    print(f"{'trial':>5s}  " + "  ".join(f"{n:>12s}" for n in names) + "  architecture")
    from nas.store import SearchStore

    store = SearchStore(outcome.storage_url, read_only=True)
    for t in sorted(outcome.front, key=lambda t: t.values[0], reverse=True):
        arch = store.architecture(t.user_attrs["arch_hash"])
        cells = "  ".join(f"{v:12.4g}" for v in t.values)
        print(f"{t.number:5d}  {cells}  {_describe_arch(arch.spec)}")
    store.dispose()
    print(f"\nhypervolume: {outcome.hypervolume:.6g}")
    target = outcome.storage_url if cfg.storage else str(Path(cfg.run_dir) / cfg.name)
    print(f"dashboard:   nas dashboard {target}")
    print(f"export:      nas export {target} --search {outcome.study_name} --pick knee")
    return 0


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
        + ", ".join(f"{k}={v:.4g}" for k, v in result.values.items())
    )
    print(f"  {result.arch_path}\n  {result.train_path}")
    print(f"train it with:\n  {result.command}")
    return 0
