"""Images/s of each loader on the same data: loading alone, and proxy training through it.

The proxy trainer spends its time either in the model or in the loader; this shows which, per
loader kind (device-resident uint8 tensors with augmentation on the device, FFCV, and the plain
torch DataLoader baseline), on the default dataset with the same augmentation and batches.
"Loading" iterates one training epoch and touches every batch; "training" is the epoch's
images/s that ``train_proxy`` reports for a small MetaFormer. Writes a Markdown table and CSV.

    python benchmarks/loader_throughput.py                      # CPU
    python benchmarks/loader_throughput.py --device cuda        # GPU
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch
from results_io import write_csv

import nas  # noqa: F401  (registers the mixers)
from nas.data import DataConfig, build_loaders
from nas.training import ProxyConfig, train_proxy

SPEC = {
    "name": "loader-bench",
    "image_size": 32,
    "head": {"kind": "linear"},
    "stages": [
        {"depth": 1, "dim": 32, "mixer": "pooling"},
        {"depth": 2, "dim": 64, "mixer": "sepconv"},
        {"depth": 2, "dim": 128, "mixer": "sepconv"},
    ],
}


def loading_rate(cfg: DataConfig, device: torch.device, epochs: int) -> float:
    """Median images/s of full passes over the training loader (first pass not counted)."""
    loader = build_loaders(cfg, device).train_loader
    rates = []
    for epoch in range(epochs + 1):
        loader.set_epoch(epoch)
        start, images = time.perf_counter(), 0
        for x, y in loader:
            images += len(y)
            checksum = x.sum() + y.sum()  # touch the batch
        if device.type == "cuda":
            torch.cuda.synchronize()
        elif float(checksum) != float(checksum):
            raise RuntimeError("non-finite batch")
        if epoch:  # the first pass pays for conversion and workers starting
            rates.append(images / (time.perf_counter() - start))
    return statistics.median(rates)


def training_rate(cfg: DataConfig, device: str, epochs: int, threads: int) -> float:
    """Median per-epoch training images/s of ``train_proxy`` through this loader."""
    proxy = ProxyConfig(epochs=epochs, data=cfg, device=device, threads=threads)
    result = train_proxy(SPEC, proxy)
    if result.status != "completed":
        raise RuntimeError(f"{cfg.loader}: {result.status}: {result.reason}")
    return statistics.median(m.images_per_s for m in result.history)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--num-train", type=int, default=8192)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=2, help="timed passes per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="measurements per loader")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for training")
    parser.add_argument("--workers", type=int, default=2, help="torch/FFCV loader workers")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    configs = [
        DataConfig(
            loader=loader,
            resolution=32,
            num_train=args.num_train,
            num_val=512,
            batch_size=args.batch,
            num_workers=args.workers,
        )
        for loader in ("tensor", "ffcv", "torch")
    ]
    # The first proxy run of a process is ~20% slower throughout (one-off kernel and allocator
    # set-up), which would count against whichever loader goes first.
    training_rate(configs[0], args.device, 1, args.threads)
    # Rounds interleave the loaders, so drift in a shared machine's speed hits them alike.
    loading: dict[str, list[float]] = {cfg.loader: [] for cfg in configs}
    training: dict[str, list[float]] = {cfg.loader: [] for cfg in configs}
    for round_ in range(args.rounds):
        for cfg in configs:
            loading[cfg.loader].append(loading_rate(cfg, device, args.epochs))
            training[cfg.loader].append(training_rate(cfg, args.device, args.epochs, args.threads))
            print(
                f"round {round_}: {cfg.loader} loading {loading[cfg.loader][-1]:.0f} img/s, "
                f"training {training[cfg.loader][-1]:.0f} img/s",
                flush=True,
            )
    rows = [
        {
            "loader": cfg.loader,
            "loading_img_s": round(statistics.median(loading[cfg.loader])),
            "training_img_s": round(statistics.median(training[cfg.loader])),
            "training_min": round(min(training[cfg.loader])),
            "training_max": round(max(training[cfg.loader])),
        }
        for cfg in configs
    ]
    base = next(r for r in rows if r["loader"] == "torch")
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"loader_throughput_{device.type}"
    write_csv(stem.with_suffix(".csv"), rows)
    lines = [
        f"{args.num_train} default-dataset images at 32 px, batch {args.batch}, device "
        f"{args.device}, {args.threads} threads, {args.workers} loader workers, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; medians of "
        f"{args.rounds} interleaved rounds",
        "",
        "| loader | loading img/s | vs torch | proxy training img/s | min-max | vs torch |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['loader']} | {r['loading_img_s']} | "
            f"{r['loading_img_s'] / base['loading_img_s']:.2f}x | {r['training_img_s']} | "
            f"{r['training_min']}-{r['training_max']} | "
            f"{r['training_img_s'] / base['training_img_s']:.2f}x |"
        )
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
