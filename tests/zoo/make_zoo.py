"""Generate the model zoo: small networks built by the real frameworks, as users bring them.

Run by hand, in a separate environment with the ``zoo`` extra (TensorFlow, tf-keras, Keras 3,
PyTorch, tf2onnx, onnx, onnxscript, NIR, snnTorch, scikit-learn)::

    python -m venv /tmp/venv-zoo && /tmp/venv-zoo/bin/pip install -e ".[zoo]"
    /tmp/venv-zoo/bin/python tests/zoo/make_zoo.py            # rewrites tests/zoo/models/

Every model is tiny (a few KB) with random weights from a fixed seed — except ``k3_mobilenet``,
which is trained briefly on scikit-learn's 8×8 digits (train split 0..1199) so that its SNN
accuracy can be compared with its float accuracy.  For each model the script writes the model
file and ``<name>.npz`` holding ``x`` (a fixed input batch, in the model's own layout and dtype)
and ``y`` (the framework's own output on it), and records in ``manifest.json`` what the model
is: framework and version, file format, the classifier head (``softmax``, ``log_softmax``,
``argmax`` or ``none``), the ONNX op types or Keras layer classes actually in the file, and the
features it exercises.  ``tests/test_zoo.py`` checks every entry; the README's supported-formats
table is generated from the manifest (``python tests/zoo/make_zoo.py --table``, which needs no
framework).

The Keras 2.2 ``Flatten(data_format="channels_first")`` file is written by hand with h5py
(no installable Keras 2.2 exists for this Python); its reference output comes from tf.keras
running the equivalent channels-last model, which is what Keras 2.2's Flatten computes (it
moves channels last before flattening).  Two NIR graphs: one written by snnTorch's own exporter
(:func:`snntorch_models`), one written node by node with the ``nir`` package
(:func:`nir_models`); the reference of both is the rate-coded view the importer reads (PyTorch
with ReLU in place of each LIF neuron).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
OUT = HERE / "models"
MANIFEST = HERE / "manifest.json"
N = 16  # samples in each fixed input batch


def _rng(name: str) -> np.random.Generator:
    return np.random.default_rng([ord(c) for c in name])  # stable across runs


class Zoo:
    def __init__(self):
        self.entries = []

    def add(self, name, file, framework, fmt, head, x, y, features, ops, note=""):
        np.savez_compressed(OUT / f"{name}.npz", x=x, y=np.asarray(y))
        self.entries.append({"name": name, "file": file, "framework": framework,
                             "format": fmt, "head": head, "input_dtype": str(x.dtype),
                             "input_shape": list(x.shape[1:]), "features": features,
                             "ops": sorted(set(ops)), "note": note})
        print(f"  {name:<28} {fmt:<24} {os.path.getsize(OUT / file):>8} B  {', '.join(features)}")


# =============================================================================================
# Keras 2 (tf.keras / tf-keras) and Keras 3
# =============================================================================================

def _keras_layers(path: Path) -> list:
    """Layer classes in a Keras file (h5 model_config or .keras config.json)."""
    import zipfile
    import h5py
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            cfg = json.loads(z.read("config.json"))
    else:
        with h5py.File(path, "r") as f:
            raw = f.attrs["model_config"]
            cfg = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    layers = cfg["config"]["layers"] if isinstance(cfg["config"], dict) else cfg["config"]
    return [l["class_name"] for l in layers]


def _onnx_ops(path: Path) -> list:
    import onnx
    return [n.op_type for n in onnx.load(str(path)).graph.node]


def keras2_models(zoo: Zoo):
    import tf_keras as k2
    L = k2.layers
    ver = f"tf-keras {k2.__version__}"
    k2.utils.set_random_seed(1)
    rng = _rng("k2")
    x = rng.uniform(0, 1, (N, 10, 10, 3)).astype(np.float32)

    # Sequential, channels_last, BN, max-pool, Dropout, softmax
    m = k2.Sequential([
        L.InputLayer(input_shape=(10, 10, 3)),
        L.Conv2D(6, 3, padding="same"), L.BatchNormalization(), L.Activation("relu"),
        L.MaxPooling2D(2), L.Conv2D(8, 3, activation="relu"), L.Flatten(), L.Dropout(0.3),
        L.Dense(12, activation="relu"), L.Dense(5, activation="softmax")])
    _randomise_bn(m)
    m.save(OUT / "k2_seq_cl.h5")
    zoo.add("k2_seq_cl", "k2_seq_cl.h5", ver, "Keras 2 HDF5", "softmax", x, m.predict(x, verbose=0),
            ["Sequential", "channels_last", "BatchNormalization", "MaxPooling2D", "Flatten",
             "Dropout"], _keras_layers(OUT / "k2_seq_cl.h5"))
    _tf2onnx_keras2(zoo, m, "k2_seq_cl", x, "softmax")

    # functional: residual Add, Concatenate, GAP, ZeroPadding, avg-pool 'same'
    inp = k2.Input((10, 10, 3))
    a = L.Conv2D(6, 3, padding="same", activation="relu")(inp)
    b = L.Conv2D(6, 3, padding="same")(a)
    b = L.BatchNormalization()(b)
    s = L.Activation("relu")(L.Add()([a, b]))
    c = L.Conv2D(4, 1, activation="relu")(a)
    cat = L.Concatenate()([s, c])
    p = L.AveragePooling2D(2, padding="same")(L.ZeroPadding2D(((1, 0), (0, 1)))(cat))
    out = L.Dense(4)(L.GlobalAveragePooling2D()(p))
    m = k2.Model(inp, out)
    _randomise_bn(m)
    m.save(OUT / "k2_func_cl.h5")
    zoo.add("k2_func_cl", "k2_func_cl.h5", ver, "Keras 2 HDF5", "none", x, m.predict(x, verbose=0),
            ["functional", "channels_last", "Add", "Concatenate", "ZeroPadding2D",
             "AveragePooling2D same", "GlobalAveragePooling2D"], _keras_layers(OUT / "k2_func_cl.h5"))

    # channels_first Sequential (as saved by tf.keras: Flatten carries data_format, so it moves
    # channels last before flattening), reference from the channels-last twin (TensorFlow's CPU
    # kernels do not run NCHW convolutions)
    xf = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    cf = k2.Sequential([
        L.InputLayer(input_shape=(3, 10, 10)),
        L.Conv2D(5, 3, padding="same", activation="relu", data_format="channels_first"),
        L.AveragePooling2D(2, data_format="channels_first"),
        L.Conv2D(6, 3, activation="relu", data_format="channels_first"),
        L.Flatten(data_format="channels_first"), L.Dense(4, activation="softmax")])
    cl = k2.Sequential([
        L.InputLayer(input_shape=(10, 10, 3)), L.Conv2D(5, 3, padding="same", activation="relu"),
        L.AveragePooling2D(2), L.Conv2D(6, 3, activation="relu"), L.Flatten(),
        L.Dense(4, activation="softmax")])
    cl.set_weights(cf.get_weights())
    cf.save(OUT / "k2_seq_cf.h5")
    zoo.add("k2_seq_cf", "k2_seq_cf.h5", ver, "Keras 2 HDF5", "softmax", xf,
            cl.predict(x, verbose=0),
            ["Sequential", "channels_first", "Flatten(data_format=channels_first)"],
            _keras_layers(OUT / "k2_seq_cf.h5"),
            note="reference from the channels-last twin (TensorFlow CPU runs no NCHW conv)")

    # channels_first functional: Add, Concatenate on axis 1, GAP (twin channels-last reference)
    def func(fmt):
        shp = (3, 10, 10) if fmt == "channels_first" else (10, 10, 3)
        ax = 1 if fmt == "channels_first" else -1
        i = k2.Input(shp)
        a = L.Conv2D(4, 3, padding="same", activation="relu", data_format=fmt)(i)
        b = L.Conv2D(4, 3, padding="same", data_format=fmt)(a)
        s = L.Activation("relu")(L.Add()([a, b]))
        c = L.Concatenate(axis=ax)([s, a])
        p = L.MaxPooling2D(2, data_format=fmt)(c)
        return k2.Model(i, L.Dense(4)(L.GlobalAveragePooling2D(data_format=fmt)(p)))
    fcf, fcl = func("channels_first"), func("channels_last")
    fcl.set_weights(fcf.get_weights())
    fcf.save(OUT / "k2_func_cf.h5")
    zoo.add("k2_func_cf", "k2_func_cf.h5", ver, "Keras 2 HDF5", "none", xf,
            fcl.predict(x, verbose=0),
            ["functional", "channels_first", "Add", "Concatenate(axis=1)", "MaxPooling2D"],
            _keras_layers(OUT / "k2_func_cf.h5"),
            note="reference from the channels-last twin (TensorFlow CPU runs no NCHW conv)")

    # Keras 2.2-style file written by hand: Flatten(data_format="channels_first") after a
    # channels_first conv (keras_version 2.2.4, TensorFlow backend)
    _keras22_flatten_file(zoo, cl, cf, xf, x)


def _randomise_bn(model):
    """Non-trivial BN statistics (fresh layers have mean 0, var 1)."""
    rng = _rng(model.name)
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            w = layer.get_weights()
            c = w[0].shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, c).astype(np.float32),
                               rng.normal(0, 0.2, c).astype(np.float32),
                               rng.normal(0, 0.3, c).astype(np.float32),
                               rng.uniform(0.5, 2.0, c).astype(np.float32)])


def _keras22_flatten_file(zoo, cl, cf, xf, x):
    import h5py
    k1, b1, k2_, b2, kd, bd = cf.get_weights()
    layers = [
        {"class_name": "Conv2D", "config": {
            "name": "conv2d_1", "trainable": True, "batch_input_shape": [None, 3, 10, 10],
            "dtype": "float32", "filters": 5, "kernel_size": [3, 3], "strides": [1, 1],
            "padding": "same", "data_format": "channels_first", "dilation_rate": [1, 1],
            "activation": "relu", "use_bias": True}},
        {"class_name": "AveragePooling2D", "config": {
            "name": "average_pooling2d_1", "pool_size": [2, 2], "padding": "valid",
            "strides": [2, 2], "data_format": "channels_first"}},
        {"class_name": "Conv2D", "config": {
            "name": "conv2d_2", "filters": 6, "kernel_size": [3, 3], "strides": [1, 1],
            "padding": "valid", "data_format": "channels_first", "dilation_rate": [1, 1],
            "activation": "relu", "use_bias": True}},
        {"class_name": "Flatten", "config": {"name": "flatten_1",
                                             "data_format": "channels_first"}},
        {"class_name": "Dense", "config": {"name": "dense_1", "units": 4,
                                           "activation": "softmax", "use_bias": True}},
    ]
    config = {"class_name": "Sequential", "config": {"name": "sequential_1", "layers": layers}}
    weights = {"conv2d_1": [("kernel", k1), ("bias", b1)], "average_pooling2d_1": [],
               "conv2d_2": [("kernel", k2_), ("bias", b2)], "flatten_1": [],
               "dense_1": [("kernel", kd), ("bias", bd)]}
    path = OUT / "k22_flatten_cf.h5"
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(config).encode()
        f.attrs["keras_version"] = b"2.2.4"
        f.attrs["backend"] = b"tensorflow"
        g = f.create_group("model_weights")
        g.attrs["layer_names"] = [n.encode() for n in weights]
        g.attrs["keras_version"] = b"2.2.4"
        g.attrs["backend"] = b"tensorflow"
        for lname, ws in weights.items():
            lg = g.create_group(lname)
            lg.attrs["weight_names"] = [f"{lname}/{w}:0".encode() for w, _ in ws]
            for w, arr in ws:
                lg.create_dataset(f"{lname}/{w}:0", data=arr)
    zoo.add("k22_flatten_cf", path.name, "hand-written (h5py), Keras 2.2.4 layout",
            "Keras 2 HDF5", "softmax", xf, cl.predict(x, verbose=0),
            ["Sequential", "channels_first", "Keras 2.2 Flatten(data_format=channels_first)"],
            [l["class_name"] for l in layers],
            note="Keras 2.2 moves channels last before flattening: Dense rows in HWC order")


def _tf2onnx_keras2(zoo, model, name, x, head, opset=13):
    import tensorflow as tf
    import tf2onnx
    spec = (tf.TensorSpec((None,) + x.shape[1:], tf.float32, name="input"),)
    path = OUT / f"{name}_tf2onnx.onnx"
    tf2onnx.convert.from_keras(model, input_signature=spec, opset=opset, output_path=str(path))
    ops = _onnx_ops(path)
    zoo.add(f"{name}_tf2onnx", path.name, f"tf2onnx {tf2onnx.__version__} (opset {opset})",
            "ONNX (tf2onnx)", head, x, model.predict(x, verbose=0),
            ["NHWC input", "Transpose to NCHW"] + (["Squeeze"] if "Squeeze" in ops else []),
            ops)


def keras3_models(zoo: Zoo):
    import keras
    L = keras.layers
    ver = f"Keras {keras.__version__}"
    keras.utils.set_random_seed(3)
    rng = _rng("k3")
    x = rng.uniform(0, 1, (N, 10, 10, 3)).astype(np.float32)

    # ResNet block: Conv-BN-ReLU, Conv-BN, Add, ReLU; GAP; Dense softmax
    inp = keras.Input((10, 10, 3))
    h = L.ReLU()(L.BatchNormalization()(L.Conv2D(8, 3, padding="same", use_bias=False)(inp)))
    r = L.BatchNormalization()(L.Conv2D(8, 3, padding="same", use_bias=False)(h))
    r = L.ReLU()(L.BatchNormalization()(r))
    r = L.BatchNormalization()(L.Conv2D(8, 3, padding="same", use_bias=False)(r))
    h = L.ReLU()(L.Add()([h, r]))
    h = L.Conv2D(8, 3, strides=2, padding="same", activation="relu")(h)
    out = L.Dense(5, activation="softmax")(L.GlobalAveragePooling2D()(h))
    m = keras.Model(inp, out, name="resnet_block")
    _randomise_bn(m)
    _keras3_save(zoo, m, "k3_resnet", x, "softmax", ver,
                 ["functional", "single input", "ResNet block", "Add", "BatchNormalization"])

    # DenseNet-style: Concatenate of growing feature maps, transition avg-pool
    inp = keras.Input((10, 10, 3))
    h = L.Conv2D(4, 3, padding="same", activation="relu")(inp)
    for _ in range(2):
        n = L.Conv2D(3, 3, padding="same")(L.ReLU()(L.BatchNormalization()(h)))
        h = L.Concatenate()([h, n])
    h = L.AveragePooling2D(2)(L.Conv2D(6, 1, activation="relu")(h))
    out = L.Dense(4)(L.Flatten()(h))
    m = keras.Model(inp, out, name="densenet_block")
    _randomise_bn(m)
    _keras3_save(zoo, m, "k3_densenet", x, "none", ver,
                 ["functional", "DenseNet block", "Concatenate", "BatchNormalization"],
                 onnx=False)


def mobilenet_keras3(zoo: Zoo, epochs: int = 40):
    """MobileNet-style (DepthwiseConv2D, SeparableConv2D, ReLU6, BN, Rescaling) trained on
    the 8×8 digits: train 0..1199, the test split 1200..1796 is the one reported."""
    import keras
    from sklearn.datasets import load_digits
    L = keras.layers
    keras.utils.set_random_seed(7)
    d = load_digits()
    xr = np.round(d.images * (255 / 16)).astype(np.uint8)[..., None]   # raw 0..255 pixels
    y = d.target
    inp = keras.Input((8, 8, 1))
    h = L.Rescaling(1 / 255)(inp)
    h = L.ReLU(6.0)(L.BatchNormalization()(L.Conv2D(16, 3, padding="same", use_bias=False)(h)))
    h = L.DepthwiseConv2D(3, padding="same", use_bias=False)(h)
    h = L.ReLU(6.0)(L.BatchNormalization()(h))
    h = L.ReLU(6.0)(L.BatchNormalization()(L.Conv2D(24, 1, use_bias=False)(h)))
    h = L.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2)(h)
    h = L.ReLU(6.0)(h)
    h = L.SeparableConv2D(32, 3, padding="same")(h)
    h = L.ReLU(6.0)(L.BatchNormalization()(h))
    out = L.Dense(10, activation="softmax")(L.GlobalAveragePooling2D()(h))
    m = keras.Model(inp, out, name="mobilenet_digits")
    m.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
    xf = xr.astype(np.float32)
    m.fit(xf[:1200], y[:1200], epochs=epochs, batch_size=32, verbose=0,
          validation_data=(xf[1200:], y[1200:]))
    acc = float(np.mean(m.predict(xf[1200:], verbose=0).argmax(1) == y[1200:]))
    print(f"  k3_mobilenet float accuracy on digits 1200..1796: {acc:.4f}")
    xb = xr[1200:1200 + N]
    _keras3_save(zoo, m, "k3_mobilenet", xb, "softmax", f"Keras {keras.__version__}",
                 ["functional", "DepthwiseConv2D", "SeparableConv2D", "ReLU6", "Rescaling",
                  "BatchNormalization", "trained (digits)"],
                 note=f"trained on digits 0..1199; float accuracy {acc:.4f} on 1200..1796",
                 xf=xb.astype(np.float32))
    return acc


def _keras3_save(zoo, m, name, x, head, ver, features, onnx=True, note="", xf=None):
    xin = x if xf is None else xf
    y = m.predict(xin, verbose=0)
    m.save(OUT / f"{name}.keras")
    zoo.add(name, f"{name}.keras", ver, "Keras 3 .keras", head, x, y, features,
            _keras_layers(OUT / f"{name}.keras"), note)
    m.save(OUT / f"{name}.h5")  # legacy HDF5 written by Keras 3
    zoo.add(f"{name}_h5", f"{name}.h5", ver, "Keras 3 legacy HDF5", head, x, y, features,
            _keras_layers(OUT / f"{name}.h5"), note)
    if onnx:
        path = OUT / f"{name}_tf2onnx.onnx"
        m.export(str(path), format="onnx", verbose=False)
        zoo.add(f"{name}_tf2onnx", path.name, f"{ver} export (tf2onnx)", "ONNX (tf2onnx)", head,
                x, y, features + ["NHWC input", "Transpose to NCHW"], _onnx_ops(path), note)


# =============================================================================================
# PyTorch → ONNX (TorchScript and dynamo exporters)
# =============================================================================================

def torch_models(zoo: Zoo):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    torch.manual_seed(11)
    ver = f"PyTorch {torch.__version__.split('+')[0]}"

    def bn(c):
        b = nn.BatchNorm2d(c)
        with torch.no_grad():
            b.weight.uniform_(0.5, 1.5)
            b.bias.normal_(0, 0.2)
            b.running_mean.normal_(0, 0.3)
            b.running_var.uniform_(0.5, 2.0)
        return b

    class VGG(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.b1 = nn.Conv2d(3, 6, 3, padding=1), bn(6)
            self.c2, self.b2 = nn.Conv2d(6, 8, 3, padding=1), bn(8)
            self.fc1, self.fc2 = nn.Linear(8 * 3 * 3, 16), nn.Linear(16, 5)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.b1(self.c1(x))), 2)
            x = F.max_pool2d(F.relu(self.b2(self.c2(x))), 2)
            x = x.reshape(x.size(0), -1)  # Shape/Gather/Unsqueeze/Concat/Reshape when exported
            return self.fc2(F.relu(self.fc1(x)))

    class Block(nn.Module):
        def __init__(self, c, stride):
            super().__init__()
            self.c1, self.b1 = nn.Conv2d(c, 2 * c if stride > 1 else c, 3, stride, 1, bias=False), \
                bn(2 * c if stride > 1 else c)
            co = 2 * c if stride > 1 else c
            self.c2, self.b2 = nn.Conv2d(co, co, 3, 1, 1, bias=False), bn(co)
            self.short = None if stride == 1 else nn.Sequential(
                nn.Conv2d(c, co, 1, stride, bias=False), bn(co))

        def forward(self, x):
            y = self.b2(self.c2(F.relu(self.b1(self.c1(x)))))
            return F.relu(y + (x if self.short is None else self.short(x)))

    class ResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1, bias=False), bn(6), nn.ReLU())
            self.l1, self.l2 = Block(6, 1), Block(6, 2)
            self.fc = nn.Linear(12, 5)

        def forward(self, x):
            x = self.l2(self.l1(self.stem(x)))
            return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))

    class InvertedResidual(nn.Module):
        def __init__(self, c, t, stride):
            super().__init__()
            h = c * t
            self.use_res = stride == 1
            self.body = nn.Sequential(
                nn.Conv2d(c, h, 1, bias=False), bn(h), nn.ReLU6(),
                nn.Conv2d(h, h, 3, stride, 1, groups=h, bias=False), bn(h), nn.ReLU6(),
                nn.Conv2d(h, c if stride == 1 else 2 * c, 1, bias=False),
                bn(c if stride == 1 else 2 * c))

        def forward(self, x):
            return x + self.body(x) if self.use_res else self.body(x)

    class MobileNetV2(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 6, 3, 2, 1, bias=False), bn(6), nn.ReLU6())
            self.b1, self.b2 = InvertedResidual(6, 2, 1), InvertedResidual(6, 2, 2)
            self.grp = nn.Sequential(nn.Conv2d(12, 12, 3, padding=1, groups=3), nn.ReLU6())
            self.fc = nn.Linear(12, 5)

        def forward(self, x):
            x = self.grp(self.b2(self.b1(self.stem(x))))
            return self.fc(x.mean((2, 3)))

    class Pre(nn.Module):
        """uint8 NHWC pixels → Cast, NHWC→NCHW Transpose, ÷255, −mean, ×1/std; then a head."""

        def __init__(self, net, head):
            super().__init__()
            self.net, self.head = net, head
            self.register_buffer("mean", torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1))
            self.register_buffer("inv_std", torch.tensor([4.0, 5.0, 3.0]).view(1, 3, 1, 1))

        def forward(self, x):
            x = x.float().permute(0, 3, 1, 2) / 255.0
            z = self.net((x - self.mean) * self.inv_std)
            if self.head == "softmax":
                return F.softmax(z, dim=1)
            if self.head == "log_softmax":
                return F.log_softmax(z, dim=1)
            return z.argmax(dim=1)

    rng = _rng("torch")
    x = rng.uniform(0, 1, (N, 3, 12, 12)).astype(np.float32)
    xu = rng.integers(0, 256, (N, 12, 12, 3)).astype(np.uint8)
    nets = {"vgg": VGG().eval(), "resnet": ResNet().eval(), "mobilenetv2": MobileNetV2().eval()}
    feats = {"vgg": ["VGG", "MaxPool", "x.reshape(x.size(0), -1) flatten"],
             "resnet": ["ResNet", "Add", "strided shortcut", "adaptive_avg_pool2d"],
             "mobilenetv2": ["MobileNetV2", "depthwise conv", "grouped conv (3 groups)", "ReLU6",
                             "inverted residual"]}
    for key, net in nets.items():
        with torch.no_grad():
            y = net(torch.from_numpy(x)).numpy()
        # dynamo writes opset 18 natively and converts up (20, 21, 23) with onnxscript's
        # version converter; asked for a lower opset it may write 18 (torch 2.13: ResNet at 17)
        for exporter, opsets in (("torchscript", (11, 13, 17)), ("dynamo", (18, 20, 21, 23))):
            for opset in opsets:
                for fold in ((True, False) if exporter == "torchscript" and opset == 13
                             else (True,)):
                    name = f"pt_{key}_{exporter}_op{opset}" + ("" if fold else "_nofold")
                    path = OUT / f"{name}.onnx"
                    _torch_export(net, torch.from_numpy(x), path, exporter, opset, fold)
                    ops = _onnx_ops(path)
                    f = feats[key] + [f"{exporter} exporter", f"opset {opset}"]
                    f.append("BN folded" if "BatchNormalization" not in ops else "BN kept")
                    zoo.add(name, path.name, f"{ver} torch.onnx.export ({exporter})",
                            f"ONNX ({exporter})", "none", x, y, f, ops)
        # in-graph preprocessing and the three heads, through both exporters
        for head, exporter, opset in (("softmax", "torchscript", 13),
                                      ("log_softmax", "torchscript", 11),
                                      ("argmax", "torchscript", 13),
                                      ("softmax", "dynamo", 20),
                                      ("log_softmax", "dynamo", 21),
                                      ("argmax", "dynamo", 18)):
            pre = Pre(net, head).eval()
            with torch.no_grad():
                yp = pre(torch.from_numpy(xu)).numpy()
            name = f"pt_{key}_pre_{head}_{exporter}_op{opset}"
            path = OUT / f"{name}.onnx"
            _torch_export(pre, torch.from_numpy(xu), path, exporter, opset, True)
            ops = _onnx_ops(path)
            zoo.add(name, path.name, f"{ver} torch.onnx.export ({exporter})",
                    f"ONNX ({exporter})", head, xu, yp,
                    feats[key] + ["uint8 input", "Cast", "Div/Sub/Mul preprocessing",
                                  "NHWC→NCHW Transpose", f"{head} head", f"opset {opset}"], ops)


def _torch_export(net, x, path, exporter, opset, fold):
    import torch
    kw = dict(input_names=["input"], output_names=["output"], opset_version=opset)
    if exporter == "torchscript":
        torch.onnx.export(net, (x,), str(path), dynamo=False, do_constant_folding=fold,
                          dynamic_axes={"input": {0: "N"}, "output": {0: "N"}}, **kw)
    else:
        batch = torch.export.Dim("N", min=2, max=1024)
        torch.onnx.export(net, (x,), str(path), dynamo=True, external_data=False,
                          dynamic_shapes={"x": {0: batch}}, **kw)
        import onnx
        got = {o.domain: o.version for o in onnx.load(str(path)).opset_import}.get("")
        if got != opset:  # the exporter fell back to another opset: the name would lie
            raise RuntimeError(f"{path.name}: asked for opset {opset}, written {got}")


# =============================================================================================
# NIR from snnTorch
# =============================================================================================

def nir_models(zoo: Zoo):
    """A NIR graph of a small spiking CNN (Conv2d → LIF → AvgPool2d → Conv2d → LIF → Flatten →
    Affine → LIF), written node by node with the ``nir`` package (as a tool other than the
    training frameworks would write it), from the modules of a PyTorch model with those
    layers."""
    import nir
    import torch
    import torch.nn as nn
    torch.manual_seed(5)
    c1, c2, fc = nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 6, 3), nn.Linear(6 * 2 * 2, 5)
    ann = nn.Sequential(c1, nn.ReLU(), nn.AvgPool2d(2), c2, nn.ReLU(), nn.Flatten(), fc, nn.ReLU())
    rng = _rng("nir")
    x = rng.uniform(0, 1, (N, 1, 8, 8)).astype(np.float32)

    def lif(n):
        shape = (n,) if np.isscalar(n) else tuple(n)
        one = np.ones(shape, np.float32)
        return nir.LIF(tau=0.01 * one, r=one, v_leak=0 * one, v_threshold=one)

    def conv(m, hw):
        return nir.Conv2d(input_shape=hw, weight=m.weight.detach().numpy(),
                          stride=m.stride, padding=m.padding, dilation=m.dilation,
                          groups=m.groups, bias=m.bias.detach().numpy())
    nodes = {"input": nir.Input(input_type=np.array([1, 8, 8])),
             "conv1": conv(c1, (8, 8)), "lif1": lif((4, 8, 8)),
             "pool": nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                                   padding=np.array([0, 0])),
             "conv2": conv(c2, (4, 4)), "lif2": lif((6, 2, 2)),
             "flat": nir.Flatten(input_type={"input": np.array([6, 2, 2])}, start_dim=0,
                                 end_dim=-1),
             "fc": nir.Affine(weight=fc.weight.detach().numpy(), bias=fc.bias.detach().numpy()),
             "lif3": lif(5), "output": nir.Output(output_type=np.array([5]))}
    order = list(nodes)
    graph = nir.NIRGraph(nodes=nodes, edges=list(zip(order[:-1], order[1:])))
    path = OUT / "nir_cnn.nir"
    nir.write(str(path), graph)
    with torch.no_grad():
        y = ann(torch.from_numpy(x)).numpy()
    zoo.add("nir_cnn", path.name, f"NIR {nir.__version__} (nir.write)", "NIR", "none", x, y,
            ["NIR", "Conv2d", "LIF", "AvgPool2d", "Flatten", "Affine"],
            [type(n).__name__ for n in graph.nodes.values()],
            note="reference: the rate-coded view (ReLU in place of each LIF neuron)")


def snntorch_models(zoo: Zoo):
    """A NIR graph written by snnTorch's own exporter (``snntorch.export_nir.export_to_nir``):
    Conv2d → Leaky → AvgPool2d → Conv2d → Leaky → Flatten → Linear → Leaky.

    snnTorch 1.0.0 with NIR 1.0.8 (nirtorch 2.6) writes a valid graph when every ``Leaky`` has
    per-neuron ``beta`` and ``threshold`` tensors and the sample's batch axis is ignored
    (``ignore_dims=[0]``); with the default scalar ``beta`` the LIF nodes carry no shape and NIR's
    type inference fails (that was last session's failure, not a version clash).  The reference
    is the rate-coded view the importer reads, computed by PyTorch from the very modules that
    were exported, each ``Leaky`` replaced by ReLU."""
    import nir
    import snntorch as snn
    import torch
    import torch.nn as nn
    from snntorch.export_nir import export_to_nir
    torch.manual_seed(6)

    def leaky(shape, **kw):
        return snn.Leaky(beta=torch.full(shape, 0.9), threshold=torch.ones(shape),
                         init_hidden=True, **kw)
    c1, c2, fc = nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 6, 3), nn.Linear(6 * 2 * 2, 5)
    snet = nn.Sequential(c1, leaky((4, 8, 8)), nn.AvgPool2d(2), c2, leaky((6, 2, 2)),
                         nn.Flatten(), fc, leaky((5,), output=True))
    rng = _rng("snntorch")
    x = rng.uniform(0, 1, (N, 1, 8, 8)).astype(np.float32)
    graph = export_to_nir(snet, torch.from_numpy(x[:2]), ignore_dims=[0])
    path = OUT / "nir_snntorch_cnn.nir"
    nir.write(str(path), graph)
    ann = nn.Sequential(*[nn.ReLU() if isinstance(m, snn.Leaky) else m for m in snet])
    with torch.no_grad():
        y = ann(torch.from_numpy(x)).numpy()
    zoo.add("nir_snntorch_cnn", path.name, f"snnTorch {snn.__version__} export_to_nir "
            f"(NIR {nir.__version__})", "NIR", "none", x, y,
            ["NIR", "snnTorch export", "Conv2d", "LIF (Leaky)", "AvgPool2d", "Flatten",
             "Affine"], [type(n).__name__ for n in graph.nodes.values()],
            note="reference: the rate-coded view (ReLU in place of each Leaky neuron)")


# =============================================================================================
# README table
# =============================================================================================

def table(manifest=None) -> str:
    """The README's supported-formats table, from the manifest (one row per format)."""
    entries = manifest or json.loads(MANIFEST.read_text())["models"]
    rows = {}
    for e in entries:
        r = rows.setdefault(e["format"], {"n": 0, "frameworks": set(), "features": set()})
        r["n"] += 1
        r["frameworks"].add(e["framework"].split(" (")[0].split(" torch.onnx")[0])
        r["features"].update(e["features"])
    lines = ["| format (zoo) | models | written by | exercised in the zoo |",
             "|---|---|---|---|"]
    for fmt in sorted(rows):
        r = rows[fmt]
        lines.append(f"| {fmt} | {r['n']} | {'; '.join(sorted(r['frameworks']))} | "
                     f"{', '.join(sorted(r['features'], key=str.lower))} |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--table", action="store_true", help="print the README table and exit")
    ap.add_argument("--only", default="",
                    help="comma list: keras2,keras3,mobilenet,torch,nir,snntorch")
    args = ap.parse_args(argv)
    if args.table:
        print(table())
        return 0
    OUT.mkdir(exist_ok=True)
    parts = args.only.split(",") if args.only else ["keras2", "keras3", "mobilenet", "torch",
                                                    "nir", "snntorch"]
    old = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {"models": []}
    zoo = Zoo()
    meta = dict(old.get("meta", {}))
    for part in parts:  # the manifest is rewritten after each part
        print(part)
        if part == "keras2":
            keras2_models(zoo)
        elif part == "keras3":
            keras3_models(zoo)
        elif part == "mobilenet":
            meta["k3_mobilenet_float_accuracy"] = mobilenet_keras3(zoo)
        elif part == "torch":
            torch_models(zoo)
        elif part == "nir":
            nir_models(zoo)
        elif part == "snntorch":
            snntorch_models(zoo)
        names = {e["name"] for e in zoo.entries}
        keep = [e for e in old["models"] if e["name"] not in names and args.only]
        models = sorted(keep + zoo.entries, key=lambda e: e["name"])
        MANIFEST.write_text(json.dumps({"meta": meta, "models": models}, indent=1) + "\n")
    total = sum(os.path.getsize(p) for p in OUT.iterdir())
    print(f"{len(models)} models, {total / 1e6:.2f} MB in {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
