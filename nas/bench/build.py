"""``nas bench build``: proxy-train every architecture of a space (or a uniform sample of it)
with the real trainer through Ray, then write the table.

Each seed is one pass: a store row of kind ``bench`` evaluated by the search driver as
proposals (never pruned, the same trainable, throughput measurement and store as a search),
so a killed build resumes where it stopped exactly like a killed search. The table is written
from the store once every pass is finished.
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import optuna

from nas.arch.spec import ArchSpec
from nas.bench.table import BenchError, BenchTable, Curve, TableArch
from nas.models.profile import profile
from nas.search.config import SearchConfig, parse_config
from nas.search.driver import Progress, Proposal
from nas.search.runner import drive, open_proposal_run
from nas.search.space import enumerate_architectures
from nas.search.trainable import constraint_violation
from nas.store import SearchStore

TABLE_ARCH_ATTR = "table_arch"
MAX_SAMPLE_DRAWS = 100


@dataclass(frozen=True)
class BuildOutcome:
    table: BenchTable
    exhaustive: bool
    wall_seconds: float
    out: Path


def plan_architectures(cfg: SearchConfig, archs: int) -> tuple[list[ArchSpec], bool]:
    """Every distinct architecture of the space when there are at most ``archs``, else
    ``archs`` of them drawn uniformly (over the enumerated architectures when the space can be
    enumerated, else over the sampler's define-by-run tree), the space's params/MACs
    constraints applied. Returns (architectures, exhaustive)."""
    if archs < 1:
        raise BenchError(f"--archs: expected an integer >= 1, found {archs}")
    everything = enumerate_architectures(cfg.space)
    if everything is not None and len(everything) <= archs:
        return everything, True
    rng = np.random.default_rng(cfg.search.seed)
    if everything is not None:
        pool = (everything[int(i)] for i in rng.permutation(len(everything)))
    else:
        pool = _random_architectures(cfg)
    chosen: dict[str, ArchSpec] = {}
    for draws, spec in enumerate(pool):
        if draws > MAX_SAMPLE_DRAWS * archs:
            break
        prof = profile(spec)
        if constraint_violation(cfg.constraints, prof.params, prof.macs, None) is None:
            chosen.setdefault(spec.content_hash(), spec)
        if len(chosen) == archs:
            break
    if len(chosen) < archs:
        raise BenchError(
            f"--archs {archs}: only {len(chosen)} distinct architectures within the constraints "
            "were found"
        )
    return list(chosen.values()), False


def _random_architectures(cfg: SearchConfig):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=cfg.search.seed))
    while True:
        trial = study.ask()
        try:
            yield cfg.space.sample(trial)
        except ValueError:
            continue


def build_table(
    cfg: SearchConfig,
    archs: int,
    out: str | Path,
    seeds: int = 1,
    seeds_subset: int | None = None,
    store_url: str | None = None,
    on_progress: Callable[[int, Progress], None] | None = None,
    takeover: bool = False,
) -> BuildOutcome:
    """Train the planned architectures once per seed (seeds after the first on
    ``seeds_subset`` of them, drawn at random) and write the table to ``out``; ``takeover``
    resumes a pass whose driver's lease has not expired (see :mod:`nas.search.lease`)."""
    if seeds < 1:
        raise BenchError(f"--seeds: expected an integer >= 1, found {seeds}")
    if seeds_subset is not None and seeds_subset < 1:
        raise BenchError(f"--seeds-subset: expected an integer >= 1, found {seeds_subset}")
    if cfg.proxy.seeds != 1:
        raise BenchError(
            f"proxy.seeds: a table holds one training per row, found proxy.seeds = "
            f"{cfg.proxy.seeds}; use --seeds for the table's seeds"
        )
    specs, exhaustive = plan_architectures(cfg, archs)
    order = np.random.default_rng(cfg.search.seed).permutation(len(specs))
    subset = [specs[int(i)] for i in order[: seeds_subset or len(specs)]]
    url = store_url or _default_store(cfg)
    store = SearchStore(url)
    search_ids, wall = [], 0.0
    for k in range(seeds):
        pass_cfg = _pass_config(cfg, cfg.proxy.seed + k, url)
        search_id, seconds = _run_pass(
            pass_cfg,
            store,
            url,
            specs if k == 0 else subset,
            on_progress=(lambda p, k=k: on_progress(k, p)) if on_progress else None,
            takeover=takeover,
        )
        search_ids.append(search_id)
        wall += seconds
    table = table_from_store(store, search_ids, cfg)
    table.meta.update(
        exhaustive=exhaustive,
        build_seconds=round(wall, 1),
        machine=f"{platform.machine()} {platform.processor() or ''}".strip(),
        max_concurrent=cfg.search.max_concurrent,
    )
    store.dispose()
    out = Path(out)
    table.write(out)
    return BuildOutcome(table=table, exhaustive=exhaustive, wall_seconds=wall, out=out)


def _default_store(cfg: SearchConfig) -> str:
    path = Path(cfg.run_dir).resolve() / cfg.name / "bench.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def _pass_config(cfg: SearchConfig, seed: int, url: str) -> SearchConfig:
    raw = json.loads(json.dumps(cfg.raw))
    raw.pop("references", None)
    raw["storage"] = url
    raw.setdefault("proxy", {})["seed"] = seed
    return parse_config(raw, default_name=cfg.name)


def _run_pass(
    cfg: SearchConfig,
    store: SearchStore,
    url: str,
    specs: list[ArchSpec],
    on_progress: Callable[[Progress], None] | None,
    takeover: bool = False,
) -> tuple[int, float]:
    """One seed's pass; a finished pass is reused, an unfinished one resumed."""
    fingerprint = hashlib.sha256(
        json.dumps(
            ["bench", cfg.fingerprint(), sorted(s.content_hash() for s in specs)], sort_keys=True
        ).encode()
    ).hexdigest()[:16]
    done = [s for s in store.searches() if s.fingerprint == fingerprint and s.status == "finished"]
    if done:
        return done[-1].id, 0.0
    proposals = [Proposal(s, (TABLE_ARCH_ATTR, s.content_hash())) for s in specs]
    run = open_proposal_run(
        cfg,
        store,
        url,
        fingerprint,
        f"{cfg.name}-bench-seed{cfg.proxy.seed}",
        kind="bench",
        requested=len(proposals),
        takeover=takeover,
    )
    outcome = drive(cfg, run, store, proposals, sample=False, on_progress=on_progress)
    search_id = run.search_id
    if any(s.id == search_id and s.status != "finished" for s in store.searches()):
        raise BenchError(
            f"the pass with seed {cfg.proxy.seed} did not finish; run the same command again to "
            "resume it"
        )
    return search_id, outcome.wall_seconds


def table_from_store(store: SearchStore, search_ids: list[int], cfg: SearchConfig) -> BenchTable:
    """The table of the bench passes ``search_ids`` (one per seed)."""
    key = cfg.throughput.key()
    archs: dict[str, TableArch] = {}
    for search_id in search_ids:
        search = next(s for s in store.searches() if s.id == search_id)
        seed = int(search.config["proxy"]["seed"])
        epochs: dict[int, list] = {}
        for number, epoch in store.epochs(search_id):
            epochs.setdefault(number, []).append(epoch)
        for trial in store.trials(search_id):
            if trial.arch_hash is None:
                continue
            arch = archs.get(trial.arch_hash) or _table_arch(store, trial, key)
            rows = sorted(epochs.get(trial.number, []), key=lambda e: e.epoch)
            if trial.state == "COMPLETE" and len(rows) == cfg.proxy.epochs:
                elapsed = [0.0] + [float(e.elapsed_s) for e in rows]
                arch.curves[seed] = Curve(
                    seed=seed,
                    val_top1=tuple(float(e.val_top1) for e in rows),
                    val_loss=tuple(float(e.val_loss) for e in rows),
                    epoch_s=tuple(b - a for a, b in zip(elapsed, elapsed[1:], strict=False)),
                    val_size=int(trial.val_size),
                )
                arch = _with_status(arch, "completed", None)
            elif not arch.curves:
                arch = _with_status(arch, "failed", trial.reason)
            archs[trial.arch_hash] = arch
    return BenchTable(config=cfg.stored_raw, archs=archs, meta={"seeds": len(search_ids)})


def _table_arch(store: SearchStore, trial, key: str) -> TableArch:
    record = store.architecture(trial.arch_hash)
    measured = next((m for m in store.throughputs(trial.arch_hash) if m.setting_key == key), None)
    spread = measured.spread if measured else {}
    return TableArch(
        arch_hash=trial.arch_hash,
        spec=record.spec,
        params=record.params,
        macs=record.macs,
        throughput=measured.images_per_s if measured else None,
        throughput_q25=spread.get("q25"),
        throughput_q75=spread.get("q75"),
        measure_s=float(spread.get("seconds") or 0.0),
        status="failed",
        reason=trial.reason,
    )


def _with_status(arch: TableArch, status: str, reason: str | None) -> TableArch:
    return TableArch(**{**arch.__dict__, "status": status, "reason": reason})
