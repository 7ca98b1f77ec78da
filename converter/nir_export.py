"""A :class:`~hw_models.network.CoreNetwork` → a NIR graph (https://neuroir.org, ``nir`` 1.0).

``network_to_nir(net)`` returns a ``nir.NIRGraph``; ``export_nir(net, path)`` writes it with
``nir.write``.  :func:`converter.nir_import.network_from_nir` reads it back into the same
network, bit for bit (weights, dtypes, thresholds, biases, every neuron parameter, delays,
geometry, core assignment, placement, read-out and ``meta``).

What each part becomes (NIR tensors are channels-first, so a population (H, W, C) is a NIR
tensor (C, H, W), and a vector population (n,) stays (n,)):

============================  =================================================================
neuroemu                      NIR
============================  =================================================================
input population              ``Input`` (C, H, W) or (n,); an analog input is the graded
                              current NIR's ``Input`` already means; rate/Bernoulli/event
                              encodings in metadata
spiking population            ``IF``: ``r`` = 1, ``v_threshold`` = θ, ``v_reset`` = 0 (integers)
non-spiking population        ``I`` (integrator), ``r`` = 1
``conv`` projection           ``Conv2d`` (weight O, I/groups, kh, kw = w · 2^e as integers;
                              stride, symmetric padding, dilation, groups; bias per channel)
``dense`` projection          ``Affine`` (weight (out, in) = (w · 2^e)ᵀ, columns in the NIR
                              flattening order (C, H, W); bias per neuron), after a ``Flatten``
                              when the source is a map
``avgpool`` projection        ``SumPool2d``, followed by a ``Scale`` of w[c] when w ≠ 1
``maxpool`` projection        ``SumPool2d`` (+ ``Scale``) marked as the spiking max-pool gate in
                              metadata: NIR has no max-pool, a reader that ignores the mark
                              sums the window
``identity`` projection       ``Scale`` of w[c] per element
several projections into P    several edges into P's node (NIR sums them)
output population             an ``Output`` node after it
============================  =================================================================

What NIR cannot express rides in each node's ``metadata["neuroemu"]`` (a JSON string, so every
NIR reader keeps it verbatim): reset by subtraction (NIR's IF resets to ``v_reset``), the
``>=`` spike rule (NIR fires on ``v > v_threshold``), the weight exponent and the weights'
dtype and bit width, the state range and overflow policy, ``v_init``, delays, asymmetric
details of the geometry, the max-pool gate, the per-neuron bias (also put into the first
incoming ``Affine``/``Conv2d`` bias where that node can hold it: ``bias_in_node``) and the core
of every neuron (``metadata["core"]``, an int32 array).  Graph metadata holds the read-out,
input layout, profile, ``meta`` and placement.

Refused with :class:`~hw_models.errors.ConversionError` naming the population or projection:
leaky populations (``decay_u`` ≠ 4096 or ``decay_v`` ≠ 0: NIR's LIF/CubaLIF are continuous-time
and cannot express the integer decay ``dec(x, δ)``), asymmetric padding (NIR's ``Conv2d`` and
``SumPool2d`` pad symmetrically), non-square conv kernels (nir 1.0's type inference sizes a
``Conv2d`` output from the kernel height alone), grouped convolutions (nir 1.0 takes a
``Conv2d``'s input channels from the per-group weight axis) and a ``dense`` projection into a
map population (NIR 1.0 has no Unflatten).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hw_models.errors import ConversionError
from hw_models.safeio import atomic_path
from hw_models.network import DECAY_ONE, CoreNetwork, _json_default  # one JSON encoder for meta

__all__ = ["NIR_FORMAT_VERSION", "NIR_MARK", "export_nir", "network_to_nir"]

#: graph metadata key naming a graph written by :func:`network_to_nir`
NIR_MARK = "neuroemu_format"
NIR_FORMAT_VERSION = 1


def _nir():
    try:
        import nir
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("NIR export needs the 'nir' package: pip install neuroemu[nir]") \
            from exc
    return nir


def _signed_bits(a: np.ndarray) -> int:
    from hw_models.metrics import signed_bits
    return signed_bits(a)


def _chw(shape: tuple) -> tuple:
    return (shape[2], shape[0], shape[1]) if len(shape) == 3 else tuple(shape)


def _to_chw(a: np.ndarray, shape: tuple) -> np.ndarray:
    """A per-neuron array in HWC flat order → the NIR tensor (C, H, W) (or (n,))."""
    a = np.asarray(a).reshape(shape)
    return np.ascontiguousarray(a.transpose(2, 0, 1)) if len(shape) == 3 else a


def _meta(d: dict, **arrays) -> dict:
    out = {"neuroemu": json.dumps(d, sort_keys=True)}
    out.update({k: np.asarray(v) for k, v in arrays.items() if v is not None})
    return out


def _check(net: CoreNetwork) -> None:
    by = {p.name: p for p in net.populations}
    for p in net.populations:
        if not p.is_input and (p.decay_u != DECAY_ONE or p.decay_v != 0):
            raise ConversionError(
                f"NIR export: population {p.name!r} is leaky (decay_u={p.decay_u}, "
                f"decay_v={p.decay_v}); NIR carries integrate-and-fire populations only "
                f"(decay_u={DECAY_ONE}, decay_v=0): its LIF/CubaLIF nodes are continuous-time "
                f"and cannot express the integer decay dec(x, δ)")
    for pr in net.projections:
        if pr.kind in ("conv", "avgpool", "maxpool"):
            t, b, l, r = pr.padding
            if t != b or l != r:
                raise ConversionError(
                    f"NIR export: projection {pr.name!r} ({pr.kind}) has asymmetric padding "
                    f"(top, bottom, left, right) = {pr.padding}; NIR's "
                    f"{'Conv2d' if pr.kind == 'conv' else 'SumPool2d'} pads symmetrically")
        if pr.kind == "conv" and pr.kernel[0] != pr.kernel[1]:
            raise ConversionError(
                f"NIR export: projection {pr.name!r} has a non-square kernel {pr.kernel}; "
                f"nir 1.0's type inference sizes a Conv2d output from the kernel height alone, "
                f"so the graph would not type-check (nor read back)")
        if pr.kind == "conv" and pr.groups != 1:
            raise ConversionError(
                f"NIR export: projection {pr.name!r} is a grouped convolution (groups="
                f"{pr.groups}); nir 1.0's type inference takes a Conv2d's input channels from "
                f"weight.shape[1] (the channels per group), so the graph would not type-check")
        if pr.kind == "dense" and len(by[pr.target].shape) != 1:
            raise ConversionError(
                f"NIR export: dense projection {pr.name!r} feeds the map population "
                f"{pr.target!r} {by[pr.target].shape}; NIR 1.0 has no Unflatten to carry it")


def network_to_nir(net: CoreNetwork):
    """The NIR graph of ``net`` (see the module docstring)."""
    nir = _nir()
    net.validate()
    _check(net)
    by = {p.name: p for p in net.populations}
    used = set()
    nodes, edges = {}, []

    def fresh(name):
        # a node name is an HDF5 group name in the file: no "/" (ONNX names have them) or "."
        name = name.replace("/", "_").replace(".", "_") or "node"
        base, k = name, 1
        while name in used:
            name = f"{base}_{k}"
            k += 1
        used.add(name)
        return name

    key = {p.name: fresh(p.name) for p in net.populations}   # population -> node name

    # populations
    for p in net.populations:
        if p.is_input:
            nodes[key[p.name]] = nir.Input(
                {"input": np.array(_chw(p.shape))},
                metadata=_meta({"role": "input", "name": p.name, "shape": list(p.shape),
                                "encoding": p.encoding, "input_max": p.input_max},
                               core=p.core))
            continue
        params = {"role": "population", "name": p.name, "shape": list(p.shape),
                  "threshold": p.threshold, "reset": p.reset, "spike_rule": p.spike_rule,
                  "spiking": p.spiking, "decay_u": p.decay_u, "decay_v": p.decay_v,
                  "v_init": p.v_init, "v_min": p.v_min, "v_max": p.v_max,
                  "overflow": p.overflow, "has_bias": p.bias is not None,
                  "bias_in_node": None,
                  "nir_semantics": "IF fires on v > v_threshold and resets to v_reset; this "
                                   "population fires on v " + p.spike_rule + " threshold and "
                                   + ("subtracts the threshold" if p.reset == "subtract"
                                      else "resets to 0")}
        ones = np.ones(_chw(p.shape), np.int64)
        md = _meta(params, bias=p.bias, core=p.core)
        if p.spiking:
            nodes[key[p.name]] = nir.IF(r=ones, v_threshold=ones * p.threshold,
                                   v_reset=np.zeros_like(ones), metadata=md)
        else:
            nodes[key[p.name]] = nir.I(r=ones, metadata=md)

    # projections
    flat_of = {}
    bias_home = {}
    for i, pr in enumerate(net.projections):
        src, tgt = by[pr.source], by[pr.target]
        w = pr.effective_weights      # int64, w · 2^e
        info = {"role": "projection", "index": i, "name": pr.name, "kind": pr.kind,
                "source": pr.source, "target": pr.target, "exponent": pr.exponent,
                "delay": pr.delay, "kernel": list(pr.kernel), "stride": list(pr.stride),
                "padding": list(pr.padding), "dilation": list(pr.dilation),
                "weight_dtype": str(pr.weights.dtype), "weight_shape": list(pr.weights.shape),
                "weight_bits": _signed_bits(pr.weights),
                "groups": int(getattr(pr, "groups", 1) or 1)}
        name = fresh(pr.name)
        head, tail = key[pr.source], key[pr.target]
        bias = None
        if pr.kind in ("conv", "dense") and tgt.bias is not None and pr.target not in bias_home:
            bias = _node_bias(pr, tgt)
            if bias is not None:
                bias_home[pr.target] = name
        if pr.kind == "conv":
            groups = info["groups"]
            node = nir.Conv2d(input_shape=tuple(src.shape[:2]),
                              weight=np.ascontiguousarray(w.transpose(3, 2, 0, 1)),
                              stride=tuple(pr.stride), padding=(pr.padding[0], pr.padding[2]),
                              dilation=tuple(pr.dilation), groups=groups,
                              bias=bias if bias is not None else
                              np.zeros(tgt.shape[2], np.int64),
                              metadata=_meta(info))
            nodes[name] = node
            edges += [(head, name), (name, tail)]
        elif pr.kind == "dense":
            if len(src.shape) == 3:
                if pr.source not in flat_of:
                    fl = fresh(f"{pr.source}_flatten")
                    nodes[fl] = nir.Flatten({"input": np.array(_chw(src.shape))}, start_dim=0,
                                            metadata=_meta({"role": "flatten",
                                                            "source": pr.source}))
                    edges.append((key[pr.source], fl))
                    flat_of[pr.source] = fl
                head = flat_of[pr.source]
                # rows of w are HWC-ordered sources; NIR flattens (C, H, W)
                h_, w_, c_ = src.shape
                wt = w.reshape(h_, w_, c_, -1).transpose(2, 0, 1, 3).reshape(src.size, -1)
            else:
                wt = w
            nodes[name] = nir.Affine(weight=np.ascontiguousarray(wt.T),
                                     bias=bias if bias is not None else
                                     np.zeros(tgt.size, np.int64), metadata=_meta(info))
            edges += [(head, name), (name, tail)]
        elif pr.kind in ("avgpool", "maxpool"):
            # the max-pool gate's rule ("winner" / "runmax"); None for an average pool
            info["gate"] = getattr(pr, "gate", "winner") if pr.kind == "maxpool" else None
            nodes[name] = nir.SumPool2d(kernel_size=np.array(pr.kernel),
                                        stride=np.array(pr.stride),
                                        padding=np.array([pr.padding[0], pr.padding[2]]),
                                        metadata=_meta(info))
            edges.append((head, name))
            if np.all(w == 1):
                edges.append((name, tail))
            else:
                sc = fresh(f"{name}_scale")
                nodes[sc] = nir.Scale(_per_channel(w, tgt.shape),
                                      metadata=_meta({"role": "scale", "part_of": pr.name}))
                edges += [(name, sc), (sc, tail)]
        else:  # identity
            nodes[name] = nir.Scale(_per_channel(w, tgt.shape), metadata=_meta(info))
            edges += [(head, name), (name, tail)]

    for tname, home in bias_home.items():
        node = nodes[key[tname]]
        md = json.loads(node.metadata["neuroemu"])
        md["bias_in_node"] = home
        node.metadata["neuroemu"] = json.dumps(md, sort_keys=True)
    out = fresh("output")
    nodes[out] = nir.Output({"output": np.array(_chw(by[net.output].shape))})
    edges.append((key[net.output], out))
    gmeta = {NIR_MARK: f"neuroemu.CoreNetwork/{NIR_FORMAT_VERSION}",
             "neuroemu": json.dumps({
                 "output": net.output, "readout": net.readout,
                 "input_layout": net.input_layout, "profile": net.profile,
                 "populations": [p.name for p in net.populations],
                 "projections": [pr.name for pr in net.projections],
                 "projection_nodes": _proj_nodes(nodes),
                 "meta": net.meta}, sort_keys=True, default=_json_default)}
    if net.placement is not None:
        gmeta["placement"] = np.asarray(net.placement, np.int32)
    spec = getattr(net, "input_spec", None)       # the input unit system, where the net has one
    if spec is not None:
        import dataclasses
        gmeta["input_spec"] = json.dumps(dataclasses.asdict(spec), sort_keys=True,
                                         default=_json_default)
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=gmeta)


def _proj_nodes(nodes) -> dict:
    out = {}
    for k, n in nodes.items():
        md = getattr(n, "metadata", {}) or {}
        if "neuroemu" in md:
            d = json.loads(md["neuroemu"])
            if d.get("role") == "projection":
                out[d["name"]] = k
    return out




def _per_channel(w: np.ndarray, shape: tuple) -> np.ndarray:
    """Per-channel weights (C,) broadcast to the NIR tensor of ``shape``."""
    if len(shape) == 3:
        return np.ascontiguousarray(np.broadcast_to(w[:, None, None], _chw(shape)))
    return np.ascontiguousarray(np.broadcast_to(w, shape))


def _node_bias(pr, tgt):
    """The target's per-neuron bias as this node's NIR bias, or None if it cannot hold it."""
    b = tgt.bias
    if pr.kind == "dense":
        return b.astype(np.int64)
    per = b.reshape(-1, tgt.shape[2])
    if np.all(per == per[:1]):
        return per[0].astype(np.int64)
    return None


def export_nir(net: CoreNetwork, path, inputs=()) -> Path:
    """Write ``net`` as a NIR file (``nir.write``, HDF5) at ``path``, atomically and never onto
    one of ``inputs`` (:func:`hw_models.safeio.atomic_path`); returns the path."""
    nir = _nir()
    g = network_to_nir(net)
    path = Path(path)
    with atomic_path(path, inputs, "NIR file") as tmp:
        nir.write(str(tmp), g)
    return path
