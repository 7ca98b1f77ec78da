"""Build a :class:`~converter.graph.Graph` from NumPy arrays, one validated call per layer.

    b = GraphBuilder(input_shape=(28, 28, 1))
    x = b.input()
    x = b.conv2d(x, kernel, bias, strides=1, padding="same")
    x = b.relu(x)
    x = b.maxpool(x, 2)
    x = b.flatten(x)
    x = b.dense(x, W, bias)
    g = b.build(output=x)

Every method takes and returns layer *names* (strings), checks shapes at once (ConversionError
naming the layer) and copies the arrays it is given to float64.  The importers use this builder
too, so every route into the IR goes through the same checks.

Kernels are HWIO (kh, kw, cin, cout) for convolutions and (nin, nout) for dense layers; tensors
are channels-last.  ``padding`` accepts ``"valid"``, ``"same"`` (TensorFlow rule: the odd pixel
at the bottom/right), an int, a pair ``(ph, pw)`` (symmetric) or explicit ``(t, b, l, r)``.
"""

from __future__ import annotations

import numpy as np

from hw_models.errors import ConversionError
from .graph import Graph, Layer, finite_weight, infer_shape, pair, same_padding_2d


class GraphBuilder:
    """Accumulates layers in topological order; :meth:`build` returns the :class:`Graph`.

    ``input_shape`` is the per-sample shape in the *original* layout ``input_layout``
    (``"HWC"`` default for 3-D, ``"CHW"``, ``"HW"`` default for 2-D, ``"C"`` default for 1-D).
    """

    def __init__(self, input_shape, input_layout: str | None = None, name: str = ""):
        shp = tuple(int(v) for v in input_shape)
        if input_layout is None:
            input_layout = {3: "HWC", 2: "HW", 1: "C"}.get(len(shp))
        if input_layout is None or len(input_layout) != len(shp) or min(shp, default=0) < 1:
            raise ConversionError(f"input_shape {input_shape} does not fit layout "
                                  f"{input_layout!r} (use HWC, CHW, HW or C with positive sizes)")
        self.input_shape = shp
        self.input_layout = input_layout
        if input_layout == "CHW":
            self.internal_shape = (shp[1], shp[2], shp[0])
        elif input_layout == "HW":
            self.internal_shape = shp + (1,)
        else:
            self.internal_shape = shp
        self.name = name
        self._layers: dict[str, Layer] = {}
        self._counts: dict[str, int] = {}

    # -- plumbing ----------------------------------------------------------------------------
    def _name(self, kind: str, name: str | None) -> str:
        if name is None:
            n = self._counts.get(kind, 0)
            while True:
                n += 1
                name = f"{kind}_{n}"
                if name not in self._layers:
                    break
            self._counts[kind] = n
        if not isinstance(name, str) or not name:
            raise ConversionError(f"layer names must be non-empty strings, got {name!r}")
        if name in self._layers:
            raise ConversionError(f"duplicate layer name {name!r}")
        return name

    def _add(self, kind: str, inputs: list, params: dict | None = None,
             weights: dict | None = None, name: str | None = None) -> str:
        name = self._name(kind, name)
        for src in inputs:
            if src not in self._layers:
                raise ConversionError(f"layer {name!r} ({kind}): unknown input {src!r}")
        if kind != "input" and not self._layers:
            raise ConversionError(f"layer {name!r}: call input() first")
        w = {}
        for k, v in (weights or {}).items():
            if v is None:
                continue
            w[k] = finite_weight(v, name, kind, k, copy=True)
        params = dict(params or {})
        shape = infer_shape(kind, params, w, [self._layers[s].shape for s in inputs], name)
        self._layers[name] = Layer(name, kind, list(inputs), params, w, shape)
        return name

    def shape(self, x: str) -> tuple:
        """Per-sample (internal, channels-last) shape of layer ``x``."""
        if x not in self._layers:
            raise ConversionError(f"unknown layer {x!r}")
        return self._layers[x].shape

    def layer(self, x: str) -> Layer:
        """The layer object built so far (importers may adjust its weights in place)."""
        if x not in self._layers:
            raise ConversionError(f"unknown layer {x!r}")
        return self._layers[x]

    def __contains__(self, x: str) -> bool:
        return x in self._layers

    def _padding(self, x: str, padding, window, strides, dilation=(1, 1), name="?") -> tuple:
        if isinstance(padding, str):
            p = padding.lower()
            if p == "valid":
                return (0, 0, 0, 0)
            if p == "same":
                s = self.shape(x)
                if len(s) != 3:
                    raise ConversionError(f"layer {name!r}: padding 'same' needs HWC input, "
                                          f"got {s}")
                return same_padding_2d(s[:2], window, strides, dilation)
            raise ConversionError(f"layer {name!r}: unknown padding {padding!r}")
        if np.isscalar(padding):
            return (int(padding),) * 4
        vals = tuple(int(v) for v in np.ravel(padding))
        if len(vals) == 2:
            return (vals[0], vals[0], vals[1], vals[1])
        if len(vals) == 4:
            return vals
        raise ConversionError(f"layer {name!r}: padding must be 'valid', 'same', an int, "
                              f"(ph, pw) or (t, b, l, r); got {padding!r}")

    # -- layers ------------------------------------------------------------------------------
    def input(self, name: str = "input") -> str:
        """The input layer (exactly one, first)."""
        if self._layers:
            raise ConversionError("input() must be the first and only input layer")
        return self._add("input", [], {"shape": self.internal_shape}, name=name)

    def conv2d(self, x: str, kernel, bias=None, strides=1, padding="valid", dilation=1,
               name: str | None = None, groups: int = 1) -> str:
        """2-D cross-correlation, kernel HWIO (kh, kw, cin / groups, cout); ``groups`` > 1 is a
        grouped convolution (``groups`` = cin: depthwise, see :mod:`converter.graph`)."""
        k = np.asarray(kernel)
        if k.ndim != 4:
            raise ConversionError(f"conv2d {name or ''}: kernel must be 4-D HWIO, got shape "
                                  f"{k.shape}")
        st, dl = pair(strides, "strides", name), pair(dilation, "dilation", name)
        pad = self._padding(x, padding, k.shape[:2], st, dl, name)
        params = {"strides": st, "padding": pad, "dilation": dl}
        if int(groups) != 1:
            params["groups"] = int(groups)
        return self._add("conv2d", [x], params, {"kernel": k, "bias": bias}, name)

    def dense(self, x: str, kernel, bias=None, name: str | None = None) -> str:
        """``y = x @ kernel + bias``, kernel (nin, nout)."""
        return self._add("dense", [x], {}, {"kernel": kernel, "bias": bias}, name)

    def relu(self, x: str, max_value: float | None = None, name: str | None = None,
             levels: int | None = None) -> str:
        """ReLU, clipped at ``max_value`` if given; with ``levels`` L the QCFS activation
        ``λ·clip(⌊x·L/λ + ½⌋/L, 0, 1)`` with λ = ``max_value`` (:mod:`converter.qcfs`)."""
        params = {} if max_value is None else {"max_value": float(max_value)}
        if levels is not None:
            from .qcfs import check_qcfs
            params.update(check_qcfs(max_value, levels, name or x))
        return self._add("relu", [x], params, name=name)

    def _pool(self, kind, x, pool, strides, padding, name, extra):
        pl = pair(pool, "pool", name)
        st = pl if strides is None else pair(strides, "strides", name)
        pad = self._padding(x, padding, pl, st, name=name)
        return self._add(kind, [x], dict({"pool": pl, "strides": st, "padding": pad}, **extra),
                         name=name)

    def maxpool(self, x: str, pool, strides=None, padding="valid", name: str | None = None) -> str:
        """Max pooling; ``strides`` defaults to ``pool``; padded cells are −∞."""
        return self._pool("maxpool", x, pool, strides, padding, name, {})

    def avgpool(self, x: str, pool, strides=None, padding="valid",
                count_include_pad: bool | None = None, name: str | None = None) -> str:
        """Average pooling.  ``count_include_pad`` defaults to False for ``padding="same"``
        (TensorFlow) and True for explicit padding (PyTorch)."""
        if count_include_pad is None:
            count_include_pad = not (isinstance(padding, str) and padding.lower() == "same")
        return self._pool("avgpool", x, pool, strides, padding, name,
                          {"count_include_pad": bool(count_include_pad)})

    def global_avgpool(self, x: str, name: str | None = None) -> str:
        return self._add("global_avgpool", [x], name=name)

    def batchnorm(self, x: str, gamma=None, beta=None, mean=None, var=None,
                  epsilon: float = 1e-3, name: str | None = None) -> str:
        """Inference batch normalisation on the channel (last) axis; missing gamma/beta/mean/var
        default to 1/0/0/1."""
        c = self.shape(x)[-1]
        w = {"gamma": np.ones(c) if gamma is None else gamma,
             "beta": np.zeros(c) if beta is None else beta,
             "mean": np.zeros(c) if mean is None else mean,
             "var": np.ones(c) if var is None else var}
        if float(epsilon) < 0:
            raise ConversionError(f"batchnorm {name or ''}: epsilon must be >= 0, got {epsilon}")
        if np.any(np.asarray(w["var"], dtype=float) + float(epsilon) <= 0):
            raise ConversionError(f"batchnorm {name or ''}: var + epsilon must be > 0")
        return self._add("batchnorm", [x], {"epsilon": float(epsilon)}, w, name)

    def flatten(self, x: str, name: str | None = None) -> str:
        """Flatten HWC in C order."""
        return self._add("flatten", [x], name=name)

    def reshape(self, x: str, target_shape, name: str | None = None) -> str:
        return self._add("reshape", [x], {"target_shape": tuple(int(v) for v in target_shape)},
                         name=name)

    def add(self, *xs: str, name: str | None = None) -> str:
        if len(xs) < 2:
            raise ConversionError(f"add {name or ''}: needs at least two inputs")
        return self._add("add", list(xs), name=name)

    def concat(self, *xs: str, name: str | None = None) -> str:
        """Concatenate on the channel (last) axis."""
        if len(xs) < 1:
            raise ConversionError(f"concat {name or ''}: needs inputs")
        return self._add("concat", list(xs), name=name)

    def zeropad(self, x: str, padding, name: str | None = None) -> str:
        """Zero padding of H and W: an int, (ph, pw) or (t, b, l, r)."""
        pad = self._padding(x, padding, (1, 1), (1, 1), name=name)
        return self._add("zeropad", [x], {"padding": pad}, name=name)

    def softmax(self, x: str, name: str | None = None, mode: str = "softmax") -> str:
        """Classifier head (must be the output): ``mode`` softmax, log_softmax or argmax."""
        return self._add("softmax", [x], {} if mode == "softmax" else {"mode": mode}, name=name)

    # -- result ------------------------------------------------------------------------------
    def build(self, output: str | None = None, input_scale: float | None = None) -> Graph:
        """The :class:`Graph` ending at ``output`` (default: the last layer added).  Layers not
        feeding ``output`` are dropped."""
        if not self._layers:
            raise ConversionError("nothing to build: call input() first")
        names = list(self._layers)
        output = names[-1] if output is None else output
        if output not in self._layers:
            raise ConversionError(f"output {output!r} is not a layer of this builder")
        needed, stack = set(), [output]
        while stack:
            n = stack.pop()
            if n not in needed:
                needed.add(n)
                stack.extend(self._layers[n].inputs)
        if names[0] not in needed:
            raise ConversionError(f"output {output!r} does not depend on the input")
        layers = [self._layers[n].copy() for n in names if n in needed]
        return Graph(layers, output_name=output, input_shape=self.input_shape,
                     input_layout=self.input_layout, input_scale=input_scale, name=self.name)
