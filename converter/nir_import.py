"""NIR graphs → :class:`~converter.graph.Graph` (needs the optional ``nir`` package).

A modest but exact reading of the rate-coded subset of NIR (https://neuroir.org):

* ``Input`` (per-sample shape (C, H, W) or (n,)) and ``Output``;
* ``Conv2d`` (weight (out, in/groups, kh, kw), stride, padding int/pair/"same"/"valid",
  dilation, groups, bias) → ``conv2d`` with an HWIO kernel and the same ``groups``;
* ``Affine`` (weight (out, in), bias) and ``Linear`` (no bias) → ``dense`` (kernel = weight.T);
* ``AvgPool2d`` → ``avgpool`` (padded zeros count, as in PyTorch); ``SumPool2d`` → a ``conv2d``
  with an identity-per-channel kernel (a sum over the window, exactly);
* ``Flatten`` → ``flatten`` of the whole per-sample tensor (a following Affine/Linear fed by a
  flattened (C, H, W) tensor has its weight columns permuted to HWC order);
* ``IF``, ``LIF``, ``CubaLIF``, ``Threshold`` and ``ReLU``-like spiking nodes → ``relu``: in the
  rate-coded view an integrate-and-fire neuron's firing rate approximates ReLU of its input.
  Their thresholds and time constants are ignored (a note is kept in the layer params).

Several edges into one node are summed (NIR semantics) with an ``add`` layer.  Anything else
raises :class:`UnsupportedLayerError` naming the node and its NIR type.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hw_models.errors import (ConversionError, FileFormatError, NeuroemuError,
                              UnsupportedLayerError)
from hw_models.safeio import array_bytes, check_budget, open_h5

from .builder import GraphBuilder
from .graph import Graph

_SPIKING = ("IF", "LIF", "CubaLIF", "Threshold", "ReLU")


def _nir():
    try:
        import nir
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("reading NIR graphs needs the 'nir' package: "
                          "pip install neuroemu[nir]") from exc
    return nir


def _topological(nodes: dict, edges: list, path) -> tuple[list[str], dict]:
    preds = {n: [] for n in nodes}
    for src, dst in edges:
        if src not in nodes or dst not in nodes:
            raise FileFormatError(f"{path}: NIR edge ({src!r}, {dst!r}) names an unknown node")
        preds[dst].append(src)
    order, state = [], {}

    def visit(n):
        if state.get(n) == 1:
            raise UnsupportedLayerError(f"NIR node {n!r} is part of a cycle (recurrent "
                                        f"graphs are not supported)")
        if state.get(n) == 2:
            return
        state[n] = 1
        for p in preds[n]:
            visit(p)
        state[n] = 2
        order.append(n)

    for n in nodes:
        visit(n)
    return order, preds


def graph_from_nir(nir_graph, name: str = "nir", input_scale: float | None = None,
                   path: str = "<NIR graph>") -> Graph:
    """Convert an in-memory ``nir.NIRGraph`` to a :class:`Graph`."""
    nodes = dict(nir_graph.nodes)
    order, preds = _topological(nodes, list(nir_graph.edges), path)
    inputs = [n for n in order if type(nodes[n]).__name__ == "Input"]
    outputs = [n for n in order if type(nodes[n]).__name__ == "Output"]
    if len(inputs) != 1 or len(outputs) != 1:
        raise ConversionError(f"{path}: need exactly one Input and one Output node "
                              f"(found {inputs}, {outputs})")
    shp = tuple(int(v) for v in np.ravel(next(iter(nodes[inputs[0]].input_type.values()))))
    if len(shp) not in (1, 3):
        raise ConversionError(f"{path}: input shape {shp} must be (C, H, W) or (n,)")
    b = GraphBuilder(shp, "CHW" if len(shp) == 3 else "C", name=name)
    where: dict[str, str] = {inputs[0]: b.input(name=inputs[0])}
    chw: dict[str, tuple] = {}
    for n in order:
        if n == inputs[0]:
            continue
        node = nodes[n]
        kind = type(node).__name__
        srcs = [where[p] for p in preds[n]]
        if not srcs:
            raise ConversionError(f"{path}: NIR node {n!r} ({kind}) has no input")
        if len(srcs) > 1:
            if any(s in chw for s in srcs):
                raise UnsupportedLayerError(f"NIR node {n!r} ({kind}): summing flattened "
                                            f"channels-first tensors is not supported")
            srcs = [b.add(*srcs, name=f"{n}_sum")]
        x = srcs[0]
        if kind == "Output":
            where[n] = x
            continue
        if x in chw and kind not in ("Affine", "Linear") + _SPIKING:
            raise UnsupportedLayerError(f"NIR node {n!r} ({kind}) follows a Flatten of a "
                                        f"(C, H, W) tensor; only Affine/Linear may")
        where[n] = _node(b, n, kind, node, x, chw)
    graph_out = where[outputs[0]]
    if graph_out in chw:
        raise ConversionError(f"{path}: the output is a flattened (C, H, W) tensor")
    return b.build(output=graph_out, input_scale=input_scale)


def _node(b: GraphBuilder, n: str, kind: str, node, x: str, chw: dict) -> str:
    if kind == "Conv2d":
        w = np.asarray(node.weight, dtype=np.float64)
        if w.ndim != 4:
            raise UnsupportedLayerError(f"NIR node {n!r} (Conv2d): the weight must be 4-D "
                                        f"(out, in/groups, kh, kw), got shape {w.shape}")
        pad = node.padding
        if not isinstance(pad, str):
            pad = tuple(int(v) for v in np.ravel(pad))
            pad = pad * 2 if len(pad) == 1 else pad
        bias = None if node.bias is None or np.ndim(node.bias) == 0 else node.bias
        return b.conv2d(x, w.transpose(2, 3, 1, 0), bias, tuple(np.ravel(node.stride)) if
                        np.size(node.stride) > 1 else int(np.ravel(node.stride)[0]),
                        pad, tuple(np.ravel(node.dilation)) if np.size(node.dilation) > 1
                        else int(np.ravel(node.dilation)[0]), name=n,
                        groups=int(node.groups))
    if kind in ("Affine", "Linear"):
        w = np.asarray(node.weight, dtype=np.float64)
        if w.ndim != 2:
            raise UnsupportedLayerError(f"NIR node {n!r} ({kind}): weight must be 2-D")
        k = w.T
        if x in chw:
            c, h, wd = chw[x]
            k = k.reshape(c, h, wd, -1).transpose(1, 2, 0, 3).reshape(c * h * wd, -1)
        bias = getattr(node, "bias", None) if kind == "Affine" else None
        return b.dense(x, k, bias, name=n)
    if kind in ("AvgPool2d", "SumPool2d"):
        k = tuple(int(v) for v in np.ravel(node.kernel_size))
        k = k * 2 if len(k) == 1 else k
        st = tuple(int(v) for v in np.ravel(node.stride))
        st = st * 2 if len(st) == 1 else st
        p = tuple(int(v) for v in np.ravel(node.padding))
        p = p * 2 if len(p) == 1 else p
        pad = (p[0], p[0], p[1], p[1])
        if kind == "AvgPool2d":
            return b.avgpool(x, k, st, pad, count_include_pad=True, name=n)
        c = b.shape(x)[-1]
        kernel = np.zeros(k + (c, c))
        kernel[:, :, np.arange(c), np.arange(c)] = 1.0
        return b.conv2d(x, kernel, None, st, pad, name=n)
    if kind == "Flatten":
        s = b.shape(x)
        y = b.flatten(x, name=n)
        if len(s) == 3 and s[2] > 1 and s[0] * s[1] > 1:
            chw[y] = (s[2], s[0], s[1])
        return y
    if kind in _SPIKING:
        y = b.relu(x, name=n)
        b.layer(y).params["from_nir"] = kind
        if x in chw:
            chw[y] = chw[x]
        return y
    raise UnsupportedLayerError(f"NIR node {n!r} of type {kind!r} is not supported")


def load_nir(path, input_scale: float | None = None) -> Graph:
    """Read a NIR file (HDF5 written by ``nir.write``) as a float :class:`Graph`."""
    nir = _nir()
    path = Path(path)
    if not path.exists():
        raise FileFormatError(f"{path}: no such file")
    _precheck(path)
    try:
        g = nir.read(str(path))
    except Exception as exc:  # h5py and NIR raise many kinds on corrupt files
        raise FileFormatError(f"{path}: cannot read NIR graph ({type(exc).__name__}: "
                              f"{exc})") from None
    try:
        return graph_from_nir(g, name=path.stem, input_scale=input_scale, path=str(path))
    except NeuroemuError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError,
            RecursionError) as exc:
        raise FileFormatError(f"{path}: damaged NIR graph ({type(exc).__name__}: "
                              f"{exc})") from None


def _precheck(path: Path) -> None:
    """Before ``nir.read`` touches the data: no links out of the file
    (:func:`hw_models.safeio.open_h5`), no group reached by two hard links (a cycle or a
    shared subtree, which ``nir.read``'s recursive walk would follow down every path:
    exponential time with two cycles), numeric or string datasets only, and their declared
    sizes together within the memory budget."""
    import h5py
    with open_h5(path, "NIR") as f:
        total, bad = [0], []

        def visit(name, obj):
            if isinstance(obj, h5py.Group) and h5py.h5o.get_info(obj.id).rc > 1:
                bad.append(f"/{name} is a group reached by "
                           f"{h5py.h5o.get_info(obj.id).rc} hard links")
            if isinstance(obj, h5py.Dataset):
                dt = obj.dtype
                if dt.kind not in "iufbSOU" or dt.fields is not None:
                    bad.append(f"/{name} has dtype {dt}")
                elif obj.shape is not None:
                    total[0] += array_bytes(obj.shape, dt if dt.kind != "O" else np.float64)
                    check_budget(total[0], f"{path}: NIR datasets up to /{name} (declares "
                                 f"shape {obj.shape})")
        visit("", f)
        f.visititems(visit)
        if bad:
            raise FileFormatError(f"{path}: not a NIR file's structure: {'; '.join(bad)}")


__all__ = ["graph_from_nir", "load_nir"]


# =========================================================================================
# A network written by converter.nir_export: read back bit for bit
# =========================================================================================

def is_neuroemu_graph(nir_graph) -> bool:
    """True when ``nir_graph`` was written by :func:`converter.nir_export.network_to_nir`."""
    from .nir_export import NIR_MARK
    return NIR_MARK in (getattr(nir_graph, "metadata", None) or {})


def is_neuroemu_nir(path) -> bool:
    """True for a NIR file written by :func:`converter.nir_export.export_nir` (cheap: reads the
    graph attributes with h5py, without the ``nir`` package)."""
    import h5py

    from .nir_export import NIR_MARK
    try:
        with h5py.File(path, "r") as f:
            g = f.get("node")
            md = g.get("metadata") if g is not None else None
            return md is not None and NIR_MARK in md
    except (OSError, TypeError):
        return False


def _md(node, path, what) -> dict:
    from hw_models.safeio import loads_json
    try:
        return loads_json(str(node.metadata["neuroemu"]), f"{path}: {what} metadata")
    except (KeyError, TypeError, ValueError) as exc:
        raise FileFormatError(f"{path}: NIR node of {what} lacks its neuroemu metadata "
                              f"({exc})") from None


def _int_array(a, what, path) -> np.ndarray:
    a = np.asarray(a)
    if not np.issubdtype(a.dtype, np.integer):
        if np.issubdtype(a.dtype, np.floating) and np.all(np.isfinite(a)) and \
                np.array_equal(a, np.rint(a)):
            return np.rint(a).astype(np.int64)
        raise FileFormatError(f"{path}: {what} must hold integers, got dtype {a.dtype}")
    return a.astype(np.int64)


def network_from_nir(nir_graph, path: str = "<NIR graph>"):
    """The :class:`~hw_models.network.CoreNetwork` a NIR graph written by
    :func:`converter.nir_export.network_to_nir` describes, bit for bit.  Weights and thresholds
    are read from the NIR nodes themselves (Conv2d/Affine/Scale weights, IF thresholds), the
    semantics NIR cannot express from the nodes' metadata."""
    import json

    from hw_models.network import CoreNetwork, Population, Projection
    if not is_neuroemu_graph(nir_graph):
        raise ConversionError(f"{path}: not a NIR graph written by neuroemu (no "
                              f"'neuroemu_format' in the graph metadata); use load_nir() to "
                              f"convert a NIR model instead")
    gm = dict(nir_graph.metadata)
    try:
        top = json.loads(str(gm["neuroemu"]))
    except (KeyError, ValueError) as exc:
        raise FileFormatError(f"{path}: damaged neuroemu graph metadata ({exc})") from None
    nodes = dict(nir_graph.nodes)
    pops, projs, scale_of = {}, {}, {}
    for key, node in nodes.items():
        md = getattr(node, "metadata", None) or {}
        if "neuroemu" not in md:
            continue
        d = _md(node, path, key)
        role = d.get("role")
        if role == "input":
            shape = tuple(d["shape"])
            pops[d["name"]] = Population(d["name"], shape, kind="input", encoding=d["encoding"],
                                         input_max=d["input_max"], core=md.get("core"))
        elif role == "population":
            shape = tuple(d["shape"])
            kind = type(node).__name__
            if d["spiking"]:
                if kind != "IF":
                    raise FileFormatError(f"{path}: node {key!r} should be IF, is {kind}")
                th = _int_array(node.v_threshold, f"node {key!r} v_threshold", path)
                if th.size == 0 or np.any(th != th.reshape(-1)[0]):
                    raise FileFormatError(f"{path}: node {key!r}: a population has one "
                                          f"threshold, found several")
                threshold = int(th.reshape(-1)[0])
                if threshold != d["threshold"]:
                    raise FileFormatError(f"{path}: node {key!r}: v_threshold {threshold} "
                                          f"differs from its metadata {d['threshold']}")
            else:
                threshold = d["threshold"]
            bias = md.get("bias") if d["has_bias"] else None
            pops[d["name"]] = Population(
                d["name"], shape, threshold=threshold, reset=d["reset"],
                decay_u=d["decay_u"], decay_v=d["decay_v"], bias=bias, v_init=d["v_init"],
                v_min=d["v_min"], v_max=d["v_max"], overflow=d["overflow"],
                spike_rule=d["spike_rule"], spiking=d["spiking"], core=md.get("core"))
        elif role == "projection":
            projs[d["name"]] = (key, node, d)
        elif role == "scale":
            scale_of[d["part_of"]] = node
    shapes = {n: p.shape for n, p in pops.items()}
    out_projs = []
    for name in top["projections"]:
        if name not in projs:
            raise FileFormatError(f"{path}: projection {name!r} is missing from the NIR graph")
        key, node, d = projs[name]
        e, kind = int(d["exponent"]), d["kind"]
        src_shape, tgt_shape = shapes[d["source"]], shapes[d["target"]]
        if kind == "conv":
            eff = _int_array(node.weight, f"node {key!r} weight", path).transpose(2, 3, 1, 0)
        elif kind == "dense":
            eff = _int_array(node.weight, f"node {key!r} weight", path).T
            if len(src_shape) == 3:
                h, w, c = src_shape
                eff = eff.reshape(c, h, w, -1).transpose(1, 2, 0, 3).reshape(h * w * c, -1)
        else:
            sc = node if kind == "identity" else scale_of.get(name)
            if sc is None:       # a pool with unit weights has no Scale node
                c = tgt_shape[-1]
                eff = np.ones(c, np.int64)
            else:
                s = _int_array(sc.scale, f"scale of {name!r}", path)
                eff = s[:, 0, 0] if s.ndim == 3 else s
        eff = np.ascontiguousarray(eff)
        w = eff >> e
        if not np.array_equal(w << e, eff):
            raise FileFormatError(f"{path}: projection {name!r}: weights are not multiples "
                                  f"of 2^{e} (its exponent)")
        w = w.astype(np.dtype(d["weight_dtype"]))
        if not np.array_equal(w.astype(np.int64), eff >> e):
            raise FileFormatError(f"{path}: projection {name!r}: weights overflow "
                                  f"{d['weight_dtype']}")
        kw = {}
        if int(d.get("groups", 1)) != 1:
            kw["groups"] = int(d["groups"])
        if kind == "maxpool" and d.get("gate"):
            kw["gate"] = d["gate"]
        out_projs.append(Projection(name, d["source"], d["target"], kind, w, exponent=e,
                                    delay=d["delay"], kernel=tuple(d["kernel"]),
                                    stride=tuple(d["stride"]), padding=tuple(d["padding"]),
                                    dilation=tuple(d["dilation"]), **kw))
    try:
        populations = [pops[n] for n in top["populations"]]
    except KeyError as exc:
        raise FileFormatError(f"{path}: population {exc} is missing from the NIR graph") \
            from None
    placement = gm.get("placement")
    extra = {}
    if "input_spec" in gm:
        from hw_models.inputspec import InputSpec
        d = json.loads(str(gm["input_spec"]))
        extra["input_spec"] = InputSpec(**{k: tuple(v) if isinstance(v, list) else v
                                           for k, v in d.items()})
    net = CoreNetwork(populations, out_projs, output=top["output"], readout=top["readout"],
                      input_layout=top["input_layout"],
                      placement=None if placement is None else
                      np.asarray(placement, np.int32),
                      profile=top.get("profile"), meta=top.get("meta") or {}, **extra)
    return net.validate()


def load_nir_network(path):
    """Read a NIR file written by :func:`converter.nir_export.export_nir` as a CoreNetwork."""
    nir = _nir()
    path = Path(path)
    if not path.exists():
        raise FileFormatError(f"{path}: no such file")
    _precheck(path)
    try:
        g = nir.read(str(path))
    except Exception as exc:  # h5py and NIR raise many kinds on corrupt files
        raise FileFormatError(f"{path}: cannot read NIR graph ({type(exc).__name__}: "
                              f"{exc})") from None
    net = network_from_nir(g, path=str(path))
    from hw_models.intrange import check_ranges
    check_ranges(net)
    return net


__all__ += ["is_neuroemu_graph", "is_neuroemu_nir", "load_nir_network", "network_from_nir"]
