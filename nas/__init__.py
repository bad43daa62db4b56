"""nas: search token-mixer architectures for MetaFormer-style vision backbones.

Importing the package registers every mixer and the ``nas_*`` timm models.
"""

from nas import mixers, models
from nas.models import ArchSpec, build_model

__version__ = "0.1.0"

__all__ = ["ArchSpec", "__version__", "build_model", "mixers", "models"]
