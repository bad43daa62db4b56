"""Does the default search's proxy rank architectures like a 3x longer training does?

The search keeps the architectures whose short proxy training (``proxy.epochs`` epochs) scores
best, so the proxy is only useful if its ranking agrees with a longer training's. On the
built-in ``nearest`` task accuracy jumps when a network "finds" the relation, so a few epochs may
mostly measure *when* that happened. This script draws N distinct architectures uniformly from a
search space, trains each under several recipes and prints Kendall's tau (with a bootstrap 95%
interval over architectures) of every recipe against the target recipe C:

* A: the space's proxy as is (seed 0);
* B: the same with ``seed=1`` (tau(A, B) is the seed-noise floor);
* C: the target, ``3 x epochs`` with ``seed=1``;
* extra candidate recipes from ``--recipe NAME=KEY=VALUE,...`` (applied on top of A), trained
  after A/B/C.

Every recipe validates on the same ``num_val`` (default 2500) generated images. Every finished
job is appended to the CSV at once, and jobs already there are skipped, so a killed run resumes.

    python benchmarks/proxy_fidelity.py                             # 20 archs, A/B/C
    python benchmarks/proxy_fidelity.py --recipe D=epochs=6,data.num_train=8000
    python benchmarks/proxy_fidelity.py --report                    # report from the CSV only
"""

from __future__ import annotations

import os

# One thread per training process, set before torch is imported (also inherited by workers).
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import csv  # noqa: E402
import dataclasses  # noqa: E402
import multiprocessing  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import yaml  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FIELDS = [
    "arch_hash",
    "recipe",
    "seed",
    "epochs",
    "num_train",
    "status",
    "val_top1",
    "val_top1_per_epoch",
    "val_loss_per_epoch",
    "seconds",
    "params",
    "arch",
]
TARGET = "C"


# --------------------------------------------------------------------------- recipes


def parse_recipe(text: str) -> tuple[str, dict[str, Any]]:
    """``NAME=KEY=VALUE,KEY=VALUE`` -> (NAME, {KEY: VALUE}); values are parsed as YAML scalars,
    keys are ProxyConfig fields or ``data.<DataConfig field>``."""
    name, sep, rest = text.partition("=")
    if not sep or not name or not rest:
        raise argparse.ArgumentTypeError(f"--recipe {text!r}: expected NAME=KEY=VALUE,...")
    changes = {}
    for item in rest.split(","):
        key, sep, value = item.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"--recipe {text!r}: {item!r} is not KEY=VALUE")
        changes[key.strip()] = yaml.safe_load(value)
    return name, changes


def apply_changes(proxy, changes: dict[str, Any]):
    top = {k: v for k, v in changes.items() if not k.startswith("data.")}
    data = {k[len("data.") :]: v for k, v in changes.items() if k.startswith("data.")}
    out = dataclasses.replace(proxy, **top)
    if data:
        out = dataclasses.replace(out, data=dataclasses.replace(out.data, **data))
    out.validate()
    return out


def build_recipes(cfg, num_val: int, extra: list[tuple[str, dict]]) -> dict[str, Any]:
    """Recipe name -> ProxyConfig, in training order (A, B, C, then the extras)."""
    base = dataclasses.replace(
        cfg.proxy,
        seed=0,
        threads=1,
        device="cpu",
        data=dataclasses.replace(cfg.proxy.data, num_val=num_val),
    )
    recipes = {
        "A": base,
        "B": dataclasses.replace(base, seed=1),
        "C": dataclasses.replace(base, epochs=3 * cfg.proxy.epochs, seed=1),
    }
    for name, changes in extra:
        if name in recipes:
            raise SystemExit(f"--recipe {name}: the name is taken (A, B, C are built in)")
        recipes[name] = apply_changes(base, changes)
    for proxy in recipes.values():
        proxy.validate()
    return recipes


# --------------------------------------------------------------------------- architectures


def describe(spec) -> str:
    """One line: per stage ``depth x dim mixer(knobs)`` plus hybrid attention blocks."""

    def mixer(m) -> str:
        knobs = ",".join(f"{k}={v}" for k, v in sorted(m.knobs.items()))
        return f"{m.name}({knobs})" if knobs else m.name

    parts = []
    for stage in spec.stages:
        text = f"{stage.depth}x{stage.dim} {mixer(stage.mixer)}"
        for o in stage.overrides:
            where = next(
                (f"{k}{getattr(o, k)}" for k in ("last", "every") if getattr(o, k) is not None),
                f"blocks{list(o.blocks or ())}",
            )
            text += f" +{where} {mixer(o.mixer)}"
        parts.append(text)
    return " | ".join(parts)


def sample_architectures(cfg, n: int, seed: int, max_asks: int = 5000) -> list:
    """N distinct (by content hash) valid architectures drawn uniformly from the space."""
    import optuna

    from nas.arch.spec import SpecError
    from nas.models.profile import profile

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    limit = cfg.constraints.max_params_m
    specs, seen = [], set()
    skipped = {"invalid": 0, "constraint": 0, "duplicate": 0}
    for _ in range(max_asks):
        if len(specs) == n:
            break
        trial = study.ask()
        try:
            spec = cfg.space.sample(trial)
        except SpecError:
            skipped["invalid"] += 1
            continue
        key = spec.content_hash()
        if key in seen:
            skipped["duplicate"] += 1
            continue
        if limit is not None and profile(spec).params / 1e6 > limit:
            skipped["constraint"] += 1
            continue
        seen.add(key)
        specs.append(spec)
    if len(specs) < n:
        raise SystemExit(f"only {len(specs)} distinct valid architectures in {max_asks} draws")
    print(f"sampled {n} architectures (skipped: {skipped})", flush=True)
    return specs


# --------------------------------------------------------------------------- jobs


def run_job(spec_dict: dict, proxy) -> dict:
    """Worker: train one architecture under one recipe (1 torch thread, CPU)."""
    import torch

    import nas  # noqa: F401  (registers the mixers)
    from nas.training.proxy import train_proxy

    torch.set_num_threads(1)
    result = train_proxy(spec_dict, proxy)
    return {
        "status": result.status,
        "reason": result.reason,
        "val_top1": result.final_top1,
        "top1": [m.val_top1 for m in result.history],
        "loss": [m.val_loss for m in result.history],
        "seconds": result.seconds,
        "params": result.params,
    }


def _init_worker() -> None:
    try:
        import torch

        torch.set_num_threads(1)
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass


def read_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def append_row(path: Path, row: dict) -> None:
    new = not path.exists() or path.stat().st_size == 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        if new:
            writer.writeheader()
        writer.writerow(row)
        f.flush()
        os.fsync(f.fileno())


def run_jobs(specs: list, recipes: dict, csv_path: Path, workers: int) -> None:
    done = {(r["arch_hash"], r["recipe"]) for r in read_rows(csv_path)}
    pending = [
        (name, spec)
        for name in recipes
        for spec in specs
        if (spec.content_hash(), name) not in done
    ]
    total = len(recipes) * len(specs)
    print(
        f"{total - len(pending)}/{total} jobs already in {csv_path}; {len(pending)} to run "
        f"on {workers} workers",
        flush=True,
    )
    if not pending:
        return
    a_seconds = {
        r["arch_hash"]: float(r["seconds"]) for r in read_rows(csv_path) if r["recipe"] == "A"
    }

    def next_job():
        """The first pending recipe's jobs, longest (by recipe A's time) first past A/B."""
        recipe = pending[0][0]
        group = [i for i, (name, _) in enumerate(pending) if name == recipe]
        if recipe not in ("A", "B"):
            group.sort(key=lambda i: -a_seconds.get(pending[i][1].content_hash(), 0.0))
        return pending.pop(group[0])

    # Pre-generate the datasets so that two workers never generate the same cache file at once.
    from nas.data.loaders import load_arrays

    for data in {repr(p.data): p.data for p in recipes.values()}.values():
        load_arrays(data)

    start = time.perf_counter()
    finished, to_run = 0, len(pending)
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker) as pool:
        running: dict[Future, tuple[str, Any]] = {}
        try:
            while pending or running:
                while pending and len(running) < workers:
                    name, spec = next_job()
                    running[pool.submit(run_job, spec.to_dict(), recipes[name])] = (name, spec)
                done_now, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in done_now:
                    name, spec = running.pop(fut)
                    out = fut.result()
                    proxy = recipes[name]
                    key = spec.content_hash()
                    append_row(
                        csv_path,
                        {
                            "arch_hash": key,
                            "recipe": name,
                            "seed": proxy.seed,
                            "epochs": proxy.epochs,
                            "num_train": proxy.data.num_train,
                            "status": out["status"],
                            "val_top1": "" if out["val_top1"] is None else f"{out['val_top1']:.4f}",
                            "val_top1_per_epoch": ";".join(f"{v:.4f}" for v in out["top1"]),
                            "val_loss_per_epoch": ";".join(f"{v:.4f}" for v in out["loss"]),
                            "seconds": f"{out['seconds']:.1f}",
                            "params": out["params"] if out["params"] is not None else "",
                            "arch": describe(spec),
                        },
                    )
                    if name == "A":
                        a_seconds[key] = out["seconds"]
                    finished += 1
                    top1 = "-" if out["val_top1"] is None else f"{out['val_top1']:.4f}"
                    extra = f" ({out['reason']})" if out["status"] != "completed" else ""
                    print(
                        f"[{time.perf_counter() - start:7.0f}s] {finished}/{to_run} "
                        f"{name} {key[:10]} top1={top1} {out['seconds']:.0f}s "
                        f"{out['status']}{extra}",
                        flush=True,
                    )
        except KeyboardInterrupt:
            for fut in running:
                fut.cancel()
            raise
    print(f"ran {finished} jobs in {time.perf_counter() - start:.0f}s wall", flush=True)


# --------------------------------------------------------------------------- report


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(";")] if text else []


def report(csv_path: Path, arch_hashes: list[str] | None = None) -> str:
    from nas.search.noise import rank_agreement

    rows = [r for r in read_rows(csv_path) if r["status"] == "completed" and r["val_top1"]]
    by: dict[str, dict[str, dict]] = {}
    for r in rows:
        by.setdefault(r["recipe"], {})[r["arch_hash"]] = r
    lines = [f"proxy fidelity report from {csv_path}"]
    if TARGET not in by or not all(k in by for k in "AB"):
        lines.append(f"recipes present: {sorted(by)}; need A, B and C for the report")
        return "\n".join(lines)
    core = set(by["A"]) & set(by["B"]) & set(by[TARGET])
    if arch_hashes is not None:
        core &= set(arch_hashes)
    archs = sorted(core)
    n = len(archs)
    all_archs = {r["arch_hash"] for r in read_rows(csv_path)}
    lines.append(
        f"{n} architectures with recipes A, B and C completed ({len(all_archs)} in the CSV)"
    )
    if n < 3:
        lines.append("need at least 3 for rank agreement")
        return "\n".join(lines)

    def final(recipe: str, hashes: list[str]) -> np.ndarray:
        return np.array([float(by[recipe][h]["val_top1"]) for h in hashes])

    def curve(recipe: str, h: str, col: str = "val_top1_per_epoch") -> list[float]:
        return _floats(by[recipe][h][col])

    c = final(TARGET, archs)
    a, b = final("A", archs), final("B", archs)
    ea, ec = by["A"][archs[0]]["epochs"], by[TARGET][archs[0]]["epochs"]

    def row(label: str, what: str, agreement) -> str:
        return f"  {label:<20} {what:<30} {agreement}"

    lines += [
        "",
        f"Kendall tau against C (target: {ec} epochs, seed 1), bootstrap 95% interval",
        row("tau(A, C)", f"A = {ea} ep, seed 0", rank_agreement(a, c)),
        row("tau(B, C)", f"B = {ea} ep, seed 1", rank_agreement(b, c)),
        row("tau(mean(A,B), C)", "A and B averaged", rank_agreement((a + b) / 2, c)),
        row("tau(A, B)", "seed-noise floor", rank_agreement(a, b)),
    ]
    extra = [k for k in by if k not in ("A", "B", TARGET)]
    for name in extra:
        have = [h for h in archs if h in by[name]]
        if len(have) < 3:
            lines.append(f"  recipe {name}: only {len(have)} of the architectures done")
            continue
        r0 = by[name][have[0]]
        what = f"{name} = {r0['epochs']} ep, seed {r0['seed']}, {r0['num_train']} train"
        lines.append(
            row(f"tau({name}, C)", what, rank_agreement(final(name, have), final(TARGET, have)))
        )
    lines.append(
        "  (B and C share seed 1, i.e. the same initial weights: tau(A, C) is the clean one)"
    )

    lines += ["", "free variants of recipe A's own curve against C's final accuracy"]
    best_a = np.array([max(curve("A", h)) for h in archs])
    auc_a = np.array([np.mean(curve("A", h)) for h in archs])
    loss_a = np.array([-curve("A", h, "val_loss_per_epoch")[-1] for h in archs])
    lines += [
        row("best epoch of A", "max top-1 over A's epochs", rank_agreement(best_a, c)),
        row("curve area of A", "mean top-1 over A's epochs", rank_agreement(auc_a, c)),
        row("val loss of A", "-final val loss", rank_agreement(loss_a, c)),
    ]

    def rungs(recipe: str, hashes: list[str]) -> list[str]:
        curves = [curve(recipe, h) for h in hashes]
        target = final(TARGET, hashes)
        out = []
        for e in range(min(len(cv) for cv in curves)):
            x = np.array([cv[e] for cv in curves])
            out.append(f"  epoch {e + 1:2d}: {rank_agreement(x, target)}")
        return out

    lines += ["", "rung by rung: recipe A's top-1 after each epoch against C's final top-1"]
    lines += rungs("A", archs)
    lines += ["", "rung by rung: recipe B's top-1 after each epoch against C's final top-1"]
    lines += rungs("B", archs)
    for name in extra:
        have = [h for h in archs if h in by[name]]
        if len(have) >= 3:
            lines += ["", f"rung by rung: recipe {name}'s top-1 after each epoch against C's final"]
            lines += rungs(name, have)

    lines += ["", "final top-1 per recipe: min / median / max   (job seconds: mean, total)"]
    for name in ["A", "B", TARGET, *extra]:
        have = [h for h in archs if h in by[name]]
        acc = final(name, have)
        secs = [float(by[name][h]["seconds"]) for h in have]
        lines.append(
            f"  {name}: {acc.min():.4f} / {statistics.median(acc):.4f} / {acc.max():.4f}   "
            f"({np.mean(secs):.0f}s, {sum(secs) / 60:.1f} min over {len(have)} jobs)"
        )

    lines += ["", "per architecture (top-1): " + "  ".join(["A", "B", TARGET, *extra]) + "  arch"]
    for h in sorted(archs, key=lambda h: -float(by[TARGET][h]["val_top1"])):
        vals = "  ".join(
            f"{float(by[k][h]['val_top1']):.3f}" if h in by[k] else "  -  "
            for k in ["A", "B", TARGET, *extra]
        )
        lines.append(f"  {h[:10]} {vals}  {by['A'][h]['arch']}")
    failed = [r for r in read_rows(csv_path) if r["status"] != "completed"]
    if failed:
        lines += ["", f"{len(failed)} jobs did not complete (left out):"]
        lines += [f"  {r['arch_hash'][:10]} {r['recipe']} {r['status']}" for r in failed]
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--space", default=str(ROOT / "search_spaces" / "metaformer.yaml"))
    p.add_argument(
        "--override", action="append", default=[], help="load_config override, e.g. proxy.epochs=1"
    )
    p.add_argument("--archs", type=int, default=20, help="number of distinct architectures")
    p.add_argument("--seed", type=int, default=0, help="seed of the random sampler")
    p.add_argument("--num-val", type=int, default=2500, help="validation images, every recipe")
    p.add_argument("--workers", type=int, default=2, help="training processes at once")
    p.add_argument(
        "--recipe",
        action="append",
        default=[],
        type=parse_recipe,
        help="extra recipe on top of A: NAME=KEY=VALUE,... e.g. D=epochs=6,data.num_train=8000",
    )
    p.add_argument("--csv", default=str(HERE / "results" / "proxy_fidelity.csv"))
    p.add_argument("--out", default=None, help="report text (default: the CSV's .txt)")
    p.add_argument("--report", action="store_true", help="only print the report from the CSV")
    args = p.parse_args(argv)

    csv_path = Path(args.csv)
    out_path = Path(args.out) if args.out else csv_path.with_suffix(".txt")
    hashes = None
    if not args.report:
        import nas  # noqa: F401  (registers the mixers)
        from nas.search.config import load_config

        t0 = time.perf_counter()
        cfg = load_config(args.space, args.override)
        recipes = build_recipes(cfg, args.num_val, args.recipe)
        for name, proxy in recipes.items():
            print(
                f"recipe {name}: epochs={proxy.epochs} seed={proxy.seed} "
                f"num_train={proxy.data.num_train} num_val={proxy.data.num_val} lr={proxy.lr}",
                flush=True,
            )
        specs = sample_architectures(cfg, args.archs, args.seed)
        hashes = [s.content_hash() for s in specs]
        run_jobs(specs, recipes, csv_path, args.workers)
        print(f"total wall time {time.perf_counter() - t0:.0f}s", flush=True)
    text = report(csv_path, hashes)
    print(text, flush=True)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(text + "\n")
    print(f"\nwrote {out_path}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
