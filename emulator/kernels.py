"""The compiled kernels of the event engine (Numba): one sample's whole time loop.

See :mod:`emulator.engine` for the design; this module holds only ``@njit`` code working on the
flat arrays of :class:`emulator.compile.Packed`.  The Python side (checks, chunking, threads,
counters) is :func:`emulator.engine.simulate`.
"""

from __future__ import annotations

import numpy as np
from numba import get_thread_id, njit, prange

from hw_models.network import DECAY_ONE
from hw_models.rng import GOLDEN, MUL1, MUL2

from . import work as WK
from ._jit import bits64, hot, popcount, trailing_zeros
from .compile import (J_ANALOG, J_C, J_CG, J_COFF, J_DELAY, J_DOFF, J_EXP, J_FAST, J_KH, J_KIND,
                      J_KW, J_MOFF, J_NSRC, J_NTGT, J_OC, J_OG, J_OW, J_PL, J_PT, J_ROFF, J_RS,
                      J_SRC, J_SX, J_SY, J_TGT, J_TOFF, J_W, J_WOFF, P_ANALOG, P_BASE, P_DU, P_DV,
                      P_H, P_INHI, P_INLO, P_LANE32, P_MAXD, P_OVF, P_RESET, P_RULE, P_SIZE,
                      P_SKIP, P_SPIKING, P_THR, P_VMAX, P_VMIN, POOL_CMASK, POOL_SHIFT, ROW_PAD,
                      RUNMAX)

#: dec() divides by DECAY_ONE = 2**DECAY_SHIFT; a shift is exact for the non-negative products
DECAY_SHIFT = DECAY_ONE.bit_length() - 1

_GOLDEN = np.uint64(GOLDEN)
_MUL1 = np.uint64(MUL1)
_MUL2 = np.uint64(MUL2)
_S27, _S30, _S31, _S32 = np.uint64(27), np.uint64(30), np.uint64(31), np.uint64(32)
OUT_SLACK = 8  # entries a spike list needs after its population size (see _compact)


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
def _dec_bf(x, f):
    """dec(x, δ) with f = 4096 − δ, branch-free: sign(x) · ((|x| · f) >> 12)."""
    sg = x >> 63
    m = (((x ^ sg) - sg) * f) >> DECAY_SHIFT
    return (m ^ sg) - sg


# ---- scatter of one spike list --------------------------------------------------------------
@njit(cache=True, inline="always")
def _add_run(av, wv, n, sh):
    """av[:n] += wv[:n] · 2^sh, the narrow weights widened to the accumulator's type (a
    separate loop for sh = 0, the common case, so that it is a plain widening add)."""
    if sh == 0:
        for i in range(n):
            av[i] += wv[i]
    else:
        for i in range(n):
            av[i] += np.int64(wv[i]) << sh


@hot
def _scatter(pk, k, ring, a, cnt, acc, mpc, mpev, mpcore, core, s):
    """Add the contributions of ``ring[a:a+cnt]`` (source ids) through projection k to acc."""
    J = pk.proj
    kind = J[k, J_KIND]
    w = pk.w
    woff = J[k, J_WOFF]
    sh = J[k, J_EXP]  # weights are stored narrow; the exponent is a shift into acc
    if kind == 0:  # dense
        nt = J[k, J_NTGT]
        av = acc[:nt]
        for e in range(cnt):
            row = woff + ring[a + e] * nt
            _add_run(av, w[row:row + nt], nt, sh)
        return
    if kind == 4:  # identity
        c = J[k, J_C]
        for e in range(cnt):
            j = ring[a + e]
            acc[j] += np.int64(w[woff + j % c]) << sh
        return
    W, Cc, OW, OC = J[k, J_W], J[k, J_C], J[k, J_OW], J[k, J_OC]
    kh, kw = J[k, J_KH], J[k, J_KW]
    roff, coff = J[k, J_ROFF], J[k, J_COFF]
    rp, rk, ro = pk.rows_ptr, pk.rows_k, pk.rows_o
    cp, ck, co = pk.cols_ptr, pk.cols_k, pk.cols_o
    pos = pk.pos
    sb = pk.pop[J[k, J_SRC], P_BASE]
    if kind == 1:  # conv; a spike of channel c reaches the OG outputs of its group only
        fast = J[k, J_FAST] == 1  # (stride 1, dilation 1, one group)
        rs = J[k, J_RS]
        cg, og = J[k, J_CG], J[k, J_OG]
        for e in range(cnt):
            j = ring[a + e]
            y, x, c = pos[sb + j, 0], pos[sb + j, 1], pos[sb + j, 2]
            gb = (c // cg) * og  # first output channel of c's group
            c0 = cp[coff + x]
            c1 = cp[coff + x + 1]
            n = c1 - c0
            if n == 0:
                continue
            kr0 = kw - 1 - ck[c1 - 1]
            L = n * OC
            if kr0 + n == kw:  # the run ends at its row's end: round up over the zero pad
                L = (L + ROW_PAD - 1) & -ROW_PAD
            for ri in range(rp[roff + y], rp[roff + y + 1]):
                ky = rk[ri]
                oy = ro[ri]
                if fast:
                    ab = (oy * OW + co[c1 - 1]) * OC
                    wb = woff + (c * kh + ky) * rs + kr0 * OC
                    _add_run(acc[ab:ab + L], w[wb:wb + L], L, sh)
                else:
                    for ci in range(c0, c1):
                        ab = (oy * OW + co[ci]) * OC + gb
                        wb = woff + (c * kh + ky) * rs + (kw - 1 - ck[ci]) * og
                        _add_run(acc[ab:ab + og], w[wb:wb + og], og, sh)
        return
    if kind == 2:  # avgpool: explicit (short) target list per source
        tp = pk.pool_ptr
        tg = pk.pool_tgt
        toff = J[k, J_TOFF]
        if J[k, J_FAST] == 1:  # non-overlapping windows: (target, channel) or −1 per source
            for e in range(cnt):
                tc = tg[toff + ring[a + e]]
                if tc >= 0:
                    acc[tc >> POOL_SHIFT] += np.int64(w[woff + (tc & POOL_CMASK)]) << sh
            return
        for e in range(cnt):
            j = ring[a + e]
            wv = np.int64(w[woff + pos[sb + j, 2]]) << sh
            for ti in range(tp[toff + j], tp[toff + j + 1]):
                acc[tg[ti]] += wv
        return
    # maxpool: count this step's arrivals first, then pass the winners (or the running max)
    moff = J[k, J_MOFF]
    H = pk.pop[J[k, J_SRC], P_H]
    sy, sx, pt, pl = J[k, J_SY], J[k, J_SX], J[k, J_PT], J[k, J_PL]
    tb = pk.pop[J[k, J_TGT], P_BASE]
    for e in range(cnt):
        mpc[moff + ring[a + e]] += 1
    if kind == RUNMAX:
        # the window maximum only changes where a source spiked, to at most that source's
        # count: raising each reached target's maximum to it gives M(t) in any event order
        mx = moff + J[k, J_NSRC]  # per target: the passes so far (= the previous maximum)
        for e in range(cnt):
            j = ring[a + e]
            c = pos[sb + j, 2]
            nj = mpc[moff + j]
            wv = np.int64(w[woff + c]) << sh
            for ri in range(rp[roff + pos[sb + j, 0]], rp[roff + pos[sb + j, 0] + 1]):
                oy = ro[ri]
                for ci in range(cp[coff + pos[sb + j, 1]], cp[coff + pos[sb + j, 1] + 1]):
                    ti = (oy * OW + co[ci]) * Cc + c
                    d = nj - mpc[mx + ti]
                    if d > 0:
                        mpc[mx + ti] = nj
                        acc[ti] += d * wv
                        mpev[s, k] += d
                        mpcore[s, core[tb + ti]] += d
        return
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
                    acc[ti] += np.int64(w[woff + c]) << sh
                    mpev[s, k] += 1
                    mpcore[s, core[tb + ti]] += 1


@hot
def _analog_current(pk, k, xrow, icur):
    """Add Σ_j x_j · w_ij of analog projection k into icur (flat over all neurons)."""
    J = pk.proj
    kind = J[k, J_KIND]
    w = pk.w
    woff = J[k, J_WOFF]
    sh = J[k, J_EXP]
    tb = pk.pop[J[k, J_TGT], P_BASE]
    ns = J[k, J_NSRC]
    W, Cc, OW, OC = J[k, J_W], J[k, J_C], J[k, J_OW], J[k, J_OC]
    kh, kw = J[k, J_KH], J[k, J_KW]
    roff, coff = J[k, J_ROFF], J[k, J_COFF]
    rp, rk, ro = pk.rows_ptr, pk.rows_k, pk.rows_o
    cp, ck, co = pk.cols_ptr, pk.cols_k, pk.cols_o
    wc = W * Cc
    for j in range(ns):
        xv = np.int64(xrow[j]) << sh  # x · (w · 2^e) = (x · 2^e) · w
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
                        og = J[k, J_OG]
                        ab += (c // J[k, J_CG]) * og
                        wb = woff + (c * kh + ky) * J[k, J_RS] + (kw - 1 - ck[ci]) * og
                        for i in range(og):
                            icur[ab + i] += xv * w[wb + i]
                    else:
                        icur[ab + c] += xv * w[woff + c]


# ---- one sample -----------------------------------------------------------------------------
@njit(cache=True, nogil=True, boundscheck=False)
def _run_sample(pk, core, s, sg, T, xrow, ev_stp, ev_neu, e_lo, e_hi, seed, ring_off, ring_cap,
                rcnt_off, ring_total, rcnt_total, rec_slot, rec_buf, rec_n, spk, act, deliv,
                mpev, mpcore, sat, pred, ovf, wk, tid, step_time, tb_time, tb_work, tb_crit):
    # The per-step kernels borrow these arrays (``_jit.hot``): they take whole arrays and
    # offsets and make any views themselves, since every view made here, in reference-counted
    # code, costs two atomic operations (~40 ns on this machine), a dozen per population-step
    P = pk.pop
    J = pk.proj
    bias = pk.bias
    nn = pk.n_neurons
    v = pk.v0.copy()  # int32 or int64 (see emulator.compile.pack)
    satl = np.zeros(P.shape[0], np.int64)
    # per population: is some neuron at its firing level (1), none (0), not known (-1)?  Known
    # only from a scan of v since its last update (see the skip below)
    pend = np.full(P.shape[0], -1, np.int64)
    predl = np.zeros(T, np.int64)
    u = np.zeros(nn, np.int64)
    ring = np.zeros(ring_total, np.int32)
    rcnt = np.zeros(rcnt_total, np.int64)
    acc = np.zeros(pk.max_size + ROW_PAD, pk.acc0.dtype)  # slack for rounded conv runs
    mpc = np.zeros(pk.n_mpcount, np.int64)
    # marks of a population's update (bit 0 spiked; bits 1, 2 active for the work counters),
    # with 64 bytes of slack: the counters read whole 64-byte words
    # (64-byte aligned: whole-word reads then touch one cache line each)
    msz = (((pk.max_size + 63) >> 6) << 6) + 64
    mraw = np.zeros(msz + 64, np.uint8)
    mo = (-mraw.ctypes.data) & 63
    mask = mraw[mo:mo + msz]
    won = wk.on == 1
    cp = WK.COPIES  # (copies used in turn, see WK.route_spikes)
    swp = np.zeros(cp * wk.n_cores, np.int64)  # this step's sending work per core (packed)
    swa = np.zeros((wk.n_cores, 2), np.int64)  # this step's active updates per core
    runs = (wk.run_ptr, wk.run_end, wk.run_core)  # neurons on one core, for the update
    l8 = np.zeros(WK.NSETS * wk.lanes_max, np.uint8)  # scratch of WK.count_marks
    l16 = np.zeros(64 * wk.pat_max, np.uint16)
    wide = np.zeros(max(WK.NSETS * wk.lanes_max, wk.row_max), np.int64)
    passes = np.zeros(max(2 * wk.pat_max, 260), np.int64)
    m32 = np.zeros(wk.cls_max + 1, np.int32)
    rwp = np.zeros(cp * wk.depth * wk.n_cores, np.int64)  # receive work (packed), ring over delays
    sbuf = np.zeros(wk.depth + WK.SB_EXTRA, np.int64)  # see WK._slots, WK.SB_RECV
    sbuf[wk.depth + WK.SB_RLAST] = -wk.depth
    ccnt = np.zeros(cp * wk.cls_ptr.shape[0], np.int64)  # spikes per route class this step
    mpprev = np.zeros(wk.n_cores, np.int64)
    acs = np.zeros((wk.acores.shape[0], 2), np.int64)  # see WK.const_active
    # the tables the helpers read (see WK.MarkTables: a call with the whole WorkPack costs
    # ~300-600 instructions)
    wmt = WK.mark_tables(wk)
    wut, wct, wat = WK.step_tables(wk, pk.n_mpcount > 0)
    lat = np.int64(0)
    enc = pk.encoding
    icur = np.zeros(nn if enc == 0 else 1, np.int64)
    if enc == 0:
        for k in range(J.shape[0]):
            if J[k, J_ANALOG] == 1:
                _analog_current(pk, k, xrow, icur)
    ip = pk.input_pop
    nin = P[ip, P_SIZE]
    inb = P[ip, P_BASE]
    M = pk.input_max
    Mu = np.uint64(M)
    # rate and Bernoulli inputs: a neuron with x = 0 never spikes, so the encoders run over the
    # nonzero inputs only (compacted once per sample; the cost follows the input, not its
    # size), the rate encoder in 32-bit lanes when M < 2^30 (residue + x < 2^31)
    nz = 0
    if enc == 1 or enc == 2:
        for j in range(nin):
            nz += np.int64(xrow[j] != 0)
    nzi = np.empty(nz + OUT_SLACK, np.int32)
    narrow = M < (1 << 30)
    x32 = np.empty(nz if enc == 1 and narrow else 0, np.int32)
    r32 = np.zeros(x32.shape[0], np.int32)
    x64 = np.empty(nz if enc == 2 or (enc == 1 and not narrow) else 0, np.int64)
    r64 = np.zeros(x64.shape[0] if enc == 1 else 0, np.int64)
    if nz:
        e = 0
        for j in range(nin):
            if xrow[j] != 0:
                nzi[e] = j
                if x32.shape[0]:
                    x32[e] = xrow[j]
                else:
                    x64[e] = xrow[j]
                e += 1
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
                if nz:
                    if x32.shape[0]:
                        tot = _rate_step32(x32, r32, M, mask)
                    else:
                        tot = _rate_step(x64, r64, M, mask)
                    if tot:  # compacted positions, then the neurons they stand for
                        cnt = _compact_at(mask, nz, ring, dst, nzi)
            elif enc == 2:
                hs = _splitmix(_splitmix(_splitmix(np.uint64(seed)) ^ np.uint64(sg))
                               ^ np.uint64(t))
                for e in range(nz):
                    j = nzi[e]
                    h = _splitmix(hs ^ np.uint64(j))
                    r = np.int64(((h >> _S32) * Mu) >> _S32)
                    if r < x64[e]:
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
            _count_spikes(ring, dst, cnt, spk, s, inb, rec_slot[ip], t, rec_buf, rec_n)
            if won:
                lat = max(lat, WK.route_spikes(wmt, ip, ring, dst, cnt, inb, t, swp, rwp,
                                               sbuf, ccnt, m32, wide, WK.R_ALL))
        # -- every other population in order
        for oi in range(pk.order.shape[0]):
            p = pk.order[oi]
            arrived = 0
            for qi in range(P[p, P_INLO], P[p, P_INHI]):
                k = pk.in_proj[qi]
                if J[k, J_ANALOG] == 1:
                    continue
                ts = t - J[k, J_DELAY]
                if ts < 1:
                    continue
                sp = J[k, J_SRC]
                sl = ts % (P[sp, P_MAXD] + 1)
                na = rcnt[rcnt_off[sp] + sl]
                if na == 0:
                    continue
                arrived += na
                _scatter(pk, k, ring, ring_off[sp] + sl * ring_cap[sp], na, acc, mpc, mpev,
                         mpcore, core, s)
            slot = t % (P[p, P_MAXD] + 1)
            b = P[p, P_BASE]
            n = P[p, P_SIZE]
            # active updates per core (with timing), from Q, v and the bias before the update:
            # marked by 32-bit update loops where the population has a structure to count the
            # marks by (WK.count_marks), else counted in a pass of their own
            work = wk.pinfo[p, WK.I_WORK] if won else 0
            # an analog-driven layer whose active updates are the same in every step of a
            # sample (WK.I_ACONST): marked and counted in step 1, added per core after
            # (WK.const_active), its update loop marking only the spikes from step 2 on
            cst = won and wk.pinfo[p, WK.I_ACONST] > 0
            uw = 0 if cst and t > 1 else work  # (the update loop's)
            bits = uw == 2
            if won and work == 0:
                WK.count_active(wat, p, b, n, P[p, P_ANALOG] == 1, acc, icur, v, bias, swa)
            if arrived == 0 and P[p, P_SKIP] == 1:
                # nothing arrived, no bias, no decay: if no neuron is at its firing level, no
                # v changes and nothing fires, and the skipped updates count as inactive.
                # v is scanned for that once after an update (not in the update loop, which
                # runs far more often); while the population is skipped the answer holds
                if pend[p] < 0:
                    pend[p] = _at_level(P, p, v)
                if pend[p] == 0:
                    rcnt[rcnt_off[p] + slot] = 0
                    if work:  # a skipped update still counts under the 'state' convention
                        WK.count_active(wat, p, b, n, False, acc, icur, v, bias, swa)
                    continue
            pend[p] = -1
            dst = ring_off[p] + slot * ring_cap[p]
            cnt, nsat, bad, badv = _update(P, p, acc, icur, u, v, bias, act, s, ring, dst, mask,
                                           uw, runs, swa)
            if bad >= 0:
                ovf[s, 0] = t
                ovf[s, 1] = p
                ovf[s, 2] = bad
                ovf[s, 3] = badv
                satl[p] += nsat
                sat[s, :] = satl
                return
            _count_spikes(ring, dst, cnt, spk, s, b, rec_slot[p], t, rec_buf, rec_n)
            rcnt[rcnt_off[p] + slot] = cnt
            satl[p] += nsat
            if cst and t == 1:
                WK.const_active(wat, p, t, swa, acs, cst)
            if won and (bits or wk.pinfo[p, WK.I_UNIFORM] == 0):
                lat = WK.count_marks(wmt, p, mask, bits, n, cnt, ring, dst, b, t, lat, swp, swa,
                                     rwp, sbuf, ccnt, l8, l16, wide, passes, m32)
            elif won:  # (one core, one message list, no marks: the spike list says it all)
                lat = max(lat, WK.route_uniform(wut, p, ring, dst, cnt, b, t, swp, rwp, sbuf))
            if cst:  # (bool variables, not literals: one compiled version)
                WK.const_active(wat, p, t, swa, acs, not cst)
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
        predl[t - 1] = best
        if won:
            WK.close_step(wct, t, swp, swa, rwp, sbuf, mpcore, mpprev, lat, step_time, s,
                          tb_time, tb_work, tb_crit, tid)
            lat = 0
    # per-sample results are kept locally and written once: rows of neighbouring samples
    # share cache lines, and neighbouring samples usually run on different threads
    sat[s, :] = satl
    for t in range(T):
        pred[t, s] = predl[t]
    _deliveries(pk, s, T, ring, rcnt, ring_off, ring_cap, rcnt_off, spk, deliv)


@hot
def _rate_step(xs, rs, M, mask):
    """One step of the rate encoder over compacted inputs: ⌊t·x/M⌋ > ⌊(t−1)·x/M⌋ ⇔ the
    residue (t−1)·x mod M plus x reaches M.  Marks in ``mask``; returns their number."""
    tot = 0
    for j in range(xs.shape[0]):
        rr = rs[j] + xs[j]
        f = rr >= M
        rs[j] = rr - M * f
        mask[j] = f
        tot += np.int64(f)
    return tot


@hot
def _rate_step32(xs, rs, M, mask):
    """:func:`_rate_step` in 32-bit lanes (x ≤ M < 2^30, so residue + x < 2^31): the casts
    keep LLVM from widening to 64 bits (twice the lanes per vector)."""
    M = np.int32(M)
    tot = np.int32(0)
    for j in range(xs.shape[0]):
        rr = np.int32(rs[j] + xs[j])
        f = np.int32(rr >= M)
        rs[j] = np.int32(rr - np.int32(M & np.int32(-f)))
        mask[j] = f
        tot = np.int32(tot + f)
    return np.int64(tot)


@hot
def _count_spikes(ring, dst, cnt, spk, s, b, rs, t, rec, rec_n):
    """Count the spikes ``ring[dst:dst+cnt]`` (ids local to a population whose first neuron
    is b) of sample s in the per-neuron counts ``spk[s]`` and, if the population is recorded
    (slot ``rs`` ≥ 0), append (rs, t, neuron) rows to ``rec[s]`` (rows past its capacity are
    only counted: the caller reruns with the exact size)."""
    sp = spk[s, b:]
    if rs < 0:
        for e in range(cnt):
            sp[ring[dst + e]] += 1
        return
    rc = rec[s]
    cap = rc.shape[0]
    for e in range(cnt):
        i = ring[dst + e]
        sp[i] += 1
        r_ = rec_n[s]
        if r_ < cap:
            rc[r_, 0] = rs
            rc[r_, 1] = t
            rc[r_, 2] = i
        rec_n[s] = r_ + 1


@hot
def _deliveries(pk, s, T, ring, rcnt, ring_off, ring_cap, rcnt_off, spk, deliv):
    """Spikes delivered per (projection, source neuron) in sample s, from the spike counts
    instead of a count per spike in the scatter: a spike emitted at step t is delivered iff
    t + delay ≤ T, so deliveries = spikes − those of the last ``delay`` steps, which are still
    in the source's ring (its depth exceeds every delay out of it).  Max-pool and analog
    projections count otherwise."""
    P = pk.pop
    J = pk.proj
    for k in range(J.shape[0]):
        if J[k, J_ANALOG] == 1 or J[k, J_KIND] == 3 or J[k, J_KIND] == RUNMAX:
            continue
        sp = J[k, J_SRC]
        sb = P[sp, P_BASE]
        doff = J[k, J_DOFF]
        for j in range(P[sp, P_SIZE]):
            deliv[s, doff + j] = spk[s, sb + j]
        depth = P[sp, P_MAXD] + 1
        for t in range(max(1, T - J[k, J_DELAY] + 1), T + 1):
            sl = t % depth
            a = ring_off[sp] + sl * ring_cap[sp]
            for e in range(rcnt[rcnt_off[sp] + sl]):
                deliv[s, doff + ring[a + e]] -= 1


@hot
def _update(P, p, acc, icur, u_all, v_all, bias_all, act_all, s, ring, dst, mask, work, runs,
            swa):
    """Steps 2–3 of the contract for population p (sample s).  ``work`` (with the work
    counters on, :data:`emulator.work.I_WORK`): 1 (32-bit) the update loop also sums the
    active updates of both conventions per run of neurons on one core into ``swa`` (``runs``:
    the work counters' (run_ptr, run_end, run_core)); 2 (32-bit, or 64-bit IF) it marks each
    neuron's active update in ``mask`` (bits 1 and 2) for :func:`emulator.work.count_marks`.

    Reads and clears ``acc[:n]`` (plus the analog current ``icur`` if any), updates u, v,
    counts active updates, applies the range policy, writes the spiking neurons' ids to
    ``ring[dst:]``.  Returns (number of spikes, saturations, first neuron that overflowed under
    'raise' or -1, the out-of-range v of that neuron).  ``v`` may be int32 (see
    :func:`emulator.compile.pack`): every value is computed in int64 (or in int32 where
    ``P_LANE32`` proves it exact) and stored only once it lies in ``[v_min, v_max]``."""
    b = P[p, P_BASE]
    n = P[p, P_SIZE]
    u, v, bias, act = u_all[b:b + n], v_all[b:b + n], bias_all[b:b + n], act_all[s, b:b + n]
    if P[p, P_OVF] == 0:
        # the common case in one fused, vectorisable pass (tot < 0: spikes not counted)
        nsat, tot = _update_saturate(P, p, acc, icur, u, v, bias, act, mask, work, runs, swa)
    else:
        nsat, bad, badv = _update_general(P, p, acc, icur, u, v, bias, act)
        if bad >= 0:
            return 0, nsat, bad, badv
        tot = 0
        if P[p, P_SPIKING] == 1:
            tot = _mark_reset(P, p, v, mask)
    cnt = 0
    if tot != 0:
        cnt = _compact(mask, n, ring[dst:dst + n + OUT_SLACK])
    return cnt, nsat, -1, 0


@hot
def _at_level(P, p, v_all):
    """1 if some neuron of population p is at or above its firing level, else 0."""
    if P[p, P_SPIKING] == 0:
        return 0
    v = v_all[P[p, P_BASE]:P[p, P_BASE] + P[p, P_SIZE]]
    th = P[p, P_THR] + P[p, P_RULE]
    top = th - 1
    for i in range(v.shape[0]):
        top = max(top, np.int64(v[i]))
    return np.int64(top >= th)


@hot
def _compact(mask, n, out):
    """Write the indices i < n with ``mask[i] = 1`` to ``out`` in ascending order; return
    their number.  ``out`` needs :data:`OUT_SLACK` entries of slack after n (written with
    garbage).  Per 64 neurons, the marks (bit 0 of a byte per neuron) become one bit word in a
    single vector compare (:func:`emulator._jit.bits64`), counted by ``popcnt``; then eight
    positions are stored without a data-dependent branch (lowest set bit, clear it), which
    covers ≤ 8 spikes per 64 neurons, and the loop repeats only for denser words.  (A branch
    per spike or per 8 neurons costs a misprediction each at typical activity.)"""
    n64 = (n + 63) >> 6
    for i in range(n, n64 << 6):
        mask[i] = 0  # marks of a larger population processed before
    cnt = np.uint64(0)  # unsigned: no negative-index wraparound code around each store
    one = np.uint64(1)
    for blk in range(n64):
        bits = bits64(mask, blk << 6, WK.B_SPIKE)
        if bits == 0:
            continue
        base = np.int32(blk << 6)
        nc = popcount(bits)
        while True:
            for r in range(8):
                out[cnt + np.uint64(r)] = base + np.int32(trailing_zeros(bits))
                bits &= bits - one
            if nc <= np.uint64(8):
                break
            cnt += np.uint64(8)
            nc -= np.uint64(8)
        cnt += nc
    return np.int64(cnt)


@hot
def _compact_at(mask, n, ring, dst, ids):
    """:func:`_compact` into ``ring[dst:]``, each position then replaced by ``ids[position]``
    (the rate encoder's compacted inputs → their neurons); returns the count."""
    out = ring[dst:dst + n + OUT_SLACK]
    cnt = _compact(mask, n, out)
    for e in range(cnt):
        out[e] = ids[out[e]]
    return cnt


@njit(cache=True, inline="always")
def _clamp_fire(vv, vmin, vmax, th, sub, keep, spiking):
    """(v after clamp, spike and reset; spiked; saturated) for one neuron, branch-free.
    ``keep`` is a bit mask: all ones for reset by subtraction (v − θ), zero for reset to 0
    (``sub`` 0), so the reset is a select and an AND, no multiply."""
    sat = np.int64(vv > vmax) + np.int64(vv < vmin)
    vv = min(max(vv, vmin), vmax)
    f = (vv >= th) & spiking
    return (((vv - sub) & keep) if f else vv), f, sat


@njit(cache=True, inline="always")
def _cl32(cl):
    """The clamp/fire constants of ``cl`` as int32 (see :func:`_clamp_fire32`)."""
    return (np.int32(cl[0]), np.int32(cl[1]), np.int32(cl[2]), np.int32(cl[3]),
            np.int32(cl[4]), np.int32(cl[5]))


@njit(cache=True, inline="always")
def _clamp_fire32(vv, c):
    """:func:`_clamp_fire` in 32-bit lanes for the loops of :func:`_sat_if32`: (v after clamp,
    spike and reset; spiked 0/1; saturated 0/1), every result cast back to int32 (Numba widens
    int32 arithmetic to int64 and LLVM narrows it back only through the casts).  A saturation
    is one compare (clamped ≠ unclamped); the reset is a select by mask, no multiply."""
    vmin, vmax, th, sub, keep, spk = c
    vc = min(max(vv, vmin), vmax)
    f = np.int32(np.int32(vc >= th) & spk)
    m = np.int32(-f)  # all ones where the neuron fires
    return np.int32((np.int32(vc - sub) & keep & m) | (vc & ~m)), f, np.int32(vc != vv)


@hot
def _update_saturate(P, p, acc, icur, u, v, bias, act, mask, work, runs, swa):
    """A saturating population in one branch-free pass per neuron (u, v, clamp, spike mark,
    reset), with loops specialised for IF neurons (δu = 4096, δv = 0: u = Q is never read
    again, so it is not stored).  Returns (saturations, spikes); the 32-bit loops do not
    count the spikes (−1 for a spiking population, 0 otherwise): the compaction that follows
    finds them anyway.  Each loop lives in its own small function: one function holding all
    of them cost ~80 ns more per call."""
    thr = P[p, P_THR]
    cl = (P[p, P_VMIN], P[p, P_VMAX], thr + P[p, P_RULE],  # v > θ  ⇔  v ≥ θ + 1
          thr if P[p, P_RESET] == 0 else np.int64(0), np.int64(P[p, P_RESET] - 1),
          P[p, P_SPIKING] == 1)
    if P[p, P_LANE32] == 1:
        if work == 1:  # with the work counters, long runs on one core: sums per run
            run_ptr, run_end, run_core = runs
            nsat = np.int64(0)
            lo = 0
            for r in range(run_ptr[p], run_ptr[p + 1]):
                hi = run_end[r]
                ns, s1, s2 = _sat_if32_sums(acc[lo:hi], v[lo:hi], bias[lo:hi], act[lo:hi],
                                            mask[lo:hi], cl)
                c = run_core[r]
                swa[c, 0] += s1
                swa[c, 1] += s2
                nsat += ns
                lo = hi
        elif work == 2:  # with the work counters: active updates marked too
            if P[p, P_SKIP] == 1:
                nsat = _sat_if32_work_nb(acc, v, act, mask, cl)
            else:
                nsat = _sat_if32_work(acc, v, bias, act, mask, cl)
        elif P[p, P_SKIP] == 1:  # bias-free: no bias stream
            nsat = _sat_if32_nb(acc, v, act, mask, cl)
        else:
            nsat = _sat_if32(acc, v, bias, act, mask, cl)
        return np.int64(nsat), -np.int64(P[p, P_SPIKING])
    if P[p, P_DU] == DECAY_ONE and P[p, P_DV] == 0:
        an = P[p, P_ANALOG] == 1
        b = P[p, P_BASE]
        ic = icur[b:b + v.shape[0]] if an else icur[:0]
        if work == 2:
            return _sat_if_work(acc, ic, v, bias, act, mask, cl, an)
        if an:
            return _sat_if_analog(acc, ic, v, bias, act, mask, cl)
        return _sat_if(acc, v, bias, act, mask, cl)
    return _sat_decay(P, p, acc, icur, u, v, bias, act, mask, cl)


@hot
def _sat_if(acc, v, bias, act, mask, cl):
    """IF neurons in 64-bit lanes."""
    vmin, vmax, th, sub, keep, spiking = cl
    nsat = np.int64(0)
    tot = np.int64(0)
    for i in range(v.shape[0]):
        q = np.int64(acc[i])
        acc[i] = 0
        act[i] += np.int32(q != 0)
        vn, f, sat = _clamp_fire(np.int64(v[i]) + q + bias[i], vmin, vmax, th, sub, keep,
                                 spiking)
        v[i] = vn
        mask[i] = f
        tot += np.int64(f)
        nsat += sat
    return nsat, tot


@hot
def _sat_if32(acc, v, bias, act, mask, cl):
    """:func:`_sat_if` in 32-bit lanes (acc, v, bias int32; every intermediate proven to
    fit by ``compile._update_modes``; :func:`_clamp_fire32` casts every result back to int32).
    Returns the saturations only (a per-step count of one population: it fits int32).
    What the loop leaves out is what makes it fast (about 2.3 vector instructions per neuron
    with 8 lanes): the spikes are not counted (the compaction finds them), a saturation is
    one compare (clamped ≠ unclamped), and whether a neuron is left at its firing level is
    asked of v only when the engine may skip the next update (:func:`_at_level`)."""
    c = _cl32(cl)
    nsat = np.int32(0)
    for i in range(v.shape[0]):
        q = acc[i]
        acc[i] = 0
        act[i] += np.int32(q != 0)
        v[i], mask[i], sat = _clamp_fire32(np.int32(np.int32(v[i] + q) + bias[i]), c)
        nsat = np.int32(nsat + sat)
    return nsat


@hot
def _sat_if32_nb(acc, v, act, mask, cl):
    """:func:`_sat_if32` for a bias-free population (``P_SKIP``): one input stream less."""
    c = _cl32(cl)
    nsat = np.int32(0)
    for i in range(v.shape[0]):
        q = acc[i]
        acc[i] = 0
        act[i] += np.int32(q != 0)
        v[i], mask[i], sat = _clamp_fire32(np.int32(v[i] + q), c)
        nsat = np.int32(nsat + sat)
    return nsat


@njit(cache=True, inline="always")
def _mark(f, a, st):
    """A neuron's mark byte for :func:`emulator.work.count_marks`: spiked, active under the
    ``input`` convention, active under the ``state`` convention (bits ``WK.SH_*``)."""
    return np.uint8((f << WK.SH_SPIKE) | (a << WK.SH_ACT_INPUT) | (st << WK.SH_ACT_STATE))


@hot
def _sat_if32_sums(acc, v, bias, act, mask, cl):
    """:func:`_sat_if32` that also returns the active updates of the latency model's two
    conventions (:func:`emulator.work.count_active`): Q ≠ 0, and v (before), Q or the
    bias ≠ 0.  Two reductions in the update loop cost less than a second pass over Q and v,
    and less than marking them (:func:`_sat_if32_work`) where a call per run is cheap: a
    population on few cores."""
    c = _cl32(cl)
    nsat = np.int32(0)
    s1 = np.int32(0)
    s2 = np.int32(0)
    for i in range(v.shape[0]):
        q = acc[i]
        v0 = v[i]
        bi = bias[i]
        acc[i] = 0
        a = np.int32(q != 0)
        act[i] += a
        s1 = np.int32(s1 + a)
        s2 = np.int32(s2 + np.int32((q | v0 | bi) != 0))
        v[i], mask[i], sat = _clamp_fire32(np.int32(np.int32(v0 + q) + bi), c)
        nsat = np.int32(nsat + sat)
    return nsat, s1, s2


@hot
def _sat_if32_work(acc, v, bias, act, mask, cl):
    """:func:`_sat_if32` that also marks each neuron's active update under the latency
    model's two conventions (:func:`emulator.work.count_active`) in its mark byte: bit 1 if
    Q ≠ 0, bit 2 if v (before), Q or the bias ≠ 0 (bit 0: it spiked).  They are counted per
    core from the marks (:func:`emulator.work.count_marks`): a byte the loop stores anyway,
    where sums per core inside the loop needed a call per run of neurons on one core."""
    c = _cl32(cl)
    nsat = np.int32(0)
    for i in range(v.shape[0]):
        q = acc[i]
        v0 = v[i]
        bi = bias[i]
        acc[i] = 0
        a = np.int32(q != 0)
        act[i] += a
        st = np.int32((q | v0 | bi) != 0)
        v[i], f, sat = _clamp_fire32(np.int32(np.int32(v0 + q) + bi), c)
        mask[i] = _mark(f, a, st)
        nsat = np.int32(nsat + sat)
    return nsat


@hot
def _sat_if32_work_nb(acc, v, act, mask, cl):
    """:func:`_sat_if32_work` for a bias-free population (``P_SKIP``): one input stream less."""
    c = _cl32(cl)
    nsat = np.int32(0)
    for i in range(v.shape[0]):
        q = acc[i]
        v0 = v[i]
        acc[i] = 0
        a = np.int32(q != 0)
        act[i] += a
        st = np.int32((q | v0) != 0)
        v[i], f, sat = _clamp_fire32(np.int32(v0 + q), c)
        mask[i] = _mark(f, a, st)
        nsat = np.int32(nsat + sat)
    return nsat


@hot
def _sat_if_analog(acc, icur, v, bias, act, mask, cl):
    vmin, vmax, th, sub, keep, spiking = cl
    nsat = np.int64(0)
    tot = np.int64(0)
    for i in range(v.shape[0]):
        q = np.int64(acc[i]) + icur[i]
        acc[i] = 0
        act[i] += np.int32(q != 0)
        vn, f, sat = _clamp_fire(np.int64(v[i]) + q + bias[i], vmin, vmax, th, sub, keep,
                                 spiking)
        v[i] = vn
        mask[i] = f
        tot += np.int64(f)
        nsat += sat
    return nsat, tot


@hot
def _sat_if_work(acc, icur, v, bias, act, mask, cl, an):
    """:func:`_sat_if` (``an``: :func:`_sat_if_analog`, Q = acc + icur) that also marks each
    neuron's active updates in its mark byte, as :func:`_sat_if32_work` does (a 64-bit
    population cut into many short runs on one core: the mapper's channel groups, an analog
    first layer's above all, in step 1: see work.const_active).  Returns (saturations,
    −spiking): the compaction that follows finds the spikes."""
    vmin, vmax, th, sub, keep, spiking = cl
    nsat = np.int64(0)
    for i in range(v.shape[0]):
        q = np.int64(acc[i]) + (icur[i] if an else np.int64(0))
        v0 = np.int64(v[i])
        bi = np.int64(bias[i])
        acc[i] = 0
        a = np.int64(q != 0)
        act[i] += np.int32(a)
        vn, f, sat = _clamp_fire(v0 + q + bi, vmin, vmax, th, sub, keep, spiking)
        v[i] = vn
        mask[i] = _mark(np.int64(f), a, np.int64((q | v0 | bi) != 0))
        nsat += sat
    return nsat, -np.int64(spiking)


@hot
def _sat_decay(P, p, acc, icur, u, v, bias, act, mask, cl):
    vmin, vmax, th, sub, keep, spiking = cl
    fu = DECAY_ONE - P[p, P_DU]
    fv = DECAY_ONE - P[p, P_DV]
    ib = P[p, P_BASE]
    has_an = P[p, P_ANALOG] == 1
    nsat = np.int64(0)
    tot = np.int64(0)
    for i in range(v.shape[0]):
        q = np.int64(acc[i])
        if has_an:
            q += icur[ib + i]
        acc[i] = 0
        act[i] += np.int32(q != 0)
        uu = _dec_bf(u[i], fu) + q
        u[i] = uu
        vn, f, sat = _clamp_fire(_dec_bf(np.int64(v[i]), fv) + uu + bias[i], vmin, vmax,
                                 th, sub, keep, spiking)
        v[i] = vn
        mask[i] = f
        tot += np.int64(f)
        nsat += sat
    return nsat, tot


@hot
def _update_general(P, p, acc, icur, u, v, bias, act):
    """u, v and the 'wrap' or 'raise' range policy.  Returns (saturations, first neuron that
    overflowed under 'raise' or -1, its out-of-range v)."""
    n = u.shape[0]
    fu, fv = DECAY_ONE - P[p, P_DU], DECAY_ONE - P[p, P_DV]
    vmin, vmax, pol = P[p, P_VMIN], P[p, P_VMAX], P[p, P_OVF]
    span = vmax - vmin + 1
    ib = P[p, P_BASE]
    has_an = P[p, P_ANALOG] == 1
    nsat = 0
    bad = -1
    badv = np.int64(0)
    for i in range(n):
        q = np.int64(acc[i])
        if has_an:
            q += icur[ib + i]
        acc[i] = 0
        act[i] += np.int32(q != 0)
        uu = _dec_bf(u[i], fu) + q
        u[i] = uu
        vv = _dec_bf(np.int64(v[i]), fv) + uu + bias[i]
        if vv > vmax or vv < vmin:
            nsat += 1
            if pol == 1:
                r = (vv - vmin) % span
                if r < 0:
                    r += span
                vv = vmin + r
            elif bad < 0:
                bad = i
                badv = vv
        v[i] = vv  # under 'raise' the run stops at the first overflow (its v is returned)
    return nsat, bad, badv


@hot
def _mark_reset(P, p, v, mask):
    """Mark the spiking neurons of p in ``mask`` and reset them; return the spike count."""
    n = v.shape[0]
    thr = P[p, P_THR]
    th = thr + P[p, P_RULE]  # v > θ  ⇔  v ≥ θ + 1 for integers
    tot = 0
    if P[p, P_RESET] == 0:  # subtract
        for i in range(n):
            f = v[i] >= th
            mask[i] = f
            tot += np.int64(f)
            v[i] = v[i] - thr if f else v[i]
    else:  # to zero
        for i in range(n):
            f = v[i] >= th
            mask[i] = f
            tot += np.int64(f)
            v[i] = 0 if f else v[i]
    return tot


@njit(cache=True, parallel=True)
def _run_chunk(pk, core, s0, T, x, ev_stp, ev_neu, ev_off, seed, ring_off, ring_cap, rcnt_off,
               ring_total, rcnt_total, rec_slot, rec_buf, rec_n, spk, act, deliv, mpev, mpcore,
               sat, pred, ovf, wk, step_time, tb_time, tb_work, tb_crit):
    ns = spk.shape[0]
    for s in prange(ns):
        tid = get_thread_id() if wk.on == 1 else 0
        _run_sample(pk, core, s, s0 + s, T, x[s], ev_stp, ev_neu, ev_off[s], ev_off[s + 1], seed,
                    ring_off, ring_cap, rcnt_off, ring_total, rcnt_total, rec_slot, rec_buf,
                    rec_n, spk, act, deliv, mpev, mpcore, sat, pred, ovf, wk, tid, step_time,
                    tb_time, tb_work, tb_crit)


