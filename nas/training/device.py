"""Device and precision names checked before anything runs, without importing torch unless the
machine must be asked what it has."""

from __future__ import annotations

import re

from nas.typed_config import ConfigError

AMP_DTYPES = ("bfloat16", "float16")
"""Autocast precisions (torch dtype names)."""

_DEVICE = re.compile(r"(cpu|cuda|mps)(:\d+)?")


def check_amp_dtype(name: str, where: str) -> None:
    if name not in AMP_DTYPES:
        raise ConfigError(f"{where}: expected one of {list(AMP_DTYPES)}, found {name!r}")


def check_device(device: str, where: str, local: bool) -> None:
    """Reject, before any trial starts, a device name that is not one (``cdua``) and, when the
    trials run on this machine (``local``), one it does not have, listing the ones it has."""
    if device == "auto":
        return
    if not isinstance(device, str) or not _DEVICE.fullmatch(device):
        raise ConfigError(f"{where}: expected auto, cpu, cuda, cuda:N or mps, found {device!r}")
    if not local or device == "cpu":
        return
    import torch

    available = ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        available.append("mps")
    if not any(a == device or a.startswith(f"{device}:") for a in available):
        raise ConfigError(
            f"{where}: {device!r} is not on this machine, which has {', '.join(available)}; "
            "use one of them, or ray.address to run the trials on a cluster that has it"
        )
