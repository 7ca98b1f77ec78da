"""The running-maximum max-pool from plain IF neurons equals the runmax gate, spike for spike
in counts (converter.maxpool_circuit)."""

from __future__ import annotations

import numpy as np
import pytest

from converter.maxpool_circuit import runmax_circuit
from emulator import engine, reference
from emulator.event_input import EventBatch
from hw_models.network import CoreNetwork, Population, Projection


def _events(rng, n_samples, shape, steps, density):
    n = int(np.prod(shape))
    st, ne, off = [], [], [0]
    for _ in range(n_samples):
        spikes = rng.random((steps, n)) < density  # at most one spike per neuron and step
        t, j = np.nonzero(spikes)
        st.append(t)
        ne.append(j)
        off.append(off[-1] + len(t))
    return EventBatch(steps=np.concatenate(st).astype(np.int32),
                      neurons=np.concatenate(ne).astype(np.int32),
                      offsets=np.asarray(off, np.int64), shape=shape, n_steps=steps)


@pytest.mark.parametrize("geom", [((3, 3), (2, 2), (0, 0, 0, 0)), ((2, 2), (2, 2), (0, 0, 0, 0)),
                                  ((3, 3), (2, 2), (1, 1, 1, 1)), ((2, 3), (1, 2), (0, 1, 1, 0))])
@pytest.mark.parametrize("rule", [">=", ">"])
def test_circuit_counts_equal_the_runmax_gate(geom, rule):
    kernel, stride, pad = geom
    rng = np.random.default_rng(len(rule) * 10 + kernel[1])
    shape, steps = (7, 6, 2), 30
    inp = Population("input", shape, kind="input", encoding="events", input_max=1)
    pops, projs = runmax_circuit("pool", "input", shape, kernel, stride, pad, spike_rule=rule)
    gate_pop = Population("gate", pops[1].shape, threshold=1, spike_rule=">=")
    projs.append(Projection("g", "input", "gate", "maxpool", np.ones(2, np.int8), delay=0,
                            kernel=kernel, stride=stride, padding=pad, gate="runmax"))
    net = CoreNetwork([inp] + pops + [gate_pop], projs, output="gate",
                      readout="spikes").validate()
    # dense spikes (many ties) and sparse spikes
    for density in (0.5, 0.1):
        x = _events(rng, 4, shape, steps, density)
        ref = reference.simulate(net, x, steps, record=("pool", "gate"))
        eng = engine.simulate(net, x, steps, record=("pool", "gate"))
        assert np.array_equal(ref["spike_counts"]["pool"], eng["spike_counts"]["pool"])
        assert np.array_equal(ref["records"]["pool"], eng["records"]["pool"])
        # the circuit's pooled spikes are the runmax gate relay's, step for step
        assert np.array_equal(ref["records"]["pool"], ref["records"]["gate"])
        assert ref["spike_counts"]["pool"].sum() > 0
