"""Datasets and loaders for proxy training.

``build_loaders(DataConfig(...), device)`` is the entry point. The default dataset is a
generated task whose label relates distant objects (:mod:`nas.data.nearest`; a Pathfinder task
is the alternative, see :mod:`nas.data.synthetic`); CIFAR, scikit-learn's bundled digits
(:mod:`nas.data.digits`), ImageFolder trees and FFCV ``.beton`` files are read too. All loaders
(device-resident tensors, FFCV, a torch DataLoader baseline) yield identical batches for a seed.
The names below are imported on first use (:mod:`nas.lazy`).
"""

from nas.lazy import lazy_exports

__getattr__ = lazy_exports(
    __name__,
    {
        "nas.data.arrays": ["ArrayDataset", "DatasetSplits", "channel_stats"],
        "nas.data.augment": ["Augment", "EpochPlan", "crop_flip", "normalize", "plan_epoch"],
        "nas.data.config": ["DataConfig", "DataError"],
        "nas.data.loaders": ["DataBundle", "build_loaders", "load_arrays"],
        "nas.data.digits": ["load_digits_dataset"],
        "nas.data.ffcv_io": ["BetonInfo", "FFCVLoader", "read_beton", "read_info", "write_beton"],
        "nas.data.nearest": ["NearestParams", "generate_nearest"],
        "nas.data.pathfinder": ["PathfinderParams", "generate_pathfinder"],
        "nas.data.readers": ["ImageFolderSource", "read_cifar", "read_image_folder"],
        "nas.data.synthetic": ["TASKS", "load_default_dataset", "task_params"],
        "nas.data.tensor_loader": ["TensorLoader"],
        "nas.data.torch_loader": ["TorchLoader"],
    },
)

__all__ = [
    "ArrayDataset",
    "Augment",
    "BetonInfo",
    "DataBundle",
    "DataConfig",
    "DataError",
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
