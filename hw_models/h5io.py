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
                           absent = "winner")

Version 2 is version 1 plus a maxpool ``gate`` other than "winner"; version 3 adds the input
spec (``input_spec``).  A file is written with the lowest version its network needs, so older
readers keep reading it, and refuse (by version) the files they would misread.
        weights            integer array, shape per kind (see hw_models.network.Projection)

Version 1 and 2 files (no ``input_spec``) still load: the spec of a converted network is rebuilt
from what they kept in ``meta["options"]`` (``input_scale``; for event input the scale per
event count is ``input_scale / steps``, binned into ``steps``); a hand-built one gets none.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import h5py
import numpy as np

from .errors import FileFormatError, NetworkError
from .inputspec import InputSpec
from .profiles import ChipProfile, is_stock
from .network import (FORMAT_NAME, FORMAT_VERSION, CoreNetwork, Population, Projection,
                      meta_json)

_POP_ATTRS = ("name", "kind", "threshold", "reset", "decay_u", "decay_v", "v_init", "v_min",
              "v_max", "overflow", "spike_rule", "spiking", "encoding", "input_max")
_PROJ_ATTRS = ("name", "source", "target", "kind", "exponent", "delay")
_PROJ_TUPLES = ("kernel", "stride", "padding", "dilation")


def atomic_h5(path: str | os.PathLike):
    """Context manager yielding an open h5py.File on a temporary file in the target folder,
    renamed onto ``path`` only when the block finishes without error."""
    return _AtomicH5(Path(path))


class _AtomicH5:
    def __init__(self, path: Path):
        self.path = path

    def __enter__(self) -> h5py.File:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp",
                                   dir=self.path.parent)
        os.close(fd)
        self.tmp = Path(tmp)
        self.fh = h5py.File(self.tmp, "w")
        return self.fh

    def __exit__(self, exc_type, exc, tb):
        try:
            self.fh.close()
        finally:
            if exc_type is None:
                # mkstemp creates the file 0600; a result file is meant to be read by other
                # tools and users, so give it the mode a plain open() would have.
                os.chmod(self.tmp, 0o666 & ~_current_umask())
                os.replace(self.tmp, self.path)
            else:
                self.tmp.unlink(missing_ok=True)
        return False


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_network(net: CoreNetwork, path: str | os.PathLike) -> Path:
    net.validate()
    path = Path(path)
    with atomic_h5(path) as f:
        f.attrs["format"] = FORMAT_NAME
        # the lowest version that holds the network: 3 with an input spec, 2 with a maxpool
        # gate other than "winner", else 1
        f.attrs["version"] = 3 if net.input_spec is not None else \
            2 if any(pr.gate != "winner" for pr in net.projections) else 1
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
            pg.create_dataset("weights", data=pr.weights, compression="gzip")
    return path


def open_h5(path: str | os.PathLike, what: str = "results") -> h5py.File:
    """Open an HDF5 file for reading, turning a missing, truncated or corrupt file into a
    FileFormatError that names it (``what``: "network", "result", "sweep" …)."""
    path = Path(path)
    if not path.exists():
        raise FileFormatError(f"{path}: no such {what} file")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise FileFormatError(f"{path}: not a readable HDF5 {what} file — truncated or corrupt "
                              f"(an interrupted copy?); regenerate it ({exc})") from None


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
    fmt = attr_str(f, "format")
    if fmt != name:
        raise FileFormatError(f"{path}: not a neuroemu {what} file (format attribute {fmt!r}, "
                              f"expected {name!r}){hint}")
    version = int(f.attrs.get("version", -1))
    if not version_min <= version <= version_max:
        raise FileFormatError(f"{path}: {what} format version {version} is not supported "
                              f"(this neuroemu reads {version_min}..{version_max})")
    return version


def _attr(group, name, path):
    try:
        v = group.attrs[name]
    except KeyError:
        raise FileFormatError(f"{path}: {group.name} lacks the attribute {name!r}") from None
    if isinstance(v, bytes):
        v = v.decode()
    if isinstance(v, np.generic):
        v = v.item()
    return v


def load_network(path: str | os.PathLike) -> CoreNetwork:
    path = Path(path)
    f = open_h5(path, "network")
    try:
        with f:
            version = check_format(f, path, FORMAT_NAME, FORMAT_VERSION, "core network")
            pops = []
            for key in sorted(f["populations"]):
                g = f["populations"][key]
                kw = {a: _attr(g, a, path) for a in _POP_ATTRS}
                kw["shape"] = tuple(int(s) for s in g.attrs["shape"])
                kw["bias"] = g["bias"][()] if "bias" in g else None
                kw["core"] = g["core"][()] if "core" in g else None
                pops.append(Population(**kw))
            projs = []
            for key in sorted(f["projections"]):
                g = f["projections"][key]
                kw = {a: _attr(g, a, path) for a in _PROJ_ATTRS}
                for a in _PROJ_TUPLES:
                    kw[a] = tuple(int(s) for s in g.attrs[a])
                kw["weights"] = g["weights"][()]
                kw["gate"] = attr_str(g, "gate", "winner")
                projs.append(Projection(**kw))
            net = CoreNetwork(
                populations=pops, projections=projs, output=_attr(f, "output", path),
                readout=_attr(f, "readout", path),
                input_layout=_attr(f, "input_layout", path),
                placement=f["placement"][()] if "placement" in f else None,
                profile=_attr(f, "profile", path) or None,
                meta=json.loads(_attr(f, "meta", path)))
            spec_text = _attr(f, "input_spec", path) if version >= 3 else ""
            prof_text = attr_str(f, "profile_json", "")
    except (OSError, KeyError, ValueError) as exc:
        if isinstance(exc, (FileFormatError, NetworkError)):
            raise
        raise FileFormatError(f"{path}: damaged core-network file: {exc}") from exc
    if prof_text:
        try:
            net.profile = ChipProfile.from_dict(json.loads(prof_text))
        except (ValueError, TypeError) as exc:
            raise FileFormatError(f"{path}: unreadable what-if profile: {exc}") from None
    try:
        net.input_spec = InputSpec.from_dict(json.loads(spec_text)) if spec_text else \
            (_spec_from_v1(net) if version < 3 else None)
    except (ValueError, TypeError) as exc:
        raise FileFormatError(f"{path}: unreadable input spec: {exc}") from None
    try:
        return net.validate()
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
