"""Quantisation of one normalised population (threshold 1 in float) to the profile's integers.

DESIGN.md step 5.  A population P receives projections with normalised float weights ``W′_p``
(threshold units: a weight of 1 moves v by one threshold) and has a float bias ``b′``.  With
``n`` signed weight bits, ``w_max = 2^(n−1) − 1`` (Loihi 1 mixed-sign groups: the largest even
value, ``2^(n−1) − 2``, because the sign costs the LSB) and ``R = w_max / max_p max|W′_p|``:

* population exponent ``E ≥ 0``: 0 if ``R ≥ 2^(n−1)`` (θ already has n bits of resolution);
  otherwise the smallest E with ``R·2^E ≥ 2^(n−1)``, bounded by the profile's largest weight
  exponent and by the threshold range (the weight exponent buys threshold resolution when the
  weights are large in threshold units, keeping ``w·2^e/θ`` as exact as the bits allow);
* ``θ = ⌊R·2^E⌋`` clipped to ``[1, 2^threshold_bits − 1]`` and to a quarter of the state range
  (headroom for the residue and one step of input);
* per projection p the smallest ``e_p ∈ [0, E]`` with ``max|W′_p|·θ/2^e_p ≤ w_max``, then
  ``w = round(W′_p·θ/2^e_p)`` clipped to ``±w_max`` (mixed sign on Loihi 1: rounded to even);
* bias ``b = round(b′·θ)``; beyond the bias mantissa range it becomes ``m·2^k`` with the
  smallest ``k ≤ bias_exponent_max`` that fits (rounded to a multiple of ``2^k``), else clipped.

"Float" conversion (``weight_bits=None``) uses the same rule with ``n = 24``: θ ≈ 2^23/max|W′|,
int32 weights — numerically as fine as float32 while keeping the integer contract.

The report per population lists θ, E, every e_p, the fraction of weights (and biases) clipped,
and the RMS and max of ``|w·2^e/θ − W′|`` (in threshold units).
"""

from __future__ import annotations

import numpy as np

from hw_models.errors import ConversionError

__all__ = ["FLOAT_BITS", "weight_limit", "quantise_population", "int_dtype"]

#: the mantissa width standing in for float weights (2^23 resolution)
FLOAT_BITS = 24


def weight_limit(bits: int, mixed_sign_loses_lsb: bool, mixed: bool) -> int:
    """Largest usable weight magnitude for ``bits`` signed bits."""
    wmax = (1 << (bits - 1)) - 1
    if mixed and mixed_sign_loses_lsb:
        wmax -= wmax % 2
    return wmax


def int_dtype(max_abs: int):
    """Smallest of int8/int16/int32/int64 holding ±max_abs."""
    for dt in (np.int8, np.int16, np.int32):
        if max_abs <= np.iinfo(dt).max:
            return dt
    return np.int64


def quantise_population(name: str, weights: dict, bias, bits: int | None, profile,
                        fixed_theta: int | None = None, headroom_bits: int = 2) -> dict:
    """Quantise the float projections into one population.

    Parameters
    ----------
    name : population name (for messages and the report).
    weights : ``{projection name: float array W′}`` (threshold units).
    bias : float array b′ per neuron (threshold units per step) or None.
    bits : signed weight bits, None = float (:data:`FLOAT_BITS`).
    profile : a :class:`~hw_models.profiles.ChipProfile`.
    fixed_theta : use this θ and E = 0 (relays whose weight must equal θ).
    headroom_bits : θ is also kept ≤ ``v_max_unscaled / 2^headroom_bits`` so that v (residue
        plus one step's input, up to a few θ) fits the profile's state range.

    Returns ``{"theta", "E", "weights": {p: int array}, "exponents": {p: e}, "bias": int array
    or None, "report": dict}``.
    """
    nbits = FLOAT_BITS if bits is None else int(bits)
    lsb = bool(profile.weight_mixed_sign_loses_lsb) and bits is not None
    e_lo, e_hi = profile.weight_exponent_range
    e_hi = max(0, int(e_hi))
    tmax = profile.threshold_max
    vcap = profile.v_max_unscaled >> int(headroom_bits)
    tmax = vcap if tmax is None else min(tmax, vcap)
    mixed = {p: bool(np.any(w > 0) and np.any(w < 0)) for p, w in weights.items()}
    limits = {p: weight_limit(nbits, lsb, mixed[p]) for p in weights}
    for p, lim in limits.items():
        if lim < 1:
            raise ConversionError(
                f"population {name!r}, projection {p!r}: {nbits}-bit weights of both signs on "
                f"profile {profile.name!r} lose the LSB to the sign and leave no usable "
                f"magnitude; use at least 3 weight bits")
    peak = {p: float(np.max(np.abs(w))) if w.size else 0.0 for p, w in weights.items()}
    if fixed_theta is not None:
        theta, E = int(fixed_theta), 0
    else:
        ratios = [limits[p] / peak[p] for p in weights if peak[p] > 0]
        R = min(ratios) if ratios else float(limits and min(limits.values()) or 1)
        half = float(1 << (nbits - 1))
        E = 0
        while R * 2.0 ** E < half and E < e_hi and \
                (tmax is None or np.floor(R * 2.0 ** (E + 1)) <= tmax):
            E += 1
        theta = int(min(np.floor(R * 2.0 ** E), float(tmax) if tmax is not None else np.inf,
                        float(2 ** 62)))
        theta = max(theta, 1)
    if theta > tmax:
        raise ConversionError(f"population {name!r}: threshold {theta} exceeds the threshold "
                              f"range of profile {profile.name!r} (max {tmax}: "
                              f"{profile.threshold_bits}-bit mantissa, state headroom)")
    out_w, out_e, rep_p = {}, {}, {}
    sq_sum, n_tot, n_clip, max_err = 0.0, 0, 0, 0.0
    for p, w in weights.items():
        lim = limits[p]
        e = 0
        while e < E and peak[p] * theta / 2.0 ** e > lim:
            e += 1
        q, clipped, sq, mx = _quantise_array(w, theta / 2.0 ** e, lim, lsb and mixed[p],
                                             int_dtype(lim), bits is not None and bits <= 16)
        out_w[p] = q
        out_e[p] = e
        rep_p[p] = {"exponent": e, "clipped_fraction": clipped / max(w.size, 1),
                    "rms_error": float(np.sqrt(sq / max(w.size, 1))), "max_error": mx,
                    "max_abs_weight": peak[p], "mixed_sign": mixed[p]}
        sq_sum += sq
        n_tot += w.size
        n_clip += clipped
        max_err = max(max_err, mx)
    b_int, b_rep = None, {"clipped_fraction": 0.0, "exponent": 0, "rms_error": 0.0}
    if bias is not None and np.any(bias != 0):
        b_int, b_rep = _quantise_bias(np.asarray(bias, np.float64), theta, profile)
    report = {"theta": theta, "E": E, "weight_bits": bits, "projections": rep_p,
              "clipped_fraction": n_clip / max(n_tot, 1),
              "rms_error": float(np.sqrt(sq_sum / max(n_tot, 1))), "max_error": max_err,
              "bias": b_rep}
    return {"theta": theta, "E": E, "weights": out_w, "exponents": out_e, "bias": b_int,
            "report": report}


_CHUNK = 1 << 22


def _quantise_array(w: np.ndarray, scale: float, lim: int, even: bool, dtype,
                    single: bool) -> tuple:
    """``round(w·scale)`` (to even if ``even``) clipped to ±lim, in cache-sized chunks.

    Returns (int array, clipped count, Σ err², max err) with err = |q/scale − w|.  ``single``
    computes in float32 (exact enough for ≤ 16-bit mantissas; float64 otherwise).
    """
    flat = w.reshape(-1)
    out = np.empty(flat.size, dtype)
    ft = np.float32 if single else np.float64
    clipped, sq, mx = 0, 0.0, 0.0
    inv = 1.0 / scale
    for i in range(0, flat.size, _CHUNK):
        c = flat[i:i + _CHUNK].astype(ft)
        q = c * ft(scale)
        if even:
            q *= ft(0.5)
            np.round(q, out=q)
            q *= ft(2.0)
        else:
            np.round(q, out=q)
        clipped += int(np.count_nonzero(np.abs(q) > lim))
        np.clip(q, -lim, lim, out=q)
        out[i:i + _CHUNK] = q
        q *= ft(inv)
        q -= c
        np.abs(q, out=q)
        if q.size:
            mx = max(mx, float(q.max()))
            sq += float(np.dot(q.astype(np.float64), q.astype(np.float64))) if not single \
                else float(np.dot(q, q))
    return out.reshape(w.shape), clipped, sq, mx


def _quantise_bias(b: np.ndarray, theta: int, profile) -> tuple[np.ndarray, dict]:
    scaled = b * theta
    bmax = profile.bias_max
    k = 0
    if bmax is not None:
        peak = float(np.max(np.abs(scaled)))
        while peak / 2.0 ** k > bmax + 0.5 and k < profile.bias_exponent_max:
            k += 1
        m = np.round(scaled / 2.0 ** k)
        clipped = int(np.count_nonzero((m > bmax) | (m < profile.bias_min)))
        m = np.clip(m, profile.bias_min, bmax)
        q = m * 2.0 ** k
    else:
        q = np.round(scaled)
        clipped = 0
    err = np.abs(q / theta - b)
    return q.astype(np.int64), {"clipped_fraction": clipped / b.size, "exponent": k,
                                "rms_error": float(np.sqrt(np.mean(err ** 2))),
                                "max_error": float(err.max())}
