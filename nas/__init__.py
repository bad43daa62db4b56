"""nas: search token-mixer architectures for MetaFormer-style vision backbones.

Importing the package is light, so that ``nas --help`` and a validation error need no torch:
``nas.models`` (imported on first use of ``nas.ArchSpec``, ``nas.build_model`` or
``nas.models``) registers the ``nas_*`` timm models, and the mixer registry loads the built-in
mixers the first time it is asked for one.
"""

from nas.lazy import lazy_exports

__version__ = "0.1.0"

__getattr__ = lazy_exports(
    __name__,
    {"nas.models": ["ArchSpec", "build_model"], "nas": ["mixers", "models"]},
)

__all__ = ["ArchSpec", "__version__", "build_model", "mixers", "models"]
