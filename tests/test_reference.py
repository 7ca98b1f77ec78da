"""Hand-derived spike trains and counters for the dense reference simulator.

Every expected number below is worked out in the comments from the contract in
``hw_models/network.py``; nothing is taken from running the code.
"""

from __future__ import annotations

import numpy as np
import pytest

from emulator.event_input import EventBatch
from emulator.reference import dec, dense_matrices, simulate
from hw_models.errors import StateOverflowError
from hw_models.network import CoreNetwork, Population, Projection

from netgen import random_inputs, random_network


# ---- builders ---------------------------------------------------------------------------------
def inp(shape, encoding="analog", input_max=255, core=None):
    return Population("input", shape, kind="input", encoding=encoding, input_max=input_max,
                      core=core)


def neuron(name, shape, **kw):
    kw.setdefault("v_min", -1000)
    kw.setdefault("v_max", 1000)
    return Population(name, shape, **kw)


def dense(src, tgt, w, delay=1, **kw):
    return Projection(f"{src}->{tgt}", src, tgt, "dense", np.asarray(w, np.int16), delay=delay,
                      **kw)


def network(pops, projs, output="out", readout="v", **kw):
    return CoreNetwork(pops, projs, output=output, readout=readout, **kw).validate()


def events(per_sample, shape, n_steps):
    """EventBatch from, per sample, a list of (engine step t >= 1, neuron)."""
    steps, neurons, offsets = [], [], [0]
    for evs in per_sample:
        evs = sorted(evs)
        steps += [t - 1 for t, _ in evs]
        neurons += [n for _, n in evs]
        offsets.append(len(steps))
    return EventBatch(np.asarray(steps, np.int32), np.asarray(neurons, np.int32),
                      np.asarray(offsets, np.int64), tuple(shape), n_steps)


def spike_steps(res, pop, sample=0):
    rec = res["records"][pop]
    return rec[rec[:, 0] == sample][:, 1].tolist()


def if_neuron(x, theta, reset="subtract", rule=">=", delay=1, **kw):
    """analog input (1,1,1) with value x --w=1--> one IF neuron 'out'."""
    net = network([inp((1, 1, 1)), neuron("out", (1,), threshold=theta, reset=reset,
                                          spike_rule=rule, **kw)],
                  [dense("input", "out", [[1]], delay=delay)])
    return net, np.full((1, 1, 1, 1), x, np.int64)


# ---- the neuron ------------------------------------------------------------------------------
@pytest.mark.parametrize("reset, rule, x, expected", [
    # x=3, θ=5, subtract, >=: v = 3, 6→1*, 4, 7→2*, 5→0*, 3, 6→1*, 4, 7→2*, 5→0*
    ("subtract", ">=", 3, [2, 4, 5, 7, 9, 10]),
    # zero, >=: v = 3, 6→0*, 3, 6→0*, ...
    ("zero", ">=", 3, [2, 4, 6, 8, 10]),
    # subtract, >: v = 3, 6→1*, 4, 7→2*, 5 (not > 5), 8→3*, 6→1*, 4, 7→2*, 5
    ("subtract", ">", 3, [2, 4, 6, 7, 9]),
    # x=5, zero, >=: v = 5→0* every step
    ("zero", ">=", 5, list(range(1, 11))),
    # x=5, zero, >: v = 5, 10→0*, 5, 10→0*, ...
    ("zero", ">", 5, [2, 4, 6, 8, 10]),
])
@pytest.mark.parametrize("delay", [0, 2])  # analog current flows every step whatever the delay
def test_if_neuron_constant_analog_input(reset, rule, x, expected, delay):
    net, xa = if_neuron(x, 5, reset, rule, delay=delay)
    res = simulate(net, xa, 10, record=("out",))
    assert spike_steps(res, "out") == expected
    assert res["pop"]["out"]["spikes"] == len(expected)
    assert res["spike_counts"]["out"].tolist() == [[len(expected)]]
    # Q = 3 or 5 ≠ 0 every step: every update active
    assert res["pop"]["out"]["neuron_updates_active"] == 10
    assert res["pop"]["out"]["neuron_updates_inactive"] == 0
    assert res["pop"]["input"]["spikes"] == 0  # analog inputs never spike


def test_chain_delay_zero_vs_one_shifts_by_one_step():
    # a: x=3, θ=5 spikes at 2, 4, 5, 7, 9, 10 (first case above). b: θ=1, w=1 spikes exactly
    # when a spike arrives: with delay 0 at the same steps, with delay 1 one step later
    # (the spike a emits at step 10 arrives at 11 > T and is not delivered).
    out = {}
    for d in (0, 1):
        net = network([inp((1, 1, 1)), neuron("a", (1,), threshold=5),
                       neuron("out", (1,), threshold=1)],
                      [dense("input", "a", [[1]]), dense("a", "out", [[1]], delay=d)])
        res = simulate(net, np.full((1, 1, 1, 1), 3), 10, record=("a", "out"))
        assert spike_steps(res, "a") == [2, 4, 5, 7, 9, 10]
        out[d] = spike_steps(res, "out")
        assert res["proj"]["a->out"]["synaptic_events"] == len(out[d])
        assert res["pop"]["out"]["neuron_updates_active"] == len(out[d])
        assert res["pop"]["out"]["neuron_updates_inactive"] == 10 - len(out[d])
    assert out[0] == [2, 4, 5, 7, 9, 10]
    assert out[1] == [3, 5, 6, 8, 10]


def test_dec_known_values():
    # ⌊100·3072/4096⌋ = 75; ⌊7·2048/4096⌋ = 3; the sign is kept, the magnitude floored
    assert dec(np.array([100, -100, 7, -7, 0]), 1024).tolist() == [75, -75, 5, -5, 0]
    assert dec(np.array([7, -7, 1, -1]), 2048).tolist() == [3, -3, 0, 0]
    assert dec(np.array([123, -123]), 0).tolist() == [123, -123]
    assert dec(np.array([123, -123]), 4096).tolist() == [0, 0]


def test_voltage_leak():
    # decay_v = 2048 halves v (toward zero) each step; x = 8, θ = 15, subtract, >=:
    # v = 0+8 = 8, 4+8 = 12, 6+8 = 14, 7+8 = 15 → spike, 0; then 8, 12, 14, 15* again.
    net, x = if_neuron(8, 15, decay_v=2048)
    res = simulate(net, x, 12, record=("out",))
    assert spike_steps(res, "out") == [4, 8, 12]


def test_current_leak():
    # decay_u = 2048: u = 8, 4+8 = 12, 6+8 = 14, 7+8 = 15, 15, ...; decay_v = 0, θ = 20:
    # v = 8, 20→0*, 14, 29→9*, 24→4*, 19, 34→14*
    net, x = if_neuron(8, 20, decay_u=2048)
    res = simulate(net, x, 7, record=("out",))
    assert spike_steps(res, "out") == [2, 4, 5, 7]


# ---- range policies ----------------------------------------------------------------------------
def _range_net(overflow, w=3):
    # out[0] integrates x·w on the range [-4, 7]; out[1] gets nothing and sits at v = 0, so the
    # prediction (argmax v, ties to index 0) is 0 while v0 >= 0 and 1 while v0 < 0.
    return network([inp((1, 1, 1)),
                    neuron("out", (2,), spiking=False, v_min=-4, v_max=7, overflow=overflow)],
                   [dense("input", "out", [[w, 0]])])


def test_saturate_counts_every_clamp():
    # v0 = 3, 6, 9→7 (sat), 10→7 (sat), 10→7 (sat)
    res = simulate(_range_net("saturate"), np.full((1, 1, 1, 1), 1), 5)
    assert res["pop"]["out"]["saturations"] == 3
    assert res["totals"]["saturations"] == 3
    # negative side: w = -3: v0 = -3, -6→-4 (sat), -7→-4 (sat)
    res = simulate(_range_net("saturate", w=-3), np.full((1, 1, 1, 1), 1), 3)
    assert res["pop"]["out"]["saturations"] == 2
    assert res["predictions"][:, 0].tolist() == [1, 1, 1]


def test_wrap_counts_and_values():
    # range size 12; v0 = 3, 6, 9 → -4 + (13 mod 12) = -3 (wrap), 0, 3, 6, 9 → -3 (wrap)
    res = simulate(_range_net("wrap"), np.full((1, 1, 1, 1), 1), 7)
    assert res["pop"]["out"]["saturations"] == 2
    assert res["predictions"][:, 0].tolist() == [0, 0, 1, 0, 0, 0, 1]


def test_raise_names_population_sample_and_step():
    # sample 0: x = 2: v0 = 2, 4, 6, 8 > 7 at step 4.  sample 1: x = 3: 9 > 7 at step 3.
    # Sample order first: the error is about sample 0, step 4.
    x = np.array([2, 3]).reshape(2, 1, 1, 1)
    with pytest.raises(StateOverflowError, match=r"'out'.*sample 0 at step 4"):
        simulate(_range_net("raise", w=1), x, 6)
    with pytest.raises(StateOverflowError, match=r"'out'.*sample 1 at step 3"):
        simulate(_range_net("raise", w=1), np.array([0, 3]).reshape(2, 1, 1, 1), 6)
    # up to step 2 nothing leaves the range: no error
    res = simulate(_range_net("raise", w=1), x, 2)
    assert res["totals"]["saturations"] == 0


# ---- the max-pool gate -------------------------------------------------------------------------
def test_maxpool_gate_passes_the_winner_only():
    # input (1, 2, 1) events: neuron 0 spikes at steps 1, 2; neuron 1 at 1, 3, 4, 5.
    # One 1×2 window.  Counts after each step and the winner (first of the largest):
    #   t1 [1,1] → 0 (tie), 0 spikes → pass     t2 [2,1] → 0, spikes → pass
    #   t3 [2,2] → 0 (tie), 0 silent → blocked  t4 [2,3] → 1, spikes → pass
    #   t5 [2,4] → 1, spikes → pass
    # 'out' (θ = 1, w = 1) spikes at every passed step.
    net = network([inp((1, 2, 1), "events"), neuron("out", (1, 1, 1), threshold=1)],
                  [Projection("gate", "input", "out", "maxpool", np.array([1], np.int8),
                              delay=0, kernel=(1, 2), stride=(1, 2))], readout="spikes")
    ev = events([[(1, 0), (2, 0), (1, 1), (3, 1), (4, 1), (5, 1)]], (1, 2, 1), 6)
    res = simulate(net, ev, 6, record=("out", "input"))
    assert spike_steps(res, "out") == [1, 2, 4, 5]
    assert res["proj"]["gate"]["synaptic_events"] == 4
    assert res["pop"]["input"]["spikes"] == 6
    assert res["records"]["input"].tolist() == [[0, 1, 0], [0, 1, 1], [0, 2, 0], [0, 3, 1],
                                                [0, 4, 1], [0, 5, 1]]
    # read-out by spike counts: 0 throughout (one neuron), never -1 since it spikes at t1
    assert res["predictions"][:, 0].tolist() == [0] * 6


def test_maxpool_overlapping_windows():
    # input (1, 5, 1), kernel 3 stride 2 → windows {0,1,2} and {2,3,4}; neuron 2 is shared.
    # Events: neuron 2 at steps 1, 2; neuron 4 at 1, 2, 3; neuron 0 at 3.
    #   window A: t1 counts (0,0,1) → 2 passes; t2 (0,0,2) → 2 passes; t3 (1,0,2) → 2 silent
    #   window B: t1 counts (1,0,1) → 2 (first of the largest) passes; t2 (2,0,2) → 2 passes;
    #             t3 (2,0,3) → 4 passes
    # weights 1, θ = 1: A spikes at 1, 2; B at 1, 2, 3 → 5 passed events
    net = network([inp((1, 5, 1), "events"), neuron("out", (1, 2, 1), threshold=1)],
                  [Projection("gate", "input", "out", "maxpool", np.array([1], np.int8),
                              delay=0, kernel=(3, 3), stride=(2, 2), padding=(1, 1, 0, 0))])
    ev = events([[(1, 2), (2, 2), (1, 4), (2, 4), (3, 4), (3, 0)]], (1, 5, 1), 4)
    res = simulate(net, ev, 4, record=("out",))
    assert res["records"]["out"].tolist() == [[0, 1, 0], [0, 1, 1], [0, 2, 0], [0, 2, 1],
                                              [0, 3, 1]]
    assert res["proj"]["gate"]["synaptic_events"] == 5


def _runmax_pair(gate):
    return network([inp((1, 2, 1), "events"), neuron("out", (1, 1, 1), threshold=1)],
                   [Projection("gate", "input", "out", "maxpool", np.array([1], np.int8),
                               delay=0, kernel=(1, 2), stride=(1, 2), gate=gate)],
                   readout="spikes")


def test_maxpool_runmax_passes_the_window_maximum_exactly():
    # input (1, 2, 1) events: neuron 1 at steps 1, 3; neuron 0 at 2, 4 (they leapfrog).
    #   counts  t1 [0,1]  t2 [1,1]  t3 [1,2]  t4 [2,2];  window max M = 1, 1, 2, 2
    # winner gate: the winner (first of the largest) spikes at every step → 4 passes, twice the
    # true maximum; running max: a pass where M rises (t1, t3) → 2 passes = M(4)
    ev = events([[(1, 1), (3, 1), (2, 0), (4, 0)]], (1, 2, 1), 5)
    win = simulate(_runmax_pair("winner"), ev, 5, record=("out",))
    run = simulate(_runmax_pair("runmax"), ev, 5, record=("out",))
    assert spike_steps(win, "out") == [1, 2, 3, 4]
    assert win["proj"]["gate"]["synaptic_events"] == 4
    assert spike_steps(run, "out") == [1, 3]
    assert run["proj"]["gate"]["synaptic_events"] == 2


def test_maxpool_runmax_overlapping_windows_and_repeats():
    # the windows of test_maxpool_overlapping_windows, gate runmax, neuron 4 twice at step 3:
    #   window A {0,1,2}: max 1, 2, 2 → passes at t1, t2;
    #   window B {2,3,4}: counts of (2,3,4) t1 (1,0,1) t2 (2,0,2) t3 (2,0,4) → max 1, 2, 4:
    #   passes 1, 1, 2 (the two arrivals of step 3 pass together: 2·w, 2 events)
    # 'out' θ = 1 w = 1: B gets 2 at t3 → spikes at t3 and (residue 1) at t4
    net = network([inp((1, 5, 1), "events"), neuron("out", (1, 2, 1), threshold=1)],
                  [Projection("gate", "input", "out", "maxpool", np.array([1], np.int8),
                              delay=0, kernel=(3, 3), stride=(2, 2), padding=(1, 1, 0, 0),
                              gate="runmax")])
    ev = events([[(1, 2), (2, 2), (1, 4), (2, 4), (3, 4), (3, 4), (3, 0)]], (1, 5, 1), 4)
    res = simulate(net, ev, 4, record=("out",))
    assert res["records"]["out"].tolist() == [[0, 1, 0], [0, 1, 1], [0, 2, 0], [0, 2, 1],
                                              [0, 3, 1], [0, 4, 1]]
    assert res["proj"]["gate"]["synaptic_events"] == 6


# ---- input encoders ----------------------------------------------------------------------------
def test_rate_encoding_one_third():
    # x/input_max = 1/3: ⌊t/3⌋ rises at t = 3, 6, 9, 12; x = max: every step; x = 0: never
    net = network([inp((1, 1, 3), "rate", input_max=3), neuron("out", (1,), threshold=100)],
                  [dense("input", "out", [[1], [1], [1]])])
    res = simulate(net, np.array([1, 3, 0]).reshape(1, 1, 1, 3), 12, record=("input",))
    rec = res["records"]["input"]
    assert rec[rec[:, 2] == 0][:, 1].tolist() == [3, 6, 9, 12]
    assert rec[rec[:, 2] == 1][:, 1].tolist() == list(range(1, 13))
    assert not np.any(rec[:, 2] == 2)
    assert res["spike_counts"]["input"].tolist() == [[4, 12, 0]]


def test_bernoulli_rate_close_to_probability():
    # spike iff r < x with r uniform on [0, input_max): p = 64/255.  100 neurons × 200 steps =
    # 20000 draws, σ ≈ 0.0031: tolerance 0.015 (about 5 σ).
    net = network([inp((10, 10, 1), "bernoulli", input_max=255),
                   neuron("out", (1,), threshold=10**6, v_max=10**7)],
                  [dense("input", "out", np.ones((100, 1)))])
    x = np.full((1, 10, 10, 1), 64)
    res = simulate(net, x, 200, seed=7)
    rate = res["pop"]["input"]["spikes"] / 20000
    assert abs(rate - 64 / 255) < 0.015
    again = simulate(net, x, 200, seed=7)
    assert np.array_equal(again["spike_counts"]["input"], res["spike_counts"]["input"])
    other = simulate(net, x, 200, seed=8)
    assert not np.array_equal(other["spike_counts"]["input"], res["spike_counts"]["input"])
    # x = 0 never spikes, x = input_max always does
    for val, total in ((0, 0), (255, 20000)):
        r = simulate(net, np.full((1, 10, 10, 1), val), 200, seed=7)
        assert r["pop"]["input"]["spikes"] == total


# ---- routing -----------------------------------------------------------------------------------
def test_messages_and_hops_by_hand():
    # input (1,1,2) rate, x = input_max: both neurons spike at every step t = 1..5.
    # input cores [0, 1]; out cores [1, 2, 2]; placement (chip, x, y):
    #   core 0 (0, 0, 0), core 1 (0, 1, 0), core 2 (1, 2, 3)
    # dense input→out: every input neuron reaches cores {1, 2}:
    #   neuron 0 (core 0): 2 messages, hops |0-1| + (2 + 3 + 1) = 1 + 6 = 7
    #   neuron 1 (core 1): 2 messages (its own core counts), hops 0 + (1 + 3 + 1) = 5
    # per step: 4 messages, 12 hops; over 5 steps 20 and 60.  'out' has no targets.
    # synaptic events: 2 spikes × 3 targets per step = 30; by target core: core 1 holds target
    # 0 (10 events), core 2 targets 1 and 2 (20 events).
    net = network([inp((1, 1, 2), "rate", input_max=1, core=[0, 1]),
                   neuron("out", (3,), spiking=False, core=[1, 2, 2])],
                  [dense("input", "out", np.zeros((2, 3)), delay=0)],
                  placement=np.array([[0, 0, 0], [0, 1, 0], [1, 2, 3]]))
    res = simulate(net, np.ones((1, 1, 1, 2), np.int64), 5)
    assert res["totals"]["messages"] == 20
    assert res["totals"]["hops"] == 60
    assert res["core"]["messages"].tolist() == [10, 10, 0]
    assert res["core"]["hops"].tolist() == [35, 25, 0]
    assert res["core"]["spikes"].tolist() == [5, 5, 0]
    assert res["core"]["synaptic_events"].tolist() == [0, 10, 20]
    # weights are all zero: Q = 0, so every update is inactive (3 neurons × 5 steps)
    assert res["core"]["neuron_updates_inactive"].tolist() == [0, 5, 10]
    assert res["totals"]["neuron_updates_active"] == 0
    assert res["totals"]["spikes"] == 10


def test_identity_routes_only_to_reached_cores():
    # identity (1,1,2)→(1,1,2), targets on cores [1, 2]: neuron 0 → core 1 only (1 hop),
    # neuron 1 (core 1) → core 2 only (5 hops).  3 steps: 6 messages, 18 hops.
    net = network([inp((1, 1, 2), "rate", input_max=1, core=[0, 1]),
                   neuron("out", (1, 1, 2), spiking=False, core=[1, 2])],
                  [Projection("id", "input", "out", "identity", np.array([1, 1], np.int32))],
                  placement=np.array([[0, 0, 0], [0, 1, 0], [1, 2, 3]]))
    res = simulate(net, np.ones((1, 1, 1, 2), np.int64), 3)
    assert (res["totals"]["messages"], res["totals"]["hops"]) == (6, 18)
    # delay 1: the spikes of step 3 never arrive → 2 × 2 = 4 synaptic events
    assert res["proj"]["id"]["synaptic_events"] == 4


# ---- convolution borders -----------------------------------------------------------------------
def _conv_net(encoding="events"):
    # input (3,3,1), 3×3 kernel, stride 2, padding 1 → (2,2,1).  Window rows of oy: 2·oy-1 ..
    # 2·oy+1, so input row 0 feeds oy 0, row 1 feeds oy 0 and 1, row 2 feeds oy 1; same for
    # columns.  Targets reached: corner 1, edge middle 2, centre 4.
    k = np.arange(1, 10).reshape(3, 3, 1, 1)  # w[ky, kx] = 3·ky + kx + 1
    return network([inp((3, 3, 1), encoding), neuron("out", (2, 2, 1), threshold=10**5,
                                                     v_max=10**6)],
                   [Projection("conv", "input", "out", "conv", k.astype(np.int8), delay=0,
                               stride=(2, 2), padding=(1, 1, 1, 1))])


@pytest.mark.parametrize("pixel, reached", [(0, 1), (1, 2), (2, 1), (3, 2), (4, 4), (8, 1)])
def test_conv_synaptic_events_at_borders(pixel, reached):
    net = _conv_net()
    res = simulate(net, events([[(1, pixel), (3, pixel)]], (3, 3, 1), 4), 4)
    assert res["proj"]["conv"]["synaptic_events"] == 2 * reached


def test_conv_all_pixels_and_weights():
    # one spike from each of the 9 pixels: (1 + 2 + 1)² = 16 events
    net = _conv_net()
    res = simulate(net, events([[(1, j) for j in range(9)]], (3, 3, 1), 2), 2)
    assert res["proj"]["conv"]["synaptic_events"] == 16
    # centre pixel (1,1): target (0,0) uses ky = 1 - 0 + 1 = 2, kx = 2 → w = 9; target (1,1)
    # uses ky = kx = 0 → w = 1; target (0,1): ky 2, kx 0 → 7; (1,0): ky 0, kx 2 → 3
    pr = net.projection("conv")
    w, conn = dense_matrices(pr, net.input, net.population("out"))
    assert w[4].tolist() == [9, 7, 3, 1]
    assert conn.sum(axis=1).tolist() == [1, 2, 1, 2, 4, 2, 1, 2, 1]


def test_input_macs():
    # analog (3,3,1), x nonzero at the centre (reaches 4 targets) and at corner 0 (1 target):
    # 5 MACs for sample 0; sample 1 all zero: 0.  Counted once per sample, not per step.
    net = _conv_net("analog")
    x = np.zeros((2, 3, 3, 1), np.int64)
    x[0, 1, 1, 0], x[0, 0, 0, 0] = 7, 2
    res = simulate(net, x, 10)
    assert res["proj"]["conv"]["input_macs"] == 5
    assert res["totals"]["input_macs"] == 5
    assert res["proj"]["conv"]["synaptic_events"] == 0
    assert res["totals"]["messages"] == 0  # analog inputs send no messages
    # dense analog: 2 nonzero inputs × 3 targets = 6
    net = network([inp((2, 2, 1)), neuron("out", (3,))],
                  [dense("input", "out", np.ones((4, 3)))])
    res = simulate(net, np.array([0, 5, 7, 0]).reshape(1, 2, 2, 1), 3)
    assert res["totals"]["input_macs"] == 6


def test_spike_readout_minus_one_until_first_spike():
    # x = 3, θ = 5: the output first spikes at step 2
    net = network([inp((1, 1, 1)), neuron("out", (2,), threshold=5)],
                  [dense("input", "out", [[0, 1]])], readout="spikes")
    res = simulate(net, np.full((1, 1, 1, 1), 3), 4)
    assert res["predictions"][:, 0].tolist() == [-1, 1, 1, 1]


# ---- random networks: internal consistency of the counters --------------------------------------
@pytest.mark.parametrize("seed", range(12))
def test_random_network_counters_consistent(seed):
    net = random_network(seed, overflow="saturate")
    x = random_inputs(net, 4, seed, 16)
    res = simulate(net, x, 16, record=[p.name for p in net.populations], seed=seed)
    tot = res["totals"]
    for key in ("spikes", "synaptic_events", "messages", "hops", "neuron_updates_active",
                "neuron_updates_inactive"):
        assert int(res["core"][key].sum()) == tot[key]
    assert tot["spikes"] == sum(int(c.sum()) for c in res["spike_counts"].values())
    n_neurons = sum(p.size for p in net.populations if not p.is_input)
    assert tot["neuron_updates_active"] + tot["neuron_updates_inactive"] == 4 * 16 * n_neurons
    for p in net.populations:
        rec = res["records"][p.name]
        assert len(rec) == res["pop"][p.name]["spikes"]
        assert np.array_equal(rec, rec[np.lexsort(rec.T[::-1])])
    assert res["predictions"].shape == (16, 4)
