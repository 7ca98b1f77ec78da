"""The compiled engine against the dense reference (exact), plus the public run/Result API."""

from __future__ import annotations

import numpy as np
import pytest

import emulator
from emulator import engine, reference
from emulator.result import Result
from hw_models.errors import DataError, FileFormatError, StateOverflowError
from hw_models.network import CoreNetwork, Population, Projection
from hw_models.rng import mix64, mix64_array
from netgen import random_inputs, random_network

STEPS = 12


def assert_same(a, b, path="raw"):
    """Exact equality of two raw results (nested dicts of ints and integer arrays)."""
    if isinstance(a, dict):
        assert set(a) == set(b), f"{path}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            assert_same(a[k], b[k], f"{path}/{k}")
    elif isinstance(a, np.ndarray):
        assert a.dtype.kind == b.dtype.kind and a.shape == b.shape, \
            f"{path}: {a.dtype}{a.shape} != {b.dtype}{b.shape}"
        assert np.array_equal(a, b), f"{path}: arrays differ"
    else:
        assert a == b, f"{path}: {a} != {b}"


def both(net, x, steps, seed):
    """(reference result or error, engine result or error), every population recorded."""
    out = []
    for sim in (reference.simulate, engine.simulate):
        try:
            out.append(sim(net, x, steps, record=[p.name for p in net.populations], seed=seed))
        except StateOverflowError as exc:
            out.append(exc)
    return out


@pytest.mark.parametrize("seed", range(80))
def test_engine_equals_reference(seed):
    net = random_network(seed)
    x = random_inputs(net, 6, seed, STEPS)
    ref, eng = both(net, x, STEPS, seed)
    if isinstance(ref, StateOverflowError):
        assert isinstance(eng, StateOverflowError), "engine did not raise"
        assert str(eng) == str(ref)
        return
    assert not isinstance(eng, Exception), str(eng)
    assert_same(ref, eng)


@pytest.mark.parametrize("encoding", ["analog", "rate", "bernoulli", "events"])
@pytest.mark.parametrize("overflow", ["saturate", "wrap"])
def test_every_encoding_and_policy(encoding, overflow):
    for seed in range(3):
        net = random_network(100 + seed, encoding=encoding, overflow=overflow,
                             pool="maxpool" if seed == 0 else "avgpool", delay=seed)
        x = random_inputs(net, 4, seed, 10)
        ref, eng = both(net, x, 10, seed)
        assert_same(ref, eng)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("gate", ["winner", "runmax"])
def test_maxpool_gates_equal_reference(seed, gate):
    """Both max-pool gates on random networks (overlapping 3/2 and 2/2 windows, padding,
    every encoding, delays, repeated input events)."""
    net = random_network(300 + seed, pool="maxpool", gate=gate,
                         encoding=("rate", "bernoulli", "events")[seed % 3])
    assert [pr.gate for pr in net.projections if pr.kind == "maxpool"] in ([gate], [])
    x = random_inputs(net, 5, seed, STEPS)
    ref, eng = both(net, x, STEPS, seed)
    if isinstance(ref, StateOverflowError):
        assert str(eng) == str(ref)
        return
    assert_same(ref, eng)


def test_raise_names_population_sample_and_step():
    hits = 0
    for seed in range(40):
        net = random_network(seed, overflow="raise")
        x = random_inputs(net, 5, seed, STEPS)
        ref, eng = both(net, x, STEPS, seed)
        if isinstance(ref, StateOverflowError):
            hits += 1
            assert isinstance(eng, StateOverflowError)
            assert str(eng) == str(ref)
            assert "sample" in str(eng) and "step" in str(eng)
        else:
            assert_same(ref, eng)
    assert hits > 3



@pytest.mark.parametrize("overflow", ["saturate", "wrap"])
def test_state_wider_than_32_bits_is_exact(overflow):
    """A v range or a bias beyond 32 bits switches the engine's v/bias state to int64."""
    for seed in (1, 4, 9):
        net = random_network(seed, overflow=overflow)
        assert engine.packed_network(net)[0].v0.dtype == np.int32  # narrow by default
        rng = np.random.default_rng(seed)
        p = next(p for p in net.populations if not p.is_input)
        p.v_min, p.v_max, p.v_init = -(2**36), 2**36, 0
        p.bias = rng.integers(-(2**33), 2**34, p.size)
        p.threshold = 2**35
        packed = engine.packed_network(net)[0]
        assert packed.v0.dtype == np.int64 and packed.bias.dtype == np.int64
        x = random_inputs(net, 4, seed, STEPS)
        ref, eng = both(net, x, STEPS, seed)
        assert ref["pop"][p.name]["spikes"] > 0
        assert_same(ref, eng)


@pytest.mark.parametrize("scale, dtype, acc", [(40, np.int8, np.int32), (300, np.int16, np.int32),
                                               (50000, np.int32, np.int32),
                                               (2**27, np.int32, np.int64)])
def test_narrow_weight_copy_is_exact(scale, dtype, acc):
    """Weights are stored at the narrowest type that holds them, the exponent applied where
    they meet the accumulator; results stay equal to the reference for every width."""
    accs = set()
    for seed in (2, 6, 13):
        net = random_network(seed, weight_scale=scale)
        packed, static = engine.packed_network(net)
        assert packed.w.dtype == dtype
        # the accumulator is int64 exactly when the bound on |Q| leaves 32 bits
        assert packed.acc0.dtype == (np.int64 if static.bound.max() >= 2**31 else np.int32)
        accs.add(packed.acc0.dtype)
        x = random_inputs(net, 4, seed, STEPS)
        ref, eng = both(net, x, STEPS, seed)
        if isinstance(ref, StateOverflowError):
            assert str(eng) == str(ref)
        else:
            assert_same(ref, eng)
    assert np.dtype(acc) in accs


@pytest.mark.parametrize("bias", [False, None])
def test_skipped_and_32_bit_updates_are_exact(bias):
    """IF populations under 'saturate' update in 32-bit lanes, and bias-free ones skip the
    steps where nothing arrives and nothing is at its firing level; sparse inputs (one
    sample all zero) make such steps common, large weights leave neurons above θ after a
    spike (a pending spike must still fire).  Bias-free and biased populations mix when
    ``bias`` is None.  Counters, including inactive updates, must equal the reference's."""
    lanes = skips = 0
    for seed in range(12):
        net = random_network(seed, neuron="if", overflow="saturate", bias=bias,
                             encoding="rate" if seed % 2 else "events")
        P = engine.packed_network(net)[0].pop
        lanes += int(P[:, engine.C.P_LANE32].sum())
        skips += int(P[:, engine.C.P_SKIP].sum())
        x = random_inputs(net, 5, seed, STEPS)
        if seed % 2:  # rare, small inputs: many steps without any input spike
            rng = np.random.default_rng(seed)
            x[rng.random(x.shape) < 0.85] = 0
            x[0] = 0
        else:
            keep = np.random.default_rng(seed).random(len(x.steps)) < 0.15
            x = type(x)(steps=x.steps[keep], neurons=x.neurons[keep],
                        offsets=np.concatenate([[0], np.cumsum(
                            [keep[a:b].sum() for a, b in zip(x.offsets[:-1], x.offsets[1:])])]),
                        shape=x.shape, n_steps=x.n_steps)
        ref, eng = both(net, x, STEPS, seed)
        assert_same(ref, eng)
    assert lanes > 10 and (skips > 10 or bias is None)


def test_spike_lists_of_mostly_firing_populations():
    """More than 8 spikes per 64 neurons, sizes that are not multiples of 64, a small
    population processed after larger ones (the spike-mark compaction in the kernel)."""
    rng = np.random.default_rng(0)
    pops = [Population("in", (200,), kind="input", encoding="rate", input_max=4)]
    projs = []
    for i, n in enumerate((200, 70, 130, 5)):
        pops.append(Population(f"h{i}", (n,), threshold=3, bias=np.arange(n) % 7,
                               reset="subtract" if i % 2 else "zero"))
        projs.append(Projection(f"p{i}", pops[-2].name, pops[-1].name, "dense",
                                rng.integers(-2, 6, (pops[-2].size, n)).astype(np.int8)))
    net = CoreNetwork(pops, projs, output="h3", readout="spikes").validate()
    x = rng.integers(0, 5, (3, 200))
    ref, eng = both(net, x, 10, 0)
    assert ref["pop"]["h0"]["spikes"] > 0.5 * 3 * 10 * 200
    assert_same(ref, eng)

@pytest.mark.parametrize("seed", [3, 7, 11, 19])
def test_threads_and_batch_size_do_not_change_results(seed):
    net = random_network(seed, overflow="saturate")
    x = random_inputs(net, 9, seed, STEPS)
    rec = [p.name for p in net.populations]
    base = engine.simulate(net, x, STEPS, record=rec, seed=seed, threads=1, batch_size=9)
    for threads, bs in ((2, 9), (1, 1), (2, 4)):
        assert_same(base, engine.simulate(net, x, STEPS, record=rec, seed=seed,
                                          threads=threads, batch_size=bs))


def test_mix64_port_matches_hw_models():
    neurons = np.arange(0, 5000, 7, dtype=np.int64)
    for seed, sample, step in ((0, 0, 1), (12345, 7, 99), (2**63 + 5, 2**40, 3)):
        want = mix64_array(seed, sample, step, neurons)
        got = engine.mix64_many(np.uint64(seed & (2**64 - 1)), np.uint64(sample),
                                np.uint64(step), neurons.astype(np.uint64))
        assert np.array_equal(want, got)
        assert int(got[1]) == mix64(seed, sample, step, int(neurons[1]))


def test_hand_computed_spike_train():
    """One IF neuron driven by a constant analog current 3 with θ = 4: v = 3, 6→2, 5→1, 4→0."""
    net = CoreNetwork(
        populations=[Population("in", (1,), kind="input", encoding="analog", input_max=10),
                     Population("out", (1,), threshold=4)],
        projections=[Projection("p", "in", "out", "dense", np.array([[1]], np.int8))],
        output="out", readout="spikes")
    r = emulator.run(net, np.array([[3]]), 5, record=["out"], detail="all")
    assert r.spikes["out"][:, 1].tolist() == [2, 3, 4]
    assert r.counters["input_macs"] == 1 and r.counters["synaptic_events"] == 0
    assert r.predictions[:, 0].tolist() == [-1, 0, 0, 0, 0]


def test_delay_zero_chain_is_same_step():
    pops = [Population("in", (2,), kind="input", encoding="rate", input_max=1)]
    projs = []
    for i in range(3):
        pops.append(Population(f"h{i}", (2,), threshold=1))
        projs.append(Projection(f"p{i}", pops[-2].name, pops[-1].name, "identity",
                                np.array([1, 1]), delay=0))
    net = CoreNetwork(populations=pops, projections=projs, output="h2", readout="spikes")
    r = emulator.run(net, np.array([[1, 0]]), 3, record=["h2"])
    assert r.spikes["h2"].tolist() == [[0, 1, 0], [0, 2, 0], [0, 3, 0]]
    ref = reference.simulate(net, np.array([[1, 0]]), 3, record=["h2"])
    assert np.array_equal(ref["records"]["h2"], r.spikes["h2"])


# ---- the public API ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_net():
    return random_network(5, overflow="saturate", encoding="rate")


def test_run_result_views(small_net):
    x = random_inputs(small_net, 10, 1, 8)
    labels = np.arange(10) % small_net.population("out").size
    r = emulator.run(small_net, x, 8, labels=labels, record=["conv1"], detail="all")
    assert r.predictions.shape == (8, 10) and r.accuracy.shape == (8,)
    assert r.final_accuracy == r.accuracy[-1]
    c = r.counters
    assert c["neuron_updates"] == c["neuron_updates_active"] + c["neuron_updates_inactive"]
    assert c["spikes"] == sum(d["spikes"] for d in r.per_population.values())
    assert int(r.spike_counts["conv1"].sum()) == len(r.spikes["conv1"])
    assert set(r.firing_rates()) == {p.name for p in small_net.populations}
    assert "synaptic events" in r.summary()
    ref = emulator.run(small_net, x, 8, labels=labels, record=["conv1"], reference=True)
    assert np.array_equal(ref.predictions, r.predictions) and ref.counters == r.counters


def test_steps_to_accuracy():
    raw = {"predictions": np.array([[0, 0], [1, 1], [0, 1], [1, 1]]), "spike_counts": {},
           "records": {}, "pop": {}, "proj": {}, "core": {},
           "totals": {"neuron_updates_active": 0, "neuron_updates_inactive": 0}}
    r = Result(raw, 4, labels=np.array([1, 1]))
    assert r.accuracy.tolist() == [0.0, 1.0, 0.5, 1.0]
    assert r.steps_to_accuracy(1.0) == 4 and r.steps_to_accuracy(0.5) == 2
    assert r.steps_to_accuracy(0.0) == 1
    r2 = Result(dict(raw, predictions=np.array([[1, 1], [0, 0]])), 2, labels=np.array([1, 1]))
    assert r2.steps_to_accuracy(0.9) is None


def test_bad_inputs_are_data_errors(small_net):
    shape = small_net.user_input_shape()
    imax = small_net.input.input_max
    with pytest.raises(DataError, match="shape"):
        emulator.run(small_net, np.zeros((2,) + shape[:-1] + (shape[-1] + 1,), int), 3)
    bad = np.zeros((3,) + shape, int)
    bad[2].flat[4] = imax + 1
    with pytest.raises(DataError, match=f"{imax + 1}.*sample 2"):
        emulator.run(small_net, bad, 3)
    with pytest.raises(DataError, match="NaN"):
        emulator.run(small_net, np.full((1,) + shape, np.nan), 3)
    with pytest.raises(DataError, match="model units"):     # floats above the model's range
        emulator.run(small_net, np.full((1,) + shape, imax + 1.0), 3)
    # floats are model units (a hand-built network: = raw units), quantised by rint
    a = emulator.run(small_net, np.full((1,) + shape, 1.4), 3, detail="all")
    b = emulator.run(small_net, np.full((1,) + shape, 1, np.uint8), 3, detail="all")
    np.testing.assert_array_equal(a.predictions, b.predictions)
    with pytest.raises(DataError, match="unknown population"):
        emulator.run(small_net, np.zeros((1,) + shape, int), 3, record=["nope"])
    with pytest.raises(DataError, match="labels"):
        emulator.run(small_net, np.zeros((2,) + shape, int), 3, labels=[1])
    ev = random_inputs(random_network(0, encoding="events"), 1, 0, 3)
    with pytest.raises(DataError, match="EventBatch"):
        emulator.run(small_net, ev, 3)
    ev_net = random_network(0, encoding="events")
    with pytest.raises(DataError, match="EventBatch"):
        emulator.run(ev_net, np.zeros((1,) + ev_net.user_input_shape(), int), 3)


def test_result_save_load_round_trip(tmp_path, small_net):
    x = random_inputs(small_net, 4, 2, 6)
    r = emulator.run(small_net, x, 6, labels=np.zeros(4, int), record=["input", "conv1"],
                     detail="all")
    r.meta["profile"] = "loihi1"
    path = r.save(tmp_path / "r.h5")
    q = Result.load(path)
    assert q.meta["profile"] == "loihi1" and q.steps == 6 and q.n_samples == 4
    assert np.array_equal(q.predictions, r.predictions)
    assert np.array_equal(q.accuracy, r.accuracy) and np.array_equal(q.labels, r.labels)
    assert q.counters == r.counters and q.per_population == r.per_population
    assert q.per_projection == r.per_projection
    for k in r.per_core:
        assert np.array_equal(q.per_core[k], r.per_core[k])
    for k in r.spikes:
        assert np.array_equal(q.spikes[k], r.spikes[k])
    for k in r.spike_counts:
        assert np.array_equal(q.spike_counts[k], r.spike_counts[k])
    data = path.read_bytes()
    (tmp_path / "cut.h5").write_bytes(data[: len(data) // 2])
    with pytest.raises(FileFormatError):
        Result.load(tmp_path / "cut.h5")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5 at all")
    with pytest.raises(FileFormatError):
        Result.load(tmp_path / "junk.h5")
    with pytest.raises(FileFormatError):
        Result.load(tmp_path / "missing.h5")


@pytest.mark.parametrize("seed", range(24))
def test_grouped_conv_engine_equals_reference(seed):
    """Grouped and depthwise convolutions (from spiking maps and from every input encoding,
    analog included), every spike, raster and counter equal."""
    net = random_network(1000 + seed, grouped=True)
    assert any(pr.groups > 1 for pr in net.projections)
    x = random_inputs(net, 5, seed, STEPS)
    ref, eng = both(net, x, STEPS, seed)
    if isinstance(ref, StateOverflowError):
        assert isinstance(eng, StateOverflowError) and str(eng) == str(ref)
        return
    assert not isinstance(eng, Exception), str(eng)
    assert_same(ref, eng)


def test_cached_kernels_dropped_when_an_engine_source_changes(tmp_path, monkeypatch):
    """Numba invalidates a cached function only when its own file changes; the engine drops
    its cached kernels when any source they depend on (e.g. emulator/work.py) changes."""
    from emulator import _jit

    src = tmp_path / "work.py"
    src.write_text("A = 1\n")
    monkeypatch.setattr(_jit, "_SOURCES", [src])
    cache = tmp_path / "__pycache__"
    cache.mkdir()

    def fill():
        for name in ("kernels._run_chunk-900.py311.nbi", "kernels._run_chunk-900.py311.1.nbc",
                     "work.route_spikes-230.py311.nbi", "engine._sum_counts-476.py311.nbi"):
            (cache / name).write_text("x")

    fill()
    assert _jit.drop_stale_cache(cache)  # no stamp yet: dropped, stamp written
    assert sorted(p.name for p in cache.iterdir()) == [
        "engine._sum_counts-476.py311.nbi", "kernel-sources.sha256"]
    fill()
    assert not _jit.drop_stale_cache(cache)  # sources unchanged: the cache is kept
    assert len(list(cache.glob("kernels.*"))) == 2
    src.write_text("A = 2\n")  # an edit of a source the kernels depend on
    assert _jit.drop_stale_cache(cache)
    assert not list(cache.glob("kernels.*")) and not list(cache.glob("work.*"))
