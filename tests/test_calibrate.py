"""SNN calibration after normalisation (neuroemu.calibrate, Li et al. 2021)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from converter.builder import GraphBuilder
from converter.convert import convert
from converter.passes import prepare
from hw_models.errors import ConversionError
from neuroemu.calibrate import _rate_error, calibrate


def _cnn(rng, input_scale=1 / 255):
    b = GraphBuilder((10, 10, 2), name="cal")
    x = b.input()
    x = b.relu(b.conv2d(x, rng.normal(0, 0.5, (3, 3, 2, 6)), rng.normal(0.1, 0.1, 6),
                        padding="same"), name="r1")
    x = b.maxpool(x, 2, name="mp")
    x = b.relu(b.conv2d(x, rng.normal(0, 0.3, (3, 3, 6, 8)), rng.normal(0, 0.1, 8)), name="r2")
    x = b.flatten(x)
    x = b.dense(x, rng.normal(0, 0.3, (3 * 3 * 8, 4)))
    return b.build(output=x, input_scale=input_scale)


@pytest.mark.parametrize("mode", ["light", "advanced"])
def test_calibration_reduces_the_rate_error(rng, mode):
    g = _cnn(rng)
    x = rng.integers(0, 256, (40, 10, 10, 2))
    T = 12
    net = convert(g, x / 255, method="robust", weight_bits=8, profile="ideal", map=False,
                  maxpool="runmax")
    bias0 = {p.name: p.bias_array().copy() for p in net.populations if not p.is_input}
    cal = calibrate(net, g, x, 1 / 255, T, mode)
    # a new network; the original is untouched
    for p in net.populations:
        if not p.is_input:
            assert np.array_equal(p.bias_array(), bias0[p.name])
    assert cal.meta["calibration"]["mode"] == mode
    assert set(cal.meta["calibration"]["populations"]) == {"r1", "r2"}
    pg = prepare(g)
    for name in ("r1", "r2"):
        lam = np.asarray(net.meta["lambda"][name]["values"])
        before = _rate_error(net, pg, net.population(name), name, lam, x, 1 / 255, T, 64, 1)
        after = _rate_error(cal, pg, cal.population(name), name, lam, x, 1 / 255, T, 64, 1)
        # the channel means of the error shrink (light), the neuron means too (advanced)
        ch = np.arange(before.size) % net.population(name).shape[-1]
        mb = np.abs(np.bincount(ch, before) / np.bincount(ch)).mean()
        ma = np.abs(np.bincount(ch, after) / np.bincount(ch)).mean()
        assert ma < mb
        if mode == "advanced":
            assert np.abs(after).mean() < np.abs(before).mean()


def test_calibration_errors(rng):
    g = _cnn(rng)
    x = rng.integers(0, 256, (8, 10, 10, 2))
    net = convert(g, x / 255, method="ecc", weight_bits=8, profile="ideal", map=False)
    with pytest.raises(ConversionError, match="calibrate must be one of"):
        calibrate(net, g, x, 1 / 255, 8, "heavy")
    with pytest.raises(ConversionError, match="run length"):
        calibrate(net, g, x, 1 / 255, 0)
    with pytest.raises(ConversionError, match="at least one sample"):
        calibrate(net, g, x[:0], 1 / 255, 8)


def _rate_mse(net, g, x, T, names):
    """Per-sample mean of (SNN rate − clip(a/λ, 0, 1))² of each named population."""
    import emulator
    pg = prepare(g)
    res = emulator.run(net, x, T, threads=1, detail="all")
    out = []
    for name in names:
        p = net.population(name)
        lam = np.asarray(net.meta["lambda"][name]["values"])
        ch = np.arange(p.size) % p.shape[-1]
        a = pg.forward(pg.model_input(x), outputs=[name], internal=True)[name]
        target = np.clip(a.reshape(len(x), -1) / lam[ch % lam.size], 0.0, 1.0)
        out.append(float(((res.spike_counts[name] / T - target) ** 2).mean()))
    return out


def test_weight_calibration_fits_the_layer_and_stays_exact(rng):
    """Li et al.'s layer-wise weight calibration alone, on the first layer of a small CNN: fed
    with the SNN's own input, the re-quantised 8-bit weights bring the SNN's rates closer to
    the ANN's on samples it never saw, and the network stays an exact integer network."""
    import emulator
    from neuroemu.calibrate import _calibrate_weights
    g = _cnn(rng)
    x = rng.integers(0, 256, (160, 10, 10, 2))
    T = 8
    net = convert(g, x[:80] / 255, method="robust", weight_bits=8, profile="ideal", map=False,
                  maxpool="runmax")
    p = net.population("r1")
    lam = np.asarray(net.meta["lambda"]["r1"]["values"])
    lam_n = lam[np.arange(p.size) % p.shape[-1] % lam.size]
    new, rep = _calibrate_weights(net, prepare(g), p, "r1", lam_n, x[:80], T, 40, 1,
                                  400, 1e-3, 32, 0)
    assert rep["kept"] and rep["model_mse_after"] < 0.8 * rep["model_mse_before"]
    (pname, w), = new.items()
    old = next(pr for pr in net.projections if pr.name == pname)
    assert w.dtype == old.weights.dtype and np.abs(w).max() <= 127
    assert np.count_nonzero(w != old.weights) > 0
    cal = net.replace(projections=[pr if pr.name != pname else
                                   dataclasses.replace(pr, weights=w)
                                   for pr in net.projections])
    cal.validate()
    before, = _rate_mse(net, g, x[80:], T, ["r1"])
    after, = _rate_mse(cal, g, x[80:], T, ["r1"])
    assert after < 0.7 * before  # held-out samples
    # only integers changed: the engine still equals the dense reference exactly
    a = emulator.run(cal, x[80:86], T, threads=1, detail="all")
    b = emulator.run(cal, x[80:86], T, reference=True)
    assert np.array_equal(a.predictions, b.predictions)
    for k in a.spike_counts:
        assert np.array_equal(a.spike_counts[k], b.spike_counts[k])


def test_advanced_calibration_with_weights(rng):
    """The whole advanced pipeline (weights, channel bias, neuron bias): every calibrated
    layer ends closer to the ANN on held-out samples than the uncalibrated network, weights
    are changed and reported, and the original network is untouched."""
    g = _cnn(rng)
    x = rng.integers(0, 256, (160, 10, 10, 2))
    T = 8
    net = convert(g, x[:80] / 255, method="robust", weight_bits=8, profile="ideal", map=False,
                  maxpool="runmax")
    w0 = {pr.name: pr.weights.copy() for pr in net.projections}
    cal = calibrate(net, g, x[:80], 1 / 255, T, "advanced")
    assert cal.meta["calibration"]["weights"] is True
    assert "weight calibration" in cal.meta["calibration"]["method"]
    for pr in net.projections:
        assert np.array_equal(pr.weights, w0[pr.name])
    reps = cal.meta["calibration"]["populations"]
    assert any(reps[n]["weights"]["kept"] and reps[n]["weights"]["weights_changed"] > 0
               for n in ("r1", "r2"))
    assert any(not np.array_equal(pr.weights, w0[pr.name]) for pr in cal.projections)
    before = _rate_mse(net, g, x[80:], T, ["r1", "r2"])
    after = _rate_mse(cal, g, x[80:], T, ["r1", "r2"])
    assert all(a < 0.7 * b for a, b in zip(after, before))


def test_weight_calibration_never_keeps_a_worse_fit(rng):
    """A step so large that the fit diverges: the model loss with the re-quantised integers
    is not lower, so the original weights are kept (and the report says so)."""
    g = _cnn(rng)
    x = rng.integers(0, 256, (40, 10, 10, 2))
    net = convert(g, x / 255, method="robust", weight_bits=8, profile="ideal", map=False,
                  maxpool="runmax")
    cal = calibrate(net, g, x, 1 / 255, 8, "light", weights=True, weight_lr=50.0,
                    weight_iters=20)
    for r in cal.meta["calibration"]["populations"].values():
        assert not r["weights"]["kept"]
        assert r["weights"]["model_mse_after"] >= r["weights"]["model_mse_before"]
    for a, b in zip(cal.projections, net.projections):
        assert np.array_equal(a.weights, b.weights)
    with pytest.raises(ConversionError, match="weight_iters"):
        calibrate(net, g, x, 1 / 255, 8, "advanced", weight_iters=0)
    with pytest.raises(ConversionError, match="weight_lr"):
        calibrate(net, g, x, 1 / 255, 8, "advanced", weight_lr=-1.0)


def test_calibration_of_a_graph_that_does_not_say_its_scale(rng):
    """A model file without its input scale (the shared Keras MNIST/CIFAR models): the scale
    given to convert is in the network's input spec, and the calibration's ANN targets use it."""
    g = _cnn(rng, input_scale=None)
    x = rng.integers(0, 256, (16, 10, 10, 2))
    net = convert(g, x / 255, method="ecc", weight_bits=8, profile="ideal", map=False,
                  input_scale=1 / 255)
    cal = calibrate(net, g, x, 1 / 255, 8, "advanced", weight_iters=5)
    assert set(cal.meta["calibration"]["populations"]) == {"r1", "r2"}


@pytest.mark.parametrize("kind,stride,padding,dilation,groups", [
    ("dense", (1, 1), (0, 0, 0, 0), (1, 1), 1),
    ("conv", (1, 1), (0, 0, 0, 0), (1, 1), 1),
    ("conv", (2, 1), (1, 2, 0, 1), (1, 1), 1),
    ("conv", (1, 2), (1, 1, 1, 1), (2, 1), 2),
])
def test_fit_model_matches_the_projection(rng, kind, stride, padding, dilation, groups):
    """The weight fit's current model (im2col forward) and its gradient equal the dense
    expansion of the same projection that the reference simulator uses."""
    from emulator.reference import dense_matrices
    from hw_models.network import Population, Projection, conv_output_size
    from neuroemu.calibrate import _patches, _proj_forward, _proj_grad
    src = Population("s", (7, 6, 4))
    if kind == "dense":
        tgt = Population("t", (5,))
        w = rng.integers(-9, 10, (src.size, 5))
    else:
        oh = conv_output_size(7, 3, stride[0], padding[0], padding[1], dilation[0])
        ow = conv_output_size(6, 2, stride[1], padding[2], padding[3], dilation[1])
        tgt = Population("t", (oh, ow, 6))
        w = rng.integers(-9, 10, (3, 2, 4 // groups, 6))
    pr = Projection("p", "s", "t", kind, w, stride=stride, padding=padding, dilation=dilation,
                    groups=groups)
    pr.validate(src, tgt)
    wmat, _ = dense_matrices(pr, src, tgt)
    r = rng.random((3, src.size))
    pts = _patches(pr, src.shape, tgt.shape, r)
    np.testing.assert_allclose(_proj_forward(pr, tgt.shape, pts, w.astype(float)), r @ wmat)
    gz = rng.random((3, tgt.size))
    # the gradient of Σ gz·(r @ W) with respect to each kernel entry
    gw = _proj_grad(pr, tgt.shape, pts, gz)
    for idx in [tuple(rng.integers(0, s) for s in w.shape) for _ in range(10)]:
        e = np.zeros(w.shape)
        e[idx] = 1.0
        em, _ = dense_matrices(dataclasses.replace(pr, weights=e.astype(np.int64)), src, tgt)
        np.testing.assert_allclose(gw[idx], np.sum(gz * (r @ em)))
