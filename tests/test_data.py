"""Tests of the data layer: the generated default dataset, readers, FFCV files and loaders.

Loaders are checked against each other and against the source arrays on small data written by
the tests themselves, so no download is needed.
"""

from __future__ import annotations

import argparse
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage, stats

from nas.data import (
    ArrayDataset,
    Augment,
    BetonInfo,
    DataConfig,
    FFCVLoader,
    NearestParams,
    PathfinderParams,
    TensorLoader,
    TorchLoader,
    build_loaders,
    channel_stats,
    crop_flip,
    generate_nearest,
    generate_pathfinder,
    load_default_dataset,
    read_beton,
    read_cifar,
    read_image_folder,
    read_info,
    write_beton,
)
from nas.data.commands import add_data_commands
from nas.data.nearest import DISTRACTOR_COLOUR, NEAR_COLOURS, REFERENCE_COLOUR
from nas.data.pathfinder import MARKER_COLOUR
from nas.data.readers import ImageFolderSource

MEAN, STD = (0.3, 0.4, 0.5), (0.2, 0.25, 0.3)


@pytest.fixture(scope="module")
def small() -> ArrayDataset:
    return generate_pathfinder(150, seed=7, params=PathfinderParams())


@pytest.fixture(scope="module")
def small_beton(small: ArrayDataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("beton") / "small.beton"
    mean, std = channel_stats(small.images)
    write_beton(small, path, class_names=small.class_names, mean=mean, std=std)
    return path


def expected_batch(images: np.ndarray) -> torch.Tensor:
    """Reference normalisation of uint8 (N, 3, H, W) arrays, computed independently."""
    x = torch.from_numpy(images).float()
    mean = torch.tensor(MEAN).view(1, 3, 1, 1) * 255.0
    std = torch.tensor(STD).view(1, 3, 1, 1) * 255.0
    return (x - mean) / std


def denormalise(x: torch.Tensor) -> np.ndarray:
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return torch.round((x * std + mean) * 255.0).to(torch.uint8).numpy()


def collect(loader) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*[(x.clone(), y.clone()) for x, y in loader], strict=True)
    return torch.cat(xs), torch.cat(ys)


# --- generated datasets -----------------------------------------------------------------------

TASKS = [
    (generate_nearest, NearestParams, ("green_nearer", "blue_nearer")),
    (generate_pathfinder, PathfinderParams, ("disconnected", "connected")),
]
TASK_IDS = ["nearest", "pathfinder"]


@pytest.mark.parametrize(("generate", "params", "classes"), TASKS, ids=TASK_IDS)
def test_generation_is_deterministic_and_seeded(generate, params, classes) -> None:
    a = generate(64, seed=1, params=params())
    b = generate(64, seed=1, params=params())
    c = generate(64, seed=2, params=params())
    assert a.images.dtype == np.uint8 and a.images.shape == (64, 3, 32, 32)
    assert a.labels.dtype == np.int64
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert not np.array_equal(a.images, c.images)
    assert a.class_names == classes


@pytest.mark.parametrize("n", [100, 101])
@pytest.mark.parametrize(("generate", "params", "classes"), TASKS, ids=TASK_IDS)
def test_classes_are_balanced(generate, params, classes, n: int) -> None:
    labels = generate(n, seed=3, params=params()).labels
    counts = np.bincount(labels, minlength=2)
    assert abs(int(counts[0]) - int(counts[1])) == n % 2


def _marker_centres(image: np.ndarray, colour: tuple[int, ...]) -> np.ndarray:
    """Centres (row, column) of the square blobs of exactly ``colour``."""
    mask = np.all(image == np.array(colour, dtype=np.uint8)[:, None, None], axis=0)
    blobs, count = ndimage.label(mask)
    return np.array(ndimage.center_of_mass(mask, blobs, range(1, count + 1))).reshape(-1, 2)


@pytest.mark.parametrize(
    "params",
    [
        NearestParams(),
        NearestParams(resolution=64, num_distractors=3),
        NearestParams(resolution=48, min_dist=0.4, min_ratio=1.5, num_distractors=1),
    ],
    ids=["32px", "64px-distractors", "48px-far"],
)
def test_nearest_label_is_the_nearer_candidate(params: NearestParams) -> None:
    """Oracle: markers found by colour in the image; the label is 1 exactly when the blue one
    is nearer to the red one, never a near-tie, every distance long, flips keep the label."""
    data = generate_nearest(60, seed=11, params=params)
    side, geometry = params.resolution, params.resolved()
    square = (2 * geometry.marker_radius + 1) ** 2
    for image, label in zip(data.images, data.labels, strict=True):
        (red,) = _marker_centres(image, REFERENCE_COLOUR)
        (green,), (blue,) = (_marker_centres(image, c) for c in NEAR_COLOURS)
        assert len(_marker_centres(image, DISTRACTOR_COLOUR)) == params.num_distractors
        assert image.any(axis=0).sum() == square * (3 + params.num_distractors)  # no overlap
        to_green, to_blue = np.hypot(*(green - red)), np.hypot(*(blue - red))
        assert bool(label) == (to_blue < to_green)
        assert min(to_green, to_blue) >= geometry.min_dist * side
        assert max(to_green, to_blue) >= geometry.min_ratio * min(to_green, to_blue)
        flipped = image[:, :, ::-1]
        (fred,), (fgreen,), (fblue,) = (
            _marker_centres(flipped, c) for c in (REFERENCE_COLOUR, *NEAR_COLOURS)
        )
        assert bool(label) == (np.hypot(*(fblue - fred)) < np.hypot(*(fgreen - fred)))
        m = geometry.margin
        ink = image.any(axis=0)
        assert not ink[:m].any() and not ink[-m:].any()
        assert not ink[:, :m].any() and not ink[:, -m:].any()


def test_nearest_geometry_does_not_depend_on_the_label() -> None:
    """Both classes draw their scenes alike: the nearer distance has the same distribution."""
    data = generate_nearest(4000, seed=2)
    nearer = np.empty(len(data))
    for i, image in enumerate(data.images):
        (red,) = _marker_centres(image, REFERENCE_COLOUR)
        candidates = np.concatenate([_marker_centres(image, c) for c in NEAR_COLOURS])
        nearer[i] = np.hypot(*(candidates - red).T).min()
    result = stats.ks_2samp(nearer[data.labels == 0], nearer[data.labels == 1])
    assert result.pvalue > 0.01


@pytest.mark.parametrize(
    "params",
    [
        PathfinderParams(),
        PathfinderParams(resolution=64),
        PathfinderParams(resolution=48, num_distractors=1, max_arm=0.6),
    ],
    ids=["32px", "64px", "48px-distractor"],
)
def test_label_is_marker_connectivity(params: PathfinderParams) -> None:
    """Oracle: flood fill of the non-black pixels from one marker reaches the other exactly
    when the label is 1; markers are far apart and all ink keeps clear of the border."""
    data = generate_pathfinder(40, seed=11, params=params)
    side, geometry = params.resolution, params.resolved()
    eight = np.ones((3, 3), dtype=bool)
    for image, label in zip(data.images, data.labels, strict=True):
        ink = image.any(axis=0)
        marker = np.all(image == np.array(MARKER_COLOUR, dtype=np.uint8)[:, None, None], axis=0)
        marks, num_marks = ndimage.label(marker, structure=eight)
        assert num_marks == 2
        parts, _ = ndimage.label(ink, structure=eight)
        comp = {int(parts[marks == k][0]) for k in (1, 2)}
        assert (len(comp) == 1) == bool(label)
        centres = np.array(ndimage.center_of_mass(marker, marks, [1, 2]))
        assert np.hypot(*(centres[0] - centres[1])) >= geometry.min_dist * side - 1
        m = geometry.margin
        assert not ink[:m].any() and not ink[-m:].any()
        assert not ink[:, :m].any() and not ink[:, -m:].any()
        # Curves never touch: one component per curve, as many in both classes.
        assert parts.max() == 2 + params.num_distractors


def test_bad_generation_parameters_name_the_field() -> None:
    with pytest.raises(ValueError, match="min_dist"):
        generate_pathfinder(4, seed=0, params=PathfinderParams(min_dist=0.9, max_dist=0.5))
    with pytest.raises(ValueError, match="resolution"):
        generate_pathfinder(4, seed=0, params=PathfinderParams(resolution=8))
    with pytest.raises(ValueError, match="nearest min_ratio: expected a ratio in"):
        generate_nearest(4, seed=0, params=NearestParams(min_ratio=0.5))
    with pytest.raises(ValueError, match="fewer than one scene in 200 fits"):
        generate_nearest(4, seed=0, params=NearestParams(min_dist=0.7, min_ratio=2.5))


def test_default_dataset_is_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    splits, path = load_default_dataset(120, 40, seed=5, cache_dir=tmp_path)
    assert path.parent == tmp_path and path.suffix == ".npz"
    assert len(splits.train) == 120 and len(splits.val) == 40
    first = path.read_bytes()

    import nas.data.synthetic as synthetic

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("regenerated although cached")

    monkeypatch.setattr(synthetic, "generate", fail)
    again, path_again = load_default_dataset(120, 40, seed=5, cache_dir=tmp_path)
    assert path_again == path
    np.testing.assert_array_equal(again.train.images, splits.train.images)
    np.testing.assert_array_equal(again.val.labels, splits.val.labels)
    monkeypatch.undo()

    path.unlink()
    load_default_dataset(120, 40, seed=5, cache_dir=tmp_path)
    assert path.read_bytes() == first  # regenerating gives identical bytes
    _, other = load_default_dataset(120, 40, seed=6, cache_dir=tmp_path)
    assert other != path
    # The validation split does not depend on the size of the training split.
    bigger, _ = load_default_dataset(130, 40, seed=5, cache_dir=tmp_path)
    np.testing.assert_array_equal(bigger.val.images, splits.val.images)


# --- tensor loader ----------------------------------------------------------------------------


def test_tensor_loader_eval_is_the_source_in_order(small: ArrayDataset) -> None:
    loader = TensorLoader(
        small.images, small.labels, batch_size=64, device="cpu", mean=MEAN, std=STD
    )
    assert len(loader) == 3
    x, y = collect(loader)
    first = next(iter(loader))[0]
    assert first.shape == (64, 3, 32, 32) and first.dtype == torch.float32
    assert first.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(x, expected_batch(small.images))
    assert torch.equal(y, torch.from_numpy(small.labels))
    dropped = TensorLoader(
        small.images,
        small.labels,
        batch_size=64,
        device="cpu",
        mean=MEAN,
        std=STD,
        drop_last=True,
    )
    assert len(dropped) == 2 and sum(len(b[1]) for b in dropped) == 128


def noise_data(n: int = 12, side: int = 8) -> ArrayDataset:
    rng = np.random.default_rng(0)
    images = rng.integers(1, 256, size=(n, 3, side, side), dtype=np.uint8)  # no zeros
    return ArrayDataset(images, np.arange(n, dtype=np.int64), tuple(map(str, range(n))))


def train_loader(data: ArrayDataset, seed: int, augment: Augment) -> TensorLoader:
    return TensorLoader(
        data.images,
        data.labels,
        batch_size=5,
        device="cpu",
        mean=MEAN,
        std=STD,
        train=True,
        augment=augment,
        seed=seed,
    )


def test_tensor_loader_is_deterministic_per_seed_and_epoch() -> None:
    data = noise_data()
    aug = Augment(crop_padding=2)
    a, b, c = train_loader(data, 1, aug), train_loader(data, 1, aug), train_loader(data, 2, aug)
    a0, b0, c0 = collect(a), collect(b), collect(c)
    assert torch.equal(a0[0], b0[0]) and torch.equal(a0[1], b0[1])
    assert not torch.equal(a0[0], c0[0])
    a1 = collect(a)  # the next epoch differs...
    assert not torch.equal(a0[1], a1[1])
    b.set_epoch(1)  # ...and can be replayed
    assert torch.equal(collect(b)[0], a1[0])
    assert sorted(a0[1].tolist()) == list(range(len(data)))  # a permutation, every sample once


def test_crops_are_crops_of_the_padded_image() -> None:
    data, pad = noise_data(), 2
    x, y = collect(train_loader(data, 4, Augment(crop_padding=pad, hflip=False)))
    out = denormalise(x)
    seen = set()
    for image, label in zip(out, y.tolist(), strict=True):
        padded = np.pad(data.images[label], ((0, 0), (pad, pad), (pad, pad)))
        side = image.shape[-1]
        hits = [
            (dy, dx)
            for dy in range(2 * pad + 1)
            for dx in range(2 * pad + 1)
            if np.array_equal(padded[:, dy : dy + side, dx : dx + side], image)
        ]
        assert len(hits) == 1
        seen.add(hits[0])
    assert len(seen) > 1  # offsets differ per sample


def test_flip_flips() -> None:
    data = noise_data(n=24)
    x, y = collect(train_loader(data, 0, Augment(crop_padding=0, hflip=True)))
    flipped = 0
    for image, label in zip(denormalise(x), y.tolist(), strict=True):
        source = data.images[label]
        if not np.array_equal(image, source):
            np.testing.assert_array_equal(image, source[:, :, ::-1])
            flipped += 1
    assert 0 < flipped < len(data)
    x, y = collect(train_loader(data, 0, Augment(crop_padding=0, hflip=False)))
    np.testing.assert_array_equal(denormalise(x), data.images[y.numpy()])


def test_crop_flip_matches_numpy_reference() -> None:
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(6, 5, 7, 3), dtype=np.uint8)
    offsets = rng.integers(0, 7, size=(6, 2))
    flips = rng.random(6) < 0.5
    out = crop_flip(
        torch.from_numpy(images), torch.from_numpy(offsets), torch.from_numpy(flips), 3
    ).numpy()
    for i in range(6):
        padded = np.pad(images[i], ((3, 3), (3, 3), (0, 0)))
        crop = padded[offsets[i, 0] : offsets[i, 0] + 5, offsets[i, 1] : offsets[i, 1] + 7]
        np.testing.assert_array_equal(out[i], crop[:, ::-1] if flips[i] else crop)


# --- FFCV and the loaders against each other --------------------------------------------------


def test_beton_round_trip_and_sidecar(
    small: ArrayDataset, small_beton: Path, tmp_path: Path
) -> None:
    back = read_beton(small_beton)
    np.testing.assert_array_equal(back.images, small.images)
    np.testing.assert_array_equal(back.labels, small.labels)
    info = read_info(small_beton)
    assert info.num_samples == len(small) and info.class_names == small.class_names
    assert info.mean == channel_stats(small.images)[0]
    bare = tmp_path / "bare.beton"  # a .beton without our sidecar: classes from its labels
    shutil.copy(small_beton, bare)
    assert read_info(bare) == BetonInfo(len(small), ("0", "1"))
    with pytest.raises(FileNotFoundError):
        FFCVLoader(tmp_path / "missing.beton", batch_size=4, device="cpu", mean=MEAN, std=STD)


def test_all_loaders_agree(small: ArrayDataset, small_beton: Path) -> None:
    """Eval: every loader gives the normalised source in order. Train: identical batches."""
    common = {"batch_size": 64, "device": "cpu", "mean": MEAN, "std": STD}
    train = {"train": True, "augment": Augment(crop_padding=4), "seed": 9, **common}
    loaders = {
        "tensor": lambda **kw: TensorLoader(small.images, small.labels, **kw),
        "torch": lambda **kw: TorchLoader(small.images, small.labels, num_workers=1, **kw),
        "ffcv": lambda **kw: FFCVLoader(small_beton, num_workers=1, **kw),
    }
    reference = expected_batch(small.images)
    epochs = {}
    for name, make in loaders.items():
        x, y = collect(make(**common))
        assert torch.equal(x, reference), name
        assert torch.equal(y, torch.from_numpy(small.labels)), name
        loader = make(**train)
        epochs[name] = [collect(loader) for _ in range(2)]
    for name in ("torch", "ffcv"):
        for (xa, ya), (xb, yb) in zip(epochs["tensor"], epochs[name], strict=True):
            assert torch.equal(xa, xb) and torch.equal(ya, yb), name
    assert not torch.equal(epochs["tensor"][0][1], epochs["tensor"][1][1])


def test_ffcv_loader_keeps_torch_threads(small_beton: Path) -> None:
    threads = torch.get_num_threads()
    loader = FFCVLoader(small_beton, batch_size=64, device="cpu", mean=MEAN, std=STD, num_workers=1)
    for _ in loader:
        assert torch.get_num_threads() == threads


def test_jpeg_beton_is_close(small: ArrayDataset, tmp_path: Path) -> None:
    path = tmp_path / "jpeg.beton"
    write_beton(small, path, class_names=small.class_names, jpeg_quality=95)
    back = read_beton(path)
    np.testing.assert_array_equal(back.labels, small.labels)
    diff = np.abs(back.images.astype(int) - small.images.astype(int)).mean()
    assert diff < 8


def write_image_folder(root: Path) -> ArrayDataset:
    rng = np.random.default_rng(2)
    images, labels = [], []
    for label, name in enumerate(["cat", "dog"]):
        (root / name).mkdir(parents=True)
        for i in range(3):
            image = rng.integers(0, 256, size=(6, 6, 3), dtype=np.uint8)
            Image.fromarray(image).save(root / name / f"{i}.png")
            images.append(image.transpose(2, 0, 1))
            labels.append(label)
    (root / "notes.txt").write_text("not a class")
    return ArrayDataset(np.stack(images), np.array(labels, dtype=np.int64), ("cat", "dog"))


def test_image_folder_read_and_convert(tmp_path: Path) -> None:
    source = write_image_folder(tmp_path / "tree")
    data = read_image_folder(tmp_path / "tree")
    np.testing.assert_array_equal(data.images, source.images)
    np.testing.assert_array_equal(data.labels, source.labels)
    assert data.class_names == ("cat", "dog")
    lazy = ImageFolderSource(tmp_path / "tree")
    write_beton(lazy, tmp_path / "tree.beton", class_names=lazy.class_names)
    back = read_beton(tmp_path / "tree.beton")
    np.testing.assert_array_equal(back.images, source.images)
    np.testing.assert_array_equal(back.labels, source.labels)
    assert back.class_names == ("cat", "dog")
    resized = read_image_folder(tmp_path / "tree", resolution=4)
    assert resized.images.shape == (6, 3, 4, 4)


def test_build_loaders_image_folder_and_cifar(tmp_path: Path) -> None:
    source = write_image_folder(tmp_path / "tree" / "train")
    write_image_folder(tmp_path / "tree" / "val")
    cfg = DataConfig(
        name="imagefolder", path=str(tmp_path / "tree"), batch_size=4, mean=MEAN, std=STD
    )
    bundle = build_loaders(cfg, "cpu")
    assert bundle.num_classes == 2 and bundle.image_size == 6
    x, y = collect(bundle.val_loader)
    assert torch.equal(x, expected_batch(source.images)) and torch.equal(
        y, torch.from_numpy(source.labels)
    )
    expected = write_cifar(tmp_path / "cifar", "cifar10")
    bundle = build_loaders(
        DataConfig(name="cifar10", path=str(tmp_path / "cifar"), loader="torch", num_workers=0),
        "cpu",
    )
    assert bundle.num_classes == 10 and bundle.image_size == 32
    assert bundle.mean == (0.4914, 0.4822, 0.4465)
    assert torch.equal(collect(bundle.val_loader)[1], torch.from_numpy(expected["test"].labels))
    with pytest.raises(ValueError, match="data resolution"):
        build_loaders(
            DataConfig(name="cifar10", path=str(tmp_path / "cifar"), resolution=64), "cpu"
        )


def write_cifar(root: Path, variant: str) -> dict[str, ArrayDataset]:
    """Fake CIFAR python batches in the official layout; returns what they hold."""
    rng = np.random.default_rng(3)
    root.mkdir(parents=True)
    if variant == "cifar10":
        files = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
        key, num_classes = b"labels", 10
        meta = ("batches.meta", {b"label_names": [f"c{i}".encode() for i in range(10)]})
    else:
        files = {"train": ["train"], "test": ["test"]}
        key, num_classes = b"fine_labels", 100
        meta = ("meta", {b"fine_label_names": [f"f{i}".encode() for i in range(100)]})
    out = {}
    for split, names in files.items():
        images, labels = [], []
        for name in names:
            data = rng.integers(0, 256, size=(4, 3072), dtype=np.uint8)
            label = rng.integers(0, num_classes, size=4).tolist()
            with open(root / name, "wb") as f:
                pickle.dump({b"data": data, key: label, b"batch_label": b"x"}, f)
            images.append(data.reshape(-1, 3, 32, 32))
            labels += label
        names_ = tuple(n.decode() for n in next(iter(meta[1].values())))
        out[split] = ArrayDataset(np.concatenate(images), np.array(labels, dtype=np.int64), names_)
    with open(root / meta[0], "wb") as f:
        pickle.dump(meta[1], f)
    return out


@pytest.mark.parametrize("variant", ["cifar10", "cifar100"])
def test_cifar_read_and_convert(tmp_path: Path, variant: str) -> None:
    folder = "cifar-10-batches-py" if variant == "cifar10" else "cifar-100-python"
    expected = write_cifar(tmp_path / folder, variant)
    for split in ("train", "test"):
        data = read_cifar(tmp_path, variant, split)  # finds the subfolder
        np.testing.assert_array_equal(data.images, expected[split].images)
        np.testing.assert_array_equal(data.labels, expected[split].labels)
        assert data.class_names == expected[split].class_names
    assert len(read_cifar(tmp_path, variant, "train")) == (20 if variant == "cifar10" else 4)
    parser = argparse.ArgumentParser()
    add_data_commands(parser.add_subparsers())
    out = tmp_path / "test.beton"
    args = parser.parse_args(
        [
            "data",
            "convert",
            "--source",
            variant,
            "--input",
            str(tmp_path),
            "--output",
            str(out),
            "--split",
            "test",
            "--num-workers",
            "1",
        ]
    )
    assert args.func(args) == 0
    back = read_beton(out)
    np.testing.assert_array_equal(back.images, expected["test"].images)
    np.testing.assert_array_equal(back.labels, expected["test"].labels)
    assert back.class_names == expected["test"].class_names


# --- config and CLI ---------------------------------------------------------------------------


def test_build_loaders_default_dataset(tmp_path: Path) -> None:
    cfg = DataConfig(num_train=64, num_val=40, batch_size=16, cache_dir=str(tmp_path))
    bundle = build_loaders(cfg, "cpu")
    assert bundle.num_classes == 2 and bundle.image_size == 32
    assert bundle.class_names == ("green_nearer", "blue_nearer")
    assert len(bundle.train_loader) == 4 and len(bundle.val_loader) == 3
    x, y = next(iter(bundle.train_loader))
    assert x.shape == (16, 3, 32, 32) and y.dtype == torch.int64
    assert x.is_contiguous(memory_format=torch.channels_last)
    reference = collect(bundle.val_loader)
    for loader in ("torch", "ffcv"):
        other = build_loaders(DataConfig(**{**cfg.__dict__, "loader": loader}), "cpu")
        assert other.mean == bundle.mean and other.std == bundle.std
        got = collect(other.val_loader)
        assert torch.equal(got[0], reference[0]) and torch.equal(got[1], reference[1]), loader
    # ffcv conversion went to the cache folder, next to the generated arrays
    assert len(list(tmp_path.glob("*.beton"))) == 2


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": "mnist"}, "name"),
        ({"loader": "dali"}, "loader"),
        ({"batch_size": 0}, "batch_size"),
        ({"name": "cifar10"}, "path"),
        ({"name": "beton", "path": "x.beton"}, "val_path"),
        ({"std": (1.0, 0.0, 1.0)}, "std"),
        ({"resolution": 8}, "resolution"),
        ({"task_params": {"min_dist": 2.0}}, "nearest min_dist"),
        ({"task": "pathfinder", "task_params": {"min_dist": 2.0}}, "pathfinder min_dist"),
        (
            {"task": "pathfinder", "task_params": {"bend": 0.2}},
            "task_params.bend: unknown knob of task 'pathfinder'",
        ),
        ({"task_params": {"max_arm": 0.2}}, "task_params.max_arm: unknown knob of task 'nearest'"),
        ({"task_params": None}, "task_params"),
        ({"task": "mazes"}, "task: expected one of"),
        ({"batch_sise": 3}, "batch_sise"),
    ],
)
def test_bad_config_names_the_field(changes: dict, field: str) -> None:
    with pytest.raises(ValueError, match=f"data {field}"):
        DataConfig.from_dict(changes)


def test_generate_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    add_data_commands(parser.add_subparsers())
    args = parser.parse_args(
        ["data", "generate", "--num-train", "20", "--num-val", "10", "--cache-dir", str(tmp_path)]
    )
    assert args.func(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and "nearest dataset: 20 train + 10 val" in lines[0]
    args = parser.parse_args(
        [
            "data",
            "generate",
            "--task",
            "pathfinder",
            "--num-train",
            "20",
            "--num-val",
            "10",
            "--cache-dir",
            str(tmp_path),
        ]
    )
    assert args.func(args) == 0
    assert "pathfinder dataset: 20 train + 10 val" in capsys.readouterr().out
    assert sorted(p.name.split("-")[0] for p in tmp_path.glob("*.npz")) == ["nearest", "pathfinder"]
