"""Registry of token mixers by name.

Every mixer maps a channels-last feature map ``(B, H, W, C)`` to one of the same shape and is
built as ``cls(dim, **knobs)``. Registering by name lets architecture specs (YAML) and the search
space refer to mixers as plain strings, and lets validation name the allowed knobs of each mixer.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nas.typed_config import suggest

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class MixerEntry:
    """A registered mixer: its class and the knobs its constructor accepts (with defaults)."""

    name: str
    cls: type[nn.Module]
    knobs: dict[str, Any]

    def check(self, dim: int, knobs: dict[str, Any], where: str = "mixer") -> None:
        """Raise ``ValueError`` naming ``where`` if ``knobs`` do not fit this mixer at ``dim``."""
        unknown = sorted(set(knobs) - set(self.knobs))
        if unknown:
            key = unknown[0]
            hint = suggest(key, self.knobs)
            raise ValueError(
                f"{where}: unknown knob {key!r} for mixer {self.name!r}{hint}; "
                f"allowed knobs: {sorted(self.knobs)}"
            )
        validate = getattr(self.cls, "validate_knobs", None)
        if validate is not None:
            try:
                validate(dim, **{**self.knobs, **knobs})
            except ValueError as err:
                raise ValueError(f"{where}: mixer {self.name!r}: {err}") from None


_MIXERS: dict[str, MixerEntry] = {}


def register_mixer(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator registering a mixer under ``name``; its keyword-only knobs need defaults."""

    def wrap(cls: type[nn.Module]) -> type[nn.Module]:
        if name in _MIXERS:
            raise ValueError(f"mixer {name!r} is already registered by {_MIXERS[name].cls!r}")
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]
        if not params or params[0].name != "dim":
            raise TypeError(f"mixer {name!r}: constructor must take `dim` as its first argument")
        knobs = {}
        for p in params[1:]:
            if p.kind is not inspect.Parameter.KEYWORD_ONLY or p.default is inspect.Parameter.empty:
                raise TypeError(
                    f"mixer {name!r}: knob {p.name!r} must be keyword-only with a default"
                )
            knobs[p.name] = p.default
        _MIXERS[name] = MixerEntry(name, cls, knobs)
        cls.mixer_name = name
        return cls

    return wrap


def _registered() -> dict[str, MixerEntry]:
    """Every registered mixer, the built-in ones imported on first use (``import nas`` is light)."""
    import nas.mixers  # noqa: F401  (each built-in mixer module registers itself)

    return _MIXERS


def get_mixer(name: str) -> MixerEntry:
    """The registry entry for ``name``; a ``KeyError`` with a suggestion if it is unknown."""
    try:
        return _registered()[name]
    except KeyError:
        raise KeyError(
            f"unknown mixer {name!r}{suggest(name, _MIXERS)}; registered mixers: {sorted(_MIXERS)}"
        ) from None


def create_mixer(name: str, dim: int, **knobs: Any) -> nn.Module:
    """Build mixer ``name`` at width ``dim`` after checking its knobs."""
    entry = get_mixer(name)
    entry.check(dim, knobs)
    return entry.cls(dim, **knobs)


def list_mixers() -> list[str]:
    """Names of all registered mixers, sorted."""
    return sorted(_registered())
