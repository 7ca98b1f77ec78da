"""ONNX import: the real reference models, and synthetic graphs checked against ONNX's own
reference evaluator (``onnx.reference``, pure NumPy)."""

from __future__ import annotations

import numpy as np
import pytest

from converter.load import load_model
from hw_models.errors import FileFormatError, UnsupportedLayerError
from tests.conftest import require_data

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def _model(name):
    return require_data("models", name)


# ---------------------------------------------------------------------------------------------
# real models

@pytest.mark.slow
def test_mnist8_accuracy_full(mnist):
    """ONNX zoo MNIST (opset 8, SAME_UPPER, Add biases, constant Reshape): 98.91 %, raw input."""
    g = load_model(_model("mnist-8.onnx"), input_scale=1.0)
    x, y = mnist
    assert int((g.predict(x[:, None].astype(np.float64)).argmax(1) == y).sum()) == 9891


def test_mnist8_first_1000_and_shapes(mnist):
    g = load_model(_model("mnist-8.onnx"))
    assert g.input_shape == (1, 28, 28) and g.input_layout == "CHW"
    assert [(l.kind, l.shape) for l in g] == [
        ("input", (28, 28, 1)), ("conv2d", (28, 28, 8)), ("relu", (28, 28, 8)),
        ("maxpool", (14, 14, 8)), ("conv2d", (14, 14, 16)), ("relu", (14, 14, 16)),
        ("maxpool", (4, 4, 16)), ("flatten", (256,)), ("dense", (10,))]
    convs = [l for l in g if l.kind == "conv2d"]
    assert all("bias" in l.weights for l in convs)  # the Add nodes were folded
    assert convs[0].params["padding"] == (2, 2, 2, 2)
    x, y = mnist
    assert int((g.predict(x[:1000, None] * 1.0).argmax(1) == y[:1000]).sum()) == 987


def test_torch_cnn_logits(mnist):
    g = load_model(_model("torch_cnn.onnx"))
    assert [(l.kind, l.shape) for l in g] == [
        ("input", (28, 28, 1)), ("conv2d", (28, 28, 16)), ("relu", (28, 28, 16)),
        ("avgpool", (14, 14, 16)), ("conv2d", (14, 14, 32)), ("relu", (14, 14, 32)),
        ("avgpool", (7, 7, 32)), ("flatten", (1568,)), ("dense", (64,)), ("relu", (64,)),
        ("dense", (10,))]
    ref = np.load(_model("torch_cnn_logits_splitB.npy"))
    x, y = mnist
    logits = g.predict(x[8000:, None] / 255.0)
    np.testing.assert_allclose(logits, ref, atol=1e-4, rtol=0)
    assert float((logits.argmax(1) == y[8000:]).mean()) == pytest.approx(0.989)


def test_truncated_onnx_is_file_format_error(tmp_path):
    data = _model("torch_cnn.onnx").read_bytes()
    bad = tmp_path / "cut.onnx"
    bad.write_bytes(data[: len(data) // 3])
    with pytest.raises(FileFormatError, match="cut.onnx"):
        load_model(bad)


# ---------------------------------------------------------------------------------------------
# synthetic graphs

def _f(name, arr):
    return numpy_helper.from_array(np.asarray(arr, dtype=np.float32), name)


def _i(name, arr):
    return numpy_helper.from_array(np.asarray(arr, dtype=np.int64), name)


def _make(nodes, inits, in_shape, out_shape, opset=15):
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *in_shape])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", *out_shape])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8  # opset 15: onnx.reference runs BatchNormalization-13 in training mode
    onnx.checker.check_model(model)
    return model


def _compare(model, tmp_path, x, atol=1e-4):
    from onnx.reference import ReferenceEvaluator
    p = tmp_path / "m.onnx"
    onnx.save(model, str(p))
    g = load_model(p)
    want = ReferenceEvaluator(model).run(None, {"x": x.astype(np.float32)})[0]
    got = g.predict(x.astype(np.float32))
    np.testing.assert_allclose(got, want.reshape(got.shape), atol=atol, rtol=1e-5)
    return g


def test_synthetic_cnn_all_ops(rng, tmp_path):
    """Pad, Conv (SAME_LOWER / explicit pads / stride / dilation), BN, Clip, residual Add,
    Concat, Mul by a per-channel constant, AveragePool excluding pads, MaxPool with ceil_mode,
    GlobalAveragePool, Flatten, Gemm (transB, alpha, beta), MatMul + bias Add, Softmax."""
    c = 3
    w1 = rng.normal(size=(4, c, 3, 3)) * 0.5
    w2 = rng.normal(size=(4, 4, 3, 3)) * 0.3
    w3 = rng.normal(size=(4, 8, 2, 2)) * 0.3
    inits = [
        _i("pads", [0, 0, 1, 0, 0, 0, 0, 2]),
        _f("w1", w1), _f("b1", rng.normal(size=4)),
        _f("w2", w2),
        _f("sc", rng.uniform(0.5, 2, 4)), _f("bb", rng.normal(size=4)),
        _f("mu", rng.normal(size=4)), _f("va", rng.uniform(0.5, 2, 4)),
        _f("lo", 0.0), _f("hi", 1.5),
        _f("cm", rng.uniform(0.5, 2, (1, 8, 1, 1))),
        _f("w3", w3), _f("b3", rng.normal(size=(4, 1, 1))),
        _f("gw", rng.normal(size=(5, 4))), _f("gb", rng.normal(size=5)),
        _f("mw", rng.normal(size=(5, 6))), _f("mb", rng.normal(size=(1, 6))),
    ]
    nodes = [
        helper.make_node("Pad", ["x", "pads"], ["p"], mode="constant"),
        helper.make_node("Conv", ["p", "w1", "b1"], ["c1"], auto_pad="SAME_LOWER",
                         kernel_shape=[3, 3]),
        helper.make_node("Conv", ["c1", "w2"], ["c2"], pads=[2, 1, 2, 1], dilations=[2, 1],
                         kernel_shape=[3, 3]),
        helper.make_node("BatchNormalization", ["c2", "sc", "bb", "mu", "va"], ["bn"],
                         epsilon=1e-3),
        helper.make_node("Clip", ["bn", "lo", "hi"], ["r1"]),
        helper.make_node("Add", ["r1", "c1"], ["res"]),
        helper.make_node("Concat", ["res", "c1"], ["cat"], axis=1),
        helper.make_node("Mul", ["cat", "cm"], ["scaled"]),
        helper.make_node("AveragePool", ["scaled"], ["ap"], kernel_shape=[3, 3],
                         strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=0),
        helper.make_node("Conv", ["ap", "w3"], ["c3"], strides=[1, 1], kernel_shape=[2, 2]),
        helper.make_node("Add", ["c3", "b3"], ["c3b"]),
        helper.make_node("Relu", ["c3b"], ["r3"]),
        helper.make_node("MaxPool", ["r3"], ["mp"], kernel_shape=[2, 2], strides=[2, 2],
                         ceil_mode=1),
        helper.make_node("GlobalAveragePool", ["mp"], ["gap"]),
        helper.make_node("Flatten", ["gap"], ["fl"], axis=1),
        helper.make_node("Gemm", ["fl", "gw", "gb"], ["gm"], transB=1, alpha=0.5, beta=2.0),
        helper.make_node("Relu", ["gm"], ["gr"]),
        helper.make_node("Identity", ["gr"], ["gi"]),
        helper.make_node("MatMul", ["gi", "mw"], ["mm"]),
        helper.make_node("Add", ["mm", "mb"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["y"], axis=-1),
    ]
    model = _make(nodes, inits, [c, 9, 10], [6])
    x = rng.normal(size=(4, c, 9, 10)).astype(np.float32)
    from onnx.reference import ReferenceEvaluator
    p = tmp_path / "m.onnx"
    onnx.save(model, str(p))
    g = load_model(p)
    want = ReferenceEvaluator(model).run(None, {"x": x})[0]
    got = g.forward(x, outputs=[g.output_name])[g.output_name]  # the softmax probabilities
    np.testing.assert_allclose(got, want, atol=1e-5)
    kinds = [l.kind for l in g]
    assert kinds.count("conv2d") == 3 and "zeropad" in kinds and "concat" in kinds
    assert g.logits_name != g.output_name and g.predict(x).shape == (4, 6)


def test_flatten_of_nchw_permutes_dense_rows(rng, tmp_path):
    w = rng.normal(size=(3, 2, 3, 3))
    fc = rng.normal(size=(3 * 4 * 4, 5))
    inits = [_f("w", w), _f("fc", fc), _i("shape", [-1, 48])]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Reshape", ["c", "shape"], ["f"]),
             helper.make_node("MatMul", ["f", "fc"], ["y"])]
    g = _compare(_make(nodes, inits, [2, 4, 4], [5]), tmp_path, rng.normal(size=(3, 2, 4, 4)))
    assert g.input_shape == (2, 4, 4)


def test_unsupported_op_names_node(tmp_path):
    nodes = [helper.make_node("Sigmoid", ["x"], ["y"], name="squash")]
    p = tmp_path / "s.onnx"
    onnx.save(_make(nodes, [], [4], [4]), str(p))
    with pytest.raises(UnsupportedLayerError, match="squash.*Sigmoid"):
        load_model(p)


def test_every_unsupported_op_named_at_once(tmp_path):
    """Every unsupported node is named in one error, with its node name and op type; shape
    arithmetic on constants is not reported (it is folded)."""
    nodes = [helper.make_node("Sigmoid", ["x"], ["a"], name="squash"),
             helper.make_node("Tanh", ["a"], ["b"], name="tan"),
             helper.make_node("Relu", ["b"], ["c"], name="ok"),
             helper.make_node("Erf", ["c"], ["y"], name="gelu_part")]
    p = tmp_path / "s.onnx"
    onnx.save(_make(nodes, [], [4], [4]), str(p))
    with pytest.raises(UnsupportedLayerError) as exc:
        load_model(p)
    msg = str(exc.value)
    assert "3 unsupported" in msg and "'ok'" not in msg
    for part in ("'squash' (Sigmoid)", "'tan' (Tanh)", "'gelu_part' (Erf)"):
        assert part in msg


def test_grouped_and_depthwise_conv(rng, tmp_path):
    inits = [_f("w", rng.normal(size=(4, 1, 3, 3))), _f("b", rng.normal(size=4)),
             _f("w2", rng.normal(size=(6, 2, 3, 3)))]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["d"], group=4, pads=[1, 1, 1, 1],
                              strides=[2, 1], name="dw"),
             helper.make_node("Conv", ["d", "w2"], ["y"], group=2, dilations=[1, 2],
                              name="grp")]
    model = _make(nodes, inits, [4, 7, 8], [6, 2, 4])
    from onnx.reference import ReferenceEvaluator
    p = tmp_path / "m.onnx"
    onnx.save(model, str(p))
    g = load_model(p)
    x = rng.normal(size=(3, 4, 7, 8)).astype(np.float32)
    want = ReferenceEvaluator(model).run(None, {"x": x})[0]
    np.testing.assert_allclose(g.predict(x), want.transpose(0, 2, 3, 1), atol=1e-4, rtol=1e-5)
    assert [l.params.get("groups", 1) for l in g if l.kind == "conv2d"] == [4, 2]


def test_shape_subgraph_flatten_is_folded(rng, tmp_path):
    """PyTorch's x.view(x.size(0), -1): Shape → Gather → Unsqueeze → Concat → Reshape."""
    w = rng.normal(size=(3, 2, 3, 3))
    fc = rng.normal(size=(5, 3 * 4 * 4))
    inits = [_f("w", w), _f("fc", fc), _i("zero", 0), _i("ax0", [0]), _i("m1", [-1])]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Shape", ["c"], ["s"]),
             helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
             helper.make_node("Unsqueeze", ["n", "ax0"], ["n1"]),
             helper.make_node("Concat", ["n1", "m1"], ["shape"], axis=0),
             helper.make_node("Reshape", ["c", "shape"], ["f"]),
             helper.make_node("Gemm", ["f", "fc"], ["y"], transB=1)]
    g = _compare(_make(nodes, inits, [2, 4, 4], [5]), tmp_path, rng.normal(size=(3, 2, 4, 4)))
    assert [l.kind for l in g] == ["input", "conv2d", "flatten", "dense"]


def test_nhwc_input_transpose_squeeze_and_reduce_mean(rng, tmp_path):
    """tf2onnx style: NHWC input, Transpose to NCHW, conv, Transpose back, Pad and Concat on
    NHWC, ReduceMean over H, W, MatMul; the graph takes NHWC data as the model does."""
    w = rng.normal(size=(4, 3, 3, 3))
    inits = [_f("w", w), _i("perm_pads", [0, 1, 0, 0, 0, 0, 1, 0]),
             _f("mw", rng.normal(size=(8, 5)))]
    nodes = [helper.make_node("Transpose", ["x"], ["t"], perm=[0, 3, 1, 2]),
             helper.make_node("Conv", ["t", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Transpose", ["r"], ["rt"], perm=[0, 2, 3, 1]),
             helper.make_node("Pad", ["rt", "perm_pads"], ["p"]),
             helper.make_node("Concat", ["p", "p"], ["cat"], axis=3),
             helper.make_node("ReduceMean", ["cat"], ["m"], axes=[1, 2], keepdims=0),
             helper.make_node("MatMul", ["m", "mw"], ["y"])]
    g = _compare(_make(nodes, inits, [5, 6, 3], [5], opset=13), tmp_path,
                 rng.normal(size=(2, 5, 6, 3)))
    assert g.input_layout == "HWC" and g.input_shape == (5, 6, 3)
    assert "transpose" not in {l.kind for l in g}


@pytest.mark.parametrize("head", ["Softmax", "LogSoftmax", "ArgMax"])
def test_classifier_heads_are_the_readout(rng, tmp_path, head):
    inits = [_f("fc", rng.normal(size=(6, 4)))]
    extra = {"axis": 1, "keepdims": 0} if head == "ArgMax" else {"axis": 1}
    nodes = [helper.make_node("MatMul", ["x", "fc"], ["z"]),
             helper.make_node(head, ["z"], ["h"], **extra),
             helper.make_node("Identity", ["h"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, ["N", 6])], [helper.make_tensor_value_info(
            "y", TensorProto.INT64 if head == "ArgMax" else TensorProto.FLOAT, ["N", 4]
            if head != "ArgMax" else ["N"])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    p = tmp_path / "h.onnx"
    onnx.save(model, str(p))
    g = load_model(p)
    x = rng.normal(size=(7, 6))
    from onnx.reference import ReferenceEvaluator
    want = ReferenceEvaluator(model).run(None, {"x": x.astype(np.float32)})[0]
    logits = g.predict(x)
    out = g.forward(x, outputs=[g.output_name])[g.output_name]
    assert g.layer(g.output_name).kind == "softmax" and g.logits_name != g.output_name
    if head == "ArgMax":
        np.testing.assert_array_equal(logits.argmax(1), want)
        np.testing.assert_array_equal(out.argmax(1), want)
    else:
        np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)


def test_in_graph_preprocessing_uint8_nhwc(rng, tmp_path):
    """uint8 NHWC pixels → Cast → Transpose to NCHW → ÷255 → −mean → ×1/std (per channel) →
    Conv → Relu → GlobalAveragePool → Flatten → Gemm → ArgMax: the preprocessing is one affine
    on the input, the graph takes the same uint8 NHWC array, and the class is ONNX's."""
    mean = np.array([0.5, 0.4, 0.3]).reshape(1, 3, 1, 1)
    inv = np.array([4.0, 5.0, 3.0]).reshape(1, 3, 1, 1)
    inits = [_f("k255", 255.0), _f("mean", mean), _f("inv", inv),
             _f("w", rng.normal(size=(4, 3, 3, 3))), _f("fc", rng.normal(size=(5, 4)))]
    nodes = [helper.make_node("Cast", ["x"], ["xf"], to=TensorProto.FLOAT),
             helper.make_node("Transpose", ["xf"], ["t"], perm=[0, 3, 1, 2]),
             helper.make_node("Div", ["t", "k255"], ["d"]),
             helper.make_node("Sub", ["d", "mean"], ["s"]),
             helper.make_node("Mul", ["s", "inv"], ["m"]),
             helper.make_node("Conv", ["m", "w"], ["c"]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("GlobalAveragePool", ["r"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("Gemm", ["f", "fc"], ["z"], transB=1),
             helper.make_node("ArgMax", ["z"], ["y"], axis=1, keepdims=0)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(
        "x", TensorProto.UINT8, ["N", 6, 7, 3])], [helper.make_tensor_value_info(
            "y", TensorProto.INT64, ["N"])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    p = tmp_path / "pre.onnx"
    onnx.save(model, str(p))
    g = load_model(p)
    assert g.input_layout == "HWC" and g.input_shape == (6, 7, 3)
    assert [l.kind for l in g][:2] == ["input", "conv2d"]  # the affine is the input spec
    np.testing.assert_allclose(g.input_spec.scale, 4 * np.array([1, 1.25, 0.75]) / 255)
    np.testing.assert_allclose(g.input_spec.offset, -np.array([0.5, 0.4, 0.3]) * [4, 5, 3])
    x = rng.integers(0, 256, (20, 6, 7, 3)).astype(np.uint8)
    from onnx.reference import ReferenceEvaluator
    want = ReferenceEvaluator(model).run(None, {"x": x})[0]
    np.testing.assert_array_equal(g.predict(x).argmax(1), want)
    z = ReferenceEvaluator(helper.make_model(helper.make_graph(
        nodes[:-1], "g", graph.input, [helper.make_tensor_value_info("z", TensorProto.FLOAT,
                                                                     ["N", 5])], inits),
        opset_imports=[helper.make_opsetid("", 13)])).run(None, {"x": x})[0]
    np.testing.assert_allclose(g.predict(x), z, rtol=1e-5, atol=1e-5)


def _as_strided_flatten(order=None, batch_stride=None, shape_of="x"):
    """PyTorch's dynamo ``as_strided`` flatten of a conv output (N, 3, 4, 4): Reshape to [-1],
    then Gather of indices Range(0, N)·S + per-sample offsets, then Reshape to (N, S)."""
    S = 3 * 4 * 4
    offs = np.arange(S).reshape(1, 3, 4, 4) if order is None else order.reshape(1, 3, 4, 4)
    inits = [_i("m1", [-1]), _i("zero", 0), _i("one", 1), _i("stride", S if batch_stride is None else batch_stride),
             _i("ax", [1, 2, 3]), _i("offs", offs), _i("tgt", [-1, S]), _i("start", [0]),
             _i("end", [1])]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Shape", [shape_of], ["s"], start=0, end=1),
             helper.make_node("Squeeze", ["s"], ["n"]),
             helper.make_node("Reshape", ["c", "m1"], ["flat"]),
             helper.make_node("Range", ["zero", "n", "one"], ["r"]),
             helper.make_node("Mul", ["r", "stride"], ["rs"]),
             helper.make_node("Unsqueeze", ["rs", "ax"], ["r4"]),
             helper.make_node("Add", ["r4", "offs"], ["idx"]),
             helper.make_node("Gather", ["flat", "idx"], ["g"], axis=0),
             helper.make_node("Reshape", ["g", "tgt"], ["f"]),
             helper.make_node("Gemm", ["f", "fc"], ["y"], transB=1)]
    return nodes, inits


def test_dynamo_as_strided_flatten_is_a_proven_reshape(rng, tmp_path):
    """The dynamo exporter's flatten as a Gather of computed indices: read as the flatten it
    is (the index pattern re-folded at batch sizes 2 and 3), exact against ONNX's own
    evaluator on a batch of 3."""
    nodes, inits = _as_strided_flatten()
    inits += [_f("w", rng.normal(size=(3, 2, 3, 3))), _f("fc", rng.normal(size=(5, 48)))]
    g = _compare(_make(nodes, inits, [2, 4, 4], [5], opset=18), tmp_path,
                 rng.normal(size=(3, 2, 4, 4)))
    assert [l.kind for l in g] == ["input", "conv2d", "flatten", "dense"]


@pytest.mark.parametrize("case,match", [
    ("permuted", "in order"),          # a per-sample permutation, not a reshape
    ("sample0", "do not read each sample"),  # batch stride 0: every sample reads sample 0
])
def test_gather_of_computed_indices_that_is_not_a_reshape_is_refused(rng, tmp_path, case,
                                                                     match):
    order = rng.permutation(48) if case == "permuted" else None
    nodes, inits = _as_strided_flatten(order=order, batch_stride=0 if case == "sample0" else None)
    inits += [_f("w", rng.normal(size=(3, 2, 3, 3))), _f("fc", rng.normal(size=(5, 48)))]
    p = tmp_path / "m.onnx"
    onnx.save(_make(nodes, inits, [2, 4, 4], [5], opset=18), str(p))
    with pytest.raises(UnsupportedLayerError, match="Gather.*" + match):
        load_model(p)
