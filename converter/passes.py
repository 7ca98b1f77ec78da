"""Graph → graph passes run before conversion: BatchNorm folding, max-pool/ReLU ordering, MACs.

Every pass returns a **new** :class:`~converter.graph.Graph`; the input graph is never changed.
Layers a pass does not touch are shallow copies that share their (read-only by convention)
weight arrays with the original, so a pass over a 138 M-weight VGG-16 costs no extra memory.

BatchNorm folding (Wu et al., "ECC", the CMB step; Rueckauer et al. 2017, Sec. 2.2)
---------------------------------------------------------------------------------
With the layer's **own** ε, ``s = γ / √(σ² + ε)`` and ``t = β − μ·s`` (so ``BN(x) = x·s + t``):

* *backward* (the usual case, BN right after a conv/dense whose only consumer it is):
  ``W′ = W·s`` per output channel, ``b′ = (b − μ)·s + β``.
* *forward* (BN whose input is not a foldable linear layer, e.g. ``relu → BN → conv``): the affine
  map is folded into the single following linear layer, ``W′[…, c, o] = W[…, c, o]·s[c]``,
  ``b′ = b + Σ W[…, c, o]·t[c]`` for a dense layer (directly or after a flatten) or an unpadded
  convolution.  Into a **padded** convolution the padded zeros are not shifted by ``t``, so the
  shift's contribution differs at the borders: ``b′`` is then one value per output neuron
  (Ho, Wo, cout), the zero-padded convolution of the constant map ``t`` — exact, and what an
  in-graph input normalisation (``(x − mean)/std`` before a padded first conv) needs.  (Grouped
  kernels take ``s``/``t`` of each entry's own input channel.)

Any other BN (no linear neighbour, e.g. ``relu → BN → relu`` in a pre-activation DenseNet, or
a conv with several consumers) is kept: it is an affine map of its own, which
:func:`converter.convert.convert` composes exactly into the linear terms around it (a spiking
input becomes identity terms scaled by ``s`` with bias ``t``).
"""

from __future__ import annotations

import numpy as np

from hw_models.errors import ConversionError
from .graph import Graph, Layer, conv2d, kernel_in_channels, pair

__all__ = ["fold_batchnorm", "relu_before_maxpool", "count_macs", "bn_affine", "prepare",
           "shift_through_conv"]


def _shallow(layer: Layer, **changes) -> Layer:
    """A new Layer sharing weight arrays (a pass that changes weights passes new arrays)."""
    new = Layer(layer.name, layer.kind, list(layer.inputs), dict(layer.params),
                dict(layer.weights), tuple(layer.shape))
    for k, v in changes.items():
        setattr(new, k, v)
    return new


def bn_affine(bn: Layer) -> tuple[np.ndarray, np.ndarray]:
    """``(s, t)`` with ``BN(x) = x·s + t``, using the layer's own epsilon."""
    w = bn.weights
    eps = float(bn.params["epsilon"])
    denom = w["var"] + eps
    if np.any(denom <= 0):
        raise ConversionError(f"batchnorm {bn.name!r}: var + epsilon must be > 0 "
                              f"(epsilon {eps}, min var {float(w['var'].min())})")
    s = w["gamma"] / np.sqrt(denom)
    return s, w["beta"] - w["mean"] * s


def shift_through_conv(t, in_shape: tuple, kernel: np.ndarray, strides=(1, 1),
                       padding=(0, 0, 0, 0), dilation=(1, 1), groups: int = 1) -> np.ndarray:
    """What a constant shift ``t`` of a conv's input adds to its pre-activation.

    ``t`` is one value per input channel (or anything broadcastable to ``in_shape`` = (H, W, C)).
    Unpadded, with per-channel ``t``: one value per output channel, ``Σ W[…, c, o]·t[c]``.
    Padded: the zero padding is not shifted, so the shift contributes only at the kernel taps
    inside the image — one exact value per output neuron (Ho, Wo, cout), the zero-padded
    convolution of the constant map ``t``.  Used for a BN before a conv (:func:`fold_batchnorm`),
    a bias composed through a conv and the input spec's offset (``converter.convert``).
    """
    t = np.asarray(t, np.float64)
    if t.ndim <= 1 and not any(padding):
        ch = kernel_in_channels(kernel.shape, groups)  # (cin/G, cout)
        return np.einsum("abco,co->o", kernel, np.broadcast_to(t, (int(in_shape[-1]),))[ch])
    const = np.broadcast_to(t, tuple(in_shape))[None]
    return conv2d(const, kernel, None, pair(strides), tuple(padding), pair(dilation), groups)[0]


def _rewire(layers: list, old: str, new: str) -> None:
    for l in layers:
        if old in l.inputs:
            l.inputs = [new if i == old else i for i in l.inputs]


def fold_batchnorm(graph: Graph) -> Graph:
    """Fold every ``batchnorm`` into a neighbouring conv/dense (see the module docstring).

    Returns a new graph without batchnorm layers whose float forward pass equals the original
    up to float64 rounding.
    """
    layers = [_shallow(l) for l in graph]
    out_name = graph.output_name
    kept = set()
    while True:
        by = {l.name: l for l in layers}
        bn = next((l for l in layers if l.kind == "batchnorm" and l.name not in kept), None)
        if bn is None:
            break
        s, t = bn_affine(bn)
        src = by[bn.inputs[0]]
        src_consumers = [l.name for l in layers if src.name in l.inputs]
        if src.kind in ("conv2d", "dense") and src_consumers == [bn.name]:
            k = src.weights["kernel"] * s  # broadcast over the last (output) axis
            b = src.weights.get("bias")
            b = np.zeros(k.shape[-1]) if b is None else b
            src.weights = dict(src.weights, kernel=k, bias=(b - bn.weights["mean"]) * s
                               + bn.weights["beta"])
        elif not _fold_forward(bn, s, t, layers, by):
            kept.add(bn.name)  # an affine map of its own (convert composes it exactly)
            continue
        layers = [l for l in layers if l.name != bn.name]
        _rewire(layers, bn.name, bn.inputs[0])
        if out_name == bn.name:
            out_name = bn.inputs[0]
    return graph.replace(layers, output_name=out_name)


def _fold_forward(bn: Layer, s: np.ndarray, t: np.ndarray, layers: list, by: dict) -> bool:
    """Fold ``bn`` into the single linear layer after it; False when there is none."""
    cons = [l for l in layers if bn.name in l.inputs]
    if len(cons) != 1:
        return False
    nxt = cons[0]
    chan = None
    if nxt.kind == "flatten":
        after = [l for l in layers if nxt.name in l.inputs]
        if len(after) == 1 and after[0].kind == "dense":
            c = bn.shape[-1]
            chan = np.arange(int(np.prod(bn.shape))) % c
            nxt = after[0]
    if nxt.kind == "dense":
        k = nxt.weights["kernel"]
        sc = s if chan is None else s[chan]
        tc = t if chan is None else t[chan]
        b = nxt.weights.get("bias")
        b = np.zeros(k.shape[1]) if b is None else b
        nxt.weights = dict(nxt.weights, kernel=k * sc[:, None], bias=b + tc @ k)
        return True
    if nxt.kind == "conv2d":
        k = nxt.weights["kernel"]
        b = nxt.weights.get("bias")
        b = np.zeros(k.shape[3]) if b is None else b
        groups = int(nxt.params.get("groups", 1))
        ch = kernel_in_channels(k.shape, groups)  # (cin/G, cout)
        p = nxt.params
        # a padded conv: one exact value per output neuron (the padded zeros are not shifted)
        shift = shift_through_conv(t, bn.shape, k, p.get("strides", 1),
                                   tuple(p.get("padding", (0, 0, 0, 0))),
                                   p.get("dilation", 1), groups)
        nxt.weights = dict(nxt.weights, kernel=k * s[ch][None, None], bias=b + shift)
        return True
    return False


def relu_before_maxpool(graph: Graph) -> Graph:
    """Rewrite ``z → maxpool → relu`` as ``z → relu → maxpool`` (exact: max and ReLU commute).

    Spiking max-pool gates pool spike trains, i.e. ReLU outputs; this puts every maxpool after
    its ReLU.  Layer names are kept (the ReLU keeps its name, placed before the pool).
    """
    layers = [_shallow(l) for l in graph]
    out = graph.output_name
    changed = True
    while changed:
        changed = False
        by = {l.name: l for l in layers}
        for i, m in enumerate(layers):
            if m.kind != "maxpool" or by[m.inputs[0]].kind in ("relu", "maxpool", "input"):
                continue
            cons = [l for l in layers if m.name in l.inputs]
            if len(cons) != 1 or cons[0].kind != "relu" or m.name == graph.output_name:
                continue
            r = cons[0]
            src = m.inputs[0]
            new_r = _shallow(r, inputs=[src])
            new_m = _shallow(m, inputs=[r.name])
            rest = [l for l in layers if l.name not in (m.name, r.name)]
            _rewire(rest, r.name, m.name)
            if out == r.name:
                out = m.name
            j = [l.name for l in layers].index(m.name)
            before = [l for l in layers[:j] if l.name not in (m.name, r.name)]
            after = [l for l in layers[j:] if l.name not in (m.name, r.name)]
            layers = before + [new_r, new_m] + after
            changed = True
            break
    return graph.replace(layers, output_name=out)


def prepare(graph: Graph) -> Graph:
    """The standard pre-conversion passes: BN folding, then ReLU before max-pool."""
    return relu_before_maxpool(fold_batchnorm(graph))


def count_macs(graph: Graph) -> dict:
    """Multiply-accumulates of one float forward pass, per layer and ``"total"``.

    conv2d: ``Ho·Wo·Cout·kh·kw·Cin/groups``; dense: ``nin·nout``; BN (if unfolded): one per element.
    Pooling, adds and ReLUs are not counted (they are not MACs), as in the conversion papers.
    """
    out = {}
    for l in graph:
        if l.kind == "conv2d":
            kh, kw, ci, co = l.weights["kernel"].shape
            out[l.name] = int(l.shape[0] * l.shape[1] * co * kh * kw * ci)
        elif l.kind == "dense":
            out[l.name] = int(l.weights["kernel"].size)
        elif l.kind == "batchnorm":
            out[l.name] = int(np.prod(l.shape))
    out["total"] = int(sum(out.values()))
    return out
