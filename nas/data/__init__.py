"""Datasets and loaders for proxy training.

``build_loaders(DataConfig(...), device)`` is the entry point. The default dataset is a
generated Pathfinder-style task (:mod:`nas.data.synthetic`) whose label needs long-range
information; CIFAR, ImageFolder trees and FFCV ``.beton`` files are read too. All loaders
(device-resident tensors, FFCV, a torch DataLoader baseline) yield identical batches for a seed.
"""

from nas.data.arrays import ArrayDataset, DatasetSplits, channel_stats
from nas.data.augment import Augment, EpochPlan, crop_flip, normalize, plan_epoch
from nas.data.config import DataBundle, DataConfig, build_loaders, load_arrays
from nas.data.ffcv_io import BetonInfo, FFCVLoader, read_beton, read_info, write_beton
from nas.data.readers import ImageFolderSource, read_cifar, read_image_folder
from nas.data.synthetic import (
    CLASS_NAMES,
    PathfinderParams,
    generate_pathfinder,
    load_default_dataset,
)
from nas.data.tensor_loader import TensorLoader
from nas.data.torch_loader import TorchLoader

__all__ = [
    "CLASS_NAMES",
    "ArrayDataset",
    "Augment",
    "BetonInfo",
    "DataBundle",
    "DataConfig",
    "DatasetSplits",
    "EpochPlan",
    "FFCVLoader",
    "ImageFolderSource",
    "PathfinderParams",
    "TensorLoader",
    "TorchLoader",
    "build_loaders",
    "channel_stats",
    "crop_flip",
    "generate_pathfinder",
    "load_arrays",
    "load_default_dataset",
    "normalize",
    "plan_epoch",
    "read_beton",
    "read_cifar",
    "read_image_folder",
    "read_info",
    "write_beton",
]
