"""Proxy training, full-training recipe, throughput measurement."""

from nas.training.proxy import (
    EpochMetrics,
    ProxyConfig,
    ProxyResult,
    proxy_spec,
    train_proxy,
)
from nas.training.throughput import Throughput, measure_throughput

__all__ = [
    "EpochMetrics",
    "ProxyConfig",
    "ProxyResult",
    "Throughput",
    "measure_throughput",
    "proxy_spec",
    "train_proxy",
]
