"""Shared fixtures and helpers: the reference-data helper, example loading, seeds."""

from __future__ import annotations

import importlib.util
import zlib
from pathlib import Path

import numpy as np
import pytest

from neuroemu import datasets

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def require_data(*parts: str):
    """Skip the calling test, with the reason, when a shared data file is absent."""
    reason = datasets.missing_reason(*parts)
    if reason:
        pytest.skip(reason)
    return datasets.data_path(*parts)


def load_example(name: str):
    """Import ``examples/<name>.py`` as a fresh module (examples are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"_example_{name}", EXAMPLES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def rng(request):
    """A NumPy generator seeded from the test's name, so every test has its own fixed stream."""
    seed = zlib.crc32(request.node.nodeid.encode())
    return np.random.default_rng(seed)


@pytest.fixture(scope="session")
def mnist():
    require_data("mnist", "t10k-images-idx3-ubyte.gz")
    return datasets.load_mnist()
