"""QCFS networks (Bu et al. 2022): the activation, its ONNX and Keras 3 import, the exact
conversion, average pools folded, and the layer-by-layer schedule that makes the SNN equal the
quantised ANN at T = L."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from converter.builder import GraphBuilder
from converter.convert import convert
from emulator import engine, reference
from hw_models.errors import ConversionError, UnsupportedLayerError

LAM, L = 2.0, 4


def _exact_qcfs_net(rng):
    """input (6, 6, 2) → conv 3×3 (4 channels) + QCFS(λ = 2, L = 4) → flatten → dense 3.

    Weights are chosen so that 8-bit quantisation is exact: in threshold units per raw pixel
    the conv weights are K/127 with integer K (max |K| = 127, so θ = 127, odd: the v(0) = ⌊θ/2⌋
    case) and its bias m/127; the read-out weights (λ_out = 1 without calibration) are K2/127.
    """
    b = GraphBuilder((6, 6, 2), name="qcfs_exact")
    x = b.input()
    k = rng.integers(-127, 128, (3, 3, 2, 4))
    k[0, 0, 0, 0] = 127
    m = rng.integers(-300, 300, 4)
    x = b.conv2d(x, k * (255 * LAM / 127), m * (LAM / 127), padding="same")
    x = b.relu(x, LAM, levels=L, name="q1")
    x = b.flatten(x)
    k2 = rng.integers(-127, 128, (6 * 6 * 4, 3))
    k2[0, 0] = 127
    x = b.dense(x, k2 / (127 * LAM), rng.integers(-500, 500, 3) / 127)
    return b.build(output=x, input_scale=1 / 255)


def test_qcfs_activation_in_the_graph():
    b = GraphBuilder((5,), name="act")
    x = b.relu(b.input(), 2.0, levels=4)
    g = b.build(output=x)
    xs = np.array([[-1.0, 0.24, 0.26, 1.3, 9.0]])
    # λ/L = 0.5: ⌊x·2 + ½⌋ clipped to [0, 4], times 0.5
    assert g.predict(xs).tolist() == [[0.0, 0.0, 0.5, 1.5, 2.0]]
    with pytest.raises(ConversionError, match="levels"):
        b.relu(x, 2.0, levels=0)
    with pytest.raises(ConversionError, match="positive finite"):
        b.relu(x, None, levels=4)


@pytest.mark.parametrize("bits", [8, None])
def test_snn_equals_quantised_ann_at_t_equals_l(rng, bits):
    """θ = λ, v(0) = θ/2, T = L: the hidden spike counts are L·h/λ exactly and the read-out
    voltage is T·θ_out × the ANN's logits, so the predictions agree on every sample."""
    g = _exact_qcfs_net(rng)
    x = rng.integers(0, 256, (40, 6, 6, 2))
    net = convert(g, None, method="robust", weight_bits=bits, profile="ideal", map=False)
    hid = net.population("q1")
    assert hid.threshold == (127 if bits == 8 else hid.threshold)
    assert hid.v_init == hid.threshold // 2
    assert net.meta["lambda"]["q1"]["values"] == [LAM]
    raw = engine.simulate(net, x, L)
    acts = g.forward(x / 255, outputs=["q1", g.logits_name])
    want = np.rint(acts["q1"] * (L / LAM)).astype(np.int64).reshape(len(x), -1)
    got = raw["spike_counts"]["q1"].astype(np.int64)
    assert np.array_equal(got, want)
    assert 0 < want.mean() < L  # neither silent nor saturated
    logits = acts[g.logits_name]
    srt = np.sort(logits, axis=1)
    assert np.all(srt[:, -1] - srt[:, -2] > 1e-9)  # no ties
    assert np.array_equal(raw["predictions"][L - 1], logits.argmax(1))


def _onnx_qcfs_model(tmp_path, slope=None, shift=0.5, div=False):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(3)
    w = rng.normal(0, 0.4, (4, 2, 3, 3)).astype(np.float32)
    wd = rng.normal(0, 0.3, (4 * 5 * 5, 3)).astype(np.float32)
    a = L / LAM if slope is None else slope
    inits = [numpy_helper.from_array(v, n) for n, v in (
        ("w", w), ("wd", wd), ("bd", np.zeros(3, np.float32)),
        ("a", np.array(1 / a if div else a, np.float32)), ("half", np.array(shift, np.float32)),
        ("lo", np.array(0, np.float32)), ("hi", np.array(L, np.float32)),
        ("s", np.array(LAM / L, np.float32)))]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[0, 0, 0, 0]),
             helper.make_node("Div" if div else "Mul", ["c", "a"], ["m"]),
             helper.make_node("Add", ["half", "m"], ["ad"]),
             helper.make_node("Floor", ["ad"], ["f"]),
             helper.make_node("Clip", ["f", "lo", "hi"], ["cl"]),
             helper.make_node("Mul", ["cl", "s"], ["q"]),
             helper.make_node("Flatten", ["q"], ["fl"]),
             helper.make_node("Gemm", ["fl", "wd", "bd"], ["y"])]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 7, 7])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    path = tmp_path / "qcfs.onnx"
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("div", [False, True])
def test_onnx_qcfs_chain_imports_as_one_activation(tmp_path, div):
    from converter.onnx_import import load_onnx
    path = _onnx_qcfs_model(tmp_path, div=div)
    g = load_onnx(path)
    q = [l for l in g if l.kind == "relu"]
    assert len(q) == 1 and q[0].params["levels"] == L
    assert q[0].params["max_value"] == pytest.approx(LAM, rel=1e-6)
    assert not any(l.kind == "batchnorm" for l in g)  # Mul/Add/Floor/Clip/Mul all absorbed
    ort = pytest.importorskip("onnxruntime")
    x = np.random.default_rng(0).uniform(0, 1, (16, 2, 7, 7)).astype(np.float32)
    ref = ort.InferenceSession(str(path)).run(None, {"x": x})[0]
    np.testing.assert_allclose(g.predict(x.astype(np.float64)), ref, atol=1e-4)


def test_onnx_clip_floor_that_is_not_qcfs_is_refused(tmp_path):
    from converter.onnx_import import load_onnx
    with pytest.raises(UnsupportedLayerError, match="does not match L/λ"):
        load_onnx(_onnx_qcfs_model(tmp_path, slope=3.0))
    with pytest.raises(UnsupportedLayerError, match="shift"):
        load_onnx(_onnx_qcfs_model(tmp_path, shift=0.25))


def test_average_of_qcfs_outputs_starts_at_half_threshold(rng):
    """Bu et al. start every IF layer at θ/2, the average populations after QCFS too (so an
    average of L-level counts is rounded, not floored); other averages keep v(0) = 0.
    (avgpool='spike': by default the pool of a QCFS layer is folded into the next layer.)"""
    b = GraphBuilder((8, 8, 1), name="qavg")
    x = b.input()
    x = b.relu(b.conv2d(x, rng.normal(0, 0.5, (3, 3, 1, 3)), padding="same"), 1.5, levels=4,
               name="q")
    x = b.avgpool(x, 2, name="pq")
    x = b.relu(b.conv2d(x, rng.normal(0, 0.5, (3, 3, 3, 3)), padding="same"), name="r")
    x = b.avgpool(x, 2, name="pr")
    x = b.dense(b.flatten(x), rng.normal(0, 0.5, (12, 2)))
    g = b.build(output=x, input_scale=1 / 255)
    net = convert(g, rng.uniform(0, 1, (10, 8, 8, 1)), method="robust", weight_bits=8,
                  profile="ideal", map=False, avgpool="spike")
    pq, pr = net.population("pq"), net.population("pr")
    assert pq.v_init == pq.threshold // 2 and pr.v_init == 0


# ---- average pools folded, and the layer-by-layer schedule (T steps per layer) -------------
def _qcfs_pool_net(rng, levels=L):
    """input (8, 8, 2) → conv3×3 + QCFS → avgpool2 → conv3×3 + QCFS → avgpool2 → flatten →
    dense 3: the shape of examples/qcfs_cifar.onnx in small."""
    b = GraphBuilder((8, 8, 2), name="qcfs_pool")
    x = b.input()
    x = b.conv2d(x, rng.normal(0, 0.6, (3, 3, 2, 4)), rng.normal(0.2, 0.2, 4), padding="same")
    x = b.avgpool(b.relu(x, 1.5, levels=levels, name="q1"), 2, name="p1")
    x = b.conv2d(x, rng.normal(0, 0.5, (3, 3, 4, 5)), rng.normal(0, 0.2, 5), padding="same")
    x = b.avgpool(b.relu(x, 1.2, levels=levels, name="q2"), 2, name="p2")
    x = b.dense(b.flatten(x), rng.normal(0, 0.5, (2 * 2 * 5, 3)), rng.normal(0, 0.1, 3))
    return b.build(output=x, input_scale=1 / 255)


def _levels(g, x, names, T):
    acts = g.forward(x / 255, outputs=list(names) + [g.logits_name])
    lv = {n: np.rint(acts[n] * (T / g.layer(n).params["max_value"])).astype(np.int64)
          .reshape(len(x), -1) for n in names}
    return lv, acts[g.logits_name]


def test_avgpool_after_qcfs_is_folded_into_the_next_layer(rng):
    """avgpool='auto' folds the pool of a QCFS layer into the next conv (kernel 6×6, stride 2)
    and the dense after the flatten: no average population, the same function."""
    g = _qcfs_pool_net(rng)
    net = convert(g, None, method="robust", weight_bits=None, profile="ideal", map=False)
    roles = net.meta["population_roles"]
    assert "avg" not in roles.values() and set(roles) == {"q1", "q2", g.logits_name}
    pr = {p.target: p for p in net.projections}["q2"]
    assert pr.kind == "conv" and tuple(pr.kernel) == (6, 6) and tuple(pr.stride) == (2, 2)
    assert tuple(pr.padding) == (2, 2, 2, 2)
    spiking = convert(g, None, method="robust", weight_bits=None, profile="ideal", map=False,
                      avgpool="spike")
    assert "avg" in spiking.meta["population_roles"].values()
    # fold of a non-QCFS pool only on request; a pool that cannot be folded is named
    b = GraphBuilder((8, 8, 1), name="nofold")
    x = b.relu(b.conv2d(b.input(), rng.normal(0, 0.5, (3, 3, 1, 2)), padding="same"))
    x = b.avgpool(x, 3, strides=2, name="pool")
    g2 = b.build(output=b.dense(b.flatten(x), rng.normal(0, 0.5, (18, 2))))
    assert "avg" in convert(g2, None, weight_bits=None, profile="ideal", map=False,
                            input_scale=1 / 255).meta["population_roles"].values()
    with pytest.raises(ConversionError, match="pool.*cannot be folded.*tile"):
        convert(g2, None, weight_bits=None, profile="ideal", map=False, input_scale=1 / 255,
                avgpool="fold")


@pytest.mark.parametrize("bits", [None, 8])
def test_layerwise_schedule_equals_the_quantised_ann(rng, bits):
    """timing='layerwise', steps=L: every hidden count is the QCFS level of the ANN on every
    neuron and the read-out at step D·L predicts as the quantised ANN; the dense reference
    agrees with the engine spike for spike.  Under the synchronous schedule the second layer
    sees spike trains and differs (the unevenness error of Bu et al.)."""
    g = _qcfs_pool_net(rng)
    x = rng.integers(0, 256, (24, 8, 8, 2))
    net = convert(g, None, method="robust", weight_bits=bits, profile="ideal", map=False,
                  timing="layerwise", steps=L)
    lw = net.meta["layerwise"]
    assert (lw["window"], lw["layers"], lw["run_length"]) == (L, 2, 2 * L)
    R = lw["run_length"]
    raw = engine.simulate(net, x, R + 3)
    ref = reference.simulate(net, x, R + 3)
    for k in ("spike_counts", "predictions"):
        for name in (raw[k] if isinstance(raw[k], dict) else [None]):
            a = raw[k] if name is None else raw[k][name]
            b_ = ref[k] if name is None else ref[k][name]
            assert np.array_equal(a, b_), (k, name)
    assert raw["spike_counts"]["layerwise/clock"].reshape(-1).tolist() == [1] * len(x)
    if bits is None:  # 2^23 weight resolution: the ANN's own levels
        want, logits = _levels(g, x, ("q1", "q2"), L)
        for n in ("q1", "q2"):
            assert np.array_equal(raw["spike_counts"][n].astype(np.int64), want[n]), n
            assert 0 < want[n].mean() < L
        assert np.array_equal(raw["predictions"][R - 1], logits.argmax(1))
        # the read-out holds after the last layer is done
        assert np.array_equal(raw["predictions"][R + 2], raw["predictions"][R - 1])
        sync = convert(g, None, method="robust", weight_bits=bits, profile="ideal", map=False)
        s = engine.simulate(sync, x, L)
        assert np.array_equal(s["spike_counts"]["q1"].astype(np.int64), want["q1"])
        assert not np.array_equal(s["spike_counts"]["q2"].astype(np.int64), want["q2"])


def test_layerwise_refusals(rng):
    g = _qcfs_pool_net(rng)
    with pytest.raises(ConversionError, match="needs steps"):
        convert(g, None, weight_bits=8, profile="ideal", map=False, timing="layerwise")
    with pytest.raises(ConversionError, match="average population"):
        convert(g, None, weight_bits=8, profile="ideal", map=False, timing="layerwise",
                steps=4, avgpool="spike")
    with pytest.raises(ConversionError, match="analog"):
        convert(g, None, weight_bits=8, profile="ideal", map=False, timing="layerwise",
                steps=4, encoding="rate")
    with pytest.raises(ConversionError, match="readout"):
        convert(g, None, weight_bits=8, profile="ideal", map=False, timing="layerwise",
                steps=4, readout="spikes")
    # the kill that keeps the analog first layer silent needs more than Loihi's state range
    with pytest.raises(ConversionError, match="too narrow for the kill"):
        convert(g, None, weight_bits=8, profile="loihi1", map=False, timing="layerwise",
                steps=4)


def test_trained_qcfs_cifar_net_equals_its_quantised_ann_at_t_equals_l():
    """examples/qcfs_cifar.onnx (trained with QCFS, L = 4) on held-out CIFAR-10 images: in the
    layer-by-layer schedule with T = L every hidden neuron's spike count is its QCFS level in
    the ONNX model's quantised ANN, and the read-out at step 3·L predicts as the ANN (and as
    onnxruntime).  Float resolution weights (2^23): the integers are the ANN's weights."""
    pytest.importorskip("onnx")
    from converter.load import load_model
    from converter.passes import prepare
    from tests.conftest import require_data
    from neuroemu import datasets
    require_data("cifar10", "test_subset1000.npz")
    path = Path(__file__).resolve().parents[1] / "examples" / "qcfs_cifar.onnx"
    g = load_model(path, input_scale=1 / 255)  # trained on pixels / 255
    x, _ = datasets.load_cifar10_subset()
    x = x[800:806]  # held out from training (images 0..799)
    net = convert(g, None, method="robust", weight_bits=None, profile="ideal", map=False,
                  timing="layerwise", steps=L)
    R = net.meta["layerwise"]["run_length"]
    assert R == 3 * L and "avg" not in net.meta["population_roles"].values()
    raw = engine.simulate(net, x.transpose(0, 2, 3, 1), R, threads=1)  # engine: HWC
    pg = prepare(g)
    names = [l.name for l in pg if l.kind == "relu"]
    assert len(names) == 3
    acts = pg.forward(pg.to_internal(x / 255), outputs=names + [pg.logits_name], internal=True)
    for n in names:
        lam = pg.layer(n).params["max_value"]
        want = np.rint(acts[n] * (L / lam)).astype(np.int64).reshape(len(x), -1)
        got = raw["spike_counts"][n].astype(np.int64)
        assert np.array_equal(got, want), (n, int((got != want).sum()))
    assert np.array_equal(raw["predictions"][R - 1], acts[pg.logits_name].argmax(1))
    ort = pytest.importorskip("onnxruntime")
    ref = ort.InferenceSession(str(path)).run(None, {"image": x.astype(np.float32) / 255})[0]
    assert np.array_equal(raw["predictions"][R - 1], ref.argmax(1))


# ---- Keras 3: the same chain as keras.ops operations -----------------------------------------
KERAS_QCFS = Path(__file__).resolve().parent / "qcfs" / "qcfs_keras.keras"


def _keras_variant(tmp_path, edit):
    """A copy of the Keras 3 QCFS file with its config.json changed by ``edit(layers)``."""
    import json
    import zipfile
    out = tmp_path / "variant.keras"
    with zipfile.ZipFile(KERAS_QCFS) as zi, zipfile.ZipFile(out, "w") as zo:
        for item in zi.infolist():
            data = zi.read(item.filename)
            if item.filename == "config.json":
                cfg = json.loads(data)
                edit(cfg["config"]["layers"])
                data = json.dumps(cfg).encode()
            zo.writestr(item, data)
    return out


def test_keras_ops_qcfs_chain_imports_and_converts_exactly():
    """tests/qcfs/qcfs_keras.keras (written by Keras 3.15, tests/qcfs/make_qcfs_keras.py): two
    QCFS activations spelled ops.multiply/ops.divide → add ½ → floor → clip(0, L) →
    multiply.  Each imports as one QCFS relu; the float graph equals Keras's own logits; the
    layer-by-layer SNN at T = L has every hidden count at its QCFS level and predicts as
    Keras on all 32 inputs."""
    from converter.load import load_model
    g = load_model(KERAS_QCFS, input_scale=1 / 255)
    q = [l for l in g if l.kind == "relu"]
    assert [(l.params["max_value"], l.params["levels"]) for l in q] == [(1.5, L), (1.25, L)]
    assert {l.kind for l in g} == {"input", "conv2d", "relu", "avgpool", "flatten", "dense"}
    ref = np.load(KERAS_QCFS.parent / "qcfs_keras_ref.npz")
    x, want_logits = ref["x"], ref["logits"]
    np.testing.assert_allclose(g.predict(x), want_logits, atol=1e-5)
    net = convert(g, None, method="robust", weight_bits=None, profile="ideal", map=False,
                  timing="layerwise", steps=L)
    R = net.meta["layerwise"]["run_length"]
    raw = engine.simulate(net, x, R)
    acts = g.forward(x / 255, outputs=[l.name for l in q])
    for l in q:
        lv = np.rint(acts[l.name] * (L / l.params["max_value"])).astype(np.int64)
        assert np.array_equal(raw["spike_counts"][l.name].astype(np.int64),
                              lv.reshape(len(x), -1)), l.name
    assert np.array_equal(raw["predictions"][R - 1], want_logits.argmax(1))


def test_keras_ops_outside_a_qcfs_chain_are_refused(tmp_path):
    from converter.load import load_model

    def shift(layers):
        for item in layers:
            if item["class_name"] == "Add" and "ops" in item.get("module", ""):
                item["inbound_nodes"][0]["args"][1] = 0.25
    with pytest.raises(UnsupportedLayerError, match="shift 0.25"):
        load_model(_keras_variant(tmp_path, shift), input_scale=1 / 255)

    def no_clip(layers):  # floor without its clip: not QCFS, and never executed
        for item in layers:
            if item["class_name"] == "Clip":
                item["config"]["x_min"] = -1.0
    with pytest.raises(UnsupportedLayerError, match="keras.ops .*outside a QCFS"):
        load_model(_keras_variant(tmp_path, no_clip), input_scale=1 / 255)
