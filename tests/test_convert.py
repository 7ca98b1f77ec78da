"""convert(): structure, options, profile-exact quantisation, λ sharing, SNN ≈ float."""

from __future__ import annotations


import numpy as np

from hw_models.intrange import STATE_LIMIT
import pytest

from converter.builder import GraphBuilder
from converter.convert import convert
from converter.normalise import activation_scales
from converter.passes import prepare
from hw_models.errors import ConversionError
from hw_models.profiles import get_profile

import emulator


def _cnn(rng, bn=True, c=(4, 6), name="cnn"):
    b = GraphBuilder((1, 12, 12), input_layout="CHW", name=name)
    x = b.input()
    x = b.conv2d(x, rng.normal(0, 0.6, (3, 3, 1, c[0])), rng.normal(0, 0.05, c[0]),
                 padding="same")
    if bn:
        x = b.batchnorm(x, rng.normal(1, 0.2, c[0]), rng.normal(0, 0.2, c[0]),
                        rng.normal(0, 0.2, c[0]), rng.uniform(0.5, 2, c[0]))
    x = b.relu(x)
    x = b.maxpool(x, 2)
    x = b.conv2d(x, rng.normal(0, 0.4, (3, 3, c[0], c[1])), rng.normal(0, 0.05, c[1]))
    x = b.relu(x)
    x = b.avgpool(x, 2)
    x = b.flatten(x)
    x = b.dense(x, rng.normal(0, 0.3, (4 * c[1], 16)), rng.normal(0, 0.05, 16))
    x = b.relu(x)
    x = b.dense(x, rng.normal(0, 0.4, (16, 5)), rng.normal(0, 0.05, 5))
    return b.build(output=b.softmax(x), input_scale=1 / 255)


def _residual_concat(rng):
    b = GraphBuilder((10, 10, 2), name="rescat")
    x = b.input()
    a = b.relu(b.conv2d(x, rng.normal(0, 0.5, (3, 3, 2, 4)), padding="same"), name="a")
    h = b.relu(b.conv2d(a, rng.normal(0, 0.4, (3, 3, 4, 4)), padding="same"), name="h")
    r = b.add(b.conv2d(h, rng.normal(0, 0.4, (3, 3, 4, 4)), padding="same"), a, name="res")
    r = b.relu(r, name="r")
    s = b.relu(b.conv2d(a, rng.normal(0, 0.4, (1, 1, 4, 3))), name="s")
    cat = b.concat(r, s, name="cat")
    y = b.relu(b.conv2d(cat, rng.normal(0, 0.4, (3, 3, 7, 5)), strides=2), name="y")
    cat2 = b.flatten(b.concat(y, b.maxpool(b.relu(b.conv2d(cat, rng.normal(
        0, 0.4, (3, 3, 7, 2))), name="z"), 2, name="zp"), name="cat2"))
    out = b.dense(cat2, rng.normal(0, 0.3, (4 * 4 * 7, 6)), rng.normal(0, 0.1, 6))
    return b.build(output=out, input_scale=1 / 255)


def _agreement(g, net, x_raw, steps=256):
    ref = g.predict(x_raw.astype(np.float64) * g.input_scale).argmax(1)
    res = emulator.run(net, x_raw, steps, detail="all")
    return float(np.mean(res.predictions[-1] == ref))


# ---- options and errors -----------------------------------------------------------------------

def test_option_errors(rng):
    g = _cnn(rng)
    with pytest.raises(ConversionError, match="unknown option"):
        convert(g, None, reste="zero")
    with pytest.raises(ConversionError, match="reset"):
        convert(g, None, reset="half")
    with pytest.raises(ConversionError, match="method"):
        convert(g, None, method="magic")
    with pytest.raises(ConversionError, match="percentile"):
        convert(g, None, percentile=0)
    with pytest.raises(ConversionError, match="steps"):
        convert(g, None, tre="bias")
    with pytest.raises(ConversionError, match="exceeds the 8-bit"):
        convert(g, None, weight_bits=10, profile="loihi1")
    with pytest.raises(ConversionError, match="ideal"):
        convert(g, None, weight_bits=None, profile="loihi1")
    with pytest.raises(ConversionError, match="LSB"):
        convert(g, None, weight_bits=2, profile="loihi1")


def test_nan_weights_named(rng):
    g = _cnn(rng)
    g.layer("dense_1").weights["kernel"][0, 0] = np.nan
    with pytest.raises(ConversionError, match="dense_1"):
        convert(g, None)


def test_structure_and_meta(rng):
    g = _cnn(rng)
    net = convert(g, rng.uniform(0, 1, (40, 1, 12, 12)), method="robust", map=False)
    kinds = {p.name: p.kind for p in net.projections}
    assert sorted(kinds.values()) == ["avgpool", "conv", "conv", "dense", "dense", "maxpool"]
    assert net.input_layout == "CHW" and net.input.encoding == "analog"
    assert net.population(net.output).spiking is False
    m = net.meta
    assert m["method"] == "robust" and m["profile"] == "loihi1" and m["weight_bits"] == 8
    assert m["options"]["percentile"] == 99.9 and m["options"]["reset"] == "subtract"
    assert not m["reset_native"]  # Loihi 1 resets to zero natively
    assert set(m["quantisation"]) == {p.name for p in net.populations if not p.is_input}
    assert all(p.delay == 0 for p in net.projections)
    hw = convert(g, None, timing="hardware", readout="spikes", map=False)
    assert all(p.delay == 1 for p in hw.projections)
    assert hw.population(hw.output).spiking and hw.readout == "spikes"


@pytest.mark.parametrize("profile", ["loihi1", "loihi2", "speck", "truenorth", "ideal"])
def test_quantisation_respects_profile(rng, profile):
    prof = get_profile(profile)
    g = _cnn(rng)
    cal = rng.uniform(0, 1, (30, 1, 12, 12))
    top = prof.weight_bits or 8
    for bits in range(2, top + 1):
        if prof.weight_mixed_sign_loses_lsb and bits == 2:
            continue  # refused (test_option_errors)
        net = convert(g, cal, method="ecc", weight_bits=bits, profile=profile, map=False)
        wmax = (1 << (bits - 1)) - 1
        by = {p.name: p for p in net.populations}
        for pr in net.projections:
            w = pr.weights.astype(np.int64)
            assert np.abs(w).max() <= wmax, (profile, bits, pr.name)
            lo, hi = prof.weight_exponent_range
            assert max(lo, 0) <= pr.exponent <= max(hi, 0)
            if prof.weight_mixed_sign_loses_lsb and (w > 0).any() and (w < 0).any():
                assert np.all(w % 2 == 0), (bits, pr.name)
        for p in net.populations:
            if p.is_input:
                continue
            assert 1 <= p.threshold
            if prof.threshold_max is not None:
                assert p.threshold <= prof.threshold_max
            # the profile's range, within the int64 headroom of hw_models.intrange
            assert p.v_max == min(prof.v_max_unscaled, STATE_LIMIT)
            assert p.v_min == max(prof.v_min_unscaled, -STATE_LIMIT)
            assert p.overflow == prof.v_overflow and p.spike_rule == prof.spike_rule
            assert p.v_min <= p.v_init <= p.v_max
            if p.bias is not None and prof.bias_max is not None:
                k = net.meta["quantisation"][p.name]["bias"]["exponent"]
                assert k <= prof.bias_exponent_max
                assert np.all(p.bias % (1 << k) == 0)
                m = p.bias >> k
                assert m.max() <= prof.bias_max and m.min() >= prof.bias_min
        assert by  # populations exist
        q = net.meta["quantisation"]
        assert all(0 <= r["clipped_fraction"] <= 1 and r["rms_error"] >= 0 for r in q.values())


@pytest.mark.slow
def test_weights_only_vgg16_is_fast():
    """calibration=None converts a 224×224 VGG-16 (138 M weights) in seconds."""
    rng = np.random.default_rng(0)
    b = GraphBuilder((224, 224, 3))
    x = b.input()
    cin = 3
    for block, (n, c) in enumerate([(2, 64), (2, 128), (3, 256), (3, 512), (3, 512)]):
        for _ in range(n):
            x = b.relu(b.conv2d(x, rng.standard_normal((3, 3, cin, c), np.float32) * 0.05,
                                np.zeros(c), padding="same"))
            cin = c
        x = b.maxpool(x, 2)
    x = b.flatten(x)
    for nin, nout in ((25088, 4096), (4096, 4096)):
        x = b.relu(b.dense(x, rng.standard_normal((nin, nout), np.float32) * 0.01))
    x = b.dense(x, rng.standard_normal((4096, 1000), np.float32) * 0.01)
    g = b.build(output=x, input_scale=1 / 255)
    net = convert(g, None, method="ecc", weight_bits=8, profile="loihi2", map=False)
    assert sum(p.weights.size for p in net.projections) > 138_000_000


# ---- λ sharing and normalisation --------------------------------------------------------------

def test_add_and_concat_share_lambda(rng):
    g = _residual_concat(rng)
    cal = rng.integers(0, 256, (40, 10, 10, 2)) / 255
    net = convert(g, cal, method="robust", map=False)
    lam = net.meta["lambda"]
    assert lam["h"]["max"] == lam["a"]["max"]  # sources of the residual add
    assert lam["r"]["max"] == lam["s"]["max"]  # inputs of concat 'cat'
    raw = activation_scales(prepare(g), ["a", "h"], cal, 99.9)
    assert lam["a"]["max"] == pytest.approx(max(raw["a"][0], raw["h"][0]))
    kinds = sorted(p.kind for p in net.incoming("r"))
    assert kinds == ["conv", "identity"]
    assert len(net.incoming("y")) == 2  # one conv projection per concat input
    unshared = convert(g, cal, method="robust", map=False, share=False)
    assert unshared.meta["lambda"]["h"]["max"] != unshared.meta["lambda"]["a"]["max"]


def test_normalised_activations_and_argmax(rng):
    """Dividing every ReLU output by its λ keeps the argmax and puts the chosen percentile of
    the non-zero activations at ≤ 1."""
    g = prepare(_cnn(rng, bn=True))
    cal = rng.uniform(0, 1, (200, 1, 12, 12))
    names = [l.name for l in g if l.kind == "relu"]
    for p, per_channel in ((99.9, False), (100, False), (99.0, True)):
        lam = activation_scales(g, names, cal, p, per_channel)
        acts = g.forward(cal, outputs=names + [g.logits_name])
        for n in names:
            a = acts[n] / lam[n]
            nz = a[a > 0]
            assert np.mean(nz <= 1 + 1e-12) >= p / 100 - 1e-9
        net = convert(_cnn(rng, bn=True), cal, method="robust", percentile=p,
                      per_channel=per_channel, weight_bits=None, profile="ideal", map=False)
        assert net.meta["options"]["percentile"] == p


# ---- SNN vs float -----------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["robust", "ecc", "max", "rmp"])
def test_float_snn_matches_reference_cnn(rng, method):
    g = _cnn(rng)
    x = rng.integers(0, 256, (60, 1, 12, 12))
    net = convert(g, x[:40] / 255, method=method, weight_bits=None, profile="ideal", map=False)
    assert _agreement(g, net, x) >= (0.85 if method == "rmp" else 0.9)


def test_maxpool_runmax_relay_counts_the_window_maximum(rng):
    """maxpool='runmax': the relay's spike count is exactly the 2×2 window maximum of the
    spike counts of the population it pools (the winner gate's can exceed it)."""
    from emulator import engine
    g = _cnn(rng)
    x = rng.integers(0, 256, (8, 1, 12, 12))
    over = 0
    for mode in ("runmax", "gate"):
        net = convert(g, x / 255, method="robust", weight_bits=8, profile="ideal", map=False,
                      maxpool=mode)
        pr = next(p for p in net.projections if p.kind == "maxpool")
        assert pr.gate == ("runmax" if mode == "runmax" else "winner")
        raw = engine.simulate(net, net.to_internal_input(x), 64)
        src = raw["spike_counts"][pr.source].reshape((len(x),) + net.population(pr.source).shape)
        h, w, c = net.population(pr.target).shape
        want = src[:, :2 * h, :2 * w].reshape(len(x), h, 2, w, 2, c).max(axis=(2, 4))
        got = raw["spike_counts"][pr.target].reshape(want.shape)
        if mode == "runmax":
            assert np.array_equal(got, want)
            assert raw["proj"][pr.name]["synaptic_events"] == int(want.sum())
        else:
            assert np.all(got >= want)
            over = int((got - want).sum())
    assert over > 0  # the winner gate passed spikes beyond the maximum on this data


def test_maxpool_circuit_equals_runmax_gate(rng):
    """maxpool='circuit' (plain IF neurons) gives the pooled population the same spikes as
    the runmax gate, and the network the same predictions; no gate projection is left."""
    from emulator import engine
    g = _cnn(rng)
    x = rng.integers(0, 256, (6, 1, 12, 12))
    out = {}
    for mode in ("runmax", "circuit"):
        net = convert(g, x / 255, method="ecc", weight_bits=8, profile="ideal", map=False,
                      maxpool=mode)
        out[mode] = (net, engine.simulate(net, net.to_internal_input(x), 40))
    (n1, r1), (n2, r2) = out["runmax"], out["circuit"]
    assert not any(p.kind == "maxpool" for p in n2.projections)
    pool = next(p.target for p in n1.projections if p.kind == "maxpool")
    assert np.array_equal(r1["spike_counts"][pool], r2["spike_counts"][pool])
    assert np.array_equal(r1["predictions"], r2["predictions"])
    assert n2.population(pool + "/diff").size == 4 * n2.population(pool).size  # 2×2 windows: K = 4


def test_float_snn_matches_reference_residual_concat(rng):
    g = _residual_concat(rng)
    x = rng.integers(0, 256, (60, 10, 10, 2))
    net = convert(g, x[:40] / 255, method="ecc", weight_bits=None, profile="ideal", map=False)
    assert _agreement(g, net, x) >= 0.9


@pytest.mark.data
def test_tests_99_20_float_snn_agrees(mnist):
    """tests_99.20 at float precision, 256 steps: ≥ 97 % agreement on 100 MNIST samples."""
    from conftest import require_data
    from converter.load import load_model
    g = load_model(require_data("models", "tests_99.20.json"), input_scale=1 / 255)
    x, _ = mnist
    net = convert(g, x[:500, None] / 255, method="ecc", weight_bits=None, profile="ideal",
                  map=False)
    assert _agreement(g, net, x[8000:8100, None]) >= 0.97


@pytest.mark.data
@pytest.mark.parametrize("fname,scale", [("cifar10_81.45.h5", 1 / 255),
                                         ("keras_bn_maxpool.keras", 1 / 255),
                                         ("mnist-8.onnx", 1.0), ("torch_cnn.onnx", 1 / 255)])
def test_shared_models_convert(fname, scale, rng):
    from conftest import require_data
    from converter.load import load_model
    g = load_model(require_data("models", fname))
    shape = g.input_shape
    cal = rng.integers(0, 256, (20,) + shape) * scale
    for method in ("ecc", "robust", "rmp"):
        net = convert(g, cal, method=method, weight_bits=8, profile="loihi1",
                      input_scale=scale, map=False)
        net.validate()
        assert net.meta["ann_macs"] > 0
    if fname.startswith("cifar"):
        assert sum(p.kind == "maxpool" for p in net.projections) == 2


def test_mapping_and_roundtrip(rng, tmp_path):
    g = _cnn(rng)
    net = convert(g, None, method="ecc", weight_bits=8, profile="loihi1")
    if net.meta.get("mapping") is None:
        pytest.skip("converter.mapping not available")
    assert all(p.core is not None for p in net.populations)
    assert 1 <= net.meta["mapping"]["cores"] <= net.n_cores  # the input may sit off-chip
    from hw_models.network import CoreNetwork
    back = CoreNetwork.load(net.save(tmp_path / "net.h5"))
    assert back.meta["quantisation"] == net.meta["quantisation"]


def test_tre_bias_and_vinit(rng):
    g = _cnn(rng)
    cal = rng.uniform(0, 1, (20, 1, 12, 12))
    v = convert(g, cal, method="ecc", weight_bits=8, profile="ideal", map=False)
    b = convert(g, cal, method="ecc", weight_bits=8, profile="ideal", steps=64, tre="bias",
                map=False)
    for p in v.populations:
        role = v.meta["population_roles"].get(p.name)
        if role == "neuron":
            assert p.v_init == round(0.5 * p.threshold)
            pb = b.population(p.name)
            assert pb.v_init == 0
            # the per-step bias carries ρθ/T on top of the layer bias
            raw = convert(g, cal, method="ecc", weight_bits=8, profile="ideal", tre="none",
                          map=False).population(p.name).bias_array()
            np.testing.assert_allclose(pb.bias_array() - raw, 0.5 * pb.threshold / 64, atol=1)


@pytest.mark.parametrize("profile,encoding,reset", [("loihi2", "analog", "subtract"),
                                                     ("ideal", "rate", "subtract"),
                                                     ("loihi1", "analog", "zero")])
def test_quantised_snn_close_to_float(rng, profile, encoding, reset):
    """8-bit ECC on chips with v > θ (relays use v_init = 1), rate input and reset to zero."""
    g = _cnn(rng)
    x = rng.integers(0, 256, (60, 1, 12, 12))
    net = convert(g, x[:40] / 255, method="ecc", weight_bits=8, profile=profile,
                  encoding=encoding, reset=reset, map=False)
    assert net.population(net.populations[1].name).reset == reset
    assert _agreement(g, net, x) >= (0.75 if reset == "zero" else 0.85)


def test_per_channel_scales_keep_the_argmax(rng):
    g = _cnn(rng)
    x = rng.integers(0, 256, (60, 1, 12, 12))
    net = convert(g, x[:40] / 255, method="robust", per_channel=True, weight_bits=None,
                  profile="ideal", map=False)
    assert net.meta["lambda"][net.output]["per_channel"] is False  # one λ for the logits
    assert any(v["per_channel"] for v in net.meta["lambda"].values())
    assert _agreement(g, net, x) >= 0.9


# ---- grouped / depthwise convolutions and ReLU6 ------------------------------------------------

def _expand_groups(kernel, groups):
    """The block-diagonal groups=1 kernel equal to a grouped one."""
    kh, kw, cg, cout = kernel.shape
    og = cout // groups
    full = np.zeros((kh, kw, cg * groups, cout))
    for g in range(groups):
        full[:, :, g * cg:(g + 1) * cg, g * og:(g + 1) * og] = kernel[..., g * og:(g + 1) * og]
    return full


def _mobilenet(rng, c=6, expand=False):
    """MobileNet-style: conv → BN → ReLU6 → depthwise 3×3 (stride 2) → BN → ReLU6 → pointwise
    → ReLU6 → grouped 3×3 (3 groups) → ReLU → GAP → dense."""
    b = GraphBuilder((12, 12, 2), name="mobile")
    x = b.input()
    x = b.conv2d(x, rng.normal(0, 0.5, (3, 3, 2, c)), rng.normal(0, 0.05, c), padding="same")
    x = b.batchnorm(x, rng.normal(1, 0.2, c), rng.normal(0, 0.2, c), rng.normal(0, 0.2, c),
                    rng.uniform(0.5, 2, c))
    x = b.relu(x, 6.0)
    def conv(x, k, bias=None, groups=1, **kw):
        if expand:
            return b.conv2d(x, _expand_groups(k, groups), bias, **kw)
        return b.conv2d(x, k, bias, groups=groups, **kw)
    x = conv(x, rng.normal(0, 0.6, (3, 3, 1, c)), None, c, strides=2, padding="same",
             name="dw")
    x = b.batchnorm(x, rng.normal(1, 0.2, c), rng.normal(0, 0.2, c), rng.normal(0, 0.2, c),
                    rng.uniform(0.5, 2, c))
    x = b.relu(x, 6.0)
    x = b.relu(b.conv2d(x, rng.normal(0, 0.5, (1, 1, c, 9)), rng.normal(0, 0.05, 9)), 6.0)
    x = b.relu(conv(x, rng.normal(0, 0.5, (3, 3, 3, 6)), None, 3, padding="same",
                    name="grp"))
    x = b.dense(b.global_avgpool(x), rng.normal(0, 0.5, (6, 5)), rng.normal(0, 0.05, 5))
    return b.build(output=x, input_scale=1 / 255)


def test_grouped_conv_float_reference_equals_per_group_loops(rng):
    """The grouped float conv equals a plain conv per group (and a brute-force sum)."""
    from converter.graph import conv2d
    x = rng.normal(size=(3, 7, 6, 6))
    k = rng.normal(size=(3, 2, 2, 9))  # 3 groups: 2 inputs, 3 outputs each
    y = conv2d(x, k, None, (2, 1), (1, 0, 1, 1), (1, 2), groups=3)
    for g in range(3):
        want = conv2d(x[..., 2 * g:2 * g + 2], k[..., 3 * g:3 * g + 3], None, (2, 1),
                      (1, 0, 1, 1), (1, 2))
        np.testing.assert_allclose(y[..., 3 * g:3 * g + 3], want, atol=1e-12)
    dw = rng.normal(size=(3, 3, 1, 6))
    y = conv2d(x, dw, None, (1, 1), (0, 0, 0, 0), (1, 1), groups=6)
    brute = np.zeros_like(y)
    for i in range(y.shape[1]):
        for j in range(y.shape[2]):
            brute[:, i, j, :] = np.einsum("nabc,abc->nc", x[:, i:i + 3, j:j + 3, :], dw[:, :, 0])
    np.testing.assert_allclose(y, brute, atol=1e-12)


def test_grouped_conv_and_relu6_convert_and_run_exactly(rng):
    """Depthwise/grouped conv + ReLU6 through prepare (BN folded into the depthwise kernel),
    convert (groups kept on the projection, λ ≤ 6), the engine == the dense reference, the
    SNN equal spike for spike to that of the same network with block-diagonal groups=1
    kernels, and the float SNN agreeing with the float graph."""
    from emulator import engine, reference
    seed = int(rng.integers(1 << 30))
    g = _mobilenet(np.random.default_rng(seed))
    g_full = _mobilenet(np.random.default_rng(seed), expand=True)
    x = rng.integers(0, 256, (60, 12, 12, 2))
    np.testing.assert_allclose(g.predict(x / 255), g_full.predict(x / 255), atol=1e-9)
    folded = prepare(g)
    np.testing.assert_allclose(folded.predict(x / 255), g.predict(x / 255), atol=1e-9)
    net = convert(g, x[:40] / 255, method="ecc", weight_bits=None, profile="ideal", map=False)
    grouped = {pr.name: pr.groups for pr in net.projections if pr.groups > 1}
    assert grouped == {"dw": 6, "grp": 3}
    assert all(v["max"] <= 6.0 for k, v in net.meta["lambda"].items()
               if k.startswith("relu"))
    assert _agreement(g, net, x, steps=128) >= 0.85  # random weights: close logits
    q = convert(g, x[:40] / 255, method="ecc", weight_bits=8, profile="loihi1")
    q_full = convert(g_full, x[:40] / 255, method="ecc", weight_bits=8, profile="loihi1",
                     map=False)
    ref = reference.simulate(q, x[:4], 24)
    eng = engine.simulate(q, x[:4], 24)
    full = engine.simulate(q_full, x[:4], 24)
    np.testing.assert_array_equal(ref["predictions"], eng["predictions"])
    np.testing.assert_array_equal(full["predictions"], eng["predictions"])
    for name in ref["spike_counts"]:
        np.testing.assert_array_equal(ref["spike_counts"][name], eng["spike_counts"][name])
        np.testing.assert_array_equal(full["spike_counts"][name], eng["spike_counts"][name])
    assert ref["totals"] == {k: eng["totals"][k] for k in ref["totals"]}
    # the grouped network delivers G times fewer synaptic events than its expansion's
    # structural count, for the same spikes
    assert eng["proj"]["dw"]["synaptic_events"] * 6 == full["proj"]["dw"]["synaptic_events"]


def test_relu6_caps_lambda_and_is_a_rate_ceiling(rng):
    """λ of a ReLU6 population never exceeds 6 (method 'max' puts it exactly at the clip when
    the calibration reaches it), and a ReLU6 of an already spiking map is not dropped."""
    b = GraphBuilder((4,), name="r6")
    x = b.input()
    h = b.relu(b.dense(x, np.eye(4) * 10.0), name="h")
    h6 = b.relu(h, 6.0, name="h6")
    g = b.build(output=b.dense(h6, np.eye(4)), input_scale=1.0)
    cal = np.eye(4)
    net = convert(g, cal, method="max", weight_bits=None, profile="ideal", map=False)
    assert net.meta["lambda"]["h"]["max"] == pytest.approx(10.0)
    assert net.meta["lambda"]["h6"]["max"] == pytest.approx(6.0)
    assert [pr.kind for pr in net.incoming("h6")] == ["identity"]


def test_linear_layers_compose_exactly(rng):
    """Two linear layers in a row (no ReLU between) become one linear map at planning time:
    a depthwise conv then a pointwise conv (SeparableConv2D), and a MobileNetV2 linear
    bottleneck (1×1 project, residual add, then a padded 3×3 conv and a 1×1 expand).  The
    float-weight SNN agrees with the graph."""
    b = GraphBuilder((8, 8, 3), name="linear")
    x = b.relu(b.conv2d(b.input(), rng.normal(0, 0.5, (3, 3, 3, 6)), padding="same"))
    d = b.conv2d(x, rng.normal(0, 0.6, (3, 3, 1, 6)), rng.normal(0, 0.1, 6), padding="same",
                 groups=6)
    s = b.relu(b.conv2d(d, rng.normal(0, 0.5, (1, 1, 6, 6)), rng.normal(0, 0.1, 6)))
    p = b.conv2d(s, rng.normal(0, 0.5, (1, 1, 6, 6)), rng.normal(0, 0.1, 6))   # project
    r = b.add(p, s)                                                             # no ReLU
    q = b.relu(b.conv2d(r, rng.normal(0, 0.4, (3, 3, 6, 4)), rng.normal(0, 0.1, 4),
                        strides=2, padding="same"))
    e = b.relu(b.conv2d(b.add(b.conv2d(q, rng.normal(0, 0.5, (1, 1, 4, 4))), q),
                        rng.normal(0, 0.5, (1, 1, 4, 5))))
    g = b.build(output=b.dense(b.global_avgpool(e), rng.normal(0, 0.5, (5, 3))),
                input_scale=1 / 255)
    x_raw = rng.integers(0, 256, (60, 8, 8, 3))
    net = convert(g, x_raw[:40] / 255, method="robust", weight_bits=None, profile="ideal",
                  map=False)
    # input, x, s, q, e, the global average and the output: none for the linear layers
    assert len(net.populations) == 7
    assert _agreement(g, net, x_raw, steps=256) >= 0.9


@pytest.mark.parametrize("groups,strides,wb,prof,tol", [(1, 1, None, "ideal", 1e-6),
                                                        (3, 2, None, "ideal", 1e-6),
                                                        (1, 1, 8, "loihi1", 0.06)])
def test_input_offset_before_a_padded_conv_is_a_per_neuron_bias(rng, groups, strides, wb,
                                                                 prof, tol):
    """In-graph ``(x/255 − mean)/std`` is the input spec's per-channel offset.  Before a padded
    first conv the padded pixels are 0 in model units, so the offset adds only at the taps
    inside the image: the first layer's integer input (weights · raw + bias) equals the float
    pre-activation up to one common factor at border and interior neurons alike (exact up to
    quantisation), where one bias per channel would be wrong at the border."""
    from converter.graph import conv2d
    from emulator.reference import dense_matrices
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    k = rng.normal(0, 0.3, (3, 3, 3 // groups, 6))
    bias = rng.normal(0, 0.1, 6)
    b = GraphBuilder((7, 6, 3))
    c = b.conv2d(b.input(), k, bias, strides=strides, padding="same", groups=groups)
    h = b.flatten(b.relu(c))
    ho, wo = (7, 6) if strides == 1 else (4, 3)
    g = b.build(output=b.dense(h, rng.normal(0, 0.3, (ho * wo * 6, 3))))
    g = g.with_input_spec(scale=tuple(1 / 255 / std), offset=tuple(-mean / std))
    raw = rng.integers(0, 256, (8, 7, 6, 3))
    pad = g.layer(c).params["padding"]
    assert any(pad)
    z = conv2d(raw / 255 / std - mean / std, k, bias, (strides,) * 2, pad, (1, 1), groups)
    z = z.reshape(len(raw), -1)                                  # float pre-activation
    net = convert(g, raw, method="ecc", weight_bits=wb, profile=prof, map=False)
    pr = next(p for p in net.projections if p.source == net.input.name)
    tgt = net.population(pr.target)
    assert tgt.shape == (ho, wo, 6)
    w, _ = dense_matrices(pr, net.input, tgt)
    cur = raw.reshape(len(raw), -1) @ w + tgt.bias_array()     # the weighted integer input
    factor = (cur * z).sum() / (z * z).sum()
    border = np.zeros((ho, wo, 6), bool)
    border[[0, -1]] = border[:, [0, -1]] = True
    border = border.reshape(-1)
    err = np.abs(cur - factor * z) / np.abs(cur).max()
    assert err[:, border].max() <= tol and err[:, ~border].max() <= tol
    # one bias per channel (the interior neurons' value) is far off at the border
    centre = tgt.bias_array().reshape(ho, wo, 6)[ho // 2, wo // 2]
    naive = cur - tgt.bias_array() + np.tile(centre, ho * wo)
    assert (np.abs(naive - factor * z) / np.abs(cur).max())[:, border].max() > max(5 * tol, 0.1)


# ---- average pooling whose divisor excludes the padding (Keras padding="same") ---------------

def _excl_pad_net(rng, pool, strides, zp):
    b = GraphBuilder((9, 7, 2), name="avgsame")
    x = b.input()
    x = b.relu(b.conv2d(x, rng.normal(0, 0.5, (3, 3, 2, 4)), rng.normal(0.1, 0.05, 4),
                        padding="same"))
    if zp:
        x = b.zeropad(x, zp)
    x = b.avgpool(x, pool, strides, padding="same", name="pool")  # count_include_pad=False
    x = b.relu(b.conv2d(x, rng.normal(0, 0.5, (2, 2, 4, 5)), rng.normal(0, 0.05, 5)))
    x = b.dense(b.flatten(x), rng.normal(0, 0.4, (int(np.prod(b.shape(x))), 3)))
    return b.build(output=x, input_scale=1 / 255)


@pytest.mark.parametrize("pool,strides,zp", [(2, 2, None), (3, 2, None), (3, 1, (1, 0, 0, 2)),
                                             (2, 2, (1, 0, 0, 0))])
def test_avgpool_excluding_padding_is_exact_and_engine_equals_reference(rng, pool, strides, zp):
    """AveragePooling2D(padding="same") divides each window by its number of real pixels (the
    zeros of an explicit ZeroPadding before it count; the pool's own padding does not).  The
    converter writes it as a dense projection with weight 1/count per output neuron: its linear
    map equals the graph's pooling exactly, and the engine equals the dense reference spike for
    spike."""
    from converter.convert import _excl_pad_avgpool
    from converter.graph import pool2d
    from emulator import engine, reference
    g = _excl_pad_net(rng, pool, strides, zp)
    layer = g.layer("pool")
    assert not layer.params["count_include_pad"] and any(layer.params["padding"])
    # the projection's linear map == the graph's pooling (zero padding first, if any)
    src = g.layer(layer.inputs[0])
    h, w, c = src.shape if src.kind != "zeropad" else g.layer(src.inputs[0]).shape
    zpad = tuple(src.params["padding"]) if src.kind == "zeropad" else (0, 0, 0, 0)
    pad = tuple(a + b for a, b in zip(zpad, layer.params["padding"]))
    geom = {"kernel": (pool, pool), "stride": (strides, strides), "padding": pad}
    term = _excl_pad_avgpool("t", "s", (h, w, c), layer.shape, geom, zpad, "pool")
    xs = rng.normal(size=(3, h, w, c))
    want = pool2d(np.pad(xs, ((0, 0), zpad[:2], zpad[2:], (0, 0))), (pool, pool),
                  (strides, strides), layer.params["padding"], "avg", False)
    np.testing.assert_allclose((xs.reshape(3, -1) @ term.weights).reshape(want.shape), want,
                               atol=1e-12)
    # convert, engine == reference, and the SNN follows the float graph
    x = rng.integers(0, 256, (40, 9, 7, 2))
    q = convert(g, x[:30] / 255, method="ecc", weight_bits=8, profile="loihi1")
    assert any(pr.kind == "dense" and len(q.population(pr.target).shape) == 3
               for pr in q.projections)
    ref = reference.simulate(q, x[:5], 32)
    eng = engine.simulate(q, x[:5], 32)
    np.testing.assert_array_equal(ref["predictions"], eng["predictions"])
    for name in ref["spike_counts"]:
        np.testing.assert_array_equal(ref["spike_counts"][name], eng["spike_counts"][name])
    assert ref["totals"] == {k: eng["totals"][k] for k in ref["totals"]}
    f = convert(g, x[:30] / 255, method="ecc", weight_bits=None, profile="ideal", map=False)
    assert _agreement(g, f, x, steps=256) >= 0.85


def test_avgpool_excluding_padding_too_large_is_refused():
    from converter.convert import _excl_pad_avgpool
    from hw_models.errors import UnsupportedLayerError
    geom = {"kernel": (2, 2), "stride": (2, 2), "padding": (0, 1, 0, 1)}
    with pytest.raises(UnsupportedLayerError, match="'big'.*count_include_pad=False"):
        _excl_pad_avgpool("t", "s", (255, 255, 64), (128, 128, 64), geom, (0, 0, 0, 0), "big")
