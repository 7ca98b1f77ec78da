"""ONNX models → :class:`~converter.graph.Graph` (needs the optional ``onnx`` package).

ONNX tensors are NCHW; the graph is HWC inside.  The model's own input layout is kept
(``input_layout="CHW"``, ``input_shape`` e.g. ``(1, 28, 28)``), so :meth:`Graph.predict` takes the
same arrays as the ONNX model — or ``"HWC"`` for an NHWC input (TensorFlow via tf2onnx, or a
PyTorch model that permutes its input) whose first structural node is a
``Transpose(perm=[0, 3, 1, 2])``.  Conversions made at import:

* Every rank-4 tensor is tracked with the order of its ONNX axes (NCHW, or NHWC between a pair
  of transposes as tf2onnx writes them); ``Transpose`` only relabels the order, so no layer is
  made.  Flatten/Reshape of an NCHW tensor permutes the following dense kernel's rows from CHW
  to HWC order; of an NHWC tensor, keeps them.  ``Squeeze``/``Unsqueeze``/``Flatten``/
  ``Reshape`` of a pooled (N, C, 1, 1) tensor or of a vector are the same tensor.
* **Shape sub-graphs are folded**: ``Shape`` of a computed tensor is the constant
  ``[1, C, H, W]`` (batch 1 stands for N), and ``Gather``, ``Slice``, ``Unsqueeze``,
  ``Squeeze``, ``Concat``, ``Cast``, arithmetic, … of constants are evaluated at import, so
  PyTorch's ``x.view(x.size(0), -1)`` (Shape → Gather → Unsqueeze → Concat → Reshape) becomes a
  plain flatten.  A reshape target of two entries is a flatten to (N, n).
* **In-graph preprocessing becomes the input spec**: at the start of the graph, ``Cast`` and
  ``Div``/``Mul``/``Sub``/``Add`` by (per-channel) constants, before and after the NHWC→NCHW
  ``Transpose``, are folded into one affine map ``model = raw·scale + offset`` per channel that
  the graph's :class:`~hw_models.inputspec.InputSpec` carries; no layer is made.
* Conv weights (O, I/group, kh, kw) → HWIO with ``groups`` (depthwise and grouped convolution);
  ``pads`` ``[t, l, b, r]`` → ``(t, b, l, r)``; ``auto_pad`` resolved to explicit padding.
* ``Add``/``Sub`` of a tensor and a constant is a bias: folded into the conv/dense that produced
  the tensor when nothing else reads it, else a ``batchnorm`` layer with unit scale.  ``Mul``/
  ``Div`` by a per-channel constant likewise becomes a ``batchnorm`` scale.
* Gemm (``alpha``, ``beta``, ``transB``) and MatMul with a constant right operand → ``dense``.
* ``GlobalAveragePool`` and ``ReduceMean`` over the two spatial axes → ``global_avgpool``.
* Clip with min 0 → ``relu`` with ``max_value`` (ReLU6); Dropout, Identity and Cast of a
  computed tensor vanish.
* The QCFS activation chain ``Mul, Add(½), Floor, Clip, Mul`` (Bu et al. 2022) → a ``relu``
  with ``levels`` and ``max_value`` (matched by :func:`converter.qcfs.find_onnx_qcfs`).
* **Classifier heads** ``Softmax``, ``LogSoftmax`` and ``ArgMax`` over the class axis become the
  read-out (a ``softmax`` layer with ``mode`` softmax / log_softmax / argmax, see
  :mod:`converter.graph`); shape-only ops after a head (Cast, Squeeze, Reshape, …) are kept out.

Before anything is built, every node is checked: a model with unsupported ops raises one
:class:`UnsupportedLayerError` naming **every** unsupported node and its op type at once.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hw_models.errors import (ConversionError, FileFormatError, NeuroemuError,
                              UnsupportedLayerError)
from hw_models.safeio import check_budget
from .builder import GraphBuilder
from .graph import Graph, same_padding_2d

#: ops read on computed tensors
SUPPORTED = {"Conv", "Gemm", "MatMul", "Relu", "Clip", "MaxPool", "AveragePool",
             "GlobalAveragePool", "ReduceMean", "BatchNormalization", "Flatten", "Reshape",
             "Squeeze", "Add", "Sub", "Mul", "Div", "Sum", "Concat", "Pad", "Softmax",
             "LogSoftmax", "ArgMax", "Dropout", "Identity", "Cast", "Transpose", "Shape", "Size",
             "Gather"}
#: ops evaluated at import when every input is a constant (shape arithmetic, weight reshapes)
FOLDABLE = {"Identity", "Cast", "Dropout", "Reshape", "Transpose", "Flatten", "Unsqueeze",
            "Squeeze", "Concat", "Gather", "Slice", "Shape", "Size", "ConstantOfShape",
            "Expand", "Range", "Equal", "Where", "Add", "Sub", "Mul", "Div", "MatMul", "Sqrt",
            "Neg", "Reciprocal", "Pow", "Floor", "Ceil", "Abs", "Min", "Max", "ReduceProd"}
_AFFINE = ("Cast", "Div", "Mul", "Sub", "Add", "Transpose", "Identity", "Dropout")
_AFTER_HEAD = ("Cast", "Squeeze", "Unsqueeze", "Reshape", "Flatten", "Identity")
_HEADS = {"Softmax": "softmax", "LogSoftmax": "log_softmax", "ArgMax": "argmax"}
_INT_TYPES = (2, 3, 4, 5, 6, 7, 12, 13)  # TensorProto: UINT8, INT8, UINT16, INT16, INT32, ...


def _onnx():
    try:
        import onnx  # noqa: PLC0415  (optional dependency, imported lazily)
        from onnx import numpy_helper  # noqa: PLC0415
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("reading ONNX models needs the 'onnx' package: "
                          "pip install neuroemu[onnx]") from exc
    return onnx, numpy_helper


class _Tensor:
    """Where an ONNX tensor lives in the graph.

    ``layer``: the graph layer holding it; ``rank``: its ONNX rank (2 or 4; a pooled
    (N, C, 1, 1) tensor counts as 2); ``nhwc``: a rank-4 tensor whose ONNX axes are
    (N, H, W, C) rather than (N, C, H, W); ``chw``: (C, H, W) when it is a flattened NCHW
    tensor still in CHW order; ``affine``: (scale, offset) per internal channel while the
    tensor is the raw model input under in-graph preprocessing; ``head``: a classifier head's
    output."""

    def __init__(self, layer, rank, chw=None, nhwc=False, affine=None, head=False,
                 batchflat=None):
        self.layer, self.rank, self.chw, self.nhwc = layer, rank, chw, nhwc
        self.affine, self.head = affine, head
        self.batchflat = batchflat  # Reshape(x, [-1]): the whole batch on one axis (x kept)

    def but(self, **kw) -> "_Tensor":
        d = dict(self.__dict__)
        d.update(kw)
        return _Tensor(**d)


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
        self.spec = None  # committed (scale, offset) of the in-graph preprocessing
        self.producer = {o: n for n in self.g.node for o in n.output}

    # -- helpers ---------------------------------------------------------------------------
    def attrs(self, node) -> dict:
        return {a.name: self.onnx.helper.get_attribute_value(a) for a in node.attribute}

    def err(self, node, msg):
        return UnsupportedLayerError(f"ONNX node {node.name or node.output[0]!r} "
                                     f"({node.op_type}): {msg}")

    def const(self, name):
        return self.consts.get(name) if name else None

    def tensor(self, node, name, keep_affine: bool = False) -> _Tensor:
        if name not in self.t:
            raise self.err(node, f"input {name!r} is neither a computed tensor nor a constant")
        t = self.t[name]
        if t.affine is not None and not keep_affine:
            t = self.commit(node, t)
        return t

    def commit(self, node, t: _Tensor) -> _Tensor:
        """The raw input reaches a layer: its preprocessing becomes the input spec."""
        s, o = t.affine
        if self.spec is not None and not (np.allclose(self.spec[0], s)
                                          and np.allclose(self.spec[1], o)):
            raise self.err(node, "the model input reaches layers through two different "
                                 "preprocessing chains; one input scale/offset is needed")
        self.spec = (s, o)
        return t.but(affine=None)

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

    def nchw(self, node, t: _Tensor) -> str:
        """A rank-4 tensor in ONNX's NCHW order, as ops like Conv need it."""
        if t.rank != 4 or t.nhwc:
            raise self.err(node, f"needs an NCHW tensor, got a {'NHWC' if t.nhwc else 'rank-'}"
                                 f"{'' if t.nhwc else t.rank} tensor")
        return self.plain(node, t)

    def onnx_shape(self, t: _Tensor, batch: int = 1) -> list:
        """The ONNX shape of a computed tensor, batch 1 standing for N."""
        if t.batchflat is not None:
            return [batch * int(np.prod(self.onnx_shape(t.batchflat)))]
        s = self.b.shape(t.layer)
        if t.rank == 4 and len(s) == 3:
            return [batch, s[0], s[1], s[2]] if t.nhwc else [batch, s[2], s[0], s[1]]
        return [batch, int(np.prod(s))]

    def const_at_batch(self, name: str, batch: int, memo: dict):
        """Re-evaluate the folded constant ``name`` as if the batch size were ``batch``: the
        shape sub-graph behind it is folded again with Shape/Size of computed tensors reading
        that batch (constants that do not depend on the batch come out unchanged)."""
        if name in memo:
            return memo[name]
        node = self.producer.get(name)
        if node is None or node.op_type == "Constant":
            val = self.consts[name]
        elif node.op_type in ("Shape", "Size") and node.input[0] in self.t:
            shape = self.onnx_shape(self.t[node.input[0]], batch)
            if node.op_type == "Size":
                val = np.asarray(int(np.prod(shape)), np.int64)
            else:
                a = self.attrs(node)
                val = np.asarray(shape[a.get("start", 0):a.get("end", len(shape))], np.int64)
        else:
            ins = list(node.input)
            vals = [self.const_at_batch(n, batch, memo) if n else None for n in ins]
            val = self.fold(node, self.attrs(node), ins, vals)
        memo[name] = val
        return val

    # -- checks before building --------------------------------------------------------------
    def check_ops(self, matched=()) -> None:
        """One error naming every node the importer cannot read (``matched``: indices of nodes
        read as a pattern, e.g. a QCFS chain)."""
        const = set(self.consts)
        bad = []
        for i, n in enumerate(self.g.node):
            if i in matched:
                continue
            if n.domain not in ("", "ai.onnx"):
                bad.append(f"{n.name or n.output[0]!r} ({n.domain}:{n.op_type})")
                continue
            if n.op_type == "Constant" or n.op_type in ("Shape", "Size"):
                const.update(n.output)
                continue
            ins = [i for i in n.input if i]
            if ins and all(i in const for i in ins) and n.op_type in FOLDABLE:
                const.update(n.output)
                continue
            if n.op_type not in SUPPORTED:
                bad.append(f"{n.name or n.output[0]!r} ({n.op_type})")
        if bad:
            raise UnsupportedLayerError(f"{self.path}: {len(bad)} unsupported ONNX node(s): "
                                        f"{', '.join(bad)}")

    def input_layout(self, name: str, dims: tuple) -> str:
        """"HWC" when the input reaches a Transpose(0, 3, 1, 2) — or, with one channel, a
        Reshape to (N, 1, H, W) — through preprocessing only."""
        const = set(self.consts) | {o for n in self.g.node if n.op_type == "Constant"
                                    for o in n.output}
        while True:  # (Shape/Size of the input read only its dimensions)
            cons = [n for n in self.g.node if name in n.input
                    and n.op_type not in ("Shape", "Size")]
            if len(cons) != 1:
                return "CHW"
            n = cons[0]
            if n.op_type == "Transpose":
                perm = list(self.attrs(n).get("perm", []))
                return "HWC" if perm == [0, 3, 1, 2] else "CHW"
            if n.op_type == "Reshape" and len(n.input) > 1 and n.input[1] in self.consts:
                tgt = [int(v) for v in np.ravel(self.consts[n.input[1]])]
                return "HWC" if (dims[2] == 1 and tgt[1:] == [1, dims[0], dims[1]]) else "CHW"
            if n.op_type in ("Cast", "Identity") or (
                    n.op_type in ("Div", "Mul", "Sub", "Add") and len(n.input) == 2
                    and any(i in const for i in n.input)):
                name = n.output[0]
                continue
            return "CHW"

    # -- driver ----------------------------------------------------------------------------
    def build(self) -> Graph:
        inputs = [i for i in self.g.input if i.name not in self.consts]
        if len(inputs) != 1 or len(self.g.output) != 1:
            raise ConversionError(f"{self.path}: only single-input, single-output ONNX graphs "
                                  f"are supported (inputs {[i.name for i in inputs]})")
        from .qcfs import find_onnx_qcfs
        qcfs = find_onnx_qcfs(self.g, self.nh, self.onnx, self.opset)
        skip = {j for q in qcfs.values() for j in q[4][1:]}
        self.check_ops(set(qcfs) | skip)
        inp = inputs[0]
        dims = [d.dim_value if d.HasField("dim_value") else None
                for d in inp.type.tensor_type.shape.dim]
        if len(dims) not in (2, 4) or any(d is None or d < 1 for d in dims[1:]):
            raise ConversionError(f"{self.path}: input {inp.name!r} has shape {dims}; need "
                                  f"(N, C, H, W), (N, H, W, C) or (N, n) with fixed per-sample "
                                  f"sizes")
        shp = tuple(int(d) for d in dims[1:])
        layout = "C" if len(shp) == 1 else self.input_layout(inp.name, shp)
        self.raw_int = inp.type.tensor_type.elem_type in _INT_TYPES
        self.b = GraphBuilder(shp, layout, name=Path(self.path).stem)
        c = shp[-1] if layout in ("HWC", "C") else shp[0]
        self.t[inp.name] = _Tensor(self.b.input(name="input"), len(dims), nhwc=layout == "HWC",
                                   affine=(np.ones(c), np.zeros(c)))
        for i, node in enumerate(self.g.node):
            if i in qcfs:  # one QCFS relu for the whole chain (converter.qcfs)
                x_in, out, lam, levels, _ = qcfs[i]
                x = self.tensor(node, x_in)
                self.t[out] = x.but(layer=self.b.relu(x.layer, lam, name=self.layer_name(node, i),
                                                      levels=levels))
            elif i not in skip:
                self.node(node, i)
        out = self.g.output[0].name
        if out not in self.t:
            raise ConversionError(f"{self.path}: output {out!r} is a constant")
        t = self.t[out]
        if t.affine is not None:
            raise ConversionError(f"{self.path}: the output is the (preprocessed) input")
        if t.chw is not None:
            raise ConversionError(f"{self.path}: the output is a flattened NCHW tensor; its "
                                  f"CHW order cannot be reproduced without a transpose")
        g = self.b.build(output=t.layer, input_scale=self.input_scale)
        return self.with_preprocessing(g)

    def node(self, node, i):
        op = node.op_type
        a = self.attrs(node)
        ins = list(node.input)
        if op == "Constant":
            val = a.get("value")
            if val is None:
                for k in ("value_float", "value_floats", "value_int", "value_ints"):
                    if k in a:
                        val = np.asarray(a[k])
                        break
                else:
                    raise self.err(node, "only value/value_float(s)/value_int(s) Constants")
                self.consts[node.output[0]] = val
                return
            self.consts[node.output[0]] = self.nh.to_array(val)
            return
        if op in ("Shape", "Size") and ins and ins[0] in self.t:
            shape = self.onnx_shape(self.t[ins[0]])
            if op == "Size":
                self.consts[node.output[0]] = np.asarray(int(np.prod(shape)), np.int64)
            else:
                lo, hi = a.get("start", 0), a.get("end", len(shape))
                self.consts[node.output[0]] = np.asarray(shape[lo:hi], np.int64)
            return
        if all((n == "" or n in self.consts) for n in ins) and ins:
            self.consts[node.output[0]] = self.fold(node, a, ins)
            return
        b = self.b
        name = self.layer_name(node, i)
        out = node.output[0]
        data = next(n for n in ins if n and n not in self.consts)  # the computed operand
        x = self.tensor(node, data, keep_affine=op in _AFFINE)
        if x.batchflat is not None and op != "Gather":
            raise self.err(node, "reads a tensor whose whole batch was flattened to one axis "
                                 "(Reshape to [-1]); only a Gather that reads each sample back "
                                 "in order (a per-sample reshape) is supported there")
        if x.head:
            if op not in _AFTER_HEAD:
                raise self.err(node, "a classifier head (Softmax/LogSoftmax/ArgMax) must end "
                                     "the graph; only shape ops may follow it")
            self.t[out] = x
            return
        if op in ("Dropout", "Identity", "Cast"):
            self.t[out] = x
        elif op == "Transpose":
            self.t[out] = self.transpose(node, a, x)
        elif x.affine is not None and op in ("Div", "Mul", "Sub", "Add") \
                and sum(n in self.consts for n in ins) == 1:
            self.t[out] = self.preprocess(node, ins, x)
        elif op == "Conv":
            self.t[out] = _Tensor(self.conv(node, a, ins, x, name), 4)
        elif op in ("Gemm", "MatMul"):
            self.t[out] = _Tensor(self.dense(node, a, ins, x, name), 2)
        elif op == "Relu":
            self.t[out] = x.but(layer=b.relu(x.layer, name=name))
        elif op == "Clip":
            lo = a.get("min") if self.opset < 11 else self.const(ins[1] if len(ins) > 1 else "")
            hi = a.get("max") if self.opset < 11 else self.const(ins[2] if len(ins) > 2 else "")
            if lo is None or float(np.asarray(lo)) != 0.0:
                raise self.err(node, f"Clip is only supported with min 0 (a ReLU), got {lo}")
            mv = None if hi is None else float(np.asarray(hi))
            self.t[out] = x.but(layer=b.relu(x.layer, mv, name=name))
        elif op in ("MaxPool", "AveragePool"):
            self.t[out] = _Tensor(self.pool(node, a, x, name), 4)
        elif op == "GlobalAveragePool":
            self.t[out] = _Tensor(b.global_avgpool(self.nchw(node, x), name=name), 2)
        elif op == "ReduceMean":
            self.t[out] = self.reduce_mean(node, a, ins, x, name)
        elif op == "BatchNormalization":
            w = [self.const(n) for n in ins[1:5]]
            if any(v is None for v in w):
                raise self.err(node, "scale, bias, mean and var must be constants")
            src = self.nchw(node, x) if x.rank == 4 else self.plain(node, x)
            self.t[out] = _Tensor(b.batchnorm(src, w[0], w[1], w[2], w[3],
                                              float(a.get("epsilon", 1e-5)), name=name), x.rank)
        elif op in ("Flatten", "Reshape", "Squeeze"):
            self.t[out] = self.flatten(node, a, ins, x, name)
        elif op in ("Add", "Sub", "Mul", "Div", "Sum"):
            self.t[out] = self.arith(node, ins, name)
        elif op == "Concat":
            self.t[out] = self.concat(node, a, ins, x, name)
        elif op == "Pad":
            self.t[out] = x.but(layer=self.pad(node, a, ins, x, name))
        elif op in _HEADS:
            self.t[out] = self.head(node, a, x, name)
        elif op == "Gather":
            self.t[out] = self.gather(node, a, ins, x, name)
        else:  # pragma: no cover - check_ops refused it before
            raise self.err(node, "op type not supported")

    # -- preprocessing, layout ---------------------------------------------------------------
    def transpose(self, node, a, x: _Tensor) -> _Tensor:
        perm = list(a.get("perm", []))
        if x.rank == 4 and not x.nhwc and perm == [0, 2, 3, 1]:
            return x.but(nhwc=True)
        if x.rank == 4 and x.nhwc and perm == [0, 3, 1, 2]:
            return x.but(nhwc=False)
        if x.rank == 2 and perm in ([0, 1], []) or perm == [0, 1, 2, 3]:
            return x
        raise self.err(node, f"perm {perm} of a rank-{x.rank} {'NHWC' if x.nhwc else 'NCHW'} "
                             f"tensor is not a layout change between NCHW and NHWC")

    def channel_vector(self, node, c, x: _Tensor, ch: int) -> np.ndarray:
        """A broadcast constant as one value per (internal) channel."""
        c = np.asarray(c, dtype=np.float64)
        if c.size == 1:
            return np.full(ch, float(c.reshape(-1)[0]))
        shape = list(c.shape)
        axis_len = len(shape)
        # the channel axis counted from the end: NCHW → 3rd last, NHWC and vectors → last
        k = 3 if (x.rank == 4 and not x.nhwc) else 1
        if axis_len >= k and shape[-k] == ch and all(v == 1 for j, v in enumerate(shape)
                                                     if j != axis_len - k):
            return c.reshape(ch)
        raise self.err(node, f"constant of shape {c.shape} is not a per-channel vector of "
                             f"{ch} values for a {'NCHW' if k == 3 else 'channels-last'} tensor")

    def preprocess(self, node, ins, x: _Tensor) -> _Tensor:
        """Cast/Div/Mul/Sub/Add by a constant at the graph start: fold into (scale, offset)."""
        op = node.op_type
        first = ins[0] not in self.consts
        c = self.channel_vector(node, self.const(ins[1] if first else ins[0]), x,
                                x.affine[0].size)
        s, o = x.affine
        if op == "Mul":
            s, o = s * c, o * c
        elif op == "Div":
            if not first:
                raise self.err(node, "constant ÷ input is not an affine preprocessing")
            s, o = s / c, o / c
        elif op == "Add":
            o = o + c
        elif first:  # x − c
            o = o - c
        else:  # c − x
            s, o = -s, c - o
        return x.but(affine=(s, o))

    def with_preprocessing(self, g: Graph) -> Graph:
        """The graph whose input spec carries the in-graph preprocessing ``raw·s + o``."""
        if self.spec is None:
            return g
        s, o = self.spec
        if np.all(s == 1.0) and np.all(o == 0.0):
            return g
        one = np.allclose(s, s[0]) and np.allclose(o, o[0])
        return g.with_input_spec(scale=float(s[0]) if one else tuple(float(v) for v in s),
                                 offset=float(o[0]) if one else tuple(float(v) for v in o))

    # -- ops ---------------------------------------------------------------------------------
    def fold(self, node, a, ins, vals=None):
        """Evaluate a node whose inputs are all constants (``vals``: their values, if not the
        folded ones)."""
        op = node.op_type
        v = vals if vals is not None else [self.consts.get(n) if n else None for n in ins]
        if op in ("Identity", "Cast", "Dropout"):
            if op == "Cast":
                to = a.get("to")
                dt = self.onnx.helper.tensor_dtype_to_np_dtype(to) if to else None
                return np.asarray(v[0]).astype(dt) if dt is not None else v[0]
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
            out = np.asarray(v[0])
            for ax in sorted(int(x) % (out.ndim + len(axes)) for x in axes):
                out = np.expand_dims(out, ax)
            return out
        if op == "Squeeze":
            axes = a.get("axes") if len(v) < 2 else [int(s) for s in v[1]]
            return np.squeeze(v[0], axis=tuple(axes) if axes is not None else None)
        if op == "Concat":
            return np.concatenate([np.atleast_1d(t) for t in v], axis=int(a.get("axis", 0)))
        if op == "Gather":
            return np.take(v[0], np.asarray(v[1]).astype(np.int64), axis=int(a.get("axis", 0)))
        if op == "Slice":
            if len(v) > 1:
                starts, ends = v[1], v[2]
                axes = v[3] if len(v) > 3 and v[3] is not None else range(len(starts))
                steps = v[4] if len(v) > 4 and v[4] is not None else [1] * len(starts)
            else:
                starts, ends = a["starts"], a["ends"]
                axes, steps = a.get("axes", range(len(starts))), [1] * len(starts)
            sl = [slice(None)] * np.ndim(v[0])
            for s_, e_, ax, st in zip(starts, ends, axes, steps):
                sl[int(ax)] = slice(int(s_), int(min(e_, 2**62)), int(st))
            return np.asarray(v[0])[tuple(sl)]
        if op == "Shape":
            return np.asarray(np.shape(v[0]), np.int64)
        if op == "Size":
            return np.asarray(np.size(v[0]), np.int64)
        if op == "ConstantOfShape":
            val = a.get("value")
            fill = self.nh.to_array(val).reshape(-1)[0] if val is not None else 0.0
            return np.full([int(s) for s in v[0]], fill)
        if op == "Expand":
            return np.broadcast_to(v[0], np.broadcast_shapes(np.shape(v[0]),
                                                              tuple(int(s) for s in v[1]))).copy()
        if op == "Range":
            return np.arange(v[0], v[1], v[2])
        if op == "Where":
            return np.where(v[0], v[1], v[2])
        if op == "ReduceProd":
            return np.prod(v[0], keepdims=bool(a.get("keepdims", 1)))
        ops = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "MatMul": np.matmul,
               "Sqrt": np.sqrt, "Neg": np.negative, "Reciprocal": np.reciprocal,
               "Pow": np.power, "Floor": np.floor, "Ceil": np.ceil, "Abs": np.abs,
               "Min": np.minimum, "Max": np.maximum, "Equal": np.equal}
        if op in ops:
            return ops[op](*v)
        if op == "Div":
            if all(np.issubdtype(np.asarray(t).dtype, np.integer) for t in v):
                return np.asarray(v[0]) // np.asarray(v[1])
            return np.divide(*v)
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
        groups = int(a.get("group", 1))
        bias = self.const(ins[2]) if len(ins) > 2 and ins[2] else None
        k = (w.shape[2], w.shape[3])
        st = tuple(a.get("strides", (1, 1)))
        dl = tuple(a.get("dilations", (1, 1)))
        pad = self._hw_padding(node, a, x, k, st, dl)
        return self.b.conv2d(self.nchw(node, x), w.transpose(2, 3, 1, 0), bias, st, pad, dl,
                             name=name, groups=groups)

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
        src = self.nchw(node, x)
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
        if node.op_type == "MaxPool":
            if len(node.output) > 1 and node.output[1]:
                raise self.err(node, "the Indices output is not supported")
            return self.b.maxpool(src, k, st, pad, name=name)
        return self.b.avgpool(src, k, st, pad, bool(int(a.get("count_include_pad", 0))),
                              name=name)

    def reduce_mean(self, node, a, ins, x, name) -> _Tensor:
        axes = a.get("axes")
        if axes is None and len(ins) > 1 and ins[1]:
            axes = self.const(ins[1])
            if axes is None:
                raise self.err(node, "the axes must be a constant")
        axes = {int(v) % 4 for v in np.ravel(axes)} if axes is not None else None
        spatial = {1, 2} if x.nhwc else {2, 3}
        if x.rank != 4 or axes != spatial:
            raise self.err(node, f"only a mean over the two spatial axes (a global average "
                                 f"pool) is supported, got axes {sorted(axes or [])}")
        return _Tensor(self.b.global_avgpool(self.plain(node, x), name=name), 2)

    def flatten(self, node, a, ins, x, name) -> _Tensor:
        op = node.op_type
        s = self.b.shape(x.layer)
        size = int(np.prod(s))
        if op == "Flatten":
            if int(a.get("axis", 1)) != 1:
                raise self.err(node, f"axis={a.get('axis')} not supported (axis 1 only)")
        elif op == "Squeeze":
            axes = a.get("axes") if len(ins) < 2 else self.const(ins[1])
            if x.rank == 2:
                return x
            if len(s) == 3 and s[0] * s[1] == 1:
                return _Tensor(self.b.flatten(x.layer, name=name), 2)
            raise self.err(node, f"squeezing axes {axes} of a {s} map is not supported")
        else:
            shape = self.const(ins[1]) if len(ins) > 1 else np.asarray(a.get("shape"))
            if shape is None:
                raise self.err(node, "the target shape must be a constant (or computed from "
                                     "Shape, which is folded)")
            cur = self.onnx_shape(x)
            shape = [cur[k] if int(v) == 0 else int(v) for k, v in enumerate(shape)]
            if shape == [-1] and x.affine is None:  # the whole batch on one axis
                return _Tensor(x.layer, 1, batchflat=x)
            if len(shape) == 4 and x.rank == 4:
                if shape[1:] == cur[1:]:
                    return x
                # one channel: NHWC ↔ NCHW is a reshape (tf2onnx writes it so)
                if x.nhwc and cur[3] == 1 and shape[1:] == [1, cur[1], cur[2]]:
                    return x.but(nhwc=False)
                if not x.nhwc and cur[1] == 1 and shape[1:] == [cur[2], cur[3], 1]:
                    return x.but(nhwc=True)
            if len(shape) != 2 or (shape[1] not in (-1, size) and shape[0] not in (-1, 1)) \
                    or (shape[1] == -1 and shape[0] not in (-1, 1)) \
                    or (shape[0] == -1 and shape[1] != size):
                raise self.err(node, f"reshape to {shape} not supported (only a flatten to "
                                     f"(N, {size}))")
        if x.rank == 2 or len(s) == 1:
            return _Tensor(x.layer, 2, x.chw)
        y = self.b.flatten(x.layer, name=name)
        h, w, c = s
        chw = None if (x.nhwc or c == 1 or h * w == 1) else (c, h, w)
        return _Tensor(y, 2, chw)

    def gather(self, node, a, ins, x, name) -> _Tensor:
        """``Gather(Reshape(x, [-1]), indices, axis=0)`` with indices computed from the batch
        size (PyTorch's dynamo exporter writes ``flatten``/``view`` of some tensors as such an
        ``as_strided``).  Read only when it is provably a plain per-sample reshape of ``x``:
        the index sub-graph is folded again at batch sizes 2 and 3, and sample ``n`` must read
        exactly the elements ``n·S … n·S + S − 1`` of the flattened batch (S = per-sample size)
        in order; the result is then ``x`` reshaped to the indices' per-sample shape.  Anything
        else (a permutation, a crop, a mix of samples) is refused."""
        if x.batchflat is None or ins[0] not in self.t or len(ins) != 2 \
                or ins[1] not in self.consts or int(a.get("axis", 0)) != 0:
            raise self.err(node, "only a Gather on axis 0 of a batch-flattened tensor "
                                 "(Reshape to [-1]) with indices computed from shapes is read "
                                 "on computed tensors")
        src = x.batchflat
        per = self.onnx_shape(src)[1:]
        S = int(np.prod(per))
        rest = None
        for batch in (1, 2, 3):
            idx = np.asarray(self.consts[ins[1]] if batch == 1
                             else self.const_at_batch(ins[1], batch, {}))
            if not np.issubdtype(idx.dtype, np.integer) or idx.ndim < 1 \
                    or idx.shape[0] != batch or int(np.prod(idx.shape[1:])) != S:
                raise self.err(node, f"at batch size {batch} the indices have shape "
                                     f"{list(idx.shape)}: not one block of {S} elements per "
                                     f"sample (only a per-sample reshape is supported)")
            want = (np.arange(batch, dtype=np.int64)[:, None] * S
                    + np.arange(S, dtype=np.int64)[None, :]).reshape(idx.shape)
            if not np.array_equal(idx, want):
                raise self.err(node, f"at batch size {batch} the indices do not read each "
                                     f"sample's {S} elements in order (a permutation or crop "
                                     f"of the flattened tensor, not a reshape): not supported")
            rest = list(idx.shape[1:])
        # a plain reshape of src to (N, *rest)
        if rest == per or (src.rank == 2 and rest[:1] == [S] and all(v == 1 for v in rest[1:])):
            return src
        if len(rest) == 1:  # a flatten to (N, S)
            s = self.b.shape(src.layer)
            if src.rank == 2 or len(s) == 1:
                return _Tensor(src.layer, 2, src.chw)
            y = self.b.flatten(src.layer, name=name)
            h, w, c = s
            chw = None if (src.nhwc or c == 1 or h * w == 1) else (c, h, w)
            return _Tensor(y, 2, chw)
        raise self.err(node, f"a per-sample reshape of {per} to {rest} is not supported (only "
                             f"to the same shape or a flatten)")

    def arith(self, node, ins, name) -> _Tensor:
        op = node.op_type
        consts = [self.const(n) for n in ins]
        tens = [n for n, c in zip(ins, consts) if c is None]
        if op in ("Add", "Sum") and len(tens) == len(ins):
            ts = [self.tensor(node, n) for n in ins]
            if len({(t.rank, t.nhwc) for t in ts}) != 1:
                raise self.err(node, "adds tensors of different layouts")
            return ts[0].but(layer=self.b.add(*[self.plain(node, t) for t in ts], name=name),
                             chw=None)
        if len(tens) != 1 or len(ins) != 2:
            raise self.err(node, "only tensor+tensor or tensor∘constant forms are supported")
        x = self.tensor(node, tens[0])
        c = np.asarray([c for c in consts if c is not None][0], dtype=np.float64)
        if op in ("Sub", "Div") and ins[0] != tens[0]:
            raise self.err(node, f"constant {'−' if op == 'Sub' else '÷'} tensor is not "
                                 f"supported")
        src = self.plain(node, x)
        ch = self.b.shape(src)[-1]
        vec = self.channel_vector(node, c, x, ch)
        if op in ("Mul", "Div"):
            vec = vec if op == "Mul" else 1.0 / vec
            return x.but(layer=self.b.batchnorm(src, vec, None, None, None, 0.0, name=name))
        if op == "Sub":
            vec = -vec
        layer = self.b.layer(src)
        if layer.kind in ("conv2d", "dense") and self.uses.get(tens[0], 0) == 1:
            layer.weights["bias"] = layer.weights.get("bias", np.zeros(ch)) + vec
            return x
        return x.but(layer=self.b.batchnorm(src, None, vec, None, None, 0.0, name=name))

    def concat(self, node, a, ins, x, name) -> _Tensor:
        axis = int(a.get("axis", 1))
        ts = [self.tensor(node, n) for n in ins]
        if len({(t.rank, t.nhwc) for t in ts}) != 1:
            raise self.err(node, "concatenates tensors of different layouts")
        ok = (1, -3) if (x.rank == 4 and not x.nhwc) else ((3, -1) if x.rank == 4 else (1, -1))
        if axis not in ok:
            raise self.err(node, f"concatenation on axis {axis} is not the channel axis")
        return ts[0].but(layer=self.b.concat(*[self.plain(node, t) for t in ts], name=name),
                         chw=None)

    def pad(self, node, a, ins, x, name):
        mode = a.get("mode", b"constant")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        pads = a.get("pads") if self.opset < 11 else self.const(ins[1])
        value = a.get("value", 0.0) if self.opset < 11 else (
            self.const(ins[2]) if len(ins) > 2 and ins[2] else 0.0)
        if mode != "constant" or pads is None or float(np.asarray(value)) != 0.0:
            raise self.err(node, "only constant zero padding with constant pads is supported")
        p = [int(v) for v in pads]
        hy, wx = (1, 2) if x.nhwc else (2, 3)
        other = [k for k in range(4) if k not in (hy, wx)]
        if len(p) != 8 or x.rank != 4 or any(p[k] or p[k + 4] for k in other) or min(p) < 0:
            raise self.err(node, f"pads {p}: only non-negative padding of H and W is supported")
        return self.b.zeropad(self.plain(node, x), (p[hy], p[hy + 4], p[wx], p[wx + 4]),
                              name=name)

    def head(self, node, a, x, name) -> _Tensor:
        op = node.op_type
        default = 0 if op == "ArgMax" else (1 if self.opset < 13 else -1)
        axis = int(a.get("axis", default))
        if x.rank != 2 or axis not in (1, -1):
            raise self.err(node, f"a classifier head over axis {axis} of a rank-{x.rank} "
                                 f"tensor; only the class axis of (N, n) is supported")
        if op == "ArgMax" and int(a.get("select_last_index", 0)):
            raise self.err(node, "select_last_index=1 (ties to the last index) not supported")
        y = self.b.softmax(self.plain(node, x), name=name, mode=_HEADS[op])
        return _Tensor(y, 2, head=True)


def load_onnx(path, input_scale: float | None = None) -> Graph:
    """Import an ONNX model file as a float :class:`Graph` (the model's input layout kept)."""
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


__all__ = ["load_onnx", "SUPPORTED"]
