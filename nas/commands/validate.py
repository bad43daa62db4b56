"""``nas validate``: retrain a search's front at a higher fidelity and report rank agreement."""

from __future__ import annotations

import argparse

from nas.commands.search import add_takeover_flag


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "validate",
        help="retrain a search's front at a higher fidelity; report Kendall tau",
        description=(
            "Retrain the Pareto front of a finished search, its seed designs and M other completed "
            "architectures at a higher fidelity (3x the proxy epochs by default, other seeds; "
            "KEY=VALUE overrides the rest, e.g. proxy.data.name=digits), then report Kendall's "
            "tau between proxy and validation accuracy and how many front members hold."
        ),
    )
    p.add_argument("target", help="run folder (runs/NAME) or storage URL")
    p.add_argument("overrides", nargs="*", help="overrides of the search's configuration")
    p.add_argument("--search", default=None, help="study name (default: the newest search)")
    p.add_argument("--top", type=int, default=None, help="at most K front members (default: all)")
    p.add_argument("--sample", type=int, default=10, help="other completed trials drawn (10)")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default: 3x the proxy's)")
    p.add_argument("--seeds", type=int, default=1, help="seeds per architecture (1)")
    p.add_argument(
        "--no-references", action="store_true", help="leave the seed designs out (they cost time)"
    )
    add_takeover_flag(p)
    p.set_defaults(func=_validate)


def _validate(args: argparse.Namespace) -> int:
    import optuna

    from nas.commands.search import LiveProgress
    from nas.search.validation import run_validation

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    live = LiveProgress()
    try:
        outcome, report = run_validation(
            args.target,
            study_name=args.search,
            top=args.top,
            sample=args.sample,
            epochs=args.epochs,
            seeds=args.seeds,
            overrides=args.overrides,
            on_progress=live,
            references=not args.no_references,
            takeover=args.takeover,
        )
    finally:
        live.close()
    retrained = len(report.pairs)
    print(
        f"\n{outcome.study_name}: {retrained} retrained, "
        f"{outcome.counts['PROPOSAL'] - retrained} failed in {outcome.wall_seconds / 60:.1f} min"
    )
    print(f"{'trial':>6s}  {'proxy %':>8s}  {'validation %':>12s}")
    for number, proxy, validated in report.pairs:
        print(f"{number:6d}  {100 * proxy:8.1f}  {100 * validated:12.1f}")
    if report.per_epoch:
        print(
            "proxy accuracy at each epoch vs validation (kendall tau): "
            + ", ".join(f"epoch {e}: {tau:.2f}" for e, tau in report.per_epoch)
        )
    print(report.line())
    return 0
