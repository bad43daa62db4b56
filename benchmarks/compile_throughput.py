"""Inference throughput of every S18 preset, eager against ``torch.compile``, at 224 px.

MetaFormer blocks gain a lot from compilation (timm, RTX 4090, AMP, batch 1024: caformer_s18
1895 -> 6255 img/s, convformer_s18 1753 -> 6288 img/s), so a throughput objective measured eagerly
may rank mixers differently from the compiled networks a deployment would run. This measures both
with the search's own timer (``nas.training.throughput.measure_throughput``: warm-up steps, which
include compilation, then ``repeats`` timed blocks; median with its interquartile range; a noisy
round is re-measured) and reports each preset's speed-up and both rankings with Kendall's tau.
Every compiled measurement starts from a reset dynamo cache, so no preset inherits another's
graphs or hits the recompile limit. Writes a CSV and a Markdown table.

    python benchmarks/compile_throughput.py                          # CPU: batch 16, fp32
    python benchmarks/compile_throughput.py --device cuda            # GPU: batch 256, bf16 AMP
    python benchmarks/compile_throughput.py --presets caformer_s18 --resolution 64 --batch 2
    python benchmarks/compile_throughput.py --presets c_hpx_former_s18 --keep   # re-measure one

``--keep`` keeps the rows of the presets not measured in this run from the existing CSV, so a
measurement disturbed by other work on the host can be repeated alone.
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from pathlib import Path

import torch
from results_io import write_csv

from nas.models import list_presets, resolve_spec
from nas.search.noise import rank_agreement
from nas.training.recipe import resolve_device
from nas.training.throughput import Throughput, measure_throughput


def _mixers(preset: str) -> str:
    """``sepconv / sepconv / attention / attention``: each stage's first block's mixer."""
    return " / ".join(stage.block_mixers()[0].name for stage in resolve_spec(preset).stages)


def _ranks(values: list[float]) -> list[int]:
    """1 for the largest value."""
    order = sorted(range(len(values)), key=lambda i: -values[i])
    ranks = [0] * len(values)
    for rank, i in enumerate(order, start=1):
        ranks[i] = rank
    return ranks


def measure(preset: str, compiled: bool, args: argparse.Namespace) -> tuple[Throughput, float]:
    """One preset's throughput and the wall seconds the measurement took (with compilation)."""
    torch._dynamo.reset()
    start = time.perf_counter()
    result = measure_throughput(
        preset,
        device=args.device,
        resolution=args.resolution,
        batch=args.batch,
        amp=args.amp,
        compile=compiled,
        channels_last=True,
        mode="inference",
        warmup=args.warmup,
        steps=args.steps,
        repeats=args.repeats,
        threads=args.threads,
        max_relative_iqr=0.05,
        max_rounds=3,
    )
    return result, time.perf_counter() - start


def _kept_rows(path: Path, measured: list[str]) -> list[dict]:
    """The rows of ``path`` (an earlier run's CSV) for presets this run does not measure."""
    if not path.exists():
        return []
    with path.open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["preset"] not in measured]
    numbers = ("eager_img_s", "eager_q25", "eager_q75", "compiled_img_s", "compiled_q25")
    numbers += ("compiled_q75", "speedup", "eager_wall_s", "compiled_wall_s")
    for row in rows:
        row.pop("eager_rank", None), row.pop("compiled_rank", None)
        row.update({key: float(row[key]) for key in numbers})
    return rows


def _figure(t: Throughput) -> str:
    return f"{t.images_per_s:,.1f} [{t.q25_images_per_s:,.1f}-{t.q75_images_per_s:,.1f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--presets", nargs="*", default=None, help="default: every preset")
    parser.add_argument("--resolution", type=int, default=224)
    parser.add_argument("--batch", type=int, default=None, help="default: 16 on CPU, 256 on GPU")
    parser.add_argument(
        "--amp",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="bf16 autocast (CUDA only); default: on with CUDA",
    )
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps (compile included)")
    parser.add_argument("--steps", type=int, default=5, help="steps per timed block")
    parser.add_argument("--repeats", type=int, default=5, help="timed blocks per round")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: all)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument(
        "--keep", action="store_true", help="keep the other presets' rows of the existing CSV"
    )
    args = parser.parse_args()
    cuda = resolve_device(args.device).type == "cuda"
    args.batch = args.batch or (256 if cuda else 16)
    args.amp = cuda if args.amp is None else args.amp
    presets = args.presets or list_presets()

    stem = args.out / f"compile_throughput_{'cuda' if cuda else 'cpu'}"
    rows = _kept_rows(stem.with_suffix(".csv"), presets) if args.keep else []
    for preset in presets:
        eager, eager_s = measure(preset, False, args)
        compiled, compiled_s = measure(preset, True, args)
        rows.append(
            {
                "preset": preset,
                "mixers": _mixers(preset),
                "eager_img_s": round(eager.images_per_s, 2),
                "eager_q25": round(eager.q25_images_per_s, 2),
                "eager_q75": round(eager.q75_images_per_s, 2),
                "compiled_img_s": round(compiled.images_per_s, 2),
                "compiled_q25": round(compiled.q25_images_per_s, 2),
                "compiled_q75": round(compiled.q75_images_per_s, 2),
                "speedup": round(compiled.images_per_s / eager.images_per_s, 3),
                "eager_wall_s": round(eager_s, 1),
                "compiled_wall_s": round(compiled_s, 1),
            }
        )
        print(
            f"{preset}: eager {_figure(eager)}, compiled {_figure(compiled)} img/s, "
            f"x{rows[-1]['speedup']:.2f} (measured in {eager_s:.0f} s / {compiled_s:.0f} s)",
            flush=True,
        )
    rows.sort(key=lambda r: r["preset"])
    eager_rank = _ranks([r["eager_img_s"] for r in rows])
    compiled_rank = _ranks([r["compiled_img_s"] for r in rows])
    for row, e, c in zip(rows, eager_rank, compiled_rank, strict=True):
        row["eager_rank"], row["compiled_rank"] = e, c

    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(stem.with_suffix(".csv"), rows)
    lines = [
        f"{eager.device_name} ({eager.device}), torch {torch.__version__}, {args.resolution} px, "
        f"batch {args.batch}, {'bf16 AMP' if eager.amp else 'fp32'}, channels-last, inference, "
        f"{eager.threads or '-'} threads, load average {os.getloadavg()[0]:.1f}; img/s median "
        f"[interquartile range] of {args.repeats} blocks of {args.steps} steps",
        "",
        "| preset | mixers | eager img/s | compiled img/s | speed-up | rank eager -> compiled |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['preset']} | {r['mixers']} | {r['eager_img_s']:,.1f} "
            f"[{r['eager_q25']:,.1f}-{r['eager_q75']:,.1f}] | {r['compiled_img_s']:,.1f} "
            f"[{r['compiled_q25']:,.1f}-{r['compiled_q75']:,.1f}] | x{r['speedup']:.2f} | "
            f"{r['eager_rank']} -> {r['compiled_rank']} |"
        )
    if len(rows) >= 3:
        agreement = rank_agreement(
            [r["eager_img_s"] for r in rows], [r["compiled_img_s"] for r in rows]
        )
        lines += [
            "",
            "Eager against compiled ranking: "
            f"{str(agreement).replace('architectures', 'presets')} (95% bootstrap interval)",
        ]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
