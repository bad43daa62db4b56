"""``nas bench build``, ``nas bench simulate`` and ``nas bench zero-cost``."""

from __future__ import annotations

import argparse
from pathlib import Path

from nas.commands.search import add_takeover_flag


def add_commands(sub: argparse._SubParsersAction) -> None:
    bench = sub.add_parser(
        "bench",
        help="tabular benchmark of a space: build it, replay searches against it",
        description="Build a table of a (small) space, then replay seeded searches against it.",
    )
    commands = bench.add_subparsers(dest="bench_command", required=True, metavar="COMMAND")

    p = commands.add_parser(
        "build",
        help="proxy-train every architecture of a space and write the table",
        description=(
            "Enumerate the space's distinct architectures (or draw N uniformly when it has more),"
            " proxy-train each with the space's recipe through Ray, measure its throughput, and"
            " write one Parquet row per architecture, seed and epoch. Killed, the same command "
            "resumes."
        ),
    )
    p.add_argument("file", type=Path, help="space file, e.g. search_spaces/bench.yaml")
    p.add_argument("overrides", nargs="*", help="KEY=VALUE overrides of the space file")
    p.add_argument("--archs", type=int, required=True, help="at most N architectures")
    p.add_argument("--seeds", type=int, default=1, help="training seeds (1)")
    p.add_argument(
        "--seeds-subset", type=int, default=None, help="seeds after the first on N archs only"
    )
    p.add_argument("--out", type=Path, default=None, help="table file (default: <name>.parquet)")
    p.add_argument("--store", default=None, help="storage URL (default: runs/<name>/bench.db)")
    add_takeover_flag(p)
    p.set_defaults(func=_build)

    p = commands.add_parser(
        "simulate",
        help="replay seeded searches against a table in simulated time",
        description=(
            "Replay R seeded searches of each method against TABLE with W asynchronous workers "
            "in simulated time (the real driver, sampler and pruner; the table answers), and "
            "report normalised hypervolume against time as IQM with 95%% bootstrap intervals."
        ),
    )
    p.add_argument("table", type=Path, help="table file written by nas bench build")
    p.add_argument(
        "--space", type=Path, default=None, help="refuse the table unless built for this file"
    )
    p.add_argument(
        "--methods",
        nargs="+",
        default=None,
        help="methods (default: random tpe nsga2 random+pareto_sh tpe+pareto_sh "
        "tpe+median(acc)); NAME:KEY=VALUE;KEY=VALUE for a variant",
    )
    p.add_argument("--seeds", type=int, default=20, help="seeded replays per method (20)")
    p.add_argument("--workers", type=int, default=2, help="simulated workers (2)")
    p.add_argument(
        "--budget",
        type=float,
        default=None,
        help="simulated seconds (default: the time the "
        "workers need to train 25%% of the table fully)",
    )
    p.add_argument("--table-seed", type=int, default=None, help="training seed that answers")
    p.add_argument("--processes", type=int, default=2, help="replays run in parallel (2)")
    p.add_argument(
        "--out", type=Path, default=Path("benchmarks/results"), help="folder for CSV and PNG"
    )
    p.add_argument("--tag", default="bench_simulate", help="file name stem of the outputs")
    p.set_defaults(func=_simulate)

    p = commands.add_parser(
        "zero-cost",
        help="score a table's architectures with zero-cost proxies; report their Kendall tau",
        description=(
            "Score every architecture of TABLE at initialisation (synflow, naswot, grad_norm, "
            "snip; params and macs as baselines), store the scores in the table (the pre-screen"
            " replays read them) and report Kendall's tau against final proxy accuracy and "
            "against the accuracy-vs-throughput front."
        ),
    )
    p.add_argument("table", type=Path, help="table file written by nas bench build")
    p.add_argument("--batch", type=int, default=64, help="images in the scoring batch (64)")
    p.set_defaults(func=_zero_cost)


def _build(args: argparse.Namespace) -> int:
    import optuna

    from nas.bench.build import build_table
    from nas.commands.search import LiveProgress
    from nas.search.config import load_config

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cfg = load_config(args.file, args.overrides)
    out = args.out or Path("benchmarks/tables") / f"{cfg.name}.parquet"
    bars: dict[int, LiveProgress] = {}

    def progress(seed_pass: int, p) -> None:
        if seed_pass not in bars:
            for bar in bars.values():
                bar.close()
            print(f"seed pass {seed_pass + 1} of {args.seeds}")
            bars[seed_pass] = LiveProgress()
        bars[seed_pass](p)

    try:
        outcome = build_table(
            cfg,
            archs=args.archs,
            out=out,
            seeds=args.seeds,
            seeds_subset=args.seeds_subset,
            store_url=args.store,
            on_progress=progress,
            takeover=args.takeover,
        )
    finally:
        for bar in bars.values():
            bar.close()
    table = outcome.table
    completed = table.completed()
    multi = [a for a in completed if len(a.curves) > 1]
    size_kb = outcome.out.stat().st_size / 1024
    print(
        f"\n{outcome.out}: {len(table.archs)} architectures "
        f"({'every one of the space' if outcome.exhaustive else 'a uniform sample'}), "
        f"{len(completed)} completed, {len(multi)} with several seeds; "
        f"{size_kb:.0f} KiB, built in {outcome.wall_seconds / 60:.1f} min"
    )
    return 0


def _simulate(args: argparse.Namespace) -> int:
    import csv

    from tqdm import tqdm

    from nas.bench.report import SUMMARY_HEADER, compare, plot, summary_rows, write_curves
    from nas.bench.simulate import (
        DEFAULT_METHODS,
        check_replayable,
        default_budget,
        parse_method,
        run_replays,
    )
    from nas.bench.table import BenchError, read_table
    from nas.search.config import load_config

    table = read_table(args.table)
    asked = load_config(args.space) if args.space else None
    check_replayable(table, asked, str(args.table))
    if args.seeds < 1:
        raise BenchError(f"--seeds: expected an integer >= 1, found {args.seeds}")
    methods = [parse_method(m) for m in (args.methods or DEFAULT_METHODS)]
    table_seed = table.seeds[0] if args.table_seed is None else args.table_seed
    budget = args.budget if args.budget is not None else default_budget(table, args.workers)
    print(
        f"{args.table}: {len(table.archs)} architectures; {len(methods)} methods x "
        f"{args.seeds} seeds, {args.workers} workers, budget {budget / 60:.1f} simulated min"
    )
    bar = tqdm(total=len(methods) * args.seeds, desc="replays", unit="replay")
    replays = run_replays(
        table,
        methods,
        args.seeds,
        args.workers,
        budget,
        table_seed,
        processes=args.processes,
        on_done=lambda r: bar.update(1),
    )
    bar.close()
    baseline = "random" if any(m.name == "random" for m in methods) else methods[0].name
    comparison = compare(replays, table, budget, table_seed, baseline=baseline)
    rows = summary_rows(comparison)
    widths = [max(len(str(r[i])) for r in [SUMMARY_HEADER, *rows]) for i in range(len(rows[0]))]
    for row in [SUMMARY_HEADER, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / args.tag
    write_curves(comparison, f"{stem}_curves.csv")
    with open(f"{stem}_summary.csv", "w", newline="") as f:
        csv.writer(f).writerows([SUMMARY_HEADER, *rows])
    plot(
        comparison,
        f"{stem}.png",
        f"{args.table.name}: {len(table.archs)} archs, {args.workers} workers, "
        f"IQM of {args.seeds} seeds",
    )
    print(
        f"baseline ({baseline}) final HV {comparison.target:.3f}; wrote {stem}_curves.csv, "
        f"{stem}_summary.csv, {stem}.png"
    )
    return 0


def _zero_cost(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from nas.bench.table import read_table
    from nas.bench.zero_cost import ALL
    from nas.bench.zero_cost_ranking import rank_proxies, score_table

    table = read_table(args.table)
    bar = tqdm(total=len(table.completed()), desc="scored", unit="arch")
    score_table(table, ALL, batch=args.batch, on_done=lambda n: bar.update(1))
    bar.close()
    table.write(args.table)
    print(f"{'proxy':10s}  {'tau vs accuracy':24s}  {'tau vs front rank':24s}  spearman")
    for r in rank_proxies(table, ALL):
        acc, front = r.accuracy, r.front
        print(
            f"{r.name:10s}  {acc.tau:5.2f} [{acc.low:5.2f}, {acc.high:5.2f}]      "
            f"{front.tau:5.2f} [{front.low:5.2f}, {front.high:5.2f}]      "
            f"{r.spearman_accuracy:5.2f}"
        )
    print(f"over {len(table.completed())} architectures; scores written to {args.table}")
    return 0
