"""Registry of token mixers by name, and the one way a mixer declares its knobs.

Every mixer maps a channels-last feature map ``(B, H, W, C)`` to one of the same shape and is
built as ``cls(dim, **knobs)``. Its knobs are declared once, as the fields of a frozen
``MixerKnobs`` dataclass (name, type, default, bounds through :func:`knob`) with a
``check(dim)`` for what depends on the width or on other knobs.
The declarations import no torch and name their module, so specs, search spaces and the CLI
validate a mixer, and list its knobs, without importing it; the module is imported when a mixer
is built.
"""

from __future__ import annotations

import dataclasses
import importlib
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from nas.errors import NasError
from nas.typed_config import ConfigError, check_range, convert, suggest

if TYPE_CHECKING:
    from torch import nn

K = TypeVar("K", bound="MixerKnobs")


class KnobError(NasError):
    """A mixer knob that is unknown, of the wrong type, or out of range for the mixer's width."""


class MixerKnobs:
    """Base of a mixer's knob declaration (subclasses are frozen dataclasses).

    ``revision`` is raised when what a knob's default builds changes (a default's meaning, not a
    new knob): content hashes then name the mixer ``name@revision``, so a hash stored for the old
    network never names the new one.
    """

    revision: ClassVar[int] = 1

    def check(self, dim: int) -> None:
        """Raise ``ValueError('<knob>: ...')`` for values the types admit but ``dim`` cannot use."""

    @classmethod
    def parse(cls: type[K], dim: int, values: Mapping[str, Any], where: str = "") -> K:
        """The knobs from ``values`` (unset ones at their defaults), type- and range-checked."""
        name = getattr(cls, "mixer_name", cls.__name__)
        at = f"{where}: " if where else ""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - fields)
        if unknown:
            raise KnobError(
                f"{at}unknown knob {unknown[0]!r} for mixer {name!r}"
                f"{suggest(unknown[0], fields)}; allowed knobs: {sorted(fields)}"
            )
        hints = typing.get_type_hints(cls)
        try:
            knobs = cls(**{k: convert(hints[k], v, k) for k, v in values.items()})
            knobs._check_bounds()
            knobs.check(dim)
        except ValueError as err:
            raise KnobError(f"{at}mixer {name!r}: {err}") from None
        return knobs

    def _check_bounds(self) -> None:
        """The bounds each number-valued knob declares with :func:`knob` (``None`` and choice
        strings such as ``"global"`` have none)."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            check_range(f.name, value, low=f.metadata.get("low"), above=f.metadata.get("above"))
            if f.metadata.get("odd"):
                check_odd(f.name, value)

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Every knob at its default, in declaration order."""
        return {f.name: f.default for f in dataclasses.fields(cls)}


def knob(
    default: Any, *, low: float | None = None, above: float | None = None, odd: bool = False
) -> Any:
    """A knob's default with its bounds (``>= low``, ``> above``, odd), declared beside the knob
    and checked by :meth:`MixerKnobs.parse`; ``check(dim)`` keeps what depends on other knobs."""
    return dataclasses.field(default=default, metadata={"low": low, "above": above, "odd": odd})


def check_odd(knob: str, value: int | None) -> None:
    """``knob`` must be an odd positive int (a kernel with a centre tap), or ``None``."""
    check_range(knob, value, low=1)
    if value is not None and value % 2 == 0:
        raise ConfigError(f"{knob}: expected an odd int, found {value!r}")


def check_width(knob: str, ratio: float, dim: int) -> None:
    """``int(ratio * dim)``, a hidden width, must be at least 1."""
    if int(ratio * dim) < 1:
        raise ConfigError(
            f"{knob}: expected a hidden width int({knob} * dim) >= 1 at dim {dim}, found {ratio!r}"
        )


@dataclass(frozen=True)
class MixerEntry:
    """A registered mixer: its knob declaration and where its module lives."""

    name: str
    knobs: type[MixerKnobs]
    module: str

    @property
    def defaults(self) -> dict[str, Any]:
        return self.knobs.defaults()

    @property
    def hashed_name(self) -> str:
        """The name content hashes use: ``name``, or ``name@revision`` from revision 2 on."""
        revision = self.knobs.revision
        return self.name if revision == 1 else f"{self.name}@{revision}"

    @cached_property
    def cls(self) -> type[nn.Module]:
        """The mixer's class, importing its module (and torch) on first use."""
        module, _, attr = self.module.partition(":")
        return getattr(importlib.import_module(module), attr)

    def check(self, dim: int, knobs: Mapping[str, Any], where: str = "") -> None:
        """Raise ``KnobError`` naming ``where`` if ``knobs`` do not fit this mixer at ``dim``."""
        self.knobs.parse(dim, knobs, where)


_MIXERS: dict[str, MixerEntry] = {}


def register_mixer(name: str, module: str) -> Callable[[type[K]], type[K]]:
    """Decorator registering a knob declaration as mixer ``name``, built by the class at
    ``module`` (``"package.module:Class"``), which takes ``(dim, **knobs)``."""

    def wrap(knobs: type[K]) -> type[K]:
        if name in _MIXERS:
            raise ValueError(f"mixer {name!r} is already registered by {_MIXERS[name].module}")
        if not (dataclasses.is_dataclass(knobs) and issubclass(knobs, MixerKnobs)):
            raise TypeError(f"mixer {name!r}: knobs must be a MixerKnobs dataclass")
        _MIXERS[name] = MixerEntry(name, knobs, module)
        knobs.mixer_name = name
        return knobs

    return wrap


def _registered() -> dict[str, MixerEntry]:
    """Every registered mixer, the built-in declarations imported on first use (no torch)."""
    import nas.mixers.knobs  # noqa: F401  (each built-in declaration registers itself)

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
    """Build mixer ``name`` at width ``dim``; its constructor checks the knobs."""
    return get_mixer(name).cls(dim, **knobs)


def list_mixers() -> list[str]:
    """Names of all registered mixers, sorted."""
    return sorted(_registered())
