"""How a candidate is shrunk and trained for the search: the typed proxy config.

Torch-free, so a search config is checked without importing torch; :mod:`nas.training.proxy`
trains with it."""

from __future__ import annotations

from dataclasses import dataclass, field

from nas.data.config import DataConfig
from nas.training.device import check_amp_dtype
from nas.typed_config import check_range


@dataclass
class ProxyConfig:
    """How a candidate is shrunk and trained.

    ``width_mult``/``depth_mult``/``dim_multiple`` feed :func:`proxy_spec`; the proxy image side
    is ``data.resolution``. ``drop_path_rate`` replaces the spec's (``None`` keeps it): a few
    epochs underfit, so the default is no stochastic depth. ``max_seconds`` bounds training and
    evaluation from the first step; when it runs out the current epoch is cut short, evaluated,
    reported, and the run ends with status ``"timeout"``. ``amp`` means bf16 autocast on CUDA
    (ignored on CPU); ``threads`` fixes CPU intra-op threads (``None``: leave as is), which
    CPU determinism across machines needs. ``seeds`` trains that many initialisations
    (``seed``, ``seed + 1``, ...; data order and images stay those of ``data``) in lockstep and
    reports their mean each epoch, so the pruner compares means and a lucky initialisation
    cannot carry an architecture.
    """

    epochs: int = 5
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    min_lr: float = 1e-5
    warmup_lr: float = 1e-6
    label_smoothing: float = 0.1
    drop_path_rate: float | None = 0.0
    clip_grad: float | None = None
    width_mult: float = 1.0
    depth_mult: float = 1.0
    dim_multiple: int = 8
    data: DataConfig = field(default_factory=lambda: DataConfig(resolution=32))
    seed: int = 0
    seeds: int = 1
    device: str = "auto"
    amp: bool = True
    amp_dtype: str = "bfloat16"
    compile: bool = False
    channels_last: bool = True
    max_seconds: float | None = None
    threads: int | None = None

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad key."""
        positive = {
            "epochs": self.epochs,
            "lr": self.lr,
            "width_mult": self.width_mult,
            "depth_mult": self.depth_mult,
            "dim_multiple": self.dim_multiple,
            "seeds": self.seeds,
        }
        for key, value in positive.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"proxy.{key}: expected a positive number, found {value!r}")
        for key in ("epochs", "dim_multiple", "seeds"):
            if not isinstance(getattr(self, key), int):
                raise ValueError(f"proxy.{key}: expected an integer, found {getattr(self, key)!r}")
        for key, high in _PROXY_MAX.items():
            check_range(f"proxy.{key}", getattr(self, key), high=high)
        for key in ("weight_decay", "warmup_epochs", "min_lr", "warmup_lr"):
            if getattr(self, key) < 0:
                raise ValueError(f"proxy.{key}: expected >= 0, found {getattr(self, key)!r}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(
                f"proxy.label_smoothing: expected a value in [0, 1), found {self.label_smoothing!r}"
            )
        if self.drop_path_rate is not None and not 0 <= self.drop_path_rate < 1:
            raise ValueError(
                f"proxy.drop_path_rate: expected null or a value in [0, 1), "
                f"found {self.drop_path_rate!r}"
            )
        for key in ("clip_grad", "max_seconds", "threads"):
            value = getattr(self, key)
            if value is not None and value <= 0:
                raise ValueError(
                    f"proxy.{key}: expected null or a positive number, found {value!r}"
                )
        check_amp_dtype(self.amp_dtype, "proxy.amp_dtype")
        if not isinstance(self.data, DataConfig):
            raise ValueError(f"proxy.data: expected a DataConfig, found {type(self.data).__name__}")
        self.data.validate()


_PROXY_MAX = {
    "epochs": 10_000,
    "width_mult": 16,
    "depth_mult": 16,
    "dim_multiple": 1024,
    "seeds": 100,
}
"""Upper bounds of the proxy's sizes, so a typo does not train for days or grow past memory."""
