"""The model zoo (tests/zoo): real files written by Keras 2, Keras 3, tf2onnx, PyTorch's two ONNX
exporters and snnTorch, each with the framework's own outputs on a fixed batch.

For every model: the float reference (:meth:`Graph.predict`, through the model's head) agrees
with the framework — the same class for every sample and values within 1e-4 relative — and
the model converts (8-bit ECC for Loihi 1, mapped) and runs on the engine.  The README's
supported-formats table is the one generated from the zoo's manifest.  The generator is
``tests/zoo/make_zoo.py`` (needs the ``zoo`` extra; not run here)."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest

import emulator
from converter.convert import convert
from converter.load import load_model

ZOO = Path(__file__).resolve().parent / "zoo"
MANIFEST = json.loads((ZOO / "manifest.json").read_text())
MODELS = MANIFEST["models"]
README = Path(__file__).resolve().parents[1] / "README.md"


def _make_zoo():
    spec = importlib.util.spec_from_file_location("make_zoo", ZOO / "make_zoo.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # imports only json/numpy at module level
    return mod


def _head(z: np.ndarray, head: str) -> np.ndarray:
    """The model's own head applied to our logits."""
    if head == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    if head == "log_softmax":
        s = z - z.max(axis=1, keepdims=True)
        return s - np.log(np.exp(s).sum(axis=1, keepdims=True))
    if head == "argmax":
        return z.argmax(axis=1)
    return z


#: zoo models the importer or the converter refuses, name -> (stage "import"/"convert", the part
#: of the error that says why): a real file with exactly that property, reported as a
#: limitation, not hidden.  Empty: every zoo model imports, converts and runs.
KNOWN_LIMITS: dict = {}


def _load(entry):
    g = load_model(ZOO / "models" / entry["file"])
    d = np.load(ZOO / "models" / f"{entry['name']}.npz")
    return g, d["x"], d["y"]


def _with_scale(g, x):
    """(graph, calibration batch, raw run batch): a graph that does not say how its input is
    scaled, fed the zoo's random floats in [0, 1], is given 8-bit pixels of scale 1/255."""
    if x.dtype.kind in "ui":
        return g, x, x
    if g.input_spec.scale is None:
        g = g.with_input_spec(scale=1 / 255)
    return g, x.astype(np.float64), np.rint(x * 255).astype(np.int64)


@pytest.mark.parametrize("entry", MODELS, ids=[e["name"] for e in MODELS])
def test_float_reference_equals_framework(entry):
    limit = KNOWN_LIMITS.get(entry["name"])
    if limit and limit[0] == "import":
        with pytest.raises(Exception, match=re.escape(limit[1])):
            _load(entry)
        return
    g, x, y = _load(entry)
    got = _head(g.predict(x), entry["head"])
    if entry["head"] == "argmax":
        np.testing.assert_array_equal(got, y.reshape(-1))
        return
    y = y.reshape(got.shape)
    np.testing.assert_array_equal(got.argmax(axis=1), y.argmax(axis=1))  # 100 % argmax
    scale = float(np.abs(y).max())
    np.testing.assert_allclose(got, y, rtol=1e-4, atol=1e-4 * scale)


@pytest.mark.parametrize("entry", [e for e in MODELS if e["name"] not in KNOWN_LIMITS
                                   or KNOWN_LIMITS[e["name"]][0] == "convert"],
                         ids=lambda e: e["name"])
def test_converts_and_runs(entry):
    """8-bit ECC for Loihi 1 (mapped), then 6 steps of the engine on 4 samples."""
    g, x, _ = _load(entry)
    g, cal, xr = _with_scale(g, x)
    limit = KNOWN_LIMITS.get(entry["name"])
    if limit:
        with pytest.raises(Exception, match=re.escape(limit[1])):
            convert(g, cal, method="ecc", weight_bits=8, profile="loihi1")
        return
    net = convert(g, cal, method="ecc", weight_bits=8, profile="loihi1")
    res = emulator.run(net, xr[:4], 6, detail="all")
    assert res.predictions.shape == (6, 4)


def test_readme_table_is_generated_from_the_zoo():
    text = README.read_text()
    m = re.search(r"<!-- zoo-table -->\n(.*?)\n<!-- /zoo-table -->", text, re.S)
    assert m, "README lacks the <!-- zoo-table --> section"
    assert m.group(1).strip() == _make_zoo().table(MODELS).strip(), \
        "README zoo table is stale: run python tests/zoo/make_zoo.py --table"


def test_zoo_covers_what_users_bring():
    """The formats and features the issue lists are all in the zoo, read from the files."""
    fmts = {e["format"] for e in MODELS}
    assert {"Keras 2 HDF5", "Keras 3 .keras", "Keras 3 legacy HDF5", "ONNX (tf2onnx)",
            "ONNX (torchscript)", "ONNX (dynamo)", "NIR"} <= fmts
    ops = set().union(*(e["ops"] for e in MODELS))
    assert {"Shape", "Gather", "Unsqueeze", "Concat", "Reshape", "Transpose", "Cast", "Div",
            "Softmax", "LogSoftmax", "ArgMax", "BatchNormalization"} <= ops
    layers = {"DepthwiseConv2D", "SeparableConv2D", "Rescaling", "Add", "Concatenate",
              "BatchNormalization", "ReLU"}
    assert layers <= ops
    depthwise = [e for e in MODELS if any("depthwise" in f.lower() for f in e["features"])]
    assert depthwise
    # a NIR graph written by a spiking framework's own exporter
    assert any(e["format"] == "NIR" and e["framework"].startswith(("snnTorch", "Norse"))
               for e in MODELS)
    # both ONNX exporters at several opsets, for each of the three PyTorch nets
    for net in ("vgg", "resnet", "mobilenetv2"):
        for exporter in ("torchscript", "dynamo"):
            opsets = {f for e in MODELS if e["name"].startswith(f"pt_{net}_")
                      and e["format"] == f"ONNX ({exporter})" for f in e["features"]
                      if f.startswith("opset ")}
            assert len(opsets) >= 3, (net, exporter, opsets)
    total = sum(p.stat().st_size for p in (ZOO / "models").iterdir())
    assert total < 5e6, f"the zoo has grown to {total / 1e6:.1f} MB"


def test_mobilenet_snn_within_one_point_of_float():
    """The MobileNet-style Keras 3 model of the zoo (DepthwiseConv2D, SeparableConv2D, ReLU6,
    BatchNormalization, Rescaling; trained on digits 0..1199 by make_zoo.py): its 8-bit Loihi 1
    SNN on the 597 held-out digits is within one point of the float accuracy."""
    from sklearn.datasets import load_digits
    d = load_digits()
    xr = np.round(d.images * (255 / 16)).astype(np.uint8)[..., None]  # as make_zoo.py
    y = d.target
    g = load_model(ZOO / "models" / "k3_mobilenet.keras")
    assert sum(l.params.get("groups", 1) > 1 for l in g) == 3
    float_acc = float(np.mean(g.predict(xr[1200:]).argmax(1) == y[1200:]))
    assert float_acc == pytest.approx(MANIFEST["meta"]["k3_mobilenet_float_accuracy"], abs=2e-3)
    net = convert(g, xr[:1200], method="ecc", weight_bits=8, profile="loihi1")
    assert any(pr.groups > 1 for pr in net.projections)
    res = emulator.run(net, xr[1200:], STEPS_MOBILENET, labels=y[1200:])
    snn_acc = float(res.accuracy[-1])
    assert snn_acc >= float_acc - 0.01, (snn_acc, float_acc)


STEPS_MOBILENET = 64
