"""SNN calibration after normalisation (neuroemu.calibrate, Li et al. 2021)."""

from __future__ import annotations

import numpy as np
import pytest

from converter.builder import GraphBuilder
from converter.convert import convert
from converter.passes import prepare
from hw_models.errors import ConversionError
from neuroemu.calibrate import _rate_error, calibrate


def _cnn(rng):
    b = GraphBuilder((10, 10, 2), name="cal")
    x = b.input()
    x = b.relu(b.conv2d(x, rng.normal(0, 0.5, (3, 3, 2, 6)), rng.normal(0.1, 0.1, 6),
                        padding="same"), name="r1")
    x = b.maxpool(x, 2, name="mp")
    x = b.relu(b.conv2d(x, rng.normal(0, 0.3, (3, 3, 6, 8)), rng.normal(0, 0.1, 8)), name="r2")
    x = b.flatten(x)
    x = b.dense(x, rng.normal(0, 0.3, (3 * 3 * 8, 4)))
    return b.build(output=x, input_scale=1 / 255)


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
