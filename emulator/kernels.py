"""The compiled kernels of the event engine (Numba): one sample's whole time loop.

See :mod:`emulator.engine` for the design; this module holds only ``@njit`` code working on the
flat arrays of :class:`emulator.compile.Packed`.  The Python side (checks, chunking, threads,
counters) is :func:`emulator.engine.simulate`.
"""

from __future__ import annotations

import numpy as np
from numba import config, njit, prange

if config.DISABLE_JIT:  # pure-Python run (coverage of the kernels): the intrinsic has no body
    def trailing_zeros(w):
        w = int(w)
        return (w & -w).bit_length() - 1
else:
    from numba.cpython.unsafe.numbers import trailing_zeros

from hw_models.rng import GOLDEN, MUL1, MUL2

from .compile import (J_ANALOG, J_C, J_COFF, J_DELAY, J_DOFF, J_FAST, J_KH, J_KIND, J_KW,
                      J_MOFF, J_NSRC, J_NTGT, J_OC, J_OW, J_PL, J_PT, J_ROFF, J_SRC, J_SX, J_SY,
                      J_TGT, J_TOFF, J_W, J_WOFF, P_ANALOG, P_BASE, P_DU, P_DV, P_H, P_INHI,
                      P_INLO, P_INPUT, P_MAXD, P_OVF, P_RESET, P_RULE, P_SIZE, P_SPIKING, P_THR,
                      P_VINIT, P_VMAX, P_VMIN)

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
    if kind == 2:  # avgpool: explicit (short) target list per source
        tp = pk.pool_ptr
        tg = pk.pool_tgt
        toff = J[k, J_TOFF]
        for e in range(cnt):
            j = ring[a + e]
            wv = w[woff + pos[sb + j, 2]]
            for ti in range(tp[toff + j], tp[toff + j + 1]):
                acc[tg[ti]] += wv
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
    if P[p, P_OVF] == 0 and P[p, P_ANALOG] == 0:
        # the common case in one fused pass: Q, activity, u, v, clamp, spike mark and reset
        nsat, tot = _update_fused(P, p, acc, u, v, bias, act, mask)
    else:
        nsat, bad = _update_general(P, p, acc, icur, u, v, bias, act)
        if bad >= 0:
            return 0, nsat, bad
        tot = 0
        if P[p, P_SPIKING] == 1:
            tot = _mark_reset(P, p, v, mask)
    # only marked 8-blocks are compacted into the spike list (most are empty at typical
    # activity); each mark is one byte 0/1: the lowest set bit of a word is the next spike
    cnt = 0
    if tot:
        for i in range(n, ((n + 7) >> 3) << 3):
            mask[i] = 0  # marks of a larger population processed before
        m64 = mask.view(np.uint64)
        for wi in range((n + 7) >> 3):
            wd = m64[wi]
            while wd != 0:
                out[cnt] = (wi << 3) + (trailing_zeros(wd) >> 3)
                cnt += 1
                wd &= wd - np.uint64(1)
    return cnt, nsat, -1


@njit(cache=True, nogil=True, boundscheck=False)
def _update_fused(P, p, acc, u, v, bias, act, mask):
    """Saturating population without analog input: one branch-free pass per neuron (u, v,
    clamp, spike mark, reset), specialised for IF neurons (δu = 4096: u = Q is never read
    again, so it is not stored; δv = 0).  Returns (saturations, spikes)."""
    n = u.shape[0]
    thr, du, dv = P[p, P_THR], P[p, P_DU], P[p, P_DV]
    vmin, vmax = P[p, P_VMIN], P[p, P_VMAX]
    spiking = P[p, P_SPIKING] == 1
    th = thr + P[p, P_RULE]  # v > θ  ⇔  v ≥ θ + 1 for integers
    sub = thr if P[p, P_RESET] == 0 else np.int64(0)
    zero = np.int64(P[p, P_RESET])  # 1: reset to zero
    fu = 4096 - du
    fv = 4096 - dv
    nsat = np.int64(0)
    tot = np.int64(0)
    if du == 4096 and dv == 0:
        for i in range(n):
            q = np.int64(acc[i])
            acc[i] = 0
            act[i] += np.int32(q != 0)
            vv = v[i] + q + bias[i]
            nsat += np.int64(vv > vmax) + np.int64(vv < vmin)
            vv = min(max(vv, vmin), vmax)
            f = (vv >= th) & spiking
            mask[i] = f
            tot += np.int64(f)
            v[i] = (vv - sub) * (1 - zero) if f else vv
    else:
        for i in range(n):
            q = np.int64(acc[i])
            acc[i] = 0
            act[i] += np.int32(q != 0)
            uu = _dec_bf(u[i], fu) + q
            u[i] = uu
            vv = _dec_bf(v[i], fv) + uu + bias[i]
            nsat += np.int64(vv > vmax) + np.int64(vv < vmin)
            vv = min(max(vv, vmin), vmax)
            f = (vv >= th) & spiking
            mask[i] = f
            tot += np.int64(f)
            v[i] = (vv - sub) * (1 - zero) if f else vv
    return nsat, tot


@njit(cache=True, nogil=True, boundscheck=False)
def _update_general(P, p, acc, icur, u, v, bias, act):
    """u, v and the range policy for any population.  Returns (saturations, first neuron that
    overflowed under 'raise' or -1)."""
    n = u.shape[0]
    du, dv = P[p, P_DU], P[p, P_DV]
    vmin, vmax, pol = P[p, P_VMIN], P[p, P_VMAX], P[p, P_OVF]
    b = P[p, P_BASE]
    # u ← dec(u) + Q (active iff Q ≠ 0);  v ← dec(v) + u + b;  one fused, branch-free pass
    fu = 4096 - du
    fv = 4096 - dv
    nsat = 0
    if P[p, P_ANALOG] == 1:
        for i in range(n):
            q = np.int64(acc[i]) + icur[b + i]
            acc[i] = 0
            act[i] += np.int32(q != 0)
            uu = _dec_bf(u[i], fu) + q
            u[i] = uu
            vv = _dec_bf(v[i], fv) + uu + bias[i]
            v[i] = vv
            nsat += np.int64(vv > vmax) + np.int64(vv < vmin)
    else:  # the same without the analog current (a branch in the loop blocks vectorising)
        for i in range(n):
            q = np.int64(acc[i])
            acc[i] = 0
            act[i] += np.int32(q != 0)
            uu = _dec_bf(u[i], fu) + q
            u[i] = uu
            vv = _dec_bf(v[i], fv) + uu + bias[i]
            v[i] = vv
            nsat += np.int64(vv > vmax) + np.int64(vv < vmin)
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
                    return nsat, i
    return nsat, -1


@njit(cache=True, nogil=True, boundscheck=False)
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
               sat, pred, ovf):
    ns = spk.shape[0]
    for s in prange(ns):
        _run_sample(pk, core, s, s0 + s, T, x[s], ev_stp, ev_neu, ev_off[s], ev_off[s + 1], seed,
                    ring_off, ring_cap, rcnt_off, ring_total, rcnt_total, rec_slot, rec_buf,
                    rec_n, spk, act, deliv, mpev, mpcore, sat, pred, ovf)


