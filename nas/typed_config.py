"""Load plain mappings (YAML, OmegaConf) into typed dataclasses with errors that name the key.

One loader serves every config section (search settings, proxy training, data, throughput), so
all of them reject bad input the same way: the dotted key path, what was expected, what was
found, and a suggestion for a misspelt key or choice.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, TypeVar, Union

from nas.errors import NasError

T = TypeVar("T")


class ConfigError(NasError):
    """A config value that does not fit its schema; the message starts with the key path."""


def suggest(name: str, choices: Any) -> str:
    """A ' (did you mean ...?)' hint for a misspelt ``name``, or an empty string."""
    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_range(
    where: str,
    value: float | None,
    low: float | None = None,
    high: float | None = None,
    above: float | None = None,
    error: type[NasError] = ConfigError,
) -> None:
    """Raise ``error`` ``where: expected ..., found value`` unless ``value`` is ``None`` or
    lies in ``[low, high]`` (``above``: strictly greater). Upper bounds keep a typo such as
    ``dim: 1e6`` from growing workers until the machine kills them."""
    if value is None:
        return
    too_low = (low is not None and value < low) or (above is not None and value <= above)
    if not too_low and (high is None or value <= high):
        return
    left = f"> {_num(above)}" if above is not None else f">= {_num(low)}" if low is not None else ""
    right = f"<= {_num(high)}" if high is not None else ""
    expected = " and ".join(part for part in (left, right) if part)
    raise error(f"{where}: expected {expected}, found {value!r}")


def _num(value: float | None) -> str:
    return f"{int(value):,}" if float(value or 0).is_integer() else f"{value:g}"


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    if origin in (list, tuple):
        return "a list"
    if origin in (dict, Mapping):
        return "a mapping"
    return getattr(tp, "__name__", str(tp))


def _found(value: Any) -> str:
    return f"found {type(value).__name__} {value!r}"


def convert(tp: Any, value: Any, where: str) -> Any:
    """``value`` checked and converted to type ``tp`` (ints are accepted where floats are)."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed or isinstance(value, bool) != any(
            isinstance(a, bool) for a in allowed
        ):
            hint = suggest(value, allowed) if isinstance(value, str) else ""
            raise ConfigError(f"{where}: expected {_describe(tp)}, found {value!r}{hint}")
        return value
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return convert(arg, value, where)
            except ConfigError as err:
                errors.append(err)
        if len(errors) == 1:
            raise errors[0]
        raise ConfigError(f"{where}: expected {_describe(tp)}, {_found(value)}")
    if dataclasses.is_dataclass(tp):
        return load(tp, value, where)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, {_found(value)}")
        (item,) = typing.get_args(tp)[:1] or (Any,)
        items = [convert(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, {_found(value)}")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected bool, {_found(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected int, {_found(value)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected float, {_found(value)}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected str, {_found(value)}")
        return value
    raise TypeError(f"{where}: unsupported schema type {tp!r}")


def load(cls: type[T], data: Any, where: str) -> T:
    """An instance of dataclass ``cls`` from mapping ``data``; missing keys take the defaults."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping, {_found(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            raise ConfigError(
                f"{where}.{key}: unknown key{suggest(key, fields)}; allowed: {sorted(fields)}"
            )
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = convert(hints[name], data[name], f"{where}.{name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where}.{name}: required key is missing")
    try:
        return cls(**kwargs)
    except ValueError as err:
        field_name = str(err).partition(":")[0]
        raise ConfigError(f"{where}{'.' if field_name in fields else ': '}{err}") from None


def dump(obj: Any) -> Any:
    """A dataclass tree back to plain YAML-able containers."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: dump(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [dump(v) for v in obj]
    if isinstance(obj, Mapping):
        return {k: dump(v) for k, v in obj.items()}
    return obj
