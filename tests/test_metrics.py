"""NeuroBench metrics (hw_models.metrics): hand-computed values on a tiny network, and the
fan-out geometry checked against the engine's own counted synaptic events."""

from __future__ import annotations

import numpy as np
import pytest
from netgen import random_inputs, random_network

import emulator
from emulator.compile import pack
from hw_models.errors import DataError, StateOverflowError
from hw_models.metrics import fanout, neurobench_metrics, signed_bits, static_metrics
from hw_models.network import CoreNetwork, Population, Projection


def tiny():
    """input (3,) analog -> hidden (2,) IF, θ 4 -> out (2,) non-spiking, θ 1; delay 0.

    W1 = [[1, 0], [2, 3], [0, 0]]  W2 = [[1, -1], [0, 2]]
    """
    pops = [Population("input", (3,), kind="input", input_max=10),
            Population("hidden", (2,), threshold=4),
            Population("out", (2,), threshold=1, spiking=False)]
    prj = [Projection("w1", "input", "hidden", "dense", np.array([[1, 0], [2, 3], [0, 0]],
                                                                   np.int8), delay=0),
           Projection("w2", "hidden", "out", "dense", np.array([[1, -1], [0, 2]], np.int8),
                      delay=0)]
    return CoreNetwork(pops, prj, output="out").validate()


def test_signed_bits():
    assert signed_bits(np.array([0])) == 1
    assert signed_bits(np.array([-1, 0])) == 1
    assert signed_bits(np.array([1])) == 2
    assert signed_bits(np.array([-128, 127])) == 8
    assert signed_bits(np.array([-7, 7])) == 4
    assert signed_bits(np.array([-8])) == 4


def test_static_metrics_by_hand():
    m = static_metrics(tiny())
    assert m["ParameterCount"] == 6 + 4                     # weights, no biases
    assert m["ConnectionSparsity"] == pytest.approx(4 / 10)  # 3 zeros in W1, 1 in W2
    # W1 0..3: 3 bits x 6; W2 -1..2: 3 bits x 4; θ 4: 4 bits; θ 1: 2 bits -> 36 bits
    assert m["Footprint"] == 5


def test_biases_count_per_channel_when_shared():
    net = tiny()
    net.population("hidden").bias = np.array([5, -3])
    assert static_metrics(net)["ParameterCount"] == 12
    c = Population("c", (2, 2, 3), bias=np.tile([1, 2, 3], 4))
    d = Population("d", (2, 2, 3), bias=np.arange(12))
    from hw_models.metrics import _bias_count
    assert _bias_count(c) == 3 and _bias_count(d) == 12


def test_run_metrics_by_hand():
    net = tiny()
    x = np.array([[2, 1, 0]])
    res = emulator.run(net, x, 4, detail="all")
    # hidden input per step: x @ W1 = [4, 3]: neuron 0 fires every step (4 spikes), neuron 1
    # at v = 3, 6, 5, 4 -> steps 2, 3, 4 (3 spikes)
    assert res.spike_counts["hidden"].tolist() == [[4, 3]]
    m = neurobench_metrics(net, res.spike_counts, steps=4, samples=1,
                           input_nonzero=(x != 0).sum(axis=0))
    assert m["ActivationSparsity"] == pytest.approx(1 - 7 / 8)
    s = m["SynapticOperations"]
    assert s["Effective_MACs"] == 1 + 2          # x0 through 1 non-zero weight, x1 through 2
    assert s["Effective_ACs"] == 4 * 2 + 3 * 1   # W2 row 0 has 2 non-zero weights, row 1 one
    assert s["Dense"] == 4 * (3 * 2 + 2 * 2)
    # the engine counts deliveries by geometry, zero weights included: 7 spikes x 2 targets
    assert res.per_projection["w2"]["synaptic_events"] == 14
    assert res.counters["input_macs"] == 2 * 2    # two non-zero pixels x 2 targets


def test_missing_input_counts_leave_macs_unknown():
    net = tiny()
    res = emulator.run(net, np.array([[2, 1, 0]]), 4, detail="all")
    m = neurobench_metrics(net, res.spike_counts, steps=4, samples=1)
    assert m["SynapticOperations"]["Effective_MACs"] is None
    with pytest.raises(DataError):
        neurobench_metrics(net, {}, steps=4, samples=1)


@pytest.mark.parametrize("seed", range(12))
def test_fanout_matches_engine_geometry(seed):
    """All-synapse fan-out equals the engine's targets per spike; with delay 0, spikes x
    fan-out equals the engine's counted events on every dense/conv projection."""
    net = random_network(seed, delay=0, recurrent=False)
    _, st = pack(net)
    by = {p.name: p for p in net.populations}
    for k, pr in enumerate(net.projections):
        if pr.kind in ("dense", "conv"):
            f = fanout(pr, by[pr.source].shape, by[pr.target].shape, nonzero=False)
            assert np.array_equal(f, st.ev_tot[k]), pr.name
            nz = fanout(pr, by[pr.source].shape, by[pr.target].shape, nonzero=True)
            assert np.all(nz <= f)
    x = random_inputs(net, 3, seed, 10)
    try:
        res = emulator.run(net, x, 10, detail="all")
    except StateOverflowError:   # an overflow policy 'raise' network: geometry checked above
        return
    for pr in net.projections:
        src = by[pr.source]
        if pr.kind in ("dense", "conv") and not (src.is_input and src.encoding == "analog"):
            f = fanout(pr, src.shape, by[pr.target].shape, nonzero=False)
            ev = int(res.spike_counts[pr.source].sum(axis=0).astype(np.int64) @ f)
            assert ev == res.per_projection[pr.name]["synaptic_events"], pr.name


def test_fanout_of_a_grouped_convolution():
    """Depthwise 1x1 (groups = C = 2): each channel reaches only its own output channel."""
    from types import SimpleNamespace
    pr = SimpleNamespace(name="dw", kind="conv", weights=np.array([[[[3, 0]]]]), kernel=(1, 1),
                         stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1), groups=2)
    assert fanout(pr, (3, 3, 2), (3, 3, 2), nonzero=False).tolist() == [1, 1] * 9
    assert fanout(pr, (3, 3, 2), (3, 3, 2), nonzero=True).tolist() == [1, 0] * 9
