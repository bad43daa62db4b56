"""Numbers for people: one style for the CLI and the dashboard, never scientific notation.

Values of 1000 and more are rounded to units with thousands separators (``10,010``), smaller
ones to ``digits`` significant digits (``12.3``, ``0.0004``); counts of MACs and parameters
take the SI prefix that keeps them readable (``850 kMACs``, ``12.3 MMACs``, ``1.8 GMACs``), so
a laptop-scale network is not ``0.00 GMACs``.
"""

from __future__ import annotations

import math

MISSING = "—"
PREFIXES = ("", "k", "M", "G", "T", "P")


def _round(value: float, digits: int) -> float:
    """``value`` rounded to ``digits`` significant digits."""
    if value == 0:
        return 0.0
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))


def _special(value: float | None) -> str | None:
    """The text of a missing or infinite value, else None."""
    if value is None or math.isnan(value):
        return MISSING
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    return None


def number(value: float | None, digits: int = 3) -> str:
    """``10,010``, ``999`` or ``1,000`` (999.5), ``12.3``, ``0.0004``; ``—`` when missing."""
    special = _special(value)
    if special is not None:
        return special
    value = float(value)
    if abs(_round(value, digits)) >= 1000:
        return f"{value:,.0f}"
    value = _round(value, digits)
    if value == 0:
        return "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    text = f"{value:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _prefixed(value: float, digits: int) -> tuple[str, str]:
    """(number, SI prefix) of a finite ``value``, the number in [1, 1000) where a prefix fits."""
    value = _round(value, digits)
    power = 0
    while abs(value) >= 1000 and power < len(PREFIXES) - 1:
        value = _round(value / 1000, digits)
        power += 1
    return number(value, digits), PREFIXES[power]


def macs(count: float | None, digits: int = 3) -> str:
    """Multiply-accumulates of one forward pass: ``850 kMACs``, ``12.3 MMACs``, ``1.8 GMACs``."""
    special = _special(count)
    if special is not None:
        return special if special == MISSING else f"{special} MACs"
    text, prefix = _prefixed(float(count), digits)
    return f"{text} {prefix}MACs"


def params(count: float | None, digits: int = 3) -> str:
    """A parameter count: ``850 params``, ``12.3 k params``, ``1.2 M params``."""
    special = _special(count)
    if special is not None:
        return special if special == MISSING else f"{special} params"
    text, prefix = _prefixed(float(count), digits)
    return f"{text} {prefix} params" if prefix else f"{text} params"


def objective(name: str, value: float | None, unit: bool = True) -> str:
    """An objective's value as a study stores it (accuracy a fraction, params in M, MACs in G):
    ``94.12 %``, ``10,010 img/s`` (``unit`` False: ``10,010``), ``1.2 M params``, ``850 kMACs``."""
    if value is None or math.isnan(value):
        return MISSING
    if name == "accuracy":
        return f"{100 * value:.2f} %"
    if name == "params":
        return params(value * 1e6)
    if name == "macs":
        return macs(value * 1e9)
    if name == "throughput" and unit:
        return f"{number(value)} img/s"
    return number(value)
