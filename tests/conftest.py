"""Shared test set-up: deterministic torch on few threads (CI has 2 cores)."""

import pytest
import torch

import nas  # noqa: F401  (registers mixers and timm models)

torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
