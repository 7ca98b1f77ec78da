"""The examples run (small settings, in a subprocess, as a user would run them)."""

from __future__ import annotations

import subprocess
import sys
import pytest

from conftest import EXAMPLES

pytest.importorskip("sklearn")


def _run(script, *args, timeout=240):
    proc = subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.mark.parametrize("script", ["bit_sweep.py", "raster.py", "train_digits.py"])
def test_example_opens_with_docstring(script):
    text = (EXAMPLES / script).read_text()
    assert text.startswith('"""') and "What it shows" in text or "shows" in text[:600]


def test_bit_sweep(tmp_path):
    out = _run("bit_sweep.py", "--quick", "-o", str(tmp_path))
    assert "ecc_b8" in out
    for f in ("sweep.h5", "bits.png", "accuracy.png", "energy.png"):
        assert (tmp_path / f).stat().st_size > 1000


def test_raster(tmp_path):
    out = _run("raster.py", "--quick", "-o", str(tmp_path))
    assert "accuracy at step 24" in out
    assert (tmp_path / "raster.png").stat().st_size > 10_000
    assert (tmp_path / "rates.png").stat().st_size > 10_000


@pytest.mark.slow
def test_train_digits_quick(tmp_path):
    pytest.importorskip("torch")
    out = _run("train_digits.py", "--epochs", "1", "-o", str(tmp_path / "d.npz"))
    assert "float test accuracy" in out
    from neuroemu.pipeline import graph_from_npz
    g = graph_from_npz(tmp_path / "d.npz")
    assert g.input_shape == (8, 8, 1) and g.output_shape == (10,)
