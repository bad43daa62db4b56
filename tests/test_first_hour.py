"""What a new user meets in the first hour: a clean install and a clean working tree."""

import subprocess
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_pyproject_metadata_reads_without_packaging_warnings(monkeypatch) -> None:
    """The deprecated ``license = {text = ...}`` table warned on every install."""
    from setuptools.config.pyprojecttoml import apply_configuration
    from setuptools.dist import Distribution

    monkeypatch.chdir(ROOT)  # setuptools resolves readme and packages from the project folder
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dist = apply_configuration(Distribution(), ROOT / "pyproject.toml")
    assert [str(w.message).splitlines()[0] for w in caught] == []
    assert dist.metadata.license_expression == "Apache-2.0"


def test_exports_and_hydra_outputs_are_git_ignored() -> None:
    paths = ["exports/tiny-trial3/arch.yaml", "outputs/2026-01-01/10-00-00/.hydra/config.yaml"]
    result = subprocess.run(
        ["git", "check-ignore", "--no-index", *paths],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.stdout.split() == paths, result.stderr


def test_readme_shows_the_shipped_default_search_space() -> None:
    """The README's listing is the file a new user runs, not a drifting copy."""
    readme = (ROOT / "README.md").read_text()
    marker = "<!-- the file search_spaces/metaformer.yaml -->\n```yaml\n"
    assert readme.count(marker) == 1
    listing = readme.split(marker, 1)[1].split("```\n", 1)[0]
    assert listing == (ROOT / "search_spaces" / "metaformer.yaml").read_text()


def test_export_recipe_fits_the_search_data(tmp_path: Path) -> None:
    """Small data gets the proxy's optimiser and an epoch count scaled to its size; ImageNet-like
    data keeps the trainer's ImageNet recipe (at the searched networks' side for an ImageFolder)."""
    from PIL import Image

    from nas.search.train_recipe import fitted_recipe

    proxy = {"epochs": 10, "lr": 0.004, "weight_decay": 0.02, "label_smoothing": 0.0}
    cifar = fitted_recipe({"proxy": {**proxy, "data": {"name": "cifar10", "path": "/c"}}})
    assert cifar.overrides["epochs"] == 30  # 1e6 / 50,000 = 20 visits, but >= 3 x 10 epochs
    assert cifar.overrides["optim"]["lr"] == 0.004
    assert cifar.overrides["optim"]["weight_decay"] == 0.02
    assert cifar.overrides["mixup"] == {
        "label_smoothing": 0.0,
        "mixup_alpha": 0.0,
        "cutmix_alpha": 0.0,
    }
    digits = fitted_recipe({"proxy": {**proxy, "data": {"name": "digits", "train_per_class": 20}}})
    assert digits.overrides["epochs"] == 300  # 200 images: capped at the ImageNet recipe's
    assert "200 training images at 32 px" in digits.note

    for label in ("a", "b"):
        (tmp_path / "train" / label).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (40, 40)).save(tmp_path / "train" / label / f"{i}.png")
    folder = {"name": "imagefolder", "path": str(tmp_path), "resolution": 32}
    small = fitted_recipe({"proxy": {"data": folder}, "space": {"image_size": 32}})
    assert "6 training images at 32 px" in small.note
    imagenet = {"name": "imagefolder", "path": "/data/imagenet", "resolution": 128}
    big = fitted_recipe({"proxy": {"data": imagenet, "epochs": 18}, "space": {"image_size": 224}})
    assert big.overrides == {"data": {**imagenet, "resolution": 224}}  # the trainer's defaults
    assert big.note.startswith("the ImageNet recipe")
