"""The running-maximum max-pool built from plain IF neurons (no gate primitive needed).

``maxpool="runmax"`` is a projection rule (:class:`hw_models.network.Projection`, gate
``runmax``): a chip needs a per-window running-maximum primitive to run it natively, and none of
the shipped profiles has one.  This module builds the same function from ordinary integer
neurons and ordinary projections, so it can be mapped onto any chip with signed weights,
reset-to-zero and one same-step hop:

* per pooled neuron (oy, ox, c) and window position k (K = kh·kw of them), a *difference*
  neuron ``d`` (θ = 1, reset to zero) that receives +1 from its window's source spike, −1 one
  step after the pooled neuron fired, and +1 one step after it fired itself;
* the pooled neuron ``o`` (θ = 1, reset to zero) receives +1 from each of its K difference
  neurons with delay 0: it fires iff at least one of them fired in this step.

Invariant: after step t, ``v_d = n_k(t) − O(t)`` for a difference neuron that did not fire, and
``v_d = 0`` for one that fired (then ``n_k(t) − O(t) = 0``), with ``n_k`` the count of its
source and ``O`` the pooled count.  At step t, v_d = (n_k(t−1) − O(t−1)) + s_k(t), which is 1
exactly when source k reaches a new maximum; so o fires iff ``max_k n_k(t) > O(t−1)``, and by
induction ``O(t) = max_k n_k(t)`` — the running maximum, the same count as the runmax gate.
(Each source spikes at most once per step, so ``max_k n_k`` rises by at most one per step.)
v_d ≤ 1 always, so reset to zero equals reset by subtraction here (native on Loihi 1).

Cost per pooled neuron: K + 1 neurons instead of 1; synaptic events per step: one per source
spike and window that holds it (as the gate), one to ``o`` and one to itself per difference
spike, and K per pooled spike (the inhibition back to its difference neurons).  The
d → o hop must be delivered in the same step (delay 0); a chip that delays every hop by one
step (Loihi) gets the inhibition one step late, which double-counts when two sources tie at
the maximum, so there the circuit is not exact.  With the rule ``v > θ`` every weight is 2 and
θ = 1 (then v > 1 ⇔ v ≥ 2).
"""

from __future__ import annotations

import numpy as np

from hw_models.network import Population, Projection, conv_output_size

__all__ = ["runmax_circuit"]


def runmax_circuit(name: str, source: str, source_shape: tuple, kernel, stride, padding,
                   spike_rule: str = ">=", src_delay: int = 0, v_min: int = -(2**23),
                   v_max: int = 2**23 - 1):
    """(populations, projections) computing the running-maximum max-pool of ``source``.

    The pooled population is ``name``; its difference neurons are ``name + "/diff"``
    (shape (OH, OW, C·K), channel c·K + k).  ``src_delay`` is the delay from the source.
    """
    h, w, c = (int(v) for v in source_shape)
    (kh, kw), (sy, sx) = tuple(kernel), tuple(stride)
    pt, pb, pl, pr = padding
    oh = conv_output_size(h, kh, sy, pt, pb)
    ow = conv_output_size(w, kw, sx, pl, pr)
    K = kh * kw
    a = 1 if spike_rule == ">=" else 2
    common = dict(threshold=1, reset="zero", spike_rule=spike_rule, v_min=v_min, v_max=v_max)
    diff = Population(f"{name}/diff", (oh, ow, c * K), **common)
    out = Population(name, (oh, ow, c), **common)
    w_in = np.zeros((kh, kw, c, c * K), np.int8)
    w_or = np.zeros((1, 1, c * K, c), np.int8)
    w_back = np.zeros((1, 1, c, c * K), np.int8)
    for ch in range(c):
        for ky in range(kh):
            for kx in range(kw):
                k = ky * kw + kx
                w_in[ky, kx, ch, ch * K + k] = a
                w_or[0, 0, ch * K + k, ch] = a
                w_back[0, 0, ch, ch * K + k] = -a
    projs = [
        Projection(f"{name}/in", source, diff.name, "conv", w_in, delay=src_delay,
                   stride=(sy, sx), padding=(pt, pb, pl, pr)),
        Projection(f"{name}/or", diff.name, name, "conv", w_or, delay=0),
        Projection(f"{name}/inhibit", name, diff.name, "conv", w_back, delay=1),
        Projection(f"{name}/self", diff.name, diff.name, "identity",
                   np.full(c * K, a, np.int8), delay=1),
    ]
    return [diff, out], projs
