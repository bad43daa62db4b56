"""The benchmark table: every architecture of a benchmark space, proxy-trained once per seed.

NAS-Bench-201's protocol: train a space once, then replay many searches against the record.
The file is Parquet with one row per (architecture, seed, epoch); an architecture that failed
(a constraint, an error) has one row with epoch 0 and its reason. The configuration it was
built with travels in the file's metadata, so a replay can refuse a table that answers for
another space, proxy recipe or throughput setting.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nas.arch.spec import ArchSpec
from nas.errors import NasError

TABLE_FORMAT = 1
METADATA_KEY = b"nas_bench"
# What decides the answers a table holds; search settings (sampler, pruner, budget) do not.
ANSWER_SECTIONS = ("space", "proxy", "throughput", "constraints", "objectives")


class BenchError(NasError):
    """A table that cannot be read, or does not answer the question asked of it."""


@dataclass(frozen=True)
class Curve:
    """One seed's proxy training of one architecture: per epoch, from epoch 1."""

    seed: int
    val_top1: tuple[float, ...]
    val_loss: tuple[float, ...]
    epoch_s: tuple[float, ...]
    val_size: int

    @property
    def final(self) -> float:
        return self.val_top1[-1]


@dataclass(frozen=True)
class TableArch:
    """An architecture of the table with what the search measures before training."""

    arch_hash: str
    spec: dict[str, Any]
    params: int | None
    macs: int | None
    throughput: float | None
    throughput_q25: float | None
    throughput_q75: float | None
    measure_s: float
    status: str
    reason: str | None = None
    curves: dict[int, Curve] = field(default_factory=dict)
    zero_cost: dict[str, float] = field(default_factory=dict)  # nas bench zero-cost

    @property
    def completed(self) -> bool:
        return self.status == "completed" and bool(self.curves)


@dataclass
class BenchTable:
    config: dict[str, Any]
    archs: dict[str, TableArch]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def seeds(self) -> list[int]:
        return sorted({s for a in self.archs.values() for s in a.curves})

    @property
    def epochs(self) -> int:
        return int(self.config["proxy"]["epochs"])

    def completed(self) -> list[TableArch]:
        return [a for a in self.archs.values() if a.completed]

    def lookup(self, arch_hash: str) -> TableArch:
        if arch_hash not in self.archs:
            raise BenchError(
                f"architecture {arch_hash} is not in the table ({len(self.archs)} architectures):"
                " the table was built for another space, or not exhaustively"
            )
        return self.archs[arch_hash]

    def final_points(self, seed: int | None = None) -> tuple[list[str], np.ndarray]:
        """(hashes, [[final accuracy, throughput]]) of the completed architectures: one seed's
        accuracy (``seed``), or the mean over the seeds an architecture has."""
        hashes, points = [], []
        for a in self.completed():
            if seed is not None and seed not in a.curves:
                continue
            acc = a.curves[seed].final if seed is not None else mean_final(a)
            hashes.append(a.arch_hash)
            points.append([acc, a.throughput])
        return hashes, np.array(points, dtype=float).reshape(-1, 2)

    # files -----------------------------------------------------------------------------------
    def write(self, path: str | Path) -> None:
        """Write atomically (a temporary file renamed), so a killed build never leaves half a
        table."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        rows = list(self._rows())
        scored = sorted({name for a in self.archs.values() for name in a.zero_cost})
        names = [*_COLUMNS, *(ZERO_COST_PREFIX + n for n in scored)]
        columns = {name: [r.get(name) for r in rows] for name in names}
        table = pa.table(columns)
        meta = {
            "format": TABLE_FORMAT,
            "config": self.config,
            "answers_fingerprint": answers_fingerprint(self.config),
            **self.meta,
        }
        table = table.replace_schema_metadata({METADATA_KEY: json.dumps(meta, default=str)})
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, path)

    def _rows(self):
        for a in sorted(self.archs.values(), key=lambda a: a.arch_hash):
            common = {
                "arch_hash": a.arch_hash,
                "spec": json.dumps(a.spec, sort_keys=True),
                "params": a.params,
                "macs": a.macs,
                "throughput": a.throughput,
                "throughput_q25": a.throughput_q25,
                "throughput_q75": a.throughput_q75,
                "measure_s": a.measure_s,
                "status": a.status,
                "reason": a.reason,
                **{ZERO_COST_PREFIX + n: v for n, v in a.zero_cost.items()},
            }
            if not a.curves:
                yield {**common, **_EMPTY_EPOCH}
            for seed, c in sorted(a.curves.items()):
                elapsed = np.cumsum(c.epoch_s)
                for e in range(len(c.val_top1)):
                    yield {
                        **common,
                        "seed": seed,
                        "epoch": e + 1,
                        "val_top1": c.val_top1[e],
                        "val_loss": c.val_loss[e],
                        "epoch_s": c.epoch_s[e],
                        "elapsed_s": float(elapsed[e]),
                        "val_size": c.val_size,
                    }


ZERO_COST_PREFIX = "zc_"
_COLUMNS = (
    "arch_hash",
    "seed",
    "epoch",
    "val_top1",
    "val_loss",
    "epoch_s",
    "elapsed_s",
    "val_size",
    "params",
    "macs",
    "throughput",
    "throughput_q25",
    "throughput_q75",
    "measure_s",
    "status",
    "reason",
    "spec",
)
_EMPTY_EPOCH = {
    "seed": None,
    "epoch": 0,
    "val_top1": None,
    "val_loss": None,
    "epoch_s": None,
    "elapsed_s": None,
    "val_size": None,
}


def mean_final(arch: TableArch) -> float:
    return float(np.mean([c.final for c in arch.curves.values()]))


def read_table(path: str | Path) -> BenchTable:
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.exists():
        raise BenchError(f"{path}: no such table (nas bench build writes one)")
    try:
        parquet = pq.read_table(path)
    except Exception as err:  # pyarrow raises several types for a damaged file
        raise BenchError(f"{path}: not a Parquet table ({type(err).__name__}: {err})") from None
    raw_meta = (parquet.schema.metadata or {}).get(METADATA_KEY)
    if raw_meta is None:
        raise BenchError(f"{path}: a Parquet file without nas bench metadata")
    meta = json.loads(raw_meta)
    if meta.get("format") != TABLE_FORMAT:
        raise BenchError(
            f"{path}: table format {meta.get('format')!r}, this version reads {TABLE_FORMAT}"
        )
    missing = [c for c in _COLUMNS if c not in parquet.column_names]
    if missing:
        raise BenchError(f"{path}: columns {missing} are missing")
    names = [*_COLUMNS, *(c for c in parquet.column_names if c.startswith(ZERO_COST_PREFIX))]
    columns = {name: parquet.column(name).to_pylist() for name in names}
    rows = [dict(zip(names, v, strict=True)) for v in zip(*columns.values(), strict=True)]
    by_arch: dict[str, list[dict]] = {}
    for row in rows:
        by_arch.setdefault(row["arch_hash"], []).append(row)
    archs = {}
    for arch_rows in by_arch.values():
        first = arch_rows[0]
        spec = json.loads(first["spec"])
        arch_hash = ArchSpec.from_dict(spec).content_hash()  # today's rule, whatever wrote it
        curves = {}
        for seed in sorted({r["seed"] for r in arch_rows if r["epoch"]}):
            epochs = sorted((r for r in arch_rows if r["seed"] == seed), key=lambda r: r["epoch"])
            curves[seed] = Curve(
                seed=seed,
                val_top1=tuple(r["val_top1"] for r in epochs),
                val_loss=tuple(r["val_loss"] for r in epochs),
                epoch_s=tuple(r["epoch_s"] for r in epochs),
                val_size=int(epochs[0]["val_size"]),
            )
        archs[arch_hash] = TableArch(
            arch_hash=arch_hash,
            spec=spec,
            params=first["params"],
            macs=first["macs"],
            throughput=first["throughput"],
            throughput_q25=first["throughput_q25"],
            throughput_q75=first["throughput_q75"],
            measure_s=float(first["measure_s"] or 0.0),
            status=first["status"],
            reason=first["reason"],
            curves=curves,
            zero_cost={
                k[len(ZERO_COST_PREFIX) :]: float(v)
                for k, v in first.items()
                if k.startswith(ZERO_COST_PREFIX) and v is not None
            },
        )
    config = meta.pop("config")
    meta.pop("format")
    return BenchTable(config=config, archs=archs, meta=meta)


def answers_fingerprint(config: dict[str, Any]) -> str:
    """A hash of what decides a table's answers (``ANSWER_SECTIONS``)."""
    blob = json.dumps({k: config.get(k) for k in ANSWER_SECTIONS}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def check_answers(table_config: dict[str, Any], asked: dict[str, Any], where: str) -> None:
    """Refuse a table built for another space, proxy, throughput setting, constraints or
    objectives than ``asked``, naming the first key that differs."""
    for section in ANSWER_SECTIONS:
        diff = _first_difference(table_config.get(section), asked.get(section), section)
        if diff is not None:
            key, built, wanted = diff
            raise BenchError(
                f"{where}: the table was built with {key} = {json.dumps(built, default=str)}, "
                f"but {json.dumps(wanted, default=str)} is asked for; rebuild it with "
                "nas bench build for this configuration"
            )


def _first_difference(a: Any, b: Any, key: str) -> tuple[str, Any, Any] | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            diff = _first_difference(a.get(k), b.get(k), f"{key}.{k}")
            if diff is not None:
                return diff
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            diff = _first_difference(x, y, f"{key}[{i}]")
            if diff is not None:
                return diff
        return None
    return None if a == b else (key, a, b)
