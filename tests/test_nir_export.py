"""NIR export of a CoreNetwork (converter.nir_export) and the way back
(converter.nir_import.network_from_nir): bit-for-bit round trips on random networks covering
every projection kind NIR can carry, equal engine results after the trip, the file read by the
plain ``nir`` package, and a clear error for what NIR cannot carry."""

from __future__ import annotations

import json

import numpy as np
import pytest

nir = pytest.importorskip("nir")

from netgen import random_inputs, random_network

import emulator
from converter.nir_export import export_nir, network_to_nir
from converter.nir_import import (
    is_neuroemu_nir,
    load_nir,
    load_nir_network,
    network_from_nir,
)
from hw_models.errors import ConversionError, StateOverflowError
from hw_models.network import CoreNetwork, Population, Projection

_POP = ("name", "shape", "kind", "threshold", "reset", "decay_u", "decay_v", "v_init", "v_min",
        "v_max", "overflow", "spike_rule", "spiking", "encoding", "input_max")
_PRJ = ("name", "source", "target", "kind", "exponent", "delay", "kernel", "stride", "padding",
        "dilation")


def assert_same_network(a: CoreNetwork, b: CoreNetwork):
    """Every field, every array and its dtype."""
    assert [p.name for p in a.populations] == [p.name for p in b.populations]
    for p, q in zip(a.populations, b.populations):
        for f in _POP:
            assert getattr(p, f) == getattr(q, f), (p.name, f)
        for f in ("bias", "core"):
            x, y = getattr(p, f), getattr(q, f)
            assert (x is None) == (y is None), (p.name, f)
            if x is not None:
                assert x.dtype == y.dtype and np.array_equal(x, y), (p.name, f)
    assert [p.name for p in a.projections] == [p.name for p in b.projections]
    for p, q in zip(a.projections, b.projections):
        for f in _PRJ:
            assert getattr(p, f) == getattr(q, f), (p.name, f)
        assert getattr(p, "gate", None) == getattr(q, "gate", None), p.name
        assert p.weights.dtype == q.weights.dtype and p.weights.shape == q.weights.shape
        assert np.array_equal(p.weights, q.weights), p.name
    for f in ("output", "readout", "input_layout", "profile"):
        assert getattr(a, f) == getattr(b, f), f
    assert (a.placement is None) == (b.placement is None)
    if a.placement is not None:
        assert np.array_equal(a.placement, b.placement)
    assert json.dumps(a.meta, sort_keys=True) == json.dumps(b.meta, sort_keys=True)
    assert getattr(a, "input_spec", None) == getattr(b, "input_spec", None)


def carried(seed, **ov):
    """A random network NIR can carry: integrate-and-fire neurons (the kinds of projection,
    delays, resets, rules, overflow, biases, exponents, dtypes, cores as drawn)."""
    net = random_network(seed, symmetric=True, **ov)
    for p in net.populations:
        if not p.is_input:
            p.decay_u, p.decay_v = 4096, 0
    by = {p.name: p for p in net.populations}
    net.projections = [pr for pr in net.projections       # recurrent dense into a map
                       if not (pr.kind == "dense" and len(by[pr.target].shape) == 3)]
    return net.validate()


SEEDS = range(40)


@pytest.mark.parametrize("seed", SEEDS)
def test_round_trip_in_memory_is_exact(seed):
    net = carried(seed)
    assert_same_network(net, network_from_nir(network_to_nir(net)))


def test_every_carried_projection_kind_is_covered():
    kinds = {pr.kind for s in SEEDS for pr in carried(s).projections}
    assert kinds == {"dense", "conv", "avgpool", "maxpool", "identity"}
    gates = {pr.gate for s in SEEDS for pr in carried(s).projections if pr.kind == "maxpool"}
    assert gates == {"winner", "runmax"}
    encs = {carried(s).input.encoding for s in SEEDS}
    assert encs == {"analog", "rate", "bernoulli", "events"}


@pytest.mark.parametrize("seed", [0, 3, 7, 11, 19])
def test_file_round_trip_and_engine_results_equal(seed, tmp_path):
    net = carried(seed)
    path = export_nir(net, tmp_path / "net.nir")
    assert is_neuroemu_nir(path) and not is_neuroemu_nir(tmp_path / "missing.nir")
    back = load_nir_network(path)
    assert_same_network(net, back)
    x = random_inputs(net, 3, seed, 10)
    try:
        a = emulator.run(net, x, 10, seed=seed, detail="all")
    except StateOverflowError as exc:   # overflow policy 'raise': raises both times
        with pytest.raises(type(exc)):
            emulator.run(back, x, 10, seed=seed)
        return
    b = emulator.run(back, x, 10, seed=seed, detail="all")
    assert np.array_equal(a.predictions, b.predictions)
    assert a.counters == b.counters
    for k in a.spike_counts:
        assert np.array_equal(a.spike_counts[k], b.spike_counts[k])


def tiny_conv_net():
    pops = [Population("in", (4, 4, 2), kind="input", input_max=7),
            Population("c", (4, 4, 3), threshold=9, bias=np.tile([1, -2, 0], 16),
                       reset="zero", spike_rule=">"),
            Population("p", (2, 2, 3), threshold=5),
            Population("o", (5,), threshold=3, spiking=False, bias=np.arange(5))]
    rng = np.random.default_rng(1)
    prj = [Projection("conv", "in", "c", "conv", rng.integers(-3, 4, (3, 3, 2, 3)).astype(np.int8),
                      exponent=2, padding=(1, 1, 1, 1), delay=0),
           Projection("pool", "c", "p", "avgpool", np.array([1, 2, 3], np.int16),
                      kernel=(2, 2), stride=(2, 2), delay=1),
           Projection("fc", "p", "o", "dense", rng.integers(-5, 6, (12, 5)).astype(np.int32))]
    return CoreNetwork(pops, prj, output="o").validate()


def test_nodes_read_by_the_nir_package(tmp_path):
    """Integers stay integers, NIR's own node types and layouts, semantics in metadata."""
    net = tiny_conv_net()
    path = export_nir(net, tmp_path / "t.nir")
    g = nir.read(str(path))
    kinds = {k: type(v).__name__ for k, v in g.nodes.items()}
    assert kinds["in"] == "Input" and kinds["c"] == "IF" and kinds["p"] == "IF"
    assert kinds["o"] == "I" and kinds["conv"] == "Conv2d" and kinds["pool"] == "SumPool2d"
    assert kinds["fc"] == "Affine" and kinds["pool_scale"] == "Scale"
    assert kinds["p_flatten"] == "Flatten" and kinds["output"] == "Output"
    conv = g.nodes["conv"]
    assert np.issubdtype(conv.weight.dtype, np.integer)
    # OIHW, effective weights w·2^e, and the per-channel bias of population c
    assert np.array_equal(conv.weight, (net.projections[0].weights.astype(np.int64) << 2)
                          .transpose(3, 2, 0, 1))
    assert conv.bias.tolist() == [1, -2, 0]
    th = g.nodes["c"].v_threshold
    assert np.issubdtype(th.dtype, np.integer) and th.shape == (3, 4, 4) and np.all(th == 9)
    md = json.loads(g.nodes["p"].metadata["neuroemu"])
    assert md["reset"] == "subtract" and md["spike_rule"] == ">=" and md["overflow"] == "saturate"
    pm = json.loads(g.nodes["pool"].metadata["neuroemu"])
    assert pm["delay"] == 1 and pm["weight_dtype"] == "int16" and not pm["gate"]
    assert json.loads(g.nodes["conv"].metadata["neuroemu"])["exponent"] == 2
    # the Affine's columns follow NIR's (C, H, W) flattening of p
    fc = g.nodes["fc"]
    W = net.projections[2].weights.astype(np.int64)          # rows in HWC order
    assert np.array_equal(fc.weight.T.reshape(3, 2, 2, 5).transpose(1, 2, 0, 3).reshape(12, 5),
                          W)
    assert fc.bias.tolist() == [0, 1, 2, 3, 4]
    assert_same_network(net, load_nir_network(path))


def test_the_float_importer_still_reads_plain_nir(tmp_path):
    """A neuroemu NIR file is also a NIR model: the float importer refuses what it cannot
    read by name (here the Scale node of the pool weights), never silently."""
    from hw_models.errors import UnsupportedLayerError
    path = export_nir(tiny_conv_net(), tmp_path / "t.nir")
    with pytest.raises(UnsupportedLayerError, match="Scale"):
        load_nir(path)


@pytest.mark.parametrize("change, words", [
    (lambda n: setattr(n.population("c"), "decay_v", 100), ["'c'", "leaky", "decay_v=100"]),
    (lambda n: setattr(n.projections[0], "padding", (1, 1, 0, 2)),     # same 4x4 output
     ["'conv'", "asymmetric padding", "(1, 1, 0, 2)"]),
])
def test_what_nir_cannot_carry_is_named(change, words):
    net = tiny_conv_net()
    change(net)
    with pytest.raises(ConversionError) as e:
        network_to_nir(net)
    for w in words:
        assert w in str(e.value)


def test_grouped_conv_refused_by_name():
    net = tiny_conv_net()
    c = net.population("c")
    net.populations[1] = Population(**{**c.__dict__, "shape": (4, 4, 2), "bias": None})
    pool = net.projection("pool")
    pool.weights = pool.weights[:2]
    net.populations[2] = Population(**{**net.population("p").__dict__, "shape": (2, 2, 2)})
    fc = net.projection("fc")
    fc.weights = fc.weights[:8]
    conv = net.projection("conv")
    conv.weights, conv.groups = conv.weights[:, :, :1, :2].copy(), 2  # depthwise
    net.validate()
    with pytest.raises(ConversionError, match="'conv' is a grouped convolution"):
        network_to_nir(net)


def test_non_square_kernel_and_dense_into_map_refused():
    net = tiny_conv_net()
    pr = net.projections[0]
    pr.weights = pr.weights[:, :2]
    pr.kernel = (3, 2)
    pr.padding = (1, 1, 0, 0)
    net.population("c").shape = (4, 3, 3)
    net.population("c").bias = np.tile([1, -2, 0], 12)
    net.populations[2].shape = (2, 1, 3)
    net.projections[2].weights = net.projections[2].weights[:6]
    with pytest.raises(ConversionError, match="non-square kernel"):
        network_to_nir(net)
    pops = [Population("in", (4,), kind="input"), Population("m", (2, 2, 1))]
    bad = CoreNetwork(pops, [Projection("d", "in", "m", "dense", np.ones((4, 4), np.int8))],
                      output="m")
    with pytest.raises(ConversionError, match="Unflatten"):
        network_to_nir(bad)


def test_not_a_neuroemu_graph_is_refused():
    g = nir.NIRGraph(nodes={"i": nir.Input({"input": np.array([2])}),
                            "o": nir.Output({"output": np.array([2])})},
                     edges=[("i", "o")])
    with pytest.raises(ConversionError, match="not a NIR graph written by neuroemu"):
        network_from_nir(g)


def test_cli_export_then_fit_and_run_the_nir_file(tmp_path, capsys):
    from neuroemu.cli import EXIT_ERROR, main
    net = tiny_conv_net()
    h5, out = tmp_path / "net.h5", tmp_path / "net.nir"
    net.save(h5)
    assert main(["export", str(h5), "-o", str(out)]) == 0
    assert out.exists() and "wrote" in capsys.readouterr().out
    assert main(["fit", str(out), "--profile", "ideal"]) == 0
    assert capsys.readouterr().out.startswith("Feasibility on ideal: needs")
    leaky = tiny_conv_net()
    leaky.population("c").decay_u = 0
    leaky.save(h5)
    assert main(["export", str(h5), "-o", str(tmp_path / "leaky.nir")]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith("neuroemu: error: NIR export: population 'c' is leaky")
    assert not (tmp_path / "leaky.nir").exists()


def test_names_with_slashes_round_trip(tmp_path):
    """ONNX-style names ("/conv1/Conv") become HDF5-safe node names; the metadata keeps them."""
    net = tiny_conv_net()
    ren = {"in": "/input", "c": "/conv1/Relu", "p": "/pool/AveragePool", "o": "out.logits"}
    for p in net.populations:
        p.name = ren[p.name]
    for pr in net.projections:
        pr.source, pr.target = ren[pr.source], ren[pr.target]
        pr.name = "/" + pr.name + "/op"
    net.output = ren["o"]
    net.validate()
    back = load_nir_network(export_nir(net, tmp_path / "slash.nir"))
    assert_same_network(net, back)


def test_converted_digits_network_round_trips_with_equal_results(tmp_path):
    """The bundled digits CNN converted for Loihi 1 (conv, avg-pool, dense, analog input, a
    non-spiking read-out): same network and same engine results after NIR."""
    pytest.importorskip("sklearn")
    from neuroemu.data import load_data
    from neuroemu.pipeline import convert_model, load_network
    net = convert_model("digits", "digits-train", "ecc", 8, "loihi1", calib_samples=100)
    back = load_network(export_nir(net, tmp_path / "digits.nir"))
    assert_same_network(net, back)
    x = np.asarray(load_data("digits").subset(30).x)[..., None]    # (N, 8, 8, 1)
    a, b = emulator.run(net, x, 24, detail="all"), emulator.run(back, x, 24, detail="all")
    assert np.array_equal(a.predictions, b.predictions) and a.counters == b.counters
