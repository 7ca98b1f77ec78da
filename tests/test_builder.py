"""The Python builder API and the NIR importer built on it."""

from __future__ import annotations

import numpy as np
import pytest

from converter.builder import GraphBuilder
from converter.graph import conv2d
from converter.load import load_model
from hw_models.errors import ConversionError, FileFormatError, UnsupportedLayerError


def _lenet(rng):
    b = GraphBuilder(input_shape=(28, 28, 1), name="lenet")
    x = b.input()
    x = b.conv2d(x, rng.normal(size=(5, 5, 1, 4)), rng.normal(size=4), padding="same")
    x = b.batchnorm(x, rng.uniform(0.5, 1.5, 4), rng.normal(size=4), rng.normal(size=4),
                    rng.uniform(0.5, 1.5, 4), epsilon=1e-5)
    x = b.relu(x)
    x = b.maxpool(x, 2)
    y = b.conv2d(x, rng.normal(size=(3, 3, 4, 4)), None, padding=1)
    x = b.add(x, y)
    x = b.concat(x, b.relu(y))
    x = b.zeropad(x, 1)
    x = b.avgpool(x, 2)
    x = b.flatten(x)
    x = b.dense(x, rng.normal(size=(8 * 8 * 8, 10)), rng.normal(size=10))
    x = b.softmax(x)
    return b, b.build(output=x, input_scale=1 / 255)


def test_builder_shapes_and_forward(rng):
    b, g = _lenet(rng)
    shapes = {l.name: l.shape for l in g}
    assert shapes["conv2d_1"] == (28, 28, 4)
    assert shapes["maxpool_1"] == (14, 14, 4)
    assert shapes["concat_1"] == (14, 14, 8)
    assert shapes["zeropad_1"] == (16, 16, 8)
    assert shapes["avgpool_1"] == (8, 8, 8)
    assert shapes["dense_1"] == (10,)
    assert g.input_scale == pytest.approx(1 / 255)
    assert g.predict(rng.uniform(size=(3, 28, 28, 1))).shape == (3, 10)
    # 2-D images are accepted for a single-channel model
    x = rng.uniform(size=(2, 28, 28))
    np.testing.assert_allclose(g.predict(x), g.predict(x[..., None]))


def test_builder_same_padding_even_kernel_pads_bottom_right(rng):
    b = GraphBuilder((5, 5, 1))
    x = b.conv2d(b.input(), np.ones((2, 2, 1, 1)), padding="same")
    assert b.layer(x).params["padding"] == (0, 1, 0, 1)
    assert b.shape(x) == (5, 5, 1)


def test_builder_shape_errors(rng):
    b = GraphBuilder((8, 8, 3))
    x = b.input()
    with pytest.raises(ConversionError, match="bad_conv.*input channels"):
        b.conv2d(x, np.ones((3, 3, 2, 4)), name="bad_conv")
    with pytest.raises(ConversionError, match="fc.*flatten"):
        b.dense(x, np.ones((192, 4)), name="fc")
    f = b.flatten(x)
    with pytest.raises(ConversionError, match="fc2.*kernel expects"):
        b.dense(f, np.ones((100, 4)), name="fc2")
    with pytest.raises(ConversionError, match="bias"):
        b.dense(f, np.ones((192, 4)), np.ones(5), name="fc3")
    with pytest.raises(ConversionError, match="add.*shapes differ"):
        b.add(x, f)
    with pytest.raises(ConversionError, match="duplicate"):
        b.relu(x, name=f)
    with pytest.raises(ConversionError, match="unknown input"):
        b.relu("ghost")
    with pytest.raises(ConversionError, match="window"):
        b.maxpool(x, 9)
    with pytest.raises(ConversionError, match="NaN"):
        b.dense(f, np.full((192, 4), np.nan), name="fc4")
    with pytest.raises(ConversionError, match="input_shape"):
        GraphBuilder((8, 8, 3), "CHWX")


def test_builder_chw_input(rng):
    k = rng.normal(size=(3, 3, 2, 2))
    b = GraphBuilder((2, 5, 5), "CHW")
    g = b.build(output=b.conv2d(b.input(), k))
    x = rng.normal(size=(2, 2, 5, 5))
    assert g.input_shape == (2, 5, 5)
    want = conv2d(x.transpose(0, 2, 3, 1), k)
    np.testing.assert_allclose(g.predict(x), want)
    assert want.shape == (2, 3, 3, 2)


# ---------------------------------------------------------------------------------------------
# NIR (the graph is written with nir.write and read back through load_model)

def test_nir_round_trip(rng, tmp_path):
    nir = pytest.importorskip("nir")
    w1, b1 = rng.normal(size=(4, 2, 3, 3)), rng.normal(size=4)
    w2, b2 = rng.normal(size=(5, 36)), rng.normal(size=5)
    nodes = {
        "in": nir.Input(input_type={"input": np.array([2, 6, 6])}),
        "conv": nir.Conv2d(input_shape=(6, 6), weight=w1, stride=1, padding=0, dilation=1,
                           groups=1, bias=b1),
        "if1": nir.IF(r=np.ones((4, 4, 4)), v_threshold=np.ones((4, 4, 4))),
        "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([1, 1]),
                              padding=np.array([0, 0])),
        "flat": nir.Flatten(input_type={"input": np.array([4, 3, 3])}, start_dim=0),
        "fc": nir.Affine(weight=w2, bias=b2),
        "out": nir.Output(output_type={"output": np.array([5])}),
    }
    edges = [("in", "conv"), ("conv", "if1"), ("if1", "pool"), ("pool", "flat"),
             ("flat", "fc"), ("fc", "out")]
    path = tmp_path / "net.nir"
    nir.write(str(path), nir.NIRGraph(nodes=nodes, edges=edges))
    g = load_model(path)
    assert [l.kind for l in g] == ["input", "conv2d", "relu", "conv2d", "flatten", "dense"]
    assert g.input_shape == (2, 6, 6) and g.input_layout == "CHW"
    x = rng.normal(size=(3, 2, 6, 6))  # NCHW, as the NIR graph takes it
    h = np.zeros((3, 4, 4, 4))
    for i in range(4):
        for j in range(4):
            h[:, :, i, j] = np.einsum("ncij,ocij->no", x[:, :, i:i + 3, j:j + 3], w1)
    h = np.maximum(h + b1[None, :, None, None], 0)
    h = sum(h[:, :, a:a + 3, c:c + 3] for a in range(2) for c in range(2))
    want = h.reshape(3, -1) @ w2.T + b2
    np.testing.assert_allclose(g.predict(x), want, atol=1e-10)


def test_nir_unsupported_node(tmp_path):
    nir = pytest.importorskip("nir")
    nodes = {"in": nir.Input(input_type={"input": np.array([3])}),
             "d": nir.Delay(delay=np.ones(3)),
             "out": nir.Output(output_type={"output": np.array([3])})}
    path = tmp_path / "delay.nir"
    nir.write(str(path), nir.NIRGraph(nodes=nodes, edges=[("in", "d"), ("d", "out")]))
    with pytest.raises(UnsupportedLayerError, match="'d'.*Delay"):
        load_model(path)


def test_load_model_unknown_and_missing(tmp_path):
    with pytest.raises(FileFormatError, match="no such file"):
        load_model(tmp_path / "nope.onnx")
    p = tmp_path / "model.xyz"
    p.write_bytes(b"hello")
    with pytest.raises(FileFormatError, match="unknown model format"):
        load_model(p)
    h = tmp_path / "bad.h5"
    h.write_bytes(b"not hdf5 at all")
    with pytest.raises(FileFormatError, match="bad.h5"):
        load_model(h)


def test_load_model_reads_the_projects_npz_models(tmp_path):
    """converter.load_model reads neuroemu's own .npz models (the demo and N-MNIST CNNs) without
    the facade, refuses a data .npz with a clear message, and names a layer whose kernel is
    missing."""
    import json
    from pathlib import Path
    from converter import load_model
    from hw_models.errors import FileFormatError
    root = Path(__file__).resolve().parents[1]
    g = load_model(root / "neuroemu" / "assets" / "digits_cnn.npz")
    assert g.input_scale == pytest.approx(1 / 16)
    np.savez(tmp_path / "data.npz", x=np.zeros((2, 8, 8)), y=np.zeros(2))
    with pytest.raises(FileFormatError, match="architecture"):
        load_model(tmp_path / "data.npz")
    arch = {"architecture": [{"kind": "input", "shape": [4, 4, 1]},
                             {"kind": "flatten", "name": "f"},
                             {"kind": "dense", "name": "d"}]}
    np.savez(tmp_path / "bad.npz", architecture=json.dumps(arch))
    with pytest.raises(FileFormatError, match="'d/kernel'"):
        load_model(tmp_path / "bad.npz")
