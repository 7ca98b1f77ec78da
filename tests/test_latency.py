"""The latency model: per-step, per-core work counted by the engine (== the dense reference),
step time = the slowest core + mesh + barrier, hand-computed on a tiny network."""

from __future__ import annotations

import numpy as np
import pytest

import emulator
from emulator import engine, reference
from hw_models.errors import DataError
from hw_models.latency import Timing, settle_steps, step_latency_report, timing_for
from hw_models.network import CoreNetwork, Population, Projection
from netgen import random_inputs, random_network
from test_engine import assert_same

NS = 1e-9


def _timing(**kw):
    """Powers of two per event (ns) so every hand-computed sum says which events it holds."""
    base = dict(profile="loihi1", t_neuron_access_s=1 * NS, t_neuron_update_s=2 * NS,
                t_spike_s=4 * NS, t_msg_out_s=8 * NS, t_msg_in_s=16 * NS, t_syn_event_s=32 * NS,
                t_hop_ew_s=64 * NS, t_hop_ns_s=128 * NS, barrier_s=((0, 1000 * NS),),
                synaptic_charge="delivery", active_update="input", mesh="route",
                published=True)
    base.update(kw)
    return Timing(**base)


def _tiny():
    """in (2 rate neurons, core 0) → a (2 IF neurons, cores 1, 2) → b (1 read-out, core 3).

    Input value 1 of 1: each input neuron spikes every step; a gets Q = 1 from step 2 (delay
    1) and spikes at steps 2 and 3; b integrates from step 3.  Mesh: core 0 at (0, 0), 1 at
    (1, 0), 2 at (0, 1), 3 at (1, 1)."""
    pops = [Population("in", (2,), kind="input", encoding="rate", input_max=1,
                       core=np.array([0, 0])),
            Population("a", (2,), threshold=1, core=np.array([1, 2])),
            Population("b", (1,), spiking=False, core=np.array([3]))]
    projs = [Projection("p", "in", "a", "dense", np.array([[1, 0], [0, 1]], np.int8), delay=1),
             Projection("q", "a", "b", "dense", np.array([[1], [1]], np.int8), delay=1)]
    place = np.array([[0, 0, 0], [0, 1, 0], [0, 0, 1], [0, 1, 1]], np.int32)
    return CoreNetwork(populations=pops, projections=projs, output="b", readout="v",
                       placement=place)


def test_hand_computed_step_times_delivery():
    """Step 1: core 0 sends 2 spikes × 2 messages (4 · 8 = 32 ns), the slowest; the longest
    route is one north-south hop (128 ns); barrier 1000 ns → 1160 ns.  Steps 2 and 3: cores 1
    and 2 each receive 2 messages with 2 synaptic events (2 · 16 + 2 · 32 = 96 ns), more than
    they send (1 + 2 + 4 + 8 = 15 ns) → 96 + 128 + 1000 = 1224 ns; in step 3 core 3 ties at
    96 ns and the first core wins."""
    net, x = _tiny(), np.array([[1, 1]])
    for sim in (engine.simulate, reference.simulate):
        raw = sim(net, x, 3, timing=_timing())
        w = raw["work"]
        assert w["step_time_ps"][:, 0].tolist() == [1160_000, 1224_000, 1224_000]
        assert w["critical"].tolist() == [1, 2, 0, 0]
        assert w["core_step_time_ps"].tolist() == [[32_000, 1_000, 1_000, 1_000],
                                                   [32_000, 96_000, 96_000, 1_000],
                                                   [32_000, 96_000, 96_000, 96_000]]
        c = w["core"]
        assert c["messages_out"].tolist() == [12, 2, 2, 0]
        assert c["messages_in"].tolist() == [0, 4, 4, 2]  # the last step's input never arrives
        assert c["synaptic_events"].tolist() == [0, 4, 4, 2]
        assert c["spikes"].tolist() == [0, 2, 2, 0]  # input spikes cost no neuron time
        assert c["neuron_updates_active"].tolist() == [0, 2, 2, 1]
        assert w["neurons_per_core"].tolist() == [0, 1, 1, 1]
        # the same totals as the run's own per-core counters
        assert c["synaptic_events"].tolist() == raw["core"]["synaptic_events"].tolist()
        assert c["messages_out"].tolist() == raw["core"]["messages"].tolist()


def test_hand_computed_step_times_emission_and_state():
    """Charged at emission, the input spikes of step 1 already cost cores 1 and 2 their 96 ns
    in step 1, and a's step-3 spikes cost core 3 in step 3.  Without the mesh term: max + 1000.
    State convention: b's v ≠ 0 after step 3, but its update at step 3 already had input."""
    net, x = _tiny(), np.array([[1, 1]])
    tm = _timing(synaptic_charge="emission", active_update="state", mesh="none")
    for sim in (engine.simulate, reference.simulate):
        w = sim(net, x, 3, timing=tm)["work"]
        assert w["step_time_ps"][:, 0].tolist() == [1096_000, 1096_000, 1096_000]
        assert w["core"]["messages_in"].tolist() == [0, 6, 6, 4]
        assert w["core"]["synaptic_events"].tolist() == [0, 6, 6, 4]
        assert w["core"]["neuron_updates_active_state"].tolist() == [0, 2, 2, 1]


def test_slowest_core_rule():
    """A step lasts as long as its busiest core: Σ_t max_c ≥ max_c Σ_t, strictly when the load
    moves between cores (here 224 ns of core time against 193 ns on the busiest core)."""
    net, x = _tiny(), np.array([[1, 1]])
    w = engine.simulate(net, x, 3, timing=_timing(mesh="none", barrier_s=()))["work"]
    per_core = w["core_step_time_ps"]
    assert np.array_equal(w["step_time_ps"][:, 0], per_core.max(axis=1))
    assert w["step_time_ps"].sum() == 224_000 > per_core.sum(axis=0).max() == 193_000


@pytest.mark.parametrize("seed,over", [(s, {}) for s in range(10)]
                         + [(s, {"pool": "maxpool", "gate": g}) for s in (20, 21)
                            for g in ("winner", "runmax")])
def test_work_counters_equal_reference(seed, over):
    net = random_network(seed, overflow="saturate", **over)
    x = random_inputs(net, 4, seed, 10)
    for tm in (timing_for("loihi1"), timing_for("loihi1-silicon", mesh="none")):
        assert_same(reference.simulate(net, x, 10, seed=seed, timing=tm),
                    engine.simulate(net, x, 10, seed=seed, timing=tm))


def _without_and_with_bias(pops, projs, biased, rng):
    """The network of ``pops`` and ``projs`` (read-out "o" by v) and its packing, first with
    the ``biased`` populations' biases zero, then random in [-2, 2]."""
    for with_bias in (False, True):
        for p in biased:
            p.bias = (rng.integers(-2, 3, p.size) if with_bias else np.zeros(p.size)).astype(
                np.int32)
        net = CoreNetwork(populations=pops, projections=projs, output="o",
                          readout="v").validate()
        yield (net,) + tuple(engine.packed_network(net))


def test_work_counted_in_the_update_loop_equals_reference():
    """32-bit populations whose runs of neurons on one core are long sum their active updates
    inside the update loop (kernels._sat_if32_sums, one call per run); populations with many
    short runs mark them in the update loop for work.count_marks (kernels._sat_if32_work).
    Both, with and without bias, against the reference, under both active-update
    conventions."""
    from emulator import work as WK
    rng = np.random.default_rng(7)
    v = dict(v_min=-(2**20), v_max=2**20 - 1, overflow="saturate")
    conv_core = np.repeat([1, 2], 1152)  # 24 x 24 x 4: two runs (sums in the loop)
    pool_core = 3 + np.arange(576) % 2  # 12 x 12 x 4: one-neuron runs (marks)
    pops = [Population("in", (26, 26, 1), kind="input", encoding="rate", input_max=4,
                       core=np.zeros(676, np.int32)),
            Population("c", (24, 24, 4), threshold=9, core=conv_core, **v),
            Population("p", (12, 12, 4), threshold=5, core=pool_core, **v),
            Population("d", (80,), threshold=7, core=np.full(80, 5), **v),
            Population("o", (4,), spiking=False, core=np.full(4, 6), **v)]
    projs = [Projection("pc", "in", "c", "conv", rng.integers(-3, 5, (3, 3, 1, 4)).astype(np.int8),
                        delay=1),
             Projection("cp", "c", "p", "avgpool", np.full(4, 2, np.int8), kernel=(2, 2),
                        stride=(2, 2), delay=1),
             Projection("pd", "p", "d", "dense", rng.integers(-3, 4, (576, 80)).astype(np.int8),
                        delay=1),
             Projection("do", "d", "o", "dense", rng.integers(-3, 4, (80, 4)).astype(np.int8),
                        delay=1)]
    for net, pk, st in _without_and_with_bias(pops, projs, pops[1:4], rng):
        assert WK.pack_work(net, pk, st, _timing()).pinfo[1:3, WK.I_WORK].tolist() == [1, 2]
        x = rng.integers(0, 5, (3, 26, 26, 1))
        for tm in (_timing(active_update="input"), _timing(active_update="state")):
            raw = engine.simulate(net, x, 12, timing=tm)
            assert raw["work"]["core"]["neuron_updates_active"].sum() > 0
            assert_same(reference.simulate(net, x, 12, timing=tm), raw)


def test_threads_batches_and_single_samples_agree():
    net = random_network(3, overflow="saturate", encoding="rate")
    x = random_inputs(net, 7, 3, 9)
    tm = timing_for("loihi1")
    a = engine.simulate(net, x, 9, timing=tm, threads=1, batch_size=7)["work"]
    b = engine.simulate(net, x, 9, timing=tm, threads=2, batch_size=2)["work"]
    assert_same(a, b)
    one = [engine.simulate(net, x[i:i + 1], 9, timing=tm)["work"] for i in range(7)]
    assert np.array_equal(np.concatenate([o["step_time_ps"] for o in one], axis=1),
                          a["step_time_ps"])
    assert np.array_equal(sum(o["core_step_time_ps"] for o in one), a["core_step_time_ps"])


def test_no_timing_leaves_results_unchanged():
    net = random_network(4, overflow="saturate")
    x = random_inputs(net, 3, 4, 8)
    plain = engine.simulate(net, x, 8, seed=4)
    timed = engine.simulate(net, x, 8, seed=4, timing=timing_for("loihi1"))
    assert "work" not in plain
    timed.pop("work")
    assert_same(plain, timed)


def test_report_settle_and_critical_layer():
    net, x = _tiny(), np.array([[1, 1]])
    r = emulator.run(net, x, 3, timing=_timing(), detail="all")
    rep = r.latency_report(core_layers=["in", "a", "a", "b"])
    assert rep.critical_core == 1 and rep.critical_layer == "a"
    assert rep.latency_all_steps == pytest.approx((1160 + 1224 + 1224) * NS, rel=1e-12)
    s = int(settle_steps(r.predictions)[0])
    assert rep.latency == pytest.approx([1160e-9, 2384e-9, 3608e-9][s - 1], rel=1e-12)
    assert "latency per inference" in str(rep)
    assert settle_steps(np.array([[0, 1], [2, 1], [2, 1]])).tolist() == [2, 1]


def test_result_round_trip_keeps_work(tmp_path):
    net, x = _tiny(), np.array([[1, 1], [1, 0]])
    r = emulator.run(net, x, 3, timing="loihi1")
    back = emulator.Result.load(r.save(tmp_path / "r.h5"))
    assert_same(r.work, back.work)
    assert back.latency_report().latency == r.latency_report().latency


def test_bad_timing_is_an_error():
    with pytest.raises(DataError):
        _timing(mesh="torus")
    with pytest.raises(DataError):
        _timing(t_spike_s=-1.0)
    with pytest.raises(DataError):
        emulator.run(_tiny(), np.array([[1, 1]]), 2).latency_report()


def test_route_latency_too_long_for_its_field_is_refused(monkeypatch):
    """The longest-route search reads (latency << LAT_SHIFT) | neuron: a latency that does not
    fit above the neuron is refused when the counters are packed, never wrapped."""
    from emulator import work as WK
    from hw_models.errors import SimulationError
    monkeypatch.setattr(WK, "LAT_SHIFT", 16)  # 65,535 ps: _tiny's one hop is 128,000 ps
    with pytest.raises(SimulationError, match=r"mesh route of 128000 ps .* \(65535 ps\)"):
        engine.simulate(_tiny(), np.array([[1, 1]]), 3, timing=_timing())


def test_population_too_large_for_the_route_search_is_refused(monkeypatch):
    """The longest-route search reads runs of neurons, their first neuron in RUN_SHIFT bits: a
    population that does not fit is refused when the counters are packed (before any kernel
    runs: a kernel compiled now would keep the patched constant), naming the way out."""
    from emulator import work as WK
    from hw_models.errors import SimulationError
    monkeypatch.setattr(WK, "RUN_SHIFT", 0)  # (one neuron: _tiny's layers have two)
    with pytest.raises(SimulationError, match=r"population of 2 neurons .* \(1 neurons\); "
                                              r"time it without the mesh term"):
        engine.simulate(_tiny(), np.array([[1, 1]]), 3, timing=_timing())


def test_unpublished_times_are_flagged():
    assert not timing_for("loihi2").published
    r = emulator.run(_tiny(), np.array([[1, 1]]), 2, timing="loihi2")
    assert "UNPUBLISHED" in str(r.latency_report())
    assert "UNPUBLISHED" not in str(emulator.run(_tiny(), np.array([[1, 1]]), 2,
                                                 timing="loihi1").latency_report())


def test_core_load_plot(tmp_path):
    from emulator.load_plot import core_load
    r = emulator.run(_tiny(), np.array([[1, 1], [1, 0]]), 3, timing=_timing())
    out = tmp_path / "load.png"
    core_load(r, core_layers=[None, "a", "a", "b"], path=out)
    assert out.stat().st_size > 1000
    with pytest.raises(DataError):
        core_load(emulator.run(_tiny(), np.array([[1, 1]]), 2))


def test_timing_keeps_exact_sums_not_per_sample_step_times():
    net = random_network(3, overflow="saturate", encoding="rate")
    x = random_inputs(net, 7, 3, 9)
    lean = emulator.run(net, x, 9, timing="loihi1", batch_size=2)
    assert lean.predictions is None and "step_time_ps" not in lean.work
    ref = emulator.run(net, x, 9, timing="loihi1", reference=True)   # dense (T, N) times
    assert lean.latency_report() == ref.latency_report()
    assert np.array_equal(lean.work["step_time_sum_ps"], ref.work["step_time_ps"].sum(axis=1))
    assert np.array_equal(lean.work["step_time_max_ps"], ref.work["step_time_ps"].max(axis=1))


def _tile_cores(shape, tile, first=0):
    """Core per neuron of an (h, w, c) population cut into (th, tw, tc) tiles, as the mapper
    cuts it (tiles numbered in C order from ``first``)."""
    h, w, c = shape
    th, tw, tc = tile
    nb = (-(-h // th), -(-w // tw), -(-c // tc))
    y, x, ch = np.meshgrid(np.arange(h) // th, np.arange(w) // tw, np.arange(c) // tc,
                           indexing="ij")
    return (first + (y * nb[1] + x) * nb[2] + ch).reshape(-1).astype(np.int64)


@pytest.mark.parametrize("case", ["runs", "runs_32", "runs_16", "runs_128", "rows_tail",
                                  "rows_wrap", "rows_two", "row_keys", "scattered"])
def test_counting_structures_count_exactly(case):
    """The per-key counts of marked neurons that replace per-spike counting (work._structure,
    work._count_struct) equal numpy's, for each structure: runs (partial 64-bit words), runs
    of one length dividing 64 (several a word, then a last partial word) or a multiple of it,
    rows of equal pattern with W = lcm(L, 64) > 64 (blocks longer than W, tails shorter than
    64), more than 255 passes of one pattern (the uint8 lane sums wrap if not emptied in
    time), two patterns, one key per row, and a key with no structure (left to per-spike
    counting).  Runs also counted into a second key table in the same pass (I_SRSAME); rows
    with W = 64 also with per-neuron weights of the spike marks (I_KW, up to 255, summed in
    uint16 lanes: 324 pieces of weight 255 must be emptied once, rows_wrap)."""
    from emulator import work as WK
    rng = np.random.default_rng(3)
    shape, L = None, None
    if case == "runs":
        n = 1000
        key = np.repeat(np.arange(9), np.diff(np.r_[0, np.sort(rng.choice(np.arange(1, n), 8,
                                                                         replace=False)), n]))
        L, want = n, WK.S_RUNS
    elif case in ("runs_32", "runs_16", "runs_128"):
        size = int(case[5:])
        n = {32: 13 * 32, 16: 16 * 37, 128: 128 * 9}[size]  # (32, 16: a last partial word)
        key, L, want = np.repeat(np.arange(n // size) % 5, size), n, WK.S_RUNS
    elif case == "rows_tail":
        shape, tile, want = (20, 20, 6), (10, 20, 3), WK.S_ROWS  # W = 192
    elif case == "rows_wrap":
        shape, tile, want = (72, 72, 4), (72, 72, 1), WK.S_ROWS
    elif case == "rows_two":
        shape, tile, want = (12, 12, 32), (12, 6, 5), WK.S_ROWS
    elif case == "row_keys":
        shape, tile, want = (12, 12, 32), (1, 1, 32), WK.S_RUNS
    else:
        n = 2000
        key, L, want = rng.integers(0, 7, n), n, WK.S_NONE
    if shape is not None:
        key, L, n = _tile_cores(shape, tile), shape[2], int(np.prod(shape))
    def build(kq):
        sx = WK.Structures()
        row = np.zeros(WK.N_INFO, np.int64)
        sx.add(row, WK.I_SMODE, key, L, kq)
        return row, WK.off(int(key.max()) + 1)._replace(pinfo=row[None, :], **sx.arrays())

    row, wk0 = build(0)
    assert row[WK.I_SMODE] == want
    if want == WK.S_NONE:
        return
    if case == "rows_wrap":
        assert n // row[WK.I_SMODE + WK.X_W] > 255  # more passes than a uint8 sum holds
    if case.startswith("runs_"):  # the regular runs' path, then the generic one for the rest
        size = int(case[5:])
        assert row[WK.I_SMODE + WK.X_W] == size
        assert row[WK.I_SMODE + WK.X_NPAT] == (n // size if size >= 64 else n // 64 * 64 // size)
    count = WK._count_struct
    weighted = want == WK.S_ROWS and row[WK.I_SMODE + WK.X_W] == 64
    for density in (0.1, 1.0):
        marks = (rng.random((n, 3)) < density).astype(np.uint8)
        mask = np.zeros(n + 128, np.uint8)
        mask[:n] = marks[:, 0] | (marks[:, 1] << 1) | (marks[:, 2] << 2)
        mask[n:] = 7  # beyond the population: never counted
        nk = int(key.max()) + 1
        ref = [np.bincount(key, weights=marks[:, j], minlength=nk).astype(np.int64)
               for j in range(3)]
        for do0, do12 in ((True, False), (False, True), (True, True)):
            for kw in ((0, 1, 255) if weighted and do0 else (0,)):
                # (the rows are planned for the largest weight: when the sums are emptied)
                wk = build(kw)[1] if kw else wk0
                if case == "rows_wrap" and kw == 255:  # (the weighted sums emptied in time)
                    assert (wk.seg[:, 2] & WK.SPILL_WEIGHTS).any()
                wt = rng.integers(0, kw + 1, n + 64).astype(np.uint8)
                wt[n:] = kw  # (beyond the population: read, never counted)
                out0, out12 = np.zeros(nk, np.int64), np.zeros((nk, 2), np.int64)
                cc = np.zeros(nk, np.int64)
                rlo = row[WK.I_SMODE + WK.X_LO] if want == WK.S_RUNS else -1
                count(WK.SegTables(wk.pinfo, wk.seg, wk.fptr, wk.frun), 0, WK.I_SMODE, mask,
                      do0, np.int64(3), out0, do12, out12,
                      np.zeros(WK.NSETS * wk.lanes_max, np.uint8),
                      np.zeros(64 * wk.pat_max, np.uint16),
                      np.zeros(WK.NSETS * wk.lanes_max, np.int64),
                      np.zeros(max(2 * wk.pat_max, 260), np.int64), cc, rlo, wt, kw)
                wsum = np.bincount(key, weights=marks[:, 0] * wt[:n].astype(np.int64),
                                   minlength=nk).astype(np.int64)
                assert np.array_equal(out0, 3 * ref[0] + (wsum if kw else 0) if do0 else 0 * out0)
                assert np.array_equal(out12, np.stack(ref[1:], axis=1) if do12 else 0 * out12)
                if rlo >= 0:
                    assert np.array_equal(cc, ref[0] if do0 else 0 * cc)


def test_tiled_mapping_work_equals_reference():
    """A conv network cut into tiles as the mapper cuts it (rows of channels split into
    groups, spatial blocks): every way of counting the work is used — per sending core by
    runs and by row patterns, per route class by runs and by row patterns, classes flushed as
    a dense table, by ranges of classes and message by message, per-neuron rows for the input,
    spike by spike where
    a population has no structure — and the counters equal the reference's under both
    charging and active-update conventions."""
    from emulator import compile as C
    from emulator import work as WK
    rng = np.random.default_rng(11)
    v = dict(v_min=-(2**20), v_max=2**20 - 1, overflow="saturate")
    shapes = {"c": (18, 18, 8), "p": (9, 9, 8), "q": (7, 7, 6)}
    core_c = _tile_cores(shapes["c"], (9, 18, 4), 1)         # rows of 2 channel groups
    core_p = _tile_cores(shapes["p"], (9, 9, 4), 5)          # 2 cores by channel group
    core_q = _tile_cores(shapes["q"], (1, 1, 6), 7)          # a core per position
    core_d = np.repeat([56, 57, 58], [10, 10, 4])            # runs
    core_r = rng.integers(59, 62, 12)                         # scattered: no structure
    core_g = _tile_cores((6, 6, 2), (1, 1, 2), 64)           # a core per position
    core_h = _tile_cores((8, 8, 32), (2, 2, 32), 100)        # runs of 64 by core and class
    core_k = _tile_cores((4, 4, 32), (1, 1, 32), 116)        # a core per position
    pops = [Population("in", (20, 20, 1), kind="input", encoding="rate", input_max=4,
                       core=np.zeros(400, np.int64)),
            Population("c", shapes["c"], threshold=6, core=core_c, **v),
            Population("p", shapes["p"], threshold=4, core=core_p, **v),
            Population("q", shapes["q"], threshold=9, core=core_q, **v),
            Population("d", (24,), threshold=7, core=core_d, **v),
            Population("r", (12,), threshold=5, core=core_r, **v),
            Population("o", (4,), spiking=False, core=np.full(4, 62), **v),
            # f: one core, its classes (g's positions) send one message each: message by message
            Population("f", (18, 18, 2), threshold=5, core=np.full(648, 63), **v),
            Population("g", (6, 6, 2), threshold=3, core=core_g, **v),
            Population("h", (8, 8, 32), threshold=6, core=core_h, **v),
            Population("k", (4, 4, 32), threshold=3, core=core_k, **v)]
    w = (lambda *s: rng.integers(-3, 5, s).astype(np.int8))
    projs = [Projection("ic", "in", "c", "conv", w(3, 3, 1, 8), delay=1),
             Projection("cp", "c", "p", "avgpool", np.full(8, 2, np.int8), kernel=(2, 2),
                        stride=(2, 2), delay=1),
             Projection("pq", "p", "q", "conv", w(3, 3, 8, 6), delay=1),
             Projection("qd", "q", "d", "dense", w(294, 24), delay=1),
             Projection("dr", "d", "r", "dense", w(24, 12), delay=2),
             Projection("ro", "r", "o", "dense", w(12, 4), delay=1),
             Projection("if", "in", "f", "conv", w(3, 3, 1, 2), delay=1),
             Projection("fg", "f", "g", "avgpool", np.full(2, 1, np.int8), kernel=(3, 3),
                        stride=(3, 3), delay=1),
             Projection("ih", "in", "h", "conv", w(6, 6, 1, 32), stride=(2, 2), delay=1),
             Projection("hk", "h", "k", "avgpool", np.full(32, 1, np.int8), kernel=(2, 2),
                        stride=(2, 2), delay=1),
             Projection("ko", "k", "o", "dense", w(512, 4), delay=1)]
    net = CoreNetwork(populations=pops, projections=projs, output="o", readout="v",
                      placement=np.stack([np.zeros(132), np.arange(132) % 12,
                                          np.arange(132) // 12], axis=1).astype(np.int32)
                      ).validate()
    x = rng.integers(0, 5, (3, 20, 20, 1))
    tm = timing_for("loihi1")
    pk, st = engine.packed_network(net)
    pi = WK.pack_work(net, pk, st, tm).pinfo
    modes = {(int(pi[i, WK.I_SMODE]), int(pi[i, WK.I_RMODE])) for i in range(len(pops))}
    assert {m for m, _ in modes} >= {WK.S_RUNS, WK.S_ROWS, WK.S_NONE}
    assert {m for _, m in modes} >= {WK.S_RUNS, WK.S_ROWS, WK.S_ONE}
    dense = (pi[:, WK.I_NDC] > 0) & (pi[:, WK.I_FRANGE] == 0)
    assert dense.any() and (pi[:, WK.I_FRANGE] == 1).any()  # dense table, ranges of classes
    assert ((pi[:, WK.I_NCLS] > 0) & (pi[:, WK.I_NDC] == 0)).any()  # message by message
    assert pi[0, WK.I_ROWW] > 0 and (pi[:, WK.I_WORK] == 2).any()
    assert int(pk.pop[1, C.P_LANE32]) == 1
    # runs shared by sending core and route class (h), messages per neuron unequal and
    # summed as weighted lanes (p), runs of one length < 64 several to a word (k: 32)
    assert pi[9, WK.I_SRSAME] == 1 and pi[2, WK.I_KW] > 0
    assert pi[10, WK.I_SMODE] == WK.S_RUNS and pi[10, WK.I_SMODE + WK.X_W] == 32
    for t in (tm, timing_for("loihi1-silicon"), _timing(active_update="state"),
              _timing(synaptic_charge="emission")):
        raw = engine.simulate(net, x, 12, timing=t)
        assert raw["work"]["core"]["spikes"].sum() > 0
        assert_same(reference.simulate(net, x, 12, timing=t), raw)


def _flush_both_ways(wk, p, rng):
    """Population p's route classes flushed message by message and by destination
    (work._flush_classes, ``dense`` False / True) give the same receive work, for class counts
    with zeros and for each step of the receive ring."""
    from emulator import work as WK
    c0, ncl = int(wk.pinfo[p, WK.I_CLS0]), int(wk.pinfo[p, WK.I_NCLS])
    size = WK.COPIES * wk.depth * wk.n_cores
    for t in range(wk.depth + 1):
        counts = rng.integers(0, 3, ncl) * (rng.random(ncl) < 0.5)
        out = []
        for dense in (False, True):
            ccnt = np.zeros(WK.COPIES * wk.cls_ptr.shape[0], np.int64)
            ccnt[c0:c0 + ncl] = counts
            rwp, sb = np.zeros(size, np.int64), np.zeros(wk.depth + WK.SB_EXTRA, np.int64)
            WK._slots(wk, t, sb)
            WK._flush_classes(wk, p, rwp, sb, ccnt, 1,
                              np.zeros(wk.cls_max + 1, np.int32), dense)
            assert not ccnt.any()  # (the counts are cleared)
            out.append(rwp.reshape(WK.COPIES, -1).sum(axis=0))
        assert out[0].any() and np.array_equal(out[0], out[1])


def test_64_bit_populations_cut_into_short_runs_mark_their_work():
    """A first layer driven by analog input (64-bit lanes: Q includes the analog current) and a
    layer whose v range needs 64 bits, both cut as the mapper cuts the tests_99.20 network for
    loihi1 (channel groups of 3 on each core: runs of 3 neurons; the next layer in spatial
    tiles), mark their active updates in the update loop (kernels._sat_if_work, with and
    without the analog current) for work.count_marks, where a pass per run used to cost as
    much as the run; the first layer's route classes are flushed message by message.
    Engine == reference under both charging and both active-update conventions, with and
    without bias."""
    from emulator import compile as C
    from emulator import work as WK
    rng = np.random.default_rng(13)
    v64 = dict(v_min=-(2**40), v_max=2**40 - 1, overflow="saturate")
    pops = [Population("in", (14, 14, 1), kind="input", encoding="analog", input_max=9,
                       core=np.zeros(196, np.int64)),
            Population("a", (12, 12, 8), threshold=40,
                       core=_tile_cores((12, 12, 8), (6, 12, 3), 1), **v64),
            Population("b", (10, 10, 8), threshold=30,
                       core=_tile_cores((10, 10, 8), (2, 2, 8), 7), **v64),
            Population("o", (4,), spiking=False, core=np.full(4, 32), **v64)]
    w = (lambda *s: rng.integers(-3, 5, s).astype(np.int8))
    projs = [Projection("ia", "in", "a", "conv", w(3, 3, 1, 8), delay=1),
             Projection("ab", "a", "b", "conv", w(3, 3, 8, 8), delay=1),
             Projection("bo", "b", "o", "dense", w(800, 4), delay=1)]
    x = rng.integers(0, 10, (3, 14, 14, 1))
    for net, pk, st in _without_and_with_bias(pops, projs, pops[1:3], rng):
        wk = WK.pack_work(net, pk, st, _timing())
        pi = wk.pinfo
        assert pk.pop[1:3, C.P_LANE32].tolist() == [0, 0] and pk.pop[1, C.P_ANALOG] == 1
        assert pi[1:3, WK.I_WORK].tolist() == [2, 2]
        # a's only input is the analog current: its active updates are counted in step 1 only
        # (work.const_active); b's arrive as spikes
        assert pi[1, WK.I_ACONST] == 1 and pi[2, WK.I_ACONST] == 0
        # a's classes (its positions) send 1, 2 or 4 messages into b's 2 x 2 tiles, flushed
        # message by message, or by destination in steps with many spikes (the runs below
        # take only the latter: both must give the same work)
        assert pi[1, WK.I_NCLS] > 100 and pi[1, WK.I_NDC] == 0 and pi[1, WK.I_FRANGE] == 0
        assert pi[1, WK.I_PNDC] > 0
        _flush_both_ways(wk, 1, rng)
        for tm in (_timing(), _timing(active_update="state"),
                   _timing(synaptic_charge="emission"), timing_for("loihi1")):
            raw = engine.simulate(net, x, 12, timing=tm)
            assert raw["work"]["core"]["neuron_updates_active"].sum() > 0
            spikes = raw["work"]["core"]["spikes"]
            assert (spikes[1:7] > 0).all() and spikes[7:32].sum() > 0
            assert_same(reference.simulate(net, x, 12, timing=tm), raw)


def test_analog_layer_active_updates_counted_once_per_sample():
    """An analog-input IF layer's active updates are the same in every step of a sample
    (work._constant_activity), so they are marked and counted in step 1 and added per core
    after, its update loop marking only the spikes: exact where a neuron without bias or
    input starts below its firing level, with v_init 0 or not (then active under 'state'
    only); not assumed where such a neuron starts at its firing level (it fires in step 1, v
    resets, its 'state' activity changes), nor for a leaky layer.  Engine == reference under
    both conventions, the layer cut into runs of 3 neurons (counted from the marks) and small
    on one core (counted from the spike list)."""
    from emulator import work as WK
    rng = np.random.default_rng(31)
    v64 = dict(v_min=-(2**40), v_max=2**40 - 1, overflow="saturate")
    w = (lambda *s: rng.integers(-3, 5, s).astype(np.int8))
    cases = [(12, dict(v_init=0), 1), (12, dict(v_init=7), 1), (4, dict(v_init=7), 1),
             (12, dict(v_init=40), 0), (12, dict(v_init=0, decay_v=64), 0)]
    for hw, kw, flag in cases:
        n = hw * hw * 8
        core = _tile_cores((hw, hw, 8), (6, 12, 3), 1) if hw == 12 else np.ones(n, np.int64)
        a = Population("a", (hw, hw, 8), threshold=40, core=core, **{**v64, **kw})
        # half the channels without bias: 'state' activity then depends on Q and v_init
        a.bias = (rng.integers(1, 3, n) * (np.arange(n) % 8 < 4)).astype(np.int32)
        pops = [Population("in", (hw + 2, hw + 2, 1), kind="input", encoding="analog",
                           input_max=9, core=np.zeros((hw + 2) ** 2, np.int64)), a,
                Population("o", (4,), spiking=False, core=np.full(4, 7), **v64)]
        projs = [Projection("ia", "in", "a", "conv", w(3, 3, 1, 8), delay=1),
                 Projection("ao", "a", "o", "dense", w(n, 4), delay=1)]
        net = CoreNetwork(populations=pops, projections=projs, output="o",
                          readout="v").validate()
        pk, st = engine.packed_network(net)
        pi = WK.pack_work(net, pk, st, _timing()).pinfo
        assert int(pi[1, WK.I_ACONST] > 0) == flag, kw
        assert pi[1, WK.I_UNIFORM] == (hw == 4)
        x = rng.integers(0, 10, (3, hw + 2, hw + 2, 1)) * (rng.random((3, hw + 2, hw + 2, 1))
                                                           < 0.5)
        for tm in (_timing(), _timing(active_update="state")):
            raw = engine.simulate(net, x, 6, timing=tm)
            assert raw["work"]["core"]["neuron_updates_active"].sum() > 0
            assert_same(reference.simulate(net, x, 6, timing=tm), raw)


def test_one_core_populations_equal_and_unequal_events_equal_reference():
    """A population on one core whose neurons all send to the same cores (work.I_UNIFORM)
    counts a step's synaptic events as the spike count times the first neuron's when every
    neuron's messages carry the same events (I_UEV: a conv into a pooling layer, a dense
    layer), else one gather per spike (a valid conv's border neurons reach fewer targets):
    both against the reference."""
    from emulator import work as WK
    rng = np.random.default_rng(5)
    v = dict(v_min=-(2**20), v_max=2**20 - 1, overflow="saturate")
    one = (lambda n, c: np.full(n, c, np.int64))
    pops = [Population("in", (14, 14, 1), kind="input", encoding="rate", input_max=4,
                       core=one(196, 0)),
            Population("c", (12, 12, 3), threshold=6, core=one(432, 1), **v),
            Population("p", (6, 6, 3), threshold=4, core=one(108, 2), **v),
            Population("q", (4, 4, 4), threshold=5, core=one(64, 3), **v),
            Population("o", (5,), spiking=False, core=one(5, 4), **v)]
    w = (lambda *sh: rng.integers(-3, 5, sh).astype(np.int8))
    projs = [Projection("ic", "in", "c", "conv", w(3, 3, 1, 3), delay=1),
             Projection("cp", "c", "p", "avgpool", np.full(3, 2, np.int8), kernel=(2, 2),
                        stride=(2, 2), delay=1),
             Projection("pq", "p", "q", "conv", w(3, 3, 3, 4), delay=1),
             Projection("qo", "q", "o", "dense", w(64, 5), delay=1)]
    net = CoreNetwork(populations=pops, projections=projs, output="o", readout="v").validate()
    pk, st = engine.packed_network(net)
    pi = WK.pack_work(net, pk, st, timing_for("loihi1")).pinfo
    assert pi[:4, WK.I_UNIFORM].tolist() == [1, 1, 1, 1]
    assert pi[:4, WK.I_UEV].tolist() == [0, 1, 0, 1]
    x = rng.integers(0, 5, (3, 14, 14, 1))
    for t in (timing_for("loihi1"), _timing(synaptic_charge="emission")):
        raw = engine.simulate(net, x, 10, timing=t)
        assert raw["work"]["core"]["synaptic_events"].sum() > 0
        assert_same(reference.simulate(net, x, 10, timing=t), raw)


@pytest.mark.parametrize("tile,width", [((5, 5), 8), ((5, 2), 16), ((2, 3), 24), ((2, 2), 32)])
@pytest.mark.parametrize("row32", [True, False])
def test_per_neuron_rows_of_every_width_equal_reference(tile, width, row32, monkeypatch):
    """The input's receive work counted by per-neuron rows (work.route_spikes: one loop per
    row width, 8-lane adds): a conv layer cut into 4, 10, 20 or 25 spatial tiles gives rows
    8, 16, 24 and 32 wide; each against the reference, with 32-bit rows (messages << sh |
    events, where the column totals fit) and with 64-bit rows."""
    from emulator import work as WK
    if not row32:
        monkeypatch.setattr(WK, "ROW32_BITS", 0)
    rng = np.random.default_rng(width)
    v = {"v_min": -(2**20), "v_max": 2**20 - 1, "overflow": "saturate"}
    pops = [Population("in", (12, 12, 1), kind="input", encoding="rate", input_max=4,
                       core=np.zeros(144, np.int64)),
            Population("c", (10, 10, 2), threshold=4,
                       core=_tile_cores((10, 10, 2), (*tile, 2), 1), **v),
            Population("o", (3,), spiking=False, core=np.full(3, 40), **v)]
    projs = [Projection("ic", "in", "c", "conv", rng.integers(-2, 5, (3, 3, 1, 2)).astype(np.int8),
                        delay=1),
             Projection("co", "c", "o", "dense", rng.integers(-3, 4, (200, 3)).astype(np.int8),
                        delay=1)]
    net = CoreNetwork(populations=pops, projections=projs, output="o", readout="v").validate()
    pk, st = engine.packed_network(net)
    pi = WK.pack_work(net, pk, st, timing_for("loihi1")).pinfo
    assert pi[0, WK.I_ROWW] == width and pi[0, WK.I_NCLS] == 0  # rows, not route classes
    assert (pi[0, WK.I_ROWSH] > 0) == row32
    x = rng.integers(0, 5, (3, 12, 12, 1))
    for t in (timing_for("loihi1"), _timing(synaptic_charge="emission")):
        raw = engine.simulate(net, x, 8, timing=t)
        assert raw["work"]["core"]["messages_in"].sum() > 0
        assert_same(reference.simulate(net, x, 8, timing=t), raw)


def test_mark_sum_intrinsics_equal_numpy():
    """_jit.add_marks64_1 / _3 (the rows structures' lane sums, in vector registers) and their
    weighted forms _1w / _3w (plus each spiking neuron's weight byte in a uint16 lane set)
    against a NumPy model: whole pieces, a last partial piece of 1-63 lanes, none, and lane
    sets w apart, at unaligned offsets; bytes outside the summed lanes stay untouched."""
    from numba import njit

    from emulator._jit import add_marks64_1, add_marks64_1w, add_marks64_3, add_marks64_3w

    @njit
    def run(accs, at, w, m8, start, n, tail, wt, a16, at16):
        add_marks64_1(accs[0], at, w, m8, start, n, tail)
        add_marks64_3(accs[1], at, w, m8, start, n, tail)
        add_marks64_1w(accs[2], at, w, m8, start, n, tail, wt, a16[0], at16)
        add_marks64_3w(accs[3], at, w, m8, start, n, tail, wt, a16[1], at16)

    rng = np.random.default_rng(5)
    m8 = rng.integers(0, 256, 64 * 12).astype(np.uint8)
    wt = rng.integers(0, 256, 64 * 12).astype(np.uint8)
    for n, tail, start, at, w in [(0, 0, 0, 0, 64), (1, 0, 5, 3, 64), (7, 33, 9, 1, 70),
                                  (0, 1, 64, 0, 64), (3, 63, 1, 2, 128), (10, 17, 0, 5, 64)]:
        a = rng.integers(0, 200, 64 * 8).astype(np.uint8)
        accs = np.stack([a] * 4)
        want = accs.copy()
        a16 = np.stack([rng.integers(0, 60000, 200).astype(np.uint16)] * 2)
        at16 = at + 7
        want16 = a16.copy()
        for k in range(n + (tail > 0)):
            m = m8[start + 64 * k:start + 64 * (k + 1)].copy()
            if k == n:
                m[tail:] = 0
            for j, nb in enumerate((1, 3, 1, 3)):
                for b in range(nb):
                    want[j, at + b * w:at + b * w + 64] += (m >> b) & 1
                if j >= 2:
                    want16[j - 2, at16:at16 + 64] += (
                        (m & 1) * wt[start + 64 * k:start + 64 * (k + 1)]).astype(np.uint16)
        run(accs, at, w, m8, start, n, tail, wt, a16, at16)
        assert (accs == want).all() and (a16 == want16).all(), (n, tail, start, at, w)


def test_row_sum_intrinsics_equal_numpy():
    """_jit.sum_rows (the per-neuron rows of receive work summed over a step's spikes, in
    vector registers, one loop per width 8/16/24/32, int64 and int32) against NumPy: no
    spike, one, repeated neurons, the last row of the table; the entries of ``acc`` beyond
    the row width stay untouched."""
    from numba import njit

    from emulator._jit import sum_rows

    run = njit(lambda w, acc, tab, idx, n: sum_rows(acc, tab, idx, n, w))
    rng = np.random.default_rng(8)
    for w, dt, big in [(w, dt, big) for w in (8, 16, 24, 32)
                       for dt, big in ((np.int64, 2**40), (np.int32, 2**20))]:
        rows = 37
        tab = rng.integers(-big, big, rows * w + 8).astype(dt)
        for idx in ([], [5], [0, 36, 36, 3, 0, 17, 2, 36], list(rng.integers(0, rows, 300))):
            idx = np.asarray(idx, np.int32)
            acc = rng.integers(-1000, 1000, 40).astype(dt)
            want = acc.copy()
            for i in idx:
                want[:w] += tab[i * w:(i + 1) * w]
            run(w, acc, tab, np.concatenate([idx, np.zeros(1, np.int32)]), idx.size)
            assert np.array_equal(acc, want), (w, idx.size)
