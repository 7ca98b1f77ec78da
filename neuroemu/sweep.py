"""A resumable sweep file: one HDF5 group per finished grid point, every write atomic.

Layout (format ``neuroemu.Sweep``, version 1; see ``docs/formats.md``)::

    /                   attrs: format, version, config (JSON: model, data, steps, profile, …),
                               grid (JSON list of point keys in grid order), created
    /points/<key>       one group per *finished* point, attrs method, bits, wall_seconds, …;
                        datasets accuracy (T,), predictions_final (N,), …; nested groups
                        (counters, per_population, energy) written by :func:`write_tree`

Why it cannot lose or repeat a point: a point is added by writing a complete new file (the old
groups copied, the new one appended) to a temporary name in the same folder and renaming it over
the old one (``os.replace`` is atomic on POSIX and Windows).  A sweep killed at any moment leaves
either the file before the point or the file after it, never a half point.  On resume the keys
already present are skipped; a leftover temporary file from the killed writer is removed.  The
fixed settings (``config``) must match the file's, so a resumed sweep never mixes two
experiments; the grid itself may grow.

Copying the finished points on every append is quadratic in the number of points, which is
irrelevant at sweep sizes (tens of points, kilobytes each) and buys atomicity without a journal.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import h5py
import numpy as np

from hw_models.errors import BudgetError, DataError, FileFormatError
from hw_models.h5io import atomic_h5, attr_str, check_format, open_h5
from hw_models.safeio import loads_json, read_dataset, sweep_stale

FORMAT_NAME = "neuroemu.Sweep"
FORMAT_VERSION = 1
#: environment hook for tests: stop (as if killed) after this many new points
STOP_ENV = "NEUROEMU_SWEEP_STOP_AFTER"


class SweepStopped(Exception):
    """Raised by the test hook after the requested number of new points (the file is intact)."""


def point_key(method: str, bits) -> str:
    """The group name of one grid point, e.g. ``ecc_b8`` (``float`` bits → ``ecc_bfloat``)."""
    return f"{method}_b{bits}"


# ---------------------------------------------------------------------------------------------
# nested dict <-> HDF5 group

def write_tree(group: h5py.Group, tree: dict) -> None:
    """Arrays become datasets, dicts subgroups, scalars/strings attributes, lists/None JSON
    attributes (prefixed ``json:``)."""
    for k, v in tree.items():
        k = str(k)
        if isinstance(v, dict):
            write_tree(group.create_group(k), v)
        elif isinstance(v, np.ndarray):
            group.create_dataset(k, data=v, compression="gzip" if v.size > 256 else None)
        elif isinstance(v, (bool, np.bool_, int, float, str, np.integer, np.floating)):
            group.attrs[k] = v
        else:
            group.attrs[k] = "json:" + json.dumps(v, default=_jdefault)


def read_tree(group: h5py.Group) -> dict:
    """Inverse of :func:`write_tree`."""
    out = {}
    for k, v in group.attrs.items():
        if isinstance(v, bytes):
            v = v.decode()
        if isinstance(v, str) and v.startswith("json:"):
            v = loads_json(v[5:], f"{group.file.filename}: {group.name} attribute {k!r}")
        elif isinstance(v, np.generic):
            v = v.item()
        out[k] = v
    for k, v in group.items():
        out[k] = read_tree(v) if isinstance(v, h5py.Group) else \
            read_dataset(v, f"{group.file.filename}: {v.name}", "iufbS")
    return out


def _jdefault(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


# ---------------------------------------------------------------------------------------------

class SweepFile:
    """A sweep on disk.  ``SweepFile(path, config)`` opens or creates it; :meth:`add` appends a
    finished point atomically; :attr:`done` lists finished keys."""

    def __init__(self, path: str | os.PathLike, config: dict | None = None,
                 grid: list | None = None):
        self.path = Path(path)
        self._stop_after = int(os.environ.get(STOP_ENV, "0") or 0)
        self._added = 0
        sweep_stale(self.path)  # temporaries of writers killed mid-append
        if self.path.exists():
            with open_h5(self.path, "sweep") as f:
                check_format(f, self.path, FORMAT_NAME, FORMAT_VERSION, "sweep",
                             hint="; it exists: choose another -o")
                self.config = loads_json(attr_str(f, "config"), f"{self.path}: config")
                self.grid = loads_json(attr_str(f, "grid", "[]"), f"{self.path}: grid")
                self.done = list(f["points"]) if "points" in f else []
            if config is not None and _canon(config) != _canon(self.config):
                diff = sorted(k for k in set(config) | set(self.config)
                              if _canon(config.get(k)) != _canon(self.config.get(k)))
                raise DataError(f"{self.path}: holds a sweep with different settings "
                                f"({', '.join(diff)}); resume with the same settings or write "
                                f"to a new file")
            if grid:
                self.grid = self.grid + [k for k in grid if k not in self.grid]
        else:
            if config is None:
                raise FileFormatError(f"{self.path}: no such sweep file")
            self.config, self.grid, self.done = dict(config), list(grid or []), []
            self._write(None, None)

    def __contains__(self, key: str) -> bool:
        return key in self.done

    def _write(self, key, tree) -> None:
        with atomic_h5(self.path) as new:
            new.attrs["format"] = FORMAT_NAME
            new.attrs["version"] = FORMAT_VERSION
            new.attrs["config"] = json.dumps(self.config, sort_keys=True, default=_jdefault)
            new.attrs["grid"] = json.dumps(self.grid)
            new.attrs["created"] = time.strftime("%Y-%m-%dT%H:%M:%S")
            pts = new.create_group("points")
            if self.path.exists() and self.done:
                with h5py.File(self.path, "r") as old:
                    for k in self.done:
                        old.copy(old["points"][k], pts, name=k)
            if key is not None:
                write_tree(pts.create_group(key), tree)

    def add(self, key: str, tree: dict) -> None:
        """Append one finished point (atomic: the file gains the whole point or nothing)."""
        if key in self.done:
            raise DataError(f"{self.path}: point {key!r} is already in the sweep")
        self._write(key, dict(tree, finished=time.strftime("%Y-%m-%dT%H:%M:%S")))
        self.done.append(key)
        self._added += 1
        if self._stop_after and self._added >= self._stop_after:
            raise SweepStopped(f"stopped after {self._added} new point(s) ({STOP_ENV})")

    def points(self) -> dict:
        """``{key: tree}`` of every finished point, in grid order."""
        return read_sweep(self.path)["points"]


def read_sweep(path: str | os.PathLike) -> dict:
    """``{"config": …, "grid": […], "points": {key: tree}}`` from a sweep file."""
    with open_h5(path, "sweep") as f:
        check_format(f, path, FORMAT_NAME, FORMAT_VERSION, "sweep")
        try:
            grid = loads_json(attr_str(f, "grid", "[]"), f"{path}: grid")
            keys = [k for k in grid if k in f["points"]] + \
                [k for k in f["points"] if k not in grid]
            return {"config": loads_json(attr_str(f, "config"), f"{path}: config"), "grid": grid,
                    "points": {k: read_tree(f["points"][k]) for k in keys}}
        except (FileFormatError, BudgetError):
            raise
        except (KeyError, OSError, ValueError, TypeError, AttributeError, RuntimeError) as exc:
            raise FileFormatError(f"{path}: damaged sweep file ({type(exc).__name__}: "
                                  f"{exc})") from None


def _canon(v):
    return json.dumps(v, sort_keys=True, default=_jdefault)
