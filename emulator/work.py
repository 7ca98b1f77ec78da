"""Per-step, per-core work of a run, counted in the engine and reduced on the fly.

The latency model (:mod:`hw_models.latency`) needs, for every step and every core, the work that
core did: on the **sending** side its active neuron updates, the spikes its neurons emitted and
the messages they sent; on the **receiving** side the messages and synaptic events that arrived.
Keeping that per step, per core and per sample would grow as T × cores × samples, so the engine
reduces it while it runs (:func:`close_step`, once per step and sample):

* the time of every core from its work and the per-event times (integer picoseconds,
  :class:`WorkPack`), the slowest core, the step time ``max_c + mesh + barrier`` → the
  per-sample step times ``step_time`` (T, N), the same size as the predictions;
* summed over samples, per step and core: the core time (T, cores) for the load plot;
* totals per core of every counter (cores, 6) and how often each core was the slowest.

The sums over samples go to per-thread buffers (``numba.get_thread_id``), so memory is
threads × T × cores, independent of the number of samples, and integer sums make the result
independent of thread count and batching.

Counting conventions (from the profile, :mod:`hw_models.profiles`): synaptic work charged in
the step a spike is **emitted** (SANA-FE) or **delivered** (t + delay ≤ T); both active-update
conventions are counted (``input``: Q ≠ 0; ``state``: v before the step, Q or the bias
non-zero), the profile's is timed.  A message is one (source neuron, destination core, delay);
input populations are driven by the host: their spikes send messages but cost no neuron time.
Max-pool gate deliveries are decided when they arrive, so they count at delivery under both
conventions.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from hw_models.errors import SimulationError

from . import compile as C
from ._jit import hot

#: columns of the per-core work counters (the per-step sending side first)
W_ACT_INPUT, W_ACT_STATE, W_SPIKES, W_MSG_OUT, W_MSG_IN, W_SYN = range(6)
WORK_NAMES = ("neuron_updates_active", "neuron_updates_active_state", "spikes",
              "messages_out", "messages_in", "synaptic_events")
#: order of :attr:`WorkPack.times`
T_ACCESS, T_UPDATE, T_SPIKE, T_MSG_OUT, T_MSG_IN, T_SYN, T_HOP_EW, T_HOP_NS = range(8)
PS = 1e12  # picoseconds per second
#: two counters share one int64 in the kernel's per-step buffers: high part << PACK | low part
#: (spikes | messages out at the sending core, messages in | synaptic events at the receiving
#: core); a core's low part in one step stays far below 2^40
PACK = 40
LOW = (1 << PACK) - 1
#: packed routing records: per neuron (first message << CORE_BITS) | core; per message
#: (synaptic events << EV_SHIFT) | (delay << CORE_BITS) | destination core
#: columns of :attr:`WorkPack.pinfo`
I_UNIFORM, I_CORE, I_K, I_REC0, I_LAT, I_BIAS, I_FUSE = range(7)
#: mean run of neurons on one core from which a 32-bit population counts its active updates in
#: its update loop (one call per run: below this the calls cost more than the pass they save)
FUSE_RUN = 64
CORE_BITS = 20
CORE_MASK = (1 << CORE_BITS) - 1
DELAY_MASK = 63
EV_SHIFT = CORE_BITS + 6


class WorkPack(NamedTuple):
    """What the kernel needs to count and time per-step, per-core work.

    ``on`` 0 disables everything (dummy arrays).  ``charge`` 0 = delivery, 1 = emission;
    ``active`` 0 = input, 1 = state.  ``times`` int64 ps in the ``T_*`` order; ``barrier`` ps.
    ``ncn`` mapped non-input neurons per core.  Routes, packed one int64 per record (see
    ``CORE_BITS``): ``nrec`` per neuron (plus one end record) its first message and its core,
    ``rt_ent`` per message of a spike its destination core, delay and synaptic events.
    ``route_lat`` ps: per neuron, the longest mesh route of its messages (0 without the mesh
    term).  Runs of equal core inside each population (``run_ptr`` per population into
    ``run_end`` (exclusive, local index) and ``run_core``) let the active updates be counted
    per core with vectorisable loops (:func:`count_active`).  ``pinfo`` (populations,
    ``I_*``): per population whether its routes are uniform (:data:`I_UNIFORM`, see
    :func:`route_spikes`), then its one sending core, messages per neuron, first record and
    longest route, whether any neuron has a bias, and whether its update loop counts its
    active updates (:data:`I_FUSE`: 32-bit lanes and runs of ≥ :data:`FUSE_RUN` neurons).  ``depth`` = largest delay + 1 (ring of
    receive work)."""
    on: int
    charge: int
    active: int
    mesh: int
    times: np.ndarray
    barrier: int
    ncn: np.ndarray
    nrec: np.ndarray
    rt_ent: np.ndarray
    route_lat: np.ndarray
    run_ptr: np.ndarray
    run_end: np.ndarray
    run_core: np.ndarray
    pinfo: np.ndarray
    depth: int
    n_cores: int


def off(n_cores: int = 1) -> WorkPack:
    z = np.zeros(1, np.int64)
    return WorkPack(0, 0, 0, 0, np.zeros(8, np.int64), 0, np.zeros(max(n_cores, 1), np.int64),
                    z, z, z, z, z, z, np.zeros((1, 7), np.int64), 1, max(n_cores, 1))


def _ps(x: float) -> int:
    return int(round(float(x) * PS))


def pack_work(net, pk, st, timing) -> WorkPack:
    """The :class:`WorkPack` of ``net`` under ``timing`` (a :class:`hw_models.latency.Timing`)."""
    P = pk.pop
    nn = pk.n_neurons
    n_cores = st.n_cores
    core = st.core.astype(np.int64)
    place = net.placement_array().astype(np.int64)
    pops = net.populations
    idx = {p.name: i for i, p in enumerate(pops)}
    analog = net.input.encoding == "analog"

    ncn = np.zeros(n_cores, np.int64)
    for i, p in enumerate(pops):
        if not p.is_input:
            b, n = int(P[i, C.P_BASE]), int(P[i, C.P_SIZE])
            ncn += np.bincount(core[b:b + n], minlength=n_cores)

    # routes: per source neuron, one entry per (destination core, delay)
    rows, cols, evs, dels = [], [], [], []
    for i, p in enumerate(pops):
        if p.is_input and analog:
            continue
        b = int(P[i, C.P_BASE])
        by_delay = {}
        for k, pr in enumerate(net.projections):
            if pr.source != p.name:
                continue
            m = st.ev_core[k]
            reach = (m != 0).astype(np.int64)
            ev = m if pr.kind != "maxpool" else m.multiply(0)  # gate: counted on arrival
            r0, e0 = by_delay.get(pr.delay, (None, None))
            by_delay[pr.delay] = (reach if r0 is None else r0 + reach,
                                  ev if e0 is None else e0 + ev)
        for d, (reach, ev) in by_delay.items():
            reach = sp.csr_matrix(reach)
            reach.sum_duplicates()
            coo = reach.tocoo()
            evd = np.asarray(sp.csr_matrix(ev)[coo.row, coo.col]).reshape(-1)
            rows.append(b + coo.row.astype(np.int64))
            cols.append(coo.col.astype(np.int64))
            evs.append(evd.astype(np.int64))
            dels.append(np.full(coo.nnz, d, np.int64))
    if rows:
        r, c, e, d = (np.concatenate(a) for a in (rows, cols, evs, dels))
        o = np.lexsort((d, c, r))
        r, c, e, d = r[o], c[o], e[o], d[o]
    else:
        r = c = e = d = np.zeros(0, np.int64)
    rt_ptr = np.zeros(nn + 1, np.int64)
    np.add.at(rt_ptr, r + 1, 1)
    rt_ptr = np.cumsum(rt_ptr)
    depth = int(d.max()) + 1 if d.size else 1

    route_lat = np.zeros(nn, np.int64)
    mesh = 1 if timing.mesh == "route" else 0
    if mesh and r.size:
        dxy = np.abs(place[core[r]] - place[c])
        lat = dxy[:, 1] * _ps(timing.t_hop_ew_s) + dxy[:, 2] * _ps(timing.t_hop_ns_s)
        np.maximum.at(route_lat, r, lat)

    run_ptr = np.zeros(len(pops) + 1, np.int64)
    run_end, run_core = [], []
    for i, p in enumerate(pops):
        b, n = int(P[i, C.P_BASE]), int(P[i, C.P_SIZE])
        if not p.is_input and n:
            cc = core[b:b + n]
            cut = np.flatnonzero(np.diff(cc)) + 1
            run_end.append(np.append(cut, n))
            run_core.append(cc[np.append(0, cut)])
        run_ptr[i + 1] = run_ptr[i] + (len(run_end[-1]) if (not p.is_input and n) else 0)
    cat = (lambda a: np.concatenate(a).astype(np.int64) if a else np.zeros(1, np.int64))
    times = np.array([_ps(timing.t_neuron_access_s), _ps(timing.t_neuron_update_s),
                      _ps(timing.t_spike_s), _ps(timing.t_msg_out_s), _ps(timing.t_msg_in_s),
                      _ps(timing.t_syn_event_s), _ps(timing.t_hop_ew_s),
                      _ps(timing.t_hop_ns_s)], np.int64)
    one = (lambda a: a if a.size else np.zeros(1, np.int64))
    if n_cores > CORE_MASK + 1 or (d.size and int(d.max()) > DELAY_MASK) or \
            (e.size and int(e.max()) >= 1 << (63 - EV_SHIFT)):
        raise SimulationError(f"the latency counters support up to {CORE_MASK + 1} cores and "
                              f"delays up to {DELAY_MASK}; this network has {n_cores} cores "
                              f"and delays up to {int(d.max()) if d.size else 0}")
    nrec = np.zeros(nn + 1, np.int64)
    nrec[:] = rt_ptr << CORE_BITS
    nrec[:nn] |= core
    ent = (e << EV_SHIFT) | (d << CORE_BITS) | c
    pinfo = np.zeros((len(pops), 7), np.int64)
    for i, p in enumerate(pops):
        b, n = int(P[i, C.P_BASE]), int(P[i, C.P_SIZE])
        pinfo[i, I_BIAS] = int(not p.is_input and np.any(pk.bias[b:b + n] != 0))
        pinfo[i, I_FUSE] = int(P[i, C.P_LANE32] == 1
                               and (run_ptr[i + 1] - run_ptr[i]) * FUSE_RUN <= n)
        if n == 0 or (p.is_input and analog):
            continue
        k = np.diff(rt_ptr[b:b + n + 1])
        r0 = int(rt_ptr[b])
        cols = (ent[r0:r0 + int(k[0])] & ((DELAY_MASK << CORE_BITS) | CORE_MASK)
                if k[0] else np.zeros(0, np.int64))
        recs = (ent[r0:int(rt_ptr[b + n])] & ((DELAY_MASK << CORE_BITS) | CORE_MASK))
        if (core[b:b + n] == core[b]).all() and (k == k[0]).all() and \
                (recs.reshape(n, int(k[0])) == cols[None, :]).all() and \
                (route_lat[b:b + n] == route_lat[b]).all():
            pinfo[i, :I_BIAS] = (1, core[b], k[0], r0, route_lat[b])
    return WorkPack(on=1, charge=1 if timing.synaptic_charge == "emission" else 0,
                    active=1 if timing.active_update == "state" else 0, mesh=mesh,
                    times=times, barrier=_ps(timing.barrier_for(tiles_in_use(net))),
                    ncn=ncn, nrec=nrec, rt_ent=one(ent.astype(np.int64)),
                    route_lat=route_lat, run_ptr=run_ptr, run_end=cat(run_end),
                    run_core=cat(run_core), pinfo=pinfo, depth=depth, n_cores=n_cores)


def tiles_in_use(net) -> int:
    """Distinct routers (chip, x, y) holding at least one on-chip neuron (an analog input is
    off-chip and does not count)."""
    place = net.placement_array()
    used = set()
    for p, c in net.core_assignment().items():
        pop = net.population(p)
        if pop.is_input and pop.encoding == "analog":
            continue
        for k in np.unique(c):
            used.add(tuple(int(v) for v in place[k]))
    return len(used)


# ---- kernel helpers -------------------------------------------------------------------------
@hot
def route_spikes(wk, p, ring, dst, cnt, base, is_input, t, swp, rwp, sb):
    """Count the spikes ``ring[dst:dst+cnt]`` (local ids) of population p (first neuron
    ``base``) emitted in step t: packed sending work into ``swp`` (cores,), packed receive
    work into the ring ``rwp`` (depth · cores) at the step each message is charged (``sb``:
    scratch (depth,) of slot offsets per delay, so the inner loop has no division).  A message
    charged after step T lands in a slot no later step reads.  Returns the longest mesh route
    among the spikes (ps; 0 without the mesh term)."""
    if cnt == 0:
        return np.int64(0)
    nc = wk.n_cores
    D1 = wk.depth
    if wk.charge == 1:
        b0 = (t % D1) * nc
        for d in range(D1):
            sb[d] = b0
    else:
        for d in range(D1):
            sb[d] = ((t + d) % D1) * nc
    ent = wk.rt_ent
    one = np.int64(1) << PACK
    spk = np.int64(0) if is_input else one
    pi = wk.pinfo
    if pi[p, I_UNIFORM] == 1:
        # one sending core, and every neuron sends its K messages to the same (core, delay)
        # list: the per-core sums are cnt times a constant, except the synaptic events,
        # one gather-sum per message column over the spikes (no per-spike branching)
        K = pi[p, I_K]
        r0 = pi[p, I_REC0]
        swp[pi[p, I_CORE]] += cnt * (spk + K)
        for j in range(K):
            x = ent[r0 + j]
            ev = np.int64(0)
            col = ent[r0 + j:]
            for e in range(cnt):
                ev += col[np.int64(ring[dst + e]) * K] >> EV_SHIFT
            rwp[sb[(x >> CORE_BITS) & DELAY_MASK] + (x & CORE_MASK)] += cnt * one + ev
        return pi[p, I_LAT]
    nrec = wk.nrec
    rl = wk.route_lat
    mesh = wk.mesh == 1
    lat = np.int64(0)
    # consecutive spikes mostly share their core and their destination: sum in registers and
    # store when the address changes (a read-modify-write chain on one address costs ~5
    # cycles); one packed record per neuron and per message keeps it to ~2 cache lines a spike
    sc, sacc = np.int64(-1), np.int64(0)
    ri, racc = np.int64(-1), np.int64(0)
    for e in range(cnt):
        g = base + ring[dst + e]
        r0 = nrec[g]
        r1 = nrec[g + 1] >> CORE_BITS
        c = r0 & CORE_MASK
        r0 >>= CORE_BITS
        if c != sc:
            if sc >= 0:
                swp[sc] += sacc
            sc, sacc = c, np.int64(0)
        sacc += spk + (r1 - r0)
        if mesh and rl[g] > lat:
            lat = rl[g]
        for r in range(r0, r1):
            x = ent[r]
            idx = sb[(x >> CORE_BITS) & DELAY_MASK] + (x & CORE_MASK)
            if idx != ri:
                if ri >= 0:
                    rwp[ri] += racc
                ri, racc = idx, np.int64(0)
            racc += one + (x >> EV_SHIFT)
    if sc >= 0:
        swp[sc] += sacc
    if ri >= 0:
        rwp[ri] += racc
    return lat


@hot
def count_active(wk, p, b, n, an, acc, icur_all, v_all, bias_all, swa):
    """Population p's active updates of this step per core into ``swa`` (cores, 2), counted
    just before its update from what the update reads: column 0 the ``input`` convention
    (Q ≠ 0), column 1 the ``state`` convention (v before the step, Q or the bias ≠ 0).
    The population's neurons are ``b … b+n−1`` of the whole-network arrays; Q = ``acc[i]``,
    plus its analog current when ``an``.

    A separate pass of reductions rather than a flag written inside the update loops: a store
    per neuron there kept LLVM from vectorising them (25 % of the run, measured), while these
    loops vectorise and read memory the update is about to read anyway."""
    v, bias = v_all[b:b + n], bias_all[b:b + n]
    icur = icur_all[b:b + n] if an else icur_all[:0]
    lo = 0
    nb = an or wk.pinfo[p, I_BIAS] == 1
    for r in range(wk.run_ptr[p], wk.run_ptr[p + 1]):
        hi = wk.run_end[r]
        # loops over views from index 0: with range(lo, hi) Numba cannot prove the index
        # non-negative, and its wrap-around test keeps the loop scalar (4x slower, measured)
        q_, v_, b_ = acc[lo:hi], v[lo:hi], bias[lo:hi]
        s1 = np.int32(0)  # a run is at most one population: its counts fit int32
        s2 = np.int32(0)
        if not nb:
            for i in range(hi - lo):
                q = q_[i]
                s1 = np.int32(s1 + np.int32(q != 0))
                s2 = np.int32(s2 + np.int32((q | v_[i]) != 0))
        elif an:
            i_ = icur[lo:hi]
            for i in range(hi - lo):
                nz = (np.int64(q_[i]) + i_[i]) != 0
                s1 = np.int32(s1 + np.int32(nz))
                s2 = np.int32(s2 + np.int32(nz | (v_[i] != 0) | (b_[i] != 0)))
        else:
            for i in range(hi - lo):
                nz = q_[i] != 0
                s1 = np.int32(s1 + np.int32(nz))
                s2 = np.int32(s2 + np.int32(nz | (v_[i] != 0) | (b_[i] != 0)))
        c = wk.run_core[r]
        swa[c, 0] += s1
        swa[c, 1] += s2
        lo = hi


@hot
def close_step(wk, t, swp, swa, rwp, mpcore, mpprev, mesh_lat, step_time, s, tb_time, tb_work,
               tb_crit, tid):
    """End of step t of sample s: core times, the slowest core, the step time; add to the
    thread's sums; clear the step's work (``mpcore[s]``: the sample's max-pool deliveries per
    core so far)."""
    mpc = mpcore[s]
    tm = wk.times
    nc = wk.n_cores
    o = (t % wk.depth) * nc
    best = np.int64(-1)
    arg = 0
    ac = 1 if wk.active == 1 else 0
    for c in range(nc):
        d = mpc[c] - mpprev[c]  # max-pool gate deliveries of this step
        mpprev[c] = mpc[c]
        rv = rwp[o + c]
        mi = rv >> PACK
        ev = (rv & LOW) + d
        sv = swp[c]
        sp = sv >> PACK
        mo = sv & LOW
        send = (wk.ncn[c] * tm[T_ACCESS] + swa[c, ac] * tm[T_UPDATE] + sp * tm[T_SPIKE]
                + mo * tm[T_MSG_OUT])
        recv = mi * tm[T_MSG_IN] + ev * tm[T_SYN]
        ct = send if send > recv else recv
        tb_time[tid, t - 1, c] += ct
        if ct > best:
            best = ct
            arg = c
        tb_work[tid, c, W_ACT_INPUT] += swa[c, 0]
        tb_work[tid, c, W_ACT_STATE] += swa[c, 1]
        tb_work[tid, c, W_SPIKES] += sp
        tb_work[tid, c, W_MSG_OUT] += mo
        tb_work[tid, c, W_MSG_IN] += mi
        tb_work[tid, c, W_SYN] += ev
        swa[c, 0] = 0
        swa[c, 1] = 0
        swp[c] = 0
        rwp[o + c] = 0
    tb_crit[tid, arg] += 1
    step_time[s, t - 1] = best + mesh_lat + wk.barrier


def work_raw(timing, wk, step_time, core_time, core_work, critical) -> dict:
    """The raw ``"work"`` entry of a result (see :mod:`hw_models.latency` for its use):
    ``step_time_ps`` int64 (T, N) when the per-sample step times were kept (the statistics the
    latency report needs are added by :func:`emulator.engine.raw_to_dict`);
    ``core_step_time_ps`` int64 (T, cores) summed over samples;
    ``core`` {counter: int64 (cores,)} totals; ``critical`` int64 (cores,) (sample, step)
    pairs in which the core was the slowest; ``neurons_per_core``; ``barrier_ps``; ``timing``
    (the model's parameters, JSON-able)."""
    out = {} if step_time is None else {"step_time_ps": np.asarray(step_time, np.int64)}
    return {**out,
            "core_step_time_ps": np.asarray(core_time, np.int64),
            "core": {name: np.ascontiguousarray(core_work[:, k], np.int64)
                     for k, name in enumerate(WORK_NAMES)},
            "critical": np.asarray(critical, np.int64),
            "neurons_per_core": np.asarray(wk.ncn, np.int64),
            "barrier_ps": int(wk.barrier),
            "timing": timing.to_dict()}
