"""Shared test set-up: deterministic torch on few threads (CI has 2 cores), and one real search
whose store several test modules read."""

import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

import nas.models  # noqa: F401  (registers mixers and timm models)

torch.set_num_threads(2)

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "search_spaces" / "tiny.yaml"
PG_SERVER = "postgresql://postgres@127.0.0.1:5432"


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
def pg_url():
    """A fresh database on the local PostgreSQL server (127.0.0.1:5432, trust auth), dropped
    afterwards. A missing server skips locally; CI installs one, so there it fails."""
    from sqlalchemy import create_engine
    from sqlalchemy.exc import OperationalError

    admin = create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    name = f"nas_test_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
    except (OperationalError, ModuleNotFoundError) as err:
        (pytest.fail if os.environ.get("CI") else pytest.skip)(
            f"needs the local PostgreSQL server: {err}"
        )
    yield f"{PG_SERVER}/{name}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")
    admin.dispose()


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
