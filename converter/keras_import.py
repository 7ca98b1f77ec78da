"""Keras models → :class:`~converter.graph.Graph`, read with h5py, json and zipfile only.

Never imports TensorFlow or Keras and never executes anything stored in a file (Lambda and custom
layers are refused).  Formats:

* **Keras 1**: architecture JSON + weights HDF5 (``model.h5`` with ``model.json`` beside it), or
  a full-model HDF5 with ``model_config``;
* **Keras 2** full-model HDF5 (``model_config`` attribute, weights under ``model_weights``);
* **Keras 3** legacy HDF5 (same layout) and the ``.keras`` zip (``config.json`` +
  ``model.weights.h5`` with ``layers/<key>/vars/<i>``).

Layout conventions: ``channels_first`` (Keras 2/3 ``data_format``, Keras 1 ``dim_ordering="th"``)
models keep ``input_layout="CHW"`` and their original ``input_shape``; internally everything is
HWC.  Keras 1 ``th`` kernels are stored (out, in, kh, kw) and transposed to HWIO; kernels from the
Theano backend (``backend="theano"`` attribute, or Keras 1 with ``th`` ordering) are true
convolutions and are flipped spatially.

Flatten order in a channels-first model depends on the Flatten layer's own config, not on the
model: a Flatten **without** ``data_format`` (Keras 1, Keras 2.0/2.1) flattens the CHW tensor as
it is, so the dense kernel after it has its rows in CHW order and they are permuted to HWC at
import; a Flatten **with** ``data_format="channels_first"`` (Keras ≥ 2.2, tf.keras, Keras 3)
first permutes its input to channels-last, so the dense rows are already in HWC order and are
kept.  (Reading the second kind like the first predicts at chance level with no error.)  A fused ``activation="relu"``
becomes a separate layer ``<name>_relu``; a fused or separate softmax must be the output.

Input preprocessing: ``Rescaling`` (``y = x·scale + offset``) and ``Normalization``
(``y = (x − mean) / max(√variance, 1e-7)``, per channel) layers right after the input leave the
graph and become its :class:`~hw_models.inputspec.InputSpec` (``model = raw·scale + offset``,
composed in order).  The Keras model then takes raw values itself, so its raw→Keras scale is
``input_scale`` when given, else 1.  Preprocessing anywhere else is refused.
"""

from __future__ import annotations

import io
import json
import re
import struct
import zipfile
import zlib
from pathlib import Path

import h5py
import numpy as np

from hw_models.errors import (ConversionError, FileFormatError, NeuroemuError,
                              UnsupportedLayerError)
from hw_models.safeio import loads_json, open_h5, read_dataset, read_zip_member
from .builder import GraphBuilder
from .graph import Graph
from .qcfs import find_keras_qcfs

# Keras class names, all generations, grouped by what they become
_CONV = {"Conv2D", "Convolution2D"}
_DEPTHWISE = {"DepthwiseConv2D", "SeparableConv2D", "SeparableConvolution2D"}
_DENSE = {"Dense"}
_POOL = {"MaxPooling2D": "maxpool", "MaxPool2D": "maxpool", "AveragePooling2D": "avgpool",
         "AvgPool2D": "avgpool"}
_GAP = {"GlobalAveragePooling2D", "GlobalAvgPool2D"}
_PASS = {"Dropout", "SpatialDropout2D", "GaussianDropout", "GaussianNoise", "AlphaDropout",
         "ActivityRegularization"}
_INPUT = {"InputLayer"}
_PREPROCESSING = {"Rescaling", "Normalization"}


def _vals(a):
    """One number, or a per-channel tuple."""
    a = np.asarray(a, np.float64).reshape(-1)
    return float(a[0]) if a.size == 1 else tuple(float(v) for v in a)


def _read_h5_layers(group: h5py.Group) -> dict[str, list[np.ndarray]]:
    """Legacy HDF5 weights: ``{layer name: [arrays in weight_names order]}``."""
    out = {}
    names = group.attrs.get("layer_names", [])
    for lname in names:
        lname = lname.decode() if isinstance(lname, bytes) else str(lname)
        g = group[lname]
        arrays = []
        for wname in g.attrs.get("weight_names", []):
            wname = wname.decode() if isinstance(wname, bytes) else str(wname)
            ds = g[wname] if wname in g else g[wname.split(":")[0]]
            arrays.append(read_dataset(ds, f"weight {wname!r} of layer {lname!r}", kinds="fiu"))
        out[lname] = arrays
    return out


def _read_keras3_vars(h5: h5py.File, layer_cfgs: list) -> dict[str, list[np.ndarray]]:
    """``.keras`` weights: ``layers/<key>/vars/<i>``, matched to layers by the ``name`` attribute
    of ``vars`` when present, else by Keras's snake-case-class-name order."""
    out: dict[str, list] = {}
    if "layers" not in h5:
        return out
    by_key = {}
    for key, g in h5["layers"].items():
        vars_ = g.get("vars")
        arrays = []
        if vars_ is not None:
            arrays = [read_dataset(vars_[str(i)], f"weights layers/{key}/vars/{i}", kinds="fiu")
                      for i in range(len(vars_))]
            tag = vars_.attrs.get("name")
            if tag is not None:
                out[tag.decode() if isinstance(tag, bytes) else str(tag)] = arrays
                continue
        by_key[key] = arrays
    counters: dict[str, int] = {}
    for cls, cfg, _ in layer_cfgs:
        if cls in _INPUT:  # Keras 3 does not save InputLayer objects
            continue
        snake = re.sub("([a-z])([A-Z])", r"\1_\2", re.sub("(.)([A-Z][a-z]+)", r"\1_\2", cls))
        snake = snake.lower()
        n = counters.get(snake, 0)
        counters[snake] = n + 1
        key = snake if n == 0 else f"{snake}_{n}"
        if cfg.get("name") not in out and key in by_key:
            out[cfg["name"]] = by_key[key]
    return out


def _layer_list(config: dict, path) -> tuple[list, list, list]:
    """Normalise a model config to ``[(class, cfg, [(inbound layer, node, tensor)])]`` plus the
    model's input and output layer names."""
    cls = config.get("class_name")
    body = config.get("config")
    if cls == "Sequential":
        layers = body if isinstance(body, list) else body.get("layers", [])
        out, prev = [], None
        for item in layers:
            c, cfg = item["class_name"], item.get("config", {})
            out.append((c, cfg, [] if prev is None else [(prev, 0, 0)]))
            prev = cfg.get("name")
        return out, [out[0][1].get("name")] if out else [], [prev]
    if cls in ("Model", "Functional"):
        out = []
        for item in body.get("layers", []):
            c, cfg = item["class_name"], item.get("config", {})
            cfg = dict(cfg, name=item.get("name", cfg.get("name")))
            inbound = []
            nodes = item.get("inbound_nodes", [])
            if len(nodes) > 1:
                raise UnsupportedLayerError(f"layer {cfg['name']!r} ({c}) is shared (called "
                                            f"{len(nodes)} times); shared layers are not supported")
            for node in nodes:
                if isinstance(node, dict):  # Keras 3
                    for arg in _keras3_tensors(node.get("args", [])):
                        inbound.append(tuple(arg[:3]))
                    if str(item.get("module", "")).startswith(("keras.src.ops", "keras.ops")):
                        # a keras.ops operation: keep its constant arguments (QCFS chains)
                        args = node.get("args", [])
                        cfg["__op__"] = {
                            "args": [a for a in args if not isinstance(a, (dict, list))],
                            "tensor_first": bool(args) and isinstance(args[0], dict)}
                else:  # Keras 1/2: [[name, node, tensor, kwargs?], ...]
                    for ref in node:
                        inbound.append((ref[0], int(ref[1]), int(ref[2])))
            out.append((c, cfg, inbound))
        # Keras 3 writes a single input/output as one [name, node, tensor] triple, Keras 1/2 as
        # a list of triples
        ins = _triples(body.get("input_layers", []))
        ins = [r[0] for r in ins]
        outs = _triples(body.get("output_layers", []))
        if len(ins) != 1 or len(outs) != 1:
            raise ConversionError(f"{path}: only single-input, single-output models are "
                                  f"supported (inputs {ins}, outputs {[o[0] for o in outs]})")
        return out, ins, [outs[0][0]]
    raise UnsupportedLayerError(f"{path}: top-level model class {cls!r} is not supported "
                                f"(Sequential, Model, Functional)")


def _triples(refs) -> list:
    """``["x", 0, 0]`` (Keras 3, one tensor) or ``[["x", 0, 0], …]`` → a list of triples."""
    if isinstance(refs, dict):  # Keras 3 may key them by name: {"x": ["x", 0, 0]}
        refs = list(refs.values())
    if refs and isinstance(refs[0], str):
        return [refs]
    return list(refs)


def _keras3_tensors(args):
    found = []
    for a in args:
        if isinstance(a, dict) and a.get("class_name") == "__keras_tensor__":
            found.append(a["config"]["keras_history"])
        elif isinstance(a, (list, tuple)):
            found.extend(_keras3_tensors(a))
    return found


def _activation_name(act) -> str:
    if isinstance(act, dict):
        cfg = act.get("config")
        act = cfg if isinstance(cfg, str) else act.get("class_name", str(act))
        if isinstance(act, dict):
            act = act.get("name", str(act))
    return str(act or "linear").lower()


class _KerasImporter:
    def __init__(self, config: dict, weights: dict, path, backend: str | None,
                 keras_version: str, input_scale):
        self.path, self.weights, self.input_scale = path, weights, input_scale
        self.layers, self.inputs, self.outputs = _layer_list(config, path)
        self.keras1 = keras_version.startswith("1")
        fmts = set()
        for c, cfg, _ in self.layers:
            fmt = cfg.get("data_format") or {"th": "channels_first", "tf": "channels_last"}.get(
                cfg.get("dim_ordering"))
            # Flatten's data_format says how it orders its output, not the tensor's layout
            if fmt and (c in _CONV or c in _DEPTHWISE or c in _POOL or c in _GAP
                        or c == "ZeroPadding2D"):
                fmts.add(fmt)
        if len(fmts) > 1:
            raise ConversionError(f"{path}: mixed channels_first/channels_last layers")
        self.cf = fmts == {"channels_first"}
        th_order = any(cfg.get("dim_ordering") == "th" for _, cfg, _ in self.layers)
        self.theano = (backend == "theano") or (backend is None and self.keras1 and th_order)
        self.alias: dict[str, str] = {}      # keras layer name -> graph layer name (its output)
        self.pre = None                      # (scale, offset) of stripped input preprocessing
        self.chw_flat: dict[str, tuple] = {}  # graph layer -> (C, H, W) of a channels-first flatten
        self.qcfs = find_keras_qcfs(self.layers)  # keras.ops QCFS chains (converter.qcfs)
        self.in_qcfs = {i for c in self.qcfs.values() for i in c[4]}

    def _input_shape(self):
        for c, cfg, _ in self.layers:
            shp = cfg.get("batch_input_shape") or cfg.get("batch_shape")
            if shp is None and cfg.get("input_shape") is not None:
                shp = [None] + list(cfg["input_shape"])
            if shp is None and cfg.get("input_dim") is not None:
                shp = [None, cfg["input_dim"]]
            if shp is not None:
                if any(v is None for v in shp[1:]):
                    raise ConversionError(f"{self.path}: input shape {shp} has unknown "
                                          f"dimensions; a fixed size is needed")
                return tuple(int(v) for v in shp[1:])
        raise ConversionError(f"{self.path}: the model config states no input shape")

    def check_layers(self) -> None:
        """One error naming every layer (and fused activation) that cannot be imported."""
        bad = []
        for i, (cls, cfg, _) in enumerate(self.layers):
            name = cfg.get("name")
            if i in self.in_qcfs:
                continue
            if "__op__" in cfg:
                bad.append(f"{name!r} (keras.ops {cls} outside a QCFS activation)")
                continue
            if cls == "Lambda" or cls not in _KNOWN:
                bad.append(f"{name!r} ({cls})")
                continue
            act = _activation_name(cfg.get("activation")) if "activation" in cfg else "linear"
            if act not in _ACTIVATIONS:
                bad.append(f"{name!r} ({cls}, activation {act!r})")
        if bad:
            raise UnsupportedLayerError(
                f"{self.path}: {len(bad)} unsupported Keras layer(s): {', '.join(bad)} "
                f"(custom and Lambda layers are never executed; supported activations: "
                f"{', '.join(_ACTIVATIONS)})")

    def build(self) -> Graph:
        self.check_layers()
        shp = self._input_shape()
        layout = "CHW" if (self.cf and len(shp) == 3) else None
        b = GraphBuilder(shp, layout, name=Path(self.path).stem)
        self.b = b
        in_cfg = self.layers[0]
        x = b.input(name=in_cfg[1].get("name", "input") if in_cfg[0] in _INPUT else "input")
        if in_cfg[0] in _INPUT:
            self.alias[in_cfg[1]["name"]] = x
        last = x
        for i, (cls, cfg, inbound) in enumerate(self.layers):
            name = cfg.get("name")
            if cls in _INPUT:
                continue
            if i in self.qcfs:  # a keras.ops QCFS chain: one activation
                src, end, lam, levels, _ = self.qcfs[i]
                last = b.relu(self.alias[src], lam, levels=levels, name=end)
                self.alias[end] = last
                continue
            if i in self.in_qcfs:
                continue
            srcs = [self.alias[r[0]] for r in inbound] if inbound else [x]
            if any(r[1] != 0 or r[2] != 0 for r in inbound):
                raise UnsupportedLayerError(f"layer {name!r} ({cls}) uses a non-first node or "
                                            f"tensor of its input (shared layers unsupported)")
            last = self._layer(cls, cfg, name, srcs)
            self.alias[name] = last
        out = self.alias.get(self.outputs[0], last)
        if out in self.chw_flat:
            raise UnsupportedLayerError(f"{self.path}: a channels-first Flatten output is the "
                                        f"model output; its order cannot be kept")
        g = b.build(output=out, input_scale=self.input_scale)
        if self.pre is not None:
            s0 = 1.0 if self.input_scale is None else float(self.input_scale)
            scale, offset = self.pre
            g = g.with_input_spec(scale=_vals(scale * s0), offset=_vals(offset))
        return g

    def _preprocessing(self, cls, cfg, name, src):
        """Fold a Rescaling/Normalization layer into ``self.pre`` (module docstring)."""
        built = list(self.b._layers)
        if len(built) != 1 or src != built[0]:  # only the input exists so far
            raise UnsupportedLayerError(f"layer {name!r} ({cls}) is only supported right after "
                                        f"the model input (it becomes the input spec)")
        shp = self._input_shape()
        c = (shp[0] if self.cf else shp[-1]) if len(shp) == 3 else 1
        if cls == "Rescaling":
            a = np.asarray(cfg.get("scale", 1.0), np.float64).reshape(-1)
            o = np.asarray(cfg.get("offset", 0.0), np.float64).reshape(-1)
        else:
            axis = cfg.get("axis", -1)
            axis = axis[0] if isinstance(axis, (list, tuple)) and len(axis) == 1 else axis
            ch_axis = (1 if self.cf else len(shp)) if len(shp) == 3 else None
            if axis is not None and len(shp) == 3 and axis not in (ch_axis, -1 if not self.cf
                                                                  else ch_axis):
                raise UnsupportedLayerError(f"layer {name!r} (Normalization): axis {axis} is "
                                            f"not the channel axis")
            if cfg.get("invert"):
                raise UnsupportedLayerError(f"layer {name!r} (Normalization): invert=True is "
                                            f"not supported")
            w = self.weights.get(name, [])
            mean, var = cfg.get("mean"), cfg.get("variance")
            if mean is None or var is None:
                if len(w) < 2:
                    raise FileFormatError(f"{self.path}: layer {name!r} (Normalization) has no "
                                          f"mean/variance (config or weights)")
                mean, var = w[0], w[1]
            mean = np.asarray(mean, np.float64).reshape(-1)
            std = np.maximum(np.sqrt(np.asarray(var, np.float64).reshape(-1)), 1e-7)
            a, o = 1.0 / std, -mean / std
        for v, what in ((a, "scale"), (o, "offset")):
            if v.size not in (1, c) or not np.all(np.isfinite(v)):
                raise ConversionError(f"layer {name!r} ({cls}): {what} {v.tolist()} does not fit "
                                      f"{c} input channels")
        s_prev, o_prev = self.pre if self.pre is not None else (np.ones(1), np.zeros(1))
        self.pre = (s_prev * a, o_prev * a + o)
        return src

    # -- one layer ---------------------------------------------------------------------------
    def _w(self, name, cls, count) -> list:
        arrays = self.weights.get(name, [])
        if len(arrays) < count:
            raise FileFormatError(f"{self.path}: layer {name!r} ({cls}) needs {count} weight "
                                  f"arrays, the file has {len(arrays)}")
        return arrays

    def _bias(self, w, cfg, name, cls):
        """The bias of a Dense/Conv layer: required when the config says ``use_bias`` (Keras 1:
        ``bias``), refused when it says no bias but the file holds one."""
        use = cfg.get("use_bias", cfg.get("bias", True))
        if use and len(w) < 2:
            raise FileFormatError(f"{self.path}: layer {name!r} ({cls}) has use_bias=True but "
                                  f"the file holds no bias array for it (damaged weights?)")
        if not use and len(w) > 1:
            raise FileFormatError(f"{self.path}: layer {name!r} ({cls}) has use_bias=False but "
                                  f"the file holds {len(w)} weight arrays")
        return w[1] if use else None

    def _act(self, src, act, name, cls, own: bool = False):
        """Apply an activation; ``own``: it is a layer of its own (named ``name``), else it is
        fused into layer ``name`` and becomes ``<name>_relu`` / ``<name>_softmax``."""
        act = _activation_name(act)
        b = self.b
        if act == "linear":
            return src
        if act in ("relu", "relu6"):
            mv = 6.0 if act == "relu6" else None
            return self._elementwise(
                src, lambda s: b.relu(s, mv, name=name if own else f"{name}_relu"))
        if act == "softmax":
            return b.softmax(self._plain(src, name, cls),
                             name=name if own else f"{name}_softmax")
        raise UnsupportedLayerError(f"layer {name!r} ({cls}): activation {act!r} is not "
                                    f"supported (relu, relu6, linear, softmax)")

    def _elementwise(self, src, make):
        y = make(src)
        if src in self.chw_flat:
            self.chw_flat[y] = self.chw_flat[src]
        return y

    def _plain(self, src, name, cls):
        if src in self.chw_flat:
            raise UnsupportedLayerError(f"layer {name!r} ({cls}) follows a channels-first "
                                        f"Flatten; only Dense may (its rows are permuted)")
        return src

    def _pad(self, cfg):
        return str(cfg.get("padding", cfg.get("border_mode", "valid"))).lower()

    def _layer(self, cls, cfg, name, srcs):
        b = self.b
        if cls in ("Lambda",) or cls not in _KNOWN:
            raise UnsupportedLayerError(f"layer {name!r} of class {cls!r} is not supported "
                                        f"(custom and Lambda layers are never executed)")
        if cls in _PASS:
            return srcs[0]
        if cls in _PREPROCESSING:
            return self._preprocessing(cls, cfg, name, srcs[0])
        if cls not in ("Add", "Concatenate", "Merge") and len(srcs) != 1:
            raise ConversionError(f"layer {name!r} ({cls}) expects one input, got {len(srcs)}")
        src = srcs[0]
        if cls == "Dense":
            w = self._w(name, cls, 1)
            kernel = np.asarray(w[0], dtype=np.float64)
            bias = self._bias(w, cfg, name, cls)
            if src in self.chw_flat:
                c, h, wd = self.chw_flat[src]
                if kernel.shape[0] != c * h * wd:
                    raise ConversionError(f"layer {name!r} (Dense): kernel has {kernel.shape[0]} "
                                          f"rows, the flattened input {c * h * wd}")
                kernel = kernel.reshape(c, h, wd, -1).transpose(1, 2, 0, 3).reshape(c * h * wd, -1)
            y = b.dense(src, kernel, bias, name=name)
            return self._act(y, cfg.get("activation"), name, cls)
        src = self._plain(src, name, cls) if cls not in ("Activation", "ReLU") else src
        if cls in _CONV:
            w = self._w(name, cls, 1)
            k = np.asarray(w[0], dtype=np.float64)
            if k.ndim != 4:
                raise FileFormatError(f"{self.path}: layer {name!r} ({cls}) kernel has shape "
                                      f"{k.shape}, expected 4-D")
            if self.keras1 and cfg.get("dim_ordering") == "th":
                k = k.transpose(2, 3, 1, 0)  # (out, in, kh, kw) -> (kh, kw, in, out)
            if self.theano:
                k = k[::-1, ::-1]
            if int(cfg.get("groups", 1)) != 1:
                raise UnsupportedLayerError(f"layer {name!r} ({cls}): groups="
                                            f"{cfg.get('groups')} not supported (groups=1 only)")
            bias = self._bias(w, cfg, name, cls)
            strides = cfg.get("strides", cfg.get("subsample", (1, 1)))
            dil = cfg.get("dilation_rate", (1, 1))
            pad = self._pad(cfg)
            if pad not in ("valid", "same"):
                raise UnsupportedLayerError(f"layer {name!r} ({cls}): padding {pad!r} "
                                            f"not supported")
            y = b.conv2d(src, k, bias, strides=strides, padding=pad, dilation=dil, name=name)
            return self._act(y, cfg.get("activation"), name, cls)
        if cls in _DEPTHWISE:
            return self._depthwise(cls, cfg, name, src)
        if cls in _POOL:
            pool = cfg.get("pool_size", (2, 2))
            strides = cfg.get("strides") or pool
            pad = self._pad(cfg)
            if _POOL[cls] == "maxpool":
                return b.maxpool(src, pool, strides, pad, name=name)
            return b.avgpool(src, pool, strides, pad, count_include_pad=False, name=name)
        if cls in _GAP:
            if cfg.get("keepdims"):
                raise UnsupportedLayerError(f"layer {name!r} ({cls}): keepdims=True unsupported")
            return b.global_avgpool(src, name=name)
        if cls == "Flatten":
            shp = b.shape(src)
            y = b.flatten(src, name=name)
            # Keras >= 2.2: data_format="channels_first" moves channels last before flattening
            # (HWC order, as inside the graph); without data_format the CHW tensor is flattened
            if self.cf and len(shp) == 3 and cfg.get("data_format") != "channels_first":
                self.chw_flat[y] = (shp[2], shp[0], shp[1])
            return y
        if cls == "Activation":
            return self._act(src, cfg.get("activation"), name, cls, own=True)
        if cls == "ReLU":
            if float(cfg.get("negative_slope") or 0) != 0 or float(cfg.get("threshold") or 0):
                raise UnsupportedLayerError(f"layer {name!r} (ReLU): negative_slope/threshold "
                                            f"other than 0 not supported")
            mv = cfg.get("max_value")
            return self._elementwise(src, lambda s: b.relu(s, mv, name=name))
        if cls == "Softmax":
            return b.softmax(src, name=name)
        if cls == "BatchNormalization":
            return self._batchnorm(src, cfg, name, cls)
        if cls == "ZeroPadding2D":
            p = cfg.get("padding", (1, 1))
            if isinstance(p, dict):  # Keras 1: top_pad, bottom_pad, left_pad, right_pad
                p = (p["top_pad"], p["bottom_pad"], p["left_pad"], p["right_pad"])
            elif not np.isscalar(p) and len(p) == 2 and not np.isscalar(p[0]):
                p = (p[0][0], p[0][1], p[1][0], p[1][1])
            return b.zeropad(src, p, name=name)
        if cls == "Reshape":
            tgt = tuple(cfg["target_shape"])
            if len(tgt) != 1 and self.cf:
                raise UnsupportedLayerError(f"layer {name!r} (Reshape) to {tgt} in a "
                                            f"channels-first model is not supported")
            return b.reshape(src, tgt, name=name)
        if cls in ("Add", "Concatenate", "Merge"):
            srcs = [self._plain(s, name, cls) for s in srcs]
            mode = {"Add": "sum", "Concatenate": "concat"}.get(cls, cfg.get("mode"))
            if mode == "sum":
                return b.add(*srcs, name=name)
            if mode == "concat":
                axis = int(cfg.get("axis", cfg.get("concat_axis", -1)))
                nd = len(b.shape(srcs[0]))
                ok = {-1, nd} if not self.cf or nd == 1 else {1, -3}
                if axis not in ok:
                    raise UnsupportedLayerError(f"layer {name!r} ({cls}): concatenation on axis "
                                                f"{axis} is not the channel axis")
                return b.concat(*srcs, name=name)
            raise UnsupportedLayerError(f"layer {name!r} ({cls}): merge mode {mode!r} "
                                        f"not supported")
        raise UnsupportedLayerError(f"layer {name!r} of class {cls!r} is not supported")

    def _depthwise(self, cls, cfg, name, src):
        """DepthwiseConv2D → a conv2d with groups = input channels; SeparableConv2D → that
        (named ``<name>_depthwise``, no bias) then a 1×1 conv2d (``name``, with the bias).
        Keras's depthwise kernel (kh, kw, c_in, m) puts output ``c·m + j`` in group c, which is
        its C-order reshape to (kh, kw, 1, c_in·m)."""
        sep = cls != "DepthwiseConv2D"
        w = self._w(name, cls, 2 if sep else 1)
        dk = np.asarray(w[0], dtype=np.float64)
        if dk.ndim != 4:
            raise FileFormatError(f"{self.path}: layer {name!r} ({cls}) depthwise kernel has "
                                  f"shape {dk.shape}, expected (kh, kw, c_in, multiplier)")
        if self.theano:
            dk = dk[::-1, ::-1]
        kh, kw, cin, m = dk.shape
        use_bias = cfg.get("use_bias", True)
        bias = w[2 if sep else 1] if use_bias and len(w) > (2 if sep else 1) else None
        pad = self._pad(cfg)
        if pad not in ("valid", "same"):
            raise UnsupportedLayerError(f"layer {name!r} ({cls}): padding {pad!r} not supported")
        b = self.b
        y = b.conv2d(src, dk.reshape(kh, kw, 1, cin * m), None if sep else bias,
                     strides=cfg.get("strides", (1, 1)), padding=pad,
                     dilation=cfg.get("dilation_rate", (1, 1)),
                     name=f"{name}_depthwise" if sep else name, groups=cin)
        if sep:
            pk = np.asarray(w[1], dtype=np.float64)
            y = b.conv2d(y, pk, bias, name=name)
        return self._act(y, cfg.get("activation"), name, cls)

    def _batchnorm(self, src, cfg, name, cls):
        nd = len(self.b.shape(src))
        axis = cfg.get("axis", -1)
        if isinstance(axis, (list, tuple)):  # tf.keras writes [3]
            if len(axis) != 1:
                raise UnsupportedLayerError(f"layer {name!r} (BatchNormalization): axis {axis} "
                                            f"normalises over several axes")
            axis = axis[0]
        axis = int(axis)
        channel_axes = {-1, nd} if (not self.cf or nd == 1) else {1, -3}
        if axis not in channel_axes:
            raise UnsupportedLayerError(f"layer {name!r} (BatchNormalization): axis {axis} is "
                                        f"not the channel axis")
        if int(cfg.get("mode", 0)) != 0:
            raise UnsupportedLayerError(f"layer {name!r} (BatchNormalization): Keras 1 mode "
                                        f"{cfg.get('mode')} unsupported (mode 0 only)")
        scale, center = cfg.get("scale", True), cfg.get("center", True)
        n = 2 + int(bool(scale)) + int(bool(center))
        w = list(self._w(name, cls, n))
        gamma = w.pop(0) if scale else None
        beta = w.pop(0) if center else None
        return self.b.batchnorm(src, gamma, beta, w[0], w[1], float(cfg.get("epsilon", 1e-3)),
                                name=name)


_ACTIVATIONS = ("linear", "relu", "relu6", "softmax")
_KNOWN = (_CONV | _DEPTHWISE | _DENSE | set(_POOL) | _GAP | _PASS | _INPUT | _PREPROCESSING |
          {"Flatten", "Activation", "ReLU", "Softmax", "BatchNormalization", "ZeroPadding2D",
           "Reshape", "Add", "Concatenate", "Merge"})


def _decode(v):
    return v.decode() if isinstance(v, bytes) else v


def load_keras(path, input_scale: float | None = None) -> Graph:
    """Import a Keras 1/2/3 model (``.h5`` full model, ``.h5`` weights + ``.json`` beside it,
    ``.json`` with ``.h5`` beside it, or ``.keras`` zip) as a float :class:`Graph`."""
    path = Path(path)
    if not path.exists():
        raise FileFormatError(f"{path}: no such file")
    if path.suffix == ".json":
        path = path.with_suffix(".h5")
        if not path.exists():
            raise FileFormatError(f"{path}: the weights HDF5 beside the architecture JSON is "
                                  f"missing")
    try:
        if zipfile.is_zipfile(path):
            return _load_keras_zip(path, input_scale)
        return _load_keras_h5(path, input_scale)
    except (OSError, KeyError, ValueError, TypeError, IndexError, AttributeError, RuntimeError,
            RecursionError, OverflowError, EOFError, NotImplementedError, zlib.error,
            struct.error, zipfile.BadZipFile, json.JSONDecodeError) as exc:
        if isinstance(exc, NeuroemuError):
            raise
        raise FileFormatError(f"{path}: cannot read Keras model ({type(exc).__name__}: "
                              f"{exc})") from exc


def _load_keras_h5(path: Path, input_scale) -> Graph:
    with open_h5(path, "Keras model") as f:
        attrs = {k: _decode(v) for k, v in f.attrs.items()}
        if "model_config" in attrs:
            config = loads_json(attrs["model_config"], f"{path}: model_config")
            group = f["model_weights"] if "model_weights" in f else f
        else:
            beside = path.with_suffix(".json")
            if not beside.exists():
                raise FileFormatError(f"{path}: HDF5 holds weights only and no architecture "
                                      f"JSON was found beside it ({beside.name})")
            config = loads_json(beside.read_bytes(), f"{path}: architecture {beside.name}")
            group = f
        gattrs = {k: _decode(v) for k, v in group.attrs.items()}
        backend = gattrs.get("backend", attrs.get("backend"))
        version = str(gattrs.get("keras_version", attrs.get("keras_version",
                                                            config.get("keras_version", "1"))))
        weights = _read_h5_layers(group)
    return _KerasImporter(config, weights, path, backend, version, input_scale).build()


def _load_keras_zip(path: Path, input_scale) -> Graph:
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        if "config.json" not in names or "model.weights.h5" not in names:
            raise FileFormatError(f"{path}: a .keras archive needs config.json and "
                                  f"model.weights.h5 (found {names})")
        config = loads_json(read_zip_member(z, "config.json", str(path)), f"{path}: config.json")
        meta = (loads_json(read_zip_member(z, "metadata.json", str(path)),
                           f"{path}: metadata.json") if "metadata.json" in names else {})
        blob = read_zip_member(z, "model.weights.h5", str(path))
    if not isinstance(config, dict) or not isinstance(meta, dict):
        raise FileFormatError(f"{path}: config.json and metadata.json must hold JSON objects")
    layers, _, _ = _layer_list(config, path)
    with open_h5(io.BytesIO(blob), "Keras weights", name=f"{path}: model.weights.h5") as h5:
        weights = _read_keras3_vars(h5, layers)
    return _KerasImporter(config, weights, path, None, str(meta.get("keras_version", "3")),
                          input_scale).build()


__all__ = ["load_keras"]
