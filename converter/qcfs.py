"""QCFS-trained networks (Bu et al., ICLR 2022): import of the activation and its exact rule.

Bu, Fang, Ding, Dai, Yu, Huang, "Optimal ANN-SNN conversion for high-accuracy and low-latency
spiking neural networks", ICLR 2022, train the ANN with the quantisation-clip-floor-shift
activation

    h(x) = λ · clip(⌊x · L/λ + ½⌋ / L, 0, 1)          (L levels, trainable λ per layer)

and convert it to IF neurons with threshold θ = λ, reset by subtraction and initial membrane
potential v(0) = θ/2.  In the graph IR it is a ``relu`` layer with params ``max_value`` = λ and
``levels`` = L (:func:`converter.graph.apply_layer` computes it: the graph's float reference
*is* the quantised ANN).  :func:`converter.convert.convert` gives such a population the scale
λ from the model (no calibration) and ``v_init = ⌊θ/2⌋`` (``⌊θ/2⌋ + 1`` under the rule v > θ).

Why ⌊θ/2⌋ is exact: an IF neuron with integer threshold θ, reset by subtraction and a constant
integer input Z per step emits after T steps ``n = clip(⌊(T·Z + v0)/θ⌋, 0, T)`` spikes
(at most one per step); with v0 = ⌊θ/2⌋ this is ``⌊T·Z/θ + ½⌋`` for odd θ too, because no
multiple of θ lies in the half-open interval (T·Z + (θ−1)/2, T·Z + θ/2].  So a layer driven by
a constant current — the analog first layer — reproduces the QCFS activation exactly at
T = L (spike count / T · λ = h), and the non-spiking read-out integrates the exact logits.
Deeper layers receive spike trains whose per-step current is not constant; Bu et al. show the
expected error is zero, not every sample's (their "unevenness error"), so there the SNN equals
the quantised ANN only approximately — the benchmark measures how closely.

Keras 3 pattern: the same chain of ``keras.ops`` operations (``ops.multiply``/``ops.divide`` by
a constant, ``ops.add(·, 0.5)``, ``ops.floor``, ``ops.clip(·, 0, hi)``, ``ops.multiply``) applied
to symbolic tensors in a functional model, which a ``.keras`` file stores as
``keras.src.ops.numpy`` entries with their constants (:func:`find_keras_qcfs`).

ONNX pattern (what ``torch.onnx.export`` makes of the expression above, and the spellings
around it)::

    x ─ Mul(a) | Div(1/a) ─ Add(½) ─ Floor ─ [Mul|Div by scalars] ─ Clip(0, hi) ─ Mul|Div(s) ─▶

with scalar constants; it computes ``s · clip(k · ⌊a·x + ½⌋, 0, hi)``, which is QCFS with
``L = hi/k`` (an integer), ``λ = s·hi`` and ``a = L/λ``.  Anything close but different (another
shift, a non-integer L, a slope that does not match λ) is refused with a message that says
which number is off, never imported as something else.
"""

from __future__ import annotations

import numpy as np

from hw_models.errors import ConversionError, UnsupportedLayerError

__all__ = ["check_qcfs", "find_keras_qcfs", "find_onnx_qcfs", "qcfs_v_init"]

_RTOL = 1e-5


def check_qcfs(lam, levels, where: str) -> dict:
    """Validated ``{"max_value": λ, "levels": L}`` for a QCFS ``relu`` layer."""
    if lam is None or not np.isfinite(float(lam)) or float(lam) <= 0:
        raise ConversionError(f"{where}: a QCFS activation needs a positive finite λ "
                              f"(max_value), got {lam!r}")
    if isinstance(levels, bool) or int(levels) != levels or int(levels) < 1:
        raise ConversionError(f"{where}: QCFS levels L must be a positive integer, got "
                              f"{levels!r}")
    return {"max_value": float(lam), "levels": int(levels)}


def qcfs_v_init(theta: int, spike_rule: str) -> int:
    """Initial voltage θ/2 of Bu et al. in integers: ⌊θ/2⌋ for v ≥ θ, ⌊θ/2⌋ + 1 for v > θ
    (then v − 1 follows the v ≥ θ neuron exactly)."""
    return theta // 2 + (1 if spike_rule == ">" else 0)


# ---- ONNX ---------------------------------------------------------------------------------
def _scalar(consts: dict, name: str):
    c = consts.get(name)
    if c is None:
        return None
    c = np.asarray(c, np.float64)
    return float(c.reshape(-1)[0]) if c.size == 1 else None


def _const_table(graph, numpy_helper, onnx) -> dict:
    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for n in graph.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    consts[n.output[0]] = numpy_helper.to_array(
                        onnx.helper.get_attribute_value(a))
    return consts


def _scale_of(node, consts, tensor):
    """The scalar factor of a Mul/Div node applied to ``tensor`` (Div → 1/c), or None."""
    if node.op_type not in ("Mul", "Div") or len(node.input) != 2:
        return None
    a, b = node.input
    if node.op_type == "Mul":
        other = b if a == tensor else (a if b == tensor else None)
        c = _scalar(consts, other) if other is not None else None
        return c
    if a != tensor:
        return None
    c = _scalar(consts, b)
    return None if c in (None, 0.0) else 1.0 / c


def find_onnx_qcfs(graph, numpy_helper, onnx, opset: int) -> dict:
    """Find every QCFS chain in an ONNX graph.

    Returns ``{index of the chain's first node: (input tensor, output tensor, λ, L, indices of
    all chain nodes)}``; the importer emits one QCFS ``relu`` at the first index and skips the
    others.
    """
    nodes = list(graph.node)
    consts = _const_table(graph, numpy_helper, onnx)
    producer = {o: i for i, n in enumerate(nodes) for o in n.output}
    users: dict[str, list] = {}
    for i, n in enumerate(nodes):
        for t in n.input:
            users.setdefault(t, []).append(i)
    for o in graph.output:
        users.setdefault(o.name, []).append(-1)
    found = {}
    for fi, floor in enumerate(nodes):
        if floor.op_type != "Floor":
            continue
        where = f"ONNX node {floor.name or floor.output[0]!r} (Floor)"
        # backwards: Add(½) ← Mul(a) | Div
        ai = producer.get(floor.input[0])
        if ai is None or nodes[ai].op_type != "Add":
            continue
        add = nodes[ai]
        ins = list(add.input)
        shift = [(_scalar(consts, t), o) for t, o in ((ins[0], ins[1]), (ins[1], ins[0]))]
        shift = [(c, o) for c, o in shift if c is not None]
        if not shift:
            continue
        half, t_mul = shift[0]
        mi = producer.get(t_mul)
        if mi is None:
            continue
        x_in = next((t for t in nodes[mi].input if _scalar(consts, t) is None), None)
        a = _scale_of(nodes[mi], consts, x_in) if x_in is not None else None
        if a is None:
            continue
        # forwards: scalar Mul/Div, one Clip(0, hi), a final scalar Mul/Div
        chain, k, hi, s, t, ok = [mi, ai, fi], 1.0, None, 1.0, floor.output[0], True
        while True:
            us = users.get(t, [])
            if len(us) != 1 or us[0] < 0:
                break
            ni = us[0]
            n = nodes[ni]
            if n.op_type == "Clip" and hi is None:
                if opset < 11:
                    at = {x.name: onnx.helper.get_attribute_value(x) for x in n.attribute}
                    lo_v, hi_v = at.get("min"), at.get("max")
                else:
                    lo_v = _scalar(consts, n.input[1]) if len(n.input) > 1 and n.input[1] else None
                    hi_v = _scalar(consts, n.input[2]) if len(n.input) > 2 and n.input[2] else None
                if lo_v is None or float(lo_v) != 0.0 or hi_v is None:
                    ok = False
                    break
                hi = float(hi_v)
            else:
                f = _scale_of(n, consts, t)
                if f is None:
                    break
                if hi is None:
                    k *= f
                else:
                    s *= f
            chain.append(ni)
            t = n.output[0]
        if not ok or hi is None:
            continue  # a Floor that is not a QCFS activation: the importer reports it
        lam, levels = _resolve(half, a, k, hi, s, where)
        found[mi] = (x_in, t, lam, levels, chain)
    return found


def _resolve(half, a, k, hi, s, where) -> tuple:
    """(λ, L) of ``s · clip(k · ⌊a·x + half⌋, 0, hi)``, or an UnsupportedLayerError saying
    which number keeps it from being QCFS."""
    if abs(half - 0.5) > 1e-12:
        raise UnsupportedLayerError(f"{where}: a clip-floor activation with shift {half}; "
                                    f"only the QCFS shift ½ (Bu et al. 2022) is supported")
    levels = hi / k if k else float("inf")
    if k <= 0 or s <= 0 or not np.isfinite(levels) \
            or abs(levels - round(levels)) > _RTOL * max(1.0, levels):
        raise UnsupportedLayerError(f"{where}: clip-floor activation with {hi}/{k} = "
                                    f"{levels} levels and output scale {s}; QCFS needs a "
                                    f"positive integer L and a positive scale")
    levels = int(round(levels))
    lam = s * hi
    if abs(a * lam / levels - 1.0) > _RTOL:
        raise UnsupportedLayerError(f"{where}: input slope {a} does not match L/λ = "
                                    f"{levels}/{lam} = {levels / lam}: not a QCFS "
                                    f"activation (its step is not λ/L)")
    return lam, levels


# ---- Keras 3 ------------------------------------------------------------------------------
def _op_scalar(cfg):
    """The one numeric constant argument of a Keras 3 operation (``cfg["__op__"]``)."""
    op = cfg.get("__op__") or {}
    nums = [v for v in op.get("args", []) if isinstance(v, (int, float)) and
            not isinstance(v, bool)]
    return float(nums[0]) if len(nums) == 1 else None


def _op_factor(cls, cfg):
    """The scalar factor of a Keras 3 ``Multiply``/``Divide``/``TrueDivide`` operation by a
    constant (division: 1/c, only as tensor ÷ constant), or None."""
    c = _op_scalar(cfg)
    if c is None:
        return None
    if cls == "Multiply":
        return c
    if cls in ("Divide", "TrueDivide") and cfg["__op__"].get("tensor_first") and c != 0:
        return 1.0 / c
    return None


def find_keras_qcfs(layers: list) -> dict:
    """QCFS chains among Keras 3 operations (``keras.ops`` applied to symbolic tensors in a
    functional model, saved as ``keras.src.ops.numpy`` entries)::

        x ─ Multiply(a) | Divide(1/a) ─ Add(½) ─ Floor ─ [Multiply|Divide] ─ Clip(0, hi)
          ─ Multiply|Divide(s) ─▶

    ``layers`` is the importer's ``[(class, cfg, inbound)]`` list, operations marked by
    ``cfg["__op__"]`` (their constant arguments).  Returns ``{index of the chain's first
    entry: (input layer name, output layer name, λ, L, indices of the chain)}``."""
    name_of = [cfg.get("name") for _, cfg, _ in layers]
    idx = {n: i for i, n in enumerate(name_of)}
    users: dict = {}
    for i, (_, _, inbound) in enumerate(layers):
        for r in inbound:
            users.setdefault(r[0], []).append(i)
    is_op = [("__op__" in cfg) for _, cfg, _ in layers]

    def src(i):
        inb = layers[i][2]
        return inb[0][0] if len(inb) == 1 else None

    found = {}
    for fi, (cls, cfg, _) in enumerate(layers):
        if cls != "Floor" or not is_op[fi]:
            continue
        where = f"Keras operation {cfg.get('name')!r} (Floor)"
        ai = idx.get(src(fi))
        if ai is None or not is_op[ai] or layers[ai][0] != "Add":
            continue
        half = _op_scalar(layers[ai][1])
        mi = idx.get(src(ai))
        if half is None or mi is None or not is_op[mi]:
            continue
        a = _op_factor(layers[mi][0], layers[mi][1])
        x_in = src(mi)
        if a is None or x_in is None:
            continue
        chain, k, hi, s, t, ok = [mi, ai, fi], 1.0, None, 1.0, name_of[fi], True
        while True:
            us = users.get(t, [])
            if len(us) != 1 or not is_op[us[0]]:
                break
            ni = us[0]
            ncls, ncfg = layers[ni][0], layers[ni][1]
            if ncls == "Clip" and hi is None:
                lo_v, hi_v = ncfg.get("x_min"), ncfg.get("x_max")
                if lo_v is None or float(lo_v) != 0.0 or hi_v is None:
                    ok = False
                    break
                hi = float(hi_v)
            else:
                f = _op_factor(ncls, ncfg)
                if f is None:
                    break
                if hi is None:
                    k *= f
                else:
                    s *= f
            chain.append(ni)
            t = name_of[ni]
        if not ok or hi is None:
            continue
        lam, levels = _resolve(half, a, k, hi, s, where)
        found[mi] = (x_in, t, lam, levels, chain)
    return found
