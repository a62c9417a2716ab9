"""Shared test settings: a private cache folder per session, few BLAS threads, no GPU surprises."""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402


def pytest_configure(config):
    # Keep the real user cache (MNIST .npy is expensive to parse) unless a test overrides it.
    os.environ.setdefault("ADVTOPO_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "advtopo"))


@pytest.fixture
def cuda():
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    return torch.device("cuda")
