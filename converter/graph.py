"""The float graph IR: a DAG of layers and its NumPy forward pass (the float reference).

Every importer (Keras, ONNX, NIR, the Python builder) produces a :class:`Graph`; every conversion
pass reads one and returns a new one.  Tensors are **channels-last** inside the graph: a 3-D
activation of one sample has shape ``(H, W, C)``, a vector has shape ``(n,)``; batches put the
sample axis first (``(N, H, W, C)``).  The original model's input layout is remembered
(:attr:`Graph.input_layout`) so that :meth:`Graph.predict` takes data exactly as the original
framework did.

Layer kinds and their exact maths (``x`` is the input of one sample, ``y`` the output; ``x1 … xk``
the inputs of a multi-input layer):

``input``
    ``y = x`` (after :meth:`Graph.to_internal`).  ``shape`` is the internal (HWC) shape.
``conv2d``
    weights ``kernel`` (kh, kw, cin / G, cout) HWIO, optional ``bias`` (cout,) — or (Ho, Wo, cout),
    one value per output neuron, as folding an input offset into a padded convolution gives
    (:func:`converter.passes.fold_batchnorm`); params ``strides``
    (sh, sw), ``padding`` (top, bottom, left, right) explicit zero padding, ``dilation`` (dh, dw),
    ``groups`` G (default 1; G = cin: depthwise).  Cross-correlation; with cg = cin / G input
    and og = cout / G output channels per group and g = ⌊o / og⌋ the group of output o:
    ``y[i, j, o] = bias[o] + Σ_{a,b,c<cg} xp[i·sh + a·dh, j·sw + b·dw, g·cg + c] · kernel[a, b, c, o]``
    with ``xp`` the zero-padded input; ``Ho = ⌊(H + t + b − dh·(kh−1) − 1) / sh⌋ + 1``.
``dense``
    weights ``kernel`` (nin, nout), optional ``bias`` (nout,): ``y = x @ kernel + bias``.
``avgpool``
    params ``pool`` (ph, pw), ``strides`` (sh, sw), ``padding`` (t, b, l, r), optional
    ``count_include_pad`` (default ``True``).  ``y[i, j, c]`` = mean of the window of the
    zero-padded input; with ``count_include_pad=True`` the padded zeros count in the divisor
    (always ``ph·pw``: PyTorch's default, ONNX ``count_include_pad=1``), with ``False`` the divisor
    is the number of real input pixels in the window (Keras/TensorFlow ``padding="same"``, ONNX
    default).  Without padding both agree.
``maxpool``
    same params as ``avgpool`` (no ``count_include_pad``); padding is ``−∞``: max over the window.
``global_avgpool``
    ``y[c] = mean_{i,j} x[i, j, c]``; output shape ``(C,)``.
``batchnorm``
    weights ``gamma``, ``beta``, ``mean``, ``var`` (C,), param ``epsilon`` (the layer's own):
    ``y = gamma · (x − mean) / sqrt(var + epsilon) + beta`` along the last (channel) axis.
``flatten``
    ``y = x.reshape(-1)`` in C order over the internal HWC layout.  Importers of channels-first
    models permute the rows of a following dense kernel, so no runtime transpose is needed.
``reshape``
    param ``target_shape`` (per-sample, internal layout): ``y = x.reshape(target_shape)``.
``relu``
    ``y = max(x, 0)``, then ``min(y, max_value)`` if param ``max_value`` is given (ReLU6, Clip).
    With param ``levels`` L (and ``max_value`` λ) it is the QCFS activation of Bu et al. 2022
    (:mod:`converter.qcfs`): ``y = λ · clip(⌊x · L/λ + ½⌋ / L, 0, 1)``.
``add``
    ``y = x1 + x2 + … + xk`` (equal shapes).
``concat``
    ``y = concatenate([x1, …, xk], axis=-1)`` (channel axis; all other dims equal).
``zeropad``
    param ``padding`` (t, b, l, r): zeros added around H and W.
``softmax``
    a classifier head, only allowed as the output layer; param ``mode`` (default ``softmax``):
    ``y = exp(x − max x) / Σ exp(x − max x)`` over the last axis; ``log_softmax``: ``log`` of
    that; ``argmax``: the one-hot vector of the first largest logit (ONNX ``ArgMax``'s class,
    kept as a vector so the shape is the logits').  All three rank the classes as the logits
    do; :meth:`Graph.predict` returns the logits *before* the head.

Dropout never reaches the graph (importers drop it).  An activation fused into a framework layer
(Keras ``Conv2D(..., activation="relu")``) becomes a separate ``relu`` layer named
``<layer>_relu`` (and ``<layer>_softmax`` for a fused softmax).
"""

from __future__ import annotations

import copy as _copy
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import numpy as np

from hw_models.errors import ConversionError, DataError, NetworkError
from hw_models.inputspec import InputSpec
from hw_models.network import conv_output_size

KINDS = ("input", "conv2d", "dense", "avgpool", "maxpool", "global_avgpool", "batchnorm",
         "flatten", "reshape", "relu", "add", "concat", "zeropad", "softmax")
#: kinds that take several inputs; every other kind takes exactly one (``input`` takes none)
MULTI_INPUT = ("add", "concat")
#: classifier heads a ``softmax`` layer stands for (param ``mode``)
HEAD_MODES = ("softmax", "log_softmax", "argmax")
#: input layouts understood by :meth:`Graph.to_internal`
LAYOUTS = ("HWC", "CHW", "HW", "C")


@dataclass
class Layer:
    """One node of the graph.  See the module docstring for the maths of each ``kind``.

    ``shape`` is the per-sample output shape in the internal layout (HWC or (n,)).
    """

    name: str
    kind: str
    inputs: list = field(default_factory=list)
    params: dict = field(default_factory=dict)
    weights: dict = field(default_factory=dict)
    shape: tuple = ()

    def copy(self) -> "Layer":
        """A deep copy (weights copied too)."""
        return Layer(self.name, self.kind, list(self.inputs), _copy.deepcopy(self.params),
                     {k: np.array(v, copy=True) for k, v in self.weights.items()},
                     tuple(self.shape))


# ----------------------------------------------------------------------------------------------
# padding helpers shared by the importers and the builder

def pair(value, what: str = "value", name: str = "?") -> tuple:
    """``3`` → ``(3, 3)``; ``(2, 3)`` → ``(2, 3)``; anything else raises ConversionError."""
    if np.isscalar(value):
        return (int(value), int(value))
    vals = tuple(int(v) for v in value)
    if len(vals) != 2:
        raise ConversionError(f"layer {name!r}: {what} must be an int or a pair, got {value!r}")
    return vals


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1,
                 lower: bool = False) -> tuple[int, int]:
    """TensorFlow/ONNX ``SAME`` padding ``(before, after)`` for one spatial axis.

    Output size is ``ceil(size / stride)``; the odd extra pixel goes *after* (bottom/right,
    TensorFlow and ONNX ``SAME_UPPER``) or *before* when ``lower`` (ONNX ``SAME_LOWER``).
    """
    eff = (kernel - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + eff - size, 0)
    small, big = total // 2, total - total // 2
    return (big, small) if lower else (small, big)


def same_padding_2d(hw: tuple, pool: tuple, strides: tuple, dilation=(1, 1),
                    lower: bool = False) -> tuple[int, int, int, int]:
    """:func:`same_padding` for H and W, as ``(top, bottom, left, right)``."""
    t, b = same_padding(hw[0], pool[0], strides[0], dilation[0], lower)
    l, r = same_padding(hw[1], pool[1], strides[1], dilation[1], lower)
    return (t, b, l, r)


# ----------------------------------------------------------------------------------------------
# shape inference

def finite_weight(arr, layer: str, kind: str, wname: str, copy: bool = False) -> np.ndarray:
    """``arr`` as float64 (a copy if ``copy``); ConversionError naming the layer if it holds
    NaN or infinite values."""
    arr = np.array(arr, dtype=np.float64) if copy else np.asarray(arr, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ConversionError(f"layer {layer!r} ({kind}): weight {wname!r} contains NaN or "
                              f"infinite values")
    return arr


def _window_out(size: int, k: int, s: int, before: int, after: int, d: int, name: str,
                what: str) -> int:
    eff = (k - 1) * d + 1
    if size + before + after < eff:
        raise ConversionError(f"layer {name!r}: {what} window {eff} larger than padded input "
                              f"{size + before + after}")
    return conv_output_size(size, k, s, before, after, d)


def _spatial(kind: str, name: str, s: tuple, params: dict, k: tuple) -> tuple[int, int]:
    if len(s) != 3:
        raise ConversionError(f"layer {name!r} ({kind}) needs a 3-D HWC input, got shape {s}")
    st = pair(params.get("strides", (1, 1)), "strides", name)
    pad = tuple(int(p) for p in params.get("padding", (0, 0, 0, 0)))
    dil = pair(params.get("dilation", (1, 1)), "dilation", name)
    if len(pad) != 4 or min(pad) < 0 or min(st) < 1 or min(dil) < 1:
        raise ConversionError(f"layer {name!r} ({kind}): bad strides {st}, padding {pad} "
                              f"or dilation {dil}")
    ho = _window_out(s[0], k[0], st[0], pad[0], pad[1], dil[0], name, kind)
    wo = _window_out(s[1], k[1], st[1], pad[2], pad[3], dil[1], name, kind)
    return ho, wo


def infer_shape(kind: str, params: dict, weights: dict, input_shapes: list,
                name: str = "?") -> tuple:
    """Per-sample output shape of a layer from its inputs' shapes; ConversionError on mismatch."""
    if kind not in KINDS:
        raise ConversionError(f"layer {name!r}: unknown layer kind {kind!r} (known: {KINDS})")
    if kind == "input":
        return tuple(int(v) for v in params["shape"])
    if kind in MULTI_INPUT:
        if len(input_shapes) < 1:
            raise ConversionError(f"layer {name!r} ({kind}) needs at least one input")
    elif len(input_shapes) != 1:
        raise ConversionError(f"layer {name!r} ({kind}) takes exactly one input, "
                              f"got {len(input_shapes)}")
    s = tuple(input_shapes[0])
    if kind == "conv2d":
        k = weights.get("kernel")
        if k is None or k.ndim != 4:
            raise ConversionError(f"layer {name!r} (conv2d) needs a 4-D HWIO 'kernel'")
        ho, wo = _spatial(kind, name, s, params, k.shape[:2])
        g = params.get("groups", 1)
        if isinstance(g, bool) or not isinstance(g, (int, np.integer)) or g < 1 \
                or k.shape[3] % g:
            raise ConversionError(f"layer {name!r} (conv2d): groups must be a positive integer "
                                  f"dividing the {k.shape[3]} output channels, got {g!r}")
        if k.shape[2] * g != s[2]:
            raise ConversionError(f"layer {name!r} (conv2d): kernel expects {k.shape[2] * g} "
                                  f"input channels ({k.shape[2]} per group × groups={g}), input "
                                  f"has {s[2]} (shape {s})")
        _check_bias(name, weights, k.shape[3], (ho, wo, int(k.shape[3])))
        return (ho, wo, int(k.shape[3]))
    if kind == "dense":
        k = weights.get("kernel")
        if k is None or k.ndim != 2:
            raise ConversionError(f"layer {name!r} (dense) needs a 2-D 'kernel' (nin, nout)")
        if len(s) != 1 or s[0] != k.shape[0]:
            raise ConversionError(f"layer {name!r} (dense): kernel expects input ({k.shape[0]},),"
                                  f" got shape {s} (add a flatten layer?)")
        _check_bias(name, weights, k.shape[1])
        return (int(k.shape[1]),)
    if kind in ("avgpool", "maxpool"):
        pool = pair(params.get("pool"), "pool", name)
        ho, wo = _spatial(kind, name, s, dict(params, dilation=(1, 1)), pool)
        return (ho, wo, s[2])
    if kind == "global_avgpool":
        if len(s) != 3:
            raise ConversionError(f"layer {name!r} (global_avgpool) needs HWC input, got {s}")
        return (s[2],)
    if kind == "batchnorm":
        for w in ("gamma", "beta", "mean", "var"):
            if w not in weights or weights[w].shape != (s[-1],):
                got = None if w not in weights else weights[w].shape
                raise ConversionError(f"layer {name!r} (batchnorm): weight {w!r} must have shape "
                                      f"({s[-1]},) for input {s}, got {got}")
        if float(params.get("epsilon", -1)) < 0:
            raise ConversionError(f"layer {name!r} (batchnorm) needs a non-negative 'epsilon'")
        return s
    if kind == "flatten":
        return (int(np.prod(s)),)
    if kind == "reshape":
        tgt = tuple(int(v) for v in params["target_shape"])
        if -1 in tgt:
            known = int(np.prod([v for v in tgt if v != -1]))
            tgt = tuple(int(np.prod(s)) // max(known, 1) if v == -1 else v for v in tgt)
        if int(np.prod(tgt)) != int(np.prod(s)):
            raise ConversionError(f"layer {name!r} (reshape): cannot reshape {s} to {tgt}")
        return tgt
    if kind == "softmax" and params.get("mode", "softmax") not in HEAD_MODES:
        raise ConversionError(f"layer {name!r} (softmax): mode must be one of {HEAD_MODES}, "
                              f"got {params.get('mode')!r}")
    if kind in ("relu", "softmax"):
        return s
    if kind == "add":
        for other in input_shapes[1:]:
            if tuple(other) != s:
                raise ConversionError(f"layer {name!r} (add): input shapes differ: "
                                      f"{[tuple(t) for t in input_shapes]}")
        return s
    if kind == "concat":
        for other in input_shapes[1:]:
            if len(other) != len(s) or tuple(other[:-1]) != s[:-1]:
                raise ConversionError(f"layer {name!r} (concat): input shapes differ outside "
                                      f"the channel axis: {[tuple(t) for t in input_shapes]}")
        return s[:-1] + (int(sum(t[-1] for t in input_shapes)),)
    if kind == "zeropad":
        pad = tuple(int(p) for p in params["padding"])
        if len(s) != 3 or len(pad) != 4 or min(pad) < 0:
            raise ConversionError(f"layer {name!r} (zeropad): needs HWC input and 4 padding "
                                  f"values >= 0, got input {s}, padding {pad}")
        return (s[0] + pad[0] + pad[1], s[1] + pad[2] + pad[3], s[2])
    raise ConversionError(f"layer {name!r}: no shape rule for kind {kind!r}")  # pragma: no cover


def kernel_in_channels(kernel_shape: tuple, groups: int = 1) -> np.ndarray:
    """Input channel of every ``(c, o)`` entry of a (kh, kw, cin/G, cout) kernel: int array
    (cin/G, cout) holding ``⌊o / (cout/G)⌋ · cin/G + c`` (``c`` itself when G = 1)."""
    cg, cout = int(kernel_shape[2]), int(kernel_shape[3])
    og = cout // groups
    return (np.arange(cout)[None, :] // og) * cg + np.arange(cg)[:, None]


def _check_bias(name: str, weights: dict, n: int, full: tuple | None = None) -> None:
    b = weights.get("bias")
    if b is not None and b.shape != (n,) and b.shape != full:
        raise ConversionError(f"layer {name!r}: bias must have shape ({n},)"
                              f"{'' if full is None else f' or {full}'}, got {b.shape}")


# ----------------------------------------------------------------------------------------------
# float kernels (batched, channels-last)

def _pad(x: np.ndarray, pad: tuple, value: float = 0.0) -> np.ndarray:
    t, b, l, r = pad
    if not any(pad):
        return x
    return np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)), constant_values=value)


#: elements of one im2col buffer (float64: 32 MB); the batch is processed in chunks this size
_COLS_BUDGET = 4_000_000


def conv_taps(xp: np.ndarray, kh: int, kw: int, strides, dilation, out_hw):
    """The kernel taps of a convolution over the padded NHWC input ``xp``: (ky, kx, window)
    with ``window[n, oy, ox, c] = xp[n, oy·sy + ky·dy, ox·sx + kx·dx, c]`` (a view), in the
    (ky, kx) order of an HWIO kernel: the column blocks of im2col."""
    (sh, sw), (dh, dw), (ho, wo) = strides, dilation, out_hw
    for a in range(kh):
        for b in range(kw):
            yield a, b, xp[:, a * dh:a * dh + sh * (ho - 1) + 1:sh,
                           b * dw:b * dw + sw * (wo - 1) + 1:sw, :]


def conv2d(x: np.ndarray, kernel: np.ndarray, bias=None, strides=(1, 1), padding=(0, 0, 0, 0),
           dilation=(1, 1), groups: int = 1) -> np.ndarray:
    """Batched NHWC cross-correlation (see ``conv2d`` in the module docstring).

    im2col in batch chunks of at most ``_COLS_BUDGET`` elements, one matmul per chunk (per
    group: a batched matmul over the groups).
    """
    kh, kw, cin, cout = kernel.shape
    if groups != 1:
        return _conv2d_grouped(x, kernel, bias, strides, padding, dilation, groups)
    sh, sw = strides
    dh, dw = dilation
    xp = _pad(x, padding)
    n, hp, wp, _ = xp.shape
    ho, wo = conv_output_size(hp, kh, sh, 0, 0, dh), conv_output_size(wp, kw, sw, 0, 0, dw)
    dtype = np.result_type(x, kernel)
    k2 = kernel.reshape(kh * kw * cin, cout).astype(dtype, copy=False)
    out = np.empty((n, ho, wo, cout), dtype=dtype)
    step = max(1, _COLS_BUDGET // max(1, ho * wo * kh * kw * cin))
    for s in range(0, n, step):
        xs = xp[s:s + step]
        cols = np.empty((xs.shape[0], ho, wo, kh * kw * cin), dtype=dtype)
        for a, b, win in conv_taps(xs, kh, kw, strides, dilation, (ho, wo)):
            j = (a * kw + b) * cin
            cols[..., j:j + cin] = win
        m = cols.shape[0] * ho * wo
        out[s:s + step] = (cols.reshape(m, -1) @ k2).reshape(cols.shape[0], ho, wo, cout)
    if bias is not None:
        out += bias
    return out


def _conv2d_grouped(x, kernel, bias, strides, padding, dilation, groups):
    """:func:`conv2d` with G groups: per tap, the input's (G, cg) channels times the kernel's
    (G, cg, og) block, summed over taps (no im2col: depthwise kernels are small)."""
    kh, kw, cg, cout = kernel.shape
    G, og = groups, cout // groups
    sh, sw = strides
    dh, dw = dilation
    xp = _pad(x, padding)
    n, hp, wp, _ = xp.shape
    ho, wo = conv_output_size(hp, kh, sh, 0, 0, dh), conv_output_size(wp, kw, sw, 0, 0, dw)
    dtype = np.result_type(x, kernel)
    kg = kernel.reshape(kh, kw, cg, G, og).transpose(0, 1, 3, 2, 4).astype(dtype, copy=False)
    out = np.zeros((n, ho, wo, G, og), dtype=dtype)
    for a, b, win in conv_taps(xp, kh, kw, strides, dilation, (ho, wo)):
        tap = win.reshape(n, ho, wo, G, cg)
        if cg == 1 and og == 1:  # depthwise: an element-wise product
            out[..., 0] += tap[..., 0] * kg[a, b, :, 0, 0]
        else:
            out += np.einsum("nhwgc,gco->nhwgo", tap, kg[a, b])
    out = out.reshape(n, ho, wo, cout)
    if bias is not None:
        out += bias
    return out


def pool2d(x: np.ndarray, pool, strides, padding=(0, 0, 0, 0), mode: str = "max",
           count_include_pad: bool = True) -> np.ndarray:
    """Batched NHWC max or average pooling (see ``avgpool``/``maxpool`` in the module docstring)."""
    ph, pw = pool
    sh, sw = strides
    xp = _pad(x, padding, -np.inf if mode == "max" else 0.0)
    n, hp, wp, c = xp.shape
    ho = (hp - ph) // sh + 1
    wo = (wp - pw) // sw + 1
    out = None
    for _, _, tap in conv_taps(xp, ph, pw, strides, (1, 1), (ho, wo)):
        if out is None:
            out = np.array(tap, copy=True)
        elif mode == "max":
            np.maximum(out, tap, out=out)
        else:
            out += tap
    if mode == "max":
        return out
    if count_include_pad or not any(padding):
        return out / (ph * pw)
    ones = _pad(np.ones((1, x.shape[1], x.shape[2], 1), dtype=out.dtype), padding)
    cnt = np.zeros((1, ho, wo, 1), dtype=out.dtype)
    for _, _, tap in conv_taps(ones, ph, pw, strides, (1, 1), (ho, wo)):
        cnt += tap
    return out / cnt


def softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis."""
    z = np.exp(x - x.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def apply_layer(layer: Layer, xs: list) -> np.ndarray:
    """Output of ``layer`` for its batched inputs ``xs`` (internal layout)."""
    k, p, w = layer.kind, layer.params, layer.weights
    x = xs[0] if xs else None
    if k == "conv2d":
        return conv2d(x, w["kernel"], w.get("bias"), pair(p.get("strides", 1)),
                      tuple(p.get("padding", (0, 0, 0, 0))), pair(p.get("dilation", 1)),
                      int(p.get("groups", 1)))
    if k == "dense":
        y = x @ w["kernel"]
        return y + w["bias"] if w.get("bias") is not None else y
    if k in ("avgpool", "maxpool"):
        return pool2d(x, pair(p["pool"]), pair(p.get("strides", p["pool"])),
                      tuple(p.get("padding", (0, 0, 0, 0))), "max" if k == "maxpool" else "avg",
                      bool(p.get("count_include_pad", True)))
    if k == "global_avgpool":
        return x.mean(axis=(1, 2))
    if k == "batchnorm":
        scale = w["gamma"] / np.sqrt(w["var"] + float(p["epsilon"]))
        return (x - w["mean"]) * scale + w["beta"]
    if k in ("flatten", "reshape"):
        return x.reshape((x.shape[0],) + tuple(layer.shape))
    if k == "relu":
        if p.get("levels") is not None:  # QCFS: λ·clip(⌊x·L/λ + ½⌋/L, 0, 1)
            lam, lv = float(p["max_value"]), int(p["levels"])
            return np.clip(np.floor(x * (lv / lam) + 0.5), 0, lv) * (lam / lv)
        y = np.maximum(x, 0)
        if p.get("max_value") is not None:
            np.minimum(y, float(p["max_value"]), out=y)
        return y
    if k == "add":
        y = np.array(xs[0], copy=True)
        for other in xs[1:]:
            y += other
        return y
    if k == "concat":
        return np.concatenate(xs, axis=-1)
    if k == "zeropad":
        return _pad(x, tuple(p["padding"]))
    if k == "softmax":
        mode = p.get("mode", "softmax")
        if mode == "log_softmax":
            z = x - x.max(axis=-1, keepdims=True)
            return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
        if mode == "argmax":
            return (np.arange(x.shape[-1]) == x.argmax(axis=-1)[..., None]).astype(x.dtype)
        return softmax(x)
    if k == "input":
        return x
    raise ConversionError(f"layer {layer.name!r}: cannot run kind {k!r}")  # pragma: no cover


# ----------------------------------------------------------------------------------------------

class Graph:
    """A float network: layers in topological order, one input, one output.

    Parameters
    ----------
    layers : iterable of :class:`Layer`, in topological order, the first of kind ``input``.
    output_name : name of the output layer (default: the last layer).
    input_shape : per-sample shape the *original* model takes, e.g. ``(1, 28, 28)`` for an NCHW
        model, ``(28, 28, 1)`` for NHWC (default: the input layer's internal shape).
    input_layout : ``"HWC"``, ``"CHW"``, ``"HW"`` (2-D images, a channel axis of 1 is added) or
        ``"C"`` (vectors).  Default ``"HWC"`` for 3-D inputs, ``"C"`` for 1-D.
    input_scale : multiplier from raw integer data (e.g. uint8 pixels) to the model's input
        units, e.g. ``1/255``; ``None`` when unknown.
    input_spec : a :class:`hw_models.inputspec.InputSpec` describing the input completely
        (shape, layout, raw range, scale and offset, encoding); when given it replaces
        ``input_shape``, ``input_layout`` and ``input_scale``.  Importers fill it from in-graph
        preprocessing (a Keras ``Rescaling``/``Normalization`` layer, ONNX Cast/Div/Sub/Mul).
    name : a label for summaries.

    Shapes are (re)inferred and checked on construction; weights must be finite.
    :attr:`input_spec` is what :meth:`predict` uses to read its data (raw integers or float
    model units, see :mod:`hw_models.inputspec`).
    """

    def __init__(self, layers: Iterable[Layer], output_name: str | None = None,
                 input_shape: tuple | None = None, input_layout: str | None = None,
                 input_scale: float | None = None, name: str = "",
                 input_spec: InputSpec | None = None):
        self.layers: "OrderedDict[str, Layer]" = OrderedDict()
        for layer in layers:
            if layer.name in self.layers:
                raise ConversionError(f"duplicate layer name {layer.name!r}")
            self.layers[layer.name] = layer
        if not self.layers:
            raise ConversionError("a graph needs at least an input layer")
        first = next(iter(self.layers.values()))
        if first.kind != "input":
            raise ConversionError(f"the first layer must be of kind 'input', got {first.name!r} "
                                  f"({first.kind})")
        self.input_name = first.name
        self.output_name = output_name if output_name is not None else next(reversed(self.layers))
        self.name = name
        internal = tuple(int(v) for v in first.params.get("shape", first.shape))
        if input_spec is None:
            if input_layout is None:
                input_layout = "HWC" if len(internal) == 3 else "C"
            if input_layout not in LAYOUTS:
                raise ConversionError(f"unknown input layout {input_layout!r} (known: {LAYOUTS})")
            if input_shape is None:
                input_shape = {"CHW": lambda s: (s[2], s[0], s[1]), "HW": lambda s: s[:2]}.get(
                    input_layout, lambda s: s)(internal)
            try:
                input_spec = InputSpec(tuple(input_shape), input_layout, scale=input_scale)
            except NetworkError as exc:
                raise ConversionError(f"graph {name!r}: {exc}") from None
        elif not isinstance(input_spec, InputSpec):
            raise ConversionError(f"input_spec must be a hw_models.inputspec.InputSpec, got "
                                  f"{type(input_spec).__name__}")
        self.input_spec = input_spec
        self.validate()

    # -- the input (all of it lives in input_spec) ----------------------------------------
    @property
    def input_shape(self) -> tuple:
        """Per-sample shape the original model takes (in :attr:`input_layout`)."""
        return self.input_spec.shape

    @property
    def input_layout(self) -> str:
        """``"HWC"``, ``"CHW"``, ``"HW"`` or ``"C"`` (vectors)."""
        return {"flat": "C"}.get(self.input_spec.layout, self.input_spec.layout)

    @property
    def input_scale(self):
        """Model units per raw integer (:attr:`InputSpec.scale`; None when unknown)."""
        return self.input_spec.scale

    def with_input_spec(self, spec: InputSpec | None = None, **changes) -> "Graph":
        """A copy sharing the layers, with ``spec`` (or this graph's spec with ``changes``)."""
        spec = spec if spec is not None else self.input_spec.replace(**changes)
        g = _copy.copy(self)
        g.layers = OrderedDict(self.layers)
        g.input_spec = spec
        g.validate()
        return g

    # -- structure -------------------------------------------------------------------------
    def validate(self) -> None:
        """Check order, references, kinds, finiteness and shapes; ConversionError if wrong."""
        seen: dict[str, tuple] = {}
        for layer in self.layers.values():
            if layer.kind not in KINDS:
                raise ConversionError(f"layer {layer.name!r}: unknown kind {layer.kind!r}")
            if layer.kind == "input":
                if layer.name != self.input_name:
                    raise ConversionError(f"layer {layer.name!r}: only one input layer allowed")
                layer.params.setdefault("shape", tuple(layer.shape))
            for src in layer.inputs:
                if src not in seen:
                    raise ConversionError(f"layer {layer.name!r}: input {src!r} is not an "
                                          f"earlier layer (unknown name or not topological)")
            if layer.kind == "softmax" and layer.name != self.output_name:
                raise ConversionError(f"layer {layer.name!r}: softmax is only supported as the "
                                      f"output layer")
            for wname, arr in list(layer.weights.items()):
                if arr is None:
                    del layer.weights[wname]
                    continue
                layer.weights[wname] = finite_weight(arr, layer.name, layer.kind, wname)
            layer.shape = infer_shape(layer.kind, layer.params, layer.weights,
                                      [seen[s] for s in layer.inputs], layer.name)
            seen[layer.name] = layer.shape
        if self.output_name not in self.layers:
            raise ConversionError(f"output layer {self.output_name!r} is not in the graph")
        internal = self.layers[self.input_name].shape
        if int(np.prod(self.input_shape)) != int(np.prod(internal)):
            raise ConversionError(f"input_shape {self.input_shape} does not match the input "
                                  f"layer shape {internal} (layout {self.input_layout})")
        if tuple(self.input_spec.internal_shape) != tuple(internal) and \
                self.input_spec.layout != "flat":
            raise ConversionError(f"input spec {self.input_spec.describe()} does not match the "
                                  f"input layer shape {internal}")

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers.values())

    def __len__(self) -> int:
        return len(self.layers)

    def __contains__(self, name: str) -> bool:
        return name in self.layers

    def layer(self, name: str) -> Layer:
        """The layer called ``name`` (KeyError naming the known layers if absent)."""
        try:
            return self.layers[name]
        except KeyError:
            raise KeyError(f"no layer {name!r} in the graph (layers: {list(self.layers)})") \
                from None

    def consumers(self, name: str) -> list[str]:
        """Names of the layers that take ``name`` as an input, in graph order."""
        self.layer(name)
        return [l.name for l in self.layers.values() if name in l.inputs]

    @property
    def output_shape(self) -> tuple:
        return self.layers[self.output_name].shape

    @property
    def logits_name(self) -> str:
        """The layer whose output :meth:`predict` returns (the input of a final softmax)."""
        out = self.layers[self.output_name]
        return out.inputs[0] if out.kind == "softmax" else out.name

    def copy(self) -> "Graph":
        """A deep copy: new layers, new weight arrays, same metadata."""
        return self.replace([l.copy() for l in self.layers.values()])

    def replace(self, layers: Iterable[Layer], output_name: str | None = None) -> "Graph":
        """A new graph with the given layers and this graph's input metadata (for passes)."""
        layers = list(layers)
        names = {l.name for l in layers}
        out = output_name or (self.output_name if self.output_name in names else None)
        return Graph(layers, output_name=out, input_spec=self.input_spec, name=self.name)

    def without(self, name: str) -> "Graph":
        """A new graph with the single-input layer ``name`` removed, its consumers rewired to its
        input (e.g. after folding a batchnorm into the preceding convolution)."""
        layer = self.layer(name)
        if len(layer.inputs) != 1:
            raise ConversionError(f"layer {name!r} ({layer.kind}) has {len(layer.inputs)} inputs;"
                                  f" only a single-input layer can be removed")
        src = layer.inputs[0]
        new = []
        for l in self.layers.values():
            if l.name == name:
                continue
            l = l.copy()
            l.inputs = [src if i == name else i for i in l.inputs]
            new.append(l)
        return self.replace(new, output_name=src if name == self.output_name else None)

    def summary(self) -> str:
        """A table: name, kind, inputs, output shape, parameter count."""
        rows = [f"Graph {self.name!r}: input {self.input_spec.describe()}, "
                f"output {self.output_name!r}"]
        w = max([len(n) for n in self.layers] + [4]) + 2
        rows.append(f"{'name':<{w}}{'kind':<16}{'shape':<18}{'params':>10}  inputs")
        total = 0
        for l in self.layers.values():
            n = int(sum(a.size for a in l.weights.values()))
            total += n
            rows.append(f"{l.name:<{w}}{l.kind:<16}{str(l.shape):<18}{n:>10}  "
                        f"{', '.join(l.inputs)}")
        rows.append(f"total parameters: {total}")
        return "\n".join(rows)

    def __repr__(self) -> str:
        return (f"Graph({self.name!r}, {len(self.layers)} layers, input {self.input_shape} "
                f"{self.input_layout}, output {self.output_name!r} {self.output_shape})")

    # -- numerics --------------------------------------------------------------------------
    def to_internal(self, x, dtype=np.float64) -> np.ndarray:
        """A batch in the original layout (``(N,) + input_shape``) → internal NHWC array.

        Layout only, no change of units (see :meth:`predict` for that).  A batch of 2-D images
        ``(N, H, W)`` is accepted for an input shape with a single channel, e.g. ``(1, 28, 28)``
        or ``(28, 28, 1)``.
        """
        x = self.input_spec.to_internal(x).astype(dtype, copy=False)
        return np.ascontiguousarray(x).reshape((x.shape[0],) + self.layers[self.input_name].shape)

    def model_input(self, x) -> np.ndarray:
        """Raw integers or float model units (:meth:`InputSpec.as_model`) → the internal float64
        batch in model units that :meth:`forward` takes with ``internal=True``.  This is the
        check every public call on a graph makes, once."""
        xm = self.input_spec.as_model(x)
        return xm.reshape((xm.shape[0],) + self.layers[self.input_name].shape)

    def forward(self, x, outputs=None, internal: bool = False) -> dict:
        """Run one batch; return ``{name: activation}`` (internal layout, batch axis first).

        ``x`` is in the original layout (as for :meth:`predict`) unless ``internal=True``.
        ``outputs``: names to return (default: every layer).  Activations nobody needs any more
        are freed as the pass goes.
        """
        h = np.asarray(x, dtype=np.float64) if internal else self.to_internal(x)
        want = list(self.layers) if outputs is None else list(outputs)
        for n in want:
            self.layer(n)
        last_use = {}
        for l in self.layers.values():
            for s in l.inputs:
                last_use[s] = l.name
        acts: dict[str, np.ndarray] = {}
        keep = set(want)
        stop = max(list(self.layers).index(n) for n in want) if want else -1
        for i, l in enumerate(self.layers.values()):
            if i > stop:
                break
            acts[l.name] = h if l.kind == "input" else apply_layer(l, [acts[s] for s in l.inputs])
            for s in l.inputs:
                if last_use.get(s) == l.name and s not in keep:
                    acts.pop(s, None)
        return {n: acts[n] for n in want}

    def iter_activations(self, x, batch_size: int = 256, outputs=None, internal: bool = False):
        """Yield :meth:`forward` dicts batch by batch, so calibration can stream."""
        n = len(x)
        if batch_size < 1:
            raise DataError(f"batch_size must be >= 1, got {batch_size}")
        for start in range(0, n, batch_size):
            yield self.forward(x[start:start + batch_size], outputs, internal)

    def predict(self, x, batch_size: int = 256) -> np.ndarray:
        """Logits (float64, before a final softmax) for a batch in the original layout.

        ``x`` is either raw integers (any integer dtype, e.g. the uint8 images as loaded; mapped
        to model units by :attr:`input_spec`: ``raw · scale + offset``) or floats in the
        model's own units (e.g. ``x / 255``).  Floats outside the model's range (e.g. floats
        0..255 for a model in 0..1) are refused with a :class:`DataError` — the same rule as
        ``converter.convert`` and ``emulator.run`` (:mod:`hw_models.inputspec`).
        """
        name = self.logits_name
        xm = self.model_input(x)
        parts = [d[name] for d in self.iter_activations(xm, batch_size, [name], internal=True)]
        if not parts:
            return np.zeros((0,) + self.layers[name].shape)
        return np.concatenate(parts, axis=0)
