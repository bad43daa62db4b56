"""Proxy training, full-training recipe, throughput measurement (names imported on first use,
so that :class:`ProxyConfig` is read without torch)."""

from nas.lazy import lazy_exports

__getattr__ = lazy_exports(
    __name__,
    {
        "nas.training.proxy": ["EpochMetrics", "ProxyResult", "proxy_spec", "train_proxy"],
        "nas.training.proxy_config": ["ProxyConfig"],
        "nas.training.throughput": ["Throughput", "measure_throughput"],
    },
)

__all__ = [
    "EpochMetrics",
    "ProxyConfig",
    "ProxyResult",
    "Throughput",
    "measure_throughput",
    "proxy_spec",
    "train_proxy",
]
