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
