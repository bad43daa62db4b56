"""Forward+backward time and memory of every mixer at one width across resolutions.

Shows how each mixer scales with the number of pixels n = H*W: FFT mixers should grow about
n log n (log-log slope a little above 1) and global attention about n^2 (slope near 2) once the
map is large enough for the asymptotic term to dominate. Writes a CSV and a log-log PNG.

Memory: on CUDA the peak allocated during the step (``torch.cuda.max_memory_allocated``); on CPU,
where torch keeps no allocator statistics, the bytes of tensors autograd saves for the backward
pass (activation memory), which is what grows with resolution.

    python benchmarks/mixer_scaling.py                       # CPU, up to 128x128
    python benchmarks/mixer_scaling.py --device cuda         # GPU, up to 1024x1024
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from results_io import write_csv

import nas  # noqa: F401  (registers the mixers)
from nas.mixers import create_mixer, get_mixer

CONFIGS: dict[str, tuple[str, dict]] = {
    "identity": ("identity", {}),
    "pooling": ("pooling", {}),
    "sepconv": ("sepconv", {}),
    "attention (global)": ("attention", {}),
    "attention (window 8)": ("attention", {"window_size": 8}),
    "attention (global, rel. bias)": ("attention", {"rel_pos": "bias"}),
    "attention (window 8, shifted, bias)": (
        "attention",
        {"window_size": 8, "shift": True, "rel_pos": "bias"},
    ),
    "neighborhood (k=7)": ("neighborhood_attention", {}),
    "halo (block 8, halo 2)": ("halo_attention", {"block": 8, "halo": 2}),
    "multi_axis (P=8)": ("multi_axis_attention", {"partition": 8}),
    "global_context": ("global_context", {}),
    "attention_augmented (0.5)": ("attention_augmented", {}),
    "acmix (k_att=7)": ("acmix", {}),
    "hyena_pixel (K=2H-1)": ("hyena_pixel", {"kernel_size": "global"}),
    "hyena (bidirectional)": ("hyena", {"bidirectional": True}),
    "hyena (causal)": ("hyena", {"bidirectional": False}),
    "gnconv (order 3, dw7)": ("gnconv", {"order": 3}),
    "gnconv (order 3, gf)": ("gnconv", {"order": 3, "filter": "gf"}),
    "parc (circular)": ("parc", {}),
    "parc (2H-1 padded)": ("parc", {"variant": "oversize"}),
    "parc_v2 (ParCNetV2)": ("parc_v2", {}),
    "dynamic_filter": ("dynamic_filter", {}),
    "global_filter": ("global_filter", {}),
}
FFT_MIXERS = ("hyena", "parc", "parc_v2", "dynamic_filter", "global_filter")


def saved_activation_bytes(step: Callable[[], torch.Tensor]) -> int:
    """Bytes of the tensors autograd saves while running ``step`` (its activation memory)."""
    total = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        step()
    return total


def time_step(step: Callable[[], None], device: torch.device, repeats: int) -> list[float]:
    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    step()  # warm-up: plans, caches, lazy init
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - start)
    return times


def measure(label: str, side: int, args: argparse.Namespace, device: torch.device) -> dict:
    name, knobs = CONFIGS[label]
    if "grid_size" in get_mixer(name).defaults:
        knobs = {**knobs, "grid_size": side}
    mixer = create_mixer(name, args.dim, **knobs).to(device)
    x = torch.randn(args.batch, side, side, args.dim, device=device, requires_grad=True)

    def forward() -> torch.Tensor:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.amp):
            return mixer(x)

    def step() -> None:
        forward().float().square().mean().backward()
        x.grad = None
        mixer.zero_grad(set_to_none=True)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        times = time_step(step, device, args.repeats)
        memory = torch.cuda.max_memory_allocated(device) - base
    else:
        times = time_step(step, device, args.repeats)
        memory = saved_activation_bytes(forward)
    return {
        "mixer": label,
        "side": side,
        "pixels": side * side,
        "median_ms": 1e3 * statistics.median(times),
        "min_ms": 1e3 * min(times),
        "max_ms": 1e3 * max(times),
        "memory_mb": memory / 2**20,
        "memory_kind": "cuda_peak" if device.type == "cuda" else "saved_activations",
    }


def loglog_slope(rows: list[dict], key: str, points: int = 3) -> float:
    """Least-squares slope of log(key) against log(pixels) over the largest ``points`` sizes."""
    tail = sorted(rows, key=lambda r: r["pixels"])[-points:]
    if len(tail) < 2:
        return float("nan")
    xs = [math.log(r["pixels"]) for r in tail]
    ys = [math.log(max(r[key], 1e-9)) for r in tail]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return sum((a - mx) * (b - my) for a, b in zip(xs, ys, strict=True)) / sum(
        (a - mx) ** 2 for a in xs
    )


def plot(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(15, 6.5))
    for label in CONFIGS:
        mine = sorted((r for r in rows if r["mixer"] == label), key=lambda r: r["pixels"])
        if not mine:
            continue
        style = "-" if CONFIGS[label][0] in FFT_MIXERS else "--"
        px = [r["pixels"] for r in mine]
        ax_t.plot(px, [r["median_ms"] for r in mine], style, marker="o", ms=3, label=label)
        ax_m.plot(px, [r["memory_mb"] for r in mine], style, marker="o", ms=3, label=label)
    n = sorted({r["pixels"] for r in rows})
    anchor = [r["median_ms"] for r in rows if r["pixels"] == n[-1]]
    if anchor:
        ref = statistics.median(anchor)
        ax_t.plot(
            n,
            [ref * (p * math.log(p)) / (n[-1] * math.log(n[-1])) for p in n],
            "k:",
            lw=2,
            label="~ n log n",
        )
        ax_t.plot(n, [ref * (p / n[-1]) ** 2 for p in n], "k-.", lw=2, label="~ n^2")
    for ax, ylabel in (
        (ax_t, "forward+backward time (ms, median)"),
        (ax_m, f"memory (MB, {rows[0]['memory_kind']})"),
    ):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("pixels n = H*W")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
    ax_t.legend(fontsize=7, ncol=2)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--sizes", type=int, nargs="+", default=None)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads")
    parser.add_argument("--amp", action="store_true", help="bf16 autocast")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=20.0,
        help="skip larger sizes of a mixer once one step takes longer than this",
    )
    parser.add_argument("--mixers", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()

    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    sizes = args.sizes or (
        [8, 16, 32, 64, 128] if device.type == "cpu" else [16, 32, 64, 128, 256, 512, 1024]
    )
    args.out.mkdir(parents=True, exist_ok=True)
    tag = f"{device.type}_dim{args.dim}"
    rows = []
    for label in args.mixers:
        for side in sizes:
            try:
                row = measure(label, side, args, device)
            except torch.OutOfMemoryError:
                print(f"{label:24s} {side:5d}px  out of memory; larger sizes skipped")
                break
            rows.append(row)
            print(
                f"{label:24s} {side:5d}px  {row['median_ms']:10.2f} ms  "
                f"{row['memory_mb']:10.2f} MB",
                flush=True,
            )
            if row["median_ms"] > 1e3 * args.max_seconds:
                print(f"{label:24s} slower than {args.max_seconds}s; larger sizes skipped")
                break
            if device.type == "cuda":
                torch.cuda.empty_cache()

    csv_path = args.out / f"mixer_scaling_{tag}.csv"
    write_csv(csv_path, rows)
    png_path = args.out / f"mixer_scaling_{tag}.png"
    title = f"Mixer scaling on {device.type} (dim {args.dim}, batch {args.batch}"
    plot(rows, png_path, title + (", bf16)" if args.amp else ", fp32)"))

    print(f"\n{'mixer':24s} {'time slope':>10s} {'memory slope':>12s}  (log-log, largest 3 sizes)")
    for label in args.mixers:
        mine = [r for r in rows if r["mixer"] == label]
        print(
            f"{label:24s} {loglog_slope(mine, 'median_ms'):10.2f} "
            f"{loglog_slope(mine, 'memory_mb'):12.2f}"
        )
    print(f"\nwrote {csv_path} and {png_path}")


if __name__ == "__main__":
    main()
