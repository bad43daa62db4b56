"""How well zero-cost proxies rank a table's architectures: scores at initialisation for every
architecture, then Kendall's tau (bootstrap 95% interval) against the table's final proxy
accuracy and against its accuracy-vs-throughput front (non-dominated rank), with the
parameter and MAC counts as the baselines a proxy has to beat (on NAS-Bench-201 several
published proxies do not; Abdelfattah et al. 2021).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from nas.arch.spec import ArchSpec
from nas.bench.metrics import DIRECTIONS
from nas.bench.table import BenchTable, mean_final
from nas.search.noise import RankAgreement, rank_agreement
from nas.search.pareto import non_dominated_sort

BASELINES = ("params", "macs")


def score_table(
    table: BenchTable,
    proxies: Sequence[str],
    batch: int = 64,
    seed: int = 0,
    on_done: Callable[[int], None] | None = None,
) -> None:
    """Fill every completed architecture's ``zero_cost`` scores (one fixed batch of the table's
    training images, the model initialised with ``seed``), and the baselines."""
    from nas.bench.zero_cost import probe_batch, score_architecture
    from nas.search.config import parse_config

    cfg = parse_config({k: v for k, v in table.config.items() if k != "references"})
    inputs, targets, classes = probe_batch(cfg.proxy.data, batch, seed)
    learned = [p for p in proxies if p not in BASELINES]
    for i, arch in enumerate(table.completed()):
        if learned:
            spec = ArchSpec.from_dict(arch.spec)
            arch.zero_cost.update(
                score_architecture(spec, inputs, targets, classes, learned, seed=seed)
            )
        arch.zero_cost.update(params=float(arch.params), macs=float(arch.macs))
        if on_done:
            on_done(i + 1)


@dataclass(frozen=True)
class ProxyRanking:
    name: str
    accuracy: RankAgreement  # score vs final proxy accuracy (mean over seeds)
    front: RankAgreement  # score vs -(non-dominated rank) of (accuracy, throughput)
    spearman_accuracy: float


def rank_proxies(table: BenchTable, proxies: Sequence[str]) -> list[ProxyRanking]:
    archs = [a for a in table.completed() if all(p in a.zero_cost for p in proxies)]
    accuracy = np.array([mean_final(a) for a in archs])
    points = np.array([[mean_final(a), a.throughput] for a in archs], dtype=float)
    front_rank = -non_dominated_sort(points, DIRECTIONS).astype(float)
    out = []
    for name in proxies:
        score = np.array([a.zero_cost[name] for a in archs], dtype=float)
        score = np.where(np.isfinite(score), score, np.nanmin(score[np.isfinite(score)]) - 1)
        out.append(
            ProxyRanking(
                name,
                rank_agreement(score, accuracy),
                rank_agreement(score, front_rank),
                spearman(score, accuracy),
            )
        )
    return sorted(out, key=lambda r: -r.accuracy.tau)


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rho (average ranks for ties): the correlation the NAS-Bench-201 figures use."""
    import pandas as pd

    rx, ry = pd.Series(x).rank().to_numpy(), pd.Series(y).rank().to_numpy()
    return float(np.corrcoef(rx, ry)[0, 1])
