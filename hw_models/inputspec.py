"""The input spec: one description of a network's input shared by every public call.

An :class:`InputSpec` says what one sample looks like and how its numbers are read:

* ``shape`` — the per-sample shape callers pass, in ``layout``;
* ``layout`` — ``"HWC"`` (channels last), ``"CHW"`` (channels first, NCHW models), ``"HW"``
  (2-D images, one channel) or ``"flat"`` (vectors).  Inside neuroemu everything is channels
  last (:attr:`InputSpec.internal_shape`);
* ``raw_max`` — raw data are integers in ``[0, raw_max]`` (255 for 8-bit pixels, 16 for the
  scikit-learn digits); these are the numbers the chip takes.  ``None`` for event counts
  (integers ≥ 0 without an upper bound);
* ``scale`` and ``offset`` — model units from raw units, per channel or one number for all:
  ``model = raw · scale + offset``.  ``scale=None`` means *unknown*: a model file that does not
  say how it was fed (a Keras HDF5 without a ``Rescaling`` layer).  Conversions that need the
  scale then raise a :class:`DataError` saying how to give it;
* ``encoding`` — how the chip receives the raw integers: ``analog`` (a constant current per
  pixel), ``rate`` (regular spikes, ``raw/raw_max`` per step), ``bernoulli`` (random spikes
  with that probability) or ``events`` (event-camera spikes);
* ``bins`` — events only: the number of steps a sample's events are binned into (the run
  length T the network was converted for).  One event is one spike in one step, so over T
  steps a pixel with ``c`` events delivers ``c / T`` per step: the float model sees event
  *counts* per pixel ``c`` in model units ``c · scale``.

The three conversions, each taking a batch ``(N,) + shape`` in the caller's layout and returning
a channels-last batch ``(N,) + internal_shape``:

* :meth:`InputSpec.check_raw` — integers (any integer or bool dtype) inside ``[0, raw_max]``
  → int64; anything else is a DataError naming the first bad sample and value;
* :meth:`InputSpec.to_model` — raw integers → float64 model units ``raw · scale + offset``;
* :meth:`InputSpec.to_raw` — float model units → raw integers, quantised exactly as
  ``rint((x − offset) / scale)`` (round half to even), after refusing values outside the model's
  range ``[offset, raw_max · scale + offset]`` widened by half a raw step.  Data that already lie
  on the raw grid (``x = raw · scale + offset`` up to float rounding, e.g. ``uint8 / 255``) come
  back as exactly those integers.

:meth:`InputSpec.as_raw` and :meth:`InputSpec.as_model` accept either kind and tell them apart by
dtype: integer (or bool) arrays are raw, floating arrays are model units.  This is the rule every
public call shares (``Graph.predict``, ``converter.convert``, ``emulator.run``, the pipeline and
the CLI).  Floating data outside the model's range (for example floats 0..255 for a model in
0..1) cannot be told apart from raw data passed as floats and are refused with a message that
says what was expected and what was seen.  So are fractional floats that all lie in 0..1 for a
model whose range reaches 2 or more (e.g. ``x / 255`` for a model fed raw 0..255, such as the
ONNX zoo's mnist-8): a network calibrated on them would saturate on the real data.

The spec is frozen: derive a changed one with :meth:`InputSpec.replace`.  :meth:`to_dict` /
:meth:`from_dict` give the JSON form stored in network files (format version 2).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .errors import DataError, NetworkError

LAYOUTS = ("HWC", "CHW", "HW", "flat")
ENCODINGS = ("analog", "rate", "bernoulli", "events")

#: a float value within this fraction of a raw step of the grid counts as "on the grid"
GRID_TOLERANCE = 1e-3


def _per_channel(value, what: str):
    """A positive-size tuple of floats or one float; None stays None."""
    if value is None:
        return None
    if np.ndim(value) == 0:
        v = float(value)
        if not np.isfinite(v):
            raise NetworkError(f"input spec: {what} must be finite, got {value!r}")
        return v
    vals = tuple(float(v) for v in np.ravel(value))
    if not vals or not all(np.isfinite(vals)):
        raise NetworkError(f"input spec: {what} must be finite numbers, got {value!r}")
    if len(set(vals)) == 1:
        return vals[0]
    return vals


def _fmt(v) -> str:
    if isinstance(v, tuple):
        return "(" + ", ".join(f"{x:.6g}" for x in v) + ")"
    return f"{v:.6g}"


@dataclass(frozen=True)
class InputSpec:
    """What a network's input is and how raw integers map to the model's units (module doc)."""

    shape: tuple
    layout: str = "HWC"
    raw_max: int | None = 255
    scale: float | tuple | None = None
    offset: float | tuple = 0.0
    encoding: str = "analog"
    bins: int | None = None

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "shape", tuple(int(v) for v in np.ravel(self.shape)))
        layout = {"C": "flat"}.get(self.layout, self.layout)
        set_(self, "layout", layout)
        if self.raw_max is not None:
            if isinstance(self.raw_max, bool) or int(self.raw_max) != self.raw_max:
                raise NetworkError(f"input spec: raw_max must be a positive integer, "
                                   f"got {self.raw_max!r}")
            set_(self, "raw_max", int(self.raw_max))
        set_(self, "scale", _per_channel(self.scale, "scale"))
        set_(self, "offset", _per_channel(self.offset, "offset"))
        if self.bins is not None:
            set_(self, "bins", int(self.bins))
        self.validate()

    # ---- structure ------------------------------------------------------------------------
    def validate(self) -> "InputSpec":
        """Raise :class:`NetworkError` naming the bad field; returns self."""
        if self.layout not in LAYOUTS:
            raise NetworkError(f"input spec: layout must be one of {LAYOUTS}, "
                               f"got {self.layout!r}")
        want = {"HWC": 3, "CHW": 3, "HW": 2, "flat": 1}[self.layout]
        if len(self.shape) != want or min(self.shape) < 1:
            raise NetworkError(f"input spec: shape {self.shape} does not fit layout "
                               f"{self.layout!r} ({want} positive sizes)")
        if self.encoding not in ENCODINGS:
            raise NetworkError(f"input spec: encoding must be one of {ENCODINGS}, "
                               f"got {self.encoding!r}")
        if self.raw_max is None and self.encoding != "events":
            raise NetworkError("input spec: raw_max is needed (only event counts are unbounded)")
        if self.raw_max is not None and self.raw_max < 1:
            raise NetworkError(f"input spec: raw_max must be >= 1, got {self.raw_max}")
        if self.bins is not None and (self.bins < 1 or self.encoding != "events"):
            raise NetworkError(f"input spec: bins (got {self.bins}) is a positive step count "
                               f"for the 'events' encoding only")
        c = self.channels
        for what in ("scale", "offset"):
            v = getattr(self, what)
            if isinstance(v, tuple) and len(v) != c:
                raise NetworkError(f"input spec: {what} has {len(v)} values for {c} channels")
        if self.scale is not None and np.any(np.asarray(self.scale) <= 0):
            raise NetworkError(f"input spec: scale must be positive, got {_fmt(self.scale)}")
        return self

    @property
    def internal_shape(self) -> tuple:
        """Channels-last per-sample shape: (H, W, C) for images, (n,) for vectors."""
        s = self.shape
        if self.layout == "CHW":
            return (s[1], s[2], s[0])
        if self.layout == "HW":
            return (s[0], s[1], 1)
        return s

    @property
    def channels(self) -> int:
        return self.internal_shape[-1] if len(self.internal_shape) == 3 else 1

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def known(self) -> bool:
        """True when the scale from raw to model units is known."""
        return self.scale is not None

    @property
    def per_channel(self) -> bool:
        return isinstance(self.scale, tuple) or isinstance(self.offset, tuple)

    def scale_array(self) -> np.ndarray:
        """Scale per channel (shape (C,), or (1,) for one number); DataError when unknown."""
        self._need_scale()
        return np.atleast_1d(np.asarray(self.scale, np.float64))

    def offset_array(self) -> np.ndarray:
        return np.atleast_1d(np.asarray(self.offset, np.float64))

    def model_range(self) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) model values per channel that raw 0 and raw_max map to (high = +inf for
        unbounded event counts)."""
        s, o = self.scale_array(), self.offset_array()
        hi = np.full(np.broadcast(s, o).shape, np.inf) if self.raw_max is None \
            else self.raw_max * s + o
        return np.broadcast_to(o, hi.shape).copy(), hi

    def replace(self, **changes) -> "InputSpec":
        """A new spec with ``changes`` applied (the spec itself is frozen)."""
        return dataclasses.replace(self, **changes)

    def describe(self) -> str:
        """One line: shape, layout, raw range, scale, encoding."""
        raw = f"0..{self.raw_max}" if self.raw_max is not None else "counts >= 0"
        if self.scale is None:
            units = "model units unknown (no scale)"
        else:
            lo, hi = self.model_range()
            units = f"model = raw x {_fmt(self.scale)}" + \
                (f" + {_fmt(self.offset)}" if np.any(self.offset_array() != 0) else "") + \
                f" (model range {_fmt(_one(lo))}..{_fmt(_one(hi))})"
        enc = self.encoding + (f", {self.bins} bins" if self.bins else "")
        return f"{self.shape} {self.layout}, raw integers {raw}, {units}, {enc}"

    def __str__(self) -> str:
        return f"InputSpec({self.describe()})"

    # ---- (de)serialisation ----------------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-able fields (tuples as lists)."""
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "InputSpec":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise NetworkError(f"input spec: unknown field(s) {unknown}")
        return cls(**d)

    # ---- layout ---------------------------------------------------------------------------
    def to_internal(self, x, what: str = "inputs") -> np.ndarray:
        """A batch ``(N,) + shape`` → ``(N,) + internal_shape`` (no dtype change, no copy when
        possible).  A batch of 2-D images ``(N, H, W)`` is accepted for a single channel."""
        x = np.asarray(x)
        shp = self.shape
        if x.ndim == len(shp) and x.shape == shp:
            raise DataError(f"{what} have shape {x.shape}: pass a batch (N,) + {shp}; for one "
                            f"sample use x[None]")
        if x.ndim < 1 or x.shape[1:] != shp:
            squeezed = tuple(v for v in shp if v != 1)
            alt = x.ndim >= 1 and len(shp) == 3 and x.shape[1:] == squeezed
            if alt:
                x = x.reshape((x.shape[0],) + shp)
            else:
                got = x.shape[1:] if x.ndim >= 1 else x.shape
                raise DataError(f"{what}: samples have shape {got} (batch {x.shape}), but the "
                                f"model takes {shp} per sample ({self.layout} layout; wrong "
                                f"data set for this model?)")
        if self.layout == "CHW":
            x = x.transpose(0, 2, 3, 1)
        return x.reshape((x.shape[0],) + self.internal_shape)

    def from_internal(self, x) -> np.ndarray:
        """Inverse of :meth:`to_internal` (a channels-last batch → the caller's layout)."""
        x = np.asarray(x)
        if self.layout == "CHW":
            x = x.transpose(0, 3, 1, 2)
        return x.reshape((x.shape[0],) + self.shape)

    # ---- the three conversions ------------------------------------------------------------
    @staticmethod
    def is_raw(x) -> bool:
        """True for integer or bool arrays (raw data); False for floating (model units)."""
        dt = np.asarray(x).dtype
        if dt == object or not (np.issubdtype(dt, np.integer) or np.issubdtype(dt, np.floating)
                                or dt == np.bool_):
            raise DataError(f"input data must be numeric (integer raw values or float model "
                            f"units), got dtype {dt}")
        return not np.issubdtype(dt, np.floating)

    def check_raw(self, x, what: str = "inputs", keep_dtype: bool = False) -> np.ndarray:
        """Raw integers → channels-last int64 batch; DataError for floats or values outside
        ``[0, raw_max]`` (names the first offending sample and value).  ``keep_dtype`` returns
        the checked batch in its own integer type (uint8 images stay one byte a value, so a
        large data set is not copied whole into int64; the engine widens each chunk)."""
        if not self.is_raw(x):
            raise DataError(f"{what}: raw data must be integers 0..{self.raw_max}, got "
                            f"{np.asarray(x).dtype} (float data are read as model units: use "
                            f"as_raw/to_raw)")
        xi = self.to_internal(x, what)
        if len(xi) == 0:
            raise DataError(f"{what}: no samples")
        flat = xi.reshape(len(xi), -1)
        lo, hi = flat.min(axis=1), flat.max(axis=1)
        top = np.iinfo(np.int64).max if self.raw_max is None else self.raw_max
        bad = np.flatnonzero((lo < 0) | (hi > top))
        if bad.size:
            s = int(bad[0])
            val = int(lo[s] if lo[s] < 0 else hi[s])
            rng = f"0..{self.raw_max}" if self.raw_max is not None else "counts >= 0"
            raise DataError(f"{what}: raw value {val!r} in sample {s} is outside {rng} (the "
                            f"network's raw input range; data of another range?)")
        if keep_dtype:
            return np.ascontiguousarray(xi)
        return np.ascontiguousarray(xi, dtype=np.int64)

    def to_model(self, raw, what: str = "inputs") -> np.ndarray:
        """Raw integers → channels-last float64 model units ``raw · scale + offset``."""
        xi = self.check_raw(raw, what)
        return self._affine(xi)

    def to_raw(self, x, what: str = "inputs") -> np.ndarray:
        """Float model units → channels-last int64 raw integers (module docstring: range check,
        then ``rint((x − offset) / scale)``)."""
        if self.is_raw(x):
            raise DataError(f"{what}: to_raw takes float model units, got {np.asarray(x).dtype} "
                            f"(integer data are raw already: use check_raw)")
        xi = self.to_internal(x, what).astype(np.float64, copy=False)
        self._check_model_range(xi, what)
        s, o = self._bcast(xi)
        return np.ascontiguousarray(np.rint((xi - o) / s), dtype=np.int64)

    def as_raw(self, x, what: str = "inputs") -> np.ndarray:
        """Either kind → raw int64 (integers checked, floats quantised by :meth:`to_raw`)."""
        return self.check_raw(x, what) if self.is_raw(x) else self.to_raw(x, what)

    def as_model(self, x, what: str = "inputs") -> np.ndarray:
        """Either kind → float64 model units, channels last.  Floats on the raw grid come back as
        exactly ``to_model(to_raw(x))`` (so ``x_uint8`` and ``x_uint8 / 255`` give the same
        array bit for bit); floats between grid points are kept as they are; floats outside the
        model's range are refused."""
        if self.is_raw(x):
            return self.to_model(x, what)
        xi = np.asarray(self.to_internal(x, what), dtype=np.float64)
        if len(xi) == 0:
            raise DataError(f"{what}: no samples")
        if not np.all(np.isfinite(xi)):
            raise DataError(f"{what}: float data hold NaN or infinite values")
        if self.scale is None:
            return np.ascontiguousarray(xi)
        self._check_model_range(xi, what)
        s, o = self._bcast(xi)
        raw = np.rint((xi - o) / s)
        snapped = raw * s + o
        if np.all(np.abs(snapped - xi) <= GRID_TOLERANCE * s):
            return np.ascontiguousarray(snapped)
        return np.ascontiguousarray(xi)

    # ---- helpers --------------------------------------------------------------------------
    def _need_scale(self):
        if self.scale is None:
            raise DataError(
                "the model does not say its input scale (model units per raw integer), so raw "
                "data cannot be related to it: pass input_scale= to load_model (e.g. 1/255 for "
                "a model trained on pixels/255, 1 for raw 0..255) or --input-scale on the "
                "command line")

    def _bcast(self, xi):
        s, o = self.scale_array(), self.offset_array()
        if xi.ndim >= 2 and len(self.internal_shape) == 3:
            return s, o          # broadcast over the last (channel) axis
        return float(s[0]), float(o[0])

    def _affine(self, xi: np.ndarray) -> np.ndarray:
        s, o = self._bcast(xi)
        return np.ascontiguousarray(xi * s + o, dtype=np.float64)

    def _check_model_range(self, xi: np.ndarray, what: str) -> None:
        if not np.all(np.isfinite(xi)):
            raise DataError(f"{what}: float data hold NaN or infinite values")
        if len(xi) == 0:
            raise DataError(f"{what}: no samples")
        lo, hi = self.model_range()
        s = self.scale_array()
        lo_t, hi_t = lo - 0.5 * s, hi + 0.5 * s
        if len(self.internal_shape) == 3 and lo.size > 1:
            red = tuple(range(xi.ndim - 1))
            seen_lo, seen_hi = xi.min(axis=red), xi.max(axis=red)
        else:
            seen_lo, seen_hi = np.atleast_1d(xi.min()), np.atleast_1d(xi.max())
        top, seen_top = float(np.max(hi)), float(np.max(seen_hi))
        if self.raw_max is not None and top >= 2.0 and 0.0 < seen_top <= 1.0 + 1e-9 and \
                float(np.min(seen_lo)) >= -1e-9 and np.any(xi != np.rint(xi)):
            raise DataError(
                f"{what}: float data span {float(np.min(seen_lo)):.6g}..{seen_top:.6g}, which "
                f"looks like data scaled to 0..1, but the model's units span "
                f"{_fmt(_one(lo))}..{_fmt(_one(hi))} (raw integers 0..{self.raw_max} x "
                f"{_fmt(self.scale)}): pass the raw integers, or data in the model's own units "
                f"(or give the model's true input scale, e.g. input_scale=1/{self.raw_max})")
        if np.any(seen_lo < lo_t) or np.any(seen_hi > hi_t):
            raw = f"0..{self.raw_max}" if self.raw_max is not None else "counts >= 0"
            hint = ""
            if self.raw_max is not None and float(np.max(seen_hi)) > float(np.max(hi_t)) and \
                    float(np.max(seen_hi)) <= self.raw_max + 0.5 and \
                    float(np.min(seen_lo)) >= -0.5:
                hint = (f"; these look like raw values passed as floats: pass the integer array "
                        f"(e.g. x.astype(np.uint8)) or x x {_fmt(self.scale)}")
            raise DataError(
                f"{what}: float data are read as model units {_fmt(_one(lo))}.."
                f"{_fmt(_one(hi))} (raw integers {raw} x {_fmt(self.scale)}"
                + (f" + {_fmt(self.offset)}" if np.any(self.offset_array() != 0) else "")
                + f"), but values span {float(np.min(seen_lo)):.6g}..{float(np.max(seen_hi)):.6g}"
                + hint)


def _one(a):
    a = np.atleast_1d(np.asarray(a, np.float64))
    return float(a[0]) if np.all(a == a[0]) else tuple(float(v) for v in a)


__all__ = ["InputSpec", "LAYOUTS", "ENCODINGS", "GRID_TOLERANCE"]
