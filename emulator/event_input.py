"""Event-camera events → engine input (``encoding="events"``).

Every kept camera event becomes exactly one input spike; nothing is rate re-encoded.

Binning (exact integer arithmetic).  For one sample with window start ``t0`` and length
``window`` (µs), an event at time ``t`` is kept iff ``t0 <= t < t0 + window`` and goes to

    step = (t - t0) * n_steps // window          (0 <= step < n_steps; engine step = step + 1)

so bin k covers ``[t0 + ceil(k·window/n_steps), t0 + ceil((k+1)·window/n_steps))`` — equal bins
up to one microsecond when ``window`` is not a multiple of ``n_steps``.  Events outside the window
are dropped and counted per sample (``EventBatch.dropped``).

Input neuron of an event at (x, y, p) in an HWC input of shape (H, W, C):
``neuron = (y·W + x)·C + c`` with ``c = p`` when C = 2 (OFF = channel 0, ON = channel 1) and
``c = 0`` when C = 1 (polarities merged, see :func:`polarity_channels`).  Coordinates outside the
shape are an error (crop or downscale first), never silently dropped.

:func:`count_frames` selects events with the same rule, so summing an :class:`EventBatch` over its
steps gives ``count_frames(...) · scale`` neuron by neuron.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hw_models.errors import DataError, FileFormatError

from .event_io import EVENT_DTYPE, read_events, read_nmnist_bin

NMNIST_SHAPE = (34, 34)          # sensor (H, W) of N-MNIST (ATIS crop)
DVS_GESTURE_SHAPE = (128, 128)   # sensor (H, W) of the DVS128
NMNIST_LABEL_FILES = {"train": "train1K.txt", "test": "test100.txt"}
_MAX_PRODUCT = 1 << 62           # (t - t0) * n_steps must stay inside int64


@dataclass(frozen=True, eq=False)
class EventBatch:
    """Input spikes of N samples as CSR over samples.

    Sample k's spikes are ``steps[offsets[k]:offsets[k+1]]`` and ``neurons[...]`` (same slice),
    sorted by (step, neuron).  ``step`` in [0, n_steps) is engine step ``step + 1``; ``neuron`` is
    the flat index into an HWC input of ``shape = (H, W, C)``.  A repeated (step, neuron) pair is
    several spikes: the engine delivers the weight once per entry.  ``dropped`` (optional,
    int64[N]) counts the events of each sample that fell outside its time window.
    """

    steps: np.ndarray
    neurons: np.ndarray
    offsets: np.ndarray
    shape: tuple
    n_steps: int
    dropped: np.ndarray | None = None

    @property
    def n_samples(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_inputs(self) -> int:
        h, w, c = self.shape
        return h * w * c

    def sample(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(steps, neurons) of sample ``k``."""
        a, b = self.offsets[k], self.offsets[k + 1]
        return self.steps[a:b], self.neurons[a:b]

    def counts(self) -> np.ndarray:
        """Spikes per input neuron summed over all steps: int64 (N, H, W, C)."""
        n = self.n_samples
        sample_of = np.repeat(np.arange(n, dtype=np.int64), np.diff(self.offsets))
        flat = np.bincount(sample_of * self.n_inputs + self.neurons,
                           minlength=n * self.n_inputs)
        return flat.reshape((n,) + tuple(self.shape))

    def validate(self) -> "EventBatch":
        """Raise :class:`DataError` on any wrong dtype, length, range or order; return self."""
        for name, arr, dt in (("steps", self.steps, np.int32), ("neurons", self.neurons, np.int32),
                              ("offsets", self.offsets, np.int64)):
            if not isinstance(arr, np.ndarray) or arr.ndim != 1 or arr.dtype != dt:
                raise DataError(f"EventBatch.{name} must be a 1-D {np.dtype(dt).name} array "
                                f"(found {type(arr).__name__} "
                                f"{getattr(arr, 'dtype', '?')} {getattr(arr, 'shape', '?')})")
        if len(self.shape) != 3 or any(int(s) <= 0 for s in self.shape):
            raise DataError(f"EventBatch.shape must be (H, W, C) with positive sizes "
                            f"(found {self.shape})")
        if self.shape[2] not in (1, 2):
            raise DataError(f"EventBatch.shape channel count must be 1 (merged polarities) or 2 "
                            f"(found {self.shape[2]})")
        if int(self.n_steps) <= 0:
            raise DataError(f"EventBatch.n_steps must be positive (found {self.n_steps})")
        e = len(self.steps)
        if len(self.neurons) != e:
            raise DataError(f"EventBatch: {e} steps but {len(self.neurons)} neurons")
        off = self.offsets
        if len(off) < 1 or off[0] != 0 or off[-1] != e or np.any(np.diff(off) < 0):
            raise DataError(f"EventBatch.offsets must rise from 0 to the event count {e} "
                            f"(found first {off[:1].tolist()}, last {off[-1:].tolist()})")
        for name, arr, hi in (("steps", self.steps, self.n_steps),
                              ("neurons", self.neurons, self.n_inputs)):
            bad = np.flatnonzero((arr < 0) | (arr >= hi))
            if bad.size:
                i = int(bad[0])
                raise DataError(f"EventBatch.{name}[{i}] = {arr[i]} is outside [0, {hi}) "
                                f"(sample {int(np.searchsorted(off, i, side='right')) - 1})")
        if e > 1:
            key = self.steps.astype(np.int64) * self.n_inputs + self.neurons
            falls = np.flatnonzero(np.diff(key) < 0) + 1
            # a fall in the key is only allowed where a new sample starts
            falls = falls[~np.isin(falls, off)]
            if falls.size:
                i = int(falls[0])
                raise DataError(f"EventBatch entry {i} is not sorted by (step, neuron) within its "
                                f"sample (step {self.steps[i]}, neuron {self.neurons[i]} after "
                                f"step {self.steps[i - 1]}, neuron {self.neurons[i - 1]})")
        if self.dropped is not None and np.shape(self.dropped) != (self.n_samples,):
            raise DataError(f"EventBatch.dropped must have one count per sample "
                            f"({self.n_samples}), found shape {np.shape(self.dropped)}")
        return self


# ---------------------------------------------------------------- event transforms


def _check_events(events, what: str = "events") -> np.ndarray:
    if not isinstance(events, np.ndarray) or events.dtype != EVENT_DTYPE or events.ndim != 1:
        raise DataError(f"{what} must be a 1-D array of EVENT_DTYPE (found "
                        f"{type(events).__name__} {getattr(events, 'dtype', '')})")
    return events


def crop(events: np.ndarray, x0: int, y0: int, w: int, h: int) -> np.ndarray:
    """Events with ``x0 <= x < x0 + w`` and ``y0 <= y < y0 + h``, shifted to start at (0, 0)."""
    _check_events(events)
    if w <= 0 or h <= 0:
        raise DataError(f"crop size must be positive (w={w}, h={h})")
    x, y = events["x"].astype(np.int64), events["y"].astype(np.int64)
    out = events[(x >= x0) & (x < x0 + w) & (y >= y0) & (y < y0 + h)].copy()
    out["x"] -= x0
    out["y"] -= y0
    return out


def downscale(events: np.ndarray, factor: int) -> np.ndarray:
    """Coordinates divided by an integer ``factor`` (floor); several events may share a pixel."""
    _check_events(events)
    if int(factor) != factor or factor < 1:
        raise DataError(f"downscale factor must be a positive integer (found {factor})")
    out = events.copy()
    out["x"] //= int(factor)
    out["y"] //= int(factor)
    return out


def time_window(events: np.ndarray, t0: int, t1: int) -> np.ndarray:
    """Events with ``t0 <= t < t1`` (µs); timestamps are kept as they are."""
    _check_events(events)
    return events[(events["t"] >= t0) & (events["t"] < t1)]


def polarity_channels(merge: bool = False) -> int:
    """Input channel count for the binning: 2 (OFF, ON) or 1 when polarities are merged."""
    return 1 if merge else 2


# ---------------------------------------------------------------- binning


def _check_shape(shape) -> tuple[int, int, int]:
    if len(shape) != 3 or int(shape[2]) not in (1, 2) or int(shape[0]) <= 0 or int(shape[1]) <= 0:
        raise DataError(f"event input shape must be (H, W, C) with C = 1 or 2 (found {shape})")
    return int(shape[0]), int(shape[1]), int(shape[2])


def _select(events, k, shape, window_us, t0):
    """(t - t0, neuron, window, dropped) of the events of sample ``k`` inside its window."""
    ev = _check_events(events, f"sample {k}")
    h, w, c = shape
    if ev.size:
        x, y, p = ev["x"], ev["y"], ev["p"]
        bad = np.flatnonzero((x < 0) | (x >= w) | (y < 0) | (y >= h) | (p < 0) | (p > 1))
        if bad.size:
            i = int(bad[0])
            raise DataError(f"sample {k}, event {i}: (x={x[i]}, y={y[i]}, p={p[i]}) is outside "
                            f"the input shape (H={h}, W={w}) or polarity not 0/1; crop or "
                            f"downscale first")
    t = ev["t"]
    if isinstance(t0, str):
        if t0 == "first":
            start = int(t.min()) if t.size else 0
        elif t0 == "zero":
            start = 0
        else:
            raise DataError(f"t0 must be 'first', 'zero' or an integer time in µs (found {t0!r})")
    else:
        start = int(t0)
    if window_us is None:
        window = int(t.max()) - start + 1 if t.size else 1
        window = max(window, 1)
    else:
        window = int(window_us)
        if window <= 0 or window != window_us:
            raise DataError(f"window_us must be a positive integer (found {window_us})")
    rel = t - start
    keep = (rel >= 0) & (rel < window)
    kept = ev[keep]
    chan = kept["p"].astype(np.int64) if c == 2 else 0
    neuron = (kept["y"].astype(np.int64) * w + kept["x"]) * c + chan
    return rel[keep], neuron, window, int(ev.size - kept.size)


def _as_list(samples) -> list:
    if isinstance(samples, np.ndarray) and samples.dtype == EVENT_DTYPE:
        return [samples]
    return list(samples)


def bin_events(samples, shape, n_steps: int, window_us: int | None = None,
               t0: str | int = "first") -> EventBatch:
    """Bin each sample's events into ``n_steps`` steps over ``[t0, t0 + window_us)``.

    ``samples``: a list of ``EVENT_DTYPE`` arrays (or one array).  ``shape``: (H, W, C), C = 2 for
    OFF/ON channels or 1 for merged polarities.  ``t0``: ``"first"`` (each sample's first event),
    ``"zero"`` or an absolute time in µs.  ``window_us``: window length; ``None`` takes each
    sample's span (last event − t0 + 1), so nothing after t0 is dropped.  Each kept event is one
    spike at ``step = (t - t0) * n_steps // window`` (module docstring); the drop counts are in
    ``EventBatch.dropped``.
    """
    shape = _check_shape(shape)
    if int(n_steps) != n_steps or n_steps <= 0:
        raise DataError(f"n_steps must be a positive integer (found {n_steps})")
    n_steps = int(n_steps)
    n_inputs = shape[0] * shape[1] * shape[2]
    steps_l, neurons_l, counts, dropped = [], [], [], []
    for k, ev in enumerate(_as_list(samples)):
        rel, neuron, window, n_drop = _select(ev, k, shape, window_us, t0)
        if window * n_steps > _MAX_PRODUCT:
            raise DataError(f"sample {k}: window {window} µs × n_steps {n_steps} overflows int64")
        step = rel * n_steps // window
        order = np.argsort(step * n_inputs + neuron, kind="stable")
        steps_l.append(step[order].astype(np.int32))
        neurons_l.append(neuron[order].astype(np.int32))
        counts.append(len(order))
        dropped.append(n_drop)
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    empty = np.zeros(0, dtype=np.int32)
    batch = EventBatch(
        steps=np.concatenate(steps_l) if steps_l else empty,
        neurons=np.concatenate(neurons_l) if neurons_l else empty.copy(),
        offsets=offsets, shape=shape, n_steps=n_steps,
        dropped=np.asarray(dropped, dtype=np.int64))
    return batch.validate()


def count_frames(samples, shape, window_us: int | None = None, scale: float = 1.0,
                 t0: str | int = "first") -> np.ndarray:
    """Events per pixel and channel in each sample's window, divided by ``scale``: float32 (N,H,W,C).

    The count-frame input used to train a CNN for event data (Wu et al., ECC, section 4.5).  It
    keeps exactly the events :func:`bin_events` keeps with the same ``window_us`` and ``t0``, so
    ``bin_events(...).counts() == count_frames(...) * scale`` (exactly when ``scale`` is a power
    of two or the counts are small integers; within float32 rounding otherwise).
    """
    shape = _check_shape(shape)
    if not np.isfinite(scale) or scale <= 0:
        raise DataError(f"scale must be a positive finite number (found {scale})")
    samples = _as_list(samples)
    n_inputs = shape[0] * shape[1] * shape[2]
    out = np.zeros((len(samples), n_inputs), dtype=np.float32)
    for k, ev in enumerate(samples):
        _, neuron, _, _ = _select(ev, k, shape, window_us, t0)
        out[k] = np.bincount(neuron, minlength=n_inputs)
    out /= np.float32(scale)
    return out.reshape((len(samples),) + shape)


# ---------------------------------------------------------------- data sets


def read_label_file(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """``(sample ids, labels)`` from an N-MNIST label list: '#' comments, then 'id<ws>label'."""
    path = Path(path)
    ids, labels = [], []
    try:
        text = path.read_text()
    except OSError as exc:
        raise FileFormatError(f"{path}: cannot read label file ({exc})") from exc
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2 or not (parts[0].isdigit() and parts[1].isdigit()):
            raise FileFormatError(f"{path}, line {lineno}: expected 'sample label' (two integers),"
                                  f" found {line!r}")
        ids.append(int(parts[0]))
        labels.append(int(parts[1]))
    return np.asarray(ids, dtype=np.int64), np.asarray(labels, dtype=np.int64)


def load_nmnist(directory: str | os.PathLike, split: str = "train",
                limit: int | None = None) -> tuple[list[np.ndarray], np.ndarray]:
    """N-MNIST samples and labels of a split, in label-file order.

    ``directory`` holds ``<id>.bs2`` files and ``train1K.txt`` / ``test100.txt`` (the shared
    copy: ``neuroemu.datasets.data_path("nmnist")``; the emulator does not know where shared
    data lives).  ``limit`` reads only the first samples.  Sensor: ``NMNIST_SHAPE``.
    """
    if split not in NMNIST_LABEL_FILES:
        raise DataError(f"N-MNIST split must be one of {sorted(NMNIST_LABEL_FILES)} "
                        f"(found {split!r})")
    directory = Path(directory)
    ids, labels = read_label_file(directory / NMNIST_LABEL_FILES[split])
    if limit is not None:
        ids, labels = ids[:limit], labels[:limit]
    samples = []
    for i in ids:
        f = directory / f"{i}.bs2"
        if not f.exists():
            raise FileFormatError(f"{f}: listed in {NMNIST_LABEL_FILES[split]} but absent")
        samples.append(read_nmnist_bin(f))
    return samples, labels


def load_dvs_gesture_clip(path: str | os.PathLike) -> tuple[np.ndarray, tuple[int, int]]:
    """Events of one DVS128 Gesture clip (any supported format) and the sensor size (128, 128)."""
    events, size = read_events(path)
    if size is not None and tuple(size) != DVS_GESTURE_SHAPE:
        raise DataError(f"{path}: sensor {size} is not the DVS128's {DVS_GESTURE_SHAPE}")
    if events.size and (events["x"].max() >= DVS_GESTURE_SHAPE[1]
                        or events["y"].max() >= DVS_GESTURE_SHAPE[0]):
        raise DataError(f"{path}: coordinates up to x={events['x'].max()}, "
                        f"y={events['y'].max()} exceed the DVS128 sensor {DVS_GESTURE_SHAPE}")
    return events, DVS_GESTURE_SHAPE
