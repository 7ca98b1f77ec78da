"""Packing a :class:`~hw_models.network.CoreNetwork` into flat arrays for the compiled engine.

The engine kernel sees arrays and scalars only (struct of arrays, no jitclass).  :func:`pack`
returns a :class:`Packed` NamedTuple:

* ``pop`` int64 (n_pops, POP_COLS): one row of parameters per population (columns ``P_*``);
  neuron-level arrays (``bias``, ``v0``, ``core``) are flat over all populations, population p
  owning ``[pop[p, P_BASE], pop[p, P_BASE] + pop[p, P_SIZE])``.
* ``v0``: the initial voltage of every neuron, in the dtype of the engine's ``v`` state: int32
  when every population's ``[v_min, v_max]`` fits in 32 bits (the engine computes each new v in
  int64 and stores it only once the range policy has brought it into that range), int64
  otherwise.  ``bias`` is int32 likewise when every bias fits.  Narrow state halves the
  per-sample memory traffic of the neuron update, which bounds the speed on small networks.
* ``proj`` int64 (n_proj, PROJ_COLS): one row per projection (kind, source, target, delay,
  geometry, offsets into the flat weight and window tables; columns ``J_*``).
* ``w``: all integer weights ``w`` (the exponent ``e`` is column ``J_EXP``, applied as a shift
  where a weight meets the accumulator) in one flat array, laid out for contiguous adds:
  dense ``[j, :]``; conv ``[c, ky, kw−1−kx, co]`` over the ``J_OG`` output channels of source
  channel c's group (all of them for groups = 1; ``J_CG`` is the input channels per group; kx
  reversed, so that for stride 1, dilation 1 and one group the targets of one spike on one
  kernel row are one contiguous accumulator run),
  each (c, ky) row followed by :data:`ROW_PAD` zeros (row stride ``J_RS``): a run that ends at
  the end of its row may then be added with its length rounded up to a multiple of ROW_PAD,
  adding zeros past its end (the accumulator has that much slack), which spares LLVM's scalar
  remainder loop on short rows (LeNet's 5 × 6 = 30 outputs);
  pools and identity ``[c]``.  Its dtype is the narrowest of int8/int16/int32/int64 that
  holds every weight of the network (Loihi's and Speck's 8-bit weights: int8, TrueNorth's
  9-bit: int16): a quarter of the memory of an int32 copy, so the weights of an MLP with
  784·512 + 512·512 synapses stay in a 2 MiB L2.
* ``acc0``: an empty array whose dtype is the accumulator dtype (int32 or int64, below).
* ``rows_ptr/rows_k/rows_o`` and ``cols_ptr/cols_k/cols_o``: for conv and pools, per source row y
  (column x) the valid (ky, oy) ((kx, ox)) pairs, kx ascending, so the kernel never tests
  borders, strides or dilation in the hot loop.
* ``pool_ptr/pool_tgt``: avgpool targets per source, CSR (``J_TOFF`` indexes ``pool_ptr``), or
  for non-overlapping windows (``J_FAST`` = 1) a direct table of one entry per source
  (``J_TOFF`` indexes ``pool_tgt``): −1, or ``target << POOL_SHIFT | channel`` (the weight's
  index comes with the target: one table load per spike, no look-up of its position).
* ``in_ptr/in_proj``: projections into each population (CSR, declaration order); ``order``: the
  non-input populations in :meth:`CoreNetwork.order`.

Counters that depend only on the geometry are computed here, once, with NumPy and applied after
the run to per-neuron counts (see :mod:`emulator.engine`): ``ev_tot`` (targets reached per source
spike, per projection), ``ev_core`` (the same split by target core, a sparse matrix) and, per
source neuron, ``msg``/``hops`` (distinct destination cores and the summed mesh distance).

Accumulator width: per step a target receives at most one spike per source neuron and
projection (an ``events`` input can repeat a neuron; :func:`acc_bound` takes the largest
repeat), so ``|Q| ≤ Σ_proj Σ_j |w_ij · 2^e| · repeat``.  :func:`pack` uses int32 when that bound
is below 2^31 for every population and int64 otherwise, so sums are exact and independent of
event order either way.  The analog input current is kept separately in int64.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from hw_models.errors import SimulationError
from hw_models.network import CoreNetwork, DECAY_ONE

# population columns
(P_SIZE, P_BASE, P_THR, P_RESET, P_DU, P_DV, P_VMIN, P_VMAX, P_OVF, P_RULE, P_SPIKING,
 P_INPUT, P_VINIT, P_INLO, P_INHI, P_ANALOG, P_MAXD, P_H, P_W, P_C, P_LANE32,
 P_SKIP) = range(22)
POP_COLS = 22
# projection columns
(J_KIND, J_SRC, J_TGT, J_DELAY, J_H, J_W, J_C, J_OH, J_OW, J_OC, J_KH, J_KW, J_WOFF, J_ROFF,
 J_COFF, J_DOFF, J_NSRC, J_NTGT, J_ANALOG, J_FAST, J_MOFF, J_SY, J_SX, J_PT, J_PL,
 J_TOFF, J_RS, J_EXP, J_CG, J_OG) = range(30)
PROJ_COLS = 30
ROW_PAD = 8  # zeros after each conv weight row: a row add may round its length up to this
POOL_SHIFT = 24  # a non-overlapping pool's table entry: target << POOL_SHIFT | channel
POOL_CMASK = (1 << POOL_SHIFT) - 1
KINDS = {"dense": 0, "conv": 1, "avgpool": 2, "maxpool": 3, "identity": 4}
#: J_KIND of a maxpool projection with gate "runmax" (KINDS["maxpool"] is the winner gate)
RUNMAX = 5
ENC = {"analog": 0, "rate": 1, "bernoulli": 2, "events": 3}
RESET = {"subtract": 0, "zero": 1}
OVERFLOW = {"saturate": 0, "wrap": 1, "raise": 2}
RULE = {">=": 0, ">": 1}
_I32 = 2**31 - 1


class Packed(NamedTuple):
    """Flat arrays of one network (see the module docstring)."""
    pop: np.ndarray
    proj: np.ndarray
    order: np.ndarray
    in_ptr: np.ndarray
    in_proj: np.ndarray
    bias: np.ndarray
    v0: np.ndarray        # initial v per neuron; its dtype is the dtype of the v state
    w: np.ndarray         # narrowest integer dtype holding all weights (see the docstring)
    acc0: np.ndarray      # empty; its dtype is the accumulator dtype
    rows_ptr: np.ndarray
    rows_k: np.ndarray
    rows_o: np.ndarray
    cols_ptr: np.ndarray
    cols_k: np.ndarray
    cols_o: np.ndarray
    input_pop: int
    output_pop: int
    readout: int          # 0: argmax v, 1: argmax spike counts
    encoding: int
    input_max: int
    pool_ptr: np.ndarray  # avgpool: per source, its targets pool_tgt[ptr[j]:ptr[j+1]] (CSR)
    pool_tgt: np.ndarray
    pos: np.ndarray       # int32 (n_neurons, 3): (y, x, c) of every neuron (no divisions)
    n_neurons: int
    n_deliv: int          # length of the per-sample delivered-spike counter
    n_mpcount: int        # length of the per-sample max-pool state (counts, runmax maxima)
    max_size: int


class Static(NamedTuple):
    """Geometry-only counters and names, applied to per-neuron counts after a run."""
    names: list
    proj_names: list
    n_cores: int
    core: np.ndarray        # int32 per neuron (flat)
    msg: np.ndarray         # int64 messages per spike, per neuron (flat)
    hops: np.ndarray        # int64 hops per spike, per neuron (flat)
    hops_x: np.ndarray      # the east-west part of ``hops`` (Δx summed over destinations)
    hops_y: np.ndarray      # the north-south part (Δy); Δchip links are counted in hops only
    ev_tot: list            # per projection: int64 (n_src,) targets reached per spike
    ev_core: list           # per projection: csr (n_src, n_cores) targets per core
    ev_core_t: list         # the same transposed (csr (n_cores, n_src)): per-run products
    bound: np.ndarray       # per population: bound on |Q| for repeat 1 (float, may be huge)


def _axis_pairs(size, osize, k, s, pad, d):
    """Per source coordinate a in [0, size): valid (kk, o) with a = o·s − pad + kk·d, kk asc."""
    ptr, ks, os_ = [0], [], []
    for a in range(size):
        for kk in range(k):
            num = a + pad - kk * d
            if num % s == 0 and 0 <= num // s < osize:
                ks.append(kk)
                os_.append(num // s)
        ptr.append(len(ks))
    return ptr, ks, os_


def _spatial_pairs(rp, rk, ro, cp, ck, co):
    """All (y, x, ky, kx, oy, ox) reached pairs as arrays."""
    ys, ky, oy = [], [], []
    for y in range(len(rp) - 1):
        n = rp[y + 1] - rp[y]
        ys += [y] * n
        ky += rk[rp[y]:rp[y + 1]]
        oy += ro[rp[y]:rp[y + 1]]
    xs, kx, ox = [], [], []
    for x in range(len(cp) - 1):
        n = cp[x + 1] - cp[x]
        xs += [x] * n
        kx += ck[cp[x]:cp[x + 1]]
        ox += co[cp[x]:cp[x + 1]]
    a = np.arange(len(ys)).repeat(len(xs))
    b = np.tile(np.arange(len(xs)), len(ys))
    return (np.asarray(ys, np.int64)[a], np.asarray(xs, np.int64)[b],
            np.asarray(ky, np.int64)[a], np.asarray(kx, np.int64)[b],
            np.asarray(oy, np.int64)[a], np.asarray(ox, np.int64)[b])


def pack(net: CoreNetwork, repeat: int = 1, force_int64: bool = False) -> tuple:
    """(Packed, Static) for ``net``; ``repeat`` bounds how often one input neuron may spike in
    one step (events inputs), for the choice of the accumulator width."""
    pops = net.populations
    idx = {p.name: i for i, p in enumerate(pops)}
    cores = net.core_assignment()
    place = net.placement_array().astype(np.int64)
    n_cores = net.n_cores
    inp = net.input
    analog = inp.encoding == "analog"

    pop = np.zeros((len(pops), POP_COLS), np.int64)
    base = 0
    for i, p in enumerate(pops):
        r = pop[i]
        r[P_SIZE], r[P_BASE] = p.size, base
        base += p.size
        r[P_INPUT] = int(p.is_input)
        r[P_H], r[P_W], r[P_C] = (p.shape if len(p.shape) == 3 else (1, 1, p.size))
        if not p.is_input:
            r[P_THR], r[P_RESET] = p.threshold, RESET[p.reset]
            r[P_DU], r[P_DV] = p.decay_u, p.decay_v
            r[P_VMIN], r[P_VMAX], r[P_OVF] = p.v_min, p.v_max, OVERFLOW[p.overflow]
            r[P_RULE], r[P_SPIKING], r[P_VINIT] = RULE[p.spike_rule], int(p.spiking), p.v_init
    n_neurons = base
    bias = np.zeros(n_neurons, np.int64)
    v0 = np.zeros(n_neurons, np.int64)
    core = np.zeros(n_neurons, np.int32)
    for i, p in enumerate(pops):
        b = pop[i, P_BASE]
        core[b:b + p.size] = cores[p.name]
        if not p.is_input:
            bias[b:b + p.size] = p.bias_array()
            v0[b:b + p.size] = p.v_init
    neurons = [p for p in pops if not p.is_input]
    if all(-2**31 <= p.v_min and p.v_max <= _I32 for p in neurons):
        v0 = v0.astype(np.int32)
    if bias.size and -2**31 <= bias.min() and bias.max() <= _I32:
        bias = bias.astype(np.int32)

    proj = np.zeros((len(net.projections), PROJ_COLS), np.int64)
    wparts, rows, cols = [], ([0], [], []), ([0], [], [])
    ev_tot, ev_core = [], []
    bound = np.zeros(len(pops))
    woff = doff = moff = 0
    rows_ptr, cols_ptr = [], []
    pool_ptr, pool_tgt = [], []
    for k, pr in enumerate(net.projections):
        src, tgt = pops[idx[pr.source]], pops[idx[pr.target]]
        r = proj[k]
        kind = KINDS[pr.kind]
        is_analog = src.is_input and analog
        if pr.kind == "maxpool" and is_analog:
            raise SimulationError(f"projection {pr.name!r}: a max-pool gate needs spikes, but "
                                  f"its source {src.name!r} is an analog input")
        if pr.kind == "maxpool" and pr.gate == "runmax":
            kind = RUNMAX
        r[J_KIND], r[J_SRC], r[J_TGT], r[J_DELAY] = kind, idx[pr.source], idx[pr.target], pr.delay
        r[J_NSRC], r[J_NTGT], r[J_ANALOG] = src.size, tgt.size, int(is_analog)
        r[J_H], r[J_W], r[J_C] = pop[idx[pr.source], P_H:P_C + 1]
        r[J_OH], r[J_OW], r[J_OC] = pop[idx[pr.target], P_H:P_C + 1]
        eff = pr.weights.astype(np.int64) << pr.exponent  # for the bounds only
        raw = pr.weights.astype(np.int64)
        r[J_EXP] = pr.exponent
        if pr.kind == "conv":
            kh_, kw_, cg_, oc_ = raw.shape
            G = pr.groups
            og_ = oc_ // G
            c_ = cg_ * G
            # per source channel c: its group's output block W[:, :, c mod cg, g·og:(g+1)·og]
            blk = raw[:, ::-1].reshape(kh_, kw_, cg_, G, og_).transpose(3, 2, 0, 1, 4)
            wl = np.zeros((c_, kh_, kw_ * og_ + ROW_PAD), np.int64)
            wl[:, :, :kw_ * og_] = blk.reshape(c_, kh_, kw_ * og_)
            r[J_RS] = kw_ * og_ + ROW_PAD  # [c, ky, kw-1-kx, co] plus ROW_PAD zeros per row
            r[J_CG], r[J_OG] = cg_, og_
        else:
            wl = raw
        wparts.append(np.ascontiguousarray(wl).reshape(-1))
        r[J_WOFF] = woff
        woff += wl.size
        r[J_DOFF] = doff
        doff += src.size
        if pr.kind == "maxpool":  # counts per source; runmax: then the maximum per target
            r[J_MOFF] = moff
            moff += src.size + (tgt.size if kind == RUNMAX else 0)
        tcore = cores[pr.target].astype(np.int64)
        ns = src.size
        if pr.kind in ("conv", "avgpool", "maxpool"):
            (kh, kw), (sy, sx), (pt, _, pl, _), (dy, dx) = (pr.kernel, pr.stride, pr.padding,
                                                            pr.dilation)
            r[J_KH], r[J_KW] = kh, kw
            r[J_SY], r[J_SX], r[J_PT], r[J_PL] = sy, sx, pt, pl
            r[J_FAST] = int(sx == 1 and dx == 1 and pr.groups == 1)
            h, w, c = src.shape
            oh, ow, oc = tgt.shape
            rp, rk, ro = _axis_pairs(h, oh, kh, sy, pt, dy)
            cp, ck, co = _axis_pairs(w, ow, kw, sx, pl, dx)
            r[J_ROFF] = len(rows_ptr)
            rows_ptr += [len(rows[1]) + v for v in rp]
            rows[1].extend(rk)
            rows[2].extend(ro)
            r[J_COFF] = len(cols_ptr)
            cols_ptr += [len(cols[1]) + v for v in cp]
            cols[1].extend(ck)
            cols[2].extend(co)
            ys, xs, kys, kxs, oys, oxs = _spatial_pairs(rp, rk, ro, cp, ck, co)
            nsp = h * w
            spat = ys * w + xs
            if pr.kind == "conv":
                G = pr.groups
                og, cg = oc // G, c // G
                # rows (source position, group): every channel of a group reaches alike
                tgt_i = (((oys * ow + oxs) * oc)[:, None, None] + (np.arange(G) * og)[None, :, None]
                         + np.arange(og)[None, None, :])
                rows_pg = np.broadcast_to((spat * G)[:, None, None] + np.arange(G)[None, :, None],
                                          tgt_i.shape)
                m = sp.csr_matrix((np.ones(tgt_i.size, np.int64),
                                   (rows_pg.reshape(-1), tcore[tgt_i.reshape(-1)])),
                                  shape=(nsp * G, n_cores))
                m.sum_duplicates()
                m = m[(np.arange(nsp)[:, None] * G + np.arange(c)[None, :] // cg).reshape(-1)]
                per_pos = np.bincount(spat, minlength=nsp) * og
                tot = np.repeat(per_pos, c)
                absw = np.abs(eff).sum(axis=(0, 1, 2))
                bnd = float(absw.max()) if absw.size else 0.0
            else:
                srcs = (spat[:, None] * c + np.arange(c)[None, :]).reshape(-1)
                tgt_i = ((oys * ow + oxs)[:, None] * c + np.arange(c)[None, :]).reshape(-1)
                m = sp.csr_matrix((np.ones(srcs.size, np.int64), (srcs, tcore[tgt_i])),
                                  shape=(ns, n_cores))
                m.sum_duplicates()
                tot = np.bincount(srcs, minlength=ns)
                if pr.kind == "avgpool":  # few targets per source: an explicit list is small
                    start = sum(len(t) for t in pool_tgt)
                    if tot.max(initial=0) <= 1 and c <= POOL_CMASK:
                        # non-overlapping: (target, channel) per source or -1
                        one = np.full(ns, -1, np.int64)
                        one[srcs] = (tgt_i.astype(np.int64) << POOL_SHIFT) | (srcs % c)
                        r[J_FAST], r[J_TOFF] = 1, start
                        pool_tgt.append(one)
                    else:
                        srt = np.argsort(srcs, kind="stable")
                        r[J_FAST], r[J_TOFF] = 0, len(pool_ptr)
                        pool_ptr.extend((start + np.concatenate([[0], np.cumsum(tot)]))
                                        .tolist())
                        pool_tgt.append(tgt_i[srt])
                bnd = float(np.abs(eff).max() * kh * kw) if eff.size else 0.0
        elif pr.kind == "dense":
            hist = np.bincount(tcore, minlength=n_cores)
            nz = np.flatnonzero(hist)
            m = sp.csr_matrix((np.tile(hist[nz], ns), (np.repeat(np.arange(ns), nz.size),
                                                       np.tile(nz, ns))), shape=(ns, n_cores))
            tot = np.full(ns, tgt.size, np.int64)
            bnd = float(np.abs(eff).sum(axis=0).max()) if eff.size else 0.0
        else:  # identity
            m = sp.csr_matrix((np.ones(ns, np.int64), (np.arange(ns), tcore)),
                              shape=(ns, n_cores))
            tot = np.ones(ns, np.int64)
            bnd = float(np.abs(eff).max()) if eff.size else 0.0
        ev_tot.append(np.asarray(tot, np.int64))
        ev_core.append(m.tocsr().astype(np.int64))
        if not is_analog:
            bound[idx[pr.target]] += bnd * (repeat if src.is_input else 1)

    acc_dtype = np.int64 if (force_int64 or bound.max(initial=0) > _I32) else np.int32
    w = np.concatenate(wparts) if wparts else np.zeros(0, np.int64)
    w = w.astype(narrowest_int(w))

    # incoming projections (declaration order) and the ring depth of every source
    in_ptr = np.zeros(len(pops) + 1, np.int64)
    in_proj = []
    for i, p in enumerate(pops):
        ks = [k for k, pr in enumerate(net.projections) if pr.target == p.name]
        in_proj += ks
        in_ptr[i + 1] = len(in_proj)
        pop[i, P_INLO], pop[i, P_INHI] = in_ptr[i], in_ptr[i + 1]
        pop[i, P_ANALOG] = int(any(proj[k, J_ANALOG] for k in ks))
        pop[i, P_MAXD] = max((pr.delay for pr in net.projections if pr.source == p.name),
                             default=0)
    _update_modes(pops, pop, bias, v0, bound, acc_dtype)

    pos = np.zeros((n_neurons, 3), np.int32)
    for i, p in enumerate(pops):
        b = pop[i, P_BASE]
        hh, ww, cc = pop[i, P_H], pop[i, P_W], pop[i, P_C]
        pos[b:b + p.size] = np.stack(np.unravel_index(np.arange(p.size), (hh, ww, cc)), axis=1)
    msg, hops, hops_x, hops_y = _routing(net, pop, core, place, ev_core, n_neurons, n_cores,
                                         analog)
    order = np.array([idx[n] for n in net.order() if not pops[idx[n]].is_input], np.int64)
    mp = max((p.size for p in pops), default=1)

    def arr(v, dt=np.int64):
        return np.asarray(v, dt) if len(v) else np.zeros(1, dt)

    packed = Packed(pop=pop, proj=proj, order=order, in_ptr=in_ptr,
                    in_proj=np.asarray(in_proj + [0], np.int64), bias=bias, v0=v0, w=w,
                    acc0=np.zeros(0, acc_dtype),
                    rows_ptr=arr(rows_ptr), rows_k=arr(rows[1]), rows_o=arr(rows[2]),
                    cols_ptr=arr(cols_ptr), cols_k=arr(cols[1]), cols_o=arr(cols[2]),
                    input_pop=idx[inp.name], output_pop=idx[net.output],
                    readout=0 if net.readout == "v" else 1, encoding=ENC[inp.encoding], pos=pos,
                    input_max=inp.input_max, n_neurons=n_neurons, pool_ptr=arr(pool_ptr),
                    pool_tgt=(np.concatenate(pool_tgt).astype(np.int64) if pool_tgt
                              else np.zeros(1, np.int64)), n_deliv=max(doff, 1),
                    n_mpcount=max(moff, 1), max_size=mp)
    static = Static(names=[p.name for p in pops], proj_names=[pr.name for pr in net.projections],
                    n_cores=n_cores, core=core, msg=msg, hops=hops, hops_x=hops_x,
                    hops_y=hops_y, ev_tot=ev_tot, ev_core=ev_core,
                    ev_core_t=[m.T.tocsr() for m in ev_core], bound=bound)
    return packed, static


def _update_modes(pops, pop, bias, v0, bound, acc_dtype):
    """Per population, which neuron-update loop the engine may use (columns P_LANE32, P_SKIP).

    * ``P_LANE32``: an IF population (δu = 4096, δv = 0, u = Q) without analog current under
      'saturate' whose every intermediate fits 32 bits: v is stored in [v_min, v_max], so
      ``|v + Q + b| ≤ max(|v_min|, |v_max|) + bound(Q) + max|b|``; with that and the firing
      level θ + 1 below 2^31 the update runs in 32-bit lanes, exactly.
    * ``P_SKIP``: an IF population without analog current, without bias, under 'saturate': a
      step with no delivered spike and no neuron at or above its firing level leaves every v
      unchanged and fires nothing, so the engine skips its update (and counts those updates
      as inactive, as it would have).
    """
    for i, p in enumerate(pops):
        r = pop[i]
        if p.is_input:
            continue
        is_if = p.decay_u == DECAY_ONE and p.decay_v == 0
        simple = is_if and r[P_ANALOG] == 0 and r[P_OVF] == OVERFLOW["saturate"]
        b0, n = r[P_BASE], r[P_SIZE]
        bmax = int(np.abs(bias[b0:b0 + n].astype(np.int64)).max(initial=0))
        vabs = max(abs(p.v_min), abs(p.v_max))
        fits = (vabs + bound[i] + bmax < _I32 and p.threshold + 1 < _I32 and
                v0.dtype == np.int32 and bias.dtype == np.int32 and acc_dtype == np.int32)
        r[P_LANE32] = int(simple and fits)
        r[P_SKIP] = int(simple and bmax == 0)


def narrowest_int(a: np.ndarray):
    """The narrowest of int8, int16, int32, int64 that holds every value of ``a``."""
    lo, hi = (int(a.min()), int(a.max())) if a.size else (0, 0)
    for dt in (np.int8, np.int16, np.int32):
        info = np.iinfo(dt)
        if info.min <= lo and hi <= info.max:
            return dt
    return np.int64


def _routing(net, pop, core, place, ev_core, n_neurons, n_cores, analog):
    """Messages and hops per spike of every neuron: distinct destination cores over all
    projections out of its population, and the summed mesh distance to them (in total, and
    its east-west and north-south parts, once here instead of on every run)."""
    msg = np.zeros(n_neurons, np.int64)
    hops = np.zeros(n_neurons, np.int64)
    hx = np.zeros(n_neurons, np.int64)
    hy = np.zeros(n_neurons, np.int64)
    for i, p in enumerate(net.populations):
        if p.is_input and analog:
            continue
        ks = [k for k, pr in enumerate(net.projections) if pr.source == p.name]
        if not ks:
            continue
        reach = sum((ev_core[k] != 0).astype(np.int64) for k in ks).tocoo()
        b = pop[i, P_BASE]
        j, c = reach.row, reach.col
        src_core = core[b + j]
        d = np.abs(place[src_core] - place[c])
        dist = d.sum(axis=1)
        msg[b:b + p.size] = np.bincount(j, minlength=p.size)
        hops[b:b + p.size] = np.bincount(j, weights=dist, minlength=p.size).astype(np.int64)
        hx[b:b + p.size] = np.bincount(j, weights=d[:, 1], minlength=p.size).astype(np.int64)
        hy[b:b + p.size] = np.bincount(j, weights=d[:, 2], minlength=p.size).astype(np.int64)
    return msg, hops, hx, hy


__all__ = ["pack", "Packed", "Static", "DECAY_ONE", "narrowest_int"]
