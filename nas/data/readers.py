"""Readers for real datasets on disk: CIFAR-10/100 python batches and ImageFolder trees.

They return :class:`~nas.data.arrays.ArrayDataset` (for the in-memory loaders) or, for
ImageFolder trees too big to hold, a lazy indexable source that the FFCV converter streams.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from nas.data.arrays import ArrayDataset
from nas.errors import NasError

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".webp", ".tif", ".tiff"})


@dataclass(frozen=True)
class _CifarLayout:
    """Where a CIFAR variant keeps its batches, labels and class names."""

    folder: str
    train: tuple[str, ...]
    test: tuple[str, ...]
    label_key: bytes
    meta_file: str
    names_key: bytes
    num_classes: int


CIFAR_LAYOUTS = {
    "cifar10": _CifarLayout(
        folder="cifar-10-batches-py",
        train=tuple(f"data_batch_{i}" for i in range(1, 6)),
        test=("test_batch",),
        label_key=b"labels",
        meta_file="batches.meta",
        names_key=b"label_names",
        num_classes=10,
    ),
    "cifar100": _CifarLayout(
        folder="cifar-100-python",
        train=("train",),
        test=("test",),
        label_key=b"fine_labels",
        meta_file="meta",
        names_key=b"fine_label_names",
        num_classes=100,
    ),
}


class UnsafePickleError(NasError):
    """A CIFAR batch file that names something a batch never holds (a pickle can run code)."""


# What a CIFAR batch pickle may name: numpy's array and scalar reconstructors (both the numpy 1
# and numpy 2 module paths) and the bytes codec of protocol-2 pickles. Dicts, lists, bytes and
# str need no global at all.
_CIFAR_GLOBALS = frozenset(
    {
        ("_codecs", "encode"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        *(
            (f"{package}.{module}", name)
            for package in ("numpy.core", "numpy._core")
            for module, name in (
                ("multiarray", "_reconstruct"),
                ("multiarray", "scalar"),
                ("numeric", "_frombuffer"),
            )
        ),
    }
)


class _CifarUnpickler(pickle.Unpickler):
    """Admits only :data:`_CIFAR_GLOBALS`, so a crafted batch cannot call anything else."""

    def __init__(self, file, path: Path):
        super().__init__(file, encoding="bytes")
        self.path = path

    def find_class(self, module: str, name: str):
        if (module, name) not in _CIFAR_GLOBALS:
            raise UnsafePickleError(
                f"{self.path}: refused to unpickle {module}.{name}: a CIFAR batch holds only "
                "dicts, lists, bytes, str and numpy arrays"
            )
        return super().find_class(module, name)


def _unpickle(path: Path) -> dict:
    """A CIFAR batch; anything beyond what batches hold is refused before it is built."""
    with open(path, "rb") as f:
        return _CifarUnpickler(f, path).load()


def read_cifar(root: str | Path, variant: str, split: str) -> ArrayDataset:
    """CIFAR ``split`` ("train" or "test") of ``variant`` ("cifar10" or "cifar100") from the
    python-pickle batches in ``root`` or in its ``cifar-10-batches-py``/``cifar-100-python``
    subfolder (the layout of the official archives and torchvision)."""
    if variant not in CIFAR_LAYOUTS:
        raise ValueError(f"variant: expected one of {sorted(CIFAR_LAYOUTS)}, found {variant!r}")
    layout = CIFAR_LAYOUTS[variant]
    if split not in ("train", "test"):
        raise ValueError(f"split: expected 'train' or 'test' for {variant}, found {split!r}")
    folder = Path(root)
    if (folder / layout.folder).is_dir():
        folder = folder / layout.folder
    files = [folder / name for name in (layout.train if split == "train" else layout.test)]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"{variant} {split}: missing batch files {missing}")
    images, labels = [], []
    for file in files:
        batch = _unpickle(file)
        images.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        labels.append(np.asarray(batch[layout.label_key], dtype=np.int64))
    meta = folder / layout.meta_file
    if meta.is_file():
        names = tuple(n.decode() for n in _unpickle(meta)[layout.names_key])
    else:
        names = tuple(str(i) for i in range(layout.num_classes))
    return ArrayDataset(np.concatenate(images), np.concatenate(labels), names)


class ImageFolderSource:
    """An ImageFolder tree (``root/<class>/<image>``) read lazily, one image per index.

    Classes are the sorted subfolder names, files are sorted within a class, so indices are
    stable. With ``resolution`` every image is resized (shorter side, bilinear) and centre-cropped
    to a square of that side; without it images are returned at their own size.
    """

    def __init__(self, root: str | Path, resolution: int | None = None):
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"image folder {self.root} does not exist")
        classes = sorted(p.name for p in self.root.iterdir() if p.is_dir())
        self.files: list[tuple[Path, int]] = []
        for label, name in enumerate(classes):
            for file in sorted((self.root / name).iterdir()):
                if file.suffix.lower() in IMAGE_EXTENSIONS:
                    self.files.append((file, label))
        if not self.files:
            raise ValueError(f"image folder {self.root}: expected class subfolders with images")
        self.class_names = tuple(classes)
        self.resolution = resolution

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        """``(H, W, 3)`` uint8 image and its label."""
        file, label = self.files[index]
        with Image.open(file) as img:
            img = img.convert("RGB")
            if self.resolution is not None:
                img = _resize_centre_crop(img, self.resolution)
            return np.asarray(img, dtype=np.uint8), label


def _resize_centre_crop(img: Image.Image, side: int) -> Image.Image:
    scale = side / min(img.size)
    width, height = max(side, round(img.width * scale)), max(side, round(img.height * scale))
    img = img.resize((width, height), Image.Resampling.BILINEAR)
    left, top = (width - side) // 2, (height - side) // 2
    return img.crop((left, top, left + side, top + side))


def read_image_folder(root: str | Path, resolution: int | None = None) -> ArrayDataset:
    """A whole ImageFolder tree in memory; without ``resolution`` all images must share a size."""
    source = ImageFolderSource(root, resolution)
    first = source[0][0].shape
    images = np.empty((len(source), 3, first[0], first[1]), dtype=np.uint8)
    labels = np.empty(len(source), dtype=np.int64)
    for i in range(len(source)):
        image, labels[i] = source[i]
        if image.shape != first:
            raise ValueError(
                f"image folder {source.root}: images differ in size ({source.files[i][0]} is "
                f"{image.shape[:2]}, the first is {first[:2]}); set a resolution to resize them"
            )
        images[i] = image.transpose(2, 0, 1)
    return ArrayDataset(images, labels, source.class_names)
