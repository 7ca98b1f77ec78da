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


def test_energy_breakdown_by_event_class(tmp_path):
    rep = {"profile": "loihi1", "energy_published": True, "samples": 4, "synaptic": 40e-6,
           "neuron_active": 30e-6, "neuron_inactive": 8e-6, "spikes": 1e-6, "messages": 0.5e-6,
           "hops": 0.2e-6, "static": 0.0}
    fig = plots.result_energy_breakdown(rep, path=tmp_path / "b.png")
    _check_png(tmp_path / "b.png")
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend[0] == "synaptic events: 10 µJ (50.2 %)"   # per sample; 40 of 79.7 µJ
    assert any(t.startswith("mesh hops") for t in legend) and len(legend) == 7
    assert "50 % is not synaptic work" in fig.axes[0].get_title()
    sw = _sweep()
    for p in sw["points"].values():
        p.setdefault("energy", {}).update(rep)
    plots.sweep_energy_breakdown(sw, path=tmp_path / "s.png")
    _check_png(tmp_path / "s.png")
    with pytest.raises(DataError):
        plots.energy_breakdown({})
    with pytest.raises(DataError, match="leave energy out"):     # a class the plot lacks
        plots.result_energy_breakdown(dict(rep, total=90e-6))


def test_bits_axis_fitted_to_the_data(tmp_path):
    series = {"ecc": ([4, 6, 8], [0.986, 0.990, 0.992])}
    fig = plots.accuracy_vs_bits(series, float_accuracy=0.992, path=tmp_path / "b.png")
    lo, hi = fig.axes[0].get_ylim()
    assert 97.5 < lo < 98.6 and 99.2 < hi <= 100.5          # not the flat line of 0-100
    fig = plots.accuracy_vs_bits({"ecc": ([2, 8], [0.1, 0.99])}, path=tmp_path / "c.png")
    assert fig.axes[0].get_ylim()[0] <= 10


def test_energy_labels_do_not_overlap(tmp_path):
    series = {m: ([19.4e-6 + 1e-9 * b + 2e-10 * k for b in range(3, 9)],
                  [0.99 - 0.0005 * k] * 6, [f"{b}b" for b in range(3, 9)])
              for k, m in enumerate(("ecc", "robust"))}
    fig = plots.energy_vs_accuracy(series, {"ANN": 4e-7})      # left open: measure the labels
    ax = fig.axes[0]
    r = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(r) for t in ax.texts if t.get_text().endswith("b")]
    assert boxes
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not a.overlaps(b)
    import matplotlib.pyplot as plt
    plt.close(fig)


def test_raster_title_names_network_method_bits_and_big_layers_as_density(tmp_path, rng):
    n = 16 * 16 * 8
    rows = np.c_[np.zeros(3000, int), rng.integers(1, 41, 3000), rng.integers(0, n, 3000)]
    res = type("R", (), {})()
    res.spikes = {"conv": rows, "fc": np.c_[np.zeros(30, int), rng.integers(1, 41, 30),
                                            rng.integers(0, 10, 30)]}
    res.sizes, res.steps = {"conv": n, "fc": 10}, 40
    res.meta = {"convert_options": {"model": "/data/models/tests_99.20.h5", "method": "ecc",
                                    "weight_bits": 6}, "profile": "loihi1",
                "shapes": {"conv": [16, 16, 8], "fc": [10]}}
    fig = plots.spike_raster(res, path=tmp_path / "r.png")
    _check_png(tmp_path / "r.png")
    ax = fig.axes[0]
    assert ax.get_title().startswith("tests_99.20 — ecc, 6-bit weights, loihi1 — sample 0")
    assert len(ax.images) == 1                    # the 2,048-neuron layer is a density image
    assert "density" in ax.get_yticklabels()[0].get_text()
    # channel-major rows: neuron (y, x, c) of a (16, 16, 8) map goes to row c·256 + y·16 + x
    order = plots._display_order(n, (16, 16, 8))
    assert order[3] == 3 * 256 and order[8] == 1
