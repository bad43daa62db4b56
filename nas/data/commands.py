"""``nas data ...`` subcommands: convert datasets to ``.beton`` and pre-build the default dataset.

Only these commands print (one result line each, plus FFCV's progress bar while converting); the
library functions they call stay silent.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from nas.data.arrays import ArrayDataset, DatasetSplits, channel_stats
from nas.data.synthetic import DEFAULT_TASK, TASKS, load_default_dataset, task_params

SOURCES = ("imagefolder", "cifar10", "cifar100", "default")


def add_data_commands(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``data convert`` and ``data generate``; each sets ``func(args) -> int`` (exit code)."""
    data = subparsers.add_parser("data", help="convert and generate datasets")
    commands = data.add_subparsers(dest="data_command", required=True)

    convert = commands.add_parser("convert", help="write a dataset split as an FFCV .beton")
    convert.add_argument("--source", choices=SOURCES, required=True)
    convert.add_argument(
        "--input",
        type=Path,
        help="CIFAR folder or ImageFolder root (or a class-per-folder split); "
        "for 'default' the cache folder (default: $NAS_DATA_CACHE or ~/.cache/nas/data)",
    )
    convert.add_argument("--output", type=Path, required=True, help="the .beton to write")
    convert.add_argument(
        "--split",
        choices=("train", "val", "test"),
        default="train",
        help="CIFAR: train or test (val = test); ImageFolder: the <input>/<split> subfolder "
        "if it exists, else <input> itself; default: train or val (test = val)",
    )
    convert.add_argument(
        "--resolution",
        type=int,
        help="ImageFolder: resize and centre-crop to this side; default dataset: image side",
    )
    convert.add_argument(
        "--jpeg-quality", type=int, help="store JPEG at this quality instead of raw pixels"
    )
    convert.add_argument("--num-workers", type=int, default=4, help="writer processes")
    _add_default_dataset_args(convert)
    convert.set_defaults(func=run_convert)

    generate = commands.add_parser("generate", help="generate and cache the default dataset")
    generate.add_argument("--resolution", type=int, default=32)
    generate.add_argument(
        "--cache-dir", type=Path, help="default: $NAS_DATA_CACHE or ~/.cache/nas/data"
    )
    _add_default_dataset_args(generate)
    generate.set_defaults(func=run_generate)
    return data


def _add_default_dataset_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", choices=sorted(TASKS), default=DEFAULT_TASK)
    parser.add_argument("--num-train", type=int, default=10_000)
    parser.add_argument("--num-val", type=int, default=2_000)
    parser.add_argument("--num-distractors", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)


def _default_splits(args: argparse.Namespace, cache_dir: Path | None) -> tuple[DatasetSplits, Path]:
    params = task_params(
        args.task, args.resolution or 32, {"num_distractors": args.num_distractors}
    )
    return load_default_dataset(args.num_train, args.num_val, args.seed, params, cache_dir)


def run_generate(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    splits, path = _default_splits(args, args.cache_dir)
    print(
        f"{args.task} dataset: {len(splits.train)} train + {len(splits.val)} val images "
        f"{args.resolution}x{args.resolution} in {path} ({time.perf_counter() - start:.1f}s)"
    )
    return 0


def run_convert(args: argparse.Namespace) -> int:
    from nas.data.ffcv_io import write_beton
    from nas.data.loaders import KNOWN_STATS
    from nas.data.readers import ImageFolderSource, read_cifar

    start = time.perf_counter()
    if args.source != "default" and args.input is None:
        raise ValueError(f"--input: expected a path for --source {args.source}, found none")
    if args.source.startswith("cifar") and args.resolution not in (None, 32):
        raise ValueError(f"--resolution: expected 32 (or none) for CIFAR, found {args.resolution}")
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None
    source: ArrayDataset | ImageFolderSource
    if args.source == "imagefolder":
        folder = args.input / args.split if (args.input / args.split).is_dir() else args.input
        source = ImageFolderSource(folder, args.resolution)
        mean, std = KNOWN_STATS["imagenet"]
    elif args.source in ("cifar10", "cifar100"):
        source = read_cifar(args.input, args.source, "train" if args.split == "train" else "test")
        mean, std = KNOWN_STATS[args.source]
    else:
        splits, _ = _default_splits(args, args.input)
        source = splits.train if args.split == "train" else splits.val
        mean, std = channel_stats(splits.train.images)
    info = write_beton(
        source,
        args.output,
        class_names=source.class_names,
        mean=mean,
        std=std,
        jpeg_quality=args.jpeg_quality,
        num_workers=args.num_workers,
        progress=True,
    )
    print(
        f"wrote {info.num_samples} images, {info.num_classes} classes "
        f"({'jpeg q' + str(args.jpeg_quality) if args.jpeg_quality else 'raw'}) to {args.output} "
        f"in {time.perf_counter() - start:.1f}s"
    )
    return 0
