"""Package attributes imported on first use (PEP 562), so that importing a package, as the CLI
does to print ``--help`` or a validation error, does not import torch."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, modules: dict[str, list[str]]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` giving each name listed under a submodule of
    ``modules`` (``{"nas.data.config": ["DataConfig", ...]}``) from that submodule, imported
    when the name is first read; names listed under ``package`` itself are its submodules."""
    where = {name: module for module, names in modules.items() for name in names}

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        if where[name] == package:
            return importlib.import_module(f"{package}.{name}")
        return getattr(importlib.import_module(where[name]), name)

    return __getattr__
