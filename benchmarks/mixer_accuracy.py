"""Proxy accuracy of each mixer on the default dataset at an equal training budget.

The search ranks architectures by proxy accuracy, so the default dataset must separate mixers:
this trains the same 3-stage proxy (depths 1/2/2, widths 32/64/128, 32 px) with one mixer in
every stage, for the same epochs, images and recipe, over several seeds, and reports the final
validation accuracy and its gap to the pooling-only (local) model. Writes a Markdown table, a
CSV and a bar chart.

    python benchmarks/mixer_accuracy.py                                 # default: nearest task
    python benchmarks/mixer_accuracy.py --task pathfinder --epochs 20
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from results_io import write_csv  # noqa: E402

import nas  # noqa: E402,F401  (registers the mixers)
from nas.data import DataConfig  # noqa: E402
from nas.training import ProxyConfig, train_proxy  # noqa: E402

MIXERS: dict[str, dict] = {
    "pooling": {"name": "pooling"},
    "sepconv (7x7)": {"name": "sepconv"},
    "attention (global)": {"name": "attention"},
    "attention (global, rel. bias)": {"name": "attention", "rel_pos": "bias"},
    "attention (window 4, shifted, rel. bias)": {
        "name": "attention",
        "window_size": 4,
        "shift": True,
        "rel_pos": "bias",
    },
    "attention (CvT conv. projections)": {"name": "attention", "qkv_conv": True},
    "neighborhood_attention (k=3)": {"name": "neighborhood_attention", "kernel_size": 3},
    "halo_attention (block 4, halo 1)": {"name": "halo_attention"},
    "multi_axis_attention (P=4)": {"name": "multi_axis_attention"},
    "global_context": {"name": "global_context"},
    "attention_augmented (share 0.5)": {"name": "attention_augmented"},
    "acmix": {"name": "acmix"},
    "hyena_pixel (K=2H-1)": {"name": "hyena_pixel"},
    "hyena (bidirectional)": {"name": "hyena"},
    "gnconv (order 3)": {"name": "gnconv"},
    "parc (circular)": {"name": "parc"},
    "parc_v2 (ParCNetV2, 2H-1 zero-padded)": {"name": "parc_v2"},
    "dynamic_filter": {"name": "dynamic_filter"},
    "global_filter": {"name": "global_filter"},
}
LOCAL = "pooling"


def spec_for(mixer: dict) -> dict:
    stages = [(1, 32), (2, 64), (2, 128)]
    return {
        "name": f"all-{mixer['name']}",
        "image_size": 32,
        "head": {"kind": "linear"},
        "stages": [
            {"depth": d, "dim": c, "mixer": dict(mixer), "res_scale": i == 2}
            for i, (d, c) in enumerate(stages)
        ],
    }


def plot(rows: list[dict], path: Path, title: str) -> None:
    """Mean accuracy per mixer as bars, the seeds' range as whiskers, pooling's level dotted."""
    top1 = [100 * r["top1_mean"] for r in rows]
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.barh([r["mixer"] for r in rows], top1, color="#4c78a8")
    ax.errorbar(
        top1,
        range(len(rows)),
        xerr=[
            [100 * (r["top1_mean"] - r["top1_min"]) for r in rows],
            [100 * (r["top1_max"] - r["top1_mean"]) for r in rows],
        ],
        fmt="none",
        color="black",
    )
    local = [100 * r["top1_mean"] for r in rows if r["mixer"] == LOCAL]
    if local:
        ax.axvline(local[0], color="#e45756", ls=":", lw=1.5, label="pooling (local)")
        ax.legend(loc="lower right")
    ax.set_xlim(min(100 * r["top1_min"] for r in rows) - 3, 100)
    ax.set_xlabel("validation top-1 (%)")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="nearest")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--num-train", type=int, default=4000)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--mixers", nargs="+", default=list(MIXERS), choices=list(MIXERS))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    rows = []
    for label in args.mixers:
        finals, seconds = [], []
        for seed in range(args.seeds):
            data = DataConfig(
                task=args.task,
                resolution=32,
                num_train=args.num_train,
                num_val=1000,
                batch_size=64,
            )
            cfg = ProxyConfig(
                epochs=args.epochs,
                lr=3e-3,
                warmup_epochs=0.5,
                label_smoothing=0.0,
                data=data,
                seed=seed,
                device=args.device,
                threads=args.threads,
            )
            result = train_proxy(spec_for(MIXERS[label]), cfg)
            if result.status != "completed":
                raise RuntimeError(f"{label} seed {seed}: {result.status}: {result.reason}")
            finals.append(result.final_top1)
            seconds.append(result.seconds)
            print(
                f"{label} seed {seed}: {[round(m.val_top1, 3) for m in result.history]}", flush=True
            )
        rows.append(
            {
                "mixer": label,
                "top1_mean": statistics.mean(finals),
                "top1_min": min(finals),
                "top1_max": max(finals),
                "train_s": statistics.mean(seconds),
            }
        )
    local = next((r["top1_mean"] for r in rows if r["mixer"] == LOCAL), None)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"mixer_accuracy_{args.task}"
    write_csv(stem.with_suffix(".csv"), rows)
    lines = [
        f"task {args.task}, 32 px, {args.num_train} training / 1000 validation images, "
        f"{args.epochs} epochs, {args.seeds} seeds, device {args.device}, {args.threads} "
        f"thread(s), {os.cpu_count()} CPUs",
        "",
        "| mixer (all stages) | val top-1 (mean) | min-max over seeds | gap to pooling | train s |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        gap = f"{100 * (r['top1_mean'] - local):+.1f} pt" if local is not None else "-"
        lines.append(
            f"| {r['mixer']} | {100 * r['top1_mean']:.1f}% | {100 * r['top1_min']:.1f}-"
            f"{100 * r['top1_max']:.1f} | {gap} | {r['train_s']:.0f} |"
        )
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    plot(rows, stem.with_suffix(".png"), f"{args.task}: proxy accuracy at {args.epochs} epochs")


if __name__ == "__main__":
    main()
