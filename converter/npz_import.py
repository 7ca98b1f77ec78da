"""The project's own small model format: one NumPy ``.npz`` (never pickled) holding

* ``architecture``: a JSON string ``{"name", "input_scale", "input_max", "architecture": [...]}``
  whose list starts with ``{"kind": "input", "shape": [...], "layout": "HWC"|"CHW"|…}`` and
  continues with one entry per layer: ``{"kind", "name", …}`` where kind is ``conv2d``
  (``strides``, ``padding`` "valid"|"same"|ints), ``dense``, ``avgpool``/``maxpool`` (``pool``,
  ``strides``), ``relu``, ``flatten``, ``softmax`` or ``global_avgpool``, applied in order;
* ``<layer>/kernel`` (HWIO for conv2d, (in, out) for dense) and ``<layer>/bias`` arrays.

The networks the project trains itself (``examples/train_digits.py``,
``examples/train_nmnist.py``) are saved this way, so they load without any framework.
"""

from __future__ import annotations

import os
from pathlib import Path

from hw_models.errors import ConversionError, FileFormatError
from hw_models.safeio import load_numpy, loads_json
from .builder import GraphBuilder
from .graph import Graph


def load_npz_model(path: str | os.PathLike, input_scale: float | None = None) -> Graph:
    """A :class:`Graph` from a neuroemu model ``.npz`` (see the module docstring)."""
    path = Path(path)
    z = load_numpy(path)  # no pickles, declared sizes budgeted (hw_models.safeio)
    if not isinstance(z, dict):
        raise FileFormatError(f"{path}: a neuroemu model is an .npz archive, not one array")
    if "architecture" not in z:
        raise FileFormatError(f"{path}: a neuroemu model .npz needs an 'architecture' "
                              f"entry (this looks like a data file: pass it as data)")
    rec = loads_json(str(z["architecture"]), f"{path}: architecture")
    if not isinstance(rec, dict):
        raise FileFormatError(f"{path}: the architecture record must be a JSON object")
    arrays = {k: v for k, v in z.items() if k != "architecture"}
    try:
        arch = rec["architecture"]
        first = arch[0]
        b = GraphBuilder(first["shape"], first.get("layout"), name=rec.get("name", path.stem))
    except (KeyError, IndexError, TypeError) as exc:
        raise FileFormatError(f"{path}: malformed 'architecture' record ({exc!r})") from exc
    x = b.input()
    for spec in arch[1:]:
        kind, name = spec.get("kind"), spec.get("name")
        w = {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith(f"{name}/")}
        if kind in ("conv2d", "dense") and "kernel" not in w:
            raise FileFormatError(f"{path}: layer {name!r} ({kind}) has no array "
                                  f"'{name}/kernel'")
        if kind == "conv2d":
            x = b.conv2d(x, w["kernel"], w.get("bias"), strides=spec.get("strides", 1),
                         padding=spec.get("padding", "valid"), name=name)
        elif kind == "dense":
            x = b.dense(x, w["kernel"], w.get("bias"), name=name)
        elif kind in ("avgpool", "maxpool"):
            x = getattr(b, kind)(x, spec["pool"], spec.get("strides"), name=name)
        elif kind in ("relu", "flatten", "softmax", "global_avgpool"):
            x = getattr(b, kind)(x, name=name)
        else:
            raise ConversionError(f"{path}: layer {name!r}: kind {kind!r} is not supported in "
                                  f"a neuroemu model .npz")
    scale = input_scale if input_scale is not None else rec.get("input_scale")
    g = b.build(x, input_scale=scale)
    if rec.get("input_max") is not None:  # the raw data range the model was trained on
        g = g.with_input_spec(raw_max=int(rec["input_max"]))
    g.record = rec
    return g


__all__ = ["load_npz_model"]
