"""Shared test set-up: deterministic torch on few threads (CI has 2 cores), and one real search
whose store several test modules read."""

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

import nas.models  # noqa: F401  (registers mixers and timm models)

torch.set_num_threads(2)

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "search_spaces" / "tiny.yaml"


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


@pytest.fixture
def nas_cli() -> Callable[..., subprocess.CompletedProcess]:
    """The real ``nas`` command line of this checkout in a subprocess: ``nas_cli(*args, cwd=,
    timeout=, env=)`` gives its exit status, stdout and stderr; ``env`` adds variables."""

    def run(
        *args: str, cwd: Path = ROOT, timeout: float = 120, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "nas.cli", *args],
            cwd=cwd,
            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run
