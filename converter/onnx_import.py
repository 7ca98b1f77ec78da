"""ONNX models → :class:`~converter.graph.Graph` (needs the optional ``onnx`` package).

ONNX tensors are NCHW; the graph is HWC inside.  The model's own input layout is kept
(``input_layout="CHW"``, ``input_shape`` e.g. ``(1, 28, 28)``), so :meth:`Graph.predict` takes the
same arrays as the ONNX model.  Conversions made at import:

* Conv weights (O, I, kh, kw) → HWIO; ``pads`` ``[t, l, b, r]`` → ``(t, b, l, r)``; ``auto_pad``
  ``SAME_UPPER`` / ``SAME_LOWER`` / ``VALID`` resolved to explicit padding.
* ``Add``/``Sub`` of a tensor and a constant is a bias: folded into the conv/dense that produced
  the tensor when nothing else reads it, else a ``batchnorm`` layer with unit scale.  ``Mul`` by a
  per-channel constant likewise becomes a ``batchnorm`` scale.
* Gemm (``alpha``, ``beta``, ``transB``) and MatMul with a constant right operand → ``dense``.
  A dense layer fed by a Flatten/Reshape of an NCHW tensor gets its kernel rows permuted from
  CHW to HWC order, so no runtime transpose is needed.
* The QCFS activation chain ``Mul, Add(½), Floor, Clip, Mul`` (Bu et al. 2022) → a ``relu``
  with ``levels`` and ``max_value`` (matched by :func:`converter.qcfs.find_onnx_qcfs`).
* Clip with min 0 → ``relu`` with ``max_value``; Dropout and Identity vanish; constant
  sub-graphs (Constant, Reshape/Transpose/… of initialisers) are evaluated at import.

Anything else raises :class:`UnsupportedLayerError` naming the node and its op type.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hw_models.errors import (ConversionError, FileFormatError, NeuroemuError,
                              UnsupportedLayerError)
from hw_models.safeio import check_budget
from .builder import GraphBuilder
from .graph import Graph, same_padding_2d


def _onnx():
    try:
        import onnx  # noqa: PLC0415  (optional dependency, imported lazily)
        from onnx import numpy_helper  # noqa: PLC0415
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("reading ONNX models needs the 'onnx' package: "
                          "pip install neuroemu[onnx]") from exc
    return onnx, numpy_helper


class _Tensor:
    """Where an ONNX tensor lives in the graph: a layer name, and its ONNX rank (2 or 4).
    ``chw`` holds (C, H, W) when it is a flattened NCHW tensor whose order is still CHW."""

    def __init__(self, layer: str, rank: int, chw: tuple | None = None):
        self.layer, self.rank, self.chw = layer, rank, chw


class _OnnxImporter:
    def __init__(self, model, path, input_scale):
        onnx, self.nh = _onnx()
        self.onnx = onnx
        self.path, self.input_scale = path, input_scale
        self.g = model.graph
        self.consts = {}
        for t in self.g.initializer:
            arr = self.nh.to_array(t)
            self.consts[t.name] = arr.astype(np.float64) if arr.dtype.kind == "f" else arr
        self.opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
                         default=13)
        self.uses: dict[str, int] = {}
        for n in self.g.node:
            for i in n.input:
                self.uses[i] = self.uses.get(i, 0) + 1
        for o in self.g.output:
            self.uses[o.name] = self.uses.get(o.name, 0) + 1
        self.t: dict[str, _Tensor] = {}

    # -- helpers ---------------------------------------------------------------------------
    def attrs(self, node) -> dict:
        return {a.name: self.onnx.helper.get_attribute_value(a) for a in node.attribute}

    def err(self, node, msg):
        return UnsupportedLayerError(f"ONNX node {node.name or node.output[0]!r} "
                                     f"({node.op_type}): {msg}")

    def const(self, name):
        return self.consts.get(name) if name else None

    def tensor(self, node, name) -> _Tensor:
        if name not in self.t:
            raise self.err(node, f"input {name!r} is neither a computed tensor nor a constant")
        return self.t[name]

    def layer_name(self, node, i) -> str:
        base = node.name or f"{node.op_type}_{i}"
        name, k = base, 1
        while name in self.b:
            k += 1
            name = f"{base}_{k}"
        return name

    def plain(self, node, t: _Tensor) -> str:
        if t.chw is not None:
            raise self.err(node, "reads a flattened NCHW tensor; only a dense layer "
                                 "(Gemm/MatMul) may follow a Flatten of an NCHW tensor")
        return t.layer

    # -- driver ----------------------------------------------------------------------------
    def build(self) -> Graph:
        inputs = [i for i in self.g.input if i.name not in self.consts]
        if len(inputs) != 1 or len(self.g.output) != 1:
            raise ConversionError(f"{self.path}: only single-input, single-output ONNX graphs "
                                  f"are supported (inputs {[i.name for i in inputs]})")
        inp = inputs[0]
        dims = [d.dim_value if d.HasField("dim_value") else None
                for d in inp.type.tensor_type.shape.dim]
        if len(dims) not in (2, 4) or any(d is None or d < 1 for d in dims[1:]):
            raise ConversionError(f"{self.path}: input {inp.name!r} has shape {dims}; need "
                                  f"(N, C, H, W) or (N, n) with fixed per-sample sizes")
        shp = tuple(int(d) for d in dims[1:])
        self.b = GraphBuilder(shp, "CHW" if len(shp) == 3 else "C", name=Path(self.path).stem)
        self.t[inp.name] = _Tensor(self.b.input(name="input"), len(dims))
        from .qcfs import find_onnx_qcfs
        qcfs = find_onnx_qcfs(self.g, self.nh, self.onnx, self.opset)
        skip = {j for q in qcfs.values() for j in q[4][1:]}
        for i, node in enumerate(self.g.node):
            if i in qcfs:  # one QCFS relu for the whole chain
                x_in, out, lam, levels, _ = qcfs[i]
                x = self.tensor(node, x_in)
                self.t[out] = _Tensor(self.b.relu(x.layer, lam, name=self.layer_name(node, i),
                                                  levels=levels), x.rank, x.chw)
            elif i not in skip:
                self.node(node, i)
        out = self.g.output[0].name
        if out not in self.t:
            raise ConversionError(f"{self.path}: output {out!r} is a constant")
        t = self.t[out]
        if t.chw is not None:
            raise ConversionError(f"{self.path}: the output is a flattened NCHW tensor; its "
                                  f"CHW order cannot be reproduced without a transpose")
        return self.b.build(output=t.layer, input_scale=self.input_scale)

    def node(self, node, i):
        op = node.op_type
        a = self.attrs(node)
        ins = list(node.input)
        if node.domain not in ("", "ai.onnx"):
            raise self.err(node, f"custom domain {node.domain!r} not supported")
        if op == "Constant":
            val = a.get("value")
            if val is None:
                raise self.err(node, "only the 'value' form of Constant is supported")
            self.consts[node.output[0]] = self.nh.to_array(val)
            return
        if all((n == "" or n in self.consts) for n in ins) and ins:
            self.consts[node.output[0]] = self.fold(node, a, ins)
            return
        b = self.b
        name = self.layer_name(node, i)
        out = node.output[0]
        if op in ("Dropout", "Identity"):
            self.t[out] = self.tensor(node, ins[0])
            return
        x = self.tensor(node, ins[0])
        if op == "Conv":
            self.t[out] = _Tensor(self.conv(node, a, ins, x, name), 4)
        elif op in ("Gemm", "MatMul"):
            self.t[out] = _Tensor(self.dense(node, a, ins, x, name), 2)
        elif op == "Relu":
            self.t[out] = _Tensor(b.relu(x.layer, name=name), x.rank, x.chw)
        elif op == "Clip":
            lo = a.get("min") if self.opset < 11 else self.const(ins[1] if len(ins) > 1 else "")
            hi = a.get("max") if self.opset < 11 else self.const(ins[2] if len(ins) > 2 else "")
            if lo is None or float(np.asarray(lo)) != 0.0:
                raise self.err(node, f"Clip is only supported with min 0 (a ReLU), got {lo}")
            mv = None if hi is None else float(np.asarray(hi))
            self.t[out] = _Tensor(b.relu(x.layer, mv, name=name), x.rank, x.chw)
        elif op in ("MaxPool", "AveragePool"):
            self.t[out] = _Tensor(self.pool(node, a, x, name), 4)
        elif op == "GlobalAveragePool":
            self.t[out] = _Tensor(b.global_avgpool(self.plain(node, x), name=name), 2)
        elif op == "BatchNormalization":
            w = [self.const(n) for n in ins[1:5]]
            if any(v is None for v in w):
                raise self.err(node, "scale, bias, mean and var must be constants")
            self.t[out] = _Tensor(b.batchnorm(self.plain(node, x), w[0], w[1], w[2], w[3],
                                              float(a.get("epsilon", 1e-5)), name=name), x.rank)
        elif op in ("Flatten", "Reshape"):
            self.t[out] = self.flatten(node, a, ins, x, name)
        elif op in ("Add", "Sub", "Mul", "Sum"):
            self.t[out] = self.arith(node, ins, name)
        elif op == "Concat":
            axis = int(a.get("axis", 1))
            ts = [self.tensor(node, n) for n in ins]
            if axis not in (1, -3 if x.rank == 4 else -1):
                raise self.err(node, f"concatenation on axis {axis} is not the channel axis")
            self.t[out] = _Tensor(b.concat(*[self.plain(node, t) for t in ts], name=name), x.rank)
        elif op == "Pad":
            self.t[out] = _Tensor(self.pad(node, a, ins, x, name), 4)
        elif op == "Softmax":
            axis = int(a.get("axis", 1 if self.opset < 13 else -1))
            if x.rank != 2 or axis not in (1, -1):
                raise self.err(node, "softmax is only supported over the class axis of (N, n)")
            self.t[out] = _Tensor(b.softmax(self.plain(node, x), name=name), 2)
        else:
            raise self.err(node, "op type not supported")

    # -- ops ---------------------------------------------------------------------------------
    def fold(self, node, a, ins):
        """Evaluate a node whose inputs are all constants."""
        op, v = node.op_type, [self.consts.get(n) for n in ins]
        if op in ("Identity", "Cast", "Dropout"):
            return v[0]
        if op == "Reshape":
            shape = [int(s) for s in (v[1] if len(v) > 1 else a["shape"])]
            shape = [v[0].shape[k] if s == 0 else s for k, s in enumerate(shape)]
            return v[0].reshape(shape)
        if op == "Transpose":
            return np.transpose(v[0], a.get("perm"))
        if op == "Flatten":
            ax = int(a.get("axis", 1))
            return v[0].reshape(int(np.prod(v[0].shape[:ax])), -1)
        if op == "Unsqueeze":
            axes = a.get("axes") if len(v) < 2 else [int(s) for s in v[1]]
            out = v[0]
            for ax in sorted(axes):
                out = np.expand_dims(out, ax)
            return out
        if op == "Squeeze":
            axes = a.get("axes") if len(v) < 2 else [int(s) for s in v[1]]
            return np.squeeze(v[0], axis=tuple(axes) if axes is not None else None)
        if op == "Concat":
            return np.concatenate(v, axis=int(a.get("axis", 0)))
        ops = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide,
               "MatMul": np.matmul, "Sqrt": np.sqrt, "Neg": np.negative}
        if op in ops:
            return ops[op](*v)
        raise self.err(node, "cannot evaluate this op on constants")

    def _hw_padding(self, node, a, x, kernel, strides, dilation=(1, 1)):
        auto = a.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else auto
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            return same_padding_2d(self.b.shape(x.layer)[:2], kernel, strides, dilation,
                                   lower=auto == "SAME_LOWER")
        if auto == "VALID":
            return (0, 0, 0, 0)
        p = [int(v) for v in a.get("pads", [0, 0, 0, 0])]
        if len(p) != 4:
            raise self.err(node, f"pads {p} is not 2-D")
        return (p[0], p[2], p[1], p[3])

    def conv(self, node, a, ins, x, name):
        w = self.const(ins[1])
        if w is None or w.ndim != 4:
            raise self.err(node, "the weight must be a 4-D constant (only 2-D convolution)")
        if int(a.get("group", 1)) != 1:
            raise self.err(node, f"group={a['group']} not supported (groups=1 only)")
        bias = self.const(ins[2]) if len(ins) > 2 and ins[2] else None
        k = (w.shape[2], w.shape[3])
        st = tuple(a.get("strides", (1, 1)))
        dl = tuple(a.get("dilations", (1, 1)))
        pad = self._hw_padding(node, a, x, k, st, dl)
        return self.b.conv2d(self.plain(node, x), w.transpose(2, 3, 1, 0), bias, st, pad, dl,
                             name=name)

    def dense(self, node, a, ins, x, name):
        w = self.const(ins[1])
        if w is None or w.ndim != 2:
            raise self.err(node, "the right operand must be a 2-D constant (a weight matrix)")
        bias = None
        if node.op_type == "Gemm":
            if int(a.get("transA", 0)):
                raise self.err(node, "transA=1 not supported")
            if int(a.get("transB", 0)):
                w = w.T
            w = w * float(a.get("alpha", 1.0))
            if len(ins) > 2 and ins[2]:
                c = self.const(ins[2])
                if c is None:
                    raise self.err(node, "the C operand must be a constant")
                bias = float(a.get("beta", 1.0)) * np.broadcast_to(
                    np.asarray(c, dtype=np.float64).reshape(-1) if c.size > 1 else c,
                    (w.shape[1],))
        if x.rank != 2:
            raise self.err(node, "a dense layer needs a 2-D (N, n) input; flatten first")
        if x.chw is not None:
            c, h, wd = x.chw
            w = w.reshape(c, h, wd, -1).transpose(1, 2, 0, 3).reshape(c * h * wd, -1)
        return self.b.dense(x.layer, w, bias, name=name)

    def pool(self, node, a, x, name):
        k = tuple(a["kernel_shape"])
        st = tuple(a.get("strides", (1, 1)))
        if any(d != 1 for d in a.get("dilations", (1, 1))):
            raise self.err(node, "dilated pooling not supported")
        pad = self._hw_padding(node, a, x, k, st)
        if int(a.get("ceil_mode", 0)):
            h, w = self.b.shape(x.layer)[:2]
            extra = []
            for size, kk, s, p0, p1 in ((h, k[0], st[0], pad[0], pad[1]),
                                        (w, k[1], st[1], pad[2], pad[3])):
                span = size + p0 + p1 - kk
                extra.append((-(-span // s)) * s - span)
            if any(extra):
                if node.op_type == "AveragePool":
                    raise self.err(node, "ceil_mode=1 changing the output size is not supported")
                pad = (pad[0], pad[1] + extra[0], pad[2], pad[3] + extra[1])
        src = self.plain(node, x)
        if node.op_type == "MaxPool":
            if len(node.output) > 1 and node.output[1]:
                raise self.err(node, "the Indices output is not supported")
            return self.b.maxpool(src, k, st, pad, name=name)
        return self.b.avgpool(src, k, st, pad, bool(int(a.get("count_include_pad", 0))),
                              name=name)

    def flatten(self, node, a, ins, x, name) -> _Tensor:
        if node.op_type == "Flatten":
            if int(a.get("axis", 1)) != 1:
                raise self.err(node, f"axis={a.get('axis')} not supported (axis 1 only)")
        else:
            shape = self.const(ins[1]) if len(ins) > 1 else np.asarray(a.get("shape"))
            if shape is None:
                raise self.err(node, "the target shape must be a constant")
            shape = [int(s) for s in shape]
            if len(shape) != 2:
                if x.rank == 4 and len(shape) == 4 and list(shape[1:]) == [
                        self.b.shape(x.layer)[2], *self.b.shape(x.layer)[:2]]:
                    return x
                raise self.err(node, f"reshape to {shape} not supported (only to (N, n))")
        s = self.b.shape(x.layer)
        if x.rank == 2 or len(s) == 1:
            return _Tensor(x.layer, 2, x.chw)
        y = self.b.flatten(x.layer, name=name)
        h, w, c = s
        return _Tensor(y, 2, None if (c == 1 or h * w == 1) else (c, h, w))

    def arith(self, node, ins, name) -> _Tensor:
        op = node.op_type
        consts = [self.const(n) for n in ins]
        tens = [n for n, c in zip(ins, consts) if c is None]
        if op in ("Add", "Sum") and len(tens) == len(ins):
            ts = [self.tensor(node, n) for n in ins]
            return _Tensor(self.b.add(*[self.plain(node, t) for t in ts], name=name), ts[0].rank)
        if len(tens) != 1 or len(ins) != 2:
            raise self.err(node, "only tensor+tensor or tensor∘constant forms are supported")
        x = self.tensor(node, tens[0])
        c = np.asarray([c for c in consts if c is not None][0], dtype=np.float64)
        if op == "Sub" and ins[0] != tens[0]:
            raise self.err(node, "constant − tensor is not supported")
        src = self.plain(node, x)
        ch = self.b.shape(src)[-1]
        vec = self._per_channel(node, c, x.rank, ch)
        if op == "Mul":
            return _Tensor(self.b.batchnorm(src, vec, None, None, None, 0.0, name=name), x.rank)
        if op == "Sub":
            vec = -vec
        layer = self.b.layer(src)
        if layer.kind in ("conv2d", "dense") and self.uses.get(tens[0], 0) == 1:
            layer.weights["bias"] = layer.weights.get("bias", np.zeros(ch)) + vec
            return x
        return _Tensor(self.b.batchnorm(src, None, vec, None, None, 0.0, name=name), x.rank)

    def _per_channel(self, node, c, rank, ch):
        if c.size == 1:
            return np.full(ch, float(c.reshape(-1)[0]))
        if rank == 4:
            core = c.reshape(c.shape[-3:]) if c.ndim >= 3 else None
            if core is not None and core.shape[1:] == (1, 1) and core.shape[0] == ch:
                return core.reshape(ch)
        elif c.reshape(-1).size == ch and c.shape[-1] == ch:
            return c.reshape(ch)
        raise self.err(node, f"constant of shape {c.shape} is not a per-channel vector "
                             f"of {ch} values")

    def pad(self, node, a, ins, x, name):
        mode = a.get("mode", b"constant")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        pads = a.get("pads") if self.opset < 11 else self.const(ins[1])
        value = a.get("value", 0.0) if self.opset < 11 else (
            self.const(ins[2]) if len(ins) > 2 and ins[2] else 0.0)
        if mode != "constant" or pads is None or float(np.asarray(value)) != 0.0:
            raise self.err(node, "only constant zero padding with constant pads is supported")
        p = [int(v) for v in pads]
        if len(p) != 8 or any(p[k] for k in (0, 1, 4, 5)) or min(p) < 0:
            raise self.err(node, f"pads {p}: only non-negative padding of H and W is supported")
        return self.b.zeropad(self.plain(node, x), (p[2], p[6], p[3], p[7]), name=name)


def load_onnx(path, input_scale: float | None = None) -> Graph:
    """Import an ONNX model file as a float :class:`Graph` (input layout NCHW kept)."""
    onnx, _ = _onnx()
    path = Path(path)
    if not path.exists():
        raise FileFormatError(f"{path}: no such file")
    if path.is_dir():
        raise FileFormatError(f"{path}: is a directory, not an ONNX file")
    check_budget(path.stat().st_size * 2, f"{path}: parsing an ONNX file of "
                 f"{path.stat().st_size} bytes")
    try:
        # never follow external-data references: they would read other files on disk
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # the protobuf decoder raises various types on corrupt data
        raise FileFormatError(f"{path}: cannot parse ONNX model ({type(exc).__name__}: "
                              f"{exc})") from None
    _check_model(model, path)
    try:
        return _OnnxImporter(model, path, input_scale).build()
    except NeuroemuError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError,
            RecursionError, RuntimeError) as exc:
        raise FileFormatError(f"{path}: damaged ONNX model ({type(exc).__name__}: "
                              f"{exc})") from None


def _check_model(model, path) -> None:
    """Refuse a truncated or crafted ModelProto before any tensor is decoded: a graph without
    nodes, no ``opset_import`` (the tail of the file, where protobuf writers put it: a file cut
    short parses without it and would be read under a guessed opset), external tensor data, and
    initializers whose declared element count exceeds the memory budget or their stored bytes."""
    if not model.graph.node:
        raise FileFormatError(f"{path}: the ONNX graph has no nodes (empty or truncated file)")
    if not any(o.domain in ("", "ai.onnx") for o in model.opset_import):
        raise FileFormatError(f"{path}: the ONNX model declares no default-domain opset "
                              f"(opset_import missing: a truncated file?); refusing to guess")
    if model.ir_version <= 0:
        raise FileFormatError(f"{path}: the ONNX model has no ir_version (a truncated file?)")
    total = 0
    tensors = list(model.graph.initializer) + [
        a.t for n in model.graph.node for a in n.attribute if a.HasField("t")]
    for t in tensors:
        if t.data_location == 1 or len(t.external_data):
            raise FileFormatError(f"{path}: tensor {t.name!r} keeps its data in an external "
                                  f"file; only self-contained ONNX files are read")
        n = 1
        for d in t.dims:
            if d < 0:
                raise FileFormatError(f"{path}: tensor {t.name!r} has a negative dimension {d}")
            n *= int(d)
        total += 8 * n
        check_budget(total, f"{path}: initializers up to {t.name!r} (declares shape "
                     f"{tuple(t.dims)}) as float64")
        stored = (len(t.raw_data) if t.HasField("raw_data") else
                  max(len(t.float_data), len(t.int32_data), len(t.int64_data),
                      len(t.double_data), len(t.uint64_data), len(t.string_data)))
        if t.HasField("raw_data"):
            try:
                itemsize = np.dtype(_onnx()[0].helper.tensor_dtype_to_np_dtype(t.data_type)).itemsize
            except Exception:
                raise FileFormatError(f"{path}: tensor {t.name!r} has an unknown data type "
                                      f"{t.data_type}") from None
            if stored != n * itemsize:
                raise FileFormatError(f"{path}: tensor {t.name!r} declares {n} elements but "
                                      f"stores {stored} bytes")
        elif stored != n and not (n == 0 and stored == 0):
            raise FileFormatError(f"{path}: tensor {t.name!r} declares {n} elements but stores "
                                  f"{stored}")


__all__ = ["load_onnx"]
