"""BN folding, ReLU/max-pool reordering, MAC counting and streaming normalisation scales."""

from __future__ import annotations

import numpy as np
import pytest

from converter.builder import GraphBuilder
from converter.normalise import activation_scales, share_scales
from converter.passes import count_macs, fold_batchnorm, prepare, relu_before_maxpool
from hw_models.errors import DataError

# float64 throughout: folded and unfolded graphs agree to rounding (stated tolerance)
RTOL, ATOL = 1e-9, 1e-9


def _bn(b, x, rng, c, eps=1e-3):
    return b.batchnorm(x, rng.normal(1, 0.3, c), rng.normal(0, 0.5, c), rng.normal(0, 0.5, c),
                       rng.uniform(0.2, 2.0, c), epsilon=eps)


def _bn_cnn(rng, forward=False):
    b = GraphBuilder((8, 8, 2))
    x = b.input()
    x = b.conv2d(x, rng.normal(0, 0.5, (3, 3, 2, 4)), rng.normal(0, 0.1, 4), padding="same")
    x = _bn(b, x, rng, 4, eps=1e-5)
    x = b.relu(x)
    x = b.maxpool(x, 2)
    if forward:
        x = _bn(b, x, rng, 4)  # after a pool: folded forward into the unpadded conv
    x = b.conv2d(x, rng.normal(0, 0.5, (3, 3, 4, 3)), None)
    x = b.relu(x)
    if forward:
        x = _bn(b, x, rng, 3)  # BN -> flatten -> dense: folded forward
    x = b.flatten(x)
    x = b.dense(x, rng.normal(0, 0.5, (12, 5)), rng.normal(0, 0.1, 5))
    x = _bn(b, x, rng, 5)
    x = b.relu(x)
    x = b.dense(x, rng.normal(0, 0.5, (5, 3)))
    return b.build(output=b.softmax(x))


@pytest.mark.parametrize("forward", [False, True])
def test_fold_batchnorm_matches_float(rng, forward):
    g = _bn_cnn(rng, forward)
    f = fold_batchnorm(g)
    assert not any(l.kind == "batchnorm" for l in f)
    assert any(l.kind == "batchnorm" for l in g)  # the input graph is untouched
    x = rng.uniform(0, 1, (16, 8, 8, 2))
    np.testing.assert_allclose(f.predict(x), g.predict(x), rtol=RTOL, atol=ATOL)


def test_fold_uses_the_layers_own_epsilon(rng):
    b = GraphBuilder((4,))
    x = b.input()
    x = b.dense(x, rng.normal(size=(4, 3)))
    x = b.batchnorm(x, var=np.full(3, 1e-4), epsilon=0.5)
    g = b.build()
    f = fold_batchnorm(g)
    w = f.layer(g.layer("dense_1").name).weights["kernel"]
    np.testing.assert_allclose(w, g.layer("dense_1").weights["kernel"] / np.sqrt(0.5 + 1e-4))


@pytest.mark.parametrize("groups", [1, 2])
def test_batchnorm_folds_exactly_into_a_padded_conv(rng, groups):
    """An input normalisation (BN on the input) before a padded, strided conv: the shift
    becomes one bias per output neuron, exact at the borders."""
    b = GraphBuilder((7, 6, 2))
    x = b.input()
    x = b.batchnorm(x, rng.uniform(0.5, 2, 2), rng.normal(size=2), rng.normal(size=2),
                    rng.uniform(0.5, 2, 2), name="norm")
    x = b.conv2d(x, rng.normal(size=(3, 3, 2 // groups, 4)), rng.normal(size=4), strides=2,
                 padding=(1, 2, 0, 1), groups=groups)
    g = b.build(output=b.relu(x))
    f = fold_batchnorm(g)
    assert [l.kind for l in f] == ["input", "conv2d", "relu"]
    assert f.layer("conv2d_1").weights["bias"].shape == f.layer("conv2d_1").shape
    xs = rng.normal(size=(5, 7, 6, 2))
    np.testing.assert_allclose(f.predict(xs), g.predict(xs), atol=1e-12)


def test_unfoldable_batchnorm_is_kept_and_converted_exactly(rng):
    """relu → BN → relu (pre-activation) and a conv feeding a BN and a shortcut: the BN stays
    in the folded graph (float output unchanged), and convert composes it exactly: the
    float-weight SNN agrees with the graph."""
    from converter.convert import convert
    import emulator
    b = GraphBuilder((6, 6, 2))
    x = b.input()
    x = b.relu(b.conv2d(x, rng.normal(size=(3, 3, 2, 3))))
    x = b.batchnorm(x, rng.uniform(0.5, 2, 3), rng.normal(size=3), rng.normal(size=3),
                    rng.uniform(0.5, 2, 3), name="bn_pre")
    x = b.relu(x)
    c = b.conv2d(x, rng.normal(size=(1, 1, 3, 3)))
    n = b.batchnorm(c, rng.uniform(0.5, 2, 3), rng.normal(size=3), name="bn_shared")
    y = b.relu(b.add(c, n))
    g = b.build(output=b.dense(b.flatten(y), rng.normal(size=(48, 4))), input_scale=1 / 255)
    f = fold_batchnorm(g)
    assert {l.name for l in f if l.kind == "batchnorm"} == {"bn_pre", "bn_shared"}
    xs = rng.integers(0, 256, (40, 6, 6, 2))
    np.testing.assert_allclose(f.predict(xs / 255), g.predict(xs / 255), atol=1e-12)
    net = convert(g, xs / 255, method="robust", weight_bits=None, profile="ideal", map=False)
    res = emulator.run(net, xs, 200, detail="all")
    assert np.mean(res.predictions[-1] == g.predict(xs / 255).argmax(1)) >= 0.9


def test_relu_before_maxpool_is_exact(rng):
    b = GraphBuilder((8, 8, 1))
    x = b.input()
    x = b.conv2d(x, rng.normal(size=(3, 3, 1, 4)))
    x = b.maxpool(x, 2, name="pool")
    x = b.relu(x, name="act")
    x = b.flatten(x)
    g = b.build(output=b.dense(x, rng.normal(size=(36, 3))))
    f = relu_before_maxpool(g)
    kinds = [l.kind for l in f]
    assert kinds.index("relu") < kinds.index("maxpool")
    x = rng.normal(size=(10, 8, 8, 1))
    np.testing.assert_allclose(f.predict(x), g.predict(x), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(prepare(g).predict(x), g.predict(x), rtol=RTOL, atol=ATOL)


def test_count_macs(rng):
    b = GraphBuilder((5, 5, 2))
    x = b.input()
    x = b.conv2d(x, rng.normal(size=(3, 3, 2, 4)))  # 3x3 out: 9*4*9*2 = 648
    x = b.flatten(b.relu(x))
    g = b.build(output=b.dense(x, rng.normal(size=(36, 10))))  # 360
    m = count_macs(g)
    assert m["conv2d_1"] == 648 and m["dense_1"] == 360 and m["total"] == 1008


# ---- normalisation ---------------------------------------------------------------------------

def _relu_graph(c=3):
    b = GraphBuilder((c,))
    x = b.input()
    return b.build(output=b.dense(x, np.eye(c), name="d")), "d"


def _order_stat(v, p):
    v = np.sort(v)
    return v[int(np.ceil(p / 100 * v.size)) - 1]


def test_max_and_percentile_scales_streaming(rng):
    g, name = _relu_graph()
    x = np.maximum(rng.normal(0, 1, (5000, 3)), 0) * np.array([1.0, 2.0, 4.0])
    lam = activation_scales(g, [name], x, percentile=100)[name]
    assert lam == pytest.approx([x.max()])
    for bs in (64, 5000):
        lam = activation_scales(g, [name], x, percentile=99.0, batch_size=bs)[name]
        want = _order_stat(x[x > 0], 99.0)
        # upper edge of the bin holding the ceil(q·n)-th value: at most max/bins above it
        assert want - 1e-12 <= lam[0] <= want + x.max() / 2048 + 1e-12
    per = activation_scales(g, [name], x, percentile=99.0, per_channel=True)[name]
    for c in range(3):
        col = x[:, c]
        want = _order_stat(col[col > 0], 99.0)
        assert want - 1e-12 <= per[c] <= want + col.max() / 2048 + 1e-12
        # activations ≤ λ at the chosen percentile of the non-zero values
        assert np.mean(col[col > 0] <= per[c]) >= 0.99


def test_silent_layer_and_bad_calibration(rng):
    g, name = _relu_graph()
    out = activation_scales(g, [name], -np.ones((10, 3)), percentile=99.9)
    assert out[name] == pytest.approx([1.0]) and out["_silent"] == [name]
    with pytest.raises(DataError, match="NaN"):
        activation_scales(g, [name], np.full((2, 3), np.nan))
    with pytest.raises(DataError, match="percentile"):
        activation_scales(g, [name], np.ones((2, 3)), percentile=0)


def test_share_scales_takes_the_max():
    s = share_scales({"a": np.array([1.0]), "b": np.array([3.0]), "c": np.array([2.0])},
                     [["a", "b"]])
    assert s["a"] == s["b"] == 3.0 and s["c"] == 2.0


def test_normalised_float_graph_keeps_argmax(rng):
    """W_l·λ_{l−1}/λ_l, b_l/λ_l (λ_0 = 1, logits unscaled): same argmax, ReLU outputs ÷ λ_l."""
    b = GraphBuilder((10, 10, 1))
    x = b.input()
    x = b.relu(b.conv2d(x, rng.normal(0, 0.5, (3, 3, 1, 4)), rng.normal(0, 0.1, 4)), name="r1")
    x = b.maxpool(x, 2)
    x = b.relu(b.conv2d(x, rng.normal(0, 0.5, (2, 2, 4, 6)), rng.normal(0, 0.1, 6)), name="r2")
    x = b.flatten(b.avgpool(x, 2))
    x = b.relu(b.dense(x, rng.normal(0, 0.5, (6, 8)), rng.normal(0, 0.1, 8)), name="r3")
    g = prepare(b.build(output=b.dense(x, rng.normal(0, 0.5, (8, 4)), name="logits")))
    cal = rng.uniform(0, 1, (300, 10, 10, 1))
    relus = ["r1", "r2", "r3"]
    for p in (99.9, 100):
        lam = activation_scales(g, relus, cal, p)
        layers, prev = [], 1.0
        for l in g:
            l = l.copy()
            if l.kind in ("conv2d", "dense"):
                nxt = next((c for c in g.consumers(l.name) if c in lam), None)
                ln = float(lam[nxt][0]) if nxt else 1.0
                l.weights["kernel"] = l.weights["kernel"] * prev / ln
                if "bias" in l.weights:
                    l.weights["bias"] = l.weights["bias"] / ln
                prev = ln
            layers.append(l)
        n = g.replace(layers)
        xt = rng.uniform(0, 1, (100, 10, 10, 1))
        np.testing.assert_array_equal(n.predict(xt).argmax(1), g.predict(xt).argmax(1))
        a, an = g.forward(xt, relus), n.forward(xt, relus)
        for r in relus:
            np.testing.assert_allclose(an[r], a[r] / lam[r][0], rtol=1e-9, atol=1e-12)
        top = np.concatenate([an[r][an[r] > 0] for r in relus[:1]])
        assert np.mean(top <= 1 + 1e-12) >= p / 100 - 0.01
