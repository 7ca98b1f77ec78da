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

How the work is counted without a step per spike where the mapping allows it (on a network
mapped to many small cores the per-spike and per-message counting used to cost as much as the
run itself): the update loop of a 32-bit population (or of a 64-bit IF one) writes one mark
byte per neuron (bit 0 spiked, bits 1 and 2 active under the two conventions), and
:func:`count_marks` counts the marks per key (sending core; route class = neurons with the
same message list) by the population's *structure* (:func:`_structure`): runs of one key, 64
neurons per ``popcnt``; or rows of channels whose keys repeat from row to row (a tiled conv
layer), 64 byte lanes per vector add, summed in vector registers over a block of rows.  A
step's receive work is then each route class's messages times its spikes
(:func:`_flush_classes`, a dense 32-bit product where the classes' message table is dense).
Input populations and populations without a structure count from the spike list
(:func:`route_spikes`), per-neuron rows of receive work where the destinations are few.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from numba import njit

from hw_models.errors import SimulationError


from . import compile as C
from ._jit import (_BORROW, add_bits64, add_marks64_1, add_marks64_1w, add_marks64_3,
                   add_marks64_3w, bits64, hot, popcount, sum_rows)

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
(I_UNIFORM, I_CORE, I_K, I_REC0, I_LAT, I_BIAS, I_WORK, I_CLS0, I_NCLS, I_KPOP,
 I_DM0, I_NDC, I_DC0, I_EVU, I_ROWW, I_ROW0, I_ROWC, I_ROWN,
 I_SMODE, I_SLO, I_SHI, I_SW, I_SNPAT, I_SG,
 I_RMODE, I_RLO, I_RHI, I_RW, I_RNPAT, I_RG, I_UEV, I_FRANGE, I_CRP, I_SRSAME,
 I_KW, I_KW0, I_PNDC, I_PP0, I_ACONST, I_ROWSH, I_SCLO, I_SCHI) = range(42)
N_INFO = 42
#: most destinations (delay, core) of a population counted with per-neuron rows (route_spikes)
ROW_DMAX = 32
#: value bits of the 32-bit receive rows (the sign bit unused); where a population's column
#: totals need more, its rows are 64-bit
ROW32_BITS = 31
assert ROW_DMAX == 32  # route_spikes has one loop for each row width: 8, 16, 24, 32
DENSE_MAX = 1 << 20  # largest dense table of one population (entries)
#: offsets of (mode, first row, last row + 1, lane width, patterns, first pattern's index) of
#: the counting structure by sending core (I_SMODE) and by route class (I_RMODE); for runs
#: (S_RUNS) all of one length L that divides 64 or is a multiple of it, X_W is L and X_NPAT the
#: number of runs in whole 64-neuron words (all of them for L ≥ 64), else both 0
X_MODE, X_LO, X_HI, X_W, X_NPAT, X_G = range(6)
#: how a population's neurons are grouped by a key (sending core, route class) for counting
#: marked neurons per key without a per-spike step (see :func:`_structure`): none (spike by
#: spike), runs of equal key (bit words and popcount), rows of equal key pattern (byte lanes);
#: S_ONE (I_RMODE only): the population is one route class, whose count is the spike count
S_NONE, S_RUNS, S_ROWS, S_ONE = 0, 1, 2, 3
#: bits of the engine's per-neuron mark byte: spiked, active (input convention), active (state
#: convention); the update loops of populations with ``I_WORK`` 2 write all three
SH_SPIKE, SH_ACT_INPUT, SH_ACT_STATE = 0, 1, 2
B_SPIKE, B_ACT_INPUT, B_ACT_STATE = 1 << SH_SPIKE, 1 << SH_ACT_INPUT, 1 << SH_ACT_STATE
assert (SH_SPIKE, SH_ACT_INPUT, SH_ACT_STATE) == (0, 1, 2)  # (add_marks64_3's order)
#: largest (neurons × messages per neuron) of a population whose route classes are looked for
#: (the search holds one int64 per message)
CLASS_SEARCH_MAX = 1 << 23
#: mean run of neurons on one core from which a 32-bit population sums its active updates in
#: its update loop, one call per run (I_WORK 1; shorter runs: marks, I_WORK 2).  Measured: a
#: call costs ~50 ns, marking ~0.25 ns a neuron more than summing
FUSE_RUN = 256
#: widest row pattern (lanes) of an S_ROWS structure
ROWS_WMAX = 4096
#: an S_ROWS row of 64 lanes holds its pattern in the low bits of ``seg[r, 2]`` and, above
#: them, whether the pattern's uint8 lane sums are emptied before the row is added: the bit
#: sets (they would pass 255 pieces) or the weighted set (255 / its largest weight)
ROW_PAT = (1 << 32) - 1
SPILL_BITS, SPILL_WEIGHTS = 1 << 32, 1 << 33
#: largest sum of the uint16 weighted lane set of an S_ROWS structure before it is emptied
W16 = 65535
CORE_BITS = 20
#: lane sets of an S_ROWS pattern: spikes, active (input), active (state), messages (the
#: spikes weighted by each neuron's messages, :data:`I_KW`: summed in uint16 lanes of their
#: own, the fourth set of the int64 sums when emptied)
NSETS = 4
#: copies of the per-step work buffers that consecutive spikes use in turn (see route_spikes)
COPIES = 4
#: after the depth slots of the kernel's ``sbuf`` (see :func:`_slots`): a flag that this
#: step's work used the receive ring's copies beyond the first (``SB_RECV``), and the last
#: step whose work did (``SB_RLAST``), so that :func:`close_step` sums only copies that may
#: hold work (``swp``'s copies are summed where they are used: :func:`route_spikes`)
SB_RECV, SB_RLAST = 0, 1
SB_EXTRA = 2
#: ``lat_ord``: runs of up to 64 consecutive neurons (local index) of one route latency,
#: longest first, each (latency << LAT_SHIFT) | (length - 1) << RUN_SHIFT | first neuron
LAT_SHIFT = 32
RUN_SHIFT = LAT_SHIFT - 6
RUN_FIRST = (1 << RUN_SHIFT) - 1
CORE_MASK = (1 << CORE_BITS) - 1
DELAY_MASK = 63
EV_SHIFT = CORE_BITS + 6


class WorkPack(NamedTuple):
    """What the kernel needs to count and time per-step, per-core work.

    ``on`` 0 disables everything (dummy arrays).  ``charge`` 0 = delivery, 1 = emission;
    ``active`` 0 = input, 1 = state.  ``times`` int64 ps in the ``T_*`` order; ``barrier`` ps.
    ``ncn`` mapped non-input neurons per core.  Routes, packed one int64 per record (see
    ``CORE_BITS``): ``nrec`` per neuron (plus one end record) its first message and its core,
    ``rt_ent`` per message of a spike its destination core, delay and synaptic events;
    ``snd`` per neuron its packed sending work and core.  ``route_lat`` ps: per neuron, the
    longest mesh route of its messages (0 without the mesh term); ``lat_ord`` each population's
    neurons by it, longest first, in runs of consecutive neurons (packed with it,
    :data:`LAT_SHIFT`; zero after the last run).  Runs of equal core inside
    each population (``run_ptr`` per population into ``run_end`` (exclusive, local index) and
    ``run_core``) for :func:`count_active`.  Route classes (``cls`` per neuron, local;
    ``cls_ptr`` / ``cls_ent`` their messages; dense tables ``dhas`` / ``dev`` over ``dcol``, or
    ranges of classes per destination ``crng`` (first, last + 1, events) from ``crptr``; for
    steps with many spikes, each destination's classes in ``pl_ent`` from ``pl_ptr``, each
    followed, as many entries on (a population's classes, then its coefficients), by its
    coefficient 1 << PACK | events; ``kmsg`` messages per neuron as weights of the rows structures), per-neuron
    receive rows (``drow``: int64, or int32 where :data:`I_ROWSH` > 0; over ``dcol_r``),
    counting structures (``seg``, ``frun``, ``fptr``, see :class:`Structures`).  ``pinfo``
    (populations, ``I_*``): per population
    whether its routes are uniform (:data:`I_UNIFORM`, see :func:`route_spikes`) with its one
    sending core, messages per neuron, first record and longest route, and whether every
    neuron's messages carry the same events (:data:`I_UEV`); whether any neuron has a bias;
    how its update loop counts active updates (:data:`I_WORK`: 0 not, 1 sums per run,
    2 marks); its route classes, dense table or ranges (:data:`I_FRANGE`, :data:`I_CRP`),
    messages per neuron if all equal (:data:`I_KPOP`, else −1), receive rows and its two
    structures (``I_SMODE``/``I_RMODE`` + ``X_*``).  ``depth`` = largest delay + 1
    (ring of receive work); ``lanes_max``, ``pat_max``, ``cls_max``, ``row_max`` size the
    kernel's scratch."""
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
    cls: np.ndarray
    cls_ptr: np.ndarray
    cls_ent: np.ndarray
    dev: np.ndarray
    dhas: np.ndarray
    dcol: np.ndarray
    crng: np.ndarray
    crptr: np.ndarray
    pl_ptr: np.ndarray
    pl_ent: np.ndarray
    snd: np.ndarray
    drow: np.ndarray
    dcol_r: np.ndarray
    row_max: int
    seg: np.ndarray
    frun: np.ndarray
    fptr: np.ndarray
    lat_ord: np.ndarray
    kmsg: np.ndarray
    lanes_max: int
    pat_max: int
    cls_max: int
    acores: np.ndarray
    acptr: np.ndarray


class MarkTables(NamedTuple):
    """What :func:`count_marks` and :func:`route_spikes` read of the WorkPack.  The kernel's
    helpers take such small tuples, not the WorkPack: a call passes every array of a tuple
    argument, seven values per 1-D array, nearly all pushed on the stack, and a call with the
    whole WorkPack pushed ~270 of them (~300–600 instructions a call, in the assembly).
    :func:`count_marks`' own helpers are inlined into it: no call at all."""
    mesh: int
    charge: int
    depth: int
    n_cores: int
    pinfo: np.ndarray
    kmsg: np.ndarray
    lat_ord: np.ndarray
    route_lat: np.ndarray
    seg: np.ndarray
    fptr: np.ndarray
    frun: np.ndarray
    snd: np.ndarray
    cls: np.ndarray
    cls_ptr: np.ndarray
    cls_ent: np.ndarray
    dcol_r: np.ndarray
    drow: np.ndarray
    nrec: np.ndarray
    rt_ent: np.ndarray
    dev: np.ndarray
    dhas: np.ndarray
    dcol: np.ndarray
    crng: np.ndarray
    crptr: np.ndarray
    pl_ptr: np.ndarray
    pl_ent: np.ndarray


class SegTables(NamedTuple):
    """The counting structures: what :func:`_count_struct` reads (see :class:`MarkTables`)."""
    pinfo: np.ndarray
    seg: np.ndarray
    fptr: np.ndarray
    frun: np.ndarray


class UniformTables(NamedTuple):
    """What :func:`route_uniform` reads (see :class:`MarkTables`)."""
    charge: int
    depth: int
    n_cores: int
    pinfo: np.ndarray
    snd: np.ndarray
    rt_ent: np.ndarray


class CloseTables(NamedTuple):
    """What :func:`close_step` reads (see :class:`MarkTables`); ``gates``: 1 if the network
    has max-pool gates (their deliveries per core are read only then)."""
    active: int
    barrier: int
    depth: int
    n_cores: int
    gates: int
    times: np.ndarray
    ncn: np.ndarray


class ActiveTables(NamedTuple):
    """What :func:`count_active` and :func:`const_active` read (see :class:`MarkTables`)."""
    pinfo: np.ndarray
    run_ptr: np.ndarray
    run_end: np.ndarray
    run_core: np.ndarray
    acores: np.ndarray
    acptr: np.ndarray


@njit(cache=True, inline="always")
def mark_tables(wk):
    """The :class:`MarkTables` of a WorkPack (built once per sample by the kernel)."""
    return MarkTables(wk.mesh, wk.charge, wk.depth, wk.n_cores, wk.pinfo, wk.kmsg,
                      wk.lat_ord, wk.route_lat, wk.seg, wk.fptr, wk.frun, wk.snd, wk.cls,
                      wk.cls_ptr, wk.cls_ent, wk.dcol_r, wk.drow, wk.nrec, wk.rt_ent, wk.dev,
                      wk.dhas, wk.dcol, wk.crng, wk.crptr, wk.pl_ptr, wk.pl_ent)


@njit(cache=True, inline="always")
def step_tables(wk, gates):
    """The :class:`UniformTables`, :class:`CloseTables` and :class:`ActiveTables` of a
    WorkPack (built once per sample by the kernel; ``gates``: has max-pool gates)."""
    return (UniformTables(wk.charge, wk.depth, wk.n_cores, wk.pinfo, wk.snd, wk.rt_ent),
            CloseTables(wk.active, wk.barrier, wk.depth, wk.n_cores, 1 if gates else 0,
                        wk.times, wk.ncn),
            ActiveTables(wk.pinfo, wk.run_ptr, wk.run_end, wk.run_core, wk.acores, wk.acptr))


def off(n_cores: int = 1) -> WorkPack:
    z = np.zeros(1, np.int64)
    return WorkPack(0, 0, 0, 0, np.zeros(8, np.int64), 0, np.zeros(max(n_cores, 1), np.int64),
                    z, z, z, z, z, z, np.zeros((1, N_INFO), np.int64), 1, max(n_cores, 1),
                    np.zeros(1, np.int32), z, z, np.zeros(1, np.int32), np.zeros(1, np.int8), z,
                    np.zeros((1, 3), np.int64), z, z, z, z,
                    z, z, 8, np.zeros((1, 3), np.int64), np.zeros((1, 3), np.int64), z,
                    z, np.zeros(64, np.uint8), 64, 1, 1, z, z)


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
    pinfo = np.zeros((len(pops), N_INFO), np.int64)
    for i, p in enumerate(pops):
        b, n = int(P[i, C.P_BASE]), int(P[i, C.P_SIZE])
        pinfo[i, I_BIAS] = int(not p.is_input and np.any(pk.bias[b:b + n] != 0))
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
            # and every neuron's message j carries the same synaptic events: the step's
            # receive work is the spike count times the first neuron's (no gather)
            evn = (ent[r0:int(rt_ptr[b + n])] >> EV_SHIFT).reshape(n, int(k[0]))
            pinfo[i, I_UEV] = int((evn == evn[:1]).all())
    cls, cls_ptr, cls_ent, dev, dhas, dcol, crng, crptr, pl_ptr, pl_ent = _route_classes(
        pops, P, rt_ptr, ent, pinfo, analog)
    # per neuron its sending work, packed: (spike << PACK | messages) << CORE_BITS | core (a
    # spike of an input population costs no neuron time)
    spk = np.ones(nn, np.int64)
    for i, p in enumerate(pops):
        if p.is_input:
            spk[int(P[i, C.P_BASE]):int(P[i, C.P_BASE] + P[i, C.P_SIZE])] = 0
    snd = ((((spk << PACK) | np.diff(rt_ptr)) << CORE_BITS) | core) if nn else \
        np.zeros(1, np.int64)
    for i in range(len(pops)):  # the range of a population's sending cores (route_spikes)
        c = core[int(P[i, C.P_BASE]):int(P[i, C.P_BASE] + P[i, C.P_SIZE])]
        pinfo[i, I_SCLO], pinfo[i, I_SCHI] = (c.min(), c.max() + 1) if c.size else (0, 0)
    # per-neuron rows of receive work over a population's few destinations (see route_spikes)
    drow, dcol_r = [], []
    for i, p in enumerate(pops):
        b, n = int(P[i, C.P_BASE]), int(P[i, C.P_SIZE])
        if n == 0 or (p.is_input and analog) or pinfo[i, I_UNIFORM] == 1:
            continue
        r0, r1 = int(rt_ptr[b]), int(rt_ptr[b + n])
        if r1 == r0:
            continue
        x = ent[r0:r1]
        key = x & ((DELAY_MASK << CORE_BITS) | CORE_MASK)
        dst = np.unique(key)
        width = -(-dst.size // 8) * 8
        if width > ROW_DMAX or n * width > 1 << 21:
            continue
        k = np.diff(rt_ptr[b:b + n + 1])
        at = (np.repeat(np.arange(n), k), np.searchsorted(dst, key))
        # 32-bit rows (half the memory a spike reads: the input layer's table is read
        # sparsely every step and does not stay in cache) where a step's sums of a column
        # provably fit: each neuron spikes at most once a step, so they are at most the
        # column's totals, messages << sh | events with events < 2^sh
        msg = np.bincount(at[1], minlength=width)
        ev = np.bincount(at[1], weights=(x >> EV_SHIFT).astype(np.float64), minlength=width)
        sh = max(1, int(ev.max()).bit_length())
        if sh < ROW32_BITS and int(msg.max()) < 1 << (ROW32_BITS - sh):
            tab = np.zeros((n, width), np.int32)
            tab[at] = (1 << sh) + (x >> EV_SHIFT)
            pinfo[i, I_ROWSH] = sh
            # (kept in ``drow`` too, read as int32 from twice its int64 offset: one more
            # WorkPack field measurably slowed the kernel of other networks, see README)
            pinfo[i, I_ROW0] = 2 * sum(a.size for a in drow)
            drow.append(tab.reshape(-1).view(np.int64))  # (n · width even: width % 8 == 0)
        else:
            tab = np.zeros((n, width), np.int64)
            tab[at] = (np.int64(1) << PACK) + (x >> EV_SHIFT)
            pinfo[i, I_ROW0] = sum(a.size for a in drow)
            drow.append(tab.reshape(-1))
        pinfo[i, I_ROWW] = width
        pinfo[i, I_ROWC] = sum(a.size for a in dcol_r)
        pinfo[i, I_ROWN] = dst.size
        dcol_r.append(dst)
    # counting structures: per population by sending core (spikes, messages, active updates)
    # and by route class (messages and synaptic events at the receiving cores)
    sx = Structures()
    if route_lat.max(initial=0) >> LAT_SHIFT:
        raise SimulationError(f"a mesh route of {route_lat.max()} ps is longer than the "
                              f"latency counters hold ({(1 << LAT_SHIFT) - 1} ps)")
    if mesh and P[:, C.P_SIZE].max(initial=0) > 1 << RUN_SHIFT:
        raise SimulationError(f"a population of {P[:, C.P_SIZE].max()} neurons is larger than "
                              f"the longest-route search holds ({1 << RUN_SHIFT} neurons); "
                              "time it without the mesh term (mesh='none')")
    lat_ord = np.zeros(max(nn, 1), np.int64)
    kmsg = []
    acores, acptr = [], [0]
    for i, p in enumerate(pops):
        b, n = int(P[i, C.P_BASE]), int(P[i, C.P_SIZE])
        if n == 0 or p.is_input:
            continue  # (an input population's marks are not per neuron: spike by spike)
        L = int(p.shape[-1]) if len(p.shape) == 3 else n
        k = np.diff(rt_ptr[b:b + n + 1])
        pinfo[i, I_KPOP] = int(k[0]) if (k == k[0]).all() else -1
        # messages per neuron not all equal: where the sending-core structure sums its marks
        # in 64 byte lanes, the spikes weighted by their messages are summed in a lane set of
        # their own (the messages per sending core, without a step per spike)
        kq = int(k.max()) if pinfo[i, I_KPOP] < 0 and 0 < int(k.max()) <= 255 else 0
        # (a structure by sending core also lets the update loop mark the active updates:
        # no pass of count_active's own, measured ~3 cycles a neuron on tests_99.20's 128)
        sx.add(pinfo[i], I_SMODE, core[b:b + n], L, kq, 3 * n)
        if pinfo[i, I_NCLS] == 1:  # (no structure: no pass over the marks)
            pinfo[i, I_RMODE] = S_ONE
        elif pinfo[i, I_NCLS]:
            sx.add(pinfo[i], I_RMODE, pinfo[i, I_CLS0] + cls[b:b + n].astype(np.int64), L)
            # runs by sending core that are also runs by route class (a tile of channels of
            # one position block, sending to one set of cores): one count of a run's spikes
            # for both
            if pinfo[i, I_SMODE] == S_RUNS and pinfo[i, I_RMODE] == S_RUNS:
                sr = [np.asarray(sx.seg[pinfo[i, x + X_LO]:pinfo[i, x + X_HI]])[:, :2]
                      for x in (I_SMODE, I_RMODE)]
                pinfo[i, I_SRSAME] = int(sr[0].shape == sr[1].shape and (sr[0] == sr[1]).all())
        # 32-bit update loops count the active updates too: summed in the loop, a call per
        # run on one core, where the runs are long; else marked for count_marks where the
        # population has a structure to count the marks by (else count_active's own pass)
        nrun = run_ptr[i + 1] - run_ptr[i]
        if P[i, C.P_LANE32] == 1 and P[i, C.P_OVF] == 0:
            if nrun == 1 or nrun * FUSE_RUN <= n:  # (one run: no marks to count, one call)
                pinfo[i, I_WORK] = 1
            elif pinfo[i, I_SMODE] != S_NONE:
                pinfo[i, I_WORK] = 2
        elif P[i, C.P_OVF] == 0 and P[i, C.P_DU] == C.DECAY_ONE and P[i, C.P_DV] == 0 and \
                nrun * FUSE_RUN > n and pinfo[i, I_SMODE] != S_NONE:
            # 64-bit IF loops (an analog first layer, a v range beyond 32 bits) mark where the
            # runs are short: count_active's pass costs a loop per run (the tests_99.20
            # network for loihi1: 7,436 runs of ~3 neurons in its first layer, 76 % of the run)
            pinfo[i, I_WORK] = 2
        if kq and pinfo[i, I_SMODE] == S_ROWS and pinfo[i, I_SMODE + X_W] == 64:
            pinfo[i, I_KW] = kq
            pinfo[i, I_KW0] = sum(a.size for a in kmsg)
            kmsg.append(k.astype(np.uint8))
        if pinfo[i, I_WORK] == 2 and _constant_activity(pk, i):
            # both conventions' active updates are the same in every step of a sample:
            # marked and counted in step 1 only, then added per core (const_active)
            acores.append(np.unique(core[b:b + n]))
            acptr.append(acptr[-1] + acores[-1].size)
            pinfo[i, I_ACONST] = len(acores)
        lat_ord[b:b + n] = _latency_runs(route_lat[b:b + n])
    return WorkPack(on=1, charge=1 if timing.synaptic_charge == "emission" else 0,
                    active=1 if timing.active_update == "state" else 0, mesh=mesh,
                    times=times, barrier=_ps(timing.barrier_for(tiles_in_use(net))),
                    ncn=ncn, nrec=nrec, rt_ent=one(ent.astype(np.int64)),
                    route_lat=route_lat, run_ptr=run_ptr, run_end=cat(run_end),
                    run_core=cat(run_core), pinfo=pinfo, depth=depth, n_cores=n_cores,
                    cls=cls, cls_ptr=cls_ptr, cls_ent=cls_ent, dev=dev, dhas=dhas, dcol=dcol,
                    crng=crng, crptr=crptr, pl_ptr=pl_ptr, pl_ent=pl_ent,
                    snd=snd,
                    drow=cat(drow), dcol_r=cat(dcol_r), row_max=max(
                        [8] + [int(w) for w in pinfo[:, I_ROWW]]),
                    **sx.arrays(),
                    lat_ord=lat_ord, kmsg=np.concatenate(kmsg + [np.zeros(64, np.uint8)]),
                    cls_max=max(1, int(pinfo[:, I_NCLS].max())), acores=cat(acores),
                    acptr=np.asarray(acptr, np.int64))


def _latency_runs(rl):
    """``lat_ord`` of one population (route latencies ``rl`` by local neuron): its neurons by
    latency, longest first, in runs of up to 64 consecutive neurons of one latency (packed,
    :data:`LAT_SHIFT`), zero after the last.  The step's longest route among the spikes is
    the latency of the first run with a spike: one 64-byte test a run where a test per neuron
    looked at ~180 neurons a step in tests_99.20's first layer (its blank border's neurons
    have the longest routes and rarely spike)."""
    n = rl.size
    o = np.argsort(-rl, kind="stable")
    lat = rl[o]
    cut = np.flatnonzero((np.diff(o) != 1) | (np.diff(lat) != 0)) + 1
    lo = np.concatenate(([0], cut))
    hi = np.concatenate((cut, [n]))
    pieces = (hi - lo + 63) >> 6  # (runs longer than 64 cut into pieces)
    k = np.repeat(np.arange(lo.size), pieces)
    a = lo[k] + 64 * (np.arange(k.size) - np.repeat(np.cumsum(pieces) - pieces, pieces))
    ln = np.minimum(hi[k] - a, 64)
    out = np.zeros(n, np.int64)
    out[:a.size] = (lat[a] << LAT_SHIFT) | ((ln - 1) << RUN_SHIFT) | o[a]
    return out


def _constant_activity(pk, i) -> bool:
    """Are population i's active updates, under both conventions, the same in every step of
    a sample?  Yes where its only input is the analog current (Q is the same in every step)
    and it is an IF neuron without leak under 'saturate' (the 64-bit loops of
    ``kernels._sat_if_analog`` and ``_sat_if_work``): a neuron with Q ≠ 0 is active under
    both conventions in every step; with Q = 0 and a bias, under 'state' only, in every step;
    with Q = 0 and no bias, v + Q + bias = v, so v stays at its initial value — unless that is
    at or above the firing level (it would fire and reset) or out of range, which is ruled
    out here for every neuron without bias.  A converted network's analog first layer, its
    largest layer as a rule (tests_99.20's: 21,632 of 44,810 neurons)."""
    P = pk.pop
    b, n = int(P[i, C.P_BASE]), int(P[i, C.P_SIZE])
    ks = pk.in_proj[int(P[i, C.P_INLO]):int(P[i, C.P_INHI])]
    if not (P[i, C.P_ANALOG] == 1 and len(ks) and (pk.proj[ks, C.J_ANALOG] == 1).all()
            and P[i, C.P_OVF] == 0 and P[i, C.P_DU] == C.DECAY_ONE and P[i, C.P_DV] == 0
            and P[i, C.P_LANE32] == 0):
        return False
    v0 = pk.v0[b:b + n][pk.bias[b:b + n] == 0].astype(np.int64)
    fire = int(P[i, C.P_THR]) + int(P[i, C.P_RULE])
    return bool(((v0 >= int(P[i, C.P_VMIN])) & (v0 <= int(P[i, C.P_VMAX]))
                 & ((v0 < fire) | (P[i, C.P_SPIKING] == 0))).all())


class Structures:
    """The counting structures of a network's populations (see :func:`_structure`), built one
    (population, key) at a time: ``seg`` rows (lo, hi, key or pattern), ``frun`` per S_ROWS
    pattern its runs of lanes with one key (j0, j1, key) from ``fptr[pattern]``;
    ``lanes_max`` / ``pat_max`` size the kernel's scratch."""

    def __init__(self):
        self.seg, self.frun, self.fptr = [], [], [0]
        self.lanes_max, self.pat_max = 64, 1

    def add(self, row, col, key, L, kq=0, spare=0):
        """Choose the structure of ``key`` (int64 per neuron, rows of ``L``) and record it in
        the population's ``pinfo`` row at ``col`` (I_SMODE or I_RMODE).  ``kq`` > 0: an
        S_ROWS structure of 64 lanes will also sum spike marks weighted by up to ``kq``
        (:data:`I_KW`); ``spare``: what a structure saves besides (see :func:`_structure`)."""
        mode, rows, lanes, W = _structure(np.asarray(key, np.int64), L, spare)
        if mode == S_NONE:
            return
        if mode == S_ROWS and W == 64:
            rows = _plan64(rows, len(lanes), kq)
        npat = len(lanes)
        if mode == S_RUNS:
            size = np.array([b - a for a, b, _ in rows])
            L = int(size[0])
            W, npat = 0, 0
            if (size == L).all() and (64 % L == 0 or L % 64 == 0):
                W, npat = L, (size.size if L >= 64 else int(size.sum()) // 64 * (64 // L))
        row[col:col + 6] = (mode, len(self.seg), len(self.seg) + len(rows), W, npat,
                            len(self.fptr) - 1)
        for lane in lanes:
            cut = np.flatnonzero(np.diff(lane)) + 1
            j0, j1 = np.append(0, cut), np.append(cut, lane.size)
            self.frun.extend(zip(j0.tolist(), j1.tolist(), lane[j0].tolist()))
            self.fptr.append(len(self.frun))
        self.seg.extend(rows)
        self.lanes_max = max(self.lanes_max, len(lanes) * W)
        self.pat_max = max(self.pat_max, len(lanes))

    def arrays(self) -> dict:
        tab = (lambda x: np.asarray(x, np.int64).reshape(-1, 3) if x
               else np.zeros((1, 3), np.int64))
        return dict(seg=tab(self.seg), frun=tab(self.frun), fptr=np.asarray(self.fptr, np.int64),
                    lanes_max=self.lanes_max, pat_max=self.pat_max)


def _plan64(rows, npat, kq):
    """The rows of an S_ROWS structure of 64 lanes cut so that one call adds at most 255
    pieces (64 neurons, the last of a row partial) to a lane, and at most ``W16`` // ``kq``
    when the weighted set (uint16 lanes) is summed, and marked where their pattern's sums
    must be emptied first (:data:`SPILL_BITS`: the uint8 bit sets, :data:`SPILL_WEIGHTS`):
    every step adds the same rows in the same order, so when a sum could wrap is known before
    the run."""
    cap = min(255, W16 // kq) if kq > 0 else 255
    nbits, nwt = [0] * npat, [0] * npat
    out = []
    for a, b, q in rows:
        s = a
        while s < b:
            take = min((b - s + 63) // 64, cap)
            e = min(b, s + 64 * take)
            flags = 0
            if nbits[q] + take > 255:
                flags |= SPILL_BITS
                nbits[q] = 0
            nbits[q] += take
            if kq > 0:
                if nwt[q] + take * kq > W16:
                    flags |= SPILL_WEIGHTS
                    nwt[q] = 0
                nwt[q] += take * kq
            out.append([s, e, q | flags])
            s = e
    return out


def _structure(key, L, spare=0):
    """How to count a population's marked neurons per value of ``key`` (int64 per neuron)
    without a step per spike, viewing the population as rows of ``L`` neurons (its channels;
    the whole population if flat).  Returns (mode, rows, patterns, W), ``rows`` a list of
    [lo, hi, x] neuron ranges:

    * :data:`S_RUNS`: one row per run of equal key (x = the key), counted by 64-bit words of
      marks and ``popcnt``: ~1 step per run and per 64 neurons;
    * :data:`S_ROWS`: one row per block of consecutive rows with the same row of keys (x =
      which of the distinct ``patterns``, 0, 1, …).  A block's marks are summed in the ``W`` lanes
      (W = lcm(L, 64), so lane j holds column j mod L) of its pattern's accumulator, 64 lanes
      in one vector operation, and each lane's sum goes to its key (``pattern[j]``) once per
      step: ~1 vector operation per 64 neurons, plus W steps per pattern;
    * :data:`S_NONE`: neither is cheaper than a step per spike at ~10 % activity and the
      ``spare`` work a structure saves besides (sending cores: the pass of
      :func:`count_active` over the neurons, ~3n, that marks counted by it replace).

    The estimates are in rough instruction counts."""
    n = key.size
    cut = np.flatnonzero(np.diff(key)) + 1
    lo, hi = np.append(0, cut), np.append(cut, n)
    cost_runs = 12 * lo.size + n // 8
    cost_rows = None
    if 1 < L < n and n % L == 0 and math.lcm(L, 64) <= ROWS_WMAX:
        rk = key.reshape(-1, L)
        bcut = np.flatnonzero(np.any(rk[1:] != rk[:-1], axis=1)) + 1
        blo, bhi = np.append(0, bcut), np.append(bcut, rk.shape[0])
        W = math.lcm(L, 64)
        uniq, which = np.unique(rk[blo], axis=0, return_inverse=True)
        which = which.reshape(-1)
        tail = int(np.sum(((bhi - blo) * L % W) % 64))
        cost_rows = 4 * (n // 64) + 6 * blo.size + 2 * tail + 4 * W * uniq.shape[0]
    budget = max(n, 64) + spare
    if cost_rows is None or cost_runs <= cost_rows:
        if cost_runs > budget:
            return S_NONE, [], [], 0
        return S_RUNS, [[int(a), int(b), int(key[a])] for a, b in zip(lo, hi)], [], 0
    if cost_rows > budget:
        return S_NONE, [], [], 0
    return S_ROWS, [[int(a) * L, int(b) * L, int(w)] for a, b, w in zip(blo, bhi, which)], \
        [np.resize(u, W).astype(np.int64) for u in uniq], W


def _route_classes(pops, P, rt_ptr, ent, pinfo, analog):
    """Route classes: the neurons of a population whose messages are the same list of
    (destination core, delay, synaptic events).  A step's receive work is then counted per
    class (spikes per class, then each class's messages once), not per spike and message.
    Sets ``pinfo[:, I_CLS0]`` (first class) and ``pinfo[:, I_NCLS]`` (0: none looked for, the
    population routes spike by spike); returns (class of every neuron (int32, local to its
    population), first record of every class (+ end), the classes' records)."""
    nn = rt_ptr.shape[0] - 1
    cls = np.zeros(max(nn, 1), np.int32)
    ptr, recs = [0], []
    dense, dmask, dcols, crng, crptr, pl_ptr, pl_ent = [], [], [], [], [], [], []
    n_cls = 0
    for i, p in enumerate(pops):
        b, n = int(P[i, C.P_BASE]), int(P[i, C.P_SIZE])
        if n == 0 or (p.is_input and analog) or pinfo[i, I_UNIFORM] == 1:
            continue
        k = np.diff(rt_ptr[b:b + n + 1])
        kmax = int(k.max())
        if kmax == 0 or n * kmax > CLASS_SEARCH_MAX:
            continue
        r0 = int(rt_ptr[b])
        # one row per neuron: its records, then -1 padding (records are non-negative)
        rows = np.full((n, kmax), -1, np.int64)
        pos = np.arange(int(rt_ptr[b + n]) - r0) - np.repeat(rt_ptr[b:b + n] - r0, k)
        rows[np.repeat(np.arange(n), k), pos] = ent[r0:int(rt_ptr[b + n])]
        uniq, inv = np.unique(rows, axis=0, return_inverse=True)
        if uniq.shape[0] * 4 > n:  # too few neurons share their messages to pay
            continue
        # classes numbered in the order of their first neuron: neighbouring neurons' classes
        # get neighbouring numbers, so that a destination's classes form few ranges
        inv = inv.reshape(-1)
        first = np.full(uniq.shape[0], n, np.int64)
        np.minimum.at(first, inv, np.arange(n))
        order = np.argsort(first, kind="stable")
        rank = np.empty(uniq.shape[0], np.int64)
        rank[order] = np.arange(uniq.shape[0])
        uniq, inv = uniq[order], rank[inv]
        cls[b:b + n] = inv
        pinfo[i, I_CLS0] = n_cls
        pinfo[i, I_NCLS] = uniq.shape[0]
        # how a step's class counts become receive work (estimated costs, in units of ~0.23 ns
        # measured on LeNet 32/64's first pooling layer): message by message for each class
        # with spikes (~8 a message); a dense table (destination (delay, core) × class) of
        # packed receive work times the counts (1 an entry); or, per destination, its runs of
        # consecutive classes whose messages to it carry the same events, each run's spikes
        # a difference of prefix sums of the counts (~15 a run, ~4 a class: a convolution's
        # destinations see a few rows of neighbouring positions, numbered consecutively)
        v = uniq[uniq >= 0]
        dst = np.unique(v & ((DELAY_MASK << CORE_BITS) | CORE_MASK))
        ncl = uniq.shape[0]
        kk, jj = np.nonzero(uniq >= 0)
        x = uniq[kk, jj]
        col = np.searchsorted(dst, x & ((DELAY_MASK << CORE_BITS) | CORE_MASK))
        o = np.lexsort((kk, col))
        c_, k_, e_ = col[o], kk[o], (x >> EV_SHIFT)[o]
        new = np.ones(c_.size, bool)
        new[1:] = (c_[1:] != c_[:-1]) | (k_[1:] != k_[:-1] + 1) | (e_[1:] != e_[:-1])
        st_ = np.flatnonzero(new)
        en_ = np.append(st_[1:], c_.size)
        cost_msg = 8 * v.size
        cost_dense = dst.size * ncl if dst.size * ncl <= DENSE_MAX else cost_msg + 1
        cost_range = 15 * st_.size + 4 * ncl
        if cost_range < min(cost_msg, cost_dense) and n < 1 << 31:  # (int32 prefix sums)
            pinfo[i, I_FRANGE] = 1
            pinfo[i, I_CRP] = sum(a.size for a in crptr)
            pinfo[i, I_NDC] = dst.size
            pinfo[i, I_DC0] = sum(a.size for a in dcols)
            r0_ = sum(a.shape[0] for a in crng)
            crng.append(np.stack([k_[st_], k_[en_ - 1] + 1, e_[st_]], axis=1))
            crptr.append(r0_ + np.searchsorted(c_[st_], np.arange(dst.size + 1)))
            dcols.append(dst)
        elif cost_dense <= cost_msg:
            ev = np.zeros((dst.size, ncl), np.int64)
            ev[col, kk] = x >> EV_SHIFT
            has = np.zeros((dst.size, ncl), np.int8)
            has[col, kk] = -1
            # 32-bit sums: a step's messages and events into one destination stay < 2^31
            # (each neuron of a class spikes at most once a step)
            size = np.bincount(inv, minlength=ncl).astype(np.int64)
            if (ev @ size).max() < 1 << 31 and size.sum() < 1 << 31:
                pinfo[i, I_DM0] = sum(a.size for a in dense)
                pinfo[i, I_NDC] = dst.size
                pinfo[i, I_DC0] = sum(a.size for a in dcols)
                evs = np.unique(x >> EV_SHIFT)
                pinfo[i, I_EVU] = int(evs[0]) if evs.size == 1 else -1
                dense.append(ev.astype(np.int32).reshape(-1))
                dmask.append(has.reshape(-1))
                dcols.append(dst)
        if pinfo[i, I_NDC] == 0 and (e_.size == 0 or int(e_.max()) < 1 << PACK):
            # message by message, and also by destination for steps where most classes
            # have spikes: each destination's classes, then (as many entries on) their
            # coefficients (1 << PACK) + events, the class counts times them summed in
            # registers (no read-modify-write of the receive ring per message, no branch on a
            # class's count or message number)
            pinfo[i, I_PNDC] = dst.size
            pinfo[i, I_DC0] = sum(a.size for a in dcols)  # (unused by this mode otherwise)
            pinfo[i, I_PP0] = sum(a.size for a in pl_ptr)
            ent0 = sum(a.size for a in pl_ent)
            pl_ptr.append(ent0 + np.searchsorted(c_, np.arange(dst.size + 1)))
            pl_ent.append(np.concatenate((k_, (np.int64(1) << PACK) + e_)))
            dcols.append(dst)
        for row in uniq:
            row = row[row >= 0]
            recs.append(row)
            ptr.append(ptr[-1] + row.size)
        n_cls += uniq.shape[0]
    cat = (lambda a: np.concatenate(a).astype(np.int64) if a else np.zeros(1, np.int64))
    cat32 = (lambda a: np.concatenate(a).astype(np.int32) if a else np.zeros(1, np.int32))
    cat8 = (lambda a: np.concatenate(a).astype(np.int8) if a else np.zeros(1, np.int8))
    rng3 = np.concatenate(crng).astype(np.int64) if crng else np.zeros((1, 3), np.int64)
    return (cls, np.asarray(ptr, np.int64), cat(recs), cat32(dense), cat8(dmask), cat(dcols),
            rng3, cat(crptr), cat(pl_ptr), cat(pl_ent))


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
#: parts of a population's work that route_spikes counts from the spike list
R_SEND, R_RECV, R_LAT = 1, 2, 4
R_ALL = R_SEND | R_RECV | R_LAT


@njit(cache=True, nogil=True, boundscheck=False, inline="always", **_BORROW)
def _slots(wk, t, sb):
    """``sb[d]``: the offset in the receive ring of the step that a message with delay d,
    sent in step t, is charged to."""
    nc = wk.n_cores
    D1 = wk.depth
    for d in range(D1):
        sb[d] = ((t if wk.charge == 1 else t + d) % D1) * nc


@njit(cache=True, nogil=True, boundscheck=False, inline="always", **_BORROW)
def _uniform(ut, p, rg, cnt, base, swp, rwp, sb, parts):
    """:func:`route_spikes` of a population with uniform routes (``I_UNIFORM``): one sending
    core, every neuron sends its K messages to the same (core, delay) list: cnt times a
    constant, except the synaptic events, one gather-sum per message column unless every
    neuron's message carries the same events (``I_UEV``).  ``sb`` filled by the caller."""
    pi = ut.pinfo
    one = np.int64(1) << PACK
    ent = ut.rt_ent
    K = pi[p, I_K]
    r0 = pi[p, I_REC0]
    swp[pi[p, I_CORE]] += cnt * (ut.snd[base] >> CORE_BITS)  # spikes, messages
    uev = pi[p, I_UEV] == 1
    for j in range(K):
        x = ent[r0 + j]
        if uev:
            ev = cnt * (x >> EV_SHIFT)
        else:
            ev = np.int64(0)
            col = ent[r0 + j:]
            uk = np.uint64(K)
            for e in range(cnt):
                ev += col[np.uint64(rg[e]) * uk] >> EV_SHIFT
        rwp[sb[(x >> CORE_BITS) & DELAY_MASK] + (x & CORE_MASK)] += cnt * one + ev
    return pi[p, I_LAT] if parts & R_LAT else np.int64(0)


@hot
def route_uniform(ut, p, ring, dst, cnt, base, t, swp, rwp, sb):
    """:func:`route_spikes` (all parts) for the kernel's populations with uniform routes and
    no marks to count, reading only the :class:`UniformTables`."""
    if cnt == 0:
        return np.int64(0)
    _slots(ut, t, sb)
    return _uniform(ut, p, ring[dst:dst + cnt], cnt, base, swp, rwp, sb, R_ALL)


def _route_spikes(mt, p, ring, dst, cnt, base, t, swp, rwp, sb, ccnt, m32, acc, parts):
    """Count the spikes ``ring[dst:dst+cnt]`` (local ids) of population p (first neuron
    ``base``) emitted in step t from the spike list: the ``parts`` (``R_*`` bits) the caller
    does not count otherwise (input populations, whose marks are not per neuron: all;
    :func:`count_marks`: what a population's structures do not cover).  Sending work packed
    into ``swp``; receive work packed into the ring ``rwp`` (depth · cores per copy) at the
    step each message is charged (``sb``: filled here with the slot offset per delay, so the
    inner loops have no division; a message charged after step T lands in a slot no later
    step reads).  Returns the longest mesh route among the spikes (ps; 0 without the mesh
    term or the ``R_LAT`` part).

    Receive work: by route class when there are no more classes than spikes (one count per
    spike for its class, then each class's messages once, :func:`_flush_classes`); where a
    population sends to few destinations (delay, core), a spike adds its row of packed work
    over them (:attr:`WorkPack.drow`; 32-bit where a step's sums provably fit,
    :data:`I_ROWSH`) to the step's sums ``acc`` (a few vector adds, no branch); else message
    by message.  ``swp``, ``rwp`` and the class counts ``ccnt`` hold
    :data:`COPIES` copies, used in turn by consecutive spikes, so that no add waits for the
    one before it on the same address and no branch is needed; those of ``swp`` are summed
    here over the population's range of sending cores (where it holds no more cores than
    spikes, else one copy is used), the others by :func:`close_step`."""
    if cnt == 0:
        return np.int64(0)
    nc = mt.n_cores
    D1 = mt.depth
    _slots(mt, t, sb)
    pi = mt.pinfo
    one = np.int64(1) << PACK
    # the loops over the spikes index with unsigned integers: a signed index (which Numba
    # cannot prove non-negative) gets wrap-around code at every access, which made these
    # loops 2-3x slower (measured)
    ucm = np.uint64(COPIES - 1)
    rg = ring[dst:dst + cnt]
    if pi[p, I_UNIFORM] == 1:
        return _uniform(mt, p, rg, cnt, base, swp, rwp, sb, parts)
    if parts & R_SEND:  # one packed word per neuron (WorkPack.snd)
        sn = mt.snd[base:]
        unc = np.uint64(nc)
        lo, hi = pi[p, I_SCLO], pi[p, I_SCHI]
        scm = ucm if hi - lo <= cnt else np.uint64(0)
        for e in range(cnt):
            x = sn[np.uint64(rg[e])]
            swp[(np.uint64(e) & scm) * unc + np.uint64(x & CORE_MASK)] += x >> CORE_BITS
        if scm:
            for j in range(1, COPIES):
                sj = swp[j * nc:]
                for c in range(lo, hi):
                    swp[c] += sj[c]
                    sj[c] = 0
    ncl = pi[p, I_NCLS]
    W = pi[p, I_ROWW]
    if not parts & R_RECV:
        pass
    elif ncl != 0 and ncl <= cnt:
        cid = mt.cls[base:]
        unct = np.uint64(mt.cls_ptr.shape[0] - 1)
        cc = ccnt[pi[p, I_CLS0]:]
        for e in range(cnt):
            cc[(np.uint64(e) & ucm) * unct + np.uint64(cid[np.uint64(rg[e])])] += 1
        _flush_classes(mt, p, rwp, sb, ccnt, COPIES, m32, True)
    elif W:
        # (W a multiple of 8, at most ROW_DMAX = 32: one loop per width, sums in registers)
        dc = mt.dcol_r
        c0 = pi[p, I_ROWC]
        sh = pi[p, I_ROWSH]
        if sh:  # 32-bit rows, messages << sh | events
            a32 = acc.view(np.int32)
            for j in range(W):
                a32[j] = 0
            sum_rows(a32, mt.drow.view(np.int32)[pi[p, I_ROW0]:], rg, cnt, W)
            lo = (np.int64(1) << sh) - 1
            for j in range(pi[p, I_ROWN]):
                y = np.int64(a32[j])
                if y != 0:
                    x = dc[c0 + j]
                    rwp[sb[(x >> CORE_BITS) & DELAY_MASK] + (x & CORE_MASK)] += (
                        ((y >> sh) << PACK) + (y & lo))
        else:
            for j in range(W):
                acc[j] = 0
            sum_rows(acc, mt.drow[pi[p, I_ROW0]:], rg, cnt, W)
            for j in range(pi[p, I_ROWN]):
                if acc[j] != 0:
                    x = dc[c0 + j]
                    rwp[sb[(x >> CORE_BITS) & DELAY_MASK] + (x & CORE_MASK)] += acc[j]
    else:
        rs = np.uint64(D1 * nc)  # one copy of the receive ring
        sb[D1 + SB_RECV] = 1
        nr = mt.nrec[base:]
        ent = mt.rt_ent
        q = np.uint64(0)
        for e in range(cnt):
            g = np.uint64(rg[e])
            for r in range(np.uint64(nr[g] >> CORE_BITS),
                           np.uint64(nr[g + np.uint64(1)] >> CORE_BITS)):
                y = ent[r]
                rwp[(q & ucm) * rs + np.uint64(sb[np.uint64((y >> CORE_BITS) & DELAY_MASK)]
                                               + (y & CORE_MASK))] += one + (y >> EV_SHIFT)
                q += np.uint64(1)
    lat = np.int64(0)
    if parts & R_LAT and mt.mesh == 1:
        rl = mt.route_lat[base:]
        for e in range(cnt):
            lat = max(lat, rl[np.uint64(rg[e])])
    return lat


#: the kernel's (out of line); count_marks inlines its own copy
route_spikes = hot(_route_spikes)


@njit(cache=True, nogil=True, boundscheck=False, inline="always", **_BORROW)
def _flush_classes(ct, p, rwp, sb, ccnt, copies, m32, dense):
    """Each route class of population p with spikes this step: its messages, times its
    spikes, into the receive ring; the class counts (``copies`` of them) are cleared.  As
    chosen in :func:`_route_classes`: message by message for the classes with spikes; a
    dense (destination × class) table times the counts (a vectorised product with one store
    per destination, instead of a read-modify-write per message); or per destination its
    ranges of classes, each a difference of prefix sums of the counts."""
    pi = ct.pinfo
    nct = ct.cls_ptr.shape[0] - 1
    c0 = pi[p, I_CLS0]
    ncl = pi[p, I_NCLS]
    for j in range(1, copies):
        for k in range(c0, c0 + ncl):
            ccnt[k] += ccnt[j * nct + k]
            ccnt[j * nct + k] = 0
    ndc = pi[p, I_NDC]
    if pi[p, I_FRANGE] == 1:
        # prefix sums of the class counts (m32[k] = spikes of classes < k), then per
        # destination its ranges of classes: one difference each
        m32[0] = 0
        c = np.int32(0)
        for k in range(ncl):
            c = np.int32(c + np.int32(ccnt[c0 + k]))
            ccnt[c0 + k] = 0
            m32[k + 1] = c
        rg = ct.crng.reshape(-1)
        cr = ct.crptr[pi[p, I_CRP]:]
        dc = ct.dcol[pi[p, I_DC0]:]
        u3 = np.uint64(3)
        for d in range(ndc):
            a = np.int64(0)
            e = np.int64(0)
            for r in range(np.uint64(cr[d]), np.uint64(cr[d + 1])):
                q = r * u3
                y = np.int64(m32[np.uint64(rg[q + np.uint64(1)])] - m32[np.uint64(rg[q])])
                a += y
                e += y * rg[q + np.uint64(2)]
            if a != 0:
                x = dc[d]
                rwp[np.uint64(sb[np.uint64((x >> CORE_BITS) & DELAY_MASK)] + (x & CORE_MASK))] += (
                    (a << PACK) + e)
        return
    if ndc:
        for k in range(ncl):
            m32[k] = np.int32(ccnt[c0 + k])
            ccnt[c0 + k] = 0
        m = m32[:ncl]
        dm0 = pi[p, I_DM0]
        dc = ct.dcol
        evu = pi[p, I_EVU]
        for d in range(ndc):
            has = ct.dhas[dm0 + d * ncl:dm0 + (d + 1) * ncl]
            a = np.int32(0)
            e = np.int32(0)
            if evu >= 0:  # every message carries evu synaptic events: count the messages
                for k in range(ncl):  # (32-bit lanes: sums proven < 2^31 in pack_work)
                    a = np.int32(a + (m[k] & np.int32(has[k])))
                e = np.int32(a * evu)
            else:
                ev = ct.dev[dm0 + d * ncl:dm0 + (d + 1) * ncl]
                for k in range(ncl):
                    a = np.int32(a + (m[k] & np.int32(has[k])))
                    e = np.int32(e + np.int32(m[k] * ev[k]))
            if a != 0:
                x = dc[pi[p, I_DC0] + d]
                rwp[sb[(x >> CORE_BITS) & DELAY_MASK] + (x & CORE_MASK)] += (
                    (np.int64(a) << PACK) + np.int64(e))
        return
    cc = ccnt[c0:]
    if dense and pi[p, I_PNDC] > 0:
        # at least half as many spikes as classes: by destination, each a sum over its
        # classes of count times coefficient (messages << PACK | events at once), in two
        # chains of adds (tests_99.20's first layer: 64 % of its 672 classes have spikes in
        # a step; 3.2 -> 1.1 us a step on its real class counts, measured in isolation, then
        # 0.69 -> 0.55 us with the packed coefficients and two chains)
        nd = pi[p, I_PNDC]
        dc = ct.dcol[pi[p, I_DC0]:]
        pp = ct.pl_ptr[pi[p, I_PP0]:]
        pe = ct.pl_ent
        u1 = np.uint64(1)
        u2 = np.uint64(2)
        npr = np.uint64(pp[nd] - pp[0])  # (the coefficients follow the classes)
        for d in range(nd):
            s0 = np.int64(0)
            s1 = np.int64(0)
            r = np.uint64(pp[d])
            hi = np.uint64(pp[d + 1])
            while r + u1 < hi:
                s0 += cc[np.uint64(pe[r])] * pe[r + npr]
                s1 += cc[np.uint64(pe[r + u1])] * pe[r + u1 + npr]
                r += u2
            if r < hi:
                s0 += cc[np.uint64(pe[r])] * pe[r + npr]
            if s0 + s1 != 0:
                x = dc[d]
                rwp[np.uint64(sb[np.uint64((x >> CORE_BITS) & DELAY_MASK)] + (x & CORE_MASK))] += (
                    s0 + s1)
        for k in range(ncl):
            cc[k] = 0
        return
    # message by message; consecutive classes (neighbouring positions, the same
    # destinations) add to different copies of the receive ring, so that no add waits for the
    # one before it on the same address (close_step sums the copies)
    cp = ct.cls_ptr
    ce = ct.cls_ent
    one = np.int64(1) << PACK
    rs = np.uint64(ct.depth * ct.n_cores)
    ucm = np.uint64(COPIES - 1)
    sb[ct.depth + SB_RECV] = 1
    cq = cp[c0:]
    for k in range(np.uint64(ncl)):
        m = cc[k]
        if m == 0:
            continue
        cc[k] = 0
        o = (k & ucm) * rs
        for r in range(np.uint64(cq[k]), np.uint64(cq[k + np.uint64(1)])):
            x = ce[r]
            rwp[o + np.uint64(sb[np.uint64((x >> CORE_BITS) & DELAY_MASK)])
                + np.uint64(x & CORE_MASK)] += m * (one + (x >> EV_SHIFT))


@hot
def count_marks(mt, p, mask, bits, n, cnt, ring, dst, base, t, lat, swp, swa, rwp, sb, ccnt,
                l8, l16, wide, passes, m32):
    """The work of non-input population p in step t, counted from its mark bytes ``mask``
    (local index, ``n`` neurons) just after its update, by the population's counting structures (see
    :func:`_structure`): spikes and messages per sending core, the active updates per core
    when the update loop marked them (``bits``), spikes per route class and so the receive
    work.  Where a population has no structure for one of them, that part is counted from the
    spike list ``ring[dst:dst+cnt]`` as :func:`route_spikes` does.  Returns the longest mesh
    route so far (``lat`` or longer)."""
    pi = mt.pinfo
    uniform = pi[p, I_UNIFORM] == 1
    kpop = pi[p, I_KPOP]
    kw = pi[p, I_KW]  # (messages per neuron differ: summed as weights of the spike marks)
    spk_here = cnt > 0 and not uniform and (kpop >= 0 or kw > 0) and pi[p, I_SMODE] != S_NONE
    # runs by sending core that are also the route classes' runs: their spike counts go to
    # the class counts in the same pass (I_SRSAME)
    fuse = cnt > 0 and pi[p, I_SRSAME] == 1
    st = SegTables(pi, mt.seg, mt.fptr, mt.frun)
    if bits or spk_here or fuse:
        _count_struct(st, p, I_SMODE, mask, spk_here or fuse,
                      (np.int64(1) << PACK) + max(kpop, 0) if spk_here else np.int64(0), swp,
                      bits, swa, l8, l16, wide, passes, ccnt, pi[p, I_RLO] if fuse else -1,
                      mt.kmsg[pi[p, I_KW0]:], kw if spk_here else 0)
    if cnt == 0:
        return lat
    if uniform:
        _slots(mt, t, sb)
        return max(lat, _uniform(mt, p, ring[dst:dst + cnt], cnt, base, swp, rwp, sb, R_ALL))
    rest = (0 if spk_here else R_SEND) | (0 if pi[p, I_RMODE] != S_NONE else R_RECV)
    if rest:
        route_spikes(mt, p, ring, dst, cnt, base, t, swp, rwp, sb, ccnt, m32, wide, rest)
    if pi[p, I_RMODE] != S_NONE:
        if not rest:  # (else route_spikes has filled sb)
            _slots(mt, t, sb)
        if pi[p, I_RMODE] == S_ONE:
            ccnt[pi[p, I_CLS0]] += cnt
        elif not fuse:  # (bool variables, not literals: one compiled version)
            _count_struct(st, p, I_RMODE, mask, cnt > 0, np.int64(1), ccnt, cnt < 0, swa, l8,
                          l16, wide, passes, ccnt, -1, mt.kmsg, 0)
        _flush_classes(mt, p, rwp, sb, ccnt, 1, m32, 2 * cnt >= pi[p, I_NCLS])
    if mt.mesh == 1:
        # runs of neurons by longest route, longest first (_latency_runs): the first run
        # with a spike has the longest.  Looked for among as many runs as spikes, then over
        # the spike list: where the longest routes start at neurons that rarely spike (an
        # image's blank border) the search ran through thousands of neurons (tests_99.20's
        # first layer: ~1 us a step, when neuron by neuron)
        lo = mt.lat_ord[base:]  # (lat_ord is indexed like the neurons; zero after the runs)
        m = min(n, cnt)
        i = 0
        full = np.uint64(0xFFFFFFFFFFFFFFFF)
        while i < m:
            y = lo[i]
            v = y >> LAT_SHIFT
            if v <= lat:
                break
            ln = np.uint64((y >> RUN_SHIFT) & 63)  # (length - 1; the marks have 64 bytes'
            if bits64(mask, y & RUN_FIRST, B_SPIKE) & (full >> (np.uint64(63) - ln)):  # slack)
                lat = v
                break
            i += 1
        if i == m and m < n:
            rl = mt.route_lat[base:]
            for e in range(cnt):
                lat = max(lat, rl[np.uint64(ring[dst + e])])
    return lat


@njit(cache=True, inline="always")
def _spill(l8, wide, lo, hi):
    """The uint8 lane sums ``l8[lo:hi]`` added to the int64 sums ``wide`` and cleared."""
    for j in range(lo, hi):
        wide[j] += l8[j]
        l8[j] = 0


@njit(cache=True, inline="always")
def _runs_regular(seg, lo, nr, L, mask, do0, mul0, out0, do12, out12, cc, rlo):
    """:func:`_count_struct` over the first ``nr`` runs (rows ``lo …`` of ``seg``), all of
    ``L`` neurons from neuron 0, L dividing 64 or a multiple of it: each 64-neuron word holds
    64 / L whole runs, counted by ``popcnt`` of the word's L-bit parts, or a run is L / 64
    whole words (no per-run mask, partial word or word loop of run-time length: twice as fast
    as the general loop on runs of 64, measured in isolation); runs of 32, two a word,
    unrolled (0.82x the general loop's time on tests_99.20's first layer, in isolation).
    Returns the first row not counted."""
    fuse = rlo >= 0 and do0
    # the spike count made and added times 0 or 1 (k0) rather than tested per run (with that
    # and a test for the active counts as well, runs of 64 were 1.6x slower in isolation)
    k0 = mul0 if do0 else np.int64(0)
    if L == 64:
        for r in range(lo, lo + nr):
            s = seg[r, 0]
            key = np.uint64(seg[r, 2])
            c0 = np.int64(popcount(bits64(mask, s, B_SPIKE)))
            out0[key] += c0 * k0
            if fuse:
                cc[np.uint64(seg[rlo + r - lo, 2])] += c0
            if do12:  # (out12's rows are not the keys' otherwise: route classes)
                out12[key, 0] += np.int64(popcount(bits64(mask, s, B_ACT_INPUT)))
                out12[key, 1] += np.int64(popcount(bits64(mask, s, B_ACT_STATE)))
        return lo + nr
    if L > 64:
        nw = L >> 6
        for r in range(lo, lo + nr):
            a = seg[r, 0]
            c0 = np.uint64(0)
            c1 = np.uint64(0)
            c2 = np.uint64(0)
            for w in range(nw):
                s = a + (w << 6)
                c0 += popcount(bits64(mask, s, B_SPIKE))
                if do12:  # (a route-class pass needs no active marks)
                    c1 += popcount(bits64(mask, s, B_ACT_INPUT))
                    c2 += popcount(bits64(mask, s, B_ACT_STATE))
            key = np.uint64(seg[r, 2])
            out0[key] += np.int64(c0) * k0
            if fuse:
                cc[np.uint64(seg[rlo + r - lo, 2])] += np.int64(c0)
            if do12:
                out12[key, 0] += np.int64(c1)
                out12[key, 1] += np.int64(c2)
        return lo + nr
    per = 64 // L
    uL = np.uint64(L)
    mL = (np.uint64(1) << uL) - np.uint64(1)
    r = lo
    if L == 32:
        # two runs a word, unrolled (tests_99.20's first layer: a position's 32 channels a
        # route class; its pooling layer: 32 channels on one core)
        lo32 = np.uint64(0xFFFFFFFF)
        s32 = np.uint64(32)
        for w in range(nr >> 1):
            s = w << 6
            x0 = bits64(mask, s, B_SPIKE)
            ka = np.uint64(seg[r, 2])
            kb = np.uint64(seg[r + 1, 2])
            ca = np.int64(popcount(x0 & lo32))
            cb = np.int64(popcount(x0 >> s32))
            out0[ka] += ca * k0
            out0[kb] += cb * k0
            if fuse:
                cc[np.uint64(seg[rlo + r - lo, 2])] += ca
                cc[np.uint64(seg[rlo + r + 1 - lo, 2])] += cb
            if do12:
                x1 = bits64(mask, s, B_ACT_INPUT)
                x2 = bits64(mask, s, B_ACT_STATE)
                out12[ka, 0] += np.int64(popcount(x1 & lo32))
                out12[ka, 1] += np.int64(popcount(x2 & lo32))
                out12[kb, 0] += np.int64(popcount(x1 >> s32))
                out12[kb, 1] += np.int64(popcount(x2 >> s32))
            r += 2
        return r
    for w in range(nr // per):
        s = w << 6
        x0 = bits64(mask, s, B_SPIKE)
        # (a route-class pass, tests_99.20's first layer's, needs no active marks)
        x1 = bits64(mask, s, B_ACT_INPUT) if do12 else np.uint64(0)
        x2 = bits64(mask, s, B_ACT_STATE) if do12 else np.uint64(0)
        for _ in range(per):
            key = np.uint64(seg[r, 2])
            c0 = np.int64(popcount(x0 & mL))
            out0[key] += c0 * k0
            if fuse:
                cc[np.uint64(seg[rlo + r - lo, 2])] += c0
            if do12:
                out12[key, 0] += np.int64(popcount(x1 & mL))
                out12[key, 1] += np.int64(popcount(x2 & mL))
            x0 >>= uL
            x1 >>= uL
            x2 >>= uL
            r += 1
    return r


@hot
def _count_struct(st, p, x0, mask, do0, mul0, out0, do12, out12, l8, l16, wide, passes, cc,
                  rlo, wt, kw):
    """Marked neurons of population p per key of its structure at ``pinfo[p, x0:]``:
    ``out0[key] += mul0 · (spike marks)`` if ``do0``; ``out12[key, 0/1] +=`` the two active
    marks if ``do12``; with ``rlo`` ≥ 0 (runs whose boundaries are those of the route classes'
    runs from row ``rlo``, :data:`I_SRSAME`) also ``cc[class] +=`` the spike marks; with
    ``kw`` > 0 (S_ROWS, W = 64: :data:`I_KW`) also ``out0[key] +=`` the weights ``wt`` (uint8,
    indexed like ``mask``, at most ``kw``) of the neurons with a spike mark.  Scratch: ``l8``
    uint8 and ``wide`` int64 (NSETS · lanes_max), ``l16`` uint16 (64 · patterns: the
    weighted lane sets), ``passes`` int64 (2 · patterns, at least 260)."""
    pi = st.pinfo
    seg = st.seg
    mode = pi[p, x0 + X_MODE]
    if mode == S_RUNS:
        one = np.uint64(1)
        lo = pi[p, x0 + X_LO]
        r0 = lo
        L = pi[p, x0 + X_W]
        if L:
            r0 = _runs_regular(seg, lo, pi[p, x0 + X_NPAT], L, mask, do0, mul0, out0, do12,
                               out12, cc, rlo)
        # whole 64-neuron words first, in a loop per combination of counts (no mask, no test
        # per word), then the run's last partial word under a mask
        for r in range(r0, pi[p, x0 + X_HI]):
            a = seg[r, 0]
            b = seg[r, 1]
            nw = (b - a) >> 6
            c0 = np.uint64(0)
            c1 = np.uint64(0)
            c2 = np.uint64(0)
            if do12 and do0:
                for w in range(nw):
                    s = a + (w << 6)
                    c0 += popcount(bits64(mask, s, B_SPIKE))
                    c1 += popcount(bits64(mask, s, B_ACT_INPUT))
                    c2 += popcount(bits64(mask, s, B_ACT_STATE))
            elif do12:
                for w in range(nw):
                    s = a + (w << 6)
                    c1 += popcount(bits64(mask, s, B_ACT_INPUT))
                    c2 += popcount(bits64(mask, s, B_ACT_STATE))
            elif do0:
                for w in range(nw):
                    c0 += popcount(bits64(mask, a + (w << 6), B_SPIKE))
            s = a + (nw << 6)
            if s < b:
                mk = (one << np.uint64(b - s)) - one
                if do0:
                    c0 += popcount(bits64(mask, s, B_SPIKE) & mk)
                if do12:
                    c1 += popcount(bits64(mask, s, B_ACT_INPUT) & mk)
                    c2 += popcount(bits64(mask, s, B_ACT_STATE) & mk)
            key = np.uint64(seg[r, 2])
            if do0:
                out0[key] += np.int64(c0) * mul0
                if rlo >= 0:
                    cc[np.uint64(seg[rlo + r - lo, 2])] += np.int64(c0)
            if do12:
                out12[key, 0] += np.int64(c1)
                out12[key, 1] += np.int64(c2)
        return
    # S_ROWS: 64 lanes at a time into uint8 sums (``l8``), emptied into the int64 sums
    # (``wide``) before they could wrap
    W = pi[p, x0 + X_W]
    npat = pi[p, x0 + X_NPAT]
    dow = kw > 0  # (W = 64 then: pack_work)
    frun = st.frun
    if W == 64:
        # the common case: every piece on the same 64 lanes, a row's pieces (its partial
        # last one too) summed in vector registers in one call; when the sums must be emptied
        # is planned with the rows (:func:`_plan64`), and ``wide`` is used only if they are
        for j in range(NSETS * 64 * npat):
            l8[j] = 0
        if dow:
            for j in range(64 * npat):
                l16[j] = 0
        sp_b = False  # (bit sets, weighted set emptied into ``wide`` in this call)
        sp_w = False
        for r in range(pi[p, x0 + X_LO], pi[p, x0 + X_HI]):
            a = seg[r, 0]
            n = seg[r, 1] - a
            qf = seg[r, 2]
            o = NSETS * 64 * (qf & ROW_PAT)
            if qf > ROW_PAT:
                if not (sp_b or sp_w):
                    for j in range(NSETS * 64 * npat):
                        wide[j] = 0
                if qf & SPILL_BITS:
                    _spill(l8, wide, o, o + 3 * 64)
                    sp_b = True
                if qf & SPILL_WEIGHTS:
                    o16 = 64 * (qf & ROW_PAT)
                    for j in range(64):
                        wide[o + 192 + j] += l16[o16 + j]
                        l16[o16 + j] = 0
                    sp_w = True
            if dow and do12:
                add_marks64_3w(l8, o, 64, mask, a, n >> 6, n & 63, wt, l16, 64 * (qf & ROW_PAT))
            elif dow:
                add_marks64_1w(l8, o, 64, mask, a, n >> 6, n & 63, wt, l16, 64 * (qf & ROW_PAT))
            elif do12:
                add_marks64_3(l8, o, 64, mask, a, n >> 6, n & 63)
            else:
                add_marks64_1(l8, o, 64, mask, a, n >> 6, n & 63)
        # per pattern the prefix sums of its lanes' sets in use (``passes``), then one
        # difference per run of lanes with one key, where a sum per run cost a loop each (runs
        # are a few lanes, the mapper's channel groups: tests_99.20's first layer has ~22 runs
        # of ~3 lanes a pattern; cycles a step, medians of 11: its flush 806 -> 520-590, the
        # mapped LeNet 32/64's pooling layer's, with active marks, 702 -> 575-594)
        for q in range(npat):
            o = NSETS * 64 * q
            o16 = 64 * q
            a0 = np.int64(0)
            a1 = np.int64(0)
            a2 = np.int64(0)
            a3 = np.int64(0)
            passes[0] = 0
            passes[65] = 0
            passes[130] = 0
            passes[195] = 0
            for j in range(64):
                a0 += l8[o + j]
                if sp_b:
                    a0 += wide[o + j]
                if dow:
                    a3 += l16[o16 + j]
                    if sp_w:
                        a3 += wide[o + 192 + j]
                passes[j + 1] = a0
                passes[66 + j] = a3
            if do12:  # (a loop of its own: the usual step has no active marks)
                for j in range(64):
                    a1 += l8[o + 64 + j]
                    a2 += l8[o + 128 + j]
                    if sp_b:
                        a1 += wide[o + 64 + j]
                        a2 += wide[o + 128 + j]
                    passes[131 + j] = a1
                    passes[196 + j] = a2
            g = pi[p, x0 + X_G] + q
            for rr in range(st.fptr[g], st.fptr[g + 1]):
                j0 = frun[rr, 0]
                j1 = frun[rr, 1]
                key = frun[rr, 2]
                if do0:
                    out0[key] += ((passes[j1] - passes[j0]) * mul0
                                  + passes[65 + j1] - passes[65 + j0])
                if do12:
                    out12[key, 0] += passes[130 + j1] - passes[130 + j0]
                    out12[key, 1] += passes[195 + j1] - passes[195 + j0]
        return
    # W a multiple of 64: a pattern's lanes are counted in passes of W lanes
    wp = W >> 6  # 64-lane pieces per pass
    for j in range(NSETS * npat * W):
        l8[j] = 0
        wide[j] = 0
    for q in range(2 * npat):
        passes[q] = 0
    for r in range(pi[p, x0 + X_LO], pi[p, x0 + X_HI]):
        a = seg[r, 0]
        b = seg[r, 1]
        q = seg[r, 2]
        o = NSETS * q * W  # this block's pattern's lane sets
        s = a
        lane = 0
        while b - s >= 64:
            take = min((b - s) >> 6, 255 * wp)  # pieces (a part starts at lane 0)
            inc = (take + wp - 1) // wp  # (adds to the busiest lanes)
            if passes[q] + inc > 255:  # empty the pattern's uint8 sums before they wrap
                _spill(l8, wide, o, o + NSETS * W)
                passes[q] = 0
            passes[q] += inc
            for _ in range(take):
                if do0:
                    add_bits64(l8, o + lane, mask, s, SH_SPIKE)
                if do12:
                    add_bits64(l8, o + W + lane, mask, s, SH_ACT_INPUT)
                    add_bits64(l8, o + 2 * W + lane, mask, s, SH_ACT_STATE)
                s += 64
                lane = lane + 64 if lane + 64 < W else 0
        for j in range(b - s):  # (fewer than 64 neurons left: one by one)
            x = mask[s + j]
            wide[o + lane + j] += (x >> SH_SPIKE) & 1
            wide[o + W + lane + j] += (x >> SH_ACT_INPUT) & 1
            wide[o + 2 * W + lane + j] += (x >> SH_ACT_STATE) & 1
    # each pattern's lane sums to their keys: prefix sums over the lanes (in ``wide``), then
    # one difference per run of lanes with one key (st.frun)
    for q in range(npat):
        o = NSETS * q * W
        for k in range(3):
            if (k == 0 and do0) or (k > 0 and do12):
                c = np.int64(0)
                for j in range(o + k * W, o + (k + 1) * W):
                    c += wide[j] + l8[j]
                    wide[j] = c
        g = pi[p, x0 + X_G] + q
        for rr in range(st.fptr[g], st.fptr[g + 1]):
            j0 = frun[rr, 0]
            j1 = frun[rr, 1]
            key = frun[rr, 2]
            if do0:
                out0[key] += (wide[o + j1 - 1] - (wide[o + j0 - 1] if j0 else 0)) * mul0
            if do12:
                out12[key, 0] += (wide[o + W + j1 - 1]
                                  - (wide[o + W + j0 - 1] if j0 else 0))
                out12[key, 1] += (wide[o + 2 * W + j1 - 1]
                                  - (wide[o + 2 * W + j0 - 1] if j0 else 0))


@hot
def const_active(sk, p, t, swa, acs, first):
    """Population p's active updates per core where they are the same in every step of a
    sample (``I_ACONST``, see :func:`_constant_activity`): in step 1 counted from the marks by
    :func:`count_marks`, taken here as the change of ``swa`` around that call (``first``:
    before it, else after) and kept in ``acs`` (a row per entry of ``acores``); in later
    steps added to ``swa``, while the update loop marks only the spikes."""
    a = sk.pinfo[p, I_ACONST] - 1
    for k in range(sk.acptr[a], sk.acptr[a + 1]):
        c = sk.acores[k]
        for j in range(2):
            if t > 1:
                swa[c, j] += acs[k, j]
            elif first:
                acs[k, j] = -swa[c, j]
            else:
                acs[k, j] += swa[c, j]


@hot
def count_active(sk, p, b, n, an, acc, icur_all, v_all, bias_all, swa):
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
    nb = an or sk.pinfo[p, I_BIAS] == 1
    for r in range(sk.run_ptr[p], sk.run_ptr[p + 1]):
        hi = sk.run_end[r]
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
        c = sk.run_core[r]
        swa[c, 0] += s1
        swa[c, 1] += s2
        lo = hi


@hot
def close_step(sk, t, swp, swa, rwp, sb, mpcore, mpprev, mesh_lat, step_time, s, tb_time,
               tb_work, tb_crit, tid):
    """End of step t of sample s: core times, the slowest core, the step time; add to the
    thread's sums; clear the step's work (``mpcore[s]``: the sample's max-pool deliveries per
    core so far).  The copies of the receive ring ``rwp`` beyond the first are summed into it
    only where this step's work may lie in them (the flags in ``sb``, see :data:`SB_RECV`)."""
    mpc = mpcore[s]
    tm = sk.times
    nc = sk.n_cores
    D1 = sk.depth
    o = (t % D1) * nc
    rs = D1 * nc  # one copy of the receive ring (see route_spikes)
    if sb[D1 + SB_RECV] != 0:
        sb[D1 + SB_RECV] = 0
        sb[D1 + SB_RLAST] = t
    if t - sb[D1 + SB_RLAST] < D1:  # (a message sent then may be charged to step t)
        r0 = rwp[o:o + nc]
        for j in range(1, COPIES):
            rj = rwp[j * rs + o:j * rs + o + nc]
            for c in range(nc):
                r0[c] += rj[c]
                rj[c] = 0
    best = np.int64(-1)
    arg = 0
    ac = 1 if sk.active == 1 else 0
    gates = sk.gates == 1
    for c in range(nc):
        d = np.int64(0)
        if gates:
            d = mpc[c] - mpprev[c]  # max-pool gate deliveries of this step
            mpprev[c] = mpc[c]
        rv = rwp[o + c]
        rwp[o + c] = 0
        sv = swp[c]
        swp[c] = 0
        mi = rv >> PACK
        ev = (rv & LOW) + d
        sp = sv >> PACK
        mo = sv & LOW
        send = (sk.ncn[c] * tm[T_ACCESS] + swa[c, ac] * tm[T_UPDATE] + sp * tm[T_SPIKE]
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
    tb_crit[tid, arg] += 1
    step_time[s, t - 1] = best + mesh_lat + sk.barrier


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
