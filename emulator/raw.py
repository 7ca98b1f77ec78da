"""The typed raw result of a chunk of samples, with an exact associative :meth:`RawResult.merge`.

A run is cut into chunks of consecutive samples; each chunk, wherever it ran (a thread, another
process, another machine), comes back as one :class:`RawResult`.  Chunks merge in any order
and any grouping into the same totals (integer sums, maxima and minima are exact, associative
and commutative), so a run on any number of workers equals the single-process run bit for bit.

What a RawResult holds:

* ``ranges``: the sample ranges ``[(s0, s1), ...]`` it covers (sorted, disjoint).  Merging two
  results that cover a sample twice is an error, never a silent double count — this is what
  makes a retried chunk safe.
* ``counters``: named integer arrays reduced over samples.  Every name must be registered with
  :func:`register_counter` (``"sum"``, ``"max"`` or ``"min"``); the built-in ones are below.
  Adding a counter (e.g. per-step per-core work) is one :func:`register_counter` call plus
  filling the array in the chunk builder; merge, transport and the backends need no change.
* ``detail``: optional per-sample arrays, as ``{kind: [(s0, array), ...]}`` segments whose
  first axis (or, for ``predictions``, second axis) is the chunk's samples; kept only when the
  caller asks for them, and then usually streamed to disk (:mod:`emulator.sink`) and dropped
  from the result before merging (:meth:`without_detail`).

Built-in counters (``nn`` neurons, ``T`` steps; int64):

=====================  ==========  ==========================================================
``spikes``             (nn,)       spikes per neuron, summed over samples
``spikes_sq``          (nn,)       squared per-sample spike counts per neuron, summed (rate
                                   variance: ``spikes_sq/N - (spikes/N)**2``)
``active``             (nn,)       active neuron updates per neuron, summed
``deliveries``         (n_deliv,)  delivered spikes per (projection, source neuron), summed
``maxpool_events``     (n_proj,)   synaptic events of max-pool gates per projection
``maxpool_core``       (n_cores,)  the same by target core
``saturations``        (n_pop,)    range saturations per population
``input_nonzero``      (n_in,)     samples with a non-zero analog input per input neuron
``hits/<name>``        (T,)        samples whose prediction at step t equals reference
                                   ``<name>`` (``labels``: accuracy; ``float``: agreement)
``settle``             (T + 1,)    histogram of the step after which the prediction stays put
``work/core_step_time`` (T, cores) with ``timing``: per-step per-core time (:mod:`emulator.work`)
``work/core``          (cores, 6)  with ``timing``: work counters per core
``work/critical``      (cores,)    with ``timing``: (sample, step) pairs the core was slowest
``work/step_time_sum`` (T,)        with ``timing``: step time summed over samples (ps)
``work/step_time_max`` (T,)        with ``timing``: its maximum over samples (reduce ``max``)
``work/latency_sum``   (1,)        with ``timing``: time to the settled prediction, summed
=====================  ==========  ==========================================================

Detail ``step_time`` (T, n): with ``timing``, each sample's time per step, only when asked
for (``simulate`` keeps it; ``emulator.run`` does not).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hw_models.errors import SimulationError

#: registered reductions: counter name (or ``prefix/*``) → "sum" | "max" | "min"
REDUCTIONS: dict[str, str] = {}
_OPS = {"sum": np.add, "max": np.maximum, "min": np.minimum}
#: per-sample detail kinds and the axis that runs over samples
DETAIL_AXIS = {"predictions": 1, "final_predictions": 0, "spike_counts": 0, "records": 0,
               "step_time": 1}


def register_counter(name: str, reduce: str = "sum") -> None:
    """Declare counter ``name`` (or every ``prefix/*``) and how chunks combine it."""
    if reduce not in _OPS:
        raise ValueError(f"reduce must be one of {sorted(_OPS)}, got {reduce!r}")
    old = REDUCTIONS.get(name)
    if old is not None and old != reduce:
        raise ValueError(f"counter {name!r} is already registered with reduce={old!r}")
    REDUCTIONS[name] = reduce


def reduction_of(name: str) -> str:
    if name in REDUCTIONS:
        return REDUCTIONS[name]
    head = name.split("/", 1)[0]
    if "/" in name and f"{head}/*" in REDUCTIONS:
        return REDUCTIONS[f"{head}/*"]
    raise SimulationError(f"counter {name!r} is not registered (emulator.raw.register_counter)")


for _name in ("spikes", "spikes_sq", "active", "deliveries", "maxpool_events", "maxpool_core",
              "saturations", "input_nonzero", "hits/*", "settle", "work/*"):
    register_counter(_name, "sum")
register_counter("work/step_time_max", "max")


def _normalise(ranges) -> tuple:
    out: list = []
    for a, b in sorted((int(a), int(b)) for a, b in ranges if int(b) > int(a)):
        if out and a < out[-1][1]:
            raise SimulationError(f"samples [{a}, {min(b, out[-1][1])}) are covered twice "
                                  f"(a chunk merged twice?)")
        if out and a == out[-1][1]:
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return tuple(out)


_NARROW = tuple(np.dtype(t) for t in ("uint8", "int8", "uint16", "int16", "uint32", "int32"))


def _narrow(a):
    """An integer array as ``(dtype, array in the narrowest integer type holding its values)``
    for transport (exact: the values are checked, not assumed); anything else as it is."""
    if not isinstance(a, np.ndarray) or a.dtype.kind not in "iu" or a.itemsize <= 1 \
            or not a.size:
        return a
    lo, hi = int(a.min()), int(a.max())
    for dt in _NARROW:
        if dt.itemsize >= a.itemsize:
            break
        info = np.iinfo(dt)
        if info.min <= lo and hi <= info.max:
            return (a.dtype.str, a.astype(dt))
    return a


def _widen(v):
    if isinstance(v, tuple) and len(v) == 2 and isinstance(v[1], np.ndarray):
        return v[1].astype(np.dtype(v[0]))
    return v


def _check_no_wrap(name, a, b, total) -> None:
    """Refuse a sum that wrapped around its integer type (never a silent wrong total)."""
    a, b, total = np.asarray(a), np.asarray(b), np.asarray(total)
    if total.dtype.kind != "i":
        return
    wrapped = ((a > 0) & (b > 0) & (total < 0)) | ((a < 0) & (b < 0) & (total >= 0))
    if wrapped.any():
        raise SimulationError(f"counter {name!r} overflowed {total.dtype} when merging "
                              f"chunks")


@dataclass
class RawResult:
    """Reduced outcome of the samples in ``ranges`` (see the module docstring)."""

    steps: int
    ranges: tuple = ()
    counters: dict = field(default_factory=dict)
    detail: dict = field(default_factory=dict)

    def __post_init__(self):
        self.ranges = _normalise(self.ranges)
        for k in self.counters:
            reduction_of(k)  # unknown names fail here, not at merge time on another machine

    def __getstate__(self):
        """Pickled (to and from Dask workers) with every integer counter and array detail in
        the narrowest integer type that holds its values (a chunk's per-neuron sums mostly fit
        in 8 or 16 bits); widened back to the original type on arrival, so exact."""
        return {"steps": self.steps, "ranges": self.ranges,
                "counters": {k: _narrow(v) for k, v in self.counters.items()},
                "detail": {k: [(s0, _narrow(a)) for s0, a in segs]
                           for k, segs in self.detail.items()}}

    def __setstate__(self, state):
        self.steps = state["steps"]
        self.ranges = state["ranges"]
        self.counters = {k: _widen(v) for k, v in state["counters"].items()}
        self.detail = {k: [(s0, _widen(a)) for s0, a in segs]
                       for k, segs in state["detail"].items()}

    @property
    def n_samples(self) -> int:
        return sum(b - a for a, b in self.ranges)

    def merge(self, other: "RawResult") -> "RawResult":
        """A new RawResult covering both sample sets; counters reduced exactly, detail
        segments kept in sample order.  Refuses overlapping samples and different settings."""
        if self.steps != other.steps:
            raise SimulationError(f"cannot merge results of {self.steps} and {other.steps} "
                                  f"steps")
        ranges = _normalise(self.ranges + other.ranges)
        if self.n_samples and other.n_samples and set(self.counters) != set(other.counters):
            raise SimulationError(f"cannot merge results with different counters: "
                                  f"{sorted(set(self.counters) ^ set(other.counters))}")
        counters = {}
        for k in set(self.counters) | set(other.counters):
            a, b = self.counters.get(k), other.counters.get(k)
            if a is None or b is None:
                counters[k] = np.array(a if b is None else b, copy=True)
                continue
            if np.shape(a) != np.shape(b):
                raise SimulationError(f"counter {k!r}: shapes {np.shape(a)} and "
                                      f"{np.shape(b)} differ")
            op = reduction_of(k)
            counters[k] = _OPS[op](a, b)
            if op == "sum":
                _check_no_wrap(k, a, b, counters[k])
        detail = {}
        for k in set(self.detail) | set(other.detail):
            segs = list(self.detail.get(k, ())) + list(other.detail.get(k, ()))
            detail[k] = sorted(segs, key=lambda s: s[0])
        return RawResult(self.steps, ranges, counters, detail)

    @classmethod
    def merge_all(cls, parts, steps: int | None = None) -> "RawResult":
        """Merge an iterable of RawResults (in any order: the outcome is the same)."""
        out = None
        for p in parts:
            out = p if out is None else out.merge(p)
        if out is None:
            if steps is None:
                raise SimulationError("nothing to merge")
            return cls(int(steps))
        return out

    def without_detail(self) -> "RawResult":
        return RawResult(self.steps, self.ranges, self.counters, {})

    def joined(self, kind: str, n_total: int | None = None):
        """The detail ``kind`` of all samples, concatenated in sample order (records: a dict
        population → rows).  Refuses gaps, so a partial detail is never mistaken for all."""
        segs = self.detail.get(kind)
        if segs is None:
            return None
        if self.ranges and len(self.ranges) != 1:
            raise SimulationError(f"detail {kind!r}: the samples {self.ranges} have gaps")
        if kind == "records":
            names = sorted({n for _, d in segs for n in d})
            return {n: np.concatenate([d[n] for _, d in segs if n in d] or
                                      [np.zeros((0, 3), np.int32)]) for n in names}
        if kind == "spike_counts":
            names = list(segs[0][1]) if segs else []
            return {n: np.concatenate([d[n] for _, d in segs]) for n in names}
        return np.concatenate([a for _, a in segs], axis=DETAIL_AXIS[kind]) if segs else None
