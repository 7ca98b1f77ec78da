"""Per-sample detail streamed to the results HDF5 in chunks, committed atomically.

A :class:`DetailSink` opens a temporary file next to the final result file (through
:func:`hw_models.h5io.atomic_h5`) and writes each chunk's per-sample detail — predictions per
step, final predictions, per-neuron spike counts, rasters — as the chunk arrives, so the detail
of a run never has to fit in memory.  Chunks are written in sample order (a chunk that arrives
early waits in a small reorder buffer), so the file is the same for any backend or worker
count.  :meth:`emulator.result.Result.save` to the sink's path adds the summary and renames the
temporary file onto the target; an abandoned or failed run leaves no file behind.

The datasets have the layout of :mod:`emulator.result` (``/predictions`` (T, N),
``/final_predictions`` (N,), ``/spike_counts/<pop>`` (N, n), ``/spikes/<pop>`` (E, 3)).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from hw_models.errors import SimulationError

from .raw import RawResult

_ROWS = 1 << 16  # chunk of the resizable raster datasets
_STREAMED = ("predictions", "final_predictions", "spike_counts", "records")


class DetailSink:
    """Stream the detail of ``n_samples`` samples into ``path`` (committed by Result.save).

    ``sizes``: {population: neurons} in order; ``detail``: kinds to store; ``record``:
    populations whose rasters are stored.
    """

    def __init__(self, path: str | os.PathLike, n_samples: int, steps: int, sizes: dict,
                 detail=(), record=(), keep=()):
        from hw_models.h5io import atomic_h5
        self.path = Path(path)
        self.n = int(n_samples)
        self.steps = int(steps)
        self.detail = tuple(detail)
        self.record = tuple(record)
        self.keep = tuple(keep)   # kinds also kept in memory after writing
        self._ctx = atomic_h5(self.path)
        self.file = self._ctx.__enter__()
        self._next = 0           # first sample not yet written
        self._pending = {}       # s0 → RawResult waiting for earlier samples
        self._rows = {nm: 0 for nm in self.record}
        self.closed = False
        f, N, T = self.file, self.n, self.steps
        opts = dict(compression="gzip", shuffle=True)
        if "predictions" in self.detail:
            f.create_dataset("predictions", (T, N), np.int64,
                             chunks=(T, max(1, min(N, max(1, 2**17 // max(T, 1))))) if N else None,
                             **(opts if N else {}))
        if "final_predictions" in self.detail:
            f.create_dataset("final_predictions", (N,), np.int64)
        if "spike_counts" in self.detail:
            g = f.create_group("spike_counts")
            for nm, sz in sizes.items():
                g.create_dataset(nm, (N, sz), np.int32,
                                 chunks=(max(1, min(N, max(1, 2**18 // max(sz, 1)))), sz)
                                 if N and sz else None, **(opts if N and sz else {}))
        if self.record:
            g = f.create_group("spikes")
            for nm in self.record:
                g.create_dataset(nm, (0, 3), np.int32, maxshape=(None, 3), chunks=(_ROWS, 3),
                                 **opts)

    def write(self, part: RawResult) -> RawResult:
        """Store ``part``'s detail (now or once the samples before it are in); return ``part``
        without its detail, ready to merge."""
        if self.closed:
            raise SimulationError(f"{self.path}: the detail file is already closed")
        if len(part.ranges) != 1:
            raise SimulationError(f"a chunk must cover consecutive samples, got {part.ranges}")
        s0 = part.ranges[0][0]
        if s0 < self._next or s0 in self._pending:
            raise SimulationError(f"samples from {s0} were already written")
        self._pending[s0] = part
        while self._next in self._pending:
            p = self._pending.pop(self._next)
            self._store(p)
            self._next = p.ranges[0][1]
        gone = {k for k in _STREAMED if (k in self.detail or k == "records")
                and k not in self.keep}
        return RawResult(part.steps, part.ranges, part.counters,
                         {k: v for k, v in part.detail.items() if k not in gone})

    def _store(self, p: RawResult) -> None:
        f = self.file
        for kind, segs in p.detail.items():
            if kind not in _STREAMED or (kind != "records" and kind not in self.detail):
                continue
            for s0, arr in segs:
                if kind == "predictions":
                    f["predictions"][:, s0:s0 + arr.shape[1]] = arr
                elif kind == "final_predictions":
                    f["final_predictions"][s0:s0 + len(arr)] = arr
                elif kind == "spike_counts":
                    for nm, a in arr.items():
                        if a.size:
                            f["spike_counts"][nm][s0:s0 + len(a)] = a
                elif kind == "records":
                    for nm, rows in arr.items():
                        if len(rows):
                            d = f["spikes"][nm]
                            e = self._rows[nm]
                            d.resize(e + len(rows), axis=0)
                            d[e:] = rows
                            self._rows[nm] = e + len(rows)

    def check_complete(self) -> None:
        if self._pending or self._next != self.n:
            raise SimulationError(f"{self.path}: detail of samples [{self._next}, {self.n}) "
                                  f"never arrived")

    def commit(self) -> Path:
        """Close and rename onto :attr:`path` (the caller has written the summary)."""
        self.check_complete()
        self.closed = True
        self._ctx.__exit__(None, None, None)
        return self.path

    def abort(self) -> None:
        """Drop the temporary file (a failed run leaves nothing behind)."""
        if not self.closed:
            self.closed = True
            self._ctx.__exit__(SimulationError, SimulationError("aborted"), None)

    def __del__(self):  # an abandoned sink must not leave its temporary file
        try:
            self.abort()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass
