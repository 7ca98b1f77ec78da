"""Inputs read per chunk where the chunk runs, so a large data set never passes through the
driver (a Dask client process) or sits in its memory whole.

A *sample source* is a small picklable reference to samples on storage that every worker can
read (a shared file system): it says how many samples it holds and their shape, and reads any
range of them.  :func:`emulator.run` accepts one wherever it accepts an array of raw inputs;
each task then carries the reference and its sample range (a few hundred bytes) instead of the
images, reads its rows on the worker, and checks them exactly as an array passed to
``emulator.run`` is checked (shape, raw range or model-unit floats, :attr:`CoreNetwork.spec`),
so a bad value is a :class:`~hw_models.errors.DataError` naming the sample, raised on the
driver.

:class:`NpySamples` reads rows of a ``.npy`` file through :func:`hw_models.safeio.read_npy_rows`
(header checked, no pickles, only the rows of the chunk read).  Any object with ``__len__``,
``sample_shape``, ``part(a, b)`` (the samples ``a:b`` as a new source) and ``load()`` (its
samples as an array) is a sample source too.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from hw_models.errors import DataError
from hw_models.safeio import npy_layout, read_npy_rows


def is_source(x) -> bool:
    """Whether ``x`` is a sample source (read per chunk) rather than an in-memory batch."""
    return all(hasattr(x, a) for a in ("part", "load", "sample_shape", "__len__"))


class NpySamples:
    """Samples ``start:stop`` of a ``.npy`` file of raw inputs ``(N, *sample_shape)``, read
    where they are used.  The file is checked on creation (header, size); the path must be
    readable by every worker."""

    def __init__(self, path: str | os.PathLike, start: int = 0, stop: int | None = None,
                 _layout: tuple | None = None):
        self.path = str(Path(path).resolve())
        self.layout = _layout if _layout is not None else npy_layout(self.path)
        shape = self.layout[0]
        if len(shape) < 2:
            raise DataError(f"{self.path}: holds an array of shape {shape}; expected samples "
                            f"(N, ...)")
        n = shape[0]
        stop = n if stop is None else int(stop)
        if not 0 <= int(start) <= stop <= n:
            raise DataError(f"{self.path}: samples [{start}, {stop}) outside the {n} it holds")
        self.start, self.stop = int(start), stop

    @property
    def sample_shape(self) -> tuple:
        return tuple(self.layout[0][1:])

    @property
    def dtype(self) -> np.dtype:
        return self.layout[1]

    def __len__(self) -> int:
        return self.stop - self.start

    def part(self, a: int, b: int) -> "NpySamples":
        """Samples ``a:b`` of this source (relative indices)."""
        if not 0 <= a <= b <= len(self):
            raise DataError(f"samples [{a}, {b}) outside the {len(self)} of {self!r}")
        return NpySamples(self.path, self.start + a, self.start + b, _layout=self.layout)

    def load(self) -> np.ndarray:
        return read_npy_rows(self.path, self.start, self.stop, self.layout)

    def __repr__(self) -> str:
        return f"NpySamples({self.path!r}, {self.start}, {self.stop})"
