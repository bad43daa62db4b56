"""Datasets and loaders for proxy training.

``build_loaders(DataConfig(...), device)`` is the entry point. The default dataset is a
generated task whose label relates distant objects (:mod:`nas.data.nearest`; a Pathfinder task
is the alternative, see :mod:`nas.data.synthetic`); CIFAR, scikit-learn's bundled digits
(:mod:`nas.data.digits`), ImageFolder trees and FFCV ``.beton`` files are read too. All loaders
(device-resident tensors, FFCV, a torch DataLoader baseline) yield identical batches for a seed.
"""

from nas.data.arrays import ArrayDataset, DatasetSplits, channel_stats
from nas.data.augment import Augment, EpochPlan, crop_flip, normalize, plan_epoch
from nas.data.config import DataBundle, DataConfig, build_loaders, load_arrays
from nas.data.digits import load_digits_dataset
from nas.data.ffcv_io import BetonInfo, FFCVLoader, read_beton, read_info, write_beton
from nas.data.nearest import NearestParams, generate_nearest
from nas.data.pathfinder import PathfinderParams, generate_pathfinder
from nas.data.readers import ImageFolderSource, read_cifar, read_image_folder
from nas.data.synthetic import TASKS, load_default_dataset, task_params
from nas.data.tensor_loader import TensorLoader
from nas.data.torch_loader import TorchLoader

__all__ = [
    "ArrayDataset",
    "Augment",
    "BetonInfo",
    "DataBundle",
    "DataConfig",
    "DatasetSplits",
    "EpochPlan",
    "FFCVLoader",
    "ImageFolderSource",
    "NearestParams",
    "PathfinderParams",
    "TASKS",
    "TensorLoader",
    "TorchLoader",
    "build_loaders",
    "channel_stats",
    "crop_flip",
    "generate_nearest",
    "generate_pathfinder",
    "load_arrays",
    "load_default_dataset",
    "load_digits_dataset",
    "normalize",
    "plan_epoch",
    "read_beton",
    "read_cifar",
    "read_image_folder",
    "read_info",
    "task_params",
    "write_beton",
]
