"""nas: search token-mixer architectures for MetaFormer-style vision backbones.

Importing the package is light, so that ``nas --help`` and a validation error need no torch:
specs (``nas.arch``) and the mixers' knob declarations are torch-free, ``nas.models`` (imported
on first use of ``nas.build_model`` or ``nas.models``) registers the ``nas_*`` timm models, and a
mixer's module is imported when the mixer is built.
"""

from nas.lazy import lazy_exports

__version__ = "0.1.0"

__getattr__ = lazy_exports(
    __name__,
    {"nas.arch": ["ArchSpec"], "nas.models": ["build_model"], "nas": ["arch", "mixers", "models"]},
)

__all__ = ["ArchSpec", "__version__", "arch", "build_model", "mixers", "models"]
