"""The float graph IR: every layer kind against a naive NumPy reference, shapes, errors."""

from __future__ import annotations

import numpy as np
import pytest

from converter.graph import Graph, Layer, conv2d, infer_shape, pool2d, same_padding
from hw_models.errors import ConversionError, DataError

TOL = 1e-10  # float64 reference vs float64 kernels: only summation-order differences


def naive_conv(x, k, bias, strides, pad, dil):
    """Obviously correct NHWC cross-correlation, one output pixel at a time."""
    t, b, l, r = pad
    xp = np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)))
    kh, kw, _, cout = k.shape
    sh, sw = strides
    dh, dw = dil
    ho = (xp.shape[1] - dh * (kh - 1) - 1) // sh + 1
    wo = (xp.shape[2] - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((x.shape[0], ho, wo, cout))
    for i in range(ho):
        for j in range(wo):
            for a in range(kh):
                for c in range(kw):
                    out[:, i, j] += xp[:, i * sh + a * dh, j * sw + c * dw] @ k[a, c]
    return out + (0 if bias is None else bias)


def naive_pool(x, pool, strides, pad, mode, include):
    t, b, l, r = pad
    fill = -np.inf if mode == "max" else 0.0
    xp = np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)), constant_values=fill)
    real = np.pad(np.ones(x.shape[1:3]), ((t, b), (l, r)))
    ho = (xp.shape[1] - pool[0]) // strides[0] + 1
    wo = (xp.shape[2] - pool[1]) // strides[1] + 1
    out = np.zeros((x.shape[0], ho, wo, x.shape[3]))
    for i in range(ho):
        for j in range(wo):
            win = xp[:, i * strides[0]:i * strides[0] + pool[0],
                     j * strides[1]:j * strides[1] + pool[1]]
            if mode == "max":
                out[:, i, j] = win.max(axis=(1, 2))
            else:
                cnt = pool[0] * pool[1] if include else real[
                    i * strides[0]:i * strides[0] + pool[0],
                    j * strides[1]:j * strides[1] + pool[1]].sum()
                out[:, i, j] = win.sum(axis=(1, 2)) / cnt
    return out


@pytest.mark.parametrize("k,strides,pad,dil", [
    ((3, 3), (1, 1), (0, 0, 0, 0), (1, 1)),
    ((3, 2), (2, 1), (1, 2, 0, 1), (1, 1)),
    ((3, 3), (1, 2), (2, 2, 2, 2), (2, 1)),
    ((1, 1), (3, 3), (0, 0, 0, 0), (1, 1)),
    ((5, 5), (1, 1), (2, 2, 2, 2), (1, 1)),
])
@pytest.mark.parametrize("cin", [1, 3])
def test_conv_matches_naive(rng, k, strides, pad, dil, cin):
    x = rng.normal(size=(3, 9, 8, cin))
    kernel = rng.normal(size=k + (cin, 4))
    bias = rng.normal(size=4)
    got = conv2d(x, kernel, bias, strides, pad, dil)
    want = naive_conv(x, kernel, bias, strides, pad, dil)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=TOL)
    shape = infer_shape("conv2d", {"strides": strides, "padding": pad, "dilation": dil},
                        {"kernel": kernel}, [x.shape[1:]])
    assert shape == got.shape[1:]


@pytest.mark.parametrize("mode,include", [("max", True), ("avg", True), ("avg", False)])
@pytest.mark.parametrize("pool,strides,pad", [
    ((2, 2), (2, 2), (0, 0, 0, 0)),
    ((3, 3), (2, 2), (1, 1, 1, 1)),
    ((3, 2), (1, 2), (0, 2, 1, 0)),
])
def test_pool_matches_naive(rng, mode, include, pool, strides, pad):
    x = rng.normal(size=(2, 7, 8, 3))
    got = pool2d(x, pool, strides, pad, mode, include)
    np.testing.assert_allclose(got, naive_pool(x, pool, strides, pad, mode, include), atol=TOL)


def test_same_padding_puts_odd_pixel_after():
    assert same_padding(28, 5, 1) == (2, 2)
    assert same_padding(28, 2, 1) == (0, 1)
    assert same_padding(28, 2, 1, lower=True) == (1, 0)
    assert same_padding(7, 3, 2) == (1, 1)
    assert same_padding(8, 3, 2) == (0, 1)


def _small_graph(rng, layout="HWC"):
    shape = (6, 6, 2) if layout == "HWC" else (2, 6, 6)
    layers = [
        Layer("in", "input", params={"shape": (6, 6, 2)}),
        Layer("c", "conv2d", ["in"], {"strides": (1, 1), "padding": (1, 1, 1, 1)},
              {"kernel": rng.normal(size=(3, 3, 2, 4)), "bias": rng.normal(size=4)}),
        Layer("bn", "batchnorm", ["c"], {"epsilon": 1e-3},
              {"gamma": rng.uniform(0.5, 2, 4), "beta": rng.normal(size=4),
               "mean": rng.normal(size=4), "var": rng.uniform(0.1, 2, 4)}),
        Layer("r", "relu", ["bn"], {"max_value": 2.0}),
        Layer("p", "maxpool", ["r"], {"pool": (2, 2), "strides": (2, 2)}),
        Layer("z", "zeropad", ["p"], {"padding": (1, 0, 0, 1)}),
        Layer("g", "global_avgpool", ["z"]),
        Layer("d", "dense", ["g"], {}, {"kernel": rng.normal(size=(4, 3))}),
        Layer("s", "softmax", ["d"]),
    ]
    return Graph(layers, input_shape=shape, input_layout=layout)


def test_batchnorm_layer_matches_hand_computation(rng):
    g = _small_graph(rng)
    x = rng.normal(size=(5, 6, 6, 2))
    acts = g.forward(x, outputs=["c", "bn"])
    w = g.layer("bn").weights
    want = w["gamma"] * (acts["c"] - w["mean"]) / np.sqrt(w["var"] + 1e-3) + w["beta"]
    np.testing.assert_allclose(acts["bn"], want, atol=TOL)


def test_forward_shapes_and_logits_before_softmax(rng):
    g = _small_graph(rng)
    x = rng.normal(size=(4, 6, 6, 2))
    acts = g.forward(x)
    for layer in g:
        assert acts[layer.name].shape == (4,) + layer.shape, layer.name
    assert [l.shape for l in g] == [(6, 6, 2), (6, 6, 4), (6, 6, 4), (6, 6, 4), (3, 3, 4),
                                    (4, 4, 4), (4,), (3,), (3,)]
    assert acts["r"].max() <= 2.0
    np.testing.assert_allclose(g.predict(x), acts["d"], atol=TOL)
    np.testing.assert_allclose(acts["s"].sum(axis=1), 1.0)
    assert g.logits_name == "d"
    assert g.predict(x).dtype == np.float64


def test_chw_layout_transposes_input(rng):
    g_hwc = _small_graph(rng, "HWC")
    g_chw = Graph([l.copy() for l in g_hwc], input_shape=(2, 6, 6), input_layout="CHW")
    x = rng.normal(size=(3, 6, 6, 2))
    np.testing.assert_allclose(g_chw.predict(x.transpose(0, 3, 1, 2)), g_hwc.predict(x))
    with pytest.raises(DataError, match="model takes"):
        g_chw.predict(x)


def test_iter_activations_streams_batches(rng):
    g = _small_graph(rng)
    x = rng.normal(size=(10, 6, 6, 2))
    parts = list(g.iter_activations(x, batch_size=4, outputs=["r"]))
    assert [p["r"].shape[0] for p in parts] == [4, 4, 2]
    np.testing.assert_allclose(np.concatenate([p["r"] for p in parts]), g.forward(x)["r"])
    np.testing.assert_allclose(g.predict(x, batch_size=3), g.predict(x, batch_size=256))


def test_structure_helpers(rng):
    g = _small_graph(rng)
    assert g.consumers("c") == ["bn"]
    assert g.layer("p").kind == "maxpool"
    with pytest.raises(KeyError, match="no layer"):
        g.layer("nope")
    h = g.copy()
    h.layer("c").weights["kernel"][:] = 0
    assert np.abs(g.layer("c").weights["kernel"]).sum() > 0
    folded = g.without("bn")
    assert "bn" not in folded and folded.layer("r").inputs == ["c"]
    s = g.summary()
    assert "conv2d" in s and "total parameters" in s


def test_add_and_concat(rng):
    layers = [
        Layer("in", "input", params={"shape": (4, 4, 2)}),
        Layer("a", "relu", ["in"]),
        Layer("b", "conv2d", ["in"], {"padding": (0, 0, 0, 0)},
              {"kernel": rng.normal(size=(1, 1, 2, 2))}),
        Layer("s", "add", ["a", "b"]),
        Layer("c", "concat", ["s", "in"]),
    ]
    g = Graph(layers)
    x = rng.normal(size=(2, 4, 4, 2))
    acts = g.forward(x)
    np.testing.assert_allclose(acts["s"], np.maximum(x, 0) + x @ layers[2].weights["kernel"][0, 0])
    assert acts["c"].shape == (2, 4, 4, 4)


def test_errors_name_the_layer(rng):
    base = [Layer("in", "input", params={"shape": (4, 4, 1)})]
    bad_kernel = Layer("conv_x", "conv2d", ["in"], {}, {"kernel": np.full((3, 3, 2, 2), 0.1)})
    with pytest.raises(ConversionError, match="conv_x.*input channels"):
        Graph(base + [bad_kernel])
    nan = np.ones((3, 3, 1, 2))
    nan[0, 0, 0, 0] = np.nan
    with pytest.raises(ConversionError, match="conv_n.*NaN"):
        Graph(base + [Layer("conv_n", "conv2d", ["in"], {}, {"kernel": nan})])
    with pytest.raises(ConversionError, match="dense_1.*flatten"):
        Graph(base + [Layer("dense_1", "dense", ["in"], {}, {"kernel": np.ones((16, 2))})])
    with pytest.raises(ConversionError, match="not an earlier layer"):
        Graph(base + [Layer("r", "relu", ["missing"])])
    with pytest.raises(ConversionError, match="softmax is only supported as the output"):
        Graph(base + [Layer("s", "softmax", ["in"]), Layer("r", "relu", ["s"])])
    with pytest.raises(ConversionError, match="unknown kind|unknown layer kind"):
        Graph(base + [Layer("q", "lstm", ["in"])])
