"""Every figure is produced from plain arrays, is non-trivial (file size, pixel variance) and
refuses empty input with a clear error."""

from __future__ import annotations

import matplotlib.image as mpimg
import numpy as np
import pytest

from emulator import plots
from hw_models.errors import DataError


def _check_png(path, min_bytes=8_000):
    assert path.stat().st_size > min_bytes
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 300 and img.shape[1] > 400
    assert float(img[..., :3].std()) > 0.05            # not blank
    return img


def _sweep():
    pts = {}
    T = 20
    for m, shift in (("ecc", 0.0), ("robust", 0.1)):
        for b in (3, 4, 6, 8):
            acc = np.clip(np.linspace(0.1, 0.95 - shift - 0.4 / b, T), 0, 1)
            pts[f"{m}_b{b}"] = {"method": m, "bits": b, "accuracy": acc,
                                "float_accuracy": 0.96, "energy_per_sample": 1e-6 * (5 + b),
                                "energy": {"ann_energy_fp32": 4e-7, "ann_energy_int8": 2e-8}}
    pts["rmp_b2"] = {"method": "rmp", "bits": 2, "status": "failed", "error": "x"}
    return {"config": {"profile": "loihi1"}, "grid": list(pts), "points": pts}


def test_raster_from_arrays(tmp_path, rng):
    spikes = {"conv": np.c_[np.zeros(400, int), rng.integers(1, 33, 400),
                            rng.integers(0, 200, 400)],
              "dense": np.c_[np.zeros(50, int), rng.integers(1, 33, 50), rng.integers(0, 30, 50)]}
    p = tmp_path / "raster.png"
    plots.spike_raster(spikes, sizes={"conv": 200, "dense": 30}, path=p)
    _check_png(p)
    with pytest.raises(DataError, match="record"):
        plots.spike_raster({}, path=tmp_path / "none.png")


def test_sweep_figures(tmp_path):
    sw = _sweep()
    for name, fn in (("acc", plots.sweep_accuracy_vs_steps), ("bits", plots.sweep_accuracy_vs_bits),
                     ("energy", plots.sweep_energy_vs_accuracy)):
        p = tmp_path / f"{name}.png"
        fn(sw, path=p)
        _check_png(p)
    with pytest.raises(DataError):
        plots.sweep_accuracy_vs_bits({"config": {}, "points": {}})


def test_rates_and_cores(tmp_path, rng):
    p = tmp_path / "rates.png"
    plots.firing_rates({"a": rng.random(100) * 0.3, "b": rng.random(20) * 0.1, "c": 0.05},
                       path=p)
    _check_png(p)
    p = tmp_path / "cores.png"
    plots.core_utilisation({"neurons": [1024, 512, 10], "memory_bits": [1e5, 9e5, 2e3],
                            "thresholds": [1, 1, 1]},
                           {"neurons": 1024, "memory_bits": 1 << 20, "thresholds": 8,
                            "unlimited": None}, ["c1", "c2", "out"], path=p)
    _check_png(p)


def test_accuracy_vs_steps_has_float_line(tmp_path):
    fig = plots.accuracy_vs_steps({"ecc": np.linspace(0, 0.9, 30)}, 0.93)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("float" in t for t in labels)
    assert ax.get_xlabel() and "%" in ax.get_ylabel()
