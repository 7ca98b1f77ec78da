"""``convert(graph, calibration, method, weight_bits, profile, steps, **options) → CoreNetwork``.

The pipeline (DESIGN.md "Conversion"):

1. :func:`converter.passes.prepare`: fold BatchNorm (ECC's CMB, own ε), ReLU before max-pool.
2. :func:`_plan`: walk the folded graph once and decide populations and projections:
   ``input`` → the input population; every ReLU after a linear chain (conv/dense, zero padding,
   add, concat, flatten/reshape) → a spiking population whose incoming projections are the terms
   of that chain; maxpool → a spiking gate projection (``kind="maxpool"``) into a *relay*
   population (weight = threshold, so every passed spike re-emits): option ``maxpool="gate"``
   passes the spikes of the window's current winner (Rueckauer 2017), ``"runmax"`` passes a
   spike whenever the window's highest input count exceeds the passes so far, so the relay's
   count is exactly the window maximum of its input counts; ``"circuit"`` computes the same
   running maximum from plain IF neurons (:mod:`converter.maxpool_circuit`: K + 1 neurons per
   pooled neuron, no gate primitive); ``"avg"`` replaces it by an average;
   avgpool / global_avgpool → an ``avgpool`` projection into an *average* population (which
   inherits the λ of its input) — except an average pool whose divisor excludes its own
   padding (Keras ``padding="same"``, ONNX ``count_include_pad=0``): its divisor differs per
   border neuron, so it becomes a ``dense`` projection with weight 1/count on each synapse of
   an output neuron (:func:`_excl_pad_avgpool`, exact; explicit synapses); the logits → the read-out population (non-spiking for readout
   ``"v"``).  A ``concat`` is never materialised: each consumer gets one projection per concat
   input with the matching kernel slice (channel slice for conv, the HWC flat rows for dense).
   A residual ``add`` is one population with several incoming projections (``identity`` for a
   direct shortcut).
3. λ per population from calibration (:mod:`converter.normalise`); populations meeting at an
   ``add`` or ``concat`` share one λ (the maximum; option ``share=False`` turns it off: with one
   projection per source the conversion is exact either way).  The input has
   ``λ_in = scale`` (analog), ``scale·raw_max`` (rate, bernoulli) or ``scale·T`` (events binned
   into T steps), with the scale of the input spec (per channel if it is one), so the first
   layer's float weights are ``W·λ_in/λ_1`` and the raw integers drive it directly; an input
   offset is folded into the first layer's bias (:func:`_fold_offset`).
4. Method specifics: ``robust`` (Rueckauer et al. 2017: percentile 99.9 of non-zero activations,
   reset by subtraction), ``max`` (Diehl et al. 2015: max-norm, reset by subtraction), ``ecc``
   (Wu et al., "Explicit current control" for CNN-to-SNN conversion, Front. Neurosci. 16:759900,
   2022, doi:10.3389/fnins.2022.759900: max-based current normalisation, threshold
   amplified to an integer by the quantisation step, thresholding for residual elimination
   ``v_init = ρ·θ`` with ρ = 0.5 — or ``tre="bias"``: ``ρθ/T`` added to the bias every step —,
   and CMB BatchNorm folding), ``rmp`` (Han et al. 2020, "RMP-SNN: residual membrane potential
   neuron", CVPR: reset by subtraction and the float threshold scaled by ``rmp_scale`` = 0.8;
   applied literally to every spiking ReLU population — not to relays, average populations or
   a non-spiking read-out — so a layer fires ``1/rmp_scale`` times faster than its λ says and
   the next layer sees that gain; it is the baseline, not a tuned method).
   **ReLU6** (``relu`` with ``max_value`` m, Keras ReLU6 / ONNX ``Clip(0, m)``): an IF neuron
   fires at most one spike per step, i.e. its rate is ``min(a/λ, 1)·λ`` — already a clip at λ.
   λ is taken from the clipped activations and capped at m (``λ ≤ m``), so the neuron's rate
   ceiling is the clip (exactly ``min(a, m)`` when λ = m, the robust clip below it otherwise,
   as for a plain ReLU); nothing else changes.  A ReLU6 applied to an already spiking map
   becomes a population of its own behind an identity projection.
   **Grouped / depthwise convolutions** (``groups`` > 1) become ``conv`` projections with the
   same ``groups`` (:class:`~hw_models.network.Projection`); per-channel λ of the source is
   applied per kernel entry through :func:`~converter.graph.kernel_in_channels`.
5. :func:`converter.quantise.quantise_population` per population (θ, exponents, weights, bias)
   under the profile's formats; state range, overflow policy and spike rule from the profile.
6. :func:`converter.mapping.map_to_cores` when that module exists (option ``map``).

Everything the conversion decided is in ``net.meta``: ``method``, ``profile``, ``weight_bits``,
``options`` (resolved), ``lambda`` (per population), ``quantisation`` (per population: θ,
exponents, clipped fraction, RMS/max rounding error), ``ann_macs``, ``notes``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hw_models.errors import ConversionError, NetworkError, UnsupportedLayerError
from hw_models.inputspec import InputSpec
from hw_models.intrange import STATE_LIMIT, check_ranges
from hw_models.network import CoreNetwork, Population, Projection, DECAY_ONE
from hw_models.profiles import DEFAULT_PROFILE, get_profile, is_stock
from .graph import Graph, kernel_in_channels, pair
from .mapping import map_to_cores
from .normalise import activation_scales, share_scales
from .passes import count_macs, prepare, shift_through_conv
from .qcfs import qcfs_v_init
from .quantise import FLOAT_BITS, quantise_population

__all__ = ["convert", "METHODS", "OPTION_DEFAULTS"]

METHODS = ("ecc", "robust", "max", "rmp")

#: every option of :func:`convert` and its default (``None`` = decided by method or graph)
OPTION_DEFAULTS = {
    "reset": "subtract", "encoding": None, "input_max": None, "input_scale": None,
    "maxpool": "gate", "readout": "v", "timing": "sync", "percentile": None,
    "per_channel": False, "rho": 0.5, "tre": None, "rmp_scale": 0.8, "map": True,
    "share": True, "batch_size": 128, "avgpool": "auto",
}
_CHOICES = {"reset": ("subtract", "zero"), "encoding": ("analog", "rate", "bernoulli", "events"),
            "maxpool": ("gate", "runmax", "circuit", "avg"), "readout": ("v", "spikes"),
            "timing": ("sync", "hardware", "layerwise"), "tre": ("vinit", "bias", "none"),
            "avgpool": ("auto", "fold", "spike")}
_METHOD_DEFAULTS = {"ecc": {"percentile": 100.0, "tre": "vinit"},
                    "robust": {"percentile": 99.9, "tre": "none"},
                    "max": {"percentile": 100.0, "tre": "none"},
                    "rmp": {"percentile": 100.0, "tre": "none"}}


# ----------------------------------------------------------------------------------------------
# options

def _options(method: str, steps, options: dict) -> dict:
    if method not in METHODS:
        raise ConversionError(f"unknown method {method!r}; choose one of {METHODS}")
    unknown = sorted(set(options) - set(OPTION_DEFAULTS))
    if unknown:
        raise ConversionError(f"unknown option(s) {unknown}; known options: "
                              f"{sorted(OPTION_DEFAULTS)}")
    opt = dict(OPTION_DEFAULTS)
    opt.update(_METHOD_DEFAULTS[method])
    opt.update({k: v for k, v in options.items() if v is not None})
    for k, choices in _CHOICES.items():
        if opt[k] is None and k == "encoding":
            continue
        if opt[k] not in choices:
            raise ConversionError(f"option {k}={opt[k]!r} is invalid; choose one of {choices}")
    if opt["input_max"] is not None and (
            isinstance(opt["input_max"], bool)
            or not isinstance(opt["input_max"], (int, np.integer)) or opt["input_max"] < 1):
        raise ConversionError(f"option input_max must be a positive integer, got "
                              f"{opt['input_max']!r}")
    for k, lo, hi in (("percentile", 0.0, 100.0), ("rho", 0.0, 1.0), ("rmp_scale", 0.0, 1.0)):
        v = opt[k]
        if not isinstance(v, (int, float, np.floating)) or isinstance(v, bool) \
                or not (lo < float(v) <= hi if k != "rho" else lo <= float(v) < hi):
            raise ConversionError(f"option {k} must be a number in "
                                  f"{'[' if k == 'rho' else '('}{lo}, {hi}"
                                  f"{')' if k == 'rho' else ']'}, got {v!r}")
        opt[k] = float(v)
    if opt["input_scale"] is not None:
        s = opt["input_scale"]
        if isinstance(s, bool) or not isinstance(s, (int, float, np.floating)) \
                or not np.isfinite(s) or s <= 0:
            raise ConversionError(f"option input_scale must be a positive number, got {s!r}")
        opt["input_scale"] = float(s)
    for k in ("per_channel", "map", "share"):
        if not isinstance(opt[k], (bool, np.bool_)):
            raise ConversionError(f"option {k} must be True or False, got {opt[k]!r}")
        opt[k] = bool(opt[k])
    if not isinstance(opt["batch_size"], (int, np.integer)) or opt["batch_size"] < 1:
        raise ConversionError(f"option batch_size must be a positive integer, "
                              f"got {opt['batch_size']!r}")
    if opt["tre"] == "bias" and steps is None:
        raise ConversionError("option tre='bias' adds ρθ/T to the bias every step and needs "
                              "steps=T")
    if opt["timing"] == "layerwise" and steps is None:
        raise ConversionError("timing='layerwise' needs steps=T, the window every layer "
                              "integrates and then fires in")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, (int, np.integer))
                              or steps < 1):
        raise ConversionError(f"steps must be a positive integer or None, got {steps!r}")
    if opt["input_max"] is not None:
        opt["input_max"] = int(opt["input_max"])
    return opt


def input_spec_for(graph: Graph, opt: dict, steps) -> InputSpec:
    """The network's input spec: the graph's, with the options ``input_scale``, ``input_max``
    and ``encoding`` applied when given.  Event input is binned into ``steps`` (required: one
    event is one spike in one step, so the run length T sets what one event weighs)."""
    spec = graph.input_spec
    changes = {}
    if opt["input_scale"] is not None:
        changes["scale"] = opt["input_scale"]
    enc = opt["encoding"] or spec.encoding
    changes["encoding"] = enc
    if enc == "events":
        bins = steps if steps is not None else spec.bins
        if bins is None:
            raise ConversionError("event input needs steps=T at conversion: one event is one "
                                  "spike in one step, so over T steps a pixel with c events "
                                  "delivers c/T per step (the network's input scale per spike "
                                  "is T x the model's scale per event count)")
        changes.update(raw_max=None, bins=int(bins))
    else:
        changes["bins"] = None
        if opt["input_max"] is not None:
            changes["raw_max"] = opt["input_max"]
        elif spec.raw_max is None:
            changes["raw_max"] = 255
    try:
        return spec.replace(**changes)
    except NetworkError as exc:
        raise ConversionError(str(exc)) from None


# ----------------------------------------------------------------------------------------------
# planning: graph → populations and (float) projections

@dataclass
class _Term:
    name: str
    source: str
    kind: str  # dense | conv | avgpool | maxpool | identity
    weights: np.ndarray
    geom: dict = field(default_factory=dict)
    rows_channel: np.ndarray | None = None  # dense: source channel of each row


@dataclass
class _Pop:
    name: str
    shape: tuple
    role: str  # neuron | relay | avg | output
    stat: str | None = None  # graph layer whose activations give λ
    terms: list = field(default_factory=list)
    bias: np.ndarray | None = None
    qcfs: tuple | None = None  # (λ, L) of a QCFS activation (converter.qcfs)

    @property
    def inherits(self) -> bool:
        return self.role in ("relay", "avg")


class _Planner:
    def __init__(self, g: Graph, opt: dict):
        self.g, self.opt = g, opt
        self.pops: dict[str, _Pop] = {}
        self.vals: dict = {}
        self.groups: list = []
        self.names: set = {"input"}

    def _pname(self, base: str) -> str:
        name, i = base, 1
        while name in self.names:
            i += 1
            name = f"{base}#{i}"
        self.names.add(name)
        return name

    def _parts(self, v, layer):
        """(pop, channel offset, channels) parts and pending padding of a pop/concat value."""
        if v[0] == "pop":
            return [(v[1], 0, self.pops_shape(v[1])[-1])], v[2]
        if v[0] == "concat":
            return v[1], v[2]
        raise ConversionError(f"layer {layer.name!r} ({layer.kind}) takes a linear pre-activation"
                              f" (no ReLU in between); two linear layers in a row cannot become"
                              f" one projection — insert a ReLU or merge them before converting")

    def pops_shape(self, name):
        return self.g.layer(self.g.input_name).shape if name == "input" else \
            self.pops[name].shape

    def run(self):
        g = self.g
        for layer in g:
            k, name = layer.kind, layer.name
            ins = [self.vals[i] for i in layer.inputs]
            v = ins[0] if ins else None
            if k == "input":
                self.vals[name] = ("pop", "input", (0, 0, 0, 0))
            elif k == "zeropad":
                parts, pad = self._parts(v, layer)
                pad = tuple(a + b for a, b in zip(pad, layer.params["padding"]))
                self.vals[name] = (v[0], v[1], pad) if v[0] == "pop" else ("concat", parts, pad)
            elif k == "conv2d" and len(v) == 5 and v[4] == "avgfold":
                self.vals[name] = ("lin", [self._conv_after_avg(layer, v[1][0])],
                                   layer.weights.get("bias"), layer.shape)
            elif k == "conv2d" and v[0] == "lin":  # two linear layers: one linear map
                self.vals[name] = self._compose_conv(layer, v)
            elif k == "conv2d":
                parts, pad = self._parts(v, layer)
                pad = tuple(a + b for a, b in zip(pad, layer.params.get("padding", (0,) * 4)))
                kern = layer.weights["kernel"]
                groups = int(layer.params.get("groups", 1))
                geom = {"kernel": kern.shape[:2], "stride": pair(layer.params.get("strides", 1)),
                        "padding": pad, "dilation": pair(layer.params.get("dilation", 1)),
                        "groups": groups}
                if groups != 1 and len(parts) != 1:
                    raise UnsupportedLayerError(
                        f"layer {name!r} (conv2d, groups={groups}) reads a concatenation of "
                        f"{len(parts)} maps; a grouped convolution needs one spiking input map")
                terms = []
                for i, (src, off, c) in enumerate(parts):
                    terms.append(_Term(name if len(parts) == 1 else f"{name}[{i}]", src, "conv",
                                       kern[:, :, off:off + c, :], geom))
                self.vals[name] = ("lin", terms, layer.weights.get("bias"), layer.shape)
            elif k == "dense" and len(v) == 5 and v[4] == "avgfold":
                self.vals[name] = ("lin", [self._dense_after_avg(layer, v[1][0])],
                                   layer.weights.get("bias"), layer.shape)
            elif k == "dense":
                self.vals[name] = ("lin", self._dense_terms(layer, v), layer.weights.get("bias"),
                                   layer.shape)
            elif k in ("flatten", "reshape") and len(v) == 5 and v[4] == "avgfold":
                self.vals[name] = v  # a folded average pool: composed into the dense after it
            elif k in ("flatten", "reshape"):
                if v[0] == "lin":
                    raise ConversionError(f"layer {name!r} ({k}) reshapes a linear "
                                          f"pre-activation; only spiking outputs can be "
                                          f"reshaped")
                if any(v[2]):
                    raise ConversionError(f"layer {name!r} ({k}) follows zero padding; padding "
                                          f"is only supported before conv and pooling layers")
                src_shape = self._value_shape(v)
                if len(layer.shape) != 1 and tuple(layer.shape) != tuple(src_shape):
                    raise UnsupportedLayerError(f"layer {name!r} (reshape) changes the spatial "
                                                f"shape {src_shape} -> {layer.shape}; only "
                                                f"flattening is supported")
                self.vals[name] = v if v[0] == "pop" else ("concat", v[1], v[2], "flat")
            elif k == "add":
                terms, bias, group = [], np.zeros(layer.shape[-1]), []
                for src_name, x in zip(layer.inputs, ins):
                    if x[0] == "lin":
                        terms += x[1]
                        if x[2] is not None:
                            bias = bias + x[2]
                        group += [t.source for t in x[1]]
                    elif x[0] == "pop" and not any(x[2]):
                        c = self.pops_shape(x[1])[-1]
                        terms.append(_Term(f"{name}<-{x[1]}", x[1], "identity", np.ones(c)))
                        group.append(x[1])
                    else:
                        raise ConversionError(f"layer {name!r} (add): input {src_name!r} is a "
                                              f"concat or padded map; not supported in an add")
                self.groups.append(sorted(set(group)))
                self.vals[name] = ("lin", terms, bias, layer.shape)
            elif k == "concat" and any(x[0] == "lin" for x in ins):
                self.vals[name] = self._concat_linear(layer, ins)
            elif k == "concat":
                parts, off = [], 0
                for src_name, x in zip(layer.inputs, ins):
                    if any(x[2]) or len(x) > 3:
                        raise ConversionError(f"layer {name!r} (concat): input {src_name!r} must "
                                              f"be a spiking (ReLU/pool) output, unpadded")
                    sub, _ = self._parts(x, layer)
                    for src, o, c in sub:
                        parts.append((src, off + o, c))
                    off += sum(c for _, _, c in sub)
                self.groups.append(sorted({p[0] for p in parts}))
                self.vals[name] = ("concat", parts, (0, 0, 0, 0))
            elif k == "relu":
                clip = layer.params.get("max_value") is not None
                if v[0] == "pop" and clip and not any(v[2]):
                    # ReLU6 of a spiking map: not the identity (the map may exceed the clip);
                    # a population of its own behind an identity projection, whose rate ceiling
                    # (λ ≤ max_value) is the clip
                    c = self.pops_shape(v[1])[-1]
                    v = ("lin", [_Term(f"{name}<-{v[1]}", v[1], "identity", np.ones(c))], None,
                         layer.shape)
                if v[0] == "lin":
                    pn = self._new_pop(name, layer.shape, "neuron", v, name)
                    if layer.params.get("levels") is not None:
                        self.pops[pn].qcfs = (float(layer.params["max_value"]),
                                              int(layer.params["levels"]))
                    self.vals[name] = ("pop", pn, (0, 0, 0, 0))
                else:  # ReLU of a spiking output is the identity
                    self.vals[name] = v
            elif k in ("maxpool", "avgpool") and v[0] == "concat" and len(v) == 3:
                # pooling is channel-wise: the concat of the pooled parts
                parts = [(self._pool(layer, ("pop", src, v[2]), layer.shape[:2] + (c,)), off, c)
                         for src, off, c in v[1]]
                self.vals[name] = ("concat", parts, (0, 0, 0, 0))
            elif k == "avgpool" and self._avg_foldable(layer, v):
                src = v[1]
                c = self.pops_shape(src)[-1]
                geom = {"kernel": pair(layer.params["pool"]), "stride": pair(
                    layer.params.get("strides", layer.params["pool"])), "padding": (0, 0, 0, 0),
                    "src_shape": tuple(self.pops_shape(src))}
                pp = geom["kernel"][0] * geom["kernel"][1]
                term = _Term(name, src, "avgpool", np.full(c, 1.0 / pp), geom)
                self.vals[name] = ("lin", [term], None, layer.shape, "avgfold")
            elif k in ("maxpool", "avgpool"):
                self.vals[name] = ("pop", self._pool(layer, v), (0, 0, 0, 0))
            elif k == "global_avgpool":
                if v[0] == "lin" or any(v[2]) or len(v) > 3:
                    raise ConversionError(f"layer {name!r} (global_avgpool) must follow a "
                                          f"spiking (ReLU) map")
                parts = [(v[1], 0, self.pops_shape(v[1])[-1])] if v[0] == "pop" else v[1]
                pooled = []  # channel-wise: a concat is pooled part by part
                for src, off, c in parts:
                    h, w, _ = self.pops_shape(src)
                    pn = self._pname(name)
                    self.pops[pn] = _Pop(pn, (1, 1, c), "avg", terms=[_Term(
                        f"{name}<-{src}" if len(parts) > 1 else name, src, "avgpool",
                        np.full(c, 1.0 / (h * w)),
                        {"kernel": (h, w), "stride": (h, w), "padding": (0, 0, 0, 0)})])
                    pooled.append((pn, off, c))
                self.vals[name] = (("pop", pooled[0][0], (0, 0, 0, 0)) if v[0] == "pop"
                                   else ("concat", pooled, (0, 0, 0, 0)))
            elif k == "softmax":
                self.vals[name] = v
            elif k == "batchnorm":  # one that prepare() could not fold: an affine map
                self.vals[name] = self._affine(layer, v)
            else:
                raise UnsupportedLayerError(f"layer {name!r}: kind {k!r} cannot be converted")
        logits = g.logits_name
        v = self.vals[logits]
        if v[0] == "lin":
            out = self._new_pop(logits, g.layer(logits).shape, "output", v, logits)
        elif v[0] == "pop":
            src = v[1]
            shp = self.pops_shape(src)
            on = self._pname(f"{logits}_out")
            self.pops[on] = _Pop(on, shp, "output", stat=logits,
                                 terms=[_Term(f"{on}<-{src}", src, "identity", np.ones(shp[-1]))])
            out = on
        else:
            raise ConversionError(f"the output {logits!r} is a concat; add a dense read-out")
        return out

    def _value_shape(self, v):
        if v[0] == "pop":
            return self.pops_shape(v[1])
        s = self.pops_shape(v[1][0][0])
        return tuple(s[:-1]) + (sum(c for _, _, c in v[1]),)

    # -- linear maps composed at planning time (exact) ----------------------------------------
    def _as_terms(self, v, layer):
        """A spiking value (pop or concat) as linear terms: identity per part, or a 1×1 conv
        placing a concat part at its channel offset."""
        parts, pad = self._parts(v, layer)
        if any(pad):
            raise ConversionError(f"layer {layer.name!r} ({layer.kind}) follows zero padding; "
                                  f"padding is only supported before conv and pooling layers")
        if len(parts) == 1:
            src, _, c = parts[0]
            return [_Term(f"{layer.name}<-{src}", src, "identity", np.ones(c))]
        total = sum(c for _, _, c in parts)
        terms = []
        for i, (src, off, c) in enumerate(parts):
            k = np.zeros((1, 1, c, total))
            k[0, 0, np.arange(c), off + np.arange(c)] = 1.0
            terms.append(_Term(f"{layer.name}[{i}]", src, "conv", k,
                               {"kernel": (1, 1), "stride": (1, 1), "padding": (0, 0, 0, 0),
                                "dilation": (1, 1), "groups": 1}))
        return terms

    def _concat_linear(self, layer, ins):
        """A concat with a linear input (a conv output appended without activation, as in a
        pre-activation DenseNet): one linear value whose terms write each input's channels at
        its offset (spiking inputs through placement terms)."""
        total = layer.shape[-1]
        out, bias, off = [], np.zeros(layer.shape), 0
        for src_name, x in zip(layer.inputs, ins):
            if x[0] == "lin":
                terms, b, shp = x[1], x[2], x[3]
            else:
                terms, b, shp = self._as_terms(x, layer), None, self._value_shape(x)
            c = shp[-1]
            for t in terms:
                out.append(self._placed(t, off, c, total, layer))
            if b is not None:
                bias[..., off:off + c] += np.broadcast_to(b, layer.shape[:-1] + (c,))
            off += c
        self.groups.append(sorted({t.source for t in out}))
        return ("lin", out, bias, layer.shape)

    def _placed(self, t, off, c, total, layer):
        """Term ``t`` (c output channels) writing channels [off, off + c) of ``total``."""
        if t.kind == "dense":
            w = np.zeros(t.weights.shape[:-1] + (total,))
            w[..., off:off + c] = t.weights
            return _Term(t.name, t.source, "dense", w, dict(t.geom), t.rows_channel)
        if t.kind == "conv":
            k = _dense_kernel(t.weights, t.geom.get("groups", 1))
            geom = dict(t.geom, groups=1)
        elif t.kind == "identity":
            k = np.diag(t.weights)[None, None]
            geom = {"kernel": (1, 1), "stride": (1, 1), "padding": (0, 0, 0, 0),
                    "dilation": (1, 1), "groups": 1}
        elif t.kind == "avgpool":
            kh, kw = t.geom["kernel"]
            k = np.zeros((kh, kw, c, c))
            k[:, :, np.arange(c), np.arange(c)] = t.weights
            geom = dict(t.geom, dilation=(1, 1), groups=1)
        else:
            raise ConversionError(f"layer {layer.name!r} (concat): a {t.kind} projection cannot "
                                  f"be placed in a concatenation of linear values")
        w = np.zeros(k.shape[:3] + (total,))
        w[..., off:off + c] = k
        return _Term(f"{t.name}@{layer.name}", t.source, "conv", w, geom)

    def _affine(self, layer, v):
        """``batchnorm`` left by prepare(): ``y = x·s + t`` per channel, applied to the linear
        terms of x (a linear value, or a spiking one as identity terms)."""
        w = layer.weights
        sc = w["gamma"] / np.sqrt(w["var"] + float(layer.params["epsilon"]))
        sh = w["beta"] - w["mean"] * sc
        if v[0] == "lin":
            terms, bias = v[1], v[2]
        else:
            terms, bias = self._as_terms(v, layer), None
        out = []
        for t in terms:
            wt = t.weights * sc  # every kind's weights end on the output-channel axis
            out.append(_Term(t.name, t.source, t.kind, wt, dict(t.geom), t.rows_channel))
        b = sh if bias is None else np.asarray(bias) * sc + sh
        return ("lin", out, b, layer.shape)

    def _compose_conv(self, layer, v):
        """conv2d applied to a linear value: composed into each term (exact).  A pointwise
        (1×1, stride 1, unpadded) conv composes with any term; a general conv composes with
        terms that are themselves pointwise or identity (their bias becomes one value per
        output neuron, the zero-padded conv of the constant bias map)."""
        terms, bias, _ = v[1], v[2], v[3]
        kern = _dense_kernel(layer.weights["kernel"], int(layer.params.get("groups", 1)))
        p = layer.params
        st, dl = pair(p.get("strides", 1)), pair(p.get("dilation", 1))
        pad = tuple(p.get("padding", (0, 0, 0, 0)))
        pointwise = kern.shape[:2] == (1, 1) and st == (1, 1) and not any(pad)
        out = []
        for t in terms:
            if t.kind == "identity":
                first = np.diag(t.weights)[None, None]                   # 1×1, c → c
                tgeom = {"kernel": (1, 1), "stride": (1, 1), "padding": (0, 0, 0, 0),
                         "dilation": (1, 1)}
            elif t.kind == "conv":
                first = _dense_kernel(t.weights, t.geom.get("groups", 1))
                tgeom = t.geom
            elif t.kind == "avgpool" and pointwise:
                kh, kw = t.geom["kernel"]
                first = np.zeros((kh, kw, t.weights.size, t.weights.size))
                first[:, :, np.arange(t.weights.size), np.arange(t.weights.size)] = t.weights
                tgeom = dict(t.geom, dilation=(1, 1))
            else:
                raise ConversionError(f"layer {layer.name!r} (conv2d) takes a linear "
                                      f"pre-activation made by a {t.kind} projection; only "
                                      f"conv/identity/pool terms compose with a convolution")
            t_point = first.shape[:2] == (1, 1) and tuple(tgeom.get("stride", (1, 1))) == (1, 1) \
                and not any(tgeom.get("padding", (0, 0, 0, 0)))
            if pointwise:
                k2 = np.einsum("abcm,mo->abco", first, kern[0, 0])
                geom = dict(tgeom, groups=1)
            elif t_point:
                k2 = np.einsum("cm,abmo->abco", first[0, 0], kern)
                geom = {"kernel": kern.shape[:2], "stride": st, "padding": pad, "dilation": dl,
                        "groups": 1}
            else:
                raise ConversionError(
                    f"layer {layer.name!r} (conv2d {kern.shape[0]}×{kern.shape[1]}) takes the "
                    f"linear output of a {first.shape[0]}×{first.shape[1]} convolution; two "
                    f"linear layers compose exactly only when one of them is pointwise (1×1, "
                    f"stride 1, unpadded) — insert a ReLU or merge them before converting")
            out.append(_Term(f"{layer.name}<-{t.name}", t.source, "conv", k2, geom))
        b = layer.weights.get("bias")
        b = np.zeros(kern.shape[3]) if b is None else np.asarray(b, np.float64)
        if bias is not None:
            bias = np.asarray(bias, np.float64)
            if pointwise:
                b = b + bias @ kern[0, 0]
            else:  # the constant map through the zero-padded conv: one value per neuron
                b = b + shift_through_conv(bias, self.g.layer(layer.inputs[0]).shape, kern,
                                           st, pad, dl)
        return ("lin", out, b, layer.shape)

    # -- average pooling folded into the layer after it (exact) --------------------------------
    def _avg_foldable(self, layer, v) -> bool:
        """Whether the average pool ``layer`` of the spiking value ``v`` is folded into the
        weights of the layers that read it instead of becoming a spiking average population.

        Option ``avgpool``: ``"spike"`` never folds, ``"fold"`` always (refusing a pool that
        cannot be folded), ``"auto"`` (default) folds the pool of a QCFS population (Bu et al.
        2022 apply the average pool to the spikes as a linear map: a spiking average
        population would round the mean of L-level counts back to L levels, which the
        quantised ANN never does).  Folding is exact when the pool tiles its input
        (kernel = stride, no padding, H and W divisible) and every reader is a convolution
        (dilation 1) or a flatten read by dense layers only: conv ∘ avgpool is one
        convolution (kernel s·K, stride s·S, padding s·P), dense ∘ flatten ∘ avgpool one dense
        map with each pooled row spread over its window."""
        mode = self.opt["avgpool"]
        if mode == "spike" or v[0] != "pop":
            if mode == "fold":
                raise ConversionError(f"avgpool {layer.name!r}: avgpool='fold' needs a spiking "
                                      f"(ReLU) input, got {v[0]}")
            return False
        src = v[1]
        if mode == "auto" and (src not in self.pops or self.pops[src].qcfs is None):
            return False
        p = layer.params
        pool = pair(p["pool"])
        st = pair(p.get("strides", pool))
        h, w, _ = self.pops_shape(src)
        why = None
        if any(v[2]) or any(p.get("padding", (0, 0, 0, 0))):
            why = "it is padded"
        elif pool != st or h % pool[0] or w % pool[1]:
            why = f"its {pool} windows with stride {st} do not tile the {h}×{w} input"
        else:
            g = self.g
            if layer.name == g.logits_name or layer.name == g.output_name:
                why = "it is the output"
            for c in g.consumers(layer.name):
                cl = g.layer(c)
                if cl.kind == "conv2d" and pair(cl.params.get("dilation", 1)) == (1, 1):
                    continue
                if cl.kind == "flatten" and g.consumers(c) and c != g.output_name and all(
                        g.layer(d).kind == "dense" for d in g.consumers(c)):
                    continue
                why = f"layer {c!r} ({cl.kind}) reads it"
                break
        if why is not None:
            if mode == "fold":
                raise ConversionError(f"avgpool {layer.name!r} cannot be folded into the layers "
                                      f"after it ({why}); use avgpool='spike' or 'auto'")
            return False
        return True

    def _conv_after_avg(self, layer, t):
        """conv2d ∘ avgpool (kernel = stride = s, tiling): kernel s·K with every tap spread over
        its s×s window (weight / s²), stride s·S, padding s·P."""
        kern = _dense_kernel(layer.weights["kernel"], int(layer.params.get("groups", 1)))
        (sh, sw), kh, kw = t.geom["kernel"], kern.shape[0], kern.shape[1]
        k2 = np.repeat(np.repeat(kern, sh, axis=0), sw, axis=1) / (sh * sw)
        st = pair(layer.params.get("strides", 1))
        pt, pb, pl, pr = layer.params.get("padding", (0, 0, 0, 0))
        geom = {"kernel": (kh * sh, kw * sw), "stride": (st[0] * sh, st[1] * sw),
                "padding": (pt * sh, pb * sh, pl * sw, pr * sw), "dilation": (1, 1),
                "groups": 1}
        return _Term(f"{layer.name}<-{t.name}", t.source, "conv", k2, geom)

    def _dense_after_avg(self, layer, t):
        """dense ∘ flatten ∘ avgpool: the row of pooled neuron (p, q, c) / s² for every input
        neuron of its window (HWC order)."""
        kern = layer.weights["kernel"]
        h, w, c = t.geom["src_shape"]
        sh, sw = t.geom["kernel"]
        hp, wp = h // sh, w // sw
        yy, xx, cc = np.meshgrid(np.arange(h), np.arange(w), np.arange(c), indexing="ij")
        rows = ((yy // sh) * wp + xx // sw) * c + cc
        if kern.shape[0] != hp * wp * c:
            raise ConversionError(f"layer {layer.name!r} (dense) has {kern.shape[0]} inputs, the "
                                  f"pooled map {layer.inputs[0]!r} {hp * wp * c}")
        return _Term(f"{layer.name}<-{t.name}", t.source, "dense",
                     kern[rows.reshape(-1)] / (sh * sw), rows_channel=np.arange(h * w * c) % c)

    def _new_pop(self, stat, shape, role, v, base):
        pn = self._pname(base)
        terms, bias = v[1], v[2]
        for t in terms:
            self._check_shape(t, shape, base)
        self.pops[pn] = _Pop(pn, tuple(shape), role, stat=stat, terms=terms,
                             bias=None if bias is None else np.asarray(bias, np.float64))
        return pn

    def _check_shape(self, t, shape, base):
        if t.kind == "dense" and len(shape) != 1 and not t.geom.get("pool_excl_pad"):
            raise ConversionError(f"layer {base!r}: dense output shape {shape}")  # pragma: no cover

    def _dense_terms(self, layer, v):
        kern = layer.weights["kernel"]
        if v[0] == "lin":
            self._parts(v, layer)
        if any(v[2]):
            raise ConversionError(f"layer {layer.name!r} (dense) follows zero padding")
        if v[0] == "pop":
            shp = self.pops_shape(v[1])
            ch = np.arange(kern.shape[0]) % shp[-1]
            return [_Term(layer.name, v[1], "dense", kern, rows_channel=ch)]
        parts = v[1]
        full = self._value_shape(v)
        idx_all = np.arange(int(np.prod(full))).reshape(full)
        terms = []
        for i, (src, off, c) in enumerate(parts):
            rows = idx_all[..., off:off + c].reshape(-1)
            shp = self.pops_shape(src)
            terms.append(_Term(f"{layer.name}[{i}]", src, "dense", kern[rows],
                               rows_channel=np.arange(rows.size) % shp[-1]))
        return terms

    def _pool(self, layer, v, shape=None):
        k, name = layer.kind, layer.name
        if v[0] != "pop":
            raise ConversionError(f"layer {name!r} ({k}) must follow a spiking (ReLU) output, "
                                  f"got {'a linear pre-activation' if v[0] == 'lin' else 'a concat'}"
                                  f"; put the ReLU before the pooling")
        p = layer.params
        pool = pair(p["pool"])
        pad = tuple(a + b for a, b in zip(v[2], p.get("padding", (0, 0, 0, 0))))
        geom = {"kernel": pool, "stride": pair(p.get("strides", pool)), "padding": pad}
        c = self.pops_shape(v[1])[-1]
        pn = self._pname(name)
        tname = name if shape is None else f"{name}<-{v[1]}"  # one of a concat's parts
        if k == "maxpool" and self.opt["maxpool"] in ("gate", "runmax", "circuit"):
            if any(v[2]):
                raise ConversionError(f"maxpool {name!r} after zero padding: padded zeros would "
                                      f"enter the max; not supported")
            geom["gate"] = "winner" if self.opt["maxpool"] == "gate" else "runmax"
            term = _Term(tname, v[1], "maxpool", np.ones(c), geom)
            role = "relay"
        elif k == "avgpool" and any(p.get("padding", (0, 0, 0, 0))) \
                and not p.get("count_include_pad", True):
            term = _excl_pad_avgpool(tname, v[1], self.pops_shape(v[1]), tuple(shape or
                                     layer.shape), geom, v[2], name)
            role = "avg"
        else:
            term = _Term(tname, v[1], "avgpool", np.full(c, 1.0 / (pool[0] * pool[1])), geom)
            role = "avg"
        self.pops[pn] = _Pop(pn, tuple(shape or layer.shape), role, terms=[term])
        return pn


# ----------------------------------------------------------------------------------------------

#: most synapse entries (source × target neurons) of the explicit projection of an average
#: pool whose divisor excludes its padding (float64 while converting: 512 MB)
EXCL_PAD_MAX_ENTRIES = 1 << 26


def _excl_pad_avgpool(tname, src, src_shape, out_shape, geom, zero_pad, name) -> _Term:
    """An average pool whose divisor counts only the real pixels of each window (Keras
    ``AveragePooling2D(padding="same")``, ONNX ``count_include_pad=0``): the divisor differs at
    the borders, so the pool becomes a ``dense`` projection from the source map to the pooled
    map with weight ``1/count(i, j)`` on each synapse of output (i, j) — a per-output-neuron
    weight, exact where one shared pooling weight is not.  Zeros of an explicit ZeroPadding
    before the pool (``zero_pad``, pending) are real pixels and count in the divisor."""
    (h, w, c), (ho, wo, co) = src_shape, out_shape
    n_src, n_tgt = h * w * c, ho * wo * co
    if n_src * n_tgt > EXCL_PAD_MAX_ENTRIES:
        raise UnsupportedLayerError(
            f"avgpool {name!r}: its divisor excludes the padding (count_include_pad=False), "
            f"which is converted as explicit synapses with a per-neuron weight: a "
            f"{n_src}×{n_tgt} projection is over the {EXCL_PAD_MAX_ENTRIES:,}-entry limit; use "
            f"padding='valid' or count_include_pad=True for a map this large")
    (kh, kw), (sy, sx), (pt, _, pl, _) = geom["kernel"], geom["stride"], geom["padding"]
    zt, zb, zl, zr = zero_pad
    oy = np.arange(ho)[:, None] * sy - pt + np.arange(kh)[None, :]   # (ho, kh) source rows
    ox = np.arange(wo)[:, None] * sx - pl + np.arange(kw)[None, :]
    cy = ((oy >= -zt) & (oy < h + zb)).sum(1)  # taps inside the (zero-padded) input
    cx = ((ox >= -zl) & (ox < w + zr)).sum(1)
    cnt = cy[:, None] * cx[None, :]
    W = np.zeros((n_src, n_tgt))
    ch = np.arange(c)
    for i in range(ho):
        for j in range(wo):
            for y in oy[i][(oy[i] >= 0) & (oy[i] < h)]:
                for x in ox[j][(ox[j] >= 0) & (ox[j] < w)]:
                    W[(y * w + x) * c + ch, (i * wo + j) * c + ch] = 1.0 / cnt[i, j]
    return _Term(tname, src, "dense", W, {"pool_excl_pad": True},
                 rows_channel=np.arange(n_src) % c)


def _dense_kernel(kernel: np.ndarray, groups: int) -> np.ndarray:
    """A grouped (kh, kw, cin/G, cout) kernel as the block-diagonal groups=1 kernel."""
    if groups == 1:
        return np.asarray(kernel, np.float64)
    kh, kw, cg, cout = kernel.shape
    og = cout // groups
    full = np.zeros((kh, kw, cg * groups, cout))
    for g in range(groups):
        full[:, :, g * cg:(g + 1) * cg, g * og:(g + 1) * og] = kernel[..., g * og:(g + 1) * og]
    return full


def _normalised(t: _Term, lam_s: np.ndarray, lam_t: np.ndarray, extra: float) -> np.ndarray:
    """Float weights of a term in threshold units of the target: W·λ_S/λ_T·extra."""
    w = t.weights
    ls = np.asarray(lam_s, np.float64)
    lt = np.asarray(lam_t, np.float64)
    if t.kind == "dense":
        rs = ls[t.rows_channel % ls.size] if ls.size > 1 else ls
        out = w * (extra / lt)[None, :] if lt.size > 1 else w * (extra / float(lt[0]))
        return out * rs[:, None] if ls.size > 1 else out * float(rs[0])
    if t.kind == "conv":
        out = w * (extra / lt) if lt.size > 1 else w * (extra / float(lt[0]))
        if ls.size == 1:
            return out * float(ls[0])
        return out * ls[kernel_in_channels(w.shape, t.geom.get("groups", 1))][None, None]
    return w * ls * extra / lt  # (C,) weights of pooling / identity projections


def convert(graph: Graph, calibration=None, method: str = "ecc", weight_bits: int | None = 8,
            profile=DEFAULT_PROFILE, steps: int | None = None, **options) -> CoreNetwork:
    """Convert a float :class:`~converter.graph.Graph` to an integer :class:`CoreNetwork`.

    Parameters
    ----------
    graph : the float network (any importer or :class:`~converter.builder.GraphBuilder`).
    calibration : the same array :meth:`Graph.predict` and ``emulator.run`` take, in the
        graph's input layout (``graph.input_spec.shape`` per sample): **raw integers** (any
        integer dtype, e.g. the uint8 images as loaded; read as ``raw · scale + offset`` with
        the graph's :class:`~hw_models.inputspec.InputSpec`) or **floats in the model's own
        units** (e.g. ``x / 255``; floats on the raw grid are snapped to it exactly, so both
        give the same network bit for bit).  Floats outside the model's range (e.g. floats
        0..255 for a model in 0..1) are refused with a DataError saying what was expected and
        what was seen.  For ``encoding="events"`` the raw integers are event counts per pixel.
        None: weights-only scales (λ = 1 for every layer), for feasibility studies — fast, and
        never materialises conv synapses.
    method : ``"ecc"`` | ``"robust"`` | ``"max"`` | ``"rmp"`` (module docstring).
    weight_bits : signed weight bits, at most the profile's; None = "float" (2^23 resolution,
        needs a profile with float weights such as ``"ideal"``).
    profile : a profile name or :class:`~hw_models.profiles.ChipProfile`.
    steps : run length T, needed only for ``tre="bias"``, and the window per layer for
        ``timing="layerwise"``.
    options : ``reset`` (subtract|zero), ``encoding`` (analog|rate|bernoulli|events; default
        the graph's spec, analog), ``input_max`` (largest raw integer; default the graph's
        spec, 255), ``input_scale`` (model units per raw integer; default the graph's spec —
        required when the graph does not say it and calibration is given; for events the
        scale per event *count*: the converter multiplies by ``steps`` itself, since one event
        is one spike in one step), ``maxpool`` (gate|runmax|circuit|avg), ``readout`` (v|spikes),
        ``timing``
        (sync: delay 0 | hardware: delay 1 | layerwise: every layer integrates for ``steps``
        steps, then fires for ``steps`` steps — :mod:`converter.layerwise`; the QCFS SNN then
        equals its quantised ANN at T = L), ``avgpool`` (auto: folded into the next layer
        after a QCFS layer, else a spiking average | fold | spike), ``percentile``,
        ``per_channel``, ``rho`` (0.5),
        ``tre`` (vinit|bias|none), ``rmp_scale`` (0.8), ``map`` (True), ``share`` (True),
        ``batch_size`` (128, calibration batches).

    The network's :attr:`~hw_models.network.CoreNetwork.input_spec` records these units, so
    ``emulator.run`` takes the same arrays; a what-if ``profile`` object travels with it.

    Raises :class:`ConversionError` (unknown option or value, impossible profile, NaN weights,
    unsupported structure) naming the thing at fault, :class:`DataError` for calibration data
    in the wrong units or shape.
    """
    if not isinstance(graph, Graph):
        raise ConversionError(f"convert() takes a converter.graph.Graph, got "
                              f"{type(graph).__name__} (use converter.load_model first)")
    opt = _options(method, steps, options)
    prof = get_profile(profile)
    if weight_bits is not None:
        if isinstance(weight_bits, bool) or not isinstance(weight_bits, (int, np.integer)) \
                or not 2 <= weight_bits <= FLOAT_BITS:
            raise ConversionError(f"weight_bits must be an integer in [2, {FLOAT_BITS}] or "
                                  f"None, got {weight_bits!r}")
        weight_bits = int(weight_bits)
        if prof.weight_bits is not None and weight_bits > prof.weight_bits:
            raise ConversionError(f"weight_bits={weight_bits} exceeds the {prof.weight_bits}-bit "
                                  f"weights of profile {prof.name!r}")
    elif prof.weight_bits is not None:
        raise ConversionError(f"weight_bits=None (float weights) is impossible on profile "
                              f"{prof.name!r} ({prof.weight_bits}-bit weights); use "
                              f"profile='ideal' for float studies")
    for layer in graph:
        for wn, arr in layer.weights.items():
            if not np.all(np.isfinite(arr)):
                raise ConversionError(f"layer {layer.name!r} ({layer.kind}): weight {wn!r} "
                                      f"contains NaN or infinite values")
    notes = []
    if opt["reset"] not in prof.native_resets:
        notes.append(f"reset {opt['reset']!r} is not native on {prof.name} "
                     f"(native: {list(prof.native_resets)})")
    g = prepare(graph)
    planner = _Planner(g, opt)
    out_name = planner.run()
    pops = planner.pops

    # ---- λ per population --------------------------------------------------------------
    spec = input_spec_for(graph, opt, steps)
    if spec.scale is None:
        if calibration is not None:
            raise ConversionError(
                f"graph {graph.name!r} does not say its input scale (model units per raw "
                f"integer), so the network cannot be driven by raw integers: pass "
                f"input_scale= to load_model or convert (e.g. 1/255 for a model trained on "
                f"pixels/255, 1 for raw 0..255)")
        scale_used = np.ones(1)
        notes.append("the graph does not say its input scale: weights-only conversion with "
                     "scale 1 (fine for feasibility; give input_scale to run it on data)")
    else:
        scale_used = spec.scale_array()
    gain = {"analog": 1.0, "rate": spec.raw_max, "bernoulli": spec.raw_max,
            "events": spec.bins}[spec.encoding]
    lam_in = scale_used * float(gain)
    if np.any(spec.offset_array() != 0):
        _fold_offset(pops, spec, g.layer(g.input_name).shape)
    stats = [p.stat for p in pops.values() if p.stat is not None]
    if calibration is None:
        lam = {s: np.ones(1) for s in stats}
        silent = []
        notes.append("no calibration: weights-only scales (λ = 1 for every layer)")
    else:
        xm = spec.as_model(calibration, "calibration")  # raw integers or model units
        xm = xm.reshape((len(xm),) + tuple(g.layer(g.input_name).shape))
        lam = activation_scales(g, stats, xm, opt["percentile"], opt["per_channel"],
                                opt["batch_size"], internal=True)
        silent = lam.pop("_silent")
        if silent:
            notes.append(f"layers never active on the calibration data (λ set to 1 or the "
                         f"largest channel's): {silent}")
    lam_pop = {"input": lam_in, graph.input_name: lam_in}
    qcfs = {p.name: p.qcfs for p in pops.values() if p.qcfs is not None}
    if qcfs:
        notes.append(f"QCFS activations (Bu et al. 2022) in {sorted(qcfs)}: λ and L from the "
                     f"model, θ = λ, v(0) = θ/2")
        if opt["reset"] != "subtract":
            notes.append("QCFS conversion needs reset by subtraction; reset='zero' breaks its "
                         "equality with the quantised ANN")
    for p in pops.values():
        if p.qcfs is not None:
            lam_pop[p.name] = np.array([p.qcfs[0]])  # the trained λ, never calibrated
        elif p.stat is not None:
            lam_pop[p.name] = np.asarray(lam[p.stat], np.float64)
            clip = g.layer(p.stat).params.get("max_value") if g.layer(p.stat).kind == "relu" \
                else None
            if clip is not None:  # ReLU6: the rate ceiling (1 spike/step = λ) is the clip
                lam_pop[p.name] = np.minimum(lam_pop[p.name], float(clip))
            if p.role == "output":  # one λ for all logits, or the argmax would change
                lam_pop[p.name] = np.array([lam_pop[p.name].max()])
    for _ in range(4):  # inheritance and sharing, until stable
        for p in pops.values():
            if p.inherits:
                lam_pop[p.name] = lam_pop[p.terms[0].source]
        if opt["share"]:
            lam_pop = share_scales(lam_pop, [gr for gr in planner.groups
                                             if graph.input_name not in gr and "input" not in gr])
    # ---- populations -------------------------------------------------------------------
    in_layer = g.layer(g.input_name)
    in_pop_name = "input"
    populations = [Population(in_pop_name, in_layer.shape, kind="input",
                               encoding=spec.encoding,
                               input_max=1 if spec.raw_max is None else spec.raw_max)]
    projections, qrep, lam_rep = [], {}, {}
    delay = 1 if opt["timing"] == "hardware" else 0
    # v range of the profile, within the int64 headroom the integer-range proof needs (only
    # the 64-bit 'ideal' profile is wider)
    vmin = max(prof.v_min_unscaled, -STATE_LIMIT)
    vmax = min(prof.v_max_unscaled, STATE_LIMIT)
    for p in pops.values():
        lt = lam_pop[p.name]
        spiking = p.role != "output" or opt["readout"] == "spikes"
        extra = 1.0
        if method == "rmp" and p.role in ("neuron", "output") and spiking and p.qcfs is None:
            extra = 1.0 / opt["rmp_scale"]  # threshold × rmp_scale  ≡  weights ÷ rmp_scale
        fw = {}
        for t in p.terms:
            src = in_pop_name if t.source == "input" else t.source
            fw[t.name] = (src, t, _normalised(t, lam_pop.get(t.source, lam_pop["input"]), lt,
                                              extra))
        bias = None
        if p.bias is not None:
            bias = np.broadcast_to(p.bias * extra / lt, p.shape).reshape(-1).copy()
        if method == "ecc" and opt["tre"] == "bias" and p.role in ("neuron", "avg") \
                and p.qcfs is None:
            add = opt["rho"] / steps
            bias = np.full(int(np.prod(p.shape)), add) if bias is None else bias + add
        relay = p.role == "relay" and all(np.allclose(w, 1.0) for _, _, w in fw.values())
        for _, t, w in fw.values():
            if not np.all(np.isfinite(w)):
                raise ConversionError(f"population {p.name!r}: projection {t.name!r} has "
                                      f"non-finite normalised weights (λ = {lt})")
        q = quantise_population(p.name, {k: w for k, (_, _, w) in fw.items()}, bias,
                                weight_bits, prof, fixed_theta=1 if relay else None)
        theta = q["theta"]
        v_init = 0
        if relay and prof.spike_rule == ">":
            v_init = 1  # v = 1 + θ > θ: every passed spike re-emits; the residue stays 1
        elif p.qcfs is not None or (p.role == "avg" and getattr(
                pops.get(p.terms[0].source), "qcfs", None) is not None):
            # QCFS neurons, and averages of QCFS outputs (Bu et al.: v(0) = θ/2 in every IF
            # layer, so the average of L-level counts is rounded, not floored)
            v_init = qcfs_v_init(theta, prof.spike_rule)
        elif method == "ecc" and opt["tre"] == "vinit" and p.role in ("neuron", "avg"):
            v_init = int(round(opt["rho"] * theta))
        if not vmin <= v_init <= vmax or theta > vmax:
            raise ConversionError(f"population {p.name!r}: threshold {theta} / v_init {v_init} "
                                  f"outside the state range [{vmin}, {vmax}] of {prof.name}")
        populations.append(Population(
            p.name, p.shape, threshold=theta, reset=opt["reset"], decay_u=DECAY_ONE, decay_v=0,
            bias=q["bias"], v_init=v_init, v_min=vmin, v_max=vmax, overflow=prof.v_overflow,
            spike_rule=prof.spike_rule, spiking=spiking))
        for k, (src, t, _) in fw.items():
            geom = dict(t.geom)
            projections.append(Projection(
                t.name, src, p.name, t.kind, q["weights"][k], exponent=q["exponents"][k],
                delay=delay, kernel=geom.get("kernel", (1, 1)), stride=geom.get("stride", (1, 1)),
                padding=geom.get("padding", (0, 0, 0, 0)),
                dilation=geom.get("dilation", (1, 1)), gate=geom.get("gate", "winner"),
                groups=geom.get("groups", 1)))
        del fw
        qrep[p.name] = dict(q["report"], role=p.role, v_init=v_init)
        lam_rep[p.name] = {"max": float(np.max(lt)), "mean": float(np.mean(lt)),
                           "per_channel": int(np.size(lt)) > 1,
                           "inherited": p.inherits, "layer": p.stat,
                           "values": [float(v) for v in np.reshape(lt, -1)]}
    layerwise = None
    if opt["timing"] == "layerwise":
        from .layerwise import layerwise_schedule
        populations, projections, layerwise = layerwise_schedule(
            populations, projections, out_name, steps, prof, vmin, vmax)
        notes.append(f"timing='layerwise' (converter.layerwise): every spiking layer integrates "
                     f"for T = {steps} steps, then fires for T steps; read the prediction at "
                     f"step {layerwise['run_length']} ({layerwise['layers']} layers × T)")
    if prof.max_delay is not None and delay > prof.max_delay:
        raise ConversionError(f"timing='hardware' needs delay 1 but profile {prof.name!r} "
                              f"allows at most {prof.max_delay}")
    layout = {"C": "flat"}.get(graph.input_layout, graph.input_layout)
    meta = {
        "method": method, "profile": prof.name, "weight_bits": weight_bits, "steps": steps,
        "options": dict(opt, encoding=spec.encoding, input_max=spec.raw_max,
                        input_scale=spec.scale),
        "lambda_input": float(lam_in[0]) if lam_in.size == 1 else lam_in.tolist(),
        "lambda": lam_rep, "quantisation": qrep, "ann_macs": count_macs(g)["total"],
        "graph": graph.name, "calibration_samples": 0 if calibration is None else
        int(len(calibration)), "float_weights": weight_bits is None,
        "reset_native": opt["reset"] in prof.native_resets,
        "population_roles": {p.name: p.role for p in pops.values()},
        "notes": notes,
    }
    if layerwise is not None:
        meta["layerwise"] = {k: v for k, v in layerwise.items() if k != "depth"}
        meta["layerwise"]["depth"] = {k: int(v) for k, v in layerwise["depth"].items()}
        meta["population_roles"]["layerwise/clock"] = "clock"
    if weight_bits is None:
        notes.append("float conversion: integers with 2^23 resolution (θ = ⌊(2^23−1)/max|W'|⌋),"
                     " numerically as fine as float32")
    if opt["maxpool"] == "circuit":
        populations, projections = _maxpool_circuits(populations, projections, prof)
        notes.append("maxpool='circuit': each max-pool is K+1 IF neurons per pooled neuron "
                     "(converter.maxpool_circuit); its difference→pooled hop is same-step "
                     "(delay 0), which a chip with one step per hop cannot deliver exactly")
    net = CoreNetwork(populations, projections, output=out_name, readout=opt["readout"],
                      input_layout=layout, profile=prof.name if is_stock(prof) else prof,
                      meta=meta, input_spec=spec)
    net.validate()
    try:
        check_ranges(net, None if steps is None else int(
            steps if layerwise is None else layerwise["horizon"]))
    except NetworkError as exc:
        raise ConversionError(f"the converted network cannot run exactly: {exc}") from None
    if opt["map"]:
        net = _map(net, prof)
    return net


def _maxpool_circuits(populations, projections, prof):
    """Replace every runmax gate and its relay by the IF-neuron circuit of the same function
    (the relay's name is kept for the pooled population, so nothing downstream changes)."""
    from .maxpool_circuit import runmax_circuit
    pops, projs = list(populations), []
    by = {p.name: p for p in pops}
    for pr in projections:
        if pr.kind != "maxpool":
            projs.append(pr)
            continue
        relay = by[pr.target]
        new_pops, new_projs = runmax_circuit(
            relay.name, pr.source, by[pr.source].shape, pr.kernel, pr.stride, pr.padding,
            spike_rule=prof.spike_rule, src_delay=pr.delay, v_min=relay.v_min,
            v_max=relay.v_max)
        i = pops.index(relay)
        pops[i:i + 1] = new_pops  # the difference neurons first, then the pooled population
        projs += new_projs
    return pops, projs


def _map(net: CoreNetwork, prof) -> CoreNetwork:
    mapped, report = map_to_cores(net, prof)
    mapped.meta = dict(mapped.meta, mapping=report.to_dict())
    return mapped


def _fold_offset(pops: dict, spec: InputSpec, in_shape: tuple) -> None:
    """An input offset (``model = raw·scale + offset``) moves into the bias of the layers fed by
    the input: ``Σ W·(raw·s + o) + b = Σ (W·s)·raw + (b + Σ W·o)``.  Exact for dense layers and
    convolutions: before a padded convolution the padded border is 0 in model units, not ``o``,
    so the offset adds only at the kernel taps inside the image and the bias becomes one value
    per output neuron (:func:`converter.passes.shift_through_conv`, as for a BN folded into a
    padded conv).  Pooling or residual terms straight from the input are refused."""
    off = spec.offset_array()
    for p in pops.values():
        for t in p.terms:
            if t.source != "input":
                continue
            if t.kind == "dense":
                o = off[t.rows_channel % off.size] if off.size > 1 else np.full(len(t.weights),
                                                                                 off[0])
                add = o @ t.weights
            elif t.kind == "conv":
                g = t.geom
                add = shift_through_conv(np.broadcast_to(off, (int(in_shape[-1]),)), in_shape,
                                         t.weights, g.get("stride", (1, 1)),
                                         tuple(g.get("padding", (0, 0, 0, 0))),
                                         g.get("dilation", (1, 1)), int(g.get("groups", 1)))
                if add.ndim > 1 and add.shape != tuple(p.shape):
                    raise ConversionError(
                        f"projection {t.name!r}: the offset's per-neuron bias has shape "
                        f"{add.shape}, but population {p.name!r} has shape {tuple(p.shape)}")
            else:
                raise ConversionError(
                    f"projection {t.name!r} ({t.kind}) takes the raw input directly, but the "
                    f"input spec has an offset {spec.offset}: the offset can be folded into a "
                    f"bias only for dense and convolution layers")
            base = np.zeros(p.shape[-1]) if p.bias is None else p.bias
            p.bias = np.asarray(base, np.float64) + add
