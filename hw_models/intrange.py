"""Integer-range proof: every sum the engine and the dense reference form fits in int64.

Both simulators keep ``Q``, ``u``, ``v`` and the bias in 64-bit integers and compute
``dec(x, δ)`` as ``sign(x) · ((|x| · (4096 − δ)) >> 12)``.  NumPy and Numba wrap silently on
overflow, so a crafted or damaged network (an exponent of 64, weights near 2^62, a v range of the
whole int64) would otherwise give wrong spikes without a word.  :func:`check_ranges` bounds every
quantity from the network alone (and from ``steps`` and the input repeat when known) and refuses
the network unless each stays within :data:`STATE_LIMIT` = 2^50:

* **effective weight** ``max|w| · 2^e`` (so the exponent is bounded too: ``e ≤ 50``);
* **accumulator** ``|Q| ≤ Σ_proj B_proj · 2^e · s``, where ``B_proj`` is the largest sum of
  ``|w|`` any one target can receive from one spike per source neuron (dense: the largest column
  sum; conv: the largest per-output-channel kernel sum; pools: window area × max|w|, max-pool
  gate: max|w|; identity: max|w|) and ``s`` the largest per-step source value (``input_max``
  for an analog input, the event repeat for an events input, else 1);
* **input current** ``|u| ≤ |Q| · min(T, 4096/δ_u)`` (``δ_u = 4096``: ``u = Q``; ``δ_u = 0``:
  ``u`` sums for T steps, so only a run of known length can be proved);
* **bias** ``max|b|`` and **voltage range** ``max(|v_min|, |v_max|)``.

With each of |v|, |u|, |b| ≤ 2^50, ``dec(v) + u + b`` stays below 2^52 and every product by
``4096 − δ`` below 2^62: no intermediate leaves int64, so the ``raise`` policy sees the true v
and ``wrap``/``saturate`` act on the true value.  Real converted networks sit far inside this
(8-bit weights, fan-in 10^4, 8-bit inputs: |Q| < 2^33).  Bounds are computed in float64 with a
relative margin of 10^-6 (far above its rounding error), so the proof is sound.
"""

from __future__ import annotations

import numpy as np

from .errors import NetworkError, StateOverflowError

STATE_LIMIT = 2**50
_MARGIN = 1.0 + 1e-6
_ONE = 4096  # DECAY_ONE, repeated to keep this module import-free of network.py cycles


_CHUNK = 1 << 22  # rows of at most ~4 M elements are converted to float64 at a time


def _colsum_max(w2) -> float:
    """max over columns of Σ_rows |w| for a 2-D integer array, in chunks (no full float copy)."""
    rows = max(1, _CHUNK // max(1, w2.shape[1]))
    acc = np.zeros(w2.shape[1])
    for i in range(0, w2.shape[0], rows):
        acc += np.abs(w2[i:i + rows].astype(np.float64)).sum(axis=0)
    return float(acc.max(initial=0.0))


def _absmax(w) -> float:
    if w is None or not w.size:
        return 0.0
    flat = np.asarray(w).reshape(-1)
    return max(float(np.abs(flat[i:i + _CHUNK].astype(np.float64)).max())
               for i in range(0, flat.size, _CHUNK))


def projection_gain(pr) -> float:
    """Largest Σ|w · 2^e| one target can receive per step from one spike of each source neuron
    (float, upper bound)."""
    w = np.asarray(pr.weights)
    if not w.size:
        return 0.0
    if pr.kind == "dense" and w.ndim == 2:
        g = _colsum_max(w)
    elif pr.kind == "conv" and w.ndim == 4:
        g = _colsum_max(w.reshape(-1, w.shape[3]))
    elif pr.kind == "avgpool":
        g = _absmax(w) * max(1, int(np.prod(pr.kernel)))
    else:  # identity, maxpool gate (only the winner passes), unknown: max|w|
        g = _absmax(w) * (1 if pr.kind in ("identity", "maxpool") else max(1, w.size))
    return g * 2.0 ** pr.exponent


def check_ranges(net, steps: int | None = None, repeat: int = 1,
                 error=NetworkError) -> dict:
    """Prove that no integer of ``net`` leaves int64 in a run of ``steps`` steps (None: the
    length-independent part) with events inputs repeating a neuron at most ``repeat`` times per
    step; raise ``error`` naming the population or projection and the bound otherwise.
    Returns ``{population: (bound |Q|, bound |u|)}``."""
    lim = float(STATE_LIMIT)
    by = {p.name: p for p in net.populations}
    q = {p.name: 0.0 for p in net.populations}
    for pr in net.projections:
        if pr.exponent > 50 or pr.exponent < 0:
            raise error(f"projection {pr.name!r}: exponent {pr.exponent} outside 0..50 (w·2^e "
                        f"must stay below 2^50; a shift by 64 or more would silently give 0)")
        m = _absmax(np.asarray(pr.weights)) * 2.0 ** pr.exponent
        if m * _MARGIN > lim:
            raise error(f"projection {pr.name!r}: effective weight max|w|·2^e = {m:.3g} exceeds "
                        f"2^50 (the engine's exact-integer headroom)")
        src = by.get(pr.source)
        scale = 1.0
        if src is not None and src.is_input:
            scale = float(src.input_max) if src.encoding == "analog" else (
                float(max(1, repeat)) if src.encoding == "events" else 1.0)
        if pr.target in q:
            q[pr.target] += projection_gain(pr) * scale
    out = {}
    for p in net.populations:
        if p.is_input:
            continue
        n = f"population {p.name!r}"
        qb = q[p.name]
        if qb * _MARGIN > lim:
            raise error(f"{n}: the synaptic input per step can reach {qb:.3g} (Σ |w·2^e| × "
                        f"fan-in × input range), beyond 2^50 = {lim:.3g}: the int64 state could "
                        f"overflow silently; lower the weights, exponents or input range")
        du = int(p.decay_u)
        if du >= _ONE:
            ub = qb
        elif du > 0:
            ub = qb * min(float(steps) if steps else np.inf, _ONE / du)
        else:
            ub = qb * float(steps) if steps else (0.0 if qb == 0 else None)
        if ub is not None and ub * _MARGIN > lim:
            raise error(f"{n}: the input current u can reach {ub:.3g} over "
                        f"{steps if steps else 'the run'} steps (decay_u {du}), beyond 2^50: "
                        f"the int64 state could overflow silently; fewer steps or a decay")
        bb = _absmax(p.bias) if p.bias is not None else 0.0
        if bb > lim:
            raise error(f"{n}: bias up to {bb:.3g} exceeds 2^50")
        vb = float(max(abs(p.v_min), abs(p.v_max)))
        if vb > lim:
            raise error(f"{n}: voltage range [{p.v_min}, {p.v_max}] exceeds ±2^50, so "
                        f"dec(v) + u + bias could leave int64 before the overflow policy sees "
                        f"it; narrow the range")
        out[p.name] = (qb, ub)
    return out


def check_run_ranges(net, steps: int, repeat: int = 1) -> dict:
    """:func:`check_ranges` for a run of ``steps`` steps, raising :class:`StateOverflowError`
    (a :class:`~hw_models.errors.SimulationError`) before the run starts."""
    return check_ranges(net, steps, repeat, error=StateOverflowError)


__all__ = ["STATE_LIMIT", "check_ranges", "check_run_ranges", "projection_gain"]
