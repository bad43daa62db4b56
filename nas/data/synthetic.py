"""Generated datasets, cached on disk: the default ``nearest`` task and ``pathfinder``.

No download is needed and CI can train on them. Each task is a params dataclass (its knobs, a
``task`` name and a ``format_version``) and a vectorised generator that is a deterministic
function of the seed. The train and validation splits use independent random streams derived
from the seed, so the validation set does not change when ``num_train`` does. Arrays are cached
as ``.npz`` files whose name holds a hash of the task, every generation parameter and the
format version; regenerating gives identical bytes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from nas.data.arrays import ArrayDataset, DatasetSplits
from nas.data.nearest import NearestParams, generate_nearest
from nas.data.pathfinder import PathfinderParams, generate_pathfinder

TaskParams = NearestParams | PathfinderParams
DEFAULT_TASK = "nearest"
TASKS: dict[str, tuple[type[Any], Callable[..., ArrayDataset]]] = {
    "nearest": (NearestParams, generate_nearest),
    "pathfinder": (PathfinderParams, generate_pathfinder),
}


def task_knobs(task: str) -> list[str]:
    """The knobs a task takes besides its resolution."""
    return sorted(f.name for f in dataclasses.fields(TASKS[task][0]) if f.name != "resolution")


def task_params(task: str, resolution: int, knobs: dict[str, Any] | None = None) -> TaskParams:
    """The params of ``task`` at ``resolution`` with ``knobs`` applied; an unknown task or knob
    raises ``ValueError`` naming it and what is accepted."""
    if task not in TASKS:
        raise ValueError(f"task: expected one of {sorted(TASKS)}, found {task!r}")
    unknown = sorted(set(knobs or {}) - set(task_knobs(task)))
    if unknown:
        raise ValueError(
            f"task_params.{unknown[0]}: unknown knob of task {task!r}; "
            f"expected one of {task_knobs(task)}"
        )
    return TASKS[task][0](resolution=resolution, **(knobs or {}))


def generate(num_samples: int, seed: int, params: TaskParams) -> ArrayDataset:
    """``num_samples`` images of the task that ``params`` belongs to."""
    return TASKS[params.task][1](num_samples, seed, params)


def cache_key(num_train: int, num_val: int, seed: int, params: TaskParams) -> str:
    """File stem naming every generation parameter: equal keys mean identical arrays."""
    spec = {
        "task": params.task,
        "format": params.format_version,
        "num_train": num_train,
        "num_val": num_val,
        "seed": seed,
        **dataclasses.asdict(params.resolved()),
    }
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
    return f"{params.task}-r{params.resolution}-n{num_train}-{num_val}-s{seed}-{digest}"


def default_cache_dir() -> Path:
    """``$NAS_DATA_CACHE`` or ``~/.cache/nas/data``: shared by every trial of a search."""
    env = os.environ.get("NAS_DATA_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "nas" / "data"


def load_default_dataset(
    num_train: int = 10_000,
    num_val: int = 2_000,
    seed: int = 0,
    params: TaskParams | None = None,
    cache_dir: str | Path | None = None,
) -> tuple[DatasetSplits, Path]:
    """A generated dataset's splits (``params`` picks the task, default ``nearest`` at 32 px)
    and its cache file, generating and caching it if needed.

    The file is written under a temporary name and renamed, so concurrent trials never read a
    half-written cache.
    """
    params = params or NearestParams()
    params.validate()
    for name, value in (("num_train", num_train), ("num_val", num_val)):
        if value < 2:
            raise ValueError(f"default dataset {name}: expected an integer >= 2, found {value!r}")
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = cache / f"{cache_key(num_train, num_val, seed, params)}.npz"
    if not path.exists():
        train = generate(num_train, _split_seed(seed, 0), params)
        val = generate(num_val, _split_seed(seed, 1), params)
        cache.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache, suffix=".npz.tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez_compressed(
                    f,
                    train_images=train.images,
                    train_labels=train.labels,
                    val_images=val.images,
                    val_labels=val.labels,
                    class_names=np.array(train.class_names),
                )
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    with np.load(path) as z:
        names = tuple(str(s) for s in z["class_names"])
        splits = DatasetSplits(
            train=ArrayDataset(z["train_images"], z["train_labels"], names),
            val=ArrayDataset(z["val_images"], z["val_labels"], names),
        )
    return splits, path


def _split_seed(seed: int, split: int) -> int:
    """Independent seed per split, so one split does not shift when the other's size changes."""
    return int(np.random.SeedSequence([seed, split]).generate_state(1)[0])
