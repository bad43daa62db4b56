"""Shared test set-up: deterministic torch on few threads (CI has 2 cores), and one real search
whose store several test modules read."""

from pathlib import Path

import pytest
import torch

import nas.models  # noqa: F401  (registers mixers and timm models)

torch.set_num_threads(2)

TINY = Path(__file__).resolve().parents[1] / "search_spaces" / "tiny.yaml"


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def tiny_search(tmp_path_factory):
    """``search_spaces/tiny.yaml`` searched for real (local Ray, proxy training on the default
    dataset, SQLite under a fresh run folder): ``(config, outcome, run folder)``."""
    from nas.search.config import load_config
    from nas.search.runner import run_search

    run_dir = tmp_path_factory.mktemp("tiny-search")
    cfg = load_config(TINY, [f"run_dir={run_dir}"])
    return cfg, run_search(cfg), run_dir / cfg.name
