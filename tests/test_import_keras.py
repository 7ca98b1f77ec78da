"""Keras import without TensorFlow: the real reference models and synthetic functional models."""

from __future__ import annotations

import io
import json
import shutil
import zipfile

import h5py
import numpy as np
import pytest

from converter.builder import GraphBuilder
from converter.keras_import import load_keras
from converter.load import load_model
from hw_models.errors import ConversionError, FileFormatError, UnsupportedLayerError
from neuroemu import datasets

from tests.conftest import require_data


def _model(name):
    return require_data("models", name)


# ---------------------------------------------------------------------------------------------
# real models

@pytest.mark.slow
def test_tests_99_20_accuracy_full_mnist(mnist):
    """Keras 1.0.4, Theano kernels (flipped), channels-first Flatten: exactly 9920/10000."""
    g = load_model(_model("tests_99.20.h5"), input_scale=1 / 255)
    x, y = mnist
    assert g.input_shape == (1, 28, 28) and g.input_layout == "CHW"
    logits = g.predict(x[:, None] * g.input_scale)
    assert int((logits.argmax(1) == y).sum()) == 9920


def test_tests_99_20_accuracy_first_1000(mnist):
    """Fast version of the above: 991 of the first 1,000 images (2-D batches accepted)."""
    g = load_model(_model("tests_99.20.h5"), input_scale=1 / 255)
    x, y = mnist
    logits = g.predict(x[:1000] * g.input_scale)
    assert int((logits.argmax(1) == y[:1000]).sum()) == 991


def test_tests_99_20_shapes_and_json_entry():
    g = load_keras(_model("tests_99.20.json"))
    assert [(l.name, l.kind, l.shape) for l in g] == [
        ("input", "input", (28, 28, 1)),
        ("convolution2d_1", "conv2d", (26, 26, 32)),
        ("activation_1", "relu", (26, 26, 32)),
        ("convolution2d_2", "conv2d", (24, 24, 32)),
        ("activation_2", "relu", (24, 24, 32)),
        ("averagepooling2d_1", "avgpool", (12, 12, 32)),
        ("flatten_1", "flatten", (4608,)),
        ("dense_1", "dense", (128,)),
        ("activation_3", "relu", (128,)),
        ("dense_2", "dense", (10,)),
        ("activation_4", "softmax", (10,)),
    ]
    assert g.layer("convolution2d_1").weights["kernel"].shape == (3, 3, 1, 32)
    assert g.logits_name == "dense_2"


def test_cifar10_accuracy_and_shapes():
    """Keras 2.0.4 full model, Theano backend, channels-first, BN with epsilon 1e-3: 82.8 %."""
    require_data("cifar10", "test_subset1000.npz")
    g = load_model(_model("cifar10_81.45.h5"))
    assert g.input_shape == (3, 32, 32)
    assert [l.shape for l in g if l.kind in ("conv2d", "maxpool", "dense")] == [
        (32, 32, 64), (15, 15, 64), (15, 15, 64), (7, 7, 64), (5, 5, 64), (3, 3, 32), (10,)]
    bns = [l for l in g if l.kind == "batchnorm"]
    assert len(bns) == 4 and all(l.params["epsilon"] == pytest.approx(1e-3) for l in bns)
    x, y = datasets.load_cifar10_subset()
    acc = float((g.predict(x / 255.0).argmax(1) == y).mean())
    assert acc == pytest.approx(0.828, abs=1e-9)


@pytest.mark.parametrize("fname", ["keras_bn_maxpool.keras", "keras_bn_maxpool.h5"])
def test_keras3_logits_match_keras(mnist, fname):
    """Keras 3 `.keras` zip and legacy HDF5: logits equal Keras's own within 1e-4."""
    g = load_model(_model(fname))
    ref = np.load(_model("keras_bn_maxpool_logits_splitB.npy"))
    x, y = mnist
    assert g.input_shape == (28, 28, 1) and g.input_layout == "HWC"
    logits = g.predict(x[8000:, :, :, None] / 255.0)
    assert logits.shape == ref.shape == (2000, 10)
    np.testing.assert_allclose(logits, ref, atol=1e-4, rtol=0)
    assert float((logits.argmax(1) == y[8000:]).mean()) == pytest.approx(0.989)
    assert [(l.name, l.kind, l.shape) for l in g][1:] == [
        ("conv1", "conv2d", (28, 28, 16)), ("bn1", "batchnorm", (28, 28, 16)),
        ("relu1", "relu", (28, 28, 16)), ("pool1", "maxpool", (14, 14, 16)),
        ("conv2", "conv2d", (12, 12, 32)), ("bn2", "batchnorm", (12, 12, 32)),
        ("relu2", "relu", (12, 12, 32)), ("pool2", "maxpool", (6, 6, 32)),
        ("flatten", "flatten", (1152,)), ("fc1", "dense", (64,)), ("fc1_relu", "relu", (64,)),
        ("logits", "dense", (10,)), ("softmax", "softmax", (10,))]


@pytest.mark.parametrize("fname", ["tests_99.20.h5", "cifar10_81.45.h5",
                                   "keras_bn_maxpool.h5", "keras_bn_maxpool.keras"])
def test_truncated_file_is_file_format_error(tmp_path, fname):
    src = _model(fname)
    data = src.read_bytes()
    bad = tmp_path / fname
    bad.write_bytes(data[: len(data) // 2])
    if fname == "tests_99.20.h5":
        shutil.copy(_model("tests_99.20.json"), tmp_path / "tests_99.20.json")
    with pytest.raises(FileFormatError, match=fname.replace(".", r"\.")):
        load_model(bad)


def test_truncated_json_is_file_format_error(tmp_path):
    shutil.copy(_model("tests_99.20.h5"), tmp_path / "m.h5")
    (tmp_path / "m.json").write_text(_model("tests_99.20.json").read_text()[:500])
    with pytest.raises(FileFormatError, match="m.h5"):
        load_model(tmp_path / "m.h5")


def test_nan_weight_is_conversion_error(tmp_path):
    p = tmp_path / "nan.h5"
    shutil.copy(_model("keras_bn_maxpool.h5"), p)
    with h5py.File(p, "r+") as f:
        ds = f["model_weights/conv2/keras_bn_maxpool/conv2/kernel"]
        k = ds[()]
        k[1, 1, 0, 0] = np.nan
        ds[()] = k
    with pytest.raises(ConversionError, match="conv2.*NaN"):
        load_model(p)


# ---------------------------------------------------------------------------------------------
# synthetic models written with h5py / zipfile

def _write_keras2_h5(path, config, weights, backend="tensorflow", version="2.2.4"):
    """A Keras 2 full-model HDF5: ``weights`` maps layer name → [(weight name, array)]."""
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(config)
        f.attrs["keras_version"] = version
        f.attrs["backend"] = backend
        g = f.create_group("model_weights")
        g.attrs["layer_names"] = [n.encode() for n in weights]
        for lname, ws in weights.items():
            lg = g.create_group(lname)
            lg.attrs["weight_names"] = [f"{lname}/{w}:0".encode() for w, _ in ws]
            for w, arr in ws:
                lg.create_dataset(f"{lname}/{w}:0", data=arr)


def _residual_parts(rng):
    k1, b1 = rng.normal(size=(3, 3, 2, 4)), rng.normal(size=4)
    k2 = rng.normal(size=(3, 3, 4, 4))
    gamma, beta = rng.uniform(0.5, 1.5, 4), rng.normal(size=4)
    mean, var = rng.normal(size=4), rng.uniform(0.5, 1.5, 4)
    kd, bd = rng.normal(size=(8, 3)), rng.normal(size=3)
    return k1, b1, k2, (gamma, beta, mean, var), kd, bd


def _residual_reference(rng):
    """The same network through the builder: conv(relu) → conv → BN → add → concat → GAP → dense."""
    k1, b1, k2, bn, kd, bd = _residual_parts(rng)
    b = GraphBuilder((6, 6, 2))
    x = b.relu(b.conv2d(b.input(), k1, b1, padding="same"))
    y = b.batchnorm(b.conv2d(x, k2, None, padding="same"), *bn, epsilon=1e-3)
    s = b.add(x, y)
    c = b.concat(s, x)
    return b.build(output=b.dense(b.global_avgpool(c), kd, bd))


def _functional_config_k2(rng):
    def node(*names):
        return [[[n, 0, 0, {}] for n in names]]
    layers = [
        {"name": "in", "class_name": "InputLayer",
         "config": {"name": "in", "batch_input_shape": [None, 6, 6, 2]}, "inbound_nodes": []},
        {"name": "c1", "class_name": "Conv2D", "inbound_nodes": node("in"),
         "config": {"name": "c1", "filters": 4, "kernel_size": [3, 3], "strides": [1, 1],
                    "padding": "same", "data_format": "channels_last", "activation": "relu",
                    "use_bias": True}},
        {"name": "c2", "class_name": "Conv2D", "inbound_nodes": node("c1"),
         "config": {"name": "c2", "filters": 4, "kernel_size": [3, 3], "padding": "same",
                    "data_format": "channels_last", "activation": "linear", "use_bias": False}},
        {"name": "bn", "class_name": "BatchNormalization", "inbound_nodes": node("c2"),
         "config": {"name": "bn", "axis": -1, "epsilon": 1e-3}},
        {"name": "drop", "class_name": "Dropout", "inbound_nodes": node("bn"),
         "config": {"name": "drop", "rate": 0.5}},
        {"name": "add", "class_name": "Add", "inbound_nodes": node("c1", "drop"),
         "config": {"name": "add"}},
        {"name": "cat", "class_name": "Concatenate", "inbound_nodes": node("add", "c1"),
         "config": {"name": "cat", "axis": -1}},
        {"name": "gap", "class_name": "GlobalAveragePooling2D", "inbound_nodes": node("cat"),
         "config": {"name": "gap", "data_format": "channels_last"}},
        {"name": "fc", "class_name": "Dense", "inbound_nodes": node("gap"),
         "config": {"name": "fc", "units": 3, "activation": "softmax", "use_bias": True}},
    ]
    config = {"class_name": "Model", "config": {"name": "res", "layers": layers,
                                                "input_layers": [["in", 0, 0]],
                                                "output_layers": [["fc", 0, 0]]}}
    k1, b1, k2, bn, kd, bd = _residual_parts(rng)
    weights = {"in": [], "c1": [("kernel", k1), ("bias", b1)], "c2": [("kernel", k2)],
               "bn": list(zip(["gamma", "beta", "moving_mean", "moving_variance"], bn)),
               "drop": [], "add": [], "cat": [], "gap": [],
               "fc": [("kernel", kd), ("bias", bd)]}
    return config, weights


def test_keras2_functional_residual(tmp_path):
    ref = _residual_reference(np.random.default_rng(5))
    config, weights = _functional_config_k2(np.random.default_rng(5))
    p = tmp_path / "res.h5"
    _write_keras2_h5(p, config, weights)
    g = load_model(p)
    assert [l.kind for l in g] == ["input", "conv2d", "relu", "conv2d", "batchnorm", "add",
                                   "concat", "global_avgpool", "dense", "softmax"]
    assert g.layer("add").inputs == ["c1_relu", "bn"]
    x = np.random.default_rng(1).normal(size=(4, 6, 6, 2))
    np.testing.assert_allclose(g.predict(x), ref.predict(x), atol=1e-12)


@pytest.mark.parametrize("single_triple", [False, True])
def test_keras3_functional_zip(tmp_path, single_triple):
    """A Keras 3 functional ``.keras``; with ``single_triple`` its single input and output are
    written as one ``[name, 0, 0]`` triple each, as Keras 3 does (this used to fail with
    "'int' object is not subscriptable")."""
    ref = _residual_reference(np.random.default_rng(5))
    config, weights = _functional_config_k2(np.random.default_rng(5))

    def k3_node(*names):
        ts = [{"class_name": "__keras_tensor__",
               "config": {"shape": [None], "keras_history": [n, 0, 0]}} for n in names]
        return [{"args": [ts] if len(ts) > 1 else ts, "kwargs": {}}]
    for layer in config["config"]["layers"]:
        old = layer["inbound_nodes"]
        layer["inbound_nodes"] = k3_node(*[r[0] for r in old[0]]) if old else []
    config["class_name"] = "Functional"
    if single_triple:
        config["config"]["input_layers"] = ["in", 0, 0]
        config["config"]["output_layers"] = ["fc", 0, 0]
    buf = io.BytesIO()
    with h5py.File(buf, "w") as h5:  # Keras 3 keys: snake-case class name, numbered per class
        keys = {"c1": "conv2d", "c2": "conv2d_1", "bn": "batch_normalization", "fc": "dense"}
        for lname, key in keys.items():
            vg = h5.create_group(f"layers/{key}/vars")
            for i, (_, arr) in enumerate(weights[lname]):
                vg.create_dataset(str(i), data=arr)
    p = tmp_path / "res.keras"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("config.json", json.dumps(config))
        z.writestr("metadata.json", json.dumps({"keras_version": "3.5.0"}))
        z.writestr("model.weights.h5", buf.getvalue())
    g = load_model(p)
    x = np.random.default_rng(2).normal(size=(3, 6, 6, 2))
    np.testing.assert_allclose(g.predict(x), ref.predict(x), atol=1e-12)


def _sequential(layers, shape=(4, 4, 1)):
    layers = [dict(l) for l in layers]
    layers[0]["config"] = dict(layers[0]["config"], batch_input_shape=[None, *shape])
    return {"class_name": "Sequential", "config": {"name": "s", "layers": layers}}


def test_lambda_layer_is_refused_by_name(tmp_path):
    config = _sequential([
        {"class_name": "Flatten", "config": {"name": "flat"}},
        {"class_name": "Lambda", "config": {"name": "evil_lambda", "function": "print('x')"}},
    ])
    p = tmp_path / "lam.h5"
    _write_keras2_h5(p, config, {"flat": [], "evil_lambda": []})
    with pytest.raises(UnsupportedLayerError, match="evil_lambda.*Lambda"):
        load_model(p)
    # the Keras 1 route: architecture JSON beside a weights-only HDF5
    (tmp_path / "k1.json").write_text(json.dumps(config))
    with h5py.File(tmp_path / "k1.h5", "w") as f:
        f.attrs["layer_names"] = [b"flat", b"evil_lambda"]
        for n in ("flat", "evil_lambda"):
            f.create_group(n).attrs["weight_names"] = np.array([], dtype="S1")
    with pytest.raises(UnsupportedLayerError, match="evil_lambda.*Lambda"):
        load_model(tmp_path / "k1.h5")


def test_unknown_layer_and_activation_are_refused(tmp_path):
    config = _sequential([{"class_name": "MyCustomLayer", "config": {"name": "custom_1"}}])
    p = tmp_path / "c.h5"
    _write_keras2_h5(p, config, {"custom_1": []})
    with pytest.raises(UnsupportedLayerError, match="custom_1.*MyCustomLayer"):
        load_model(p)
    config = _sequential([{"class_name": "Activation",
                           "config": {"name": "act", "activation": "tanh"}}])
    _write_keras2_h5(p, config, {"act": []})
    with pytest.raises(UnsupportedLayerError, match="act.*tanh"):
        load_model(p)


def _channels_first_model(tmp_path, rng, flatten_cfg, version):
    """A channels_first Sequential model (TensorFlow backend: no flip) written as Keras
    ``version`` with the given Flatten config, and a hand NCHW forward pass up to the Flatten:
    (graph, x, pooled (N, C, H, W), dense kernel)."""
    k = rng.normal(size=(2, 2, 1, 2))  # Keras 2 stores HWIO whatever the data format
    kd = rng.normal(size=(2 * 3 * 3, 3))
    config = _sequential([
        {"class_name": "ZeroPadding2D",
         "config": {"name": "zp", "padding": [[1, 0], [0, 1]], "data_format": "channels_first"}},
        {"class_name": "Conv2D", "config": {"name": "conv", "filters": 2, "kernel_size": [2, 2],
                                            "padding": "valid", "use_bias": False,
                                            "data_format": "channels_first"}},
        {"class_name": "ReLU", "config": {"name": "relu6", "max_value": 6.0}},
        {"class_name": "AveragePooling2D",
         "config": {"name": "ap", "pool_size": [2, 2], "strides": [2, 2], "padding": "same",
                    "data_format": "channels_first"}},
        {"class_name": "Flatten", "config": dict(flatten_cfg, name="flat")},
        {"class_name": "Dense", "config": {"name": "fc", "units": 3, "use_bias": False}},
    ], shape=(1, 5, 5))
    p = tmp_path / "cf.h5"
    _write_keras2_h5(p, config, {"zp": [], "conv": [("kernel", k)], "relu6": [], "ap": [],
                                 "flat": [], "fc": [("kernel", kd)]}, version=version)
    g = load_model(p)
    x = rng.normal(size=(2, 1, 5, 5)) * 5
    xp = np.pad(x, ((0, 0), (0, 0), (1, 0), (0, 1)))             # (2, 1, 6, 6)
    conv = np.zeros((2, 2, 5, 5))
    for i in range(5):
        for j in range(5):
            conv[:, :, i, j] = np.einsum("nab,abo->no", xp[:, 0, i:i + 2, j:j + 2], k[:, :, 0])
    act = np.clip(conv, 0, 6)
    pad = np.pad(act, ((0, 0), (0, 0), (0, 1), (0, 1)))
    cnt = np.pad(np.ones((5, 5)), ((0, 1), (0, 1)))
    pooled = np.zeros((2, 2, 3, 3))
    for i in range(3):
        for j in range(3):
            win = pad[:, :, 2 * i:2 * i + 2, 2 * j:2 * j + 2].sum(axis=(2, 3))
            pooled[:, :, i, j] = win / cnt[2 * i:2 * i + 2, 2 * j:2 * j + 2].sum()
    return g, x, pooled, kd


def test_sequential_padding_pool_and_channels_first_flatten(tmp_path, rng):
    """channels_first: ZeroPadding2D, 'same' avg-pool (padding not counted), ReLU(max_value),
    and a Keras 2.0/2.1 Flatten (no data_format): it flattens the CHW tensor as it is, so the
    dense rows are in CHW order (permuted at import), vs. a hand NCHW reference."""
    g, x, pooled, kd = _channels_first_model(tmp_path, rng, {}, "2.1.6")
    want = pooled.reshape(2, -1) @ kd                              # CHW flatten order
    np.testing.assert_allclose(g.predict(x), want, atol=1e-12)


def test_keras22_flatten_channels_first_is_hwc_order(tmp_path, rng):
    """Keras 2.2's Flatten(data_format="channels_first") permutes to channels-last before it
    flattens, so the Dense after it expects HWC order.  Read as CHW (the old behaviour), this
    file loaded without error and gave wrong logits."""
    g, x, pooled, kd = _channels_first_model(tmp_path, rng, {"data_format": "channels_first"},
                                             "2.2.4")
    want = pooled.transpose(0, 2, 3, 1).reshape(2, -1) @ kd       # HWC flatten order
    np.testing.assert_allclose(g.predict(x), want, atol=1e-12)
    chw = pooled.reshape(2, -1) @ kd
    assert not np.allclose(g.predict(x), chw)                      # the two orders differ here


def test_every_unsupported_layer_named_at_once(tmp_path):
    """Two custom layers, a Lambda and a fused tanh: one error names all four."""
    config = _sequential([
        {"class_name": "MyCustomLayer", "config": {"name": "custom_1"}},
        {"class_name": "Flatten", "config": {"name": "flat"}},
        {"class_name": "Lambda", "config": {"name": "evil_lambda", "function": "x"}},
        {"class_name": "Dense", "config": {"name": "fc", "units": 3, "activation": "tanh"}},
        {"class_name": "Attention", "config": {"name": "attn"}},
    ])
    p = tmp_path / "many.h5"
    _write_keras2_h5(p, config, {"custom_1": [], "flat": [], "evil_lambda": [],
                                 "fc": [("kernel", np.ones((16, 3)))], "attn": []})
    with pytest.raises(UnsupportedLayerError) as exc:
        load_model(p)
    msg = str(exc.value)
    assert "4 unsupported" in msg
    for part in ("'custom_1' (MyCustomLayer)", "'evil_lambda' (Lambda)",
                 "'fc' (Dense, activation 'tanh')", "'attn' (Attention)"):
        assert part in msg
