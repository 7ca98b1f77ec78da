"""HDF5 files for core networks: versioned, written atomically, readable by plain h5py.

Layout (version 3)::

    /                      attrs: format="neuroemu.CoreNetwork", version=1..3, output, readout,
                                  input_layout,
                                  profile ("" if none), meta (JSON text),
                                  input_spec (JSON text of InputSpec.to_dict(), "" if none),
                                  profile_json (ChipProfile.to_dict() of a what-if profile;
                                  absent for a shipped one, which the name identifies)
    /placement             int32 (n_cores, 3) (chip, x, y) per core          [optional]
    /populations/NNNN      one group per population in declaration order; attrs name, kind,
                           shape, threshold, reset, decay_u, decay_v, v_init, v_min, v_max,
                           overflow, spike_rule, spiking, encoding, input_max
        bias               int64 (n,)                                        [optional]
        core               int32 (n,) global core index per neuron           [optional]
    /projections/NNNN      attrs name, source, target, kind, exponent, delay, kernel, stride,
                           padding (top, bottom, left, right), dilation, gate (maxpool only;
                           absent = "winner"), groups (conv only; absent = 1)

Version 2 is version 1 plus a maxpool ``gate`` other than "winner" or a conv ``groups`` > 1;
version 3 adds the input spec (``input_spec``).  A file is written with the lowest version its
network needs, so older readers keep reading it, and refuse (by version) the files they would
misread.
        weights            integer array, shape per kind (see hw_models.network.Projection)

Version 1 and 2 files (no ``input_spec``) still load: the spec of a converted network is rebuilt
from what they kept in ``meta["options"]`` (``input_scale``; for event input the scale per
event count is ``input_scale / steps``, binned into ``steps``); a hand-built one gets none.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import h5py
import numpy as np

from .errors import BudgetError, FileFormatError, NetworkError
from .inputspec import InputSpec
from .profiles import ChipProfile, is_stock
from .network import (FORMAT_NAME, FORMAT_VERSION, CoreNetwork, Population, Projection,
                      meta_json)
from .intrange import check_ranges
from .safeio import atomic_path, check_budget, loads_json, read_dataset
from .safeio import open_h5 as _safe_open_h5

_POP_ATTRS = ("name", "kind", "threshold", "reset", "decay_u", "decay_v", "v_init", "v_min",
              "v_max", "overflow", "spike_rule", "spiking", "encoding", "input_max")
_PROJ_ATTRS = ("name", "source", "target", "kind", "exponent", "delay")
_PROJ_TUPLES = ("kernel", "stride", "padding", "dilation")


def atomic_h5(path: str | os.PathLike, inputs=()):
    """Context manager yielding an open h5py.File on a temporary file in the target folder,
    renamed onto ``path`` only when the block finishes without error (rules in
    :mod:`hw_models.safeio`: never onto one of ``inputs``, temporaries removed on every failure
    path, stale ones of killed writers swept)."""
    return _AtomicH5(Path(path), inputs)


class _AtomicH5:
    def __init__(self, path: Path, inputs=()):
        self.path, self.inputs = path, inputs

    def __enter__(self) -> h5py.File:
        self._ctx = atomic_path(self.path, self.inputs)
        tmp = self._ctx.__enter__()
        try:
            self.fh = h5py.File(tmp, "w")
        except BaseException:
            self._ctx.__exit__(*sys.exc_info())
            raise
        return self.fh

    def __exit__(self, exc_type, exc, tb):
        try:
            self.fh.close()
        except BaseException:
            if exc_type is None:
                exc_type, exc, tb = sys.exc_info()
                self._ctx.__exit__(exc_type, exc, tb)
                raise
        return bool(self._ctx.__exit__(exc_type, exc, tb))


def save_network(net: CoreNetwork, path: str | os.PathLike, inputs=()) -> Path:
    """Write ``net`` atomically (never onto one of ``inputs``) after validating it and proving
    its integer ranges (:func:`hw_models.intrange.check_ranges`)."""
    net.validate()
    check_ranges(net)
    path = Path(path)
    with atomic_h5(path, inputs) as f:
        f.attrs["format"] = FORMAT_NAME
        # the lowest version that holds the network: 3 with an input spec, 2 with a maxpool
        # gate other than "winner" or a grouped convolution, else 1
        f.attrs["version"] = 3 if net.input_spec is not None else \
            2 if any(pr.gate != "winner" or pr.groups != 1 for pr in net.projections) else 1
        f.attrs["output"] = net.output
        f.attrs["readout"] = net.readout
        f.attrs["input_layout"] = net.input_layout
        prof = net.profile
        f.attrs["profile"] = (prof if isinstance(prof, str) else prof.name) if prof else ""
        if prof is not None and not isinstance(prof, str) and not is_stock(prof):
            # a what-if profile: its numbers travel with the network, not just its name
            f.attrs["profile_json"] = json.dumps(prof.to_dict(), sort_keys=True)
        f.attrs["meta"] = meta_json(net.meta)
        if net.input_spec is not None:
            f.attrs["input_spec"] = json.dumps(net.input_spec.to_dict(), sort_keys=True)
        if net.placement is not None:
            f.create_dataset("placement", data=np.asarray(net.placement, np.int32))
        g = f.create_group("populations")
        for i, p in enumerate(net.populations):
            pg = g.create_group(f"{i:04d}")
            for a in _POP_ATTRS:
                pg.attrs[a] = getattr(p, a)
            pg.attrs["shape"] = np.asarray(p.shape, np.int64)
            if p.bias is not None:
                pg.create_dataset("bias", data=p.bias, compression="gzip")
            if p.core is not None:
                pg.create_dataset("core", data=p.core, compression="gzip")
        g = f.create_group("projections")
        for i, pr in enumerate(net.projections):
            pg = g.create_group(f"{i:04d}")
            for a in _PROJ_ATTRS:
                pg.attrs[a] = getattr(pr, a)
            for a in _PROJ_TUPLES:
                pg.attrs[a] = np.asarray(getattr(pr, a), np.int64)
            if pr.gate != "winner":
                pg.attrs["gate"] = pr.gate
            if pr.groups != 1:
                pg.attrs["groups"] = int(pr.groups)
            pg.create_dataset("weights", data=pr.weights, compression="gzip")
    return path


def open_h5(path: str | os.PathLike, what: str = "results") -> h5py.File:
    """Open an HDF5 file for reading, turning a missing, truncated or corrupt file — or one
    that points into other files (:func:`hw_models.safeio.check_h5_links`) — into a
    FileFormatError that names it (``what``: "network", "result", "sweep" …)."""
    return _safe_open_h5(Path(path), what)


def attr_str(obj, name: str, default=None):
    """A string attribute of an HDF5 object (h5py may hand back ``bytes``); ``default`` if
    absent."""
    v = obj.attrs.get(name, default)
    return v.decode() if isinstance(v, bytes) else v


def check_format(f, path, name: str, version_max: int, what: str, version_min: int = 1,
                 hint: str = "") -> int:
    """Raise FileFormatError unless ``f`` carries ``format == name`` and a ``version`` in
    ``[version_min, version_max]``; returns the version.  ``what`` names the file kind in the
    message ("core network", "result", "sweep"), ``hint`` is appended to the format error."""
    try:
        fmt = attr_str(f, "format")
    except (OSError, TypeError, ValueError, UnicodeError):
        fmt = None
    if not isinstance(fmt, str) or fmt != name:
        raise FileFormatError(f"{path}: not a neuroemu {what} file (format attribute {fmt!r}, "
                              f"expected {name!r}){hint}")
    try:
        version = f.attrs.get("version", -1)
        version = int(version) if np.ndim(version) == 0 and not isinstance(version, (str, bytes)) \
            and float(version).is_integer() else -1
    except (TypeError, ValueError, OverflowError, OSError):
        version = -1
    if not version_min <= version <= version_max:
        raise FileFormatError(f"{path}: {what} format version {version} is not supported "
                              f"(this neuroemu reads {version_min}..{version_max})")
    return version


_INT_ATTRS = {"threshold", "decay_u", "decay_v", "v_init", "v_min", "v_max", "input_max",
              "exponent", "delay"}
_BOOL_ATTRS = {"spiking"}
_INT64 = (-2**63, 2**63 - 1)


def _attr(group, name, path):
    """Attribute ``name`` of ``group`` as a Python value of the type the network model expects:
    integers for the integer parameters (a float, even 3.0, is refused: it would be truncated),
    bool for ``spiking``, str for the rest."""
    try:
        v = group.attrs[name]
    except KeyError:
        raise FileFormatError(f"{path}: {group.name} lacks the attribute {name!r}") from None
    except (OSError, TypeError, ValueError) as exc:
        raise FileFormatError(f"{path}: {group.name} attribute {name!r} is unreadable "
                              f"({exc})") from None
    if isinstance(v, bytes):
        v = v.decode("utf-8", "replace")
    if isinstance(v, np.ndarray) and v.shape == ():
        v = v[()]
    if isinstance(v, np.generic):
        v = v.item()
    if name in _INT_ATTRS:
        if isinstance(v, bool) or not isinstance(v, int):
            raise FileFormatError(f"{path}: {group.name} attribute {name!r} must be an integer, "
                                  f"found {type(v).__name__} {v!r}")
        if not _INT64[0] <= v <= _INT64[1]:
            raise FileFormatError(f"{path}: {group.name} attribute {name!r} = {v} is outside "
                                  f"the 64-bit integer range")
    elif name in _BOOL_ATTRS:
        if not isinstance(v, (bool, int)) or v not in (0, 1):
            raise FileFormatError(f"{path}: {group.name} attribute {name!r} must be a boolean, "
                                  f"found {v!r}")
        v = bool(v)
    elif not isinstance(v, str):
        raise FileFormatError(f"{path}: {group.name} attribute {name!r} must be a string, "
                              f"found {type(v).__name__}")
    return v


def _int_tuple(group, name, path, length=None) -> tuple:
    try:
        v = np.asarray(group.attrs[name])
    except KeyError:
        raise FileFormatError(f"{path}: {group.name} lacks the attribute {name!r}") from None
    if v.ndim != 1 or v.dtype.kind not in "iu" or (length is not None and len(v) != length) \
            or len(v) > 8:
        raise FileFormatError(f"{path}: {group.name} attribute {name!r} must be a short list of "
                              f"integers, found {v.dtype} {v.shape}")
    return tuple(int(s) for s in v)


def _int_dataset(group, name, path, dtype):
    if name not in group:
        return None
    arr = read_dataset(group[name], f"{path}: {group.name.rstrip('/')}/{name}", kinds="iu")
    if arr.size and arr.dtype.kind == "u" and arr.dtype.itemsize >= 8 and arr.max() > 2**63 - 1:
        raise FileFormatError(f"{path}: {group.name.rstrip('/')}/{name} holds values beyond int64")
    if np.dtype(dtype) == np.int32 and arr.size and (arr.min() < -2**31
                                                     or arr.max() > 2**31 - 1):
        raise FileFormatError(f"{path}: {group.name.rstrip('/')}/{name} holds values outside the int32 "
                              f"range ({arr.min()}..{arr.max()})")
    return arr


def _children(f, name, path) -> list:
    import h5py
    if name not in f or not isinstance(f[name], h5py.Group):
        raise FileFormatError(f"{path}: lacks the group /{name}")
    return [f[name][k] for k in sorted(f[name])]


def load_network(path: str | os.PathLike) -> CoreNetwork:
    """Read a network written by :func:`save_network`.  Every value is type-checked (no float
    truncated into an integer parameter), every dataset's declared size is checked against the
    memory budget before it is read, links out of the file are refused, and the loaded network
    must pass :meth:`CoreNetwork.validate` and the integer-range proof
    (:func:`hw_models.intrange.check_ranges`)."""
    path = Path(path)
    f = open_h5(path, "network")
    try:
        with f:
            version = check_format(f, path, FORMAT_NAME, FORMAT_VERSION, "core network")
            pops, n_neurons = [], 0
            for g in _children(f, "populations", path):
                kw = {a: _attr(g, a, path) for a in _POP_ATTRS}
                kw["shape"] = _int_tuple(g, "shape", path)
                n = 1
                for s in kw["shape"]:
                    n *= max(s, 0)
                n_neurons += n
                check_budget(16 * n_neurons, f"{path}: state of {n_neurons} neurons (population "
                             f"{kw['name']!r} declares shape {kw['shape']})")
                kw["bias"] = _int_dataset(g, "bias", path, np.int64)
                kw["core"] = _int_dataset(g, "core", path, np.int32)
                pops.append(Population(**kw))
            projs = []
            for g in _children(f, "projections", path):
                kw = {a: _attr(g, a, path) for a in _PROJ_ATTRS}
                for a in _PROJ_TUPLES:
                    kw[a] = _int_tuple(g, a, path)
                if "weights" not in g:
                    raise FileFormatError(f"{path}: {g.name} lacks its weights")
                kw["weights"] = _int_dataset(g, "weights", path, np.int64)
                kw["gate"] = attr_str(g, "gate", "winner")
                if not isinstance(kw["gate"], str):
                    raise FileFormatError(f"{path}: {g.name} attribute 'gate' must be a string")
                kw["groups"] = int(g.attrs.get("groups", 1))
                projs.append(Projection(**kw))
            placement = _int_dataset(f, "placement", path, np.int32)
            net = CoreNetwork(
                populations=pops, projections=projs, output=_attr(f, "output", path),
                readout=_attr(f, "readout", path),
                input_layout=_attr(f, "input_layout", path),
                placement=placement,
                profile=_attr(f, "profile", path) or None,
                meta=loads_json(_attr(f, "meta", path), f"{path}: meta attribute"))
            if not isinstance(net.meta, dict):
                raise FileFormatError(f"{path}: the meta attribute must be a JSON object")
            spec_text = _attr(f, "input_spec", path) if version >= 3 else ""
            prof_text = attr_str(f, "profile_json", "")
    except (FileFormatError, BudgetError):
        raise
    except (OSError, KeyError, ValueError, TypeError, IndexError, OverflowError,
            RuntimeError, AttributeError) as exc:
        raise FileFormatError(f"{path}: damaged core-network file: {type(exc).__name__}: "
                              f"{exc}") from exc
    if prof_text:
        try:
            net.profile = ChipProfile.from_dict(loads_json(prof_text, f"{path}: profile_json"))
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise FileFormatError(f"{path}: unreadable what-if profile: {exc}") from None
    try:
        net.input_spec = InputSpec.from_dict(loads_json(spec_text, f"{path}: input_spec")) \
            if spec_text else (_spec_from_v1(net) if version < 3 else None)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise FileFormatError(f"{path}: unreadable input spec: {exc}") from None
    try:
        net.validate()
        check_ranges(net)
        return net
    except NetworkError as exc:
        raise FileFormatError(f"{path}: the stored network is invalid: {exc}") from exc


def _spec_from_v1(net: CoreNetwork) -> InputSpec | None:
    """The input spec a version 1/2 file implies (module docstring), None for a hand-built one."""
    opts = net.meta.get("options") if isinstance(net.meta, dict) else None
    if not isinstance(opts, dict) or not opts.get("input_scale"):
        return None
    inp, scale = net.input, float(opts["input_scale"])
    shape = net.user_input_shape()
    if inp.encoding == "events":
        steps = net.meta.get("steps")
        if not steps:
            return None
        return InputSpec(shape, net.input_layout, raw_max=None, scale=scale / int(steps),
                         encoding="events", bins=int(steps))
    return InputSpec(shape, net.input_layout, raw_max=inp.input_max, scale=scale,
                     encoding=inp.encoding)
