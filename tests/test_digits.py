"""Tests of the ``digits`` dataset (scikit-learn's bundled 8x8 handwritten digits).

The oracles are independent of :mod:`nas.data.digits`: a direct stratified ``train_test_split``
of ``load_digits`` for the split, ``np.bincount`` for class counts, PIL's bilinear resize and
block averaging for the images, plain numpy for the statistics.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from nas.data import DataConfig, build_loaders, load_arrays
from nas.data.digits import SPLIT_RANDOM_STATE, digits_cache_key


@pytest.fixture(scope="module")
def sk() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """sklearn's images and labels, and a direct stratified split's (sorted) indices."""
    bunch = load_digits()
    train, val = train_test_split(
        np.arange(len(bunch.target)),
        test_size=360,
        stratify=bunch.target,
        random_state=SPLIT_RANDOM_STATE,
    )
    return bunch.images, bunch.target, np.sort(train), np.sort(val)


@pytest.fixture(scope="module")
def max_k(sk) -> int:
    _, labels, train, _ = sk
    return int(np.bincount(labels[train]).min())


def digits(**changes) -> DataConfig:
    return DataConfig.from_dict({"name": "digits", **changes})


def block_mean(images: np.ndarray, factor: int) -> np.ndarray:
    """``(N, H, W)`` averaged over ``factor x factor`` blocks (area downsampling)."""
    n, h, w = images.shape
    return images.reshape(n, h // factor, factor, w // factor, factor).mean(axis=(2, 4))


def test_split_is_stratified_and_fixed_across_seeds(sk) -> None:
    images, labels, train_idx, val_idx = sk
    splits = {seed: load_arrays(digits(seed=seed)) for seed in (0, 5)}
    s = splits[0]
    assert (len(s.train), len(s.val)) == (1437, 360)
    assert s.train.class_names == tuple("0123456789")
    assert np.array_equal(np.bincount(s.train.labels), np.bincount(labels[train_idx]))
    assert np.array_equal(np.bincount(s.val.labels), np.bincount(labels[val_idx]))
    # stratified: every class's validation share is its dataset share, to within one image
    expected = 360 * np.bincount(labels) / len(labels)
    assert np.abs(np.bincount(s.val.labels) - expected).max() <= 1
    # the very same images (in dataset order), not just the same counts
    assert np.array_equal(s.val.labels, labels[val_idx])
    assert np.array_equal(s.train.labels, labels[train_idx])
    # each stored image, downsampled back, is nearest to its own sklearn image among all 1,797
    back = block_mean(s.val.images[:, 0].astype(np.float64), 4).reshape(360, 64)
    originals = images.reshape(-1, 64) * 255 / 16
    distances = ((back[:, None, :] - originals[None, :, :]) ** 2).sum(axis=2)
    assert np.array_equal(distances.argmin(axis=1), val_idx)
    # the data seed changes neither split when no per-class size is asked for
    other = splits[5]
    assert np.array_equal(other.val.images, s.val.images)
    assert np.array_equal(other.val.labels, s.val.labels)
    assert np.array_equal(other.train.images, s.train.images)


def test_train_per_class_draws_k_per_class_by_seed(sk) -> None:
    full = load_arrays(digits())
    a = load_arrays(digits(train_per_class=10, seed=0, batch_size=50))
    again = load_arrays(digits(train_per_class=10, seed=0, batch_size=50))
    b = load_arrays(digits(train_per_class=10, seed=1, batch_size=50))
    for s in (a, b):
        assert np.array_equal(np.bincount(s.train.labels, minlength=10), np.full(10, 10))
        # validation stays the full 360
        assert np.array_equal(s.val.images, full.val.images)
        assert np.array_equal(s.val.labels, full.val.labels)
    assert np.array_equal(a.train.images, again.train.images)
    assert np.array_equal(a.train.labels, again.train.labels)
    assert not np.array_equal(a.train.images, b.train.images)

    # drawn from the training split, without repeats, and nested: k=10 is inside k=20
    def rows(images: np.ndarray) -> set[bytes]:
        return {img.tobytes() for img in images}

    full_rows = [img.tobytes() for img in full.train.images]
    assert len(set(full_rows)) == len(full_rows)  # the training images are distinct
    assert len(rows(a.train.images)) == 100 and rows(a.train.images) <= set(full_rows)
    assert rows(a.train.images) <= rows(
        load_arrays(digits(train_per_class=20, batch_size=50)).train.images
    )
    assert not rows(a.train.images) & rows(full.val.images)


@pytest.mark.parametrize("resolution", [None, 32, 64])
def test_upsampled_images_match_sklearn(sk, resolution: int | None) -> None:
    images, _, _, val_idx = sk
    side = resolution or 32
    s = load_arrays(digits(resolution=resolution))
    assert s.val.images.dtype == np.uint8 and s.val.images.shape == (360, 3, side, side)
    assert np.array_equal(s.val.images[:, 0], s.val.images[:, 1])
    assert np.array_equal(s.val.images[:, 0], s.val.images[:, 2])
    for i in (0, 1, 7, 100, 359):
        original = images[val_idx[i]] * 255 / 16
        got = s.val.images[i, 0].astype(np.float64)
        # bilinear, half-pixel centres: PIL's bilinear resize of the 0-255 float image
        pil = np.asarray(
            Image.fromarray(original.astype(np.float32), mode="F").resize(
                (side, side), Image.BILINEAR
            )
        )
        assert np.abs(got - pil).max() <= 0.5 + 1e-3, i
        back = block_mean(got[None], side // 8)[0]
        assert np.corrcoef(back.ravel(), original.ravel())[0, 1] > 0.95, i


def test_stats_are_those_of_the_full_training_split() -> None:
    train = load_arrays(digits()).train.images.astype(np.float64) / 255
    mean, std = train.mean(), train.std()
    for k in (None, 10):
        bundle = build_loaders(digits(train_per_class=k, batch_size=20), "cpu")
        assert bundle.mean == pytest.approx((mean,) * 3, abs=1e-6)
        assert bundle.std == pytest.approx((std,) * 3, abs=1e-6)


def test_loaders_yield_digit_batches() -> None:
    cfg = digits(train_per_class=10, batch_size=25, eval_batch_size=100)
    bundle = build_loaders(cfg, "cpu")
    assert bundle.num_classes == 10 and bundle.image_size == 32
    assert len(bundle.train_loader) == 4 and len(bundle.val_loader) == 4
    seen = []
    for x, y in bundle.train_loader:
        assert x.shape == (25, 3, 32, 32) and x.dtype == torch.float32
        assert x.is_contiguous(memory_format=torch.channels_last)
        assert y.dtype == torch.int64 and 0 <= int(y.min()) and int(y.max()) <= 9
        seen.append(y)
    assert torch.equal(torch.bincount(torch.cat(seen), minlength=10), torch.full((10,), 10))
    xs, ys = zip(*bundle.val_loader, strict=True)
    assert [len(y) for y in ys] == [100, 100, 100, 60]
    # un-normalised, a validation batch is the stored images (eval mode: no augmentation)
    arrays = load_arrays(cfg)
    mean = torch.tensor(bundle.mean).view(1, 3, 1, 1)
    std = torch.tensor(bundle.std).view(1, 3, 1, 1)
    pixels = (xs[0] * std + mean) * 255
    assert torch.allclose(pixels, torch.from_numpy(arrays.val.images[:100]).float(), atol=0.01)
    assert torch.equal(torch.cat(ys), torch.from_numpy(arrays.val.labels))


@pytest.mark.parametrize("loader", ["torch", "ffcv"])
def test_other_loaders_match_the_tensor_loader(tmp_path: Path, loader: str) -> None:
    if loader == "ffcv":
        pytest.importorskip("ffcv")  # a few seconds: FFCV's import and conversion
    cfg = digits(train_per_class=5, batch_size=10, eval_batch_size=120, cache_dir=str(tmp_path))
    reference = list(build_loaders(cfg, "cpu").val_loader)
    other = build_loaders(digits(**{**cfg.__dict__, "loader": loader, "num_workers": 0}), "cpu")
    got = list(other.val_loader)
    assert len(got) == 3
    for (x, y), (rx, ry) in zip(got, reference, strict=True):
        assert torch.allclose(x, rx, atol=1e-5) and torch.equal(y, ry)
    if loader == "ffcv":  # converted once into the cache, under the digits key
        assert sorted(p.name for p in tmp_path.glob("*.beton")) == sorted(
            f"{digits_cache_key(None, 5, 0)}-{split}.beton" for split in ("train", "val")
        )


def test_resolution_sets_the_side() -> None:
    bundle = build_loaders(digits(resolution=48, batch_size=64), "cpu")
    x, _ = next(iter(bundle.train_loader))
    assert bundle.image_size == 48 and x.shape == (64, 3, 48, 48)


def test_cache_key_names_what_changes_the_arrays() -> None:
    assert digits_cache_key(None, None, 0) == digits_cache_key(32, None, 7)  # seed unused
    keys = {
        digits_cache_key(32, None, 0),
        digits_cache_key(64, None, 0),
        digits_cache_key(32, 10, 0),
        digits_cache_key(32, 10, 1),
        digits_cache_key(32, 20, 0),
    }
    assert len(keys) == 5


def test_digits_needs_no_path() -> None:
    assert digits().path is None
    with pytest.raises(ValueError) as err:
        DataConfig.from_dict({"name": "cifar10"})
    assert str(err.value) == (
        "data path: expected the dataset's location for name 'cifar10', found None"
    )


@pytest.mark.parametrize("value", [500, 0, -3, True, "10", 2.5])
def test_bad_train_per_class(value, max_k: int) -> None:
    with pytest.raises(ValueError) as err:
        digits(train_per_class=value)
    assert str(err.value) == (
        f"data train_per_class: expected None or an integer in [1, {max_k}] for name 'digits', "
        f"found {value!r}"
    )


def test_train_per_class_bound_is_the_smallest_training_class(max_k: int) -> None:
    s = load_arrays(digits(train_per_class=max_k, batch_size=32))
    assert np.array_equal(np.bincount(s.train.labels), np.full(10, max_k))
    with pytest.raises(ValueError, match=rf"\[1, {max_k}\].*found {max_k + 1}$"):
        digits(train_per_class=max_k + 1)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"name": "default", "train_per_class": 10},
            "data train_per_class: expected None for name 'default' (only 'digits' takes it), "
            "found 10",
        ),
        (
            {"name": "cifar10", "path": "/data/cifar", "train_per_class": 10},
            "data train_per_class: expected None for name 'cifar10' (only 'digits' takes it), "
            "found 10",
        ),
        (
            {"name": "digits", "train_per_class": 5},
            "data batch_size: expected at most the 50 training images of train_per_class 5 when "
            "drop_last is true (else an epoch has no batch), found 128",
        ),
        (
            {"name": "digits", "resolution": 4},
            "data resolution: expected None or an integer >= 8 for name 'digits', found 4",
        ),
    ],
)
def test_config_errors(changes: dict, message: str) -> None:
    with pytest.raises(ValueError) as err:
        DataConfig.from_dict(changes)
    assert str(err.value) == message


def test_small_train_set_without_drop_last_is_fine() -> None:
    bundle = build_loaders(digits(train_per_class=5, drop_last=False), "cpu")
    assert len(bundle.train_loader) == 1
