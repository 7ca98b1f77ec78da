"""NeuroBench metrics of a core network and of a run, under NeuroBench's own names.

NeuroBench (Yik et al., "The NeuroBench framework for benchmarking neuromorphic computing
algorithms and systems", Nat. Commun. 2025; harness at github.com/NeuroBench/neurobench) defines
static metrics of a model and workload metrics of a run.  Their definitions, and how each maps
onto an integer :class:`~hw_models.network.CoreNetwork`:

``ParameterCount``
    NeuroBench: the number of the model's parameters (every ``torch`` parameter: the weights
    and biases of its Linear/Conv layers; pooling has none).  Here: the weight entries of the
    ``dense`` and ``conv`` projections (a conv kernel counted once, as the shared kernel it
    is) plus the biases — one per channel when a (H, W, C) population's bias is the same at
    every position (a converted conv bias), else one per neuron.  Pooling and identity
    projections have no parameters in NeuroBench's models and are not counted.
``Footprint``
    NeuroBench: bytes to represent the model — parameters and buffers at their precision, zero
    weights included.  Here: every stored integer at the width its values need (the smallest
    two's-complement width holding the array's range, so a 4-bit network counts 4 bits per
    weight): the ParameterCount entries, the per-channel weights of pooling and identity
    projections, and one threshold per population; ``ceil(bits / 8)`` bytes in total.
``ConnectionSparsity``
    NeuroBench: the fraction of **zero** weights in the Linear/Conv layers (0 = dense).
    Here: zero entries over all entries of the ``dense`` and ``conv`` weight arrays.
``ActivationSparsity``
    NeuroBench: ``Σ zero activations / Σ activations`` over every neuron layer, time step and
    sample (0 = every neuron active at every step, 1 = silent).  Here: ``1 − spikes /
    (neurons · T · samples)`` over the spiking populations (a non-spiking read-out integrates
    without a binary activation and is left out, as is the input).
``SynapticOperations``
    NeuroBench: per sample, the synaptic operations of the Linear/Conv layers, found by a
    forward pass with binarised inputs and weights (``Effective_*``: only non-zero activations
    through non-zero weights; an operation on a non-binary activation is a MAC, on a spike an
    AC) and with all-ones inputs and weights (``Dense``: what hardware without sparsity
    does).  Here, per sample:

    * ``Effective_ACs`` = Σ over ``dense``/``conv`` projections from spiking populations of
      Σ_j spikes_j · (non-zero-weight synapses out of j).  The engine's counted synaptic events
      (``synaptic_events``) are the same deliveries counted by geometry, zero weights
      included, on every projection kind; the two agree when no weight is zero, no pooling or
      identity projection carries events, and every spike is delivered within the run
      (delay 0; with delay d the spikes of the last d steps are counted here but not
      delivered).
    * ``Effective_MACs`` = Σ_j [x_j ≠ 0] · (non-zero-weight synapses out of j) over the
      ``dense``/``conv`` projections of an **analog** input: the first layer's
      multiply-accumulates of non-zero pixels, counted once per sample because the chip takes
      them as a constant current computed once off-chip (DESIGN.md; ``input_macs`` counts the
      same MACs by geometry).  A framework that recomputes the first layer every step would
      count T times as many.
    * ``Dense`` = T · Σ over ``dense``/``conv`` projections of all synapses (zero weights
      included, borders and strides respected): every neuron's activation through every
      connection at every step.

Everything here is exact integer counting on the network and the run's per-neuron spike counts.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .errors import DataError
from .network import CoreNetwork, Projection

__all__ = [
    "NEUROBENCH_NAMES",
    "fanout",
    "neurobench_metrics",
    "signed_bits",
    "static_metrics",
]

#: the metric names, in report order
NEUROBENCH_NAMES = ("Footprint", "ParameterCount", "ConnectionSparsity", "ActivationSparsity",
                    "SynapticOperations")
_CONNECTION_KINDS = ("dense", "conv")


def signed_bits(a: np.ndarray) -> int:
    """Smallest two's-complement width holding every value of ``a`` (1 for all zeros)."""
    a = np.asarray(a)
    if a.size == 0:
        return 0
    lo, hi = int(a.min()), int(a.max())
    need = max(hi.bit_length() if hi > 0 else 0, (-lo - 1).bit_length() if lo < 0 else 0)
    return need + 1


def _bias_count(p) -> int:
    if p.bias is None:
        return 0
    if len(p.shape) == 3:
        b = p.bias.reshape(-1, p.shape[2])
        if np.all(b == b[:1]):
            return int(p.shape[2])
    return int(p.bias.size)


def fanout(pr: Projection, source_shape: tuple, target_shape: tuple,
           nonzero: bool = True) -> np.ndarray:
    """Synapses out of each source neuron of a ``dense`` or ``conv`` projection (int64, one per
    source neuron in flat C order): only those with a non-zero weight (``nonzero``) or all of
    them (zero weights included), borders, strides, padding and dilation respected."""
    w = pr.weights
    if pr.kind == "dense":
        return (np.count_nonzero(w, axis=1) if nonzero
                else np.full(w.shape[0], w.shape[1])).astype(np.int64)
    if pr.kind != "conv":
        raise DataError(f"projection {pr.name!r}: fan-out is defined here for dense and conv "
                        f"projections, not {pr.kind!r}")
    h, wd, c = source_shape
    oh, ow, _ = target_shape
    kh, kw = pr.kernel
    (sy, sx), (pt, _, pl, _), (dy, dx) = pr.stride, pr.padding, pr.dilation
    # grouped convolution (weights (kh, kw, c / groups, c_out)): source channel c reaches the
    # c_out / groups outputs of its own group only
    g = int(getattr(pr, "groups", 1) or 1)
    cpg, opg = w.shape[2], w.shape[3] // g
    if nonzero:
        nzc = np.count_nonzero(w.reshape(kh, kw, cpg, g, opg), axis=4)     # (kh, kw, cpg, g)
        per_tap = nzc.transpose(0, 1, 3, 2).reshape(kh, kw, cpg * g)
    else:
        per_tap = np.full((kh, kw, cpg * g), opg)
    per_tap = per_tap.astype(np.int64)                                     # (kh, kw, c)
    if per_tap.shape[2] != c:
        raise DataError(f"projection {pr.name!r}: weights {w.shape} with groups={g} do not "
                        f"match {c} source channels")

    def reach(n_in, n_out, k, s, p, d):
        # hit[k, i] = 1 when input i is tap k of some output position
        hit = np.zeros((k, n_in), np.int64)
        o = np.arange(n_out)
        for kk in range(k):
            i = o * s - p + kk * d
            i = i[(i >= 0) & (i < n_in)]
            hit[kk, i] = 1
        return hit

    ry = reach(h, oh, kh, sy, pt, dy)       # (kh, h)
    rx = reach(wd, ow, kw, sx, pl, dx)      # (kw, w)
    out = np.einsum("ay,bx,abc->yxc", ry, rx, per_tap)
    return out.reshape(-1).astype(np.int64)


def static_metrics(net: CoreNetwork) -> dict:
    """``ParameterCount``, ``Footprint`` (bytes) and ``ConnectionSparsity`` of ``net``."""
    params = zeros = conn = bits = 0
    for pr in net.projections:
        w = pr.weights
        bits += w.size * signed_bits(w)
        if pr.kind in _CONNECTION_KINDS:
            params += w.size
            conn += w.size
            zeros += w.size - int(np.count_nonzero(w))
    for p in net.populations:
        if p.is_input:
            continue
        nb = _bias_count(p)
        params += nb
        if nb:
            bits += nb * signed_bits(p.bias)
        bits += signed_bits(np.asarray([p.threshold]))
    return {"ParameterCount": int(params), "Footprint": (bits + 7) // 8,
            "ConnectionSparsity": float(zeros / conn) if conn else 0.0}


def neurobench_metrics(net: CoreNetwork, spike_counts: Mapping[str, np.ndarray], steps: int,
                       samples: int, input_nonzero: np.ndarray | None = None) -> dict:
    """Every NeuroBench metric of a run (see the module docstring for the definitions).

    ``spike_counts``: per population, the spikes of each neuron — (samples, n) or already
    summed (n,).  ``input_nonzero``: for an analog input, how many samples have each input
    value non-zero (n_in,), for ``Effective_MACs`` (None: 0 MACs are reported and the key
    ``Effective_MACs`` is None when the input is analog).
    ``SynapticOperations`` values are per sample.
    """
    if samples < 1 or steps < 1:
        raise DataError(f"steps and samples must be >= 1, got {steps}, {samples}")
    by = {p.name: p for p in net.populations}
    tot = {}
    for name, c in spike_counts.items():
        c = np.asarray(c, np.int64)
        tot[name] = c.sum(axis=0) if c.ndim == 2 else c.reshape(-1)
        if name in by and tot[name].size != by[name].size:
            raise DataError(f"spike counts of population {name!r} have {tot[name].size} "
                            f"entries per sample, the population has {by[name].size} neurons")
    act = neurons = 0
    for p in net.populations:
        if p.is_input or not p.spiking:
            continue
        if p.name not in tot:
            raise DataError(f"spike counts of population {p.name!r} are missing")
        act += int(tot[p.name].sum())
        neurons += p.size
    analog = net.input.encoding == "analog"
    macs = 0 if (input_nonzero is not None or not analog) else None
    acs = dense = 0
    for pr in net.projections:
        if pr.kind not in _CONNECTION_KINDS:
            continue
        src, tgt = by[pr.source], by[pr.target]
        dense += steps * samples * int(fanout(pr, src.shape, tgt.shape, nonzero=False).sum())
        nz = fanout(pr, src.shape, tgt.shape, nonzero=True)
        if src.is_input and analog:
            if input_nonzero is not None:
                x = np.asarray(input_nonzero, np.int64).reshape(-1)
                if x.size != src.size:
                    raise DataError(f"input_nonzero has {x.size} entries for an input of "
                                    f"{src.size}")
                macs += int(x @ nz)
        else:
            if src.name not in tot:
                raise DataError(f"spike counts of population {src.name!r} are missing")
            acs += int(np.asarray(tot[src.name]).reshape(-1) @ nz)
    total = steps * samples * neurons
    out = static_metrics(net)
    out["ActivationSparsity"] = float(1.0 - act / total) if total else 0.0
    out["SynapticOperations"] = {
        "Effective_MACs": None if macs is None else macs / samples,
        "Effective_ACs": acs / samples,
        "Dense": dense / samples}
    return out


def format_metrics(m: dict) -> list:
    """Readable lines for a report."""
    s = m["SynapticOperations"]
    macs = "n/a" if s["Effective_MACs"] is None else f"{s['Effective_MACs']:,.0f}"
    return [(f"NeuroBench: Footprint {m['Footprint']:,} B, ParameterCount "
             f"{m['ParameterCount']:,}, ConnectionSparsity {m['ConnectionSparsity']:.3f}, "
             f"ActivationSparsity {m['ActivationSparsity']:.4f}"),
            (f"  SynapticOperations per sample: Effective_ACs {s['Effective_ACs']:,.0f}, "
             f"Effective_MACs {macs}, Dense {s['Dense']:,.0f}")]
