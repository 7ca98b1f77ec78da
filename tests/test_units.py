"""One unit system from data set to chip (issue #8).

The same uint8 array — and the same array divided by 255, the models' scale — goes to
``Graph.predict``, ``converter.convert`` and ``emulator.run`` for a Keras, an ONNX and a NIR model
and gives identical predictions, networks and runs; unit mix-ups are refused with a message that
says what was expected and what was seen; a what-if profile's numbers are the ones reported.
"""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

import emulator
from converter import convert, feasibility, load_model
from hw_models.errors import ConversionError, DataError
from hw_models.network import CoreNetwork
from hw_models.profiles import get_profile
from neuroemu.data import Dataset
from neuroemu.pipeline import evaluate, fit, resolve_input

N, T = 12, 24
SHAPE_CHW = (1, 6, 6)


def _weights(seed=0):
    r = np.random.default_rng(seed)
    k = r.normal(0, 0.5, (3, 3, 1, 4))          # HWIO
    b = r.normal(0, 0.05, 4)
    w = r.normal(0, 0.3, (4 * 4 * 4, 3))         # rows in HWC flatten order
    c = r.normal(0, 0.05, 3)
    return k, b, w, c


def _keras(path):
    """channels-last Keras 2 HDF5 with an in-graph Rescaling(1/255)."""
    k, b, w, c = _weights()
    layers = [
        {"class_name": "Rescaling", "config": {"name": "rescale", "scale": 1 / 255,
                                               "offset": 0.0,
                                               "batch_input_shape": [None, 6, 6, 1]}},
        {"class_name": "Conv2D", "config": {"name": "conv", "filters": 4, "kernel_size": [3, 3],
                                            "padding": "valid", "activation": "relu"}},
        {"class_name": "Flatten", "config": {"name": "flat"}},
        {"class_name": "Dense", "config": {"name": "fc", "units": 3}},
    ]
    weights = {"rescale": [], "conv": [("kernel", k), ("bias", b)], "flat": [],
               "fc": [("kernel", w), ("bias", c)]}
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps({"class_name": "Sequential",
                                              "config": {"name": "s", "layers": layers}})
        f.attrs["keras_version"] = "2.2.4"
        f.attrs["backend"] = "tensorflow"
        g = f.create_group("model_weights")
        g.attrs["layer_names"] = [n.encode() for n in weights]
        for lname, ws in weights.items():
            lg = g.create_group(lname)
            lg.attrs["weight_names"] = [f"{lname}/{n}:0".encode() for n, _ in ws]
            for n, arr in ws:
                lg.create_dataset(f"{lname}/{n}:0", data=arr)
    return load_model(path)


def _onnx(path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper
    k, b, w, c = _weights()
    # NCHW flatten order for the Gemm rows: (c, h, w) <- HWC rows (h, w, c)
    w_chw = w.reshape(4, 4, 4, 3).transpose(2, 0, 1, 3).reshape(64, 3)
    inits = [numpy_helper.from_array(k.transpose(3, 2, 0, 1).astype(np.float32), "k"),
             numpy_helper.from_array(b.astype(np.float32), "b"),
             numpy_helper.from_array(w_chw.astype(np.float32), "w"),
             numpy_helper.from_array(c.astype(np.float32), "c")]
    nodes = [helper.make_node("Conv", ["x", "k", "b"], ["y1"], kernel_shape=[3, 3]),
             helper.make_node("Relu", ["y1"], ["y2"]),
             helper.make_node("Flatten", ["y2"], ["y3"], axis=1),
             helper.make_node("Gemm", ["y3", "w", "c"], ["out"])]
    graph = helper.make_graph(
        nodes, "units", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 6, 6])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 3])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(model, str(path))
    return load_model(path, input_scale=1 / 255)


def _nir(path):
    nir = pytest.importorskip("nir")
    k, b, w, c = _weights()
    w_chw = w.reshape(4, 4, 4, 3).transpose(2, 0, 1, 3).reshape(64, 3)
    nodes = {
        "in": nir.Input(input_type={"input": np.array(SHAPE_CHW)}),
        "conv": nir.Conv2d(input_shape=(6, 6), weight=k.transpose(3, 2, 0, 1), stride=1,
                           padding=0, dilation=1, groups=1, bias=b),
        "if1": nir.IF(r=np.ones((4, 4, 4)), v_threshold=np.ones((4, 4, 4))),
        "flat": nir.Flatten(input_type={"input": np.array([4, 4, 4])}, start_dim=0),
        "fc": nir.Affine(weight=w_chw.T, bias=c),
        "out": nir.Output(output_type={"output": np.array([3])}),
    }
    edges = [("in", "conv"), ("conv", "if1"), ("if1", "flat"), ("flat", "fc"), ("fc", "out")]
    nir.write(str(path), nir.NIRGraph(nodes=nodes, edges=edges))
    return load_model(path, input_scale=1 / 255)


MODELS = {"keras": (_keras, "k.h5", (6, 6, 1)), "onnx": (_onnx, "m.onnx", SHAPE_CHW),
          "nir": (_nir, "n.nir", SHAPE_CHW)}


@pytest.fixture(scope="module")
def images():
    r = np.random.default_rng(7)
    return r.integers(0, 256, size=(N, 6, 6)).astype(np.uint8)


def _same_network(a: CoreNetwork, b: CoreNetwork):
    assert [p.name for p in a.populations] == [p.name for p in b.populations]
    for p, q in zip(a.populations, b.populations):
        assert (p.threshold, p.v_init, p.input_max, p.encoding) == \
            (q.threshold, q.v_init, q.input_max, q.encoding)
        np.testing.assert_array_equal(p.bias_array(), q.bias_array())
    for p, q in zip(a.projections, b.projections):
        assert (p.name, p.exponent) == (q.name, q.exponent)
        np.testing.assert_array_equal(p.weights, q.weights)
    assert a.input_spec == b.input_spec


@pytest.mark.parametrize("kind", list(MODELS))
def test_same_array_everywhere(kind, images, tmp_path):
    make, fname, shape = MODELS[kind]
    g = make(tmp_path / fname)
    assert g.input_spec.scale == pytest.approx(1 / 255), "importer must fill the scale"
    x_raw = images.reshape((N,) + shape)
    x_model = x_raw / 255                       # the same images in the model's units
    # predict: identical logits, bit for bit
    np.testing.assert_array_equal(g.predict(x_raw), g.predict(x_model))
    # convert: identical networks
    net = convert(g, x_raw, weight_bits=8, method="robust")
    _same_network(net, convert(g, x_model, weight_bits=8, method="robust"))
    assert net.spec.shape == shape and net.spec.raw_max == 255
    # run: identical runs, and with the network's spec read back from its file
    back = CoreNetwork.load(net.save(tmp_path / "net.h5"))
    r1 = emulator.run(net, x_raw, T, detail="all")
    r2 = emulator.run(back, x_model, T, detail="all")
    np.testing.assert_array_equal(r1.predictions, r2.predictions)
    for name, v in r1.counters.items():
        np.testing.assert_array_equal(v, r2.counters[name])
    # and the SNN follows the float network it came from
    agree = np.mean(np.asarray(r1.predictions)[-1] == g.predict(x_raw).argmax(1))
    assert agree >= 0.75


def test_all_three_importers_describe_the_same_model(images, tmp_path):
    logits = [MODELS[k][0](tmp_path / MODELS[k][1]).predict(images.reshape((N,) + MODELS[k][2]))
              for k in MODELS]
    np.testing.assert_allclose(logits[0], logits[1], atol=1e-5)
    np.testing.assert_allclose(logits[0], logits[2], atol=1e-12)


def test_unit_mix_ups_are_refused(images, tmp_path):
    g = _keras(tmp_path / "k.h5")
    x = images[..., None]
    net = convert(g, x, weight_bits=8)
    floats_0_255 = x.astype(np.float32)
    for call in (lambda: g.predict(floats_0_255), lambda: convert(g, floats_0_255),
                 lambda: emulator.run(net, floats_0_255, 4)):
        with pytest.raises(DataError, match=r"model units 0\.\.1 .*values span 0\.\.255.*"
                                            r"look like raw values"):
            call()
    wide = x.astype(np.int32) * 2
    with pytest.raises(DataError, match=r"raw value \d+ in sample \d+ is outside 0\.\.255"):
        emulator.run(net, wide, 4)
    with pytest.raises(DataError, match="shape"):
        emulator.run(net, images.reshape(N, 36), 4)
    # a model that does not say its scale: never guessed
    g_unknown = load_model(_onnx_path(tmp_path))
    assert g_unknown.input_spec.scale is None
    with pytest.raises(ConversionError, match="does not say its input scale"):
        convert(g_unknown, x.reshape(N, 1, 6, 6))
    with pytest.raises(DataError, match="input-scale"):
        resolve_input(g_unknown)
    # a model fed raw 0..255 (scale 1, like the ONNX zoo's mnist-8) given pixels/255
    g_raw = load_model(tmp_path / "u.onnx", input_scale=1.0)
    with pytest.raises(DataError, match=r"looks like data scaled to 0\.\.1"):
        convert(g_raw, x.reshape(N, 1, 6, 6) / 255)


def _onnx_path(tmp_path):
    _onnx(tmp_path / "u.onnx")
    return tmp_path / "u.onnx"


def test_keras_normalization_fills_a_per_channel_spec(tmp_path, rng):
    """Rescaling then Normalization (per channel) → scale and offset; the offset is folded into
    the first dense layer's bias exactly."""
    mean, var = np.array([0.2, 0.5]), np.array([0.04, 0.25])
    kd = rng.normal(size=(2 * 2 * 2, 3))
    layers = [
        {"class_name": "Rescaling", "config": {"name": "r", "scale": 1 / 255, "offset": 0.0,
                                               "batch_input_shape": [None, 2, 2, 2]}},
        {"class_name": "Normalization", "config": {"name": "n", "axis": -1}},
        {"class_name": "Flatten", "config": {"name": "f"}},
        {"class_name": "Dense", "config": {"name": "d", "units": 3}},
    ]
    p = tmp_path / "norm.h5"
    weights = {"r": [], "n": [("mean", mean), ("variance", var), ("count", np.array(10))],
               "f": [], "d": [("kernel", kd), ("bias", np.zeros(3))]}
    with h5py.File(p, "w") as f:
        f.attrs["model_config"] = json.dumps({"class_name": "Sequential",
                                              "config": {"name": "s", "layers": layers}})
        f.attrs["keras_version"] = "2.2.4"
        g = f.create_group("model_weights")
        g.attrs["layer_names"] = [n.encode() for n in weights]
        for lname, ws in weights.items():
            lg = g.create_group(lname)
            lg.attrs["weight_names"] = [f"{lname}/{n}:0".encode() for n, _ in ws]
            for n, arr in ws:
                lg.create_dataset(f"{lname}/{n}:0", data=arr)
    g = load_model(p)
    assert [l.kind for l in g] == ["input", "flatten", "dense"]
    np.testing.assert_allclose(g.input_spec.scale, 1 / 255 / np.sqrt(var))
    np.testing.assert_allclose(g.input_spec.offset, -mean / np.sqrt(var))
    x = rng.integers(0, 256, size=(5, 2, 2, 2)).astype(np.uint8)
    want = ((x / 255 - mean) / np.sqrt(var)).reshape(5, -1) @ kd
    np.testing.assert_allclose(g.predict(x), want, atol=1e-12)
    net = convert(g, x, weight_bits=None, profile="ideal", readout="v")
    res = emulator.run(net, x, 1, detail="all")
    assert np.array_equal(np.asarray(res.predictions)[-1], want.argmax(1))


# ---- profiles as objects ------------------------------------------------------------------

def test_what_if_profile_is_the_one_reported(images, tmp_path):
    stock = get_profile("loihi1")
    what_if = stock.replace(e_syn_event=stock.e_syn_event * 10, neurons_per_core=16,
                            time_per_step_s=stock.time_per_step_s * 3)
    g = _keras(tmp_path / "k.h5")
    x = images[..., None]
    net = convert(g, x, weight_bits=8, profile=what_if)
    assert net.profile is what_if
    # the network file keeps the what-if numbers, not just the name
    back = CoreNetwork.load(net.save(tmp_path / "w.h5"))
    assert back.profile == what_if
    # feasibility(net) uses the profile the network was converted for, with its limits
    rep = feasibility(back)
    assert rep.totals and rep.resources.limits["neurons"] == 16
    assert fit(back).resources.limits["neurons"] == 16
    assert feasibility(back, "loihi1").resources.limits["neurons"] == 1024
    # evaluate reports the what-if energies and times
    ds = Dataset(x, np.zeros(N, np.int64), "units")
    ev = evaluate(back, ds, 8)
    from hw_models.energy import energy_report, latency_report
    counters = dict(ev.result.counters)
    want = energy_report(counters, what_if, steps=8, samples=N, ann_macs=ev.ann_macs)
    assert ev.energy.per_sample == pytest.approx(want.per_sample)
    assert ev.energy.per_sample > energy_report(counters, stock, steps=8, samples=N).per_sample
    assert ev.latency.seconds == pytest.approx(latency_report(ev.settle_steps,
                                                              what_if).seconds)
    assert ev.chip_profile is not None and ev.chip_profile == what_if
    assert ev.profile == "loihi1 (what-if)" and "on loihi1 (what-if)" in str(ev)
    ev2 = evaluate(back, ds, 8, profile=stock)
    assert ev2.energy.per_sample < ev.energy.per_sample
