"""The event-queue engine: the whole time loop of a sample in one compiled function.

Design (DESIGN.md "The engine"):

* **Spike queues, not synapse events.**  Every population keeps a ring of ``max_delay + 1``
  spike lists (source ids of one step each, in a flat int32 array, see :func:`_ring_layout`).
  When population P is processed at step t, each projection into P reads its source's list of
  step ``t − delay`` and scatters the weights into one accumulator (width chosen in
  :mod:`emulator.compile`), which the neuron loop then reads and clears.  Delay 0 reads the list
  its source wrote earlier in the same step (populations run in :meth:`CoreNetwork.order`).
* **Scatter kernels**: dense adds one contiguous weight row; conv adds ``W[c, ky, ·, :]`` for
  each valid kernel row, one contiguous run for stride-1/dilation-1 columns (the weight copy has
  kx reversed, so consecutive ``ox`` are consecutive memory), a per-(kx, ox) run of ``c_out``
  otherwise; valid (k, o) pairs per input row/column come precomputed, so no border tests.
  Pools add ``w[c]``; the max-pool gate keeps counts per source and checks the winner of each
  reached window; identity adds ``w[i mod C]``.
* **Counting without per-event work**: the kernel counts, per sample, spikes and active updates
  per neuron and delivered spikes per (projection, source neuron).  Synaptic events, their split
  by target core, messages and hops follow exactly from these and the geometry tables of
  :mod:`emulator.compile` (integer sparse products in :func:`simulate`).  Max-pool deliveries
  depend on the run and are counted directly.
* **Parallelism over samples** (``prange``) with per-sample state; integers only, so results do
  not depend on the thread count or the batch size.  Random inputs use
  :func:`hw_models.rng.mix64` keyed by (seed, sample, step, neuron), ported in :func:`mix64`.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange
from numba.cpython.unsafe.numbers import trailing_zeros

from hw_models.errors import DataError, SimulationError, StateOverflowError
from hw_models.rng import GOLDEN, MASK, MUL1, MUL2

from . import compile as C
from .compile import (J_ANALOG, J_C, J_COFF, J_DELAY, J_DOFF, J_FAST, J_KH, J_KIND, J_KW,
                      J_MOFF, J_NSRC, J_NTGT, J_OC, J_OW, J_PL, J_PT, J_ROFF, J_SRC, J_SX, J_SY,
                      J_TGT, J_W, J_WOFF, P_ANALOG, P_BASE, P_DU, P_DV, P_H, P_INHI, P_INLO, P_INPUT,
                      P_MAXD, P_OVF, P_RESET, P_RULE, P_SIZE, P_SPIKING, P_THR, P_VINIT, P_VMAX,
                      P_VMIN)

_GOLDEN = np.uint64(GOLDEN)
_MUL1 = np.uint64(MUL1)
_MUL2 = np.uint64(MUL2)
_S27, _S30, _S31, _S32 = np.uint64(27), np.uint64(30), np.uint64(31), np.uint64(32)


# ---- random numbers (port of hw_models.rng) -------------------------------------------------
@njit(cache=True, inline="always")
def _splitmix(z):
    z = z + _GOLDEN
    z = (z ^ (z >> _S30)) * _MUL1
    z = (z ^ (z >> _S27)) * _MUL2
    return z ^ (z >> _S31)


@njit(cache=True)
def mix64(seed, sample, step, neuron):
    """:func:`hw_models.rng.mix64` on uint64 arguments (wrapping arithmetic)."""
    h = _splitmix(np.uint64(seed))
    h = _splitmix(h ^ np.uint64(sample))
    h = _splitmix(h ^ np.uint64(step))
    return _splitmix(h ^ np.uint64(neuron))


@njit(cache=True)
def mix64_many(seed, sample, step, neurons):
    out = np.empty(len(neurons), np.uint64)
    for i in range(len(neurons)):
        out[i] = mix64(seed, sample, step, neurons[i])
    return out


# ---- neuron arithmetic ----------------------------------------------------------------------
@njit(cache=True, inline="always")
def _dec(x, delta):
    """sign(x) · ⌊|x| · (4096 − δ) / 4096⌋ with the special cases δ = 0 and δ = 4096."""
    if delta == 0:
        return x
    if delta == 4096:
        return np.int64(0)
    if x >= 0:
        return (x * (4096 - delta)) >> 12
    return -(((-x) * (4096 - delta)) >> 12)


@njit(cache=True, inline="always")
def _dec_bf(x, f):
    """dec(x, δ) with f = 4096 − δ, branch-free: sign(x) · ((|x| · f) >> 12)."""
    sg = x >> 63
    m = (((x ^ sg) - sg) * f) >> 12
    return (m ^ sg) - sg


# ---- scatter of one spike list --------------------------------------------------------------
@njit(cache=True, nogil=True, boundscheck=False)
def _scatter(pk, k, ring, a, cnt, acc, deliv, mpc, mpev, mpcore, core, s):
    """Add the contributions of ``ring[a:a+cnt]`` (source ids) through projection k to acc."""
    J = pk.proj
    kind = J[k, J_KIND]
    w = pk.w
    woff = J[k, J_WOFF]
    if kind != 3:
        doff = J[k, J_DOFF]
        for e in range(cnt):
            deliv[s, doff + ring[a + e]] += 1
    if kind == 0:  # dense
        nt = J[k, J_NTGT]
        av = acc[:nt]
        for e in range(cnt):
            row = woff + ring[a + e] * nt
            wv = w[row:row + nt]  # views, not index sums: lets LLVM vectorise the add
            for i in range(nt):
                av[i] += wv[i]
        return
    if kind == 4:  # identity
        c = J[k, J_C]
        for e in range(cnt):
            j = ring[a + e]
            acc[j] += w[woff + j % c]
        return
    W, Cc, OW, OC = J[k, J_W], J[k, J_C], J[k, J_OW], J[k, J_OC]
    kh, kw = J[k, J_KH], J[k, J_KW]
    roff, coff = J[k, J_ROFF], J[k, J_COFF]
    rp, rk, ro = pk.rows_ptr, pk.rows_k, pk.rows_o
    cp, ck, co = pk.cols_ptr, pk.cols_k, pk.cols_o
    pos = pk.pos
    sb = pk.pop[J[k, J_SRC], P_BASE]
    if kind == 1:  # conv
        fast = J[k, J_FAST] == 1
        for e in range(cnt):
            j = ring[a + e]
            y, x, c = pos[sb + j, 0], pos[sb + j, 1], pos[sb + j, 2]
            c0 = cp[coff + x]
            c1 = cp[coff + x + 1]
            n = c1 - c0
            if n == 0:
                continue
            for ri in range(rp[roff + y], rp[roff + y + 1]):
                ky = rk[ri]
                oy = ro[ri]
                if fast:
                    kr0 = kw - 1 - ck[c1 - 1]
                    ab = (oy * OW + co[c1 - 1]) * OC
                    wb = woff + ((c * kh + ky) * kw + kr0) * OC
                    L = n * OC
                    av = acc[ab:ab + L]
                    wv = w[wb:wb + L]
                    for i in range(L):
                        av[i] += wv[i]
                else:
                    for ci in range(c0, c1):
                        ab = (oy * OW + co[ci]) * OC
                        wb = woff + ((c * kh + ky) * kw + kw - 1 - ck[ci]) * OC
                        av = acc[ab:ab + OC]
                        wv = w[wb:wb + OC]
                        for i in range(OC):
                            av[i] += wv[i]
        return
    if kind == 2:  # avgpool
        for e in range(cnt):
            j = ring[a + e]
            y, x, c = pos[sb + j, 0], pos[sb + j, 1], pos[sb + j, 2]
            wv = w[woff + c]
            for ri in range(rp[roff + y], rp[roff + y + 1]):
                oy = ro[ri]
                for ci in range(cp[coff + x], cp[coff + x + 1]):
                    acc[(oy * OW + co[ci]) * Cc + c] += wv
        return
    # maxpool gate: count this step's arrivals first, then pass the winners
    moff = J[k, J_MOFF]
    H = pk.pop[J[k, J_SRC], P_H]
    sy, sx, pt, pl = J[k, J_SY], J[k, J_SX], J[k, J_PT], J[k, J_PL]
    tb = pk.pop[J[k, J_TGT], P_BASE]
    for e in range(cnt):
        mpc[moff + ring[a + e]] += 1
    for e in range(cnt):
        j = ring[a + e]
        y, x, c = pos[sb + j, 0], pos[sb + j, 1], pos[sb + j, 2]
        for ri in range(rp[roff + y], rp[roff + y + 1]):
            oy = ro[ri]
            for ci in range(cp[coff + x], cp[coff + x + 1]):
                ox = co[ci]
                best = np.int64(-1)
                win = np.int64(-1)
                for ky in range(kh):
                    yy = oy * sy - pt + ky
                    if yy < 0 or yy >= H:
                        continue
                    for kx in range(kw):
                        xx = ox * sx - pl + kx
                        if xx < 0 or xx >= W:
                            continue
                        src = (yy * W + xx) * Cc + c
                        if mpc[moff + src] > best:
                            best = mpc[moff + src]
                            win = src
                if win == j:
                    ti = (oy * OW + ox) * Cc + c
                    acc[ti] += w[woff + c]
                    mpev[s, k] += 1
                    mpcore[s, core[tb + ti]] += 1


@njit(cache=True, nogil=True, boundscheck=False)
def _analog_current(pk, k, xrow, icur):
    """Add Σ_j x_j · w_ij of analog projection k into icur (flat over all neurons)."""
    J = pk.proj
    kind = J[k, J_KIND]
    w = pk.w
    woff = J[k, J_WOFF]
    tb = pk.pop[J[k, J_TGT], P_BASE]
    ns = J[k, J_NSRC]
    W, Cc, OW, OC = J[k, J_W], J[k, J_C], J[k, J_OW], J[k, J_OC]
    kh, kw = J[k, J_KH], J[k, J_KW]
    roff, coff = J[k, J_ROFF], J[k, J_COFF]
    rp, rk, ro = pk.rows_ptr, pk.rows_k, pk.rows_o
    cp, ck, co = pk.cols_ptr, pk.cols_k, pk.cols_o
    wc = W * Cc
    for j in range(ns):
        xv = np.int64(xrow[j])
        if xv == 0:
            continue
        if kind == 0:
            nt = J[k, J_NTGT]
            for i in range(nt):
                icur[tb + i] += xv * w[woff + j * nt + i]
        elif kind == 4:
            icur[tb + j] += xv * w[woff + j % Cc]
        else:
            y = j // wc
            x = (j - y * wc) // Cc
            c = j - y * wc - x * Cc
            for ri in range(rp[roff + y], rp[roff + y + 1]):
                ky = rk[ri]
                oy = ro[ri]
                for ci in range(cp[coff + x], cp[coff + x + 1]):
                    ab = tb + (oy * OW + co[ci]) * OC
                    if kind == 1:
                        wb = woff + ((c * kh + ky) * kw + kw - 1 - ck[ci]) * OC
                        for i in range(OC):
                            icur[ab + i] += xv * w[wb + i]
                    else:
                        icur[ab + c] += xv * w[woff + c]


# ---- one sample -----------------------------------------------------------------------------
@njit(cache=True, nogil=True, boundscheck=False)
def _run_sample(pk, core, s, sg, T, xrow, ev_stp, ev_neu, e_lo, e_hi, seed, ring_off, ring_cap,
                rcnt_off, ring_total, rcnt_total, rec_slot, rec_buf, rec_n, spk, act, deliv,
                mpev, mpcore, sat, pred, ovf):
    P = pk.pop
    J = pk.proj
    nn = pk.n_neurons
    v = np.zeros(nn, np.int64)
    u = np.zeros(nn, np.int64)
    for p in range(P.shape[0]):
        if P[p, P_INPUT] == 0:
            b = P[p, P_BASE]
            for i in range(P[p, P_SIZE]):
                v[b + i] = P[p, P_VINIT]
    ring = np.zeros(ring_total, np.int32)
    rcnt = np.zeros(rcnt_total, np.int64)
    acc = np.zeros(pk.max_size, pk.w.dtype)
    mpc = np.zeros(pk.n_mpcount, np.int64)
    mask = np.zeros(((pk.max_size + 15) >> 3) << 3, np.uint8)  # spike marks for _update
    enc = pk.encoding
    icur = np.zeros(nn if enc == 0 else 1, np.int64)
    resid = np.zeros(P[pk.input_pop, P_SIZE] if enc == 1 else 1, np.int64)
    if enc == 0:
        for k in range(J.shape[0]):
            if J[k, J_ANALOG] == 1:
                _analog_current(pk, k, xrow, icur)
    ip = pk.input_pop
    nin = P[ip, P_SIZE]
    inb = P[ip, P_BASE]
    M = pk.input_max
    Mu = np.uint64(M)
    cap = rec_buf.shape[1]
    ep = e_lo
    out = pk.output_pop
    ob, on = P[out, P_BASE], P[out, P_SIZE]
    for t in range(1, T + 1):
        # -- input spikes of step t
        if enc != 0:
            slot = t % (P[ip, P_MAXD] + 1)
            dst = ring_off[ip] + slot * ring_cap[ip]
            cnt = 0
            if enc == 1:
                # ⌊t·x/M⌋ > ⌊(t−1)·x/M⌋  ⇔  the residue (t−1)·x mod M plus x reaches M
                for j in range(nin):
                    rr = resid[j] + xrow[j]
                    f = rr >= M
                    resid[j] = rr - M * f
                    ring[dst + cnt] = j
                    cnt += f
            elif enc == 2:
                hs = _splitmix(_splitmix(_splitmix(np.uint64(seed)) ^ np.uint64(sg))
                               ^ np.uint64(t))
                for j in range(nin):
                    h = _splitmix(hs ^ np.uint64(j))
                    r = np.int64(((h >> _S32) * Mu) >> _S32)
                    if r < xrow[j]:
                        ring[dst + cnt] = j
                        cnt += 1
            else:
                while ep < e_hi and ev_stp[ep] + 1 < t:
                    ep += 1
                while ep < e_hi and ev_stp[ep] + 1 == t:
                    ring[dst + cnt] = ev_neu[ep]
                    cnt += 1
                    ep += 1
            rcnt[rcnt_off[ip] + slot] = cnt
            rs = rec_slot[ip]
            for e in range(cnt):
                j = ring[dst + e]
                spk[s, inb + j] += 1
                if rs >= 0:
                    r_ = rec_n[s]
                    if r_ < cap:
                        rec_buf[s, r_, 0] = rs
                        rec_buf[s, r_, 1] = t
                        rec_buf[s, r_, 2] = j
                    rec_n[s] = r_ + 1
        # -- every other population in order
        for oi in range(pk.order.shape[0]):
            p = pk.order[oi]
            for qi in range(P[p, P_INLO], P[p, P_INHI]):
                k = pk.in_proj[qi]
                if J[k, J_ANALOG] == 1:
                    continue
                ts = t - J[k, J_DELAY]
                if ts < 1:
                    continue
                sp = J[k, J_SRC]
                sl = ts % (P[sp, P_MAXD] + 1)
                _scatter(pk, k, ring, ring_off[sp] + sl * ring_cap[sp],
                         rcnt[rcnt_off[sp] + sl], acc, deliv, mpc, mpev, mpcore, core, s)
            b = P[p, P_BASE]
            n = P[p, P_SIZE]
            slot = t % (P[p, P_MAXD] + 1)
            dst = ring_off[p] + slot * ring_cap[p]
            cnt, nsat, bad = _update(P, p, acc, icur, u[b:b + n], v[b:b + n],
                                     pk.bias[b:b + n], act[s, b:b + n], ring[dst:dst + n], mask)
            if bad >= 0:
                ovf[s, 0] = t
                ovf[s, 1] = p
                ovf[s, 2] = bad
                ovf[s, 3] = v[b + bad]
                sat[s, p] += nsat
                return
            rs = rec_slot[p]
            for e in range(cnt):
                i = ring[dst + e]
                spk[s, b + i] += 1
                if rs >= 0:
                    r_ = rec_n[s]
                    if r_ < cap:
                        rec_buf[s, r_, 0] = rs
                        rec_buf[s, r_, 1] = t
                        rec_buf[s, r_, 2] = i
                    rec_n[s] = r_ + 1
            rcnt[rcnt_off[p] + slot] = cnt
            sat[s, p] += nsat
        # -- read-out
        best = -1
        if pk.readout == 0:
            bv = v[ob]
            best = 0
            for i in range(1, on):
                if v[ob + i] > bv:
                    bv = v[ob + i]
                    best = i
        else:
            bc = 0
            for i in range(on):
                if spk[s, ob + i] > bc:
                    bc = spk[s, ob + i]
                    best = i
        pred[t - 1, s] = best


@njit(cache=True, nogil=True, boundscheck=False)
def _update(P, p, acc, icur, u, v, bias, act, out, mask):
    """Steps 2–3 of the contract for population p, in passes LLVM can vectorise.

    Reads and clears ``acc[:n]`` (plus the analog current ``icur`` if any), updates u, v,
    counts active updates, applies the range policy, writes the spiking neurons' ids to
    ``out``.  Returns (number of spikes, saturations, first neuron that overflowed under
    'raise' or -1; v of that neuron is left at its out-of-range value)."""
    n = u.shape[0]
    thr, du, dv = P[p, P_THR], P[p, P_DU], P[p, P_DV]
    vmin, vmax, pol = P[p, P_VMIN], P[p, P_VMAX], P[p, P_OVF]
    b = P[p, P_BASE]
    # u ← dec(u) + Q (active iff Q ≠ 0);  v ← dec(v) + u + b;  one fused, branch-free pass
    fu = 4096 - du
    fv = 4096 - dv
    nsat = 0
    has_an = P[p, P_ANALOG] == 1
    for i in range(n):
        q = np.int64(acc[i])
        acc[i] = 0
        if has_an:
            q += icur[b + i]
        act[i] += q != 0
        uu = _dec_bf(u[i], fu) + q
        u[i] = uu
        vv = _dec_bf(v[i], fv) + uu + bias[i]
        v[i] = vv
        nsat += (vv > vmax) | (vv < vmin)
    # range policy
    if nsat:
        if pol == 0:
            for i in range(n):
                v[i] = min(max(v[i], vmin), vmax)
        elif pol == 1:
            span = vmax - vmin + 1
            for i in range(n):
                if v[i] > vmax or v[i] < vmin:
                    r = (v[i] - vmin) % span
                    if r < 0:
                        r += span
                    v[i] = vmin + r
        else:
            for i in range(n):
                if v[i] > vmax or v[i] < vmin:
                    return 0, nsat, i
    # spikes and reset: a vectorised pass marks and resets, then only marked 8-blocks are
    # compacted into the spike list (most blocks are empty at typical activity)
    cnt = 0
    if P[p, P_SPIKING] == 1:
        th = thr + P[p, P_RULE]  # v > θ  ⇔  v ≥ θ + 1 for integers
        keep = 1 - P[p, P_RESET]  # subtract: v − θ;  zero: 0
        tot = 0
        for i in range(n):
            f = v[i] >= th
            mask[i] = f
            tot += f
            v[i] = v[i] - f * (thr * keep + v[i] * (1 - keep))
        for i in range(n, ((n + 7) >> 3) << 3):
            mask[i] = 0  # marks of a larger population processed before
        if tot:
            # each mark is one byte 0/1: the lowest set bit of a word is the next spike
            m64 = mask.view(np.uint64)
            for wi in range((n + 7) >> 3):
                wd = m64[wi]
                while wd != 0:
                    out[cnt] = (wi << 3) + (trailing_zeros(wd) >> 3)
                    cnt += 1
                    wd &= wd - np.uint64(1)
    return cnt, nsat, -1


@njit(cache=True, parallel=True)
def _run_chunk(pk, core, s0, T, x, ev_stp, ev_neu, ev_off, seed, ring_off, ring_cap, rcnt_off,
               ring_total, rcnt_total, rec_slot, rec_buf, rec_n, spk, act, deliv, mpev, mpcore,
               sat, pred, ovf):
    ns = spk.shape[0]
    for s in prange(ns):
        _run_sample(pk, core, s, s0 + s, T, x[s], ev_stp, ev_neu, ev_off[s], ev_off[s + 1], seed,
                    ring_off, ring_cap, rcnt_off, ring_total, rcnt_total, rec_slot, rec_buf,
                    rec_n, spk, act, deliv, mpev, mpcore, sat, pred, ovf)


# ---- the Python side ------------------------------------------------------------------------
_CACHE_ATTR = "_emulator_packed"


def _fingerprint(net) -> bytes:
    """A digest of everything :func:`emulator.compile.pack` reads, to reuse a packing safely."""
    import hashlib
    h = hashlib.blake2b(digest_size=16)
    h.update(repr((net.output, net.readout, net.order())).encode())
    for p in net.populations:
        h.update(repr((p.name, p.shape, p.kind, p.threshold, p.reset, p.decay_u, p.decay_v,
                       p.v_init, p.v_min, p.v_max, p.overflow, p.spike_rule, p.spiking,
                       p.encoding, p.input_max)).encode())
        for a in (p.bias, p.core):
            h.update(b"-" if a is None else np.ascontiguousarray(a).tobytes())
    for pr in net.projections:
        h.update(repr((pr.name, pr.source, pr.target, pr.kind, pr.exponent, pr.delay,
                       pr.kernel, pr.stride, pr.padding, pr.dilation, pr.weights.dtype.str,
                       pr.weights.shape)).encode())
        h.update(np.ascontiguousarray(pr.weights).tobytes())
    h.update(b"-" if net.placement is None else np.ascontiguousarray(net.placement).tobytes())
    return h.digest()


def packed_network(net, repeat: int = 1):
    """(Packed, Static) of ``net``, cached on the network object while it is unchanged."""
    key = (_fingerprint(net), repeat > 1)
    hit = getattr(net, _CACHE_ATTR, None)
    if hit is not None and hit[0] == key and (repeat <= 1 or hit[3] >= repeat):
        return hit[1], hit[2]
    packed, static = C.pack(net, repeat=repeat)
    try:
        object.__setattr__(net, _CACHE_ATTR, (key, packed, static, repeat))
    except (AttributeError, TypeError):  # pragma: no cover - a slotted or frozen network
        pass
    return packed, static


def _inputs(net, x, T):
    """(N, x int64 (N, n) or dummy, ev_steps, ev_neurons, ev_offsets, input ring capacity,
    repeat) for the kernel, with the same checks as the reference."""
    inp = net.input
    n = inp.size
    if inp.encoding == "events":
        if not hasattr(x, "offsets"):
            raise DataError(f"input population {inp.name!r} has encoding 'events': pass an "
                            f"EventBatch, not {type(x).__name__}")
        if tuple(x.shape) != tuple(inp.shape):
            raise DataError(f"EventBatch shape {tuple(x.shape)} does not match input "
                            f"population {inp.name!r} shape {inp.shape}")
        off = np.ascontiguousarray(x.offsets, np.int64)
        st = np.ascontiguousarray(x.steps, np.int32)
        ne = np.ascontiguousarray(x.neurons, np.int32)
        N = len(off) - 1
        cap, rep = 1, 1
        if len(st):
            sample = np.repeat(np.arange(N, dtype=np.int64), np.diff(off))
            keep = st.astype(np.int64) + 1 <= T
            if keep.any():
                key = (sample[keep] * (T + 1) + st[keep]) 
                _, per_step = np.unique(key, return_counts=True)
                cap = max(cap, int(per_step.max()))
                _, per_pair = np.unique(key * n + ne[keep], return_counts=True)
                rep = max(rep, int(per_pair.max()))
        return N, np.zeros((N, 1), np.int64), st, ne, off, cap, rep
    if hasattr(x, "offsets"):
        raise DataError(f"input population {inp.name!r} has encoding {inp.encoding!r}: pass an "
                        f"integer array, not an EventBatch")
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.integer):
        raise DataError(f"input values must be integers, got dtype {x.dtype}")
    if x.ndim < 1 or x.shape[1:] != tuple(inp.shape):
        raise DataError(f"input has shape {x.shape}; expected (N, "
                        f"{', '.join(map(str, inp.shape))})")
    xf = np.ascontiguousarray(x.reshape(len(x), n), np.int64)
    if xf.size and (xf.min() < 0 or xf.max() > inp.input_max):
        raise DataError(f"input values must lie in [0, {inp.input_max}], found "
                        f"[{xf.min()}, {xf.max()}]")
    N = len(xf)
    z32 = np.zeros(0, np.int32)
    return N, xf, z32, z32, np.zeros(N + 1, np.int64), n, 1


def _ring_layout(pk, in_cap):
    P = pk.pop
    npop = len(P)
    cap = P[:, C.P_SIZE].copy()
    cap[pk.input_pop] = in_cap
    depth = P[:, C.P_MAXD] + 1
    ring_off = np.zeros(npop, np.int64)
    rcnt_off = np.zeros(npop, np.int64)
    ring_off[1:] = np.cumsum(cap * depth)[:-1]
    rcnt_off[1:] = np.cumsum(depth)[:-1]
    return ring_off, cap.astype(np.int64), rcnt_off, int((cap * depth).sum()), int(depth.sum())


def _overflow_error(net, pk, s, row):
    t, p, i, val = (int(v) for v in row)
    pop = net.populations[p]
    return StateOverflowError(
        f"population {pop.name!r}: v of neuron {i} left [{pop.v_min}, {pop.v_max}] (v = {val}) "
        f"in sample {s} at step {t} under overflow policy 'raise'; widen the range or use "
        f"'saturate'/'wrap'")


def _default_batch(N, threads, per_sample_bytes):
    budget = 256 * 2**20
    b = max(threads * 4, 32)
    b = min(b, max(threads, budget // max(per_sample_bytes, 1)))
    return max(1, min(N, b))


def simulate(net, x, steps, record=(), seed=0, threads=None, batch_size=None, progress=False):
    """Run ``net`` on a batch for ``steps`` steps with the compiled engine; return the raw
    result dict agreed with :func:`emulator.reference.simulate` (equal bit for bit)."""
    net.validate()
    T = int(steps)
    if T < 1:
        raise SimulationError(f"steps must be >= 1, got {steps}")
    record = tuple(record)
    for name in record:
        net.population(name)  # unknown names raise NetworkError
    N, xf, ev_st, ev_ne, ev_off, in_cap, rep = _inputs(net, x, T)
    pk, st = packed_network(net, rep)
    core = st.core
    ring_off, ring_cap, rcnt_off, ring_total, rcnt_total = _ring_layout(pk, in_cap)
    names = st.names
    rec_slot = np.full(len(names), -1, np.int64)
    for k, name in enumerate(dict.fromkeys(record)):
        rec_slot[names.index(name)] = k
    rec_names = list(dict.fromkeys(record))
    rec_size = sum(net.population(nm).size for nm in rec_names)
    nn, npop, nproj, ncores = pk.n_neurons, len(pk.pop), len(pk.proj), st.n_cores

    old_threads = numba.get_num_threads()
    nthreads = old_threads if threads is None else max(1, min(int(threads),
                                                          numba.config.NUMBA_NUM_THREADS))
    per_sample = 4 * (2 * nn + pk.n_deliv) + 8 * (ncores + nproj + npop)
    bs = int(batch_size) if batch_size else _default_batch(N, nthreads, per_sample)
    if bs < 1:
        raise SimulationError(f"batch_size must be >= 1, got {batch_size}")

    spk_all = np.zeros((N, nn), np.int32)
    act_sum = np.zeros(nn, np.int64)
    deliv_sum = np.zeros(pk.n_deliv, np.int64)
    mpev_sum = np.zeros(nproj, np.int64)
    mpcore_sum = np.zeros(ncores, np.int64)
    sat_sum = np.zeros(npop, np.int64)
    pred = np.zeros((T, N), np.int64)
    rec_parts = {nm: [] for nm in rec_names}
    rec_cap = 0 if not rec_names else max(16, min(rec_size * T, 1 << 16))
    seed_u = np.uint64(int(seed) & MASK)

    bar = None
    if progress and N:
        from tqdm.auto import tqdm
        bar = tqdm(total=N, unit="sample", desc="emulating", leave=False)
    numba.set_num_threads(nthreads)
    try:
        for s0 in range(0, N, bs):
            s1 = min(N, s0 + bs)
            n = s1 - s0
            while True:
                spk = np.zeros((n, nn), np.int32)
                act = np.zeros((n, nn), np.int32)
                deliv = np.zeros((n, pk.n_deliv), np.int32)
                mpev = np.zeros((n, nproj), np.int64)
                mpcore = np.zeros((n, ncores), np.int64)
                sat = np.zeros((n, npop), np.int64)
                prd = np.zeros((T, n), np.int64)
                ovf = np.zeros((n, 4), np.int64)
                rec_buf = np.zeros((n, rec_cap, 3), np.int32)
                rec_n = np.zeros(n, np.int64)
                _run_chunk(pk, core, s0, T, xf[s0:s1] if xf.shape[0] == N else xf, ev_st,
                           ev_ne, ev_off[s0:s1 + 1], seed_u, ring_off, ring_cap, rcnt_off,
                           ring_total, rcnt_total, rec_slot, rec_buf, rec_n, spk, act, deliv,
                           mpev, mpcore, sat, prd, ovf)
                if rec_n.size and rec_n.max() > rec_cap:
                    rec_cap = int(rec_n.max())  # exact size now known: run the chunk again
                    continue
                break
            bad = np.flatnonzero(ovf[:, 0] > 0)
            if bad.size:
                s = int(bad[0])
                raise _overflow_error(net, pk, s0 + s, ovf[s])
            spk_all[s0:s1] = spk
            act_sum += act.sum(axis=0, dtype=np.int64)
            deliv_sum += deliv.sum(axis=0, dtype=np.int64)
            mpev_sum += mpev.sum(axis=0)
            mpcore_sum += mpcore.sum(axis=0)
            sat_sum += sat.sum(axis=0)
            pred[:, s0:s1] = prd
            if rec_names:
                for s in range(n):
                    rows = rec_buf[s, :rec_n[s]]
                    for k, nm in enumerate(rec_names):
                        r = rows[rows[:, 0] == k]
                        if len(r):
                            out = np.empty((len(r), 3), np.int32)
                            out[:, 0] = s0 + s
                            out[:, 1:] = r[:, 1:]
                            rec_parts[nm].append(out)
            if bar is not None:
                bar.update(n)
    finally:
        numba.set_num_threads(old_threads)
        if bar is not None:
            bar.close()
    return _assemble(net, pk, st, N, T, xf, spk_all, act_sum, deliv_sum, mpev_sum, mpcore_sum,
                     sat_sum, pred, rec_parts)


def _by_core(core, values, n_cores):
    out = np.zeros(n_cores, np.int64)
    np.add.at(out, core, np.asarray(values, np.int64))
    return out


def _assemble(net, pk, st, N, T, xf, spk_all, act_sum, deliv_sum, mpev_sum, mpcore_sum,
              sat_sum, pred, rec_parts):
    nc = st.n_cores
    P, J = pk.pop, pk.proj
    spk_sum = spk_all.sum(axis=0, dtype=np.int64)
    core = st.core
    per_neuron_inact = np.zeros(len(core), np.int64)
    spike_counts, res_pop = {}, {}
    for i, name in enumerate(st.names):
        b, n = int(P[i, C.P_BASE]), int(P[i, C.P_SIZE])
        spike_counts[name] = np.ascontiguousarray(spk_all[:, b:b + n])
        is_in = P[i, C.P_INPUT] == 1
        a = 0 if is_in else int(act_sum[b:b + n].sum())
        if not is_in:
            per_neuron_inact[b:b + n] = N * T - act_sum[b:b + n]
        res_pop[name] = {"spikes": int(spk_sum[b:b + n].sum()),
                         "neuron_updates_active": a,
                         "neuron_updates_inactive": 0 if is_in else N * T * n - a,
                         "saturations": int(sat_sum[i])}
    res_proj = {}
    syn_core = mpcore_sum.copy()
    for k, name in enumerate(st.proj_names):
        macs = 0
        if J[k, C.J_ANALOG] == 1:
            macs = int((xf != 0).sum(axis=0, dtype=np.int64) @ st.ev_tot[k])
            ev = 0
        elif J[k, C.J_KIND] == C.KINDS["maxpool"]:
            ev = int(mpev_sum[k])
        else:
            d0 = int(J[k, C.J_DOFF])
            d = deliv_sum[d0:d0 + int(J[k, C.J_NSRC])]
            ev = int(d @ st.ev_tot[k])
            syn_core += np.asarray(st.ev_core[k].T @ d, np.int64).reshape(-1)
        res_proj[name] = {"synaptic_events": ev, "input_macs": macs}
    corec = {
        "spikes": _by_core(core, spk_sum, nc),
        "synaptic_events": syn_core,
        "messages": _by_core(core, spk_sum * st.msg, nc),
        "hops": _by_core(core, spk_sum * st.hops, nc),
        "neuron_updates_active": _by_core(core, np.where(per_neuron_inact >= 0, act_sum, 0), nc),
        "neuron_updates_inactive": _by_core(core, per_neuron_inact, nc),
    }
    totals = {
        "synaptic_events": sum(d["synaptic_events"] for d in res_proj.values()),
        "spikes": sum(d["spikes"] for d in res_pop.values()),
        "messages": int(corec["messages"].sum()),
        "hops": int(corec["hops"].sum()),
        "neuron_updates_active": sum(d["neuron_updates_active"] for d in res_pop.values()),
        "neuron_updates_inactive": sum(d["neuron_updates_inactive"] for d in res_pop.values()),
        "saturations": sum(d["saturations"] for d in res_pop.values()),
        "input_macs": sum(d["input_macs"] for d in res_proj.values()),
    }
    records = {}
    for nm, parts in rec_parts.items():
        records[nm] = (np.concatenate(parts) if parts else np.zeros((0, 3), np.int32))
    return {"predictions": pred, "spike_counts": spike_counts, "records": records,
            "pop": res_pop, "proj": res_proj, "core": corec, "totals": totals}
