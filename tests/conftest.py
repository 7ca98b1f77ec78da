"""Shared fixtures: the reference-data helper, seeds."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from neuroemu import datasets


def require_data(*parts: str):
    """Skip the calling test, with the reason, when a shared data file is absent."""
    reason = datasets.missing_reason(*parts)
    if reason:
        pytest.skip(reason)
    return datasets.data_path(*parts)


@pytest.fixture
def rng(request):
    """A NumPy generator seeded from the test's name, so every test has its own fixed stream."""
    seed = zlib.crc32(request.node.nodeid.encode())
    return np.random.default_rng(seed)


@pytest.fixture(scope="session")
def mnist():
    require_data("mnist", "t10k-images-idx3-ubyte.gz")
    return datasets.load_mnist()
