"""FFCV ``.beton`` files: writing them from our sources, and loading them like the tensor loader.

Images are stored raw (uncompressed ``H x W x 3``) by default, so a ``.beton`` decodes to exactly
the source pixels and loaders can be compared bit for bit; JPEG is optional. Each ``.beton`` gets
a JSON sidecar (``<file>.json``) with the class names and normalisation statistics, which the
format itself has no place for.

FFCV decodes on CPU threads; crops, flips and normalisation run on the device with the same
plan and functions as the other loaders (FFCV's own GPU normalisation needs cupy), so for a seed
the batches equal the tensor loader's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from nas.data.arrays import ArrayDataset
from nas.data.augment import Augment, BatchTransform, EpochPlanner, num_batches

IMAGE_FIELD, LABEL_FIELD = "image", "label"


def _import_ffcv() -> None:
    """Import FFCV (lazily: it is heavy) without the torch thread count change its import makes;
    later ``from ffcv... import`` statements then find it loaded."""
    with _keep_torch_threads():
        import ffcv.loader  # noqa: F401
        import ffcv.writer  # noqa: F401


class SampleSource(Protocol):
    """What the writer reads: ``len`` and ``source[i] -> ((H, W, 3) uint8, label)``."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]: ...


@dataclass(frozen=True)
class BetonInfo:
    """The sidecar of a ``.beton``: what loaders need beyond the samples themselves."""

    num_samples: int
    class_names: tuple[str, ...]
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def sidecar_path(path: str | Path) -> Path:
    """Where the sidecar of the ``.beton`` at ``path`` lives: ``<path>.json``."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def read_info(path: str | Path) -> BetonInfo:
    """The sidecar of ``path``; without one, the class count from the labels stored in the file
    and no statistics."""
    side = sidecar_path(path)
    if side.is_file():
        data = json.loads(side.read_text())
        return BetonInfo(
            num_samples=data["num_samples"],
            class_names=tuple(data["class_names"]),
            mean=tuple(data["mean"]) if data.get("mean") else None,
            std=tuple(data["std"]) if data.get("std") else None,
        )
    reader = _reader(path)
    labels = reader.metadata[f"f{list(reader.handlers).index(LABEL_FIELD)}"]
    num_classes = int(labels.max()) + 1 if len(labels) else 0
    return BetonInfo(reader.num_samples, tuple(str(i) for i in range(num_classes)))


def beton_image_size(path: str | Path) -> tuple[int, int]:
    """``(H, W)`` shared by every image of the file (the raw decoder needs a single size)."""
    reader = _reader(path)
    meta = reader.metadata[f"f{list(reader.handlers).index(IMAGE_FIELD)}"]
    heights, widths = np.unique(meta["height"]), np.unique(meta["width"])
    if len(heights) != 1 or len(widths) != 1:
        raise ValueError(
            f"beton {path}: expected images of one size, found heights {heights.tolist()} "
            f"and widths {widths.tolist()}"
        )
    return int(heights[0]), int(widths[0])


def _reader(path: str | Path) -> Any:
    """FFCV's reader of ``path``, after checking the file has our two fields."""
    _import_ffcv()
    from ffcv.reader import Reader

    if not Path(path).is_file():
        raise FileNotFoundError(f"beton file {path} does not exist")
    reader = Reader(str(path))
    fields = list(reader.handlers)
    if IMAGE_FIELD not in fields or LABEL_FIELD not in fields:
        raise ValueError(
            f"beton {path}: expected fields {IMAGE_FIELD!r} and {LABEL_FIELD!r}, found {fields}"
        )
    return reader


def write_beton(
    source: SampleSource,
    path: str | Path,
    *,
    class_names: Sequence[str],
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    jpeg_quality: int | None = None,
    num_workers: int = 1,
    progress: bool = False,
) -> BetonInfo:
    """Write ``source`` to ``path`` (raw images, or JPEG at ``jpeg_quality``) and its sidecar.

    The file appears atomically (written under a temporary name, then renamed), so concurrent
    trials converting the same data never read a partial file. ``progress`` shows FFCV's
    progress bar (for the CLI); library callers keep it off.
    """
    _import_ffcv()
    from ffcv.fields import IntField, RGBImageField
    from ffcv.writer import DatasetWriter

    if jpeg_quality is not None and not 1 <= jpeg_quality <= 100:
        raise ValueError(f"jpeg_quality: expected an integer in [1, 100], found {jpeg_quality!r}")
    if len(source) == 0:
        raise ValueError(f"source: expected at least one sample, found none (writing {path})")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if jpeg_quality is None:
        image_field = RGBImageField(write_mode="raw")
    else:
        image_field = RGBImageField(write_mode="jpg", jpeg_quality=jpeg_quality)
    fields = {IMAGE_FIELD: image_field, LABEL_FIELD: IntField()}
    info = BetonInfo(
        num_samples=len(source),
        class_names=tuple(class_names),
        mean=tuple(float(m) for m in mean) if mean is not None else None,
        std=tuple(float(s) for s in std) if std is not None else None,
    )
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".beton.tmp")
    os.close(fd)
    try:
        with _ffcv_progress(progress):
            DatasetWriter(tmp, fields, num_workers=num_workers).from_indexed_dataset(source)
        _atomic_write_text(sidecar_path(path), json.dumps(dataclasses.asdict(info), indent=1))
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return info


@contextlib.contextmanager
def _ffcv_progress(enabled: bool) -> Iterator[None]:
    """FFCV's writer always draws a tqdm bar; library code must stay silent, so swap it out."""
    _import_ffcv()
    import ffcv.writer

    original = ffcv.writer.tqdm
    if not enabled:
        ffcv.writer.tqdm = functools.partial(original, disable=True)
    try:
        yield
    finally:
        ffcv.writer.tqdm = original


def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


class FFCVLoader(EpochPlanner):
    """Batches ``(x, y)`` from a ``.beton`` in the tensor loader's format and order.

    ``x`` is float ``(B, 3, H, W)`` channels_last and normalised on ``device``, ``y`` int64.
    Training mode reads FFCV's seeded random order and applies the planned crops and flips;
    eval mode reads sequentially without augmentation. ``num_workers`` is FFCV's decoding threads.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        batch_size: int,
        device: torch.device | str,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        train: bool = False,
        augment: Augment | None = None,
        seed: int = 0,
        drop_last: bool = False,
        num_workers: int = 2,
    ):
        _import_ffcv()
        from ffcv.fields.decoders import IntDecoder, SimpleRGBImageDecoder
        from ffcv.loader import Loader, OrderOption
        from ffcv.transforms import Squeeze, ToDevice, ToTensor

        if batch_size < 1:
            raise ValueError(f"batch_size: expected an integer >= 1, found {batch_size!r}")
        self.path = Path(path)
        self.num_samples = int(_reader(self.path).num_samples)
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.train = train
        self.augment = augment if train else None
        self.seed = seed
        self.drop_last = drop_last
        padding = self.augment.crop_padding if self.augment else 0
        self.transform = BatchTransform(mean, std, self.device, padding)
        to_device = [ToDevice(self.device, non_blocking=True)] if self.device.type == "cuda" else []
        with _keep_torch_threads():
            self.loader = Loader(
                str(self.path),
                batch_size=batch_size,
                num_workers=_ffcv_threads(num_workers),
                order=OrderOption.RANDOM if train else OrderOption.SEQUENTIAL,
                seed=seed,
                drop_last=drop_last,
                pipelines={
                    IMAGE_FIELD: [SimpleRGBImageDecoder(), ToTensor(), *to_device],
                    LABEL_FIELD: [IntDecoder(), ToTensor(), Squeeze(), *to_device],
                },
            )

    @property
    def epoch(self) -> int:
        return int(self.loader.next_epoch)

    def __len__(self) -> int:
        return num_batches(self.num_samples, self.batch_size, self.drop_last)

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration read epoch ``epoch`` (e.g. when resuming)."""
        self.loader.next_epoch = epoch

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        plan = self.plan(self.epoch)
        self.transform.start_epoch(plan)
        threads = torch.get_num_threads()
        start = 0
        for images, labels in self.loader:
            _restore_torch_threads(threads)
            # FFCV reuses its batch buffers: copy out before asking for the next batch.
            yield self.transform(images, start), labels.to(torch.int64, copy=True)
            start += len(labels)


@contextlib.contextmanager
def _keep_torch_threads() -> Iterator[None]:
    """FFCV sets torch's intra-op thread count to its worker count; undo that side effect."""
    threads = torch.get_num_threads()
    try:
        yield
    finally:
        _restore_torch_threads(threads)


def _restore_torch_threads(threads: int) -> None:
    # FFCV's loader thread calls torch.set_num_threads when an epoch starts, so this runs per
    # batch; the comparison keeps it free when nothing changed.
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def _ffcv_threads(num_workers: int) -> int:
    """FFCV's thread count: numba refuses more threads than cores, and 0 means all cores."""
    cores = os.cpu_count() or 1
    return cores if num_workers < 1 else min(num_workers, cores)


def read_beton(path: str | Path, num_workers: int = 1) -> ArrayDataset:
    """All samples of a ``.beton`` (in file order) as uint8 arrays, for the in-memory loaders."""
    _import_ffcv()
    from ffcv.fields.decoders import IntDecoder, SimpleRGBImageDecoder
    from ffcv.loader import Loader, OrderOption
    from ffcv.transforms import ToTensor

    info = read_info(path)
    with _keep_torch_threads():
        loader = Loader(
            str(path),
            batch_size=512,
            num_workers=_ffcv_threads(num_workers),
            order=OrderOption.SEQUENTIAL,
            drop_last=False,
            pipelines={
                IMAGE_FIELD: [SimpleRGBImageDecoder()],
                LABEL_FIELD: [IntDecoder(), ToTensor()],
            },
        )
        images, labels = [], []
        for image_batch, label_batch in loader:
            images.append(np.asarray(image_batch).transpose(0, 3, 1, 2).copy())
            labels.append(label_batch.numpy().reshape(-1).astype(np.int64))
    return ArrayDataset(np.concatenate(images), np.concatenate(labels), info.class_names)
